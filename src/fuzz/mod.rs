//! The fuzzing loop: VMs run programs from the manager, new signal is triaged (re-run to keep
//! only stable signal, minimized while it stays) into the corpus, and console oopses become
//! crash reports. Knows nothing of clap; reports through `Shell` and `Stats`.

pub mod corpus;
mod crashes;
pub mod focus;
pub mod live;
pub mod mix;
pub mod probe;
pub mod reach;
mod triage;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kfuzz_prog::gen::{self, ChoiceTable};
use kfuzz_prog::mutate_data::ValuePool;
use kfuzz_prog::prog::Prog;
use kfuzz_prog::target::Target;
use kfuzz_prog::{exec, mutate, text};
use kfuzz_wire::{ExecOpts, ExecResult, Sandbox};
use rand::{Rng, SeedableRng};

use crate::crash_dir::CrashDir;
use crate::shell::Shell;
use crate::vm::monitor::{CrashMonitor, Verdict};
use crate::vm::{Proc, Vm, VmSpec};
use mix::{Mix, WorkKind};

/// Base (KVM) program timeout; scaled under TCG.
const PROG_TIMEOUT: Duration = Duration::from_secs(5);
/// Base (KVM) time after which a blocking call is interrupted; scaled under TCG.
/// A call that has not returned by then gets a signal: a call asleep in the kernel (msgrcv on an
/// empty queue, semop on a busy semaphore) returns EINTR, one that computes goes on. The path to
/// the sleep is already covered; sleeping longer finds nothing, and blocked calls were most of
/// the time programs spent in their calls (0.7% of calls, 100 ms each, under TCG).
const CALL_TIMEOUT: Duration = Duration::from_millis(10);

pub struct FuzzOptions {
    pub target: Arc<Target>,
    pub enabled: Vec<usize>,
    pub spec: VmSpec,
    pub vms: usize,
    /// Programs run concurrently in each VM.
    pub procs: usize,
    pub sandbox: Sandbox,
    /// Each call in a thread of its own (see `ExecOpts::threaded`).
    pub threaded: bool,
    /// Some programs run a second time with pairs of calls racing (see `ExecOpts::collide`).
    pub collide: bool,
    pub duration: Option<Duration>,
    pub workdir: PathBuf,
    /// More corpus folders whose programs are triaged first (read, never written: what they
    /// add is saved in `workdir`'s corpus).
    pub seeds: Vec<PathBuf>,
    /// Feedback off: generate only, never triage (the baseline `kfuzz bench` compares with).
    pub no_feedback: bool,
    /// Reproduce each new crash title on a VM of its own while fuzzing goes on.
    pub reproduce: bool,
    /// The tree's git commit, recorded with each corpus program.
    pub commit: Option<String>,
    /// The kernel's symbols, to record corpus programs' coverage as function+offset.
    pub symbols: Option<std::sync::Arc<crate::kernel::symbols::Symbols>>,
    pub seed: Option<u64>,
    /// The kernel tree, to name the config option a call the guest lacks would need.
    pub tree: Option<crate::kernel::tree::KernelTree>,
    /// vmlinux's line table, to record the source lines corpus programs reach.
    pub lines: Option<Arc<Mutex<crate::kernel::lines::LineTable>>>,
    /// `--patch`: the change fuzzing is aimed at.
    pub focus: Option<Arc<focus::Focus>>,
}

#[derive(Default)]
pub struct Stats {
    pub execs: AtomicU64,
    /// Calls executed (a program counts its calls).
    pub calls: AtomicU64,
    /// Every distinct signal seen, triaged or not (what a no-feedback run can be compared on).
    pub max_signal: AtomicU64,
    pub corpus: AtomicU64,
    pub signal: AtomicU64,
    pub cover: AtomicU64,
    pub crashes: AtomicU64,
    pub vm_restarts: AtomicU64,
    /// VMs started from a snapshot rather than booted (the first ones included).
    pub vm_restores: AtomicU64,
    /// VMs that replaced one that ended (crash, hang, flood) while the run went on.
    pub vm_replaced: AtomicU64,
    /// Milliseconds from a VM's end to its replacement being ready, summed over `vm_replaced`.
    pub recovery_ms: AtomicU64,
    /// VMs given up on because they flooded their console.
    pub floods: AtomicU64,
    /// Programs run from comparison hints.
    pub hints: AtomicU64,
    /// Sums over all executions, in microseconds: the guest's phases (see `ExecTiming`) and
    /// the whole request as the host saw it.
    pub setup_us: AtomicU64,
    pub calls_us: AtomicU64,
    pub teardown_us: AtomicU64,
    pub marker_us: AtomicU64,
    pub handoff_us: AtomicU64,
    pub cleanup_us: AtomicU64,
    pub request_us: AtomicU64,
    /// Calls that returned EINTR: blocked until the call timeout's signal (or a program's own).
    pub interrupted: AtomicU64,
}

