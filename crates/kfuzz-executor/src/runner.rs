//! The runner (a proc's fork server) and the programs it runs: in itself when they can
//! (persistent mode, undoing what each leaves behind) or in a forked child (threaded,
//! colliding, comparison and sandboxed programs). It writes each call's outcome into the
//! shared header area; it never talks to the host.

use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use kfuzz_wire::{ExecArg, ExecCall, ExecOpts, ExecProg, Sandbox};

use crate::data::{copyin, copyout, data_room, map_data_areas, var, Dirty};
use crate::exec::{now_us, CallSlot, ProgHeader, MAX_CALLS, MAX_VARS, PROG_HEADER};
use crate::kcov::{self, KcovRef};
use crate::pseudo;

/// Waits for the child to exit; on timeout kills it. Returns false when it had to be killed.
/// Sleeps in poll(2) on a pidfd (Linux 5.3+), else polls waitpid.
fn wait_child(pid: libc::pid_t, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // SAFETY: pidfd_open on our own child; the fd is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    let mut status = 0;
    let exited = loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || r < 0 {
            break true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        if pidfd >= 0 {
            let mut pfd = libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as libc::c_int + 1) };
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    if !exited {
        // SAFETY: killing the child's process group, then reaping it.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
    if pidfd >= 0 {
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(pidfd) };
    }
    exited
}

/// The runner and its forked programs: what they may touch of the executor. The KCOV handles
/// are mapped in their first page only (see `Kcov::keep_from_forks`).
pub(crate) struct Child {
    pub(crate) out: *mut u8,
    pub(crate) kcov: Option<KcovRef>,
    /// Handles for the call threads (threaded mode), with their slot index (1..).
    pub(crate) pool: Vec<KcovRef>,
}

/// What one call did, and where its PCs are: (handle index, first entry, count).
struct Outcome {
    ret: i64,
    errno: i32,
    pcs: Option<(u32, u32, u32)>,
}

fn syscall(nr: u64, a: &pseudo::Args) -> (i64, i32) {
    if let Some(p) = kfuzz_wire::PseudoCall::from_nr(nr) {
        return pseudo::run(p, a);
    }
    // SAFETY: the fuzzed syscall itself; arguments are whatever the program says.
    let ret = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    let errno = if ret == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    (ret as i64, errno)
}

type Pool = Arc<Mutex<Vec<(u32, KcovRef)>>>;

/// Runs one call on a thread of its own; the outcome arrives on the returned channel, unless
/// the call blocks for good. None when no thread could be made.
fn spawn_call(nr: u64, a: pseudo::Args, pool: Option<Pool>) -> Option<mpsc::Receiver<Outcome>> {
    let (tx, rx) = mpsc::channel();
    let give_back = |pool: &Option<Pool>, k: (u32, KcovRef)| {
        if let Some(Ok(mut p)) = pool.as_ref().map(|p| p.lock()) {
            p.push(k);
        }
    };
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let k = match pool.as_ref().and_then(|p| p.lock().ok()?.pop()) {
                Some(k) if k.1.enable(kcov::KCOV_TRACE_PC).is_ok() => Some(k),
                Some(k) => {
                    give_back(&pool, k);
                    None
                }
                None => None,
            };
            let start = k.map(|k| k.1.count());
            let (ret, errno) = syscall(nr, &a);
            let mut pcs = None;
            if let (Some(k), Some(start)) = (k, start) {
                let end = k.1.count();
                let _ = k.1.disable();
                pcs = Some((k.0, start as u32, end.saturating_sub(start) as u32));
                give_back(&pool, k);
            }
            let _ = tx.send(Outcome { ret, errno, pcs });
        })
        .ok()
        .map(|_| rx)
}

