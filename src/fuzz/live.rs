//! What a running fuzzer shows the dashboard beyond its counters: each VM's phase, the crash
//! being reproduced, and per call its executions, the corpus programs holding it and the signal
//! it brought. Written with atomics and short locks from the fuzzing threads; read as snapshots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use kfuzz_prog::prog::Prog;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmPhase {
    Booting,
    Fuzzing,
    /// Its guest crashed, hung or flooded: a new VM is on the way.
    Restarting,
    Stopped,
}

#[derive(Default)]
struct CallStat {
    execs: AtomicU64,
    inputs: AtomicU64,
    signal: AtomicU64,
}

pub struct Live {
    vms: Mutex<Vec<(VmPhase, Instant)>>,
    reproducing: Mutex<Option<(String, Instant)>>,
    /// By syscall id.
    calls: Vec<CallStat>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VmState {
    pub vm: usize,
    pub phase: VmPhase,
    /// Seconds in this phase.
    pub secs: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CallReport {
    pub name: String,
    pub execs: u64,
    /// Corpus programs holding the call.
    pub inputs: u64,
    /// Stable signal of the corpus programs this call ends: after minimization a program ends
    /// with the call whose signal made it worth keeping.
    pub signal: u64,
}

impl Live {
    pub fn new(vms: usize, syscalls: usize) -> Live {
        let now = Instant::now();
        Live {
            vms: Mutex::new(vec![(VmPhase::Booting, now); vms]),
            reproducing: Mutex::new(None),
            calls: (0..syscalls).map(|_| CallStat::default()).collect(),
        }
    }

    pub fn set_vm(&self, vm: usize, phase: VmPhase) {
        if let Ok(mut v) = self.vms.lock() {
            if let Some(slot) = v.get_mut(vm) {
                if slot.0 != phase {
                    *slot = (phase, Instant::now());
                }
            }
        }
    }

    pub fn set_reproducing(&self, title: Option<&str>) {
        if let Ok(mut r) = self.reproducing.lock() {
            *r = title.map(|t| (t.to_string(), Instant::now()));
        }
    }

    /// A program was run.
    pub fn executed(&self, prog: &Prog) {
        for c in &prog.calls {
            if let Some(s) = self.calls.get(c.meta) {
                s.execs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A program joined the corpus with `signal` stable signal.
    pub fn added(&self, prog: &Prog, signal: usize) {
        let mut seen = std::collections::HashSet::new();
        for c in &prog.calls {
            if seen.insert(c.meta) {
                if let Some(s) = self.calls.get(c.meta) {
                    s.inputs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(s) = prog.calls.last().and_then(|c| self.calls.get(c.meta)) {
            s.signal.fetch_add(signal as u64, Ordering::Relaxed);
        }
    }

    pub fn vms(&self) -> Vec<VmState> {
        self.vms
            .lock()
            .map(|v| {
                v.iter()
                    .enumerate()
                    .map(|(vm, (phase, since))| VmState {
                        vm,
                        phase: *phase,
                        secs: since.elapsed().as_secs_f64(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The crash being reproduced, and for how long (seconds).
    pub fn reproducing(&self) -> Option<(String, f64)> {
        self.reproducing
            .lock()
            .ok()?
            .as_ref()
            .map(|(t, s)| (t.clone(), s.elapsed().as_secs_f64()))
    }

    /// The enabled calls' figures, by name (`names[id]`).
    pub fn calls(&self, enabled: &[usize], name: impl Fn(usize) -> String) -> Vec<CallReport> {
        enabled
            .iter()
            .filter_map(|&id| {
                let s = self.calls.get(id)?;
                Some(CallReport {
                    name: name(id),
                    execs: s.execs.load(Ordering::Relaxed),
                    inputs: s.inputs.load(Ordering::Relaxed),
                    signal: s.signal.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}