impl Stats {
    /// One execution's phases (see `ExecTiming`) and the whole request as the host saw it.
    fn add_timing(&self, t: &kfuzz_wire::ExecTiming, request: Duration) {
        let add = |sum: &AtomicU64, us: u32| sum.fetch_add(us.into(), Ordering::Relaxed);
        self.request_us
            .fetch_add(request.as_micros() as u64, Ordering::Relaxed);
        add(&self.setup_us, t.setup_us);
        add(&self.calls_us, t.calls_us);
        add(&self.teardown_us, t.teardown_us);
        add(&self.marker_us, t.marker_us);
        add(&self.handoff_us, t.handoff_us);
        add(&self.cleanup_us, t.cleanup_us);
    }
}

struct CorpusEntry {
    prog: Prog,
    /// Its chance to be picked for mutation: the stable signal it had in triage, all of it,
    /// not only what was new then. (Weighing by the new signal alone gave the first programs
    /// of a run, each new in thousands of edges, most of the picks for the rest of it.)
    weight: usize,
    /// With `--patch`: where its coverage lies.
    area: focus::Area,
}

#[derive(Default)]
struct State {
    corpus: Vec<CorpusEntry>,
    corpus_names: HashSet<String>,
    max_signal: HashSet<u32>,
    corpus_signal: HashSet<u32>,
    cover: HashSet<u64>,
    /// Programs to triage before fuzzing (the corpus of an earlier run).
    candidates: VecDeque<Prog>,
    crash_titles: HashMap<String, usize>,
    /// Per VM: signal found elsewhere that its results' filter (`Proc::learn_signal`) has not
    /// been told about yet.
    pending: Vec<Vec<u32>>,
    /// New corpus programs whose comparisons have not been collected yet, newest last.
    hints_queue: VecDeque<Prog>,
    /// Programs made from comparison hints, waiting for the mix to allow hints work (see
    /// `mix::MixSnapshot::room`).
    hint_progs: VecDeque<Prog>,
    /// New corpus programs still to be smashed, newest last, each with its mutants left.
    smash: VecDeque<(Prog, u32)>,
}

impl State {
    /// Adds to the fuzzer's signal; true when it is new. Other VMs will be told.
    fn add_max_signal(&mut self, vm: usize, sig: u32) -> bool {
        if !self.max_signal.insert(sig) {
            return false;
        }
        for (i, p) in self.pending.iter_mut().enumerate() {
            if i != vm {
                p.push(sig);
            }
        }
        true
    }
}

/// A booted VM, shared by its procs.
struct VmSlot {
    inner: Mutex<VmInner>,
    /// Set when a crash was recorded or the guest stopped answering: its procs stop.
    dead: AtomicBool,
}

struct VmInner {
    vm: Vm,
    monitor: CrashMonitor,
}

/// What a proc thread works with.
struct Ctx<'a> {
    proc: &'a Proc,
    slot: &'a VmSlot,
}

