//! `kfuzz bench`: the fuzzer's speed and the value of feedback, on this kernel and machine.
//! Prints figures; asserts nothing.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::run::parse_duration;
use super::syscalls::TargetArgs;
use crate::fuzz::{FuzzOptions, Fuzzer};
use crate::shell::{Shell, Verbosity};
use crate::vm::{Accel, Vm};

/// Benchmark: raw in-guest syscall loop vs. the fuzzer with and without coverage feedback.
/// Rates on the lines printed during a phase are for that interval alone; the last line of a
/// phase averages the whole phase, boot included.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub guest: super::boot::GuestArgs,
    /// How long each fuzzing phase runs
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// How often figures are printed during a phase
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub interval: Duration,
    /// VMs per fuzzing phase
    #[arg(long, default_value_t = 1)]
    pub vms: usize,
    /// Programs run at once in each VM (default: the manifest's `fuzz.procs`, as `kfuzz run`)
    #[arg(long)]
    pub procs: Option<usize>,
    /// Run only this phase: feedback, no-feedback, recovery (crash → fuzzing again) or
    /// coverage (with --coverage-against)
    #[arg(long, value_name = "PHASE", value_parser = ["feedback", "no-feedback", "recovery", "coverage"])]
    pub only: Option<String>,
    /// Seconds of the raw loop
    #[arg(long, default_value_t = 20)]
    pub raw_secs: u64,
    /// LKDTM crashes provoked in the recovery phase, each for restore and for reboot
    #[arg(long, default_value_t = 3)]
    pub crashes: usize,
    /// Another kfuzz binary (a build of an earlier commit): a coverage phase runs it and this
    /// build side by side on the same calls, one VM each, and compares their coverage
    #[arg(long, value_name = "BIN")]
    pub coverage_against: Option<PathBuf>,
    /// When the coverage phase reads the figures (its length is the last)
    #[arg(long, value_parser = parse_duration, value_delimiter = ',', default_value = "10m,30m")]
    pub coverage_at: Vec<Duration>,
}

/// Calls per raw-loop iteration: getpid pipe write read close close shmget shmat shmdt shmctl.
const RAW_CALLS: f64 = 10.0;

