//! Running programs: a fork server. The parent keeps one KCOV handle and a shared results area;
//! each program runs in a forked child (fresh IPC namespace, own temp dir, own process group)
//! that maps the data area, enables KCOV on itself and runs the calls one by one. The parent
//! turns PCs into edge signal and filters out what it has already reported.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use kfuzz_wire::{CallResult, CopyValue, ExecArg, ExecOpts, ExecProg, ExecResult, Sandbox};

use crate::kcov::{self, Kcov};

/// Where the host puts pointer arguments (kfuzz_prog::prog::DATA_BASE / DATA_SIZE).
const DATA_BASE: u64 = 0x2000_0000;
const DATA_SIZE: usize = 16 << 20;
const MAX_CALLS: usize = 64;
const KCOV_WORDS: usize = 256 << 10;
/// Results area: a header per call, then the PCs.
const OUT_SIZE: usize = 32 << 20;
const MAX_VARS: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy)]
struct CallSlot {
    executed: u32,
    errno: i32,
    ret: i64,
    pc_off: u32,
    pc_count: u32,
}

pub struct Executor {
    /// The kernel log: program markers land between the kernel's own lines, with a timestamp.
    kmsg: Option<std::fs::File>,
    kcov: Option<Kcov>,
    out: *mut u8,
    seen_signal: HashSet<u32>,
    seen_pcs: HashSet<u64>,
}

impl Executor {
    pub fn new() -> Executor {
        let kcov = if std::path::Path::new(kcov::KCOV_PATH).exists() {
            Kcov::open(KCOV_WORDS).ok()
        } else {
            None
        };
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
        Executor {
            kmsg,
            kcov,
            out,
            seen_signal: HashSet::new(),
            seen_pcs: HashSet::new(),
        }
    }

