//! QEMU VMs running the kfuzz guest: the command line, the lifecycle, the console log, and the
//! channel to the executor. Everything about one hypervisor lives here; callers see `Vm`.

pub mod boot;
pub mod console;
pub mod monitor;
pub mod proc;
pub mod qemu;
pub mod reaper;
pub mod snapshot;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kfuzz_wire::signal::Known;
use kfuzz_wire::{GuestMsg, Handshake, HostMsg, WireError};

pub use proc::Proc;
pub use qemu::{Accel, VmSpec};

/// A running QEMU process and its channel. Dropping it kills QEMU.
pub struct Vm {
    pub index: usize,
    pub dir: PathBuf,
    child: Child,
    console: console::Console,
    chan: Option<UnixStream>,
    /// Messages from each channel socket, tagged with the socket's index.
    rx: Option<Receiver<(usize, Result<GuestMsg, WireError>)>>,
    /// The socket the executor answered on.
    active: Option<usize>,
    started: Instant,
    timeout_scale: u32,
    /// Each `[guest] setup` command run in this VM, with its output.
    pub setup_log: Vec<(String, String)>,
    /// Started from a snapshot (see `snapshot`) rather than booted.
    pub restored: bool,
    /// What this VM's results reported: the executor sends raw PCs, which become signal and
    /// new PCs here (shared with its procs).
    known: Arc<Mutex<Known>>,
}

/// Base (KVM) time a restore from a snapshot may take, until the executor answers; scaled.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(10);

/// Base (KVM) time one `[guest] setup` command may take; scaled under TCG.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A `[guest] setup` command failed: the run cannot go on as configured.
#[derive(Debug)]
pub struct SetupFailed {
    pub command: String,
    pub how: String,
    pub output: String,
}

