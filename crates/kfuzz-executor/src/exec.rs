//! Running programs: a fork server per proc. Each proc keeps its KCOV handles and a shared
//! results area; each program runs in a forked child (fresh IPC namespace, own temp dir, own
//! process group) that maps the data area, enables KCOV and runs the calls: one after the other
//! (a blocking call is interrupted by SIGALRM), or each in a thread of its own (`threaded`), and
//! then once more with pairs of calls racing (`collide`). The parent turns PCs into edge signal
//! and drops what the host already has (the set all procs share).

use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use kfuzz_wire::{
    CallResult, ExecArg, ExecCall, ExecOpts, ExecProg, ExecResult, ExecTiming, Sandbox,
};

use crate::data::{copyin, copyout, data_room, map_data_areas, var, Dirty};
use crate::kcov::{self, Kcov, KcovRef};
use crate::pseudo;
use crate::signal::{call_signal, FastSet};

const MAX_CALLS: usize = 64;
const KCOV_WORDS: usize = 256 << 10;
/// KCOV handles for threaded mode: calls left blocked keep theirs; later calls without a free
/// handle run without coverage.
const THREAD_KCOVS: usize = 4;
/// Comparison operand pairs returned per call, at most.
const MAX_COMPS: usize = 4096;
/// KCOV buffer of each pool handle.
const POOL_WORDS: usize = 64 << 10;
/// Shared header area: a program header, then a slot per call.
const OUT_SIZE: usize = 64 << 10;
const PROG_HEADER: usize = 64;
const MAX_VARS: usize = 1024;

/// What the child writes before and after its calls (CLOCK_MONOTONIC, microseconds).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ProgHeader {
    setup_done_us: u64,
    calls_done_us: u64,
}

/// One call's result. Its PCs stay in the KCOV buffer they were written to: entries
/// `pc_start..pc_start + pc_count` of handle `kcov` (0: the main one, i: pool handle i - 1).
#[repr(C)]
#[derive(Clone, Copy)]
struct CallSlot {
    executed: u32,
    errno: i32,
    ret: i64,
    kcov: u32,
    pc_start: u32,
    pc_count: u32,
}

/// What the procs of one executor share: the signal and PCs already reported to (or sent by)
/// the host.
#[derive(Default)]
pub struct Shared {
    pub signal: Mutex<FastSet<u32>>,
    pcs: Mutex<FastSet<u64>>,
}

/// The fork server of a proc: a small process forked when the proc starts, before this one
/// grows (fork copies page tables, so the smaller the forking process the faster each program
/// starts). It reads programs from `cmd`, forks a child for each, and answers on `done`.
struct Runner {
    pid: libc::pid_t,
    cmd: std::fs::File,
    done: std::fs::File,
}

pub struct Executor {
    proc: u32,
    /// The kernel log: program markers land between the kernel's own lines, with a timestamp.
    kmsg: Option<std::fs::File>,
    kcov: Option<Kcov>,
    /// Handles for the call threads of threaded programs.
    pool: Vec<Kcov>,
    /// Program and call headers, shared with the runner and its children.
    out: *mut u8,
    shared: Arc<Shared>,
    runner: Option<Runner>,
}

fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn pipe() -> Option<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two fds, which the Files then own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return None;
        }
        Some((
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        ))
    }
}