pub fn exec(mut args: Args, shell: &Shell) -> anyhow::Result<i32> {
    if args.target.syscalls.is_empty() {
        args.target.syscalls = vec!["shm*,msg*,sem*".into()];
    }
    let l = args.target.load(shell)?;
    let procs = args.procs.unwrap_or(l.manifest.fuzz.procs as usize).max(1);
    let kernel = crate::vm::boot::kernel_from_build(&l.tree.build_dir())?;
    let work = l.tree.work_dir();
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let accel = Accel::detect();
    let bench_dir = work.join("bench");
    let _ = std::fs::remove_dir_all(&bench_dir);
    let spec = guest.spec(&l.manifest.vm, kernel, bench_dir.clone(), accel.clone());
    let mode = match &accel {
        Accel::Kvm => "KVM".to_string(),
        Accel::Tcg(_) => "TCG".to_string(),
    };
    shell.status(
        "Benchmark",
        format!(
            "{mode}, {} calls enabled, phases of {}s, {} VM(s) × {procs} procs",
            l.selection.enabled.len(),
            args.duration.as_secs(),
            args.vms
        ),
    );

    // 1. The raw loop (what the fuzzing phases are measured against).
    let fuzzing = args
        .only
        .as_deref()
        .is_none_or(|o| o == "feedback" || o == "no-feedback");
    let raw = if fuzzing {
        let mut vm = Vm::start(&spec, 0)?;
        vm.wait_ready(crate::vm::boot::BOOT_TIMEOUT * accel.timeout_scale())?;
        // In slices, the best of which counts: the guest's pace varies with what the host
        // does meanwhile (several-fold on a busy 2-core machine), and the fuzzer's share is
        // taken against what the guest can do undisturbed.
        let slices = args.raw_secs.clamp(1, 5);
        let mut rates = Vec::new();
        let mut kcov = false;
        for _ in 0..slices {
            let (rate, k) = vm.raw_loop(args.raw_secs * 1000 / slices)?;
            rates.push(rate);
            kcov = k;
        }
        vm.shutdown();
        let raw = rates.iter().copied().fold(0.0, f64::max);
        let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
        shell.println(format!(
            "raw loop: {raw:.1} iterations/s ({RAW_CALLS} calls each, KCOV {}) = {:.0} calls/s (the best of {slices} slices; the slowest {:.0} calls/s)",
            if kcov { "on" } else { "off" },
            raw * RAW_CALLS,
            low * RAW_CALLS
        ));
        raw
    } else {
        0.0
    };

    // 2. Crash → fuzzing again, restored from a snapshot vs rebooted.
    if args.only.as_deref().is_none_or(|o| o == "recovery") && args.crashes > 0 {
        let recovery = recovery(&spec, &l, args.crashes, shell)?;
        shell.json(&serde_json::json!({"reason": "bench-recovery", "phases": recovery}));
    }

    // 3. Coverage against another build, side by side.
    if let Some(against) = &args.coverage_against {
        if args.only.as_deref().is_none_or(|o| o == "coverage") {
            let c = super::bench_coverage::compare(
                &l.tree.root,
                &bench_dir,
                against,
                &args.target.syscalls,
                &args.coverage_at,
                shell,
            )?;
            shell.json(&serde_json::json!({"reason": "bench-coverage", "coverage": c}));
        }
    }

    // 4. and 5. The fuzzer with and without feedback.
    let quiet = Shell::new(Verbosity::Quiet, shell.format);
    let mut finals = Vec::new();
    let mut mixes = Vec::new();
    for (name, no_feedback) in [("feedback", false), ("no-feedback", true)] {
        if args.only.as_deref().is_some_and(|o| o != name)
            || args.only.as_deref() == Some("recovery")
        {
            continue;
        }
        let fuzzer = Fuzzer::new(
            FuzzOptions {
                target: Arc::new(l.loaded.target.clone()),
                enabled: l.selection.enabled.clone(),
                spec: spec.clone(),
                vms: args.vms,
                procs,
                threaded: false,
                collide: false,
                sandbox: kfuzz_wire::Sandbox::None,
                duration: Some(args.duration),
                workdir: bench_dir.join(name),
                seeds: Vec::new(),
                no_feedback,
                reproduce: false,
                commit: None,
                symbols: None,
                focus: None,
                lines: None,
                seed: Some(1),
                tree: Some(l.tree.clone()),
            },
            &quiet,
        )?;
        let f = Arc::clone(&fuzzer);
        let runner = std::thread::spawn(move || f.run());
        let started = Instant::now();
        let mut next = args.interval;
        let (mut last_execs, mut last_calls) = (0u64, 0u64);
        while !runner.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() >= next {
                next += args.interval;
                let s = &fuzzer.stats;
                let secs = started.elapsed().as_secs_f64();
                let (execs, calls) = (
                    s.execs.load(Ordering::SeqCst),
                    s.calls.load(Ordering::SeqCst),
                );
                let window = args.interval.as_secs_f64() * args.vms as f64;
                shell.println(format!(
                    "{name:>12} {:>5.0}s  execs/s/VM {:>6.1}  calls/s/VM {:>7.1} ({:>4.1}% of raw)  signal {:>6}  corpus {:>4}",
                    secs,
                    (execs - last_execs) as f64 / window,
                    (calls - last_calls) as f64 / window,
                    100.0 * (calls - last_calls) as f64 / window / (raw * RAW_CALLS).max(0.001),
                    s.max_signal.load(Ordering::SeqCst),
                    s.corpus.load(Ordering::SeqCst),
                ));
                (last_execs, last_calls) = (execs, calls);
            }
        }
        let summary = runner
            .join()
            .map_err(|_| anyhow::anyhow!("the {name} phase panicked"))?;
        let calls_per_sec =
            fuzzer.stats.calls.load(Ordering::SeqCst) as f64 / summary.elapsed_secs.max(0.001);
        let st = &fuzzer.stats;
        let per = |v: &std::sync::atomic::AtomicU64| {
            v.load(Ordering::SeqCst) as f64 / 1000.0 / summary.execs.max(1) as f64
        };
        let (setup, calls, teardown, request) = (
            per(&st.setup_us),
            per(&st.calls_us),
            per(&st.teardown_us),
            per(&st.request_us),
        );
        let (marker, handoff, cleanup) =
            (per(&st.marker_us), per(&st.handoff_us), per(&st.cleanup_us));
        let wall = 1000.0 * summary.elapsed_secs / summary.execs.max(1) as f64 * procs as f64;
        shell.println(format!(
            "{name:>12}: per execution {request:.1} ms as the host waits = guest setup {setup:.1} (marker {marker:.1}, handoff {handoff:.1}, prepare {:.1}) + calls {calls:.1} + teardown {teardown:.1} (cleanup {cleanup:.1}, results {:.1}) + channel and host {:.1}; {wall:.1} ms per execution per proc in all",
            (setup - marker - handoff).max(0.0),
            (teardown - cleanup).max(0.0),
            (request - setup - calls - teardown).max(0.0)
        ));
        let calls_run = st.calls.load(Ordering::SeqCst).max(1);
        let eintr = st.interrupted.load(Ordering::SeqCst);
        shell.println(format!(
            "{name:>12}: {eintr} of {calls_run} calls ({:.1}%) blocked until interrupted ({:.1} calls per program)",
            100.0 * eintr as f64 / calls_run as f64,
            calls_run as f64 / summary.execs.max(1) as f64
        ));
        shell.println(format!("{name:>12}: work mix"));
        for line in crate::fuzz::mix::format_report(&summary.mix) {
            shell.println(format!("{:>12}  {line}", ""));
        }
        mixes.push((name, summary.mix.clone()));
        finals.push((
            name,
            calls_per_sec / args.vms as f64,
            fuzzer.stats.max_signal.load(Ordering::SeqCst),
            summary.execs as f64 / summary.elapsed_secs.max(0.001) / args.vms as f64,
        ));
    }
    for (name, calls, signal, execs) in &finals {
        shell.println(format!(
            "{name:>12}: {execs:.1} execs/s per VM, {calls:.1} calls/s per VM = {:.1}% of the raw loop's calls/s; signal {signal} after {}s",
            100.0 * calls / (raw * RAW_CALLS).max(0.001),
            args.duration.as_secs()
        ));
    }
    let phases: Vec<_> = finals
        .iter()
        .zip(&mixes)
        .map(|((n, c, s, e), (_, mix))| {
            serde_json::json!({"name": n, "calls_per_sec_per_vm": c, "signal": s, "execs_per_sec_per_vm": e, "mix": mix})
        })
        .collect();
    shell.json(
        &serde_json::json!({"reason": "bench", "raw_iterations_per_sec": raw, "phases": phases}),
    );
    Ok(0)
}

