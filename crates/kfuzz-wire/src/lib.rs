//! The host⇄guest protocol: versioned, length-prefixed messages shared by `kfuzz` (host) and
//! `kfuzz-executor` (guest). Each frame is a little-endian `u32` payload length followed by the
//! payload, a `postcard`-encoded [`HostMsg`] or [`GuestMsg`]. No I/O policy lives here: callers
//! own the streams, timeouts and retries.

use std::io::{Read, Write};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub mod signal;

/// Bumped on every incompatible change; the handshake refuses a mismatch.
pub const PROTOCOL_VERSION: u32 = 6;

/// Where programs' pointers point: areas of `DATA_SIZE` bytes the executor maps in every
/// program's process. kfuzz's own programs use the first; syzkaller's use the second
/// (today) or the third (older programs), so its corpora and reproducers run unchanged.
pub const DATA_AREAS: [u64; 3] = [0x2000_0000, 0x2000_0000_0000, 0x7f00_0000_0000];
/// Where kfuzz puts pointer arguments.
pub const DATA_BASE: u64 = DATA_AREAS[0];
/// The size of each data area.
pub const DATA_SIZE: u64 = 16 << 20;

/// Calls of one program the executor runs (it has a result slot for each); later ones are not
/// run. Generation and mutation stay below it (`kfuzz_prog::gen::MAX_CALLS`).
pub const MAX_CALLS: usize = 64;

/// The bytes from `addr` to the end of the data area holding it, or None outside them.
pub fn data_room(addr: u64) -> Option<u64> {
    DATA_AREAS
        .iter()
        .find(|base| addr >= **base && addr - **base < DATA_SIZE)
        .map(|base| *base + DATA_SIZE - addr)
}

/// Whether `len` bytes at `addr` lie inside one data area.
pub fn in_data(addr: u64, len: u64) -> bool {
    data_room(addr).is_some_and(|room| len <= room)
}

/// Frames larger than this are refused rather than allocated.
pub const MAX_FRAME: u32 = 64 << 20;

/// The name of the virtio-serial port the executor looks for (`/sys/class/virtio-ports/*/name`).
pub const PORT_NAME: &str = "kfuzz";

/// What the kernel in the guest offers the fuzzer, as found by the executor at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// `/sys/kernel/debug/kcov` exists.
    pub kcov: bool,
    /// KCOV accepts `KCOV_TRACE_CMP` (CONFIG_KCOV_ENABLE_COMPARISONS).
    pub kcov_trace_cmp: bool,
    /// The kernel log says KASAN is initialised.
    pub kasan: bool,
    /// `/proc/lockdep` exists (CONFIG_LOCKDEP).
    pub lockdep: bool,
    /// `/proc/self/ns/user` exists (CONFIG_USER_NS).
    pub user_namespaces: bool,
    /// `/proc/self/make-it-fail` or `/sys/kernel/debug/failslab` exists.
    pub fault_injection: bool,
    /// `/sys/kernel/debug/provoke-crash/DIRECT` exists (CONFIG_LKDTM).
    pub lkdtm: bool,
}

impl Features {
    /// `(name, present)` pairs, in a stable order, for printing.
    pub fn list(&self) -> [(&'static str, bool); 7] {
        [
            ("kcov", self.kcov),
            ("kcov-cmp", self.kcov_trace_cmp),
            ("kasan", self.kasan),
            ("lockdep", self.lockdep),
            ("userns", self.user_namespaces),
            ("fault-injection", self.fault_injection),
            ("lkdtm", self.lkdtm),
        ]
    }
}

/// The executor's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    pub protocol: u32,
    /// `uname -r`.
    pub release: String,
    pub cpus: u32,
    pub memory_kib: u64,
    pub features: Features,
}

/// What the executor prints on the console (through /dev/kmsg) before each program, followed by
/// `<id> on proc <proc>`: the host, which knows each id's program, finds a crash's programs by
/// it. Written by `program_marker_line`, read by `parse_program_marker`, nowhere else.
pub const PROGRAM_MARKER: &str = "kfuzz: executing program ";

/// The console line announcing program `id` on worker `proc`, newline included.
pub fn program_marker_line(id: u64, proc: u32) -> String {
    format!("{PROGRAM_MARKER}{id} on proc {proc}\n")
}