impl Child {
    /// The runner's loop: a program from `cmd`, run, a byte on `done` (1 when it hanged and
    /// was killed).
    ///
    /// Most programs run right here, in this process ("persistent" mode): under TCG a fork and
    /// exit cost ~12 ms, several times what a short program's calls cost. What a program leaves
    /// behind is undone after it: its fds closed, its IPC objects removed and segments
    /// detached, its mappings outside the data area unmapped, the data areas it pointed at
    /// wiped (see `Dirty`), brk restored and children reaped when it moved or forked, the temp
    /// dir emptied (triage's three runs check that the signal is stable in spite of what may
    /// remain). Every syscall here costs ~0.3 ms under TCG, so none is made that the program
    /// did not call for, and KCOV is on for the calls alone. Threaded or colliding programs and
    /// sandboxed ones run in a forked child instead. A program that kills the runner is reported with the calls it finished;
    /// the executor starts a new runner.
    pub(crate) fn serve(mut self, cmd: std::fs::File, done: std::fs::File, dir: &str) -> i32 {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // Our fds at `OWN_FDS`.. with no holes, everything else closed: after a program, every
        // fd from 3 up to ours and from `first_free` on is the program's.
        let mut next = OWN_FDS;
        let mut keep = |fd: libc::c_int| {
            let to = next;
            next += 1;
            // SAFETY: dup2 onto a number we own from now on.
            if fd != to && unsafe { libc::dup2(fd, to) } < 0 {
                // SAFETY: exiting the runner; the executor starts another.
                unsafe { libc::_exit(4) };
            }
            to
        };
        let (cmd_fd, done_fd) = (keep(cmd.into_raw_fd()), keep(done.into_raw_fd()));
        self.kcov = self.kcov.map(|k| k.with_fd(keep(k.fd())));
        self.pool = self.pool.iter().map(|k| k.with_fd(keep(k.fd()))).collect();
        // A number kept for the tap device of `syz_emit_ethernet`, made when a program needs it.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            pseudo::reserve_tap_fd(keep(null.into_raw_fd()));
        }
        let first_free = next as libc::c_uint;
        close_programs_fds(first_free);
        // SAFETY: the fds were dup2'ed above and are owned by these Files alone.
        let (cmd, mut done) = unsafe {
            (
                std::fs::File::from_raw_fd(cmd_fd),
                std::fs::File::from_raw_fd(done_fd),
            )
        };
        // A request in one read(2) instead of two (length, then payload).
        let mut cmd = std::io::BufReader::with_capacity(256 << 10, cmd);
        let _ = std::fs::create_dir_all(dir);
        let mut persistent = Persistent::default();
        loop {
            let (_id, prog, opts): (u64, ExecProg, ExecOpts) = match kfuzz_wire::read_msg(&mut cmd)
            {
                Ok(m) => m,
                Err(_) => return 0,
            };
            let header = self.out.cast::<ProgHeader>();
            // SAFETY: the program header is at the start of the shared mapping.
            unsafe { (*header).received_us = now_us() };
            pseudo::before_program(&prog);
            let fresh =
                opts.threaded || opts.collide || opts.comparisons || opts.sandbox != Sandbox::None;
            let mut hanged = false;
            if fresh {
                // SAFETY: fork; the child only runs the program and exits.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let code = self.run(&prog, &opts, dir);
                    // SAFETY: leave without unwinding into the runner's loop.
                    unsafe { libc::_exit(code) };
                }
                if pid > 0 {
                    hanged = !wait_child(pid, Duration::from_millis(opts.timeout_ms.max(100)));
                    // Whatever the program forked dies with it.
                    // SAFETY: kill(2) on the child's group.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
            } else {
                self.run_here(&prog, opts.call_timeout_ms, dir, &mut persistent);
                close_programs_fds(first_free);
            }
            pseudo::after_program(&prog, dir);
            persistent.temp.clean(dir);
            // SAFETY: the program header is at the start of the shared mapping.
            unsafe { (*header).cleanup_done_us = now_us() };
            if done.write_all(&[u8::from(hanged)]).is_err() {
                return 0;
            }
        }
    }

    /// Runs a program in the runner itself (see `serve`).
    fn run_here(&self, prog: &ExecProg, call_timeout_ms: u64, dir: &str, st: &mut Persistent) {
        if !st.ready {
            // SAFETY: plain syscalls configuring the runner, once.
            unsafe {
                libc::unshare(libc::CLONE_NEWIPC);
                if let Ok(c) = std::ffi::CString::new(dir) {
                    libc::chdir(c.as_ptr());
                }
            }
            install_alarm();
            st.ready = true;
        }
        if !st.dirty.wipe() {
            return;
        }
        // The break and children matter only to programs that move it or fork: each syscall
        // saved is ~0.3 ms under TCG.
        let calls_one_of = |nrs: &[libc::c_long]| {
            prog.calls
                .iter()
                .any(|c| nrs.contains(&(c.nr as libc::c_long)))
        };
        let moves_brk = calls_one_of(&[libc::SYS_brk]);
        let forks = calls_one_of(&[
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_vfork,
        ]);
        // SAFETY: brk(0) only reads the break.
        let brk = moves_brk.then(|| unsafe { libc::syscall(libc::SYS_brk, 0) });
        // KCOV traces the calls alone: traced, the runner's own syscalls around them (the
        // data area wipe above all, a page table walk) cost several times as much.
        let kcov = self.kcov.filter(|k| k.enable(kcov::KCOV_TRACE_PC).is_ok());
        if let Some(k) = kcov {
            k.reset();
        }
        let header = self.out.cast::<ProgHeader>();
        // SAFETY: the program header is at the start of the shared mapping.
        unsafe { (*header).setup_done_us = now_us() };
        let mut left = Leftovers::default();
        let mut vars = vec![None::<u64>; MAX_VARS];
        for (i, call) in prog.calls.iter().take(MAX_CALLS).enumerate() {
            copyin(call, &vars);
            let a = args(call, &vars);
            let outcome = plain_call(call.nr, &a, kcov, call_timeout_ms);
            st.dirty.note_call(call, &a, &vars, outcome.ret);
            self.record(i, &outcome);
            if outcome.ret != -1 {
                left.note(call.nr, &a, outcome.ret);
                copyout(call, &mut vars, outcome.ret);
            }
        }
        // SAFETY: as above.
        unsafe { (*header).calls_done_us = now_us() };
        if let Some(k) = kcov {
            let _ = k.disable();
        }
        left.undo();
        if let Some(brk) = brk {
            // SAFETY: restoring the break the runner had.
            unsafe { libc::syscall(libc::SYS_brk, brk) };
        }
        // Children a program made (none of our descriptions fork, other descriptions may).
        // SAFETY: reaping without blocking.
        while forks && unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }

    fn run(&self, prog: &ExecProg, opts: &ExecOpts, dir: &str) -> i32 {
        if let Err(code) = setup(opts, dir) {
            return code;
        }
        let threaded = opts.threaded || opts.collide;
        if !threaded {
            install_alarm();
        }
        for k in self.kcov.iter().chain(&self.pool) {
            k.reset();
        }
        let mode = if opts.comparisons {
            kcov::KCOV_TRACE_CMP
        } else {
            kcov::KCOV_TRACE_PC
        };
        let kcov = if threaded {
            None
        } else {
            self.kcov.filter(|k| k.enable(mode).is_ok())
        };
        let pool: Pool = Arc::new(Mutex::new(
            self.pool
                .iter()
                .enumerate()
                .map(|(i, k)| (i as u32 + 1, *k))
                .collect(),
        ));
        let header = self.out.cast::<ProgHeader>();
        // SAFETY: the program header is at the start of the shared mapping.
        unsafe { (*header).setup_done_us = now_us() };
        let call_timeout = Duration::from_millis(opts.call_timeout_ms.max(1));
        let mut vars = vec![None::<u64>; MAX_VARS];
        for (i, call) in prog.calls.iter().take(MAX_CALLS).enumerate() {
            copyin(call, &vars);
            let a = args(call, &vars);
            let outcome = if threaded {
                match spawn_call(call.nr, a, Some(Arc::clone(&pool))) {
                    // A call still blocked after the timeout is left behind.
                    Some(rx) => match rx.recv_timeout(call_timeout) {
                        Ok(o) => o,
                        Err(_) => continue,
                    },
                    None => plain_call(call.nr, &a, None, 0),
                }
            } else {
                plain_call(call.nr, &a, kcov, opts.call_timeout_ms)
            };
            self.record(i, &outcome);
            if outcome.ret != -1 {
                copyout(call, &mut vars, outcome.ret);
            }
        }
        if opts.collide {
            collide(prog, &mut vars, call_timeout);
        }
        // SAFETY: as above.
        unsafe { (*header).calls_done_us = now_us() };
        0
    }

    /// Writes call `i`'s slot into the shared area.
    fn record(&self, i: usize, o: &Outcome) {
        let (kcov, pc_start, pc_count) = o.pcs.unwrap_or((0, 0, 0));
        let slot = CallSlot {
            executed: 1,
            errno: o.errno,
            ret: o.ret,
            kcov,
            pc_start,
            pc_count,
        };
        // SAFETY: slot i is inside the shared header area (i < MAX_CALLS).
        unsafe {
            let slots = self.out.add(PROG_HEADER).cast::<CallSlot>();
            std::ptr::write_volatile(slots.add(i), slot);
        }
    }
}

