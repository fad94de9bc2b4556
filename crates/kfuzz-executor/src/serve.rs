//! The executor: finds the `kfuzz` virtio-serial port, sends the handshake, answers requests.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use kfuzz_wire::{
    read_msg, write_msg, ExecOpts, ExecProg, Features, GuestMsg, Handshake, HostMsg, ProbeResult,
    WireError,
};

use crate::exec::Executor;

use crate::kcov::{self, Kcov};

/// `/dev/vportNpM` whose sysfs name is `kfuzz`; waits for it to appear.
fn find_port(timeout: Duration) -> Option<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in entries.flatten() {
                let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if name.trim() == kfuzz_wire::PORT_NAME {
                    let dev = PathBuf::from("/dev").join(e.file_name());
                    if dev.exists() {
                        return Some(dev);
                    }
                }
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The second UART, wired by kfuzz to its fallback socket.
const FALLBACK_TTY: &str = "/dev/ttyS1";

/// Puts a tty in raw mode so the binary protocol passes untouched.
fn make_raw(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: termios calls on an open fd with a zeroed, then filled, struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(f.as_raw_fd(), &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(f.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn run() -> i32 {
    // A kfuzz-built kernel has the virtio console built in and the port shows up before init
    // runs; other kernels (a distribution's, with virtio_console as a module) get the UART.
    let (port, tty) = match find_port(Duration::from_secs(3)) {
        Some(p) => (p, false),
        None => {
            println!(
                "kfuzz-executor: no virtio-serial port named {:?}, using {FALLBACK_TTY}",
                kfuzz_wire::PORT_NAME
            );
            (PathBuf::from(FALLBACK_TTY), true)
        }
    };
    let chan = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&port);
    if tty {
        if let Ok(f) = &chan {
            if let Err(e) = make_raw(f) {
                eprintln!("kfuzz-executor: raw mode on {FALLBACK_TTY}: {e}");
            }
        }
    }
    let mut chan = match chan {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kfuzz-executor: cannot open {}: {e}", port.display());
            return 1;
        }
    };
    let hello = GuestMsg::Handshake(handshake());
    if let Err(e) = write_msg(&mut chan, &hello) {
        eprintln!("kfuzz-executor: handshake: {e}");
        return 1;
    }
    println!("kfuzz-executor: handshake sent on {}", port.display());
    let writer = match chan.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            eprintln!("kfuzz-executor: cannot clone the channel: {e}");
            return 1;
        }
    };
    // A request in one read(2) instead of two (length, then payload).
    let mut chan = std::io::BufReader::with_capacity(256 << 10, chan);
    let mut procs: Vec<mpsc::Sender<(u64, ExecProg, ExecOpts)>> = Vec::new();
    loop {
        let msg: HostMsg = match read_msg(&mut chan) {
            Ok(m) => m,
            // The host is not connected (yet or any more): wait for it.
            Err(WireError::Closed) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => {
                eprintln!("kfuzz-executor: {e}");
                return 1;
            }
        };
        let reply = match msg {
            HostMsg::Command { argv, timeout_ms } => {
                run_command(&argv, Duration::from_millis(timeout_ms))
            }
            HostMsg::CoverageProbe => GuestMsg::CoverageProbe(coverage_probe()),
            HostMsg::Exec {
                id,
                proc,
                prog,
                opts,
            } => {
                let p = (proc as usize).min(MAX_PROCS - 1);
                while procs.len() <= p {
                    procs.push(spawn_proc(procs.len() as u32, Arc::clone(&writer)));
                }
                if procs[p].send((id, prog, opts)).is_err() {
                    eprintln!("kfuzz-executor: proc {p} is gone");
                    return 1;
                }
                continue;
            }
            HostMsg::RawLoop { millis } => raw_loop(millis),
            HostMsg::WriteFile { path, data, mode } => write_file(&path, &data, mode),
            HostMsg::CheckSupport(checks) => GuestMsg::Support(crate::support::check(&checks)),
            HostMsg::Mark { text } => mark(&text),
            HostMsg::Shutdown => {
                println!("kfuzz-executor: shutting down");
                // A reboot, not a power-off: QEMU runs with -no-reboot and exits on it, and it
                // works on kernels without ACPI (kfuzz's minimal base), where power-off halts.
                // SAFETY: sync and reboot(2) take no pointers.
                unsafe {
                    libc::sync();
                    libc::reboot(libc::RB_AUTOBOOT);
                }
                return 0;
            }
        };
        if let Err(e) = send(&writer, &reply) {
            eprintln!("kfuzz-executor: reply: {e}");
            return 1;
        }
    }
}

/// Procs a host may ask for; a larger index runs on the last one.
const MAX_PROCS: usize = 32;

fn send(writer: &Mutex<std::fs::File>, msg: &GuestMsg) -> Result<(), WireError> {
    let mut w = match writer.lock() {
        Ok(w) => w,
        Err(p) => p.into_inner(),
    };
    write_msg(&mut *w, msg)
}

/// A worker thread with its own fork server; its replies share the channel.
fn spawn_proc(
    index: u32,
    writer: Arc<Mutex<std::fs::File>>,
) -> mpsc::Sender<(u64, ExecProg, ExecOpts)> {
    let (tx, rx) = mpsc::channel::<(u64, ExecProg, ExecOpts)>();
    std::thread::spawn(move || {
        let mut executor = Executor::new(index);
        for (id, prog, opts) in rx {
            let result = executor.run(id, &prog, &opts);
            let reply = GuestMsg::ExecDone {
                proc: index,
                result,
            };
            if let Err(e) = send(&writer, &reply) {
                eprintln!("kfuzz-executor: reply from proc {index}: {e}");
                std::process::exit(1);
            }
        }
    });
    tx
}

