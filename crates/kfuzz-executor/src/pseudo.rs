//! syzkaller's pseudo-calls (`syz_*`), done by the executor itself: a program's call whose
//! number is in the pseudo range (`kfuzz_wire::PseudoCall`) comes here instead of going to the
//! kernel as a syscall. Each is a few real syscalls that would be hard to express as a program
//! (open a path built from a number, ask generic netlink for a family id, mount a compressed
//! image). Pointer arguments are read only inside the data area; a pointer elsewhere is EFAULT,
//! never a fault in the executor. Results are `(return value, errno)` as a syscall gives them.

mod mount;
mod netlink;
mod tap;

use std::ffi::CString;

use kfuzz_wire::{ExecProg, PseudoCall, PSEUDO_MAX_ARGS};

/// A call's arguments: the first 6 go to a syscall, pseudo-calls take up to 9.
pub type Args = [u64; PSEUDO_MAX_ARGS];

/// A pseudo-call's result: its value, or the errno it fails with.
type Res = Result<i64, i32>;

/// Runs a pseudo-call; `(ret, errno)` as `syscall` returns them (ret -1 on failure).
pub fn run(p: PseudoCall, a: &Args) -> (i64, i32) {
    let r = match p {
        PseudoCall::OpenDev => open_dev(a[0], a[1], a[2]),
        PseudoCall::OpenProcfs => open_procfs(a[0], a[1]),
        PseudoCall::OpenPts => open_pts(a[0], a[1]),
        PseudoCall::GenetlinkGetFamilyId => netlink::family_id(a[0], a[1]),
        PseudoCall::InitNetSocket => init_net_socket(a[0], a[1], a[2]),
        PseudoCall::EmitEthernet => tap::emit(a[0], a[1]),
        PseudoCall::MountImage => mount::mount_image(&mount::MountArgs {
            fs: a[0],
            dir: a[1],
            flags: a[2],
            opts: a[3],
            chdir: a[4] & 0xff != 0,
            size: a[5],
            image: a[6],
        }),
    };
    match r {
        Ok(v) => (v, 0),
        Err(e) => (-1, e),
    }
}

/// Whether `prog` has call `p`.
fn uses(prog: &ExecProg, p: PseudoCall) -> bool {
    prog.calls.iter().any(|c| c.nr == p.nr())
}

/// Called by the runner with an fd number it keeps open across programs: the tap device, once
/// made, lives there.
pub fn reserve_tap_fd(fd: libc::c_int) {
    tap::reserve(fd);
}

/// Before a program runs (in the runner, so that what is made here outlives the program): the
/// `syz_tun` tap device for a program that emits packets.
pub fn before_program(prog: &ExecProg) {
    if uses(prog, PseudoCall::EmitEthernet) {
        tap::ensure();
    }
}

/// After a program (in the runner): what a mounting program left under its temp dir `dir` is
/// unmounted, and the runner is back in `dir` if the program moved into a mount.
pub fn after_program(prog: &ExecProg, dir: &str) {
    if uses(prog, PseudoCall::MountImage) {
        if let Ok(c) = CString::new(dir) {
            // SAFETY: a valid C string.
            unsafe { libc::chdir(c.as_ptr()) };
        }
        mount::unmount_under(dir);
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// A syscall's int result as a `Res`.
fn check(r: libc::c_int) -> Res {
    if r < 0 {
        Err(errno())
    } else {
        Ok(i64::from(r))
    }
}

/// `len` bytes of program memory at `addr`, which must lie inside the data area.
fn bytes(addr: u64, len: u64) -> Result<&'static [u8], i32> {
    if len > 0 && !crate::data::in_data(addr, len) {
        return Err(libc::EFAULT);
    }
    // SAFETY: the range is inside the data area, mapped for the whole program.
    Ok(unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) })
}

/// The NUL-terminated string at `addr` (without its NUL), at most `max` bytes of it.
fn string(addr: u64, max: usize) -> Result<Vec<u8>, i32> {
    let Some(room) = crate::data::data_room(addr) else {
        return Err(libc::EFAULT);
    };
    let room = bytes(addr, room.min(max as u64))?;
    Ok(room.iter().take_while(|b| **b != 0).copied().collect())
}

/// open(2) on a path given as bytes (no NUL inside).
fn open(path: &[u8], flags: libc::c_int) -> Res {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: a valid C string; the fd goes to the program.
    check(unsafe { libc::open(c.as_ptr(), flags, 0) })
}

