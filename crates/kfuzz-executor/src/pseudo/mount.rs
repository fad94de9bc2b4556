//! `syz_mount_image`: a zlib-compressed filesystem image, inflated into a memfd (zero runs
//! left as holes), bound to a free loop device and mounted; an empty image mounts without a
//! device (tmpfs, fuse). The loop device detaches itself when the mount goes away. After the
//! program, `unmount_under` takes down what it mounted in its temp dir.

use std::ffi::CString;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::{bytes, check, errno, open, string, Res};

/// `_IO(0x4C, …)` loop ioctls.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// A larger image is refused (EFBIG): the guest has a few hundred MiB of memory.
const MAX_IMAGE: u64 = 1 << 30;
/// Loop devices tried when another proc takes the free one first.
const LOOP_TRIES: usize = 8;

/// `struct loop_config`: the backing fd, a block size, a zeroed `loop_info64`, reserved.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: [u64; 29],
    reserved: [u64; 8],
}

/// syz_mount_image's arguments, as the descriptions declare them.
pub struct MountArgs {
    pub fs: u64,
    pub dir: u64,
    pub flags: u64,
    pub opts: u64,
    pub chdir: bool,
    pub size: u64,
    pub image: u64,
}

/// Mounts the image and returns the mount point opened as a directory.
pub fn mount_image(a: &MountArgs) -> Res {
    let fs = string(a.fs, 256)?;
    let target = string(a.dir, 4096)?;
    let opts = if a.opts == 0 {
        Vec::new()
    } else {
        string(a.opts, 4096)?
    };
    let (opts, flags) = safe_options(&fs, opts, a.flags);
    let dev = if a.size > 0 {
        let memfd = inflate_to_memfd(bytes(a.image, a.size)?)?;
        let dev = attach_loop(memfd);
        // SAFETY: the loop device holds its own reference to the file.
        unsafe { libc::close(memfd) };
        Some(dev?)
    } else {
        None
    };
    let r = mount_and_open(dev.as_deref(), &target, &fs, flags, &opts, a.chdir);
    if let Some(dev) = &dev {
        release_loop(dev);
    }
    r
}

