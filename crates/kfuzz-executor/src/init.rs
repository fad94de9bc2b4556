//! PID 1 of the kfuzz guest: mounts, console, and a supervisor loop for the executor. With
//! `kfuzz.root=DEV` on the kernel command line (a disk image), it first mounts DEV, copies
//! itself into it and makes it the root, then goes on there as PID 1.

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

/// Where the image's root is mounted before it becomes `/`.
const NEW_ROOT: &str = "/newroot";
/// This binary's path inside the image (in the VM's copy-on-write layer, never in the image).
const INIT_IN_ROOT: &str = "/run/kfuzz-init";
/// Set for the second start, in the new root.
const SWITCHED: &str = "KFUZZ_SWITCHED_ROOT";

/// `kfuzz.root=` from the kernel command line.
fn root_device() -> Option<String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").ok()?;
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kfuzz.root="))
        .map(str::to_string)
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} holds a NUL"))
}

/// Mounts `dev` (ext4) on NEW_ROOT, copies this binary into it, makes it `/` and execs the copy.
/// Returns only on failure, with what went wrong.
fn switch_root(dev: &str) -> String {
    // The disk may show up a little after init starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(dev).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::create_dir_all(NEW_ROOT);
    let (Ok(d), Ok(t), Ok(f)) = (cstr(dev), cstr(NEW_ROOT), cstr("ext4")) else {
        return format!("bad device name {dev:?}");
    };
    // SAFETY: valid NUL-terminated strings; a null data pointer is allowed.
    if unsafe { libc::mount(d.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) } != 0 {
        return format!("mount {dev} (ext4): {}", std::io::Error::last_os_error());
    }
    let target = format!("{NEW_ROOT}{INIT_IN_ROOT}");
    let copied = std::fs::create_dir_all(format!("{NEW_ROOT}/run"))
        .and_then(|()| std::fs::copy("/proc/self/exe", &target))
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        });
    if let Err(e) = copied {
        return format!("copy the executor to {target}: {e}");
    }
    // The new root mounts its own; these were only needed to find and mount the disk.
    for m in ["/dev", "/sys", "/proc"] {
        if let Ok(c) = cstr(m) {
            // SAFETY: a valid path; MNT_DETACH never blocks.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let (Ok(dot), Ok(slash), Ok(init), Ok(argv0)) =
        (cstr("."), cstr("/"), cstr(INIT_IN_ROOT), cstr("/init"))
    else {
        return "bad path".into();
    };
    if std::env::set_current_dir(NEW_ROOT).is_err() {
        return format!("chdir {NEW_ROOT}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: plain syscalls on valid strings; what follows runs in the new root.
    unsafe {
        if libc::mount(
            dot.as_ptr(),
            slash.as_ptr(),
            std::ptr::null(),
            libc::MS_MOVE,
            std::ptr::null(),
        ) != 0
        {
            return format!("move {NEW_ROOT} to /: {}", std::io::Error::last_os_error());
        }
        if libc::chroot(dot.as_ptr()) != 0 || libc::chdir(slash.as_ptr()) != 0 {
            return format!("chroot {NEW_ROOT}: {}", std::io::Error::last_os_error());
        }
    }
    std::env::set_var(SWITCHED, "1");
    let argv = [argv0.as_ptr(), std::ptr::null()];
    // SAFETY: a NUL-terminated argv; on success this does not return.
    unsafe { libc::execv(init.as_ptr(), argv.as_ptr()) };
    format!("exec {INIT_IN_ROOT}: {}", std::io::Error::last_os_error())
}

pub fn run() -> i32 {
    mount("proc", "/proc", "proc", 0);
    mount("sysfs", "/sys", "sysfs", 0);
    mount("devtmpfs", "/dev", "devtmpfs", 0);
    if std::env::var_os(SWITCHED).is_none() {
        if let Some(dev) = root_device() {
            println!("kfuzz-init: switching to the root on {dev}");
            let why = switch_root(&dev);
            // Going on in the initramfs would fuzz the wrong guest: stop, loudly.
            eprintln!("kfuzz-init: cannot switch to the root on {dev}: {why}");
            return 1;
        }
    }
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