    pub fn run(&mut self, id: u64, prog: &ExecProg, opts: &ExecOpts) -> ExecResult {
        let line = format!("kfuzz: executing program {id}\n");
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
        // SAFETY: the header area lies inside the OUT_SIZE mapping.
        unsafe { std::ptr::write_bytes(self.out, 0, ncalls * std::mem::size_of::<CallSlot>()) };
        let dir = format!("/tmp/kfuzz-{id}");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: fork; the child only runs `child` and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = child(prog, opts, &dir, self.out, self.kcov.as_ref());
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut hanged = false;
        if pid > 0 {
            hanged = !wait_child(pid, Duration::from_millis(opts.timeout_ms.max(100)));
            // Whatever the program forked dies with it.
            // SAFETY: kill(2) on the child's group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&dir);
        let mut result = ExecResult {
            hanged,
            ..Default::default()
        };
        for i in 0..ncalls {
            // SAFETY: slot i is inside the header area the child wrote.
            let slot: CallSlot =
                unsafe { std::ptr::read_volatile(self.out.cast::<CallSlot>().add(i)) };
            let mut cr = CallResult {
                executed: slot.executed != 0,
                ret: slot.ret,
                errno: slot.errno,
                ..Default::default()
            };
            if cr.executed {
                let max = (OUT_SIZE - slot.pc_off as usize) / 8;
                let n = (slot.pc_count as usize).min(max);
                // SAFETY: PCs were written by the child within the mapping; n is clamped.
                let pcs = unsafe {
                    std::slice::from_raw_parts(self.out.add(slot.pc_off as usize).cast::<u64>(), n)
                };
                let mut prev: u32 = 0;
                let mut sig = Vec::new();
                let mut distinct = HashSet::new();
                for &pc in pcs {
                    let h = hash(pc);
                    let edge = h ^ prev;
                    prev = h.rotate_left(1);
                    distinct.insert(pc);
                    if opts.full_signal {
                        sig.push(edge);
                        self.seen_signal.insert(edge);
                    } else if self.seen_signal.insert(edge) {
                        sig.push(edge);
                    }
                    if self.seen_pcs.insert(pc) {
                        result.new_pcs.push(pc);
                    }
                }
                sig.sort_unstable();
                sig.dedup();
                cr.signal = sig;
                cr.cover = distinct.len() as u32;
            }
            result.calls.push(cr);
        }
        result
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

fn hash(pc: u64) -> u32 {
    let mut x = pc ^ (pc >> 29);
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x as u32
}

fn child(prog: &ExecProg, opts: &ExecOpts, dir: &str, out: *mut u8, kcov: Option<&Kcov>) -> i32 {
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
        let data = libc::mmap(
            DATA_BASE as *mut libc::c_void,
            DATA_SIZE,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        );
        if data == libc::MAP_FAILED {
            return 3;
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
    // A SIGALRM with a handler that does nothing, installed without SA_RESTART, interrupts a
    // blocking syscall: the call returns EINTR and the program goes on.
    extern "C" fn on_alarm(_: libc::c_int) {}
    // SAFETY: installing a handler that does nothing; sigaction is given a zeroed struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
    }
    let call_timeout = libc::timeval {
        tv_sec: (opts.call_timeout_ms / 1000) as libc::time_t,
        tv_usec: ((opts.call_timeout_ms % 1000) * 1000) as libc::suseconds_t,
    };
    let arm = |t: libc::timeval| {
        let it = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: t,
        };
        // SAFETY: setitimer with a valid struct.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    };
    let kcov = kcov.filter(|k| k.enable(kcov::KCOV_TRACE_PC).is_ok());
    let mut vars = vec![None::<u64>; MAX_VARS];
    let var = |vars: &Vec<Option<u64>>, v: u32, d: u64| {
        vars.get(v as usize).copied().flatten().unwrap_or(d)
    };
    let header = MAX_CALLS * std::mem::size_of::<CallSlot>();
    let mut pc_off = header.next_multiple_of(8);
    for (i, call) in prog.calls.iter().take(MAX_CALLS).enumerate() {
        for c in &call.copyin {
            if c.addr < DATA_BASE || c.addr >= DATA_BASE + DATA_SIZE as u64 {
                continue;
            }
            let room = (DATA_BASE + DATA_SIZE as u64 - c.addr) as usize;
            // SAFETY: writes stay inside the data area mapped above (room checked).
            unsafe {
                let p = c.addr as *mut u8;
                match &c.value {
                    CopyValue::Int {
                        size,
                        big_endian,
                        val,
                    } => write_int(p, *size, *big_endian, *val, room),
                    CopyValue::Var {
                        size,
                        var: v,
                        default,
                    } => write_int(p, *size, false, var(&vars, *v, *default), room),
                    CopyValue::Bytes(b) => {
                        std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len().min(room))
                    }
                }
            }
        }
        let mut a = [0u64; 6];
        for (j, arg) in call.args.iter().take(6).enumerate() {
            a[j] = match arg {
                ExecArg::Const(v) => *v,
                ExecArg::Var { var: v, default } => var(&vars, *v, *default),
            };
        }
        if let Some(k) = kcov {
            k.reset();
        }
        if opts.call_timeout_ms > 0 {
            arm(call_timeout);
        }
        // SAFETY: the fuzzed syscall itself; arguments are whatever the program says.
        let ret =
            unsafe { libc::syscall(call.nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
        let errno = if ret == -1 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        if opts.call_timeout_ms > 0 {
            arm(libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            });
        }
        let pcs = kcov.map(|k| k.pcs()).unwrap_or_default();
        let room = (OUT_SIZE - pc_off) / 8;
        let n = pcs.len().min(room);
        // SAFETY: slot and PCs inside the shared OUT_SIZE mapping (n clamped to the room left).
        unsafe {
            std::ptr::copy_nonoverlapping(pcs.as_ptr(), out.add(pc_off).cast::<u64>(), n);
            let slot = CallSlot {
                executed: 1,
                errno,
                ret: ret as i64,
                pc_off: pc_off as u32,
                pc_count: n as u32,
            };
            std::ptr::write_volatile(out.cast::<CallSlot>().add(i), slot);
        }
        pc_off += n * 8;
        if ret != -1 {
            if let Some(v) = call.ret_var {
                if let Some(slot) = vars.get_mut(v as usize) {
                    *slot = Some(ret as u64);
                }
            }
            for c in &call.copyout {
                if c.addr >= DATA_BASE && c.addr + c.size as u64 <= DATA_BASE + DATA_SIZE as u64 {
                    // SAFETY: reading inside the data area.
                    let v = unsafe { read_int(c.addr as *const u8, c.size) };
                    if let Some(slot) = vars.get_mut(c.var as usize) {
                        *slot = Some(v);
                    }
                }
            }
        }
    }
    0
}

/// # Safety
/// `p` must be valid for `room` bytes.
unsafe fn write_int(p: *mut u8, size: u8, be: bool, val: u64, room: usize) {
    let size = (size as usize).clamp(1, 8).min(room);
    let bytes = if be {
        val.to_be_bytes()[8 - size..].to_vec()
    } else {
        val.to_le_bytes()[..size].to_vec()
    };
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
}

/// # Safety
/// `p` must be valid for `size` bytes.
unsafe fn read_int(p: *const u8, size: u8) -> u64 {
    let mut b = [0u8; 8];
    let n = (size as usize).clamp(1, 8);
    std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n);
    u64::from_le_bytes(b)
}