pub struct Fuzzer {
    opts: FuzzOptions,
    /// Replaced once, when the first VM's kernel says which enabled calls it lacks.
    ct: RwLock<Arc<ChoiceTable>>,
    /// The kernel's support for the enabled calls has been checked (see `probe`).
    probed: Mutex<bool>,
    state: Mutex<State>,
    pub stats: Stats,
    pub stop: AtomicBool,
    next_id: AtomicU64,
    /// The text of the last programs run, by id, to put into crash logs (the console only says
    /// `kfuzz: executing program <id> on proc <p>`, which keeps the guest's serial output small).
    recent: Mutex<VecDeque<(u64, String)>>,
    shell: Shell,
    /// New crash titles (their directories) for the reproducer thread.
    repro_queue: Mutex<VecDeque<(CrashDir, String)>>,
    /// Why the run stopped early: what it found could not be kept (a full disk), or the guest
    /// setup failed.
    fatal: Mutex<Option<String>>,
    /// `[guest] setup`'s output was shown (once, for the first VM up).
    setup_told: AtomicBool,
    /// Executions and signal per kind of work, which steer hints and minimization.
    pub mix: Mix,
    /// Operands of the comparisons hints saw, for mutations to draw integers from.
    operands: RwLock<ValuePool>,
    /// VM phases and per-call figures, for the dashboard.
    pub live: live::Live,
}

const RECENT_PROGRAMS: usize = 4096;

/// One step of a proc's loop.
enum Work {
    /// Re-run a corpus program from disk (an earlier run's) to take in its stable signal.
    Candidate(Prog),
    /// Collect a corpus program's comparisons and make programs from them.
    Comparisons(Prog),
    /// Run a generated, mutated or hint program.
    Fuzz(Prog, WorkKind),
}

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub elapsed_secs: f64,
    pub execs: u64,
    pub corpus: u64,
    pub signal: u64,
    pub cover: u64,
    /// Programs run from comparison hints.
    pub hints: u64,
    pub crashes: Vec<(String, usize)>,
    pub workdir: PathBuf,
    /// VMs booted again after a crash, a hang or a flood.
    pub vm_restarts: u64,
    /// VMs started from a snapshot instead of booted.
    pub vm_restores: u64,
    /// VMs that replaced one that ended while the run went on.
    pub vm_replaced: u64,
    /// Mean seconds from a VM's end to its replacement being ready.
    pub recovery_secs: f64,
    /// VMs given up on because they flooded their console.
    pub floods: u64,
    /// Set when the run stopped because what it found could not be saved.
    pub error: Option<String>,
    /// Executions and signal per kind of work.
    pub mix: Vec<mix::KindReport>,
    /// With `--patch`: how much of the patch was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<focus::PatchReport>,
}