impl std::fmt::Display for SetupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[guest] setup command `{}` failed ({})",
            self.command, self.how
        )?;
        let out = self.output.trim_end();
        if !out.is_empty() {
            write!(f, ":\n{out}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SetupFailed {}

/// Boots after one that reported a bug before the executor answered (see `Vm::start_ready`).
pub const BOOT_REPORT_RETRIES: usize = 2;

impl Vm {
    /// Starts QEMU. Call this from a thread that outlives the VM: QEMU gets SIGKILL when the thread
    /// that spawned it exits (PR_SET_PDEATHSIG), so that even `kill -9 kfuzz` leaves no QEMU behind.
    pub fn start(spec: &VmSpec, index: usize) -> anyhow::Result<Vm> {
        Vm::start_from(spec, index, None)
    }

    /// `start`, from the saved state `incoming` (see `snapshot`) when given.
    fn start_from(spec: &VmSpec, index: usize, incoming: Option<&Path>) -> anyhow::Result<Vm> {
        let dir = spec.work_dir.join(format!("vm{index}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for sock in qemu::channel_sockets(&dir) {
            let _ = std::fs::remove_file(sock);
        }
        let _ = std::fs::remove_file(qemu::qmp_socket(&dir));
        let log = dir.join("console.log");
        let mut cmd = qemu::command(spec, &dir);
        if let Some(state) = incoming {
            cmd.arg("-incoming")
                .arg(format!("exec:cat {}", snapshot::shell_quote(state)?));
        }
        reaper::prepare(&mut cmd);
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} (Debian: apt-get install qemu-system-x86)",
                qemu::QEMU
            )
        })?;
        reaper::register(child.id());
        let console = console::Console::capture(
            &mut child,
            &log,
            console::FLOOD_WINDOW * spec.accel.timeout_scale(),
        )?;
        Ok(Vm {
            index,
            dir,
            child,
            console,
            chan: None,
            rx: None,
            active: None,
            started,
            timeout_scale: spec.accel.timeout_scale(),
            setup_log: Vec::new(),
            restored: incoming.is_some(),
            known: Arc::default(),
        })
    }

    /// `start` and `wait_ready` (within `boot::BOOT_TIMEOUT`, scaled), for work that watches the
    /// console for crashes: a kernel that reported a bug while it booted is booted again, up to
    /// `BOOT_REPORT_RETRIES` times. KASAN prints only its first report per boot and a report turns
    /// lockdep off, so such a VM is blind to the bugs looked for (under TCG the test kernel
    /// sometimes prints a KASAN wild-memory-access in early CPU setup). `warn` hears each one.
    pub fn start_ready(
        spec: &VmSpec,
        index: usize,
        mut warn: impl FnMut(String),
    ) -> anyhow::Result<(Vm, Handshake, Duration)> {
        match snapshot::find(spec) {
            Ok(Some(snap)) => match Vm::restore(spec, index, &snap) {
                Ok((mut vm, took)) => {
                    // The snapshot was taken before `[guest] setup` ran: it runs on each VM.
                    vm.run_setup(&spec.setup)?;
                    return Ok((vm, snap.meta.handshake.clone(), took));
                }
                Err(e) => {
                    warn(format!(
                        "vm{index}: cannot restore the snapshot {} ({e:#}); booting instead",
                        snap.state.display()
                    ));
                    snapshot::discard(&snap);
                }
            },
            Ok(None) => {}
            Err(e) => warn(format!("vm{index}: snapshots are off: {e:#}")),
        }
        let timeout = boot::BOOT_TIMEOUT * spec.accel.timeout_scale();
        let mut boots = 0;
        loop {
            let mut vm = Vm::start(spec, index)?;
            let (hs, took) = vm.wait_ready(timeout)?;
            boots += 1;
            let Some(title) = crate::report::crash_title(&vm.console.since(0).0, None) else {
                if let Err(e) = vm.save_snapshot(spec, &hs, took) {
                    warn(format!("vm{index}: no snapshot of the ready VM: {e:#}"));
                }
                vm.run_setup(&spec.setup)?;
                return Ok((vm, hs, took));
            };
            if boots > BOOT_REPORT_RETRIES {
                warn(format!(
                    "vm{index}: the kernel reported \"{title}\" while booting, {boots} boots in a \
                     row; going on, but this VM may miss KASAN and lockdep reports"
                ));
                vm.run_setup(&spec.setup)?;
                return Ok((vm, hs, took));
            }
            warn(format!(
                "vm{index}: the kernel reported \"{title}\" while booting (KASAN reports once \
                 per boot); booting again"
            ));
            vm.shutdown();
        }
    }

    /// A VM started from `snap` instead of booted: ready once its executor answers a `Mark`,
    /// which also puts a line on its console saying it was restored.
    pub fn restore(
        spec: &VmSpec,
        index: usize,
        snap: &snapshot::Snapshot,
    ) -> anyhow::Result<(Vm, Duration)> {
        let mut vm = Vm::start_from(spec, index, Some(&snap.state))?;
        let deadline = vm.started + vm.scaled(RESTORE_TIMEOUT);
        // The channel is connected before the guest runs again: the executor, blocked reading
        // its port when the state was saved, sees no hang-up.
        let streams = vm.connect(deadline)?;
        let mut streams: Vec<Option<UnixStream>> = streams.into_iter().map(Some).collect();
        // The state was saved paused: once QEMU has loaded it, the VM is told to go on.
        let mut qmp = snapshot::Qmp::connect(&qemu::qmp_socket(&vm.dir), deadline)?;
        loop {
            let st = qmp.execute("query-status", None)?;
            match st.get("status").and_then(|s| s.as_str()) {
                Some("inmigrate") if Instant::now() < deadline => {
                    if let Some(status) = vm.child.try_wait().context("waiting for QEMU")? {
                        return Err(vm.boot_failure(&format!(
                            "QEMU exited ({status}) while loading the snapshot"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10))
                }
                Some("inmigrate") => return Err(vm.boot_failure("the snapshot did not load")),
                Some("running") => break,
                Some("paused") | Some("prelaunch") => {
                    qmp.execute("cont", None)?;
                    break;
                }
                other => bail!("vm{index}: QEMU is {other:?} after loading the snapshot"),
            }
        }
        let chan = streams
            .get_mut(snap.meta.active)
            .and_then(Option::take)
            .with_context(|| format!("the snapshot names channel {}", snap.meta.active))?;
        vm.active = Some(snap.meta.active);
        vm.chan = Some(chan);
        let text = format!(
            "kfuzz: vm{index} restored from snapshot {} (made in a {:.1}s boot)",
            snap.key, snap.meta.boot_secs
        );
        let Some(c) = vm.chan.as_mut() else {
            bail!("vm{index}: not connected")
        };
        kfuzz_wire::write_msg(c, &HostMsg::Mark { text })
            .with_context(|| format!("vm{index}: sending to the restored executor"))?;
        match vm.recv(deadline)?.1 {
            GuestMsg::Marked => {
                let took = vm.started.elapsed();
                Ok((vm, took))
            }
            other => bail!("vm{index}: the restored executor answered {other:?}"),
        }
    }

    /// Saves this freshly booted VM as `spec`'s snapshot, unless one exists or another VM is
    /// writing it. Before `[guest] setup` and any program: the state is the boot's alone.
    fn save_snapshot(
        &mut self,
        spec: &VmSpec,
        hs: &Handshake,
        took: Duration,
    ) -> anyhow::Result<()> {
        if !snapshot::enabled(spec) {
            return Ok(());
        }
        let Some(dir) = spec.snapshot_dir.as_deref() else {
            return Ok(());
        };
        let key = snapshot::key(spec)?;
        let Some(lock) = snapshot::try_lock_save(dir, &key) else {
            return Ok(());
        };
        if snapshot::find(spec)?.is_some() {
            return Ok(());
        }
        let Some(active) = self.active else {
            bail!("the executor has not answered")
        };
        let qmp_path = qemu::qmp_socket(&self.dir);
        let mut qmp = snapshot::Qmp::connect(
            &qmp_path,
            Instant::now() + self.scaled(Duration::from_secs(5)),
        )?;
        let mut meta = snapshot::Meta {
            save_secs: 0.0,
            bytes: 0,
            handshake: hs.clone(),
            active,
            boot_secs: took.as_secs_f64(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        snapshot::save(
            &mut qmp,
            dir,
            &key,
            &mut meta,
            self.scaled(Duration::from_secs(30)),
            &lock,
        )?;
        Ok(())
    }

    /// Runs `[guest] setup` in order; the first that fails is a `SetupFailed` error. Each
    /// command's output is kept in `setup_log`.
    pub fn run_setup(&mut self, setup: &[String]) -> anyhow::Result<()> {
        for cmd in setup {
            let argv = vec!["/bin/sh".to_string(), "-c".to_string(), cmd.clone()];
            let msg = self.command(&argv, self.scaled(SETUP_TIMEOUT))?;
            let GuestMsg::CommandDone {
                status,
                signal,
                timed_out,
                stdout,
                stderr,
            } = msg
            else {
                bail!(
                    "vm{}: setup `{cmd}`: the guest answered {msg:?}",
                    self.index
                );
            };
            let mut output = String::from_utf8_lossy(&stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&stderr));
            if status != Some(0) {
                let how = match (status, signal, timed_out) {
                    (_, _, true) => "timed out".to_string(),
                    (Some(c), _, _) => format!("exit status {c}"),
                    (None, Some(s), _) => format!("killed by signal {s}"),
                    (None, None, _) => "failed".to_string(),
                };
                return Err(anyhow::Error::new(SetupFailed {
                    command: cmd.clone(),
                    how,
                    output,
                }));
            }
            self.setup_log.push((cmd.clone(), output));
        }
        Ok(())
    }

    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// Base timeouts are for KVM; under TCG they are multiplied.
    pub fn scaled(&self, d: Duration) -> Duration {
        d * self.timeout_scale
    }

    /// Connects to the channel sockets and waits for the executor's handshake on one of them.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<(Handshake, Duration)> {
        let deadline = self.started + timeout;
        let mut streams = self.connect(deadline)?;
        match self.recv(deadline)? {
            (i, GuestMsg::Handshake(h)) => {
                if h.protocol != kfuzz_wire::PROTOCOL_VERSION {
                    bail!(
                        "the guest executor speaks protocol {} but this kfuzz speaks {}",
                        h.protocol,
                        kfuzz_wire::PROTOCOL_VERSION
                    );
                }
                self.active = Some(i);
                self.chan = Some(streams.swap_remove(i));
                Ok((h, self.started.elapsed()))
            }
            (_, other) => bail!("expected a handshake from the executor, got {other:?}"),
        }
    }

    /// Connects to every channel socket, each read by a thread feeding `rx`.
    fn connect(&mut self, deadline: Instant) -> anyhow::Result<Vec<UnixStream>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut streams = Vec::new();
        for (i, sock) in qemu::channel_sockets(&self.dir).iter().enumerate() {
            let stream = loop {
                if let Some(status) = self.child.try_wait().context("waiting for QEMU")? {
                    return Err(self.boot_failure(&format!(
                        "QEMU exited ({status}) before the executor answered"
                    )));
                }
                match UnixStream::connect(sock) {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => bail!("cannot connect to {}: {e}", sock.display()),
                }
            };
            let reader = stream.try_clone().context("cloning a channel socket")?;
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(reader);
                loop {
                    let msg = kfuzz_wire::read_msg::<_, GuestMsg>(&mut reader);
                    let stop = msg.is_err();
                    if tx.send((i, msg)).is_err() || stop {
                        break;
                    }
                }
            });
            streams.push(stream);
        }
        self.rx = Some(rx);
        Ok(streams)
    }

    /// The next message from the active socket (before the handshake: from any socket; a socket
    /// that fails then is only given up on).
    fn recv(&mut self, deadline: Instant) -> anyhow::Result<(usize, GuestMsg)> {
        self.recv_unless(deadline, &mut |_| false)
    }

    /// `recv` that gives up once `give_up` (asked about every 200 ms while nothing arrives)
    /// says so.
    fn recv_unless(
        &mut self,
        deadline: Instant,
        give_up: &mut dyn FnMut(&Vm) -> bool,
    ) -> anyhow::Result<(usize, GuestMsg)> {
        let Some(rx) = &self.rx else {
            bail!("the channel is not connected")
        };
        let mut failed = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok((i, msg)) if self.active.is_none_or(|a| a == i) => match msg {
                    Ok(m) => return Ok((i, m)),
                    Err(e) if self.active.is_some() || failed + 1 >= 2 => {
                        return Err(self.boot_failure(&format!("the guest channel failed: {e}")));
                    }
                    Err(_) => failed += 1,
                },
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.try_wait().context("waiting for QEMU")? {
                        return Err(self.boot_failure(&format!("QEMU exited ({status})")));
                    }
                    if self.console.flooded() {
                        return Err(self.boot_failure(&format!(
                            "the guest floods its console (more than {} MiB within {}s)",
                            console::FLOOD_BYTES >> 20,
                            self.scaled(console::FLOOD_WINDOW).as_secs()
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(self.boot_failure("timed out waiting for the executor"));
                    }
                    if give_up(self) {
                        bail!("vm{}: stopped waiting for the executor", self.index);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.boot_failure("the guest channel closed"));
                }
            }
        }
    }

    /// An error that quotes the last console lines, the place a kernel says why it died.
    fn boot_failure(&mut self, what: &str) -> anyhow::Error {
        // A closed channel usually means QEMU is going away (a guest reset, or a panic with
        // -no-reboot): say so, and give the console thread a moment to drain its last output.
        let mut what = what.to_string();
        for _ in 0..25 {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !what.starts_with("QEMU exited") {
                    what = format!("QEMU exited ({status}): {what}");
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.console.tail_lines(usize::MAX);
        let mut msg = format!(
            "vm{}: {what} after {:.1}s",
            self.index,
            self.started.elapsed().as_secs_f64()
        );
        // The line that says why, when the kernel said it (it precedes the stack dump).
        let why = lines.iter().rev().find(|l| {
            l.contains("Kernel panic") || l.contains("BUG:") || l.contains("general protection")
        });
        if let Some(p) = why {
            msg.push_str(&format!("\n  {}", p.trim()));
        }
        let log = self.console_log();
        if lines.is_empty() {
            msg.push_str(&format!(
                "\nthe kernel printed nothing ({}): it died before its first console message \
                 (not a bootable image, or a crash in early boot)",
                log.display()
            ));
        } else {
            msg.push_str(&format!("\nlast console lines ({}):", log.display()));
            for l in &lines[lines.len().saturating_sub(20)..] {
                msg.push_str(&format!("\n  | {l}"));
            }
        }
        anyhow::anyhow!(msg)
    }

    fn request(&mut self, msg: &HostMsg, timeout: Duration) -> anyhow::Result<GuestMsg> {
        self.request_unless(msg, timeout, &mut |_| false)
    }

    /// `request` whose wait for the answer ends early once `give_up` says so (`recv_unless`).
    fn request_unless(
        &mut self,
        msg: &HostMsg,
        timeout: Duration,
        give_up: &mut dyn FnMut(&Vm) -> bool,
    ) -> anyhow::Result<GuestMsg> {
        let Some(chan) = self.chan.as_mut() else {
            bail!("vm{}: not connected", self.index)
        };
        kfuzz_wire::write_msg(chan, msg)
            .with_context(|| format!("vm{}: sending to the executor", self.index))?;
        let _ = chan.flush();
        Ok(self.recv_unless(Instant::now() + timeout, give_up)?.1)
    }

    /// Runs `argv` in the guest.
    pub fn command(&mut self, argv: &[String], timeout: Duration) -> anyhow::Result<GuestMsg> {
        let msg = HostMsg::Command {
            argv: argv.to_vec(),
            timeout_ms: timeout.as_millis() as u64,
        };
        self.request(&msg, timeout + self.scaled(Duration::from_secs(10)))
    }

    /// Runs one program; the timeout covers the program and the round trip.
    pub fn exec(
        &mut self,
        id: u64,
        prog: &kfuzz_wire::ExecProg,
        opts: &kfuzz_wire::ExecOpts,
    ) -> anyhow::Result<kfuzz_wire::ExecResult> {
        self.exec_unless(id, prog, opts, &mut |_| false)
    }

    /// `exec` that stops waiting for the result (an error) once `give_up` says so: a program
    /// whose crash is already on the console (a report that leaves the guest stuck, say) need
    /// not be waited out. The VM should not run more programs after that.
    pub fn exec_unless(
        &mut self,
        id: u64,
        prog: &kfuzz_wire::ExecProg,
        opts: &kfuzz_wire::ExecOpts,
        give_up: &mut dyn FnMut(&Vm) -> bool,
    ) -> anyhow::Result<kfuzz_wire::ExecResult> {
        let msg = HostMsg::Exec {
            id,
            proc: 0,
            prog: prog.clone(),
            opts: opts.clone(),
        };
        let wait = Duration::from_millis(opts.timeout_ms) + self.scaled(Duration::from_secs(10));
        match self.request_unless(&msg, wait, give_up)? {
            GuestMsg::ExecDone { mut result, .. } => {
                proc::make_signal(&self.known, &mut result, opts.full_signal);
                Ok(result)
            }
            other => bail!("vm{}: unexpected reply {other:?}", self.index),
        }
    }

    /// Splits the channel into `n` procs that run programs concurrently (each the executor's
    /// fork server of the same index). After this only the procs talk to the executor.
    pub fn procs(&mut self, n: usize) -> anyhow::Result<Vec<Proc>> {
        let (Some(rx), Some(chan), Some(active)) =
            (self.rx.take(), self.chan.as_ref(), self.active)
        else {
            bail!("vm{}: not connected", self.index)
        };
        let chan = chan.try_clone().context("cloning the channel socket")?;
        Ok(proc::split(
            proc::Channel {
                vm: self.index,
                chan,
                rx,
                active,
                timeout_scale: self.timeout_scale,
                flooded: self.console.flood_flag(),
                known: Arc::clone(&self.known),
            },
            n,
        ))
    }

    /// Writes a file in the guest.
    pub fn write_file(&mut self, path: &str, data: &[u8], mode: u32) -> anyhow::Result<()> {
        let msg = HostMsg::WriteFile {
            path: path.into(),
            data: data.to_vec(),
            mode,
        };
        match self.request(&msg, self.scaled(Duration::from_secs(20)))? {
            GuestMsg::CommandDone { .. } => Ok(()),
            GuestMsg::Error(e) => bail!("vm{}: {e}", self.index),
            other => bail!("vm{}: unexpected reply {other:?}", self.index),
        }
    }

    /// The benchmark baseline in the guest (see `HostMsg::RawLoop`): iterations per second.
    pub fn raw_loop(&mut self, millis: u64) -> anyhow::Result<(f64, bool)> {
        let wait = Duration::from_millis(millis) + self.scaled(Duration::from_secs(10));
        match self.request(&HostMsg::RawLoop { millis }, wait)? {
            GuestMsg::RawLoopDone {
                iterations,
                millis,
                kcov,
            } => Ok((iterations as f64 * 1000.0 / millis.max(1) as f64, kcov)),
            other => bail!("vm{}: unexpected reply {other:?}", self.index),
        }
    }

    /// Asks LKDTM for a crash of `kind` (e.g. "BUG") and returns without waiting: the request
    /// never gets an answer. See `wait_crash`.
    pub fn provoke_crash(&mut self, kind: &str) -> anyhow::Result<()> {
        let Some(chan) = self.chan.as_mut() else {
            bail!("vm{}: not connected", self.index)
        };
        let msg = HostMsg::WriteFile {
            path: "/sys/kernel/debug/provoke-crash/DIRECT".into(),
            data: kind.as_bytes().to_vec(),
            mode: 0o200,
        };
        kfuzz_wire::write_msg(chan, &msg)
            .with_context(|| format!("vm{}: sending to the executor", self.index))
    }

    /// Waits until the console shows a whole crash report: the report (None if QEMU exited
    /// without one, or `timeout` passed). See `monitor::CrashMonitor::wait`.
    pub fn wait_crash(&mut self, timeout: Duration) -> Option<crate::report::CrashReport> {
        monitor::CrashMonitor::from_boot().wait(self, timeout)
    }

    pub fn console(&self) -> &console::Console {
        &self.console
    }

    /// True once QEMU has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Asks the executor what the kernel has (see `HostMsg::CheckSupport`): one answer per
    /// check. Before `procs`, like every request on the VM itself.
    pub fn check_support(
        &mut self,
        checks: &[kfuzz_wire::SupportCheck],
    ) -> anyhow::Result<Vec<kfuzz_wire::Support>> {
        // The executor gives up on a call after 2 s.
        let n = checks.len() as u32;
        let wait = self.scaled(Duration::from_secs(30)) + Duration::from_secs(2) * n;
        match self.request(&HostMsg::CheckSupport(checks.to_vec()), wait)? {
            GuestMsg::Support(s) if s.len() == checks.len() => Ok(s),
            GuestMsg::Error(e) => bail!("vm{}: {e}", self.index),
            other => bail!("vm{}: unexpected reply {other:?}", self.index),
        }
    }

    pub fn coverage_probe(&mut self) -> anyhow::Result<GuestMsg> {
        let t = self.scaled(Duration::from_secs(20));
        self.request(&HostMsg::CoverageProbe, t)
    }

    /// Asks the guest to power off, then makes sure QEMU is gone.
    pub fn shutdown(mut self) {
        if let Some(chan) = self.chan.as_mut() {
            let _ = kfuzz_wire::write_msg(chan, &HostMsg::Shutdown);
        }
        let deadline = Instant::now() + self.scaled(Duration::from_secs(5));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drop kills it.
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn log_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        reaper::kill(self.child.id());
        let _ = self.child.wait();
        reaper::unregister(self.child.id());
        self.console.join();
    }
}