/// Times the way back to fuzzing after a crash: LKDTM crashes the VM (`BUG`), and a new VM,
/// restored from a snapshot or booted, runs a generated program. Per way: the mean from the crash
/// seen on the console to the program's result, and the mean time to a ready VM.
fn recovery(
    spec: &crate::vm::VmSpec,
    l: &super::syscalls::Loaded,
    crashes: usize,
    shell: &Shell,
) -> anyhow::Result<Vec<serde_json::Value>> {
    use rand::SeedableRng;
    let target = &l.loaded.target;
    let ct = kfuzz_prog::gen::ChoiceTable::new(target, &l.selection.enabled);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let scale = spec.accel.timeout_scale();
    let opts = kfuzz_wire::ExecOpts::new(5000 * scale as u64, 50 * scale as u64);
    let mut out = Vec::new();
    for (name, snapshots) in [("restore", true), ("reboot", false)] {
        let mut s = spec.clone();
        if !snapshots {
            s.snapshot_dir = None;
        } else if !crate::vm::snapshot::enabled(&s) {
            shell.note(
                "Skipping",
                "restore timing: snapshots are off for this guest",
            );
            continue;
        }
        let (mut vm, hs, _) = Vm::start_ready(&s, 0, |w| shell.warn(w))?;
        if !hs.features.lkdtm {
            shell.note("Skipping", "the recovery phase: this kernel has no LKDTM");
            return Ok(out);
        }
        let (mut back, mut ready) = (Vec::new(), Vec::new());
        for i in 0..crashes {
            vm.provoke_crash("BUG")?;
            let report = vm.wait_crash(vm.scaled(Duration::from_secs(30)));
            let crashed = Instant::now();
            let Some(title) = report.map(|r| r.title) else {
                anyhow::bail!("vm0: LKDTM BUG did not crash the guest");
            };
            drop(vm);
            let (mut next, _, took) = Vm::start_ready(&s, 0, |w| shell.warn(w))?;
            let prog = kfuzz_prog::gen::generate(target, &ct, &mut rng, 3);
            let encoded = kfuzz_prog::exec::encode(target, &prog);
            next.exec(i as u64 + 1, &encoded, &opts)?;
            back.push(crashed.elapsed().as_secs_f64());
            ready.push(took.as_secs_f64());
            shell.verbose(
                "Recovered",
                format!(
                    "{name} #{}: \"{title}\" → ready in {took:.1?}, program done {:.2}s after the crash",
                    i + 1,
                    crashed.elapsed().as_secs_f64()
                ),
            );
            vm = next;
        }
        vm.shutdown();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        shell.println(format!(
            "{:>12}: crash → fuzzing again {:.2}s, new VM ready {:.2}s (mean of {} LKDTM crashes)",
            name,
            mean(&back),
            mean(&ready),
            back.len()
        ));
        out.push(serde_json::json!({"name": name, "crash_to_fuzzing_secs": mean(&back), "vm_ready_secs": mean(&ready), "crashes": back.len()}));
    }
    Ok(out)
}