/// A call on this thread, interrupted by SIGALRM after `timeout_ms` (0: never).
fn plain_call(nr: u64, a: &pseudo::Args, kcov: Option<KcovRef>, timeout_ms: u64) -> Outcome {
    let start = kcov.map(|k| k.count());
    if timeout_ms > 0 {
        arm(Duration::from_millis(timeout_ms));
    }
    let (ret, errno) = syscall(nr, a);
    if timeout_ms > 0 {
        arm(Duration::ZERO);
    }
    let pcs = match (kcov, start) {
        (Some(k), Some(start)) => Some((0, start as u32, k.count().saturating_sub(start) as u32)),
        _ => None,
    };
    Outcome { ret, errno, pcs }
}

/// The runner's state in persistent mode.
#[derive(Default)]
struct Persistent {
    /// Namespaces, cwd and signal handler set up.
    ready: bool,
    /// What programs did to the data areas since they were last wiped.
    dirty: Dirty,
    /// The proc's temp dir.
    temp: TempDir,
}

/// What a program made that outlives it in a persistent runner (fds aside: all closed).
#[derive(Default)]
struct Leftovers {
    ipc: Vec<(libc::c_long, i64)>,
    attached: Vec<i64>,
    mapped: Vec<(i64, u64)>,
    mlocked: bool,
}