fn mount_and_open(
    dev: Option<&str>,
    target: &[u8],
    fs: &[u8],
    flags: u64,
    opts: &[u8],
    chdir: bool,
) -> Res {
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| libc::EINVAL);
    let (t, f, o) = (cstr(target)?, cstr(fs)?, cstr(opts)?);
    let src = dev.map(|d| cstr(d.as_bytes())).transpose()?;
    // SAFETY: valid C strings (a null source is allowed); the fd goes to the program.
    unsafe {
        libc::mkdir(t.as_ptr(), 0o777);
        let src = src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        check(libc::mount(
            src,
            t.as_ptr(),
            f.as_ptr(),
            flags as libc::c_ulong,
            o.as_ptr().cast(),
        ))?;
        let fd = check(libc::open(
            t.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        ))?;
        if chdir && libc::chdir(t.as_ptr()) != 0 {
            let e = errno();
            libc::close(fd as libc::c_int);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Options that keep a corrupt image from taking the kernel down on purpose (`errors=panic`)
/// or from failing for reasons of our own (xfs refuses a second mount of the same uuid).
fn safe_options(fs: &[u8], mut opts: Vec<u8>, mut flags: u64) -> (Vec<u8>, u64) {
    let has = |opts: &[u8], o: &[u8]| opts.split(|b| *b == b',').any(|x| x == o);
    let add = |opts: &mut Vec<u8>, o: &[u8]| {
        if !opts.is_empty() {
            opts.push(b',');
        }
        opts.extend_from_slice(o);
    };
    if fs == b"iso9660" {
        flags |= libc::MS_RDONLY;
    } else if fs.starts_with(b"ext") {
        if has(&opts, b"errors=panic") || !has(&opts, b"errors=remount-ro") {
            add(&mut opts, b"errors=continue");
        }
    } else if fs == b"xfs" {
        add(&mut opts, b"nouuid");
    } else if fs.starts_with(b"gfs2") && (has(&opts, b"errors=panic") || has(&opts, b"debug")) {
        add(&mut opts, b"errors=withdraw");
    }
    (opts, flags)
}

/// Writes `data` at `pos` unless it is all zeros (the file keeps a hole there).
fn write_sparse(fd: libc::c_int, data: &[u8], mut pos: u64) -> Result<(), i32> {
    if data.iter().all(|b| *b == 0) {
        return Ok(());
    }
    let mut left = data;
    while !left.is_empty() {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::pwrite(fd, left.as_ptr().cast(), left.len(), pos as libc::off_t) };
        if n < 0 {
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        left = &left[n as usize..];
        pos += n as u64;
    }
    Ok(())
}

/// The inflated image in a new memfd, sized to it.
fn inflate_to_memfd(zlib: &[u8]) -> Result<libc::c_int, i32> {
    // SAFETY: a valid C string; the fd is returned to the caller, or closed.
    let fd = check(unsafe { libc::memfd_create(c"kfuzz-image".as_ptr(), libc::MFD_CLOEXEC) })?
        as libc::c_int;
    let r = inflate_into(fd, zlib);
    if let Err(e) = r {
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

fn inflate_into(fd: libc::c_int, zlib: &[u8]) -> Result<(), i32> {
    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let mut out = vec![0u8; 64 << 10];
    let mut input = zlib;
    let mut pos = 0u64;
    loop {
        let r = inflate(&mut state, input, &mut out, MZFlush::None);
        input = &input[r.bytes_consumed..];
        write_sparse(fd, &out[..r.bytes_written], pos)?;
        pos += r.bytes_written as u64;
        if pos > MAX_IMAGE {
            return Err(libc::EFBIG);
        }
        match r.status {
            Ok(MZStatus::StreamEnd) => break,
            Ok(_) if r.bytes_consumed > 0 || r.bytes_written > 0 => {}
            // No progress: a truncated stream, or a corrupt one.
            Ok(_) | Err(MZError::Buf) | Err(_) => return Err(libc::EINVAL),
        }
    }
    // SAFETY: sizing our own file.
    check(unsafe { libc::ftruncate(fd, pos as libc::off_t) })?;
    Ok(())
}

/// Binds `file` to a free loop device and returns the device's path.
fn attach_loop(file: libc::c_int) -> Result<String, i32> {
    let ctl = open(b"/dev/loop-control", libc::O_RDWR | libc::O_CLOEXEC)? as libc::c_int;
    let mut last = libc::EBUSY;
    for _ in 0..LOOP_TRIES {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument.
        let n = unsafe { libc::ioctl(ctl, LOOP_CTL_GET_FREE) };
        if n < 0 {
            last = errno();
            break;
        }
        let path = format!("/dev/loop{n}");
        let dev = match open(path.as_bytes(), libc::O_RDWR | libc::O_CLOEXEC) {
            Ok(fd) => fd as libc::c_int,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let cfg = LoopConfig {
            fd: file as u32,
            block_size: 0,
            info: [0; 29],
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads one loop_config; LOOP_SET_FD (kernels before 5.8)
        // takes the fd as its argument.
        let r = unsafe {
            match libc::ioctl(dev, LOOP_CONFIGURE, &cfg) {
                r if r < 0 && matches!(errno(), libc::EINVAL | libc::ENOTTY) => {
                    libc::ioctl(dev, LOOP_SET_FD, file as libc::c_ulong)
                }
                r => r,
            }
        };
        last = errno();
        // SAFETY: closing our fds.
        unsafe { libc::close(dev) };
        if r == 0 {
            // SAFETY: as above.
            unsafe { libc::close(ctl) };
            return Ok(path);
        }
        if last != libc::EBUSY {
            break;
        }
    }
    // SAFETY: as above.
    unsafe { libc::close(ctl) };
    Err(last)
}

/// Detaches the loop device now if nothing uses it, else (mounted) when the mount goes away.
fn release_loop(dev: &str) {
    if let Ok(fd) = open(dev.as_bytes(), libc::O_RDONLY | libc::O_CLOEXEC) {
        // SAFETY: LOOP_CLR_FD takes no argument; closing our fd.
        unsafe {
            libc::ioctl(fd as libc::c_int, LOOP_CLR_FD, 0);
            libc::close(fd as libc::c_int);
        }
    }
}

/// `\040`-style escapes of /proc/self/mountinfo undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points strictly under `dir`, deepest first, from a mountinfo text.
fn mounts_under(mountinfo: &str, dir: &str) -> Vec<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut v: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|m| m.starts_with(&prefix))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v
}

/// Detaches every mount under `dir` (stacked ones too).
pub fn unmount_under(dir: &str) {
    for _ in 0..8 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let points = mounts_under(&info, dir);
        if points.is_empty() {
            return;
        }
        for p in points {
            if let Ok(c) = CString::new(p) {
                // SAFETY: a valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_images_never_panic_and_iso9660_is_read_only() {
        let (o, f) = safe_options(b"ext4", b"errors=panic".to_vec(), 0);
        assert_eq!(o, b"errors=panic,errors=continue");
        assert_eq!(f, 0);
        let (o, _) = safe_options(b"ext4", b"errors=remount-ro".to_vec(), 0);
        assert_eq!(o, b"errors=remount-ro");
        let (o, _) = safe_options(b"ext2", Vec::new(), 0);
        assert_eq!(o, b"errors=continue");
        let (_, f) = safe_options(b"iso9660", Vec::new(), 0);
        assert_eq!(f, libc::MS_RDONLY);
        let (o, _) = safe_options(b"xfs", b"ro".to_vec(), 0);
        assert_eq!(o, b"ro,nouuid");
    }

    #[test]
    fn mounts_under_the_temp_dir_are_found_deepest_first() {
        let info = "22 1 0:20 / / rw - rootfs rootfs rw\n\
                    30 22 0:25 / /tmp rw - tmpfs tmpfs rw\n\
                    41 30 7:0 / /tmp/kfuzz-0/file0 rw - ext4 /dev/loop0 rw\n\
                    42 41 0:30 / /tmp/kfuzz-0/file0/a\\040b rw - tmpfs tmpfs rw\n\
                    43 30 0:31 / /tmp/kfuzz-01/x rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mounts_under(info, "/tmp/kfuzz-0"),
            vec!["/tmp/kfuzz-0/file0/a b", "/tmp/kfuzz-0/file0"]
        );
    }

    #[test]
    fn an_image_inflates_with_holes_for_its_zeros() {
        // zlib of 100000 zero bytes followed by "kfuzz".
        let mut raw = vec![0u8; 100_000];
        raw.extend_from_slice(b"kfuzz");
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
        let fd = inflate_to_memfd(&z).expect("inflate");
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on our fd.
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        assert_eq!(st.st_size, 100_005);
        let mut tail = [0u8; 5];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::pread(fd, tail.as_mut_ptr().cast(), 5, 100_000) };
        assert_eq!(n, 5);
        assert_eq!(&tail, b"kfuzz");
        assert_eq!(inflate_to_memfd(&z[..z.len() / 2]), Err(libc::EINVAL));
        // SAFETY: closing our fd.
        unsafe { libc::close(fd) };
    }
}