impl Fuzzer {
    pub fn new(opts: FuzzOptions, shell: &Shell) -> anyhow::Result<Arc<Fuzzer>> {
        let ct = ChoiceTable::new(&opts.target, &opts.enabled);
        let live = live::Live::new(opts.vms, opts.target.syscalls.len());
        let mut state = State {
            pending: vec![Vec::new(); opts.vms],
            ..Default::default()
        };
        let corpus_dir = opts.workdir.join("corpus");
        let mut bad = 0;
        // With `--patch`, the programs recorded reaching the change are triaged first.
        let mut loaded: Vec<(focus::Area, Prog)> = Vec::new();
        let texts = std::iter::once((true, &corpus_dir))
            .chain(opts.seeds.iter().map(|d| (false, d)))
            .flat_map(|(own, d)| corpus::load_texts(d).into_iter().map(move |t| (own, t)));
        // A seed already in the corpus is triaged once; a seed's program that triage keeps
        // is saved in the corpus like a new one.
        let mut seen = HashSet::new();
        for (own, (path, src)) in texts {
            if !seen.insert(corpus::name_of(&src)) {
                continue;
            }
            match text::parse(&opts.target, &src) {
                Ok(p) => {
                    if own {
                        state.corpus_names.insert(corpus::name_of(&src));
                    }
                    let area = match (&opts.focus, corpus::load_meta(&path)) {
                        (Some(f), Some(meta)) => f.area_of_functions(
                            meta.cover
                                .keys()
                                .map(|k| (k.as_str(), meta.files.get(k).map(String::as_str))),
                        ),
                        _ => focus::Area::Rest,
                    };
                    loaded.push((area, p));
                }
                Err(e) => {
                    bad += 1;
                    shell.warn(format!(
                        "{}:{e} (skipped: it does not fit the current descriptions)",
                        path.display()
                    ));
                }
            }
        }
        loaded.sort_by_key(|(area, _)| std::cmp::Reverse(*area));
        state.candidates.extend(loaded.into_iter().map(|(_, p)| p));
        if !state.candidates.is_empty() || bad > 0 {
            shell.status(
                "Loaded",
                format!(
                    "{} corpus programs from {} ({bad} skipped); re-triaging them",
                    state.candidates.len(),
                    std::iter::once(&corpus_dir)
                        .chain(&opts.seeds)
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        Ok(Arc::new(Fuzzer {
            opts,
            ct: RwLock::new(Arc::new(ct)),
            probed: Mutex::new(false),
            state: Mutex::new(state),
            stats: Stats::default(),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            shell: shell.clone(),
            repro_queue: Mutex::new(VecDeque::new()),
            fatal: Mutex::new(None),
            setup_told: AtomicBool::new(false),
            mix: Mix::default(),
            operands: RwLock::new(ValuePool::default()),
            live,
        }))
    }

    fn exec_opts(&self, full_signal: bool, collide: bool) -> ExecOpts {
        let scale = self.opts.spec.accel.timeout_scale();
        ExecOpts {
            sandbox: self.opts.sandbox,
            full_signal,
            timeout_ms: (PROG_TIMEOUT * scale).as_millis() as u64,
            // A call that blocks (msgrcv on an empty queue) waits for a signal, not for the CPU:
            // a slower CPU does not make it return sooner, and a signal interrupts only
            // sleeping calls. So the timeout is scaled at most twice under TCG (it was six
            // times, 300 ms per blocking call, the largest cost of a program with one).
            call_timeout_ms: (CALL_TIMEOUT * scale.min(2)).as_millis() as u64,
            threaded: self.opts.threaded || collide,
            collide,
            comparisons: false,
            fresh: false,
        }
    }

    /// Runs until the duration passes or `stop` is set; one thread per VM.
    pub fn run(self: &Arc<Self>) -> Summary {
        let started = Instant::now();
        let workers: Vec<_> = (0..self.opts.vms)
            .map(|i| {
                let f = Arc::clone(self);
                std::thread::spawn(move || {
                    Arc::clone(&f).worker(i);
                    f.live.set_vm(i, live::VmPhase::Stopped);
                })
            })
            .collect();
        let reproducer = self.opts.reproduce.then(|| {
            let f = Arc::clone(self);
            std::thread::spawn(move || f.reproducer())
        });
        let mut last = Instant::now();
        let term = self.shell.is_term();
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(250));
            if self.opts.duration.is_some_and(|d| started.elapsed() >= d) {
                self.stop.store(true, Ordering::SeqCst);
            }
            let every = if term {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(10)
            };
            if last.elapsed() >= every {
                last = Instant::now();
                let line = self.status_line(started.elapsed());
                if term {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    self.shell.status("Fuzzing", line);
                }
            }
        }
        if term {
            eprintln!();
        }
        for w in workers.into_iter().chain(reproducer) {
            let _ = w.join();
        }
        Summary {
            elapsed_secs: started.elapsed().as_secs_f64(),
            execs: self.stats.execs.load(Ordering::SeqCst),
            corpus: self.stats.corpus.load(Ordering::SeqCst),
            signal: self.stats.signal.load(Ordering::SeqCst),
            cover: self.stats.cover.load(Ordering::SeqCst),
            hints: self.stats.hints.load(Ordering::SeqCst),
            crashes: self.crash_titles(),
            workdir: self.opts.workdir.clone(),
            vm_restarts: self.stats.vm_restarts.load(Ordering::SeqCst),
            vm_restores: self.stats.vm_restores.load(Ordering::SeqCst),
            vm_replaced: self.stats.vm_replaced.load(Ordering::SeqCst),
            recovery_secs: self.stats.recovery_ms.load(Ordering::SeqCst) as f64
                / 1000.0
                / self.stats.vm_replaced.load(Ordering::SeqCst).max(1) as f64,
            floods: self.stats.floods.load(Ordering::SeqCst),
            error: self.fatal.lock().ok().and_then(|f| f.clone()),
            mix: self.mix.snapshot().report(),
            patch: self.opts.focus.as_ref().map(|f| f.report()),
        }
    }

    /// The PCs covered so far.
    pub fn cover_pcs(&self) -> HashSet<u64> {
        self.state
            .lock()
            .map(|s| s.cover.clone())
            .unwrap_or_default()
    }

    /// Crash titles found so far, with how often, sorted by title.
    pub fn crash_titles(&self) -> Vec<(String, usize)> {
        let mut c: Vec<(String, usize)> = self
            .state
            .lock()
            .map(|s| {
                s.crash_titles
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            })
            .unwrap_or_default();
        c.sort();
        c
    }

    pub fn options(&self) -> &FuzzOptions {
        &self.opts
    }

    pub fn status_line(&self, elapsed: Duration) -> String {
        let execs = self.stats.execs.load(Ordering::SeqCst);
        format!(
            "{}  execs {execs} ({:.1}/s)  corpus {}  signal {}  cover {}  crashes {}  hints {}",
            crate::kernel::build::human_duration(Duration::from_secs(elapsed.as_secs())),
            execs as f64 / elapsed.as_secs_f64().max(0.001),
            self.stats.corpus.load(Ordering::SeqCst),
            self.stats.signal.load(Ordering::SeqCst),
            self.stats.cover.load(Ordering::SeqCst),
            self.stats.crashes.load(Ordering::SeqCst),
            self.stats.hints.load(Ordering::SeqCst),
        ) + &self
            .opts
            .focus
            .as_ref()
            .map(|f| format!("  patch: {}", f.coverage().summary()))
            .unwrap_or_default()
    }

    fn worker(self: Arc<Self>, index: usize) {
        let mut rng = match self.opts.seed {
            Some(s) => rand::rngs::SmallRng::seed_from_u64(s.wrapping_add(index as u64)),
            None => rand::rngs::SmallRng::from_entropy(),
        };
        let mut failures = 0;
        // When the last VM of this worker ended (None before the first).
        let mut ended: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            self.live.set_vm(index, live::VmPhase::Booting);
            // The VM is started here and lives no longer than this thread (see Vm::start).
            let vm = match Vm::start_ready(&self.opts.spec, index, |w| self.shell.warn(w)) {
                Ok((vm, _, took)) => {
                    if !self.setup_told.swap(true, Ordering::SeqCst) {
                        crate::vm::boot::tell_setup(&vm, &self.shell);
                    }
                    if vm.restored {
                        self.stats.vm_restores.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(t) = ended.take() {
                        let ms = t.elapsed().as_millis() as u64;
                        self.stats.recovery_ms.fetch_add(ms, Ordering::SeqCst);
                        self.stats.vm_replaced.fetch_add(1, Ordering::SeqCst);
                    }
                    self.shell.verbose(
                        if vm.restored { "Restored" } else { "Booted" },
                        format!("vm{index} in {:.1}s", took.as_secs_f64()),
                    );
                    vm
                }
                Err(e) if e.downcast_ref::<crate::vm::SetupFailed>().is_some() => {
                    // The guest is not what the user asked for: fuzzing it would mislead.
                    self.fail(format!("vm{index}: {e:#}"));
                    return;
                }
                Err(e) => {
                    self.shell.warn(format!("{e:#}"));
                    failures += 1;
                    if failures > 3 {
                        self.shell.warn(format!(
                            "vm{index}: failed to boot {failures} times in a row; stopping"
                        ));
                        self.stop.store(true, Ordering::SeqCst);
                        return;
                    }
                    continue;
                }
            };
            failures = 0;
            self.live.set_vm(index, live::VmPhase::Fuzzing);
            let vm = self.fuzz_vm(vm, &mut rng);
            self.live.set_vm(index, live::VmPhase::Restarting);
            ended = Some(Instant::now());
            self.stats.vm_restarts.fetch_add(1, Ordering::SeqCst);
            if self.stop.load(Ordering::SeqCst) {
                // Nothing in the guest is kept, and a guest that stopped answering would not
                // shut down: dropping the VM kills QEMU.
                drop(vm);
                return;
            }
        }
    }

    /// Fuzzes on one booted VM, one thread per proc, until it crashes or the run stops.
    fn fuzz_vm(&self, mut vm: Vm, rng: &mut impl Rng) -> Vm {
        self.probe_once(&mut vm);
        if self.stop.load(Ordering::SeqCst) {
            return vm;
        }
        let procs = match vm.procs(self.opts.procs) {
            Ok(p) => p,
            Err(e) => {
                self.shell.warn(format!("{e:#}"));
                return vm;
            }
        };
        // A new VM's filter knows nothing: it is told all the signal the fuzzer has.
        if let Ok(mut s) = self.state.lock() {
            let all: Vec<u32> = s.max_signal.iter().copied().collect();
            if let Some(p) = s.pending.get_mut(vm.index) {
                *p = all;
            }
        }
        let monitor = CrashMonitor::new(&vm);
        let slot = VmSlot {
            inner: Mutex::new(VmInner { vm, monitor }),
            dead: AtomicBool::new(false),
        };
        std::thread::scope(|scope| {
            for proc in procs {
                let seed: u64 = rng.gen();
                let slot = &slot;
                scope.spawn(move || {
                    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
                    self.fuzz_proc(&Ctx { proc: &proc, slot }, &mut rng)
                });
            }
        });
        match slot.inner.into_inner() {
            Ok(inner) => inner.vm,
            Err(p) => p.into_inner().vm,
        }
    }

    /// One proc's loop: candidates first, then hints while their share of the executions
    /// allows (see `mix`), then generated and mutated programs. New signal is triaged at once.
    fn fuzz_proc(&self, ctx: &Ctx, rng: &mut impl Rng) {
        while !self.stop.load(Ordering::SeqCst) && !ctx.slot.dead.load(Ordering::SeqCst) {
            let result = match self.next_work(rng) {
                Work::Candidate(prog) => self.triage(ctx, &prog, None, WorkKind::Triage),
                Work::Comparisons(prog) => self.comparisons(ctx, &prog, rng),
                Work::Fuzz(prog, kind) => {
                    let hint = kind == WorkKind::Hints;
                    if hint {
                        self.stats.hints.fetch_add(1, Ordering::Relaxed);
                    }
                    let collide = self.opts.collide && !hint && rng.gen_ratio(1, 4);
                    match self.run_as(ctx, kind, &prog, &self.exec_opts(false, collide)) {
                        Some(r) => {
                            let new = self.new_signal(ctx.proc.vm, &r);
                            self.mix.found(kind, new.len());
                            if new.is_empty() || self.opts.no_feedback {
                                Ok(())
                            } else {
                                self.triage(ctx, &prog, Some(new), kind)
                            }
                        }
                        None => Err(()),
                    }
                }
            };
            if result.is_err() {
                return;
            }
        }
    }

    /// What a proc does next.
    fn next_work(&self, rng: &mut impl Rng) -> Work {
        let queued = self.state.lock().ok().and_then(|mut s| {
            if let Some(p) = s.candidates.pop_front() {
                return Some(Work::Candidate(p));
            }
            if s.hint_progs.is_empty() && s.hints_queue.is_empty() {
                return None;
            }
            if self.mix.snapshot().room(WorkKind::Hints) == 0 {
                return None;
            }
            if let Some(p) = s.hint_progs.pop_front() {
                return Some(Work::Fuzz(p, WorkKind::Hints));
            }
            s.hints_queue.pop_back().map(Work::Comparisons)
        });
        match queued {
            Some(w) => w,
            None => {
                let (p, kind) = self.next_prog(rng);
                Work::Fuzz(p, kind)
            }
        }
    }

    /// Runs a program as work of `kind` (see `exec`), counted in the mix.
    fn run_as(
        &self,
        ctx: &Ctx,
        kind: WorkKind,
        prog: &Prog,
        opts: &ExecOpts,
    ) -> Option<ExecResult> {
        let started = Instant::now();
        let r = self.exec(ctx, prog, opts);
        self.mix.executed(kind, started.elapsed());
        r
    }

    /// Stops the run: something found could not be kept. The first reason is the one told.
    fn fail(&self, why: String) {
        if let Ok(mut f) = self.fatal.lock() {
            if f.is_none() {
                *f = Some(why);
            }
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn choice_table(&self) -> Arc<ChoiceTable> {
        match self.ct.read() {
            Ok(ct) => Arc::clone(&ct),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The first VM ready asks its kernel which enabled calls it lacks, and those are dropped
    /// for the run with a warning each (see `probe`). VMs that get here meanwhile wait for the
    /// answer; a VM that fails to answer leaves the question to the next one.
    fn probe_once(&self, vm: &mut Vm) {
        let Ok(mut done) = self.probed.lock() else {
            return;
        };
        if *done {
            return;
        }
        let t = &*self.opts.target;
        let enabled = self.choice_table().enabled.clone();
        let tree = self.opts.tree.as_ref();
        let Some(kept) = probe::check_vm(vm, t, &enabled, tree, &self.shell) else {
            return;
        };
        *done = true;
        if kept.len() == enabled.len() {
            return;
        }
        if kept.is_empty() {
            self.shell
                .warn("none of the selected calls can run on this kernel; stopping");
            self.stop.store(true, Ordering::SeqCst);
            return;
        }
        self.shell.status(
            "Enabled",
            format!("{} of {} calls on this kernel", kept.len(), enabled.len()),
        );
        let ct = Arc::new(ChoiceTable::new(t, &kept));
        match self.ct.write() {
            Ok(mut c) => *c = ct,
            Err(p) => *p.into_inner() = ct,
        }
    }

    fn next_prog(&self, rng: &mut impl Rng) -> (Prog, WorkKind) {
        let t = &*self.opts.target;
        let ct = self.choice_table();
        let pick = self.state.lock().ok().and_then(|mut s| {
            let recent = self.mix.recent();
            if s.corpus.is_empty()
                || self.opts.no_feedback
                || rng.gen_bool(recent.generate_chance())
            {
                return None;
            }
            let other = s.corpus[rng.gen_range(0..s.corpus.len())].prog.clone();
            // The newest program waiting to be smashed, while smashing pays (see `mix`).
            if !s.smash.is_empty() && rng.gen_bool(recent.smash_chance()) {
                if let Some((p, left)) = s.smash.back_mut() {
                    let p = p.clone();
                    *left -= 1;
                    if *left == 0 {
                        s.smash.pop_back();
                    }
                    return Some((p, other, WorkKind::Smash));
                }
            }
            // With `--patch`: an area first, by its weight, then a program in it.
            let area = self.opts.focus.as_ref().and_then(|_| {
                let mut counts = [0usize; 3];
                for e in &s.corpus {
                    counts[e.area as usize] += 1;
                }
                focus::pick_area(&counts, rng.gen())
            });
            let in_area = |e: &CorpusEntry| area.is_none_or(|a| e.area == a);
            let weight = |e: &CorpusEntry| if in_area(e) { e.weight.max(1) } else { 0 };
            let total: usize = s.corpus.iter().map(weight).sum();
            let mut x = rng.gen_range(0..total.max(1));
            let mut chosen = 0;
            for (i, e) in s.corpus.iter().enumerate() {
                if x < weight(e) {
                    chosen = i;
                    break;
                }
                x -= weight(e);
            }
            Some((s.corpus[chosen].prog.clone(), other, WorkKind::Mutate))
        });
        match pick {
            Some((p, other, kind)) => {
                let empty = ValuePool::default();
                let pool = self.operands.read();
                let pool = pool.as_deref().unwrap_or(&empty);
                let m = mutate::mutate_with(t, &ct, rng, &p, &[other], pool);
                (m, kind)
            }
            None => {
                let n = rng.gen_range(gen::RECOMMENDED_CALLS / 2..=gen::RECOMMENDED_CALLS);
                (gen::generate(t, &ct, rng, n), WorkKind::Generate)
            }
        }
    }

    /// Signal in `r` that the whole fuzzer has not seen, which it now has.
    fn new_signal(&self, vm: usize, r: &ExecResult) -> HashSet<u32> {
        let Ok(mut s) = self.state.lock() else {
            return HashSet::new();
        };
        let mut new = HashSet::new();
        for c in &r.calls {
            for sig in &c.signal {
                if s.add_max_signal(vm, *sig) {
                    new.insert(*sig);
                }
            }
        }
        self.stats
            .max_signal
            .store(s.max_signal.len() as u64, Ordering::SeqCst);
        for pc in &r.new_pcs {
            s.cover.insert(*pc);
        }
        self.stats
            .cover
            .store(s.cover.len() as u64, Ordering::SeqCst);
        new
    }

    /// Runs a program; None when the VM crashed or stopped answering (the crash is recorded),
    /// or another proc of the VM saw it crash.
    fn exec(&self, ctx: &Ctx, prog: &Prog, opts: &ExecOpts) -> Option<ExecResult> {
        let full_signal = opts.full_signal;
        if ctx.slot.dead.load(Ordering::SeqCst) {
            return None;
        }
        let t = &*self.opts.target;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let txt = text::format(t, prog);
        let encoded = exec::encode(t, prog);
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= RECENT_PROGRAMS {
                r.pop_front();
            }
            r.push_back((id, txt));
        }
        let update = self
            .state
            .lock()
            .ok()
            .and_then(|mut s| s.pending.get_mut(ctx.proc.vm).map(std::mem::take))
            .unwrap_or_default();
        if !update.is_empty() {
            ctx.proc.learn_signal(update);
        }
        let sent = Instant::now();
        let res = ctx
            .proc
            .exec_until(id, &encoded, opts, &self.stop)
            .inspect(|r| self.stats.add_timing(&r.timing, sent.elapsed()));
        self.stats.execs.fetch_add(1, Ordering::SeqCst);
        // Every call sent counts, those of a program that crashed the guest too.
        self.live.executed(prog);
        let mut inner = match ctx.slot.inner.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        if ctx.slot.dead.load(Ordering::SeqCst) {
            return None;
        }
        match res {
            Ok(r) => {
                if r.hanged {
                    let txt = self
                        .recent
                        .lock()
                        .ok()
                        .and_then(|rc| {
                            rc.iter()
                                .rev()
                                .find(|(i, _)| *i == id)
                                .map(|(_, t)| t.clone())
                        })
                        .unwrap_or_default();
                    self.shell.verbose(
                        "Hanged",
                        format!(
                            "vm{}: program {id} was killed after {} ms:\n{txt}",
                            ctx.proc.vm, opts.timeout_ms
                        ),
                    );
                }
                let ran = r.calls.iter().filter(|c| c.executed).count() as u64;
                self.stats.calls.fetch_add(ran, Ordering::SeqCst);
                let eintr = r.calls.iter().filter(|c| c.errno == libc::EINTR).count() as u64;
                self.stats.interrupted.fetch_add(eintr, Ordering::Relaxed);
                if self.check_console(&mut inner) {
                    ctx.slot.dead.store(true, Ordering::SeqCst);
                    return None;
                }
                drop(inner);
                self.observe_patch(&r.new_pcs);
                if !full_signal {
                    let mut s = self.state.lock().ok()?;
                    for pc in &r.new_pcs {
                        s.cover.insert(*pc);
                    }
                    self.stats
                        .cover
                        .store(s.cover.len() as u64, Ordering::SeqCst);
                }
                Some(r)
            }
            Err(e) => {
                ctx.slot.dead.store(true, Ordering::SeqCst);
                if self.stop.load(Ordering::SeqCst) {
                    // Stopping: the answer is not waited for.
                    return None;
                }
                let why = format!("{e:#}");
                let VmInner { vm, monitor } = &mut *inner;
                match monitor.check(vm, Some(&why)) {
                    Verdict::Crash(r) => self.record_crash(vm, &r),
                    Verdict::NoCrash => {}
                    Verdict::Flooded => {
                        // A printk storm is given up on, not titled: what printed it is in
                        // the log.
                        self.stats.floods.fetch_add(1, Ordering::SeqCst);
                        // Kept apart: the next boot writes console.log afresh.
                        let log = vm.console_log();
                        let kept = log.with_file_name("console.flooded.log");
                        let shown = if std::fs::rename(&log, &kept).is_ok() {
                            kept
                        } else {
                            log
                        };
                        self.shell.warn(format!(
                            "{why}; booting it again (its output: {})",
                            shown.display()
                        ));
                        self.shell.json(&serde_json::json!({"reason": "vm-flooded", "vm": vm.index, "log": shown}));
                    }
                }
                None
            }
        }
    }

    /// With `--patch`: tells each changed line reached for the first time.
    fn observe_patch(&self, pcs: &[u64]) {
        let Some(f) = &self.opts.focus else { return };
        for r in f.observe(pcs) {
            self.shell.status(
                "Reached",
                format!(
                    "{}:{} ({}), changed by the patch, after {:.0}s",
                    r.file,
                    r.line,
                    r.functions.join(", "),
                    r.secs
                ),
            );
            self.shell
                .json(&serde_json::json!({"reason": "patch-line-reached", "line": r}));
        }
    }
}