impl Leftovers {
    fn note(&mut self, nr: u64, a: &pseudo::Args, ret: i64) {
        let nr = nr as libc::c_long;
        let outside = |addr: i64| data_room(addr as u64).is_none();
        match nr {
            libc::SYS_shmget | libc::SYS_msgget | libc::SYS_semget => self.ipc.push((nr, ret)),
            libc::SYS_shmat => self.attached.push(ret),
            libc::SYS_mmap if outside(ret) => self.mapped.push((ret, a[1])),
            libc::SYS_mremap if outside(ret) => self.mapped.push((ret, a[2])),
            libc::SYS_mlockall => self.mlocked = true,
            _ => {}
        }
    }

    fn undo(&mut self) {
        // SAFETY: undoing what the program's own calls returned; errors are ignored (a later
        // call of the program may already have undone it).
        unsafe {
            for &addr in &self.attached {
                libc::shmdt(addr as *const libc::c_void);
            }
            for &(nr, id) in &self.ipc {
                let id = id as libc::c_int;
                match nr {
                    libc::SYS_shmget => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                    libc::SYS_msgget => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                    _ => libc::semctl(id, 0, libc::IPC_RMID),
                };
            }
            for &(addr, len) in &self.mapped {
                libc::munmap(addr as *mut libc::c_void, len as usize);
            }
            if self.mlocked {
                libc::munlockall();
            }
        }
    }
}

/// Closes every fd from `first` on.
/// Where the runner keeps its own fds (the command and done pipes, the KCOV handles): far above
/// the numbers programs use. A mutated fd is a small number, and at 3..7 the runner's fds were
/// there to be hit: a program could write into the done pipe, read the next command, or map
/// KCOV's buffer over its data area (and its arguments then over KCOV's count).
const OWN_FDS: libc::c_int = 200;

/// Closes every fd but 0-2 and the runner's own (`OWN_FDS` up to `first_free`).
fn close_programs_fds(first_free: libc::c_uint) {
    // SAFETY: close_range(2) on numbers below ours; the fallback closes them one by one.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, OWN_FDS as u32 - 1, 0) != 0 {
            for fd in 3..OWN_FDS {
                libc::close(fd);
            }
        }
    }
    close_from(first_free);
}

fn close_from(first: libc::c_uint) {
    // SAFETY: close_range(2) (Linux 5.9+) on fds we no longer want; the fallback closes them
    // one by one.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
            for fd in first..1024 {
                libc::close(fd as libc::c_int);
            }
        }
    }
}

/// The proc's temp dir, which a program may fill and the runner empties after it. The dir
/// itself stays: it is the persistent runner's working directory.
#[derive(Default)]
struct TempDir {
    /// On tmpfs a directory's size counts its entries: (size, links) as they were when the dir
    /// was last found empty; a dir that still shows them needs no listing.
    empty: Option<(i64, u64)>,
}