/// The program id (and proc, when the line has it) of a console line holding the marker,
/// whatever precedes it (timestamps, caller ids).
pub fn parse_program_marker(line: &str) -> Option<(u64, Option<u32>)> {
    let rest = line.split(PROGRAM_MARKER).nth(1)?;
    let mut words = rest.split_whitespace();
    let id = words.next()?.parse().ok()?;
    let proc = match (words.next(), words.next()) {
        (Some("on"), Some("proc")) => words.next().and_then(|p| p.parse().ok()),
        _ => None,
    };
    Some((id, proc))
}

/// Host → guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMsg {
    /// Run a program from the guest's PATH and return its output and status.
    Command { argv: Vec<String>, timeout_ms: u64 },
    /// Enable KCOV on a thread, do a few real syscalls, count distinct kernel PCs.
    CoverageProbe,
    /// Run one program in a forked child with KCOV and return per-call results.
    Exec {
        /// `program_marker_line(id, proc)` is printed on the console before the program runs;
        /// the host, which knows each id's text, puts the programs into crash logs.
        id: u64,
        /// The worker process (0..procs) that runs it; procs run their programs concurrently
        /// and each answers with an `ExecDone` carrying its index.
        proc: u32,
        prog: ExecProg,
        opts: ExecOpts,
    },
    /// The benchmark's baseline: a fixed ~10-call sequence (getpid, pipe, write, read, close,
    /// shmget, shmat, shmdt, shmctl) in a loop with KCOV enabled, reset and read each
    /// iteration, no host round trip.
    RawLoop { millis: u64 },
    /// Write a file in the guest (e.g. a compiled reproducer); answered with `CommandDone`
    /// (status 0) or `Error`.
    WriteFile {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    /// Find out which of these the guest's kernel has, before fuzzing the calls that need
    /// them; answered with `GuestMsg::Support`, one answer per check, in the same order.
    CheckSupport(Vec<SupportCheck>),
    /// Print `text` as a line of the kernel log (so on the console), e.g. the line that marks
    /// a VM restored from a snapshot; answered with `Marked`. The host also uses it to see that
    /// a restored guest answers.
    Mark { text: String },
    /// End the guest (QEMU exits).
    Shutdown,
}

/// Something a call needs from the guest's kernel (see `HostMsg::CheckSupport`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SupportCheck {
    /// The syscall exists: issued with invalid arguments, it does not fail with ENOSYS. The
    /// executor issues it in a child process of its own, killed if it does not return.
    Syscall { nr: u64 },
    /// The file exists (a device node, a `/proc` or `/sys` entry).
    Path { path: String },
    /// `socket(domain, ty, proto)` does not fail with EAFNOSUPPORT.
    Socket { domain: u64, ty: u64, proto: u64 },
}

