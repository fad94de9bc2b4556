//! `kfuzz-executor microbench` (run it in a guest with `kfuzz boot -- /init microbench`): what
//! each step of running a program costs in this guest, for tuning the fork server.

use std::time::Instant;

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name:>34}: {:>9.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

fn fork_with(child: impl Fn()) {
    // SAFETY: fork; the child runs `child` and leaves with _exit; the parent reaps it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            child();
            libc::_exit(0);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
}

pub fn run() -> i32 {
    let n = 50;
    time("getpid", 1000, || {
        // SAFETY: no arguments.
        unsafe { libc::getpid() };
    });
    time("setitimer (arm + disarm)", 1000, || {
        let mut it: libc::itimerval = unsafe { std::mem::zeroed() };
        it.it_value.tv_usec = 20_000;
        // SAFETY: setitimer with valid structs; disarmed right after.
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut());
            it.it_value.tv_usec = 0;
            libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut());
        }
    });
    time("fork+exit+wait", n, || fork_with(|| {}));
    time("fork+unshare(ipc)+exit+wait", n, || {
        // SAFETY: a flag-only syscall in the child.
        fork_with(|| unsafe {
            libc::unshare(libc::CLONE_NEWIPC);
        })
    });
    if let Ok(k) = crate::kcov::Kcov::open(256 << 10) {
        time("KCOV enable + disable", 200, || {
            let _ = k.enable(crate::kcov::KCOV_TRACE_PC);
            let _ = k.disable();
        });
        time("fork+exit, 2 MiB KCOV mapped", n, || fork_with(|| {}));
        k.keep_from_forks();
        time("same, keep_from_forks", n, || fork_with(|| {}));
    }
    let heap = vec![1u8; 16 << 20];
    std::hint::black_box(&heap);
    time("fork+exit, 16 MiB heap touched", n, || fork_with(|| {}));
    drop(heap);
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .ok();
    time("write /dev/kmsg", n, || {
        use std::io::Write;
        if let Some(k) = kmsg.as_mut() {
            let _ = k.write_all(kfuzz_wire::program_marker_line(123_456, 0).as_bytes());
        }
    });
    time("clock_gettime", 1000, || {
        std::hint::black_box(std::time::Instant::now());
    });
    time("mkdir+rmdir in /tmp", n, || {
        let _ = std::fs::create_dir_all("/tmp/microbench");
        let _ = std::fs::remove_dir_all("/tmp/microbench");
    });
    time("shmget+shmctl(IPC_RMID)", n, || {
        // SAFETY: plain IPC syscalls with no user pointers.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600);
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    });
    0
}
