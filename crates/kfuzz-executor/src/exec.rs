//! Running programs, the executor's side: a fork server (`runner`) per proc, with its KCOV
//! handles and a results area shared with it. The executor hands the runner each program,
//! waits for it (killing a runner that hangs), then reads the calls' results and PCs and sends
//! the PCs as they are: the host turns them into signal, natively, where under TCG the guest
//! took milliseconds. The console marker before each program is written here; how programs
//! run is `runner`'s business.
use std::io::Write;
use std::time::{Duration, Instant};

use kfuzz_wire::{CallResult, ExecOpts, ExecProg, ExecResult, ExecTiming};

use crate::kcov::{self, Kcov};
use crate::runner::Child;

pub(crate) use kfuzz_wire::MAX_CALLS;
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
pub(crate) const PROG_HEADER: usize = 64;
pub(crate) const MAX_VARS: usize = 1024;

/// What the child writes before and after its calls (CLOCK_MONOTONIC, microseconds).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ProgHeader {
    pub(crate) setup_done_us: u64,
    pub(crate) calls_done_us: u64,
    pub(crate) cleanup_done_us: u64,
    pub(crate) received_us: u64,
}

/// One call's result. Its PCs stay in the KCOV buffer they were written to: entries
/// `pc_start..pc_start + pc_count` of handle `kcov` (0: the main one, i: pool handle i - 1).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CallSlot {
    pub(crate) executed: u32,
    pub(crate) errno: i32,
    pub(crate) ret: i64,
    pub(crate) kcov: u32,
    pub(crate) pc_start: u32,
    pub(crate) pc_count: u32,
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
    runner: Option<Runner>,
}

pub(crate) fn now_us() -> u64 {
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
    pub fn new(proc: u32) -> Executor {
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
        let line = kfuzz_wire::program_marker_line(id, self.proc);
        let logged = self
            .kmsg
            .as_mut()
            .is_some_and(|k| k.write_all(line.as_bytes()).is_ok());
        if !logged {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(line.as_bytes());
            let _ = o.flush();
        }
        let marked = now_us();
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
                cr.pcs = pcs_as_bytes(pcs);
            }
            result.calls.push(cr);
        }
        // SAFETY: the program header is at the start of the mapping.
        let h: ProgHeader = unsafe { std::ptr::read_volatile(self.out.cast::<ProgHeader>()) };
        let done = now_us();
        if h.setup_done_us >= started && h.calls_done_us >= h.setup_done_us {
            result.timing = ExecTiming {
                setup_us: (h.setup_done_us - started) as u32,
                calls_us: (h.calls_done_us - h.setup_done_us) as u32,
                teardown_us: done.saturating_sub(h.calls_done_us) as u32,
                marker_us: marked.saturating_sub(started) as u32,
                handoff_us: h.received_us.saturating_sub(marked) as u32,
                cleanup_us: h.cleanup_done_us.saturating_sub(h.calls_done_us) as u32,
            };
        }
        result
    }
}

/// `signal::pcs_to_bytes` as one copy: the buffer already is little-endian u64s on x86.
#[cfg(target_endian = "little")]
fn pcs_as_bytes(pcs: &[u64]) -> Vec<u8> {
    // SAFETY: any u64 is 8 plain bytes; the slice covers exactly the u64s' memory.
    unsafe { std::slice::from_raw_parts(pcs.as_ptr().cast::<u8>(), std::mem::size_of_val(pcs)) }
        .to_vec()
}

#[cfg(not(target_endian = "little"))]
fn pcs_as_bytes(pcs: &[u64]) -> Vec<u8> {
    kfuzz_wire::signal::pcs_to_bytes(pcs)
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.kill_runner();
    }
}