/// See `HostMsg::Mark`: one line in the kernel log (it is on the console too).
fn mark(text: &str) -> GuestMsg {
    use std::io::Write;
    let line = format!("{}\n", text.replace('\n', " "));
    match std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .and_then(|mut k| k.write_all(line.as_bytes()))
    {
        Ok(()) => GuestMsg::Marked,
        Err(e) => GuestMsg::Error(format!("cannot write /dev/kmsg: {e}")),
    }
}

fn write_file(path: &str, data: &[u8], mode: u32) -> GuestMsg {
    use std::os::unix::fs::PermissionsExt;
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let r = std::fs::write(p, data)
        .and_then(|()| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)));
    match r {
        Ok(()) => GuestMsg::CommandDone {
            status: Some(0),
            signal: None,
            timed_out: false,
            stdout: Vec::new(),
            stderr: Vec::new(),
        },
        Err(e) => GuestMsg::Error(format!("cannot write {path}: {e}")),
    }
}

fn handshake() -> Handshake {
    // SAFETY: uname/sysinfo fill plain structs.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let memory_kib = unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        libc::sysinfo(&mut si);
        si.totalram as u64 * si.mem_unit as u64 / 1024
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let exists = |p: &str| std::path::Path::new(p).exists();
    let kcov = exists(kcov::KCOV_PATH);
    let features = Features {
        kcov,
        kcov_trace_cmp: kcov && kcov::supports(kcov::KCOV_TRACE_CMP),
        kasan: kernel_log().contains("KernelAddressSanitizer initialized"),
        lockdep: exists("/proc/lockdep"),
        user_namespaces: exists("/proc/self/ns/user"),
        fault_injection: exists("/proc/self/make-it-fail") || exists("/sys/kernel/debug/failslab"),
        lkdtm: exists("/sys/kernel/debug/provoke-crash/DIRECT"),
    };
    Handshake {
        protocol: kfuzz_wire::PROTOCOL_VERSION,
        release,
        cpus,
        memory_kib,
        features,
    }
}

/// The kernel ring buffer (syslog(2) READ_ALL), as text.
fn kernel_log() -> String {
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as libc::c_int) };
    if n <= 0 {
        return String::new();
    }
    buf.truncate(n as usize);
    String::from_utf8_lossy(&buf).into_owned()
}

fn run_command(argv: &[String], timeout: Duration) -> GuestMsg {
    let Some((prog, args)) = argv.split_first() else {
        return GuestMsg::Error("empty command".into());
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/tmp")
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return GuestMsg::Error(format!("cannot run {prog}: {e}")),
    };
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = child.stdout.take().map(|s| collect(Box::new(s)));
    let err = child.stderr.take().map(|s| collect(Box::new(s)));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    use std::os::unix::process::ExitStatusExt;
    GuestMsg::CommandDone {
        status: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout: out.and_then(|h| h.join().ok()).unwrap_or_default(),
        stderr: err.and_then(|h| h.join().ok()).unwrap_or_default(),
    }
}

/// KCOV on this thread around getppid + pipe/write/read/close; distinct PCs.
fn coverage_probe() -> Result<ProbeResult, String> {
    if !std::path::Path::new(kcov::KCOV_PATH).exists() {
        return Err(format!(
            "this kernel has no KCOV ({} is missing: CONFIG_KCOV is off)",
            kcov::KCOV_PATH
        ));
    }
    let k = Kcov::open(256 << 10).map_err(|e| format!("cannot open {}: {e}", kcov::KCOV_PATH))?;
    k.enable(kcov::KCOV_TRACE_PC)
        .map_err(|e| format!("KCOV_ENABLE: {e}"))?;
    // SAFETY: plain syscalls on our own fds and stack buffers.
    unsafe {
        libc::getppid();
        let mut fds = [0 as libc::c_int; 2];
        if libc::pipe(fds.as_mut_ptr()) == 0 {
            let msg = b"kfuzz";
            libc::write(fds[1], msg.as_ptr().cast(), msg.len());
            let mut buf = [0u8; 8];
            libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
    let pcs = k.pcs();
    let _ = k.disable();
    let distinct: HashSet<u64> = pcs.iter().copied().collect();
    Ok(ProbeResult {
        distinct_pcs: distinct.len() as u64,
        total_pcs: pcs.len() as u64,
        syscalls: ["getppid", "pipe", "write", "read", "close"]
            .map(String::from)
            .to_vec(),
    })
}

/// See `HostMsg::RawLoop`.
fn raw_loop(millis: u64) -> GuestMsg {
    let k = Kcov::open(64 << 10)
        .ok()
        .filter(|k| k.enable(kcov::KCOV_TRACE_PC).is_ok());
    let start = std::time::Instant::now();
    let mut iterations = 0u64;
    let mut buf = [0u8; 16];
    while start.elapsed() < Duration::from_millis(millis) {
        if let Some(k) = &k {
            k.reset();
        }
        // SAFETY: plain syscalls on our own fds, stack buffers and a fresh segment.
        unsafe {
            libc::getpid();
            let mut fds = [0 as libc::c_int; 2];
            if libc::pipe(fds.as_mut_ptr()) == 0 {
                libc::write(fds[1], b"kfuzz".as_ptr().cast(), 5);
                libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            let id = libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600);
            if id >= 0 {
                let addr = libc::shmat(id, std::ptr::null(), 0);
                if addr as isize != -1 {
                    libc::shmdt(addr);
                }
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        }
        if let Some(k) = &k {
            std::hint::black_box(k.pcs().len());
        }
        iterations += 1;
    }
    if let Some(k) = &k {
        let _ = k.disable();
    }
    GuestMsg::RawLoopDone {
        iterations,
        millis: start.elapsed().as_millis() as u64,
        kcov: k.is_some(),
    }
}