/// The answer to one `SupportCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Support {
    Yes,
    /// ENOSYS: the kernel was built without the syscall.
    NoSyscall,
    /// ENOENT: the path does not exist.
    NoPath,
    /// EAFNOSUPPORT: the kernel has no such address family.
    NoFamily,
    /// The check did not finish (the call blocked, or ended the process that made it): the
    /// guest cannot tell.
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Sandbox {
    #[default]
    None,
    /// Run as nobody (65534).
    Setuid,
    /// New user, mount, net, ipc and uts namespaces.
    Namespace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOpts {
    pub sandbox: Sandbox,
    /// Report all of each call's signal and all covered PCs, not only what this VM has not
    /// reported before (triage needs the whole signal to check it is stable). The host applies
    /// it (`signal::Known`); the executor sends every PC anyway.
    pub full_signal: bool,
    /// Kill the program after this long.
    pub timeout_ms: u64,
    /// Interrupt a single call that blocks longer than this (it returns EINTR), so that one
    /// blocking call (msgrcv on an empty queue, semop) does not stall the whole program; in
    /// threaded mode, stop waiting for it and go on with the next call.
    pub call_timeout_ms: u64,
    /// Each call runs in a thread of its own; a call that blocks is left behind.
    pub threaded: bool,
    /// After the program, run it again with pairs of calls issued concurrently (races). Only
    /// the first run's results are returned. Implies threaded.
    pub collide: bool,
    /// Collect the operands of the kernel's comparisons (`KCOV_TRACE_CMP`) instead of PCs:
    /// each call's `comps` is filled and its signal left empty.
    pub comparisons: bool,
    /// Run in a new runner process (forked from the executor, whose address space does not
    /// change) instead of the long-lived one: a long-lived runner's history shapes some kernel
    /// paths (the maple tree of its mappings, page cache state), and coverage that depends on
    /// that history is told from coverage that does not by comparing the two.
    pub fresh: bool,
}

impl ExecOpts {
    /// No sandbox, filtered signal, the given timeouts, calls one after the other.
    pub fn new(timeout_ms: u64, call_timeout_ms: u64) -> ExecOpts {
        ExecOpts {
            sandbox: Sandbox::None,
            full_signal: false,
            timeout_ms,
            call_timeout_ms,
            threaded: false,
            collide: false,
            comparisons: false,
            fresh: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CallResult {
    pub executed: bool,
    pub ret: i64,
    pub errno: i32,
    /// What KCOV recorded for the call, in order (`signal::pcs_to_bytes`). The executor fills
    /// it; the host turns it into `signal`, `cover` and `new_pcs` (`signal::Known`) and
    /// empties it.
    #[serde(with = "serde_bytes")]
    pub pcs: Vec<u8>,
    /// Edge signal (hashes of consecutive PC pairs), filtered unless `full_signal`.
    pub signal: Vec<u32>,
    /// PCs this call covered (with repeats collapsed).
    pub cover: u32,
    /// With `ExecOpts::comparisons`: the operand pairs of the comparisons the call made.
    pub comps: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecResult {
    pub calls: Vec<CallResult>,
    /// PCs never reported by this VM before; with `full_signal`, every PC the program covered.
    /// Filled by the host.
    pub new_pcs: Vec<u64>,
    /// The program did not finish within the timeout and was killed.
    pub hanged: bool,
    /// Where the guest's time went, for `kfuzz bench`.
    pub timing: ExecTiming,
}

/// Microseconds spent in each phase of one execution, measured in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecTiming {
    /// From the request to the first call: fork, namespaces, data area.
    pub setup_us: u32,
    /// The calls themselves (KCOV collection included).
    pub calls_us: u32,
    /// From the last call to the reply: exit, wait, cleanup, signal hashing.
    pub teardown_us: u32,
    /// Of `setup_us`: the program's marker in the kernel log.
    pub marker_us: u32,
    /// Of `setup_us`: from the marker to the runner holding the program.
    pub handoff_us: u32,
    /// Of `teardown_us`: undoing what the program left (its IPC objects, fds, files).
    pub cleanup_us: u32,
}

/// Guest → host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestMsg {
    Handshake(Handshake),
    CommandDone {
        /// Exit code, or None when killed by a signal or the timeout.
        status: Option<i32>,
        /// The signal that ended it, if any.
        signal: Option<i32>,
        timed_out: bool,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    CoverageProbe(Result<ProbeResult, String>),
    ExecDone {
        /// The proc that ran it (see `HostMsg::Exec`).
        proc: u32,
        result: ExecResult,
    },
    /// Iterations of the raw loop done in the time asked, and whether KCOV was on.
    RawLoopDone {
        iterations: u64,
        millis: u64,
        kcov: bool,
    },
    /// The answers to `HostMsg::CheckSupport`, in its order.
    Support(Vec<Support>),
    /// A request failed before it could run (e.g. the program does not exist).
    Error(String),
    /// `HostMsg::Mark` was written to the kernel log.
    Marked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Distinct PCs reported by KCOV for the probe's syscalls.
    pub distinct_pcs: u64,
    /// All PCs, repeats included.
    pub total_pcs: u64,
    /// The syscalls the probe made.
    pub syscalls: Vec<String>,
}

/// A program encoded for execution: what the executor does, with no types left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecProg {
    pub calls: Vec<ExecCall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCall {
    /// x86_64 syscall number.
    pub nr: u64,
    /// Memory writes done before the call (pointer arguments' contents).
    pub copyin: Vec<Copyin>,
    pub args: Vec<ExecArg>,
    /// Resource values read back from memory after the call (e.g. pipe's two fds).
    pub copyout: Vec<Copyout>,
    /// The variable that receives the return value, if later calls use it.
    pub ret_var: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecArg {
    Const(u64),
    /// The value of a variable, or `default` when the call that should have set it failed.
    Var {
        var: u32,
        default: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copyin {
    pub addr: u64,
    pub value: CopyValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyValue {
    Int {
        size: u8,
        big_endian: bool,
        val: u64,
    },
    Var {
        size: u8,
        var: u32,
        default: u64,
    },
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copyout {
    pub addr: u64,
    pub size: u8,
    pub var: u32,
}

// Pseudo-calls: syzkaller's `syz_*` calls that the executor implements itself. The host gives
// each the number `PSEUDO_BASE + index` as its `ExecCall::nr`, far above any real syscall; the
// executor runs numbers in that range itself instead of issuing them.

/// The first pseudo-call number.
pub const PSEUDO_BASE: u64 = 0x10000;

/// Pseudo-calls take up to this many arguments (syscalls: 6).
pub const PSEUDO_MAX_ARGS: usize = 9;

/// A pseudo-call the executor implements. The order is the numbering: append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PseudoCall {
    /// `syz_open_dev(dev, id, flags)`: opens `dev` with each `#` replaced by a digit of `id`;
    /// with `dev` 0xc or 0xb, the char or block device `major:minor` (`id`, `flags`).
    OpenDev,
    /// `syz_open_procfs(pid, file)`: `/proc/self/<file>` (pid 0), `/proc/thread-self/<file>`
    /// (-1), else `/proc/self/task/<pid>/<file>`; read-write, or read-only if that fails.
    OpenProcfs,
    /// `syz_open_pts(ptmx fd, flags)`: the pty slave of a ptmx fd (`TIOCGPTN`).
    OpenPts,
    /// `syz_genetlink_get_family_id(name, netlink fd or -1)`: the generic netlink family's id.
    GenetlinkGetFamilyId,
    /// `syz_init_net_socket(domain, type, proto)`: a socket in the initial network namespace.
    InitNetSocket,
    /// `syz_emit_ethernet(len, packet, frags)`: writes a frame to the `syz_tun` tap device.
    EmitEthernet,
    /// `syz_mount_image(fs, dir, flags, opts, chdir, size, zlib image)`: mounts the image
    /// (through a loop device when it is not empty) and returns the mount point opened.
    MountImage,
}

impl PseudoCall {
    pub const ALL: [PseudoCall; 7] = [
        PseudoCall::OpenDev,
        PseudoCall::OpenProcfs,
        PseudoCall::OpenPts,
        PseudoCall::GenetlinkGetFamilyId,
        PseudoCall::InitNetSocket,
        PseudoCall::EmitEthernet,
        PseudoCall::MountImage,
    ];

    /// The call's name in the descriptions (`syz_open_dev`).
    pub fn name(self) -> &'static str {
        match self {
            PseudoCall::OpenDev => "syz_open_dev",
            PseudoCall::OpenProcfs => "syz_open_procfs",
            PseudoCall::OpenPts => "syz_open_pts",
            PseudoCall::GenetlinkGetFamilyId => "syz_genetlink_get_family_id",
            PseudoCall::InitNetSocket => "syz_init_net_socket",
            PseudoCall::EmitEthernet => "syz_emit_ethernet",
            PseudoCall::MountImage => "syz_mount_image",
        }
    }

    /// The number programs carry for it (`ExecCall::nr`).
    pub fn nr(self) -> u64 {
        PSEUDO_BASE + self as u64
    }

    pub fn from_nr(nr: u64) -> Option<PseudoCall> {
        let i = usize::try_from(nr.checked_sub(PSEUDO_BASE)?).ok()?;
        PseudoCall::ALL.get(i).copied()
    }

    /// By call name, without the `$variant` (`syz_open_dev`).
    pub fn from_name(name: &str) -> Option<PseudoCall> {
        PseudoCall::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[cfg(test)]
mod pseudo_tests {
    use super::*;

    #[test]
    fn pseudo_calls_round_trip_through_numbers_and_names() {
        for p in PseudoCall::ALL {
            assert_eq!(PseudoCall::from_nr(p.nr()), Some(p));
            assert_eq!(PseudoCall::from_name(p.name()), Some(p));
        }
        assert_eq!(PseudoCall::OpenDev.nr(), 0x10000);
        assert_eq!(PseudoCall::from_nr(2), None);
        assert_eq!(PseudoCall::from_nr(PSEUDO_BASE + 100), None);
        assert_eq!(PseudoCall::from_name("syz_kvm_setup_cpu"), None);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o error on the guest channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("the peer closed the channel")]
    Closed,
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    #[error("cannot decode a message: {0}")]
    Decode(#[from] postcard::Error),
}

/// Writes one frame and flushes.
pub fn write_msg<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), WireError> {
    let payload = postcard::to_stdvec(msg)?;
    let len = u32::try_from(payload.len()).map_err(|_| WireError::TooLarge(u32::MAX))?;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&payload);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. A clean end of stream before a frame starts is [`WireError::Closed`].
pub fn read_msg<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, WireError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) => {
                return Err(if got == 0 {
                    WireError::Closed
                } else {
                    WireError::Io(std::io::ErrorKind::UnexpectedEof.into())
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    // Grown as bytes arrive: a length prefix alone (a corrupted or hostile peer) costs no
    // 64 MiB allocation.
    let mut payload = Vec::with_capacity((len as usize).min(64 << 10));
    r.by_ref().take(u64::from(len)).read_to_end(&mut payload)?;
    if payload.len() < len as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(postcard::from_bytes(&payload)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_marker_reads_back_what_the_executor_prints() {
        let line = program_marker_line(42, 3);
        assert_eq!(line, "kfuzz: executing program 42 on proc 3\n");
        let console = format!("[   12.5][ T77] {line}");
        assert_eq!(parse_program_marker(&console), Some((42, Some(3))));
        assert_eq!(
            parse_program_marker("kfuzz: executing program 7"),
            Some((7, None))
        );
        assert_eq!(parse_program_marker("kfuzz: executing program x"), None);
    }

    #[test]
    fn the_data_areas_are_kfuzz_s_and_syzkaller_s() {
        assert_eq!(data_room(0x2000_0000), Some(DATA_SIZE));
        assert_eq!(data_room(0x2000_0000_0000 + DATA_SIZE - 1), Some(1));
        assert_eq!(data_room(0x7f00_0000_0010), Some(DATA_SIZE - 0x10));
        assert_eq!(data_room(0x2000_0000 + DATA_SIZE), None);
        assert_eq!(data_room(0x1fff_ffff), None);
        assert!(in_data(0x2000_0000_0000, 8));
        assert!(!in_data(0x2000_0000 + DATA_SIZE - 4, 8));
    }

    use super::*;

    #[test]
    fn messages_round_trip_through_frames() {
        let msgs = vec![
            GuestMsg::Handshake(Handshake {
                protocol: PROTOCOL_VERSION,
                release: "6.12.117".into(),
                cpus: 2,
                memory_kib: 512 * 1024,
                features: Features {
                    kcov: true,
                    lkdtm: true,
                    ..Default::default()
                },
            }),
            GuestMsg::CommandDone {
                status: Some(0),
                signal: None,
                timed_out: false,
                stdout: b"6.12.117\n".to_vec(),
                stderr: vec![],
            },
            GuestMsg::CoverageProbe(Ok(ProbeResult {
                distinct_pcs: 120,
                total_pcs: 300,
                syscalls: vec!["getppid".into()],
            })),
            GuestMsg::Support(vec![
                Support::Yes,
                Support::NoSyscall,
                Support::Unknown("killed by signal 9".into()),
            ]),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_msg(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            let got: GuestMsg = read_msg(&mut r).unwrap();
            assert_eq!(&got, m);
        }
        assert!(matches!(
            read_msg::<_, GuestMsg>(&mut r),
            Err(WireError::Closed)
        ));
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors_not_panics() {
        let mut r = &[0xff, 0xff, 0xff, 0xff][..];
        assert!(matches!(
            read_msg::<_, HostMsg>(&mut r),
            Err(WireError::TooLarge(_))
        ));
        let mut r = &[5, 0, 0, 0, 1][..];
        assert!(matches!(
            read_msg::<_, HostMsg>(&mut r),
            Err(WireError::Io(_))
        ));
        // A frame announcing MAX_FRAME bytes that never come: an error, without allocating them.
        let mut r = &MAX_FRAME.to_le_bytes()[..];
        assert!(matches!(
            read_msg::<_, HostMsg>(&mut r),
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
        ));
        let mut r = &[1, 0, 0, 0, 200][..];
        assert!(matches!(
            read_msg::<_, HostMsg>(&mut r),
            Err(WireError::Decode(_))
        ));
    }
}