/// tmpfs's `f_type` (statfs(2)).
const TMPFS_MAGIC: i64 = 0x0102_1994;

impl TempDir {
    /// Empties `dir` when the program left something in it.
    fn clean(&mut self, dir: &str) {
        let Ok(c) = std::ffi::CString::new(dir) else {
            return;
        };
        // SAFETY: stat fills a zeroed struct from a valid C string.
        let shape = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::stat(c.as_ptr(), &mut st) == 0).then_some((st.st_size, st.st_nlink))
        };
        if shape.is_some() && shape == self.empty {
            return;
        }
        self.empty = None;
        let Ok(entries) = std::fs::read_dir(dir) else {
            let _ = std::fs::create_dir_all(dir);
            return;
        };
        let mut left = false;
        for e in entries.flatten() {
            left |= match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(e.path()),
                _ => std::fs::remove_file(e.path()),
            }
            .is_err();
        }
        if left {
            return;
        }
        // SAFETY: statfs and stat fill zeroed structs from a valid C string.
        unsafe {
            let mut fs: libc::statfs = std::mem::zeroed();
            let mut st: libc::stat = std::mem::zeroed();
            if libc::statfs(c.as_ptr(), &mut fs) == 0
                && fs.f_type as i64 == TMPFS_MAGIC
                && libc::stat(c.as_ptr(), &mut st) == 0
            {
                self.empty = Some((st.st_size, st.st_nlink));
            }
        }
    }
}

/// The second run of `collide`: calls two at a time, concurrently, without coverage.
fn collide(prog: &ExecProg, vars: &mut [Option<u64>], timeout: Duration) {
    let calls: Vec<&ExecCall> = prog.calls.iter().take(MAX_CALLS).collect();
    for pair in calls.chunks(2) {
        let mut waits = Vec::new();
        for call in pair {
            copyin(call, vars);
            let a = args(call, vars);
            waits.push((call, spawn_call(call.nr, a, None)));
        }
        for (call, rx) in waits {
            if let Some(Ok(o)) = rx.map(|rx| rx.recv_timeout(timeout)) {
                if o.ret != -1 {
                    copyout(call, vars, o.ret);
                }
            }
        }
    }
}

/// Process setup in the child: process group, namespaces, data area, temp dir, credentials.
fn setup(opts: &ExecOpts, dir: &str) -> Result<(), i32> {
    // SAFETY: plain syscalls configuring this (child) process.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // A fresh IPC namespace: whatever the program creates vanishes with it.
        let mut flags = libc::CLONE_NEWIPC;
        if opts.sandbox == Sandbox::Namespace {
            flags |= libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWUTS;
        }
        libc::unshare(flags);
        if opts.sandbox == Sandbox::Namespace {
            libc::unshare(libc::CLONE_NEWUSER);
        }
        if !map_data_areas() {
            return Err(3);
        }
        if let Ok(c) = std::ffi::CString::new(dir) {
            libc::chdir(c.as_ptr());
        }
        if opts.sandbox == Sandbox::Setuid {
            libc::setgroups(0, std::ptr::null());
            libc::setresgid(65534, 65534, 65534);
            libc::setresuid(65534, 65534, 65534);
        }
    }
    Ok(())
}

/// A SIGALRM with a handler that does nothing, installed without SA_RESTART, interrupts a
/// blocking syscall: the call returns EINTR and the program goes on.
fn install_alarm() {
    extern "C" fn on_alarm(_: libc::c_int) {}
    // SAFETY: installing a handler that does nothing; sigaction is given a zeroed struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
    }
}

/// Arms (or with zero, disarms) the one-shot SIGALRM timer.
fn arm(t: Duration) {
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        },
    };
    // SAFETY: setitimer with a valid struct.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

fn args(call: &ExecCall, vars: &[Option<u64>]) -> pseudo::Args {
    let mut a: pseudo::Args = [0; kfuzz_wire::PSEUDO_MAX_ARGS];
    for (j, arg) in call.args.iter().take(a.len()).enumerate() {
        a[j] = match arg {
            ExecArg::Const(v) => *v,
            ExecArg::Var { var: v, default } => var(vars, *v, *default),
        };
    }
    a
}
