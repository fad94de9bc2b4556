//! Answers `HostMsg::CheckSupport`: does the kernel have a syscall (ENOSYS), a file (ENOENT), a
//! socket address family (EAFNOSUPPORT). Syscalls are issued with invalid arguments in a forked
//! child, killed if it does not answer in time, so that a call that blocks or ends its process
//! cannot take the executor with it. Never decides what to do with the answers.

use std::ffi::CString;
use std::time::{Duration, Instant};

use kfuzz_wire::{Support, SupportCheck};

/// How long one syscall may take before the probe is killed (a call that blocks).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub fn check(checks: &[SupportCheck]) -> Vec<Support> {
    let nrs: Vec<u64> = checks
        .iter()
        .filter_map(|c| match c {
            SupportCheck::Syscall { nr } => Some(*nr),
            _ => None,
        })
        .collect();
    let mut syscalls = probe_syscalls(&nrs).into_iter();
    checks
        .iter()
        .map(|c| match c {
            SupportCheck::Syscall { .. } => syscalls
                .next()
                .unwrap_or_else(|| Support::Unknown("no answer".into())),
            SupportCheck::Path { path } => path_exists(path),
            SupportCheck::Socket { domain, ty, proto } => socket_family(*domain, *ty, *proto),
        })
        .collect()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn path_exists(path: &str) -> Support {
    let Ok(c) = CString::new(path) else {
        return Support::Unknown(format!("{path:?} has a NUL byte"));
    };
    // SAFETY: a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::F_OK) } == 0 {
        return Support::Yes;
    }
    match errno() {
        libc::ENOENT | libc::ENOTDIR => Support::NoPath,
        _ => Support::Yes,
    }
}

fn socket_family(domain: u64, ty: u64, proto: u64) -> Support {
    // SAFETY: socket(2) takes no pointers; the fd is ours to close.
    let fd = unsafe {
        libc::socket(
            domain as libc::c_int,
            ty as libc::c_int | libc::SOCK_CLOEXEC,
            proto as libc::c_int,
        )
    };
    if fd >= 0 {
        // SAFETY: closing the fd just opened.
        unsafe { libc::close(fd) };
        return Support::Yes;
    }
    match errno() {
        libc::EAFNOSUPPORT => Support::NoFamily,
        libc::ENOSYS => Support::NoSyscall,
        // The family exists; the type or protocol did not suit it.
        _ => Support::Yes,
    }
}

/// One byte per syscall from the child: the kernel has it, or ENOSYS.
const HAS: u8 = 0;
const ENOSYS: u8 = 1;

/// Issues each syscall in a child process; a child that dies or hangs on a call is replaced by
/// a new one that goes on with the next call.
fn probe_syscalls(nrs: &[u64]) -> Vec<Support> {
    let mut out = Vec::with_capacity(nrs.len());
    while out.len() < nrs.len() {
        let start = out.len();
        match probe_batch(&nrs[start..], &mut out) {
            Ok(()) => {}
            Err(e) => {
                // Not even a child: nothing more can be learned.
                while out.len() < nrs.len() {
                    out.push(Support::Unknown(e.clone()));
                }
            }
        }
        if out.len() == start {
            out.push(Support::Unknown("no answer".into()));
        }
    }
    out
}

/// Runs `nrs` in one child until it finishes, dies or hangs; pushes an answer per call it got
/// through, and one `Unknown` for the call it died or hung on.
fn probe_batch(nrs: &[u64], out: &mut Vec<Support>) -> Result<(), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let [rd, wr] = fds;
    // SAFETY: the child only makes raw syscalls and exits with _exit (no allocation, no locks).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: closing our own fds.
        unsafe {
            libc::close(rd);
            libc::close(wr);
        }
        return Err(format!("fork: {e}"));
    }
    if pid == 0 {
        // SAFETY: in the child: a session of its own (no controlling tty for vhangup and the
        // like), then the calls, one answer byte each.
        unsafe {
            libc::close(rd);
            libc::setsid();
            for &nr in nrs {
                let b = if is_enosys(nr) { ENOSYS } else { HAS };
                if libc::write(wr, (&b as *const u8).cast(), 1) != 1 {
                    libc::_exit(1);
                }
            }
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(wr) };
    let first = out.len();
    let mut deadline = Instant::now() + CALL_TIMEOUT;
    let ended = loop {
        if out.len() - first == nrs.len() {
            break None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: rd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n == 0 {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            break Some(format!(
                "did not return within {} s",
                CALL_TIMEOUT.as_secs()
            ));
        }
        let mut b = 0u8;
        // SAFETY: one byte into a local.
        let r = unsafe { libc::read(rd, (&mut b as *mut u8).cast(), 1) };
        if r == 1 {
            out.push(if b == ENOSYS {
                Support::NoSyscall
            } else {
                Support::Yes
            });
            deadline = Instant::now() + CALL_TIMEOUT;
            continue;
        }
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        break Some(String::new());
    };
    let mut status = 0;
    // SAFETY: reaping our own child; closing our fd.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(rd);
    }
    if let Some(why) = ended {
        let why = if !why.is_empty() {
            why
        } else if libc::WIFSIGNALED(status) {
            format!("the probe was killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("the probe exited with status {}", libc::WEXITSTATUS(status))
        };
        if out.len() - first < nrs.len() {
            out.push(Support::Unknown(why));
        }
    }
    Ok(())
}

/// The call fails with ENOSYS with every argument -1 and again with every argument 0: a kernel
/// built without a syscall says ENOSYS before it looks at the arguments, while the few calls
/// that answer ENOSYS to a bad command (futex) do not to command 0.
///
/// # Safety
/// Issues an arbitrary syscall: only in a throwaway child.
unsafe fn is_enosys(nr: u64) -> bool {
    let nr = nr as libc::c_long;
    let all = |v: libc::c_long| {
        // SAFETY: the caller's contract.
        let r = unsafe { libc::syscall(nr, v, v, v, v, v, v) };
        r == -1 && errno() == libc::ENOSYS
    };
    all(-1) && all(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_syscall_is_told_from_present_ones_and_a_dying_call_from_both() {
        // getpid, a number no kernel has, exit (ends the child), getppid.
        let checks = [
            SupportCheck::Syscall { nr: 39 },
            SupportCheck::Syscall { nr: 100_000 },
            SupportCheck::Syscall { nr: 60 },
            SupportCheck::Path {
                path: "/proc/self/status".into(),
            },
            SupportCheck::Path {
                path: "/dev/kfuzz-no-such-device".into(),
            },
            SupportCheck::Socket {
                domain: libc::AF_UNIX as u64,
                ty: libc::SOCK_STREAM as u64,
                proto: 0,
            },
            SupportCheck::Socket {
                domain: 200, // Beyond AF_MAX: no such family.
                ty: libc::SOCK_STREAM as u64,
                proto: 0,
            },
            SupportCheck::Syscall { nr: 110 },
        ];
        let got = check(&checks);
        assert_eq!(got[0], Support::Yes);
        assert_eq!(got[1], Support::NoSyscall);
        assert!(
            matches!(&got[2], Support::Unknown(w) if w.contains("exited")),
            "{got:?}"
        );
        assert_eq!(got[3], Support::Yes);
        assert_eq!(got[4], Support::NoPath);
        assert_eq!(got[5], Support::Yes);
        assert_eq!(got[6], Support::NoFamily);
        assert_eq!(got[7], Support::Yes);
    }
}
