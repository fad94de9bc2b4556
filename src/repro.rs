//! From a crash log to a minimized reproducer: find the program(s) that crash the kernel with
//! the same title, confirm it repeats, minimize calls then arguments, simplify the executor's
//! options, and write `repro.syz`, `repro.c` and `repro.log` (each step explained).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use kfuzz_prog::prog::{Arg, Prog};
use kfuzz_prog::target::Target;
use kfuzz_prog::types::TypeKind;
use kfuzz_prog::{csource, exec, minimize, prog, text};
use kfuzz_wire::{ExecOpts, Sandbox};

use crate::crash_dir::CrashDir;
use crate::report::{self, CrashKind};
use crate::shell::Shell;
use crate::vm::monitor::{CrashMonitor, Verdict};
use crate::vm::{Vm, VmSpec};

/// Programs tried one by one before the log is bisected.
const MAX_SINGLES: usize = 10;
/// Programs from the end of the log the bisection works on.
const MAX_LOG_PROGRAMS: usize = 32;
/// Runs that must crash with the title, the finding run included.
const CONFIRMATIONS: usize = 3;
/// How long (KVM time, scaled) a program may go on without answering once a report is on the
/// console, before its attempt ends.
const REPORT_GRACE: Duration = Duration::from_millis(500);

/// One step of option simplification.
type Simplify = fn(ReproOpts) -> ReproOpts;

/// The options a reproducer needs; simplified as far as the crash allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReproOpts {
    pub threaded: bool,
    pub collide: bool,
    /// Times the program runs in a row.
    pub repeat: u32,
    pub procs: u32,
    #[serde(serialize_with = "ser_sandbox")]
    pub sandbox: Sandbox,
}

fn ser_sandbox<S: serde::Serializer>(s: &Sandbox, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(sandbox_name(*s))
}

fn sandbox_name(s: Sandbox) -> &'static str {
    match s {
        Sandbox::None => "none",
        Sandbox::Setuid => "setuid",
        Sandbox::Namespace => "namespace",
    }
}

impl ReproOpts {
    /// The header line of `repro.syz`.
    pub fn header(&self) -> String {
        format!(
            "# kfuzz repro options: threaded={} collide={} repeat={} procs={} sandbox={}",
            self.threaded,
            self.collide,
            self.repeat,
            self.procs,
            sandbox_name(self.sandbox)
        )
    }
}

impl ReproOpts {
    /// The options `header` wrote, from a `repro.syz` (its first `# kfuzz repro options:`
    /// line); None without one.
    pub fn from_syz(text: &str) -> Option<ReproOpts> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("# kfuzz repro options:"))?;
        let mut o = ReproOpts {
            threaded: false,
            collide: false,
            repeat: 1,
            procs: 1,
            sandbox: Sandbox::None,
        };
        for kv in line.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            match k {
                "threaded" => o.threaded = v.parse().ok()?,
                "collide" => o.collide = v.parse().ok()?,
                "repeat" => o.repeat = v.parse::<u32>().ok()?.clamp(1, 100),
                "procs" => o.procs = v.parse::<u32>().ok()?.clamp(1, 32),
                "sandbox" => {
                    o.sandbox = match v {
                        "none" => Sandbox::None,
                        "setuid" => Sandbox::Setuid,
                        "namespace" => Sandbox::Namespace,
                        _ => return None,
                    }
                }
                _ => {}
            }
        }
        Some(o)
    }
}

/// The programs of a crash log, in order, with the proc that ran each (when the marker says).
/// Programs that do not parse against the current descriptions are skipped.
pub fn programs_from_log(target: &Target, log: &str) -> Vec<(Option<u32>, Prog)> {
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((_, proc)) = report::program_marker(line) else {
            continue;
        };
        let mut src = String::new();
        while let Some(l) = lines.peek() {
            let t = l.trim();
            if t.is_empty() || t.starts_with('[') || report::program_marker(l).is_some() {
                break;
            }
            src.push_str(t);
            src.push('\n');
            lines.next();
        }
        if let Ok(p) = text::parse(target, &src) {
            if !p.calls.is_empty() {
                out.push((proc, p));
            }
        }
    }
    out
}

pub struct Outcome {
    pub prog: Prog,
    pub opts: ReproOpts,
    pub calls_before: usize,
    pub elapsed: Duration,
    /// Whether the C program, run in the guest, crashed with the same title (None: not tried).
    pub c_crashes: Option<bool>,
}