/// `syz_open_dev`: `dev` 0xc or 0xb opens char or block device `id:flags` (`/dev/char/M:m`,
/// or a node made in the temp dir where udev made none); otherwise `dev` is a path whose `#`s
/// become the digits of `id`, lowest first.
fn open_dev(dev: u64, id: u64, flags: u64) -> Res {
    if dev == 0xc || dev == 0xb {
        // syzkaller's descriptions pass small numbers; only the low byte counts, as there.
        let (major, minor) = (id as u8, flags as u8);
        let kind = if dev == 0xc { "char" } else { "block" };
        let path = format!("/dev/{kind}/{major}:{minor}");
        return match open(path.as_bytes(), libc::O_RDWR) {
            Err(libc::ENOENT) => open_node(dev == 0xc, major, minor).map_err(|_| libc::ENOENT),
            r => r,
        };
    }
    let mut path = string(dev, 1023)?;
    fill_hashes(&mut path, id);
    open(&path, flags as libc::c_int & !libc::O_CREAT)
}

/// Each `#` of `path` becomes a digit of `id`, the lowest digit first.
fn fill_hashes(path: &mut [u8], id: u64) {
    let mut n = id;
    for b in path.iter_mut().filter(|b| **b == b'#') {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Opens a device by number through a node made for the occasion in the current directory.
fn open_node(char_dev: bool, major: u8, minor: u8) -> Res {
    let name = format!("./kfuzz-dev-{major}-{minor}");
    let c = CString::new(name).map_err(|_| libc::EINVAL)?;
    let kind = if char_dev {
        libc::S_IFCHR
    } else {
        libc::S_IFBLK
    };
    let dev = libc::makedev(major.into(), minor.into());
    // SAFETY: a valid C string; the node is removed again below.
    unsafe {
        libc::unlink(c.as_ptr());
        check(libc::mknod(c.as_ptr(), kind | 0o600, dev))?;
        let r = check(libc::open(c.as_ptr(), libc::O_RDWR, 0));
        libc::unlink(c.as_ptr());
        r
    }
}

/// `syz_open_procfs`: a file of this process (pid 0), of this thread (-1), or of a thread of
/// this process (a tid), read-write if it may be, else read-only.
fn open_procfs(pid: u64, file: u64) -> Res {
    let file = string(file, 1024)?;
    let mut path = match pid as i32 {
        0 => b"/proc/self/".to_vec(),
        -1 => b"/proc/thread-self/".to_vec(),
        tid => format!("/proc/self/task/{tid}/").into_bytes(),
    };
    path.extend_from_slice(&file);
    open(&path, libc::O_RDWR).or_else(|_| open(&path, libc::O_RDONLY))
}

/// `syz_open_pts`: the slave side of a ptmx fd.
fn open_pts(fd: u64, flags: u64) -> Res {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    check(unsafe { libc::ioctl(fd as libc::c_int, libc::TIOCGPTN, &mut n) })?;
    open(format!("/dev/pts/{n}").as_bytes(), flags as libc::c_int)
}

/// `syz_init_net_socket`: the executor stays in the initial network namespace unless the
/// namespace sandbox is on, so this is socket(2).
fn init_net_socket(domain: u64, ty: u64, proto: u64) -> Res {
    // SAFETY: socket(2) takes no pointers; the fd goes to the program.
    check(unsafe {
        libc::socket(
            domain as libc::c_int,
            ty as libc::c_int,
            proto as libc::c_int,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DATA_SIZE;
    use kfuzz_wire::DATA_BASE;

    #[test]
    fn hashes_take_the_digits_of_the_id_lowest_first() {
        let mut p = b"/dev/snd/pcmC#D#p".to_vec();
        fill_hashes(&mut p, 21);
        assert_eq!(p, b"/dev/snd/pcmC1D2p");
        let mut p = b"/dev/loop#".to_vec();
        fill_hashes(&mut p, 0);
        assert_eq!(p, b"/dev/loop0");
    }

    #[test]
    fn pointers_outside_the_data_area_are_efault() {
        assert_eq!(bytes(0, 1), Err(libc::EFAULT));
        assert_eq!(
            bytes(DATA_BASE + DATA_SIZE as u64 - 1, 2),
            Err(libc::EFAULT)
        );
        assert_eq!(string(DATA_BASE - 1, 8), Err(libc::EFAULT));
        assert_eq!(string(u64::MAX, 8), Err(libc::EFAULT));
    }
}
