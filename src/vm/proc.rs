//! A VM's procs: the program runners that share its channel to the executor, each with its
//! own index in the guest, and the thread (or, for a single proc, the channel itself) that hands
//! each its results.

use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kfuzz_wire::signal::Known;
use kfuzz_wire::{GuestMsg, HostMsg, WireError};

use super::console;

/// What the procs of a VM share: its channel and what it knows of the guest.
pub(super) struct Channel {
    pub vm: usize,
    pub chan: UnixStream,
    /// Messages from each channel socket, tagged with the socket's index.
    pub rx: Receiver<(usize, Result<GuestMsg, WireError>)>,
    /// The socket the executor answers on.
    pub active: usize,
    pub timeout_scale: u32,
    pub flooded: Arc<std::sync::atomic::AtomicBool>,
    pub known: Arc<Mutex<Known>>,
}

/// `n` procs (at least one) over the channel `c`.
pub(super) fn split(c: Channel, n: usize) -> Vec<Proc> {
    let Channel {
        vm,
        chan,
        rx,
        active,
        timeout_scale,
        flooded,
        known,
    } = c;
    let writer = Arc::new(Mutex::new(chan));
    let proc = |i: usize, rx: ProcRx| Proc {
        vm,
        index: i as u32,
        writer: Arc::clone(&writer),
        known: Arc::clone(&known),
        rx,
        timeout_scale,
        flooded: Arc::clone(&flooded),
    };
    // One proc reads the channel itself: a thread less to wake per program, which on a
    // loaded host is milliseconds.
    if n <= 1 {
        return vec![proc(0, ProcRx::Direct { rx, active })];
    }
    let mut txs = Vec::new();
    let mut procs = Vec::new();
    for i in 0..n {
        let (tx, prx) = std::sync::mpsc::channel();
        txs.push(tx);
        procs.push(proc(i, ProcRx::Demuxed(prx)));
    }
    std::thread::spawn(move || {
        for (i, msg) in rx {
            if i != active {
                continue;
            }
            match msg {
                Ok(GuestMsg::ExecDone { proc, result }) => {
                    if let Some(tx) = txs.get(proc as usize) {
                        let _ = tx.send(Ok(result));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    for tx in &txs {
                        let _ = tx.send(Err(e.to_string()));
                    }
                    return;
                }
            }
        }
    });
    procs
}

/// Turns a result's raw PCs into signal and new PCs, against what the VM reported before.
pub(super) fn make_signal(known: &Mutex<Known>, r: &mut kfuzz_wire::ExecResult, full: bool) {
    let mut k = match known.lock() {
        Ok(k) => k,
        Err(p) => p.into_inner(),
    };
    k.process(r, full);
}

/// Where a proc's results arrive: the channel itself when it is the VM's only proc, else the
/// thread that hands each proc its own.
enum ProcRx {
    Direct {
        rx: Receiver<(usize, Result<GuestMsg, WireError>)>,
        active: usize,
    },
    Demuxed(Receiver<Result<kfuzz_wire::ExecResult, String>>),
}

impl ProcRx {
    /// The next result (or channel error), waiting at most `timeout`.
    fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<kfuzz_wire::ExecResult, String>, RecvTimeoutError> {
        match self {
            ProcRx::Demuxed(rx) => rx.recv_timeout(timeout),
            ProcRx::Direct { rx, active } => {
                let deadline = Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left)? {
                        (i, _) if i != *active => {}
                        (_, Ok(GuestMsg::ExecDone { result, .. })) => return Ok(Ok(result)),
                        (_, Ok(_)) => {}
                        (_, Err(e)) => return Ok(Err(e.to_string())),
                    }
                }
            }
        }
    }
}

/// One of a VM's concurrent program runners (see `Vm::procs`).
pub struct Proc {
    pub vm: usize,
    pub index: u32,
    writer: Arc<Mutex<UnixStream>>,
    /// What this VM's results reported: the executor sends raw PCs, which become signal here.
    known: Arc<Mutex<Known>>,
    rx: ProcRx,
    timeout_scale: u32,
    /// The console's flood flag: a flooding guest is given up on at once.
    flooded: Arc<std::sync::atomic::AtomicBool>,
}

impl Proc {
    fn send(&self, msg: &HostMsg) -> anyhow::Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| anyhow::anyhow!("vm{}: the channel lock is poisoned", self.vm))?;
        kfuzz_wire::write_msg(&mut *w, msg)
            .with_context(|| format!("vm{}: sending to the executor", self.vm))
    }

    /// Runs one program on this proc; the timeout covers the program and the round trip.
    pub fn exec(
        &self,
        id: u64,
        prog: &kfuzz_wire::ExecProg,
        opts: &kfuzz_wire::ExecOpts,
    ) -> anyhow::Result<kfuzz_wire::ExecResult> {
        self.exec_until(id, prog, opts, &std::sync::atomic::AtomicBool::new(false))
    }

    /// `exec` that gives up waiting (an error) once `stop` is set: a run that ends does not
    /// wait out a guest that stopped answering.
    pub fn exec_until(
        &self,
        id: u64,
        prog: &kfuzz_wire::ExecProg,
        opts: &kfuzz_wire::ExecOpts,
        stop: &std::sync::atomic::AtomicBool,
    ) -> anyhow::Result<kfuzz_wire::ExecResult> {
        self.send(&HostMsg::Exec {
            id,
            proc: self.index,
            prog: prog.clone(),
            opts: opts.clone(),
        })?;
        let wait =
            Duration::from_millis(opts.timeout_ms) + Duration::from_secs(10) * self.timeout_scale;
        let deadline = Instant::now() + wait;
        loop {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                bail!("vm{}: stopped waiting for proc {}", self.vm, self.index);
            }
            if self.flooded.load(std::sync::atomic::Ordering::SeqCst) {
                bail!(
                    "vm{}: the guest floods its console (more than {} MiB within {}s)",
                    self.vm,
                    console::FLOOD_BYTES >> 20,
                    (console::FLOOD_WINDOW * self.timeout_scale).as_secs()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(250))) {
                Ok(Ok(mut r)) => {
                    make_signal(&self.known, &mut r, opts.full_signal);
                    return Ok(r);
                }
                Ok(Err(e)) => bail!("vm{}: the guest channel failed: {e}", self.vm),
                Err(RecvTimeoutError::Timeout) if left.is_zero() => bail!(
                    "vm{}: proc {} got no reply within {:.0}s",
                    self.vm,
                    self.index,
                    wait.as_secs_f64()
                ),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("vm{}: the guest channel closed", self.vm)
                }
            }
        }
    }

    /// Signal the fuzzer already has (found on other VMs, or before this VM started): this
    /// VM's results stop reporting it.
    pub fn learn_signal(&self, signal: Vec<u32>) {
        match self.known.lock() {
            Ok(mut k) => k.learn(signal),
            Err(p) => p.into_inner().learn(signal),
        }
    }
}
