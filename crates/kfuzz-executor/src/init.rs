//! PID 1 of the kfuzz guest: mounts, console, and a supervisor loop for the executor.

use std::ffi::CString;
use std::time::{Duration, Instant};

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong) {
    let _ = std::fs::create_dir_all(target);
    let (Ok(s), Ok(t), Ok(f)) = (
        CString::new(src),
        CString::new(target),
        CString::new(fstype),
    ) else {
        return;
    };
    // SAFETY: valid NUL-terminated strings; a null data pointer is allowed.
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, std::ptr::null()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EBUSY) {
            eprintln!("kfuzz-init: mount {fstype} on {target}: {err}");
        }
    }
}

pub fn run() -> i32 {
    mount("proc", "/proc", "proc", 0);
    mount("sysfs", "/sys", "sysfs", 0);
    mount("devtmpfs", "/dev", "devtmpfs", 0);
    mount("debugfs", "/sys/kernel/debug", "debugfs", 0);
    mount("tmpfs", "/tmp", "tmpfs", 0);
    mount("devpts", "/dev/pts", "devpts", 0);
    mount("tmpfs", "/dev/shm", "tmpfs", 0);
    std::env::set_var("PATH", "/bin:/sbin:/usr/bin:/usr/sbin");
    std::env::set_var("HOME", "/root");
    std::env::set_var("TMPDIR", "/tmp");
    println!("kfuzz-init: started");

    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut restarts = 0u32;
    loop {
        let started = Instant::now();
        let child = std::process::Command::new(&exe).arg("serve").spawn();
        let pid = match child {
            Ok(c) => c.id() as libc::pid_t,
            Err(e) => {
                eprintln!("kfuzz-init: cannot start the executor: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        // Reap every child (orphans are re-parented to us) until the executor itself exits.
        loop {
            let mut status = 0;
            // SAFETY: plain waitpid on any child.
            let got = unsafe { libc::waitpid(-1, &mut status, 0) };
            if got == pid {
                eprintln!("kfuzz-init: executor exited (status {status:#x}), restarting");
                break;
            }
            if got < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                break;
            }
        }
        restarts += 1;
        // Back off when it dies right away, so a broken executor does not flood the console.
        if started.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(200 * u64::from(restarts.min(10))));
        } else {
            restarts = 0;
        }
    }
}