pub struct Reproducer<'a> {
    target: &'a Target,
    spec: VmSpec,
    vm: Option<Vm>,
    title: String,
    steps: Vec<String>,
    shell: &'a Shell,
    started: Instant,
    next_id: u64,
    /// Set when the reproducer must give up (`kfuzz run` stopping).
    cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// Runs of programs on a VM so far (each ends in a crash or not).
    attempts: u32,
    /// VMs started: from the snapshot, and booted.
    restored: u32,
    booted: u32,
    /// `repro.log` as it is written, a line per step (see `log_to`).
    log: Option<std::fs::File>,
    /// The live line on a terminal.
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> Reproducer<'a> {
    pub fn new(target: &'a Target, spec: VmSpec, title: &str, shell: &'a Shell) -> Self {
        Reproducer {
            target,
            spec,
            vm: None,
            title: title.to_string(),
            steps: Vec::new(),
            shell,
            started: Instant::now(),
            next_id: 0,
            cancel: None,
            attempts: 0,
            restored: 0,
            booted: 0,
            log: None,
            bar: None,
        }
    }

    /// Each step goes to `path` as it happens (the file is replaced by the whole log at the
    /// end), and to the terminal: a live line there, a status line per step when stderr is not
    /// a terminal (unless the shell is quiet).
    pub fn log_to(mut self, path: &Path) -> Self {
        self.log = std::fs::File::create(path).ok();
        if self.shell.is_term() {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "   Reproducing {spinner} {elapsed:>4} {wide_msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
        self
    }

    /// Attempts so far, and the VMs they took.
    fn counts(&self) -> String {
        format!(
            "attempt {}, VMs: {} restored, {} booted",
            self.attempts, self.restored, self.booted
        )
    }

    pub fn cancel_on(mut self, flag: &'a std::sync::atomic::AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    fn step(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        let line = format!(
            "[{:>6.1}s] {msg} ({})",
            self.started.elapsed().as_secs_f64(),
            self.counts()
        );
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{msg} ({})", self.counts()));
        } else if self.log.is_some() && !self.shell.is_term() {
            self.shell.status("Repro", &line);
        } else {
            self.shell.verbose("Repro", &msg);
        }
        if let Some(f) = self.log.as_mut() {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
        self.steps.push(line);
    }

    /// The live line, between steps: what runs now.
    fn tick(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{what} ({})", self.counts()));
        }
    }

    fn vm(&mut self) -> anyhow::Result<&mut Vm> {
        if self.vm.is_none() {
            let mut notes = Vec::new();
            self.tick("starting a VM");
            let (vm, _, took) = Vm::start_ready(&self.spec, 0, |w| notes.push(w))?;
            for n in notes {
                self.step(n);
            }
            if vm.restored {
                self.restored += 1;
            } else {
                self.booted += 1;
                self.step(format!("booted a VM in {:.1}s", took.as_secs_f64()));
            }
            self.vm = Some(vm);
        }
        self.vm
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no VM for the reproducer"))
    }

    /// Runs the programs in order, `opts.repeat` times; the title of the crash they caused.
    fn run(&mut self, progs: &[&Prog], o: &ReproOpts) -> anyhow::Result<Option<String>> {
        if self
            .cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
        {
            anyhow::bail!("cancelled");
        }
        let scale = self.spec.accel.timeout_scale();
        let eo = ExecOpts {
            sandbox: o.sandbox,
            full_signal: false,
            timeout_ms: (Duration::from_secs(5) * scale).as_millis() as u64,
            call_timeout_ms: (Duration::from_millis(50) * scale).as_millis() as u64,
            threaded: o.threaded || o.collide,
            collide: o.collide,
            comparisons: false,
            fresh: false,
        };
        let encoded: Vec<_> = progs.iter().map(|p| exec::encode(self.target, p)).collect();
        self.attempts += 1;
        let calls: usize = progs.iter().map(|p| p.calls.len()).sum();
        self.tick(&format!(
            "running {} program(s), {calls} calls, x{}",
            progs.len(),
            o.repeat.max(1)
        ));
        let mut id = self.next_id;
        let wanted = self.title.clone();
        let vm = self.vm()?;
        let mut monitor = CrashMonitor::new(vm);
        let mut broken = None;
        'runs: for _ in 0..o.repeat.max(1) {
            for e in &encoded {
                id += 1;
                // A report that leaves the program stuck (a lock held on the way back to user
                // space, say) is not waited out to the program's timeout (90 s under TCG): once
                // a report has been on the console a moment without an answer, the attempt ends.
                let mut first_seen: Option<Instant> = None;
                let mut last_look = Instant::now();
                let mut give_up = |vm: &Vm| {
                    if let Some(t) = first_seen {
                        return t.elapsed() >= vm.scaled(REPORT_GRACE);
                    }
                    if last_look.elapsed() >= Duration::from_secs(1) {
                        last_look = Instant::now();
                        if monitor.seen(vm) {
                            first_seen = Some(Instant::now());
                        }
                    }
                    false
                };
                if let Err(e) = vm.exec_unless(id, e, &eo, &mut give_up) {
                    broken = Some(format!("{e:#}"));
                    break 'runs;
                }
                if monitor.seen(vm) {
                    break 'runs;
                }
            }
        }
        let title = match monitor.check_last(vm, broken.as_deref(), &wanted) {
            Verdict::Crash(r) => Some(r.title),
            Verdict::Flooded => Some(
                CrashKind::LostConnection
                    .made_up_title()
                    .unwrap_or_default()
                    .to_string(),
            ),
            Verdict::NoCrash => None,
        };
        self.next_id = id;
        // The next run gets a fresh kernel after a crash; and after every run when VMs come
        // from a snapshot (a second or so): what one attempt left in the kernel (a lock order
        // lockdep learned, a report that turned lockdep or KASAN off, a leaked object) must not
        // decide the next.
        if title.is_some() || crate::vm::snapshot::enabled(&self.spec) {
            self.vm = None;
        }
        Ok(title)
    }

    fn crashes(&mut self, progs: &[&Prog], o: &ReproOpts) -> anyhow::Result<bool> {
        let got = self.run(progs, o)?;
        Ok(got.as_deref() == Some(self.title.as_str()))
    }

    /// `crashes`, with a miss tried once more on a fresh VM: while minimizing, one flaky miss
    /// would keep a call, an argument or an option the crash does not need, and what the first
    /// run left in the kernel must not decide the second.
    fn still_crashes(&mut self, p: &Prog, o: &ReproOpts) -> anyhow::Result<bool> {
        if self.crashes(&[p], o)? {
            return Ok(true);
        }
        self.shutdown();
        self.crashes(&[p], o)
    }

    /// Runs `progs` with `o` up to `attempts` times, each on a fresh VM, until one crashes:
    /// that crash's title, or None. (`kfuzz regress --fuzz` tries a crash on the baseline so.)
    pub fn try_runs(
        &mut self,
        progs: &[&Prog],
        o: &ReproOpts,
        attempts: usize,
    ) -> anyhow::Result<Option<String>> {
        for _ in 0..attempts.max(1) {
            self.shutdown();
            if let Some(title) = self.run(progs, o)? {
                self.step(format!("crashed: {title}"));
                return Ok(Some(title));
            }
            self.step("no crash");
        }
        Ok(None)
    }

    /// The whole procedure over the log's programs.
    pub fn reproduce(
        &mut self,
        log_progs: &[(Option<u32>, Prog)],
        sandbox: Sandbox,
    ) -> anyhow::Result<Option<Outcome>> {
        let t = self.target;
        let mut o = ReproOpts {
            threaded: true,
            collide: true,
            repeat: 3,
            procs: 1,
            sandbox,
        };
        self.step(format!(
            "{} programs in the log; looking for {:?} with {}",
            log_progs.len(),
            self.title,
            o.header().trim_start_matches("# kfuzz repro ")
        ));
        // 1. The last program of each proc, then the others from the end, one at a time.
        let mut order: Vec<usize> = Vec::new();
        let mut procs_seen = std::collections::HashSet::new();
        for (i, (proc, _)) in log_progs.iter().enumerate().rev() {
            if procs_seen.insert(*proc) {
                order.push(i);
            }
        }
        for i in (0..log_progs.len()).rev() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        let mut found: Option<Prog> = None;
        for &i in order.iter().take(MAX_SINGLES) {
            let p = &log_progs[i].1;
            let got = self.run(&[p], &o)?;
            self.step(format!(
                "program {} of {} alone ({} calls): {}",
                i + 1,
                log_progs.len(),
                p.calls.len(),
                got.as_deref().unwrap_or("no crash")
            ));
            if got.as_deref() == Some(self.title.as_str()) {
                found = Some(p.clone());
                break;
            }
        }
        // 2. Bisect the log: the shortest run of programs ending with the last that crashes.
        if found.is_none() {
            let tail: Vec<&Prog> = log_progs
                .iter()
                .rev()
                .take(MAX_LOG_PROGRAMS)
                .rev()
                .map(|(_, p)| p)
                .collect();
            if tail.is_empty() || !self.crashes(&tail, &o)? {
                self.step("the log's last programs together do not crash: not reproducible");
                return Ok(None);
            }
            let (mut lo, mut hi) = (1, tail.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let ok = self.crashes(&tail[tail.len() - mid..], &o)?;
                self.step(format!(
                    "bisect: the last {mid} programs {}",
                    if ok { "crash" } else { "do not crash" }
                ));
                if ok {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let suffix = &tail[tail.len() - lo..];
            let mut p = Prog::default();
            for q in suffix {
                p = prog::concat(&p, q);
            }
            self.step(format!(
                "bisect: the last {lo} programs, as one of {} calls",
                p.calls.len()
            ));
            found = Some(p);
        }
        let Some(mut p) = found else {
            return Ok(None);
        };
        let calls_before = p.calls.len();
        // 3. Confirm.
        for k in 1..CONFIRMATIONS {
            if !self.crashes(&[&p], &o)? {
                self.step(format!(
                    "confirmation {k} did not crash: not reliable enough"
                ));
                return Ok(None);
            }
        }
        self.step(format!("confirmed: crashed {CONFIRMATIONS} times"));
        // 4. Minimize calls, from the last.
        let mut i = p.calls.len();
        while i > 0 && p.calls.len() > 1 {
            i -= 1;
            let mut q = p.clone();
            minimize::remove_call(t, &mut q, i);
            if self.still_crashes(&q, &o)? {
                self.step(format!("call {i} removed: {} calls left", q.calls.len()));
                p = q;
            } else {
                self.step(format!("call {i} needed: no crash without it in 2 runs"));
            }
        }
        // 5. Minimize arguments: integers to zero where the crash stays.
        for c in 0..p.calls.len() {
            let meta = &t.syscalls[p.calls[c].meta];
            for (a, fd) in meta.args.iter().enumerate() {
                let plain = matches!(fd.ty.kind, TypeKind::Int { .. } | TypeKind::Flags { .. });
                if !plain || !matches!(p.calls[c].args.get(a), Some(Arg::Int(v)) if *v != 0) {
                    continue;
                }
                let mut q = p.clone();
                q.calls[c].args[a] = Arg::Int(0);
                if self.still_crashes(&q, &o)? {
                    self.step(format!("call {c}: argument {} set to 0", fd.name));
                    p = q;
                }
            }
        }
        // 6. Simplify the options.
        let simpler: [(&str, Simplify); 4] = [
            ("collide off", |o| ReproOpts {
                collide: false,
                ..o
            }),
            ("threaded off", |o| ReproOpts {
                threaded: false,
                collide: false,
                ..o
            }),
            ("repeat off", |o| ReproOpts { repeat: 1, ..o }),
            ("sandbox none", |o| ReproOpts {
                sandbox: Sandbox::None,
                ..o
            }),
        ];
        for (what, simplify) in simpler {
            let next = simplify(o);
            if next == o {
                continue;
            }
            let ok = self.still_crashes(&p, &next)?;
            self.step(format!(
                "{what}: {}",
                if ok { "still crashes" } else { "needed" }
            ));
            if ok {
                o = next;
            }
        }
        Ok(Some(Outcome {
            prog: p,
            opts: o,
            calls_before,
            elapsed: self.started.elapsed(),
            c_crashes: None,
        }))
    }

    /// Compiles the C reproducer on the host, runs it in the guest, and says whether it crashed
    /// with the title. None when there is no C compiler.
    pub fn check_c(&mut self, c_file: &Path) -> anyhow::Result<Option<bool>> {
        let bin = c_file.with_extension("bin");
        let Ok(cc) = which::which("gcc") else {
            self.step("no gcc on the host: the C reproducer was not tried");
            return Ok(None);
        };
        let out = duct::cmd!(cc, "-static", "-Wall", "-O1", "-o", &bin, c_file)
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .context("running gcc")?;
        if !out.status.success() {
            self.step(format!(
                "repro.c does not compile:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
            return Ok(Some(false));
        }
        let data = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
        let _ = std::fs::remove_file(&bin);
        let scale = self.spec.accel.timeout_scale();
        let mut crashed = false;
        let wanted = self.title.clone();
        for attempt in 1..=2 {
            let vm = self.vm()?;
            let mut monitor = CrashMonitor::new(vm);
            vm.write_file("/tmp/repro", &data, 0o755)?;
            let broken = vm
                .command(&["/tmp/repro".to_string()], Duration::from_secs(10) * scale)
                .err()
                .map(|e| format!("{e:#}"));
            let title = match monitor.check_last(vm, broken.as_deref(), &wanted) {
                Verdict::Crash(r) => Some(r.title),
                Verdict::NoCrash | Verdict::Flooded => None,
            };
            self.vm = None;
            crashed = title.as_deref() == Some(self.title.as_str());
            self.step(format!(
                "repro.c in the guest (attempt {attempt}): {}",
                title.as_deref().unwrap_or("no crash")
            ));
            if crashed {
                break;
            }
        }
        Ok(Some(crashed))
    }

    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    pub fn shutdown(&mut self) {
        if let Some(vm) = self.vm.take() {
            vm.shutdown();
        }
    }

    /// The VM shut down and the live line gone.
    pub fn finish(&mut self) {
        self.shutdown();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The files a reproducer leaves in its crash directory.
pub struct Written {
    pub syz: PathBuf,
    pub c: PathBuf,
    pub log: PathBuf,
}

/// Writes `repro.syz` (options header, then the program) and `repro.c`.
pub fn write_repro(dir: &CrashDir, target: &Target, o: &Outcome) -> anyhow::Result<Written> {
    let syz = dir.repro_syz();
    let body = format!("{}\n{}", o.opts.header(), text::format(target, &o.prog));
    crate::fsutil::write_atomic(&syz, body.as_bytes())?;
    let c = dir.repro_c();
    let scale_ms = 300;
    let csrc = csource::generate(
        target,
        &o.prog,
        &csource::Options {
            threaded: o.opts.threaded,
            repeat: u64::from(o.opts.repeat),
            sandbox: o.opts.sandbox,
            call_timeout_ms: scale_ms,
        },
    );
    crate::fsutil::write_atomic(&c, csrc.as_bytes())?;
    Ok(Written {
        syz,
        c,
        log: dir.repro_log(),
    })
}

/// What `reproduce_dir` found.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub title: String,
    pub seconds: f64,
    pub calls_before: usize,
    pub calls_after: usize,
    pub options: ReproOpts,
    pub c_crashes: Option<bool>,
    pub syz: PathBuf,
    pub c: PathBuf,
}

impl Summary {
    pub fn line(&self) -> String {
        let c = match self.c_crashes {
            Some(true) => "crashes with the same title",
            Some(false) => "did not crash with the same title",
            None => "not tried",
        };
        format!(
            "{:?} in {:.0}s: {} calls before minimization, {} after; {}; repro.c {c}",
            self.title,
            self.seconds,
            self.calls_before,
            self.calls_after,
            self.options.header().trim_start_matches("# kfuzz repro ")
        )
    }
}

/// Reproduces the crash `title` from `log`, writing `repro.syz`, `repro.c`, `repro.log` and
/// `repro.json` into `out_dir`. None (and a `repro.log` saying why) when it does not reproduce.
#[allow(clippy::too_many_arguments)]
pub fn reproduce_into(
    target: &Target,
    spec: VmSpec,
    log: &str,
    title: &str,
    sandbox: Sandbox,
    out_dir: &CrashDir,
    shell: &Shell,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Option<Summary>> {
    let progs = programs_from_log(target, log);
    if progs.is_empty() {
        anyhow::bail!(
            "the log holds no program (no `kfuzz: executing program` lines followed by program \
             text)"
        );
    }
    let mut r = Reproducer::new(target, spec, title, shell).log_to(&out_dir.repro_log());
    if let Some(c) = cancel {
        r = r.cancel_on(c);
    }
    let result = r.reproduce(&progs, sandbox).and_then(|found| {
        let Some(mut o) = found else { return Ok(None) };
        let files = write_repro(out_dir, target, &o)?;
        o.c_crashes = r.check_c(&files.c).unwrap_or_else(|e| {
            shell.warn(format!("the C reproducer could not be tried: {e:#}"));
            None
        });
        Ok(Some((o, files)))
    });
    r.finish();
    let mut steps = r.steps().join("\n");
    steps.push('\n');
    let found = result?;
    let Some((o, files)) = found else {
        steps.push_str("not reproduced\n");
        crate::fsutil::write_atomic(&out_dir.repro_log(), steps.as_bytes())?;
        return Ok(None);
    };
    let s = Summary {
        title: title.to_string(),
        seconds: o.elapsed.as_secs_f64(),
        calls_before: o.calls_before,
        calls_after: o.prog.calls.len(),
        options: o.opts,
        c_crashes: o.c_crashes,
        syz: files.syz,
        c: files.c,
    };
    steps.push_str(&format!("reproduced {}\n", s.line()));
    crate::fsutil::write_atomic(&files.log, steps.as_bytes())?;
    crate::fsutil::write_atomic(
        &out_dir.repro_json(),
        format!("{:#}\n", serde_json::to_value(&s)?).as_bytes(),
    )?;
    Ok(Some(s))
}