impl Executor {
    pub fn new(proc: u32, shared: Arc<Shared>) -> Executor {
        let kcov_ok = std::path::Path::new(kcov::KCOV_PATH).exists();
        let kcov = kcov_ok.then(|| Kcov::open(KCOV_WORDS).ok()).flatten();
        let pool: Vec<Kcov> = if kcov.is_some() {
            (0..THREAD_KCOVS)
                .filter_map(|_| Kcov::open(POOL_WORDS).ok())
                .collect()
        } else {
            Vec::new()
        };
        for k in kcov.iter().chain(&pool) {
            k.keep_from_forks();
        }
        // SAFETY: an anonymous shared mapping; checked below.
        let out = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                OUT_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let out = if out == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            out.cast()
        };
        let kmsg = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok();
        let mut e = Executor {
            proc,
            kmsg,
            kcov,
            pool,
            out,
            shared,
            runner: None,
        };
        e.runner = e.spawn_runner();
        e
    }

    fn spawn_runner(&self) -> Option<Runner> {
        if self.out.is_null() {
            return None;
        }
        let (cmd_r, cmd_w) = pipe()?;
        let (done_r, done_w) = pipe()?;
        let env = Child {
            out: self.out,
            kcov: self.kcov.as_ref().map(Kcov::raw),
            pool: self.pool.iter().map(Kcov::raw).collect(),
        };
        let dir = format!("/tmp/kfuzz-{}", self.proc);
        // SAFETY: fork; the child only runs the runner loop and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop((cmd_w, done_r));
            // SAFETY: dies with the executor.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let code = env.serve(cmd_r, done_w, &dir);
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        if pid < 0 {
            return None;
        }
        Some(Runner {
            pid,
            cmd: cmd_w,
            done: done_r,
        })
    }

    /// Ends the runner (it is restarted on the next program).
    fn kill_runner(&mut self) {
        if let Some(r) = self.runner.take() {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(r.pid, libc::SIGKILL);
                libc::waitpid(r.pid, std::ptr::null_mut(), 0);
            }
        }
    }

    /// Hands the program to the runner and waits for it. Some(hanged), or None when the runner
    /// failed (it is then restarted).
    fn run_in_runner(&mut self, id: u64, prog: &ExecProg, opts: &ExecOpts) -> Option<bool> {
        use std::io::Read;
        if opts.fresh {
            self.kill_runner();
        }
        if self.runner.is_none() {
            self.runner = self.spawn_runner();
        }
        let r = self.runner.as_mut()?;
        if kfuzz_wire::write_msg(&mut r.cmd, &(id, prog, opts)).is_err() {
            self.kill_runner();
            return None;
        }
        // The runner kills a program at its timeout; this one only guards against the runner.
        let deadline = Instant::now() + Duration::from_millis(opts.timeout_ms.max(100) + 2000);
        loop {
            use std::os::fd::AsRawFd;
            let mut pfd = libc::pollfd {
                fd: r.done.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 200) };
            if n > 0 {
                let mut b = [0u8; 1];
                return match r.done.read(&mut b) {
                    Ok(1) => Some(b[0] != 0),
                    _ => {
                        self.kill_runner();
                        None
                    }
                };
            }
            // SAFETY: checking on our own child.
            let gone = unsafe { libc::waitpid(r.pid, std::ptr::null_mut(), libc::WNOHANG) } != 0;
            if gone {
                self.kill_runner();
                return None;
            }
            // A call the runner could not interrupt: the program hanged.
            if Instant::now() > deadline {
                self.kill_runner();
                return Some(true);
            }
        }
    }

    pub fn run(&mut self, id: u64, prog: &ExecProg, opts: &ExecOpts) -> ExecResult {
        let started = now_us();
        let line = format!("kfuzz: executing program {id} on proc {}\n", self.proc);
        let logged = self
            .kmsg
            .as_mut()
            .is_some_and(|k| k.write_all(line.as_bytes()).is_ok());
        if !logged {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(line.as_bytes());
            let _ = o.flush();
        }
        if self.out.is_null() {
            return ExecResult::default();
        }
        let ncalls = prog.calls.len().min(MAX_CALLS);
        // SAFETY: the headers lie inside the OUT_SIZE mapping.
        unsafe {
            std::ptr::write_bytes(
                self.out,
                0,
                PROG_HEADER + ncalls * std::mem::size_of::<CallSlot>(),
            )
        };
        let hanged = self.run_in_runner(id, prog, opts).unwrap_or(false);
        let mut result = ExecResult {
            hanged,
            ..Default::default()
        };
        let mut seen = match self.shared.signal.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let mut new_pcs: Vec<u64> = Vec::new();
        let mut distinct = FastSet::default();
        let slots = self.out.wrapping_add(PROG_HEADER).cast::<CallSlot>();
        for i in 0..ncalls {
            // SAFETY: slot i is inside the header area the child wrote.
            let slot: CallSlot = unsafe { std::ptr::read_volatile(slots.add(i)) };
            let mut cr = CallResult {
                executed: slot.executed != 0,
                ret: slot.ret,
                errno: slot.errno,
                ..Default::default()
            };
            let k = match slot.kcov {
                0 => self.kcov.as_ref(),
                n => self.pool.get(n as usize - 1),
            };
            if let (true, Some(k), true) = (cr.executed, k, opts.comparisons && slot.kcov == 0) {
                let mut comps = k
                    .raw()
                    .comparisons(slot.pc_start as usize, slot.pc_count as usize);
                comps.sort_unstable();
                comps.dedup();
                comps.truncate(MAX_COMPS);
                cr.comps = comps;
            } else if let (true, Some(k)) = (cr.executed, k) {
                let pcs = k.range(slot.pc_start as usize, slot.pc_count as usize);
                let s = call_signal(pcs, &mut seen, opts.full_signal, &mut distinct);
                cr.signal = s.signal;
                cr.cover = s.cover;
                new_pcs.extend(distinct.iter());
            }
            result.calls.push(cr);
        }
        drop(seen);
        if let Ok(mut known) = self.shared.pcs.lock() {
            new_pcs.sort_unstable();
            new_pcs.dedup();
            result.new_pcs = new_pcs
                .into_iter()
                .filter(|pc| known.insert(*pc) || opts.full_signal)
                .collect();
        }
        // SAFETY: the program header is at the start of the mapping.
        let h: ProgHeader = unsafe { std::ptr::read_volatile(self.out.cast::<ProgHeader>()) };
        let done = now_us();
        if h.setup_done_us >= started && h.calls_done_us >= h.setup_done_us {
            result.timing = ExecTiming {
                setup_us: (h.setup_done_us - started) as u32,
                calls_us: (h.calls_done_us - h.setup_done_us) as u32,
                teardown_us: done.saturating_sub(h.calls_done_us) as u32,
            };
        }
        result
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.kill_runner();
    }
}

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
struct Child {
    out: *mut u8,
    kcov: Option<KcovRef>,
    /// Handles for the call threads (threaded mode), with their slot index (1..).
    pool: Vec<KcovRef>,
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
    fn serve(mut self, cmd: std::fs::File, done: std::fs::File, dir: &str) -> i32 {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // Our fds at 3.. with no holes, everything else closed: after a program, every fd from
        // `first_free` on is the program's.
        let mut next = 3;
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
        close_from(first_free);
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
                close_from(first_free);
            }
            pseudo::after_program(&prog, dir);
            persistent.temp.clean(dir);
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
