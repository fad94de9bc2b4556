//! `kfuzz regress [--corpus DIR…] [--baseline REF | --baseline-kernel PATH] [--fuzz D]
//! [--vms N] [--timeout T] [--junit FILE] [--ktap FILE] [--kcidb FILE] [--json FILE]`
//!
//! Exit status: 0 clean; 1 a new crash (a corpus program crashed the kernel, or `--fuzz` found
//! a crash; with a baseline, and not the baseline the same way); 2 more coverage lost than
//! `regress.lost_coverage_percent` allows (recorded coverage, or with a baseline the
//! baseline's); 3 kfuzz itself failed (no kernel, no VM booted, an unreadable corpus). A
//! reproducer that still crashes is reported ("still broken") but is not a new crash. See
//! docs/ci.md.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::syscalls::TargetArgs;
use crate::ci_report::provenance::TestedKernel;
use crate::ci_report::{self, CoverageSummary, RegressRun};
use crate::kernel::baseline;
use crate::kernel::build::{self, BuildOptions, BuildOutcome};
use crate::kernel::lines::LineTable;
use crate::kernel::patch::cover::PatchMap;
use crate::kernel::patch::{Patch, PatchSource};
use crate::regress::found::{self, FoundCrash};
use crate::regress::judge::{self, Change, Judgement};
use crate::regress::{self, Verdict};
use crate::shell::Shell;
use crate::vm::Accel;

/// Replay the corpus and every saved reproducer on the current build: what crashes, what
/// coverage is lost
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Corpus folders to replay (default: the work dir's corpus and kfuzz.toml's
    /// regress.corpus)
    #[arg(long, value_name = "DIR")]
    pub corpus: Vec<PathBuf>,
    /// VMs to spread the programs over (default: kfuzz.toml's vm.count)
    #[arg(long, value_name = "N")]
    pub vms: Option<usize>,
    /// Seconds a program may run (KVM; scaled under TCG)
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
    /// Write a JUnit report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the results as KTAP (as kselftest and KUnit print them) here
    #[arg(long, value_name = "FILE")]
    pub ktap: Option<PathBuf>,
    /// Write the results as KernelCI's KCIDB JSON (schema v5.3) here
    #[arg(long, value_name = "FILE")]
    pub kcidb: Option<PathBuf>,
    /// Write the results as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Replay on this kernel (a bzImage) instead of building the tree
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Also replay on a build of this git commit (checked out and built under
    /// .kfuzz/baseline/) and compare: crashes only on this build, coverage only on the baseline
    #[arg(long, value_name = "REF")]
    pub baseline: Option<String>,
    /// The baseline as a kernel already built (a bzImage, or the build folder holding one)
    /// instead of a build of --baseline's commit
    #[arg(long, value_name = "PATH", conflicts_with = "baseline")]
    pub baseline_kernel: Option<PathBuf>,
    /// After the replay, fuzz this build for this long (`90s`, `15m`) aimed at the patch, and
    /// try every crash found on the baseline: new with the patch (exit 1) or already on the
    /// baseline (reported). Its corpus and crashes go to .kfuzz/regress-fuzz/
    #[arg(long, value_name = "DURATION", value_parser = super::run::parse_duration)]
    pub fuzz: Option<Duration>,
    /// With --fuzz: do not reproduce the crashes found (their logs' last programs are tried on
    /// the baseline instead)
    #[arg(long)]
    pub no_reproduce: bool,
    /// The change since the corpus was recorded: a diff file, a commit, or (no value) the
    /// working tree against HEAD. Default: the working tree against the commit the corpus was
    /// recorded at, when the tree is a git checkout. Functions it changes are compared apart;
    /// the lost-coverage threshold applies to the rest
    #[arg(long, value_name = "REV|FILE", num_args = 0..=1, default_missing_value = "")]
    pub patch: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub guest: super::boot::GuestArgs,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    match run(args, shell) {
        Ok(code) => Ok(code),
        Err(e) => {
            shell.error(&e);
            Ok(3)
        }
    }
}

/// `--junit`, `--ktap`, `--kcidb` and `--json` name files of their own: not each other, not
/// the kernel, not a file of a corpus being replayed.
fn check_outputs(args: &Args, corpus_dirs: &[PathBuf]) -> anyhow::Result<()> {
    let outputs = [
        ("--junit", &args.junit),
        ("--ktap", &args.ktap),
        ("--kcidb", &args.kcidb),
        ("--json", &args.json),
    ];
    let named: Vec<(&str, &PathBuf)> = outputs
        .iter()
        .filter_map(|(flag, out)| out.as_ref().map(|o| (*flag, o)))
        .collect();
    for (i, (flag, out)) in named.iter().enumerate() {
        for (other_flag, other) in &named[i + 1..] {
            if crate::fsutil::canonical(out)? == crate::fsutil::canonical(other)? {
                anyhow::bail!(
                    "`{flag}` and `{other_flag}` name the same file ({}); give each its own",
                    out.display()
                );
            }
        }
    }
    let corpus_files: Vec<PathBuf> = corpus_dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .collect();
    for (flag, out) in named {
        let inputs = args.kernel.iter().chain(&corpus_files);
        crate::fsutil::ensure_not_an_input(flag, out, inputs.map(|p| p.as_path()))?;
    }
    Ok(())
}

fn run(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    check_outputs(&args, &args.corpus)?;
    let mut l = args.target.load(shell)?;
    let kernel = match &args.kernel {
        Some(k) => std::path::absolute(k)?,
        None => match build::build(&l.tree, &l.manifest, &BuildOptions::default(), shell)? {
            BuildOutcome::Kernel(k) => {
                crate::vm::boot::kernel_from_build(&l.tree.build_dir()).unwrap_or(k.bzimage)
            }
            BuildOutcome::ConfigOnly { .. } => anyhow::bail!("the build made no kernel"),
        },
    };
    let workdir = l.tree.root.join(&l.manifest.fuzz.workdir);
    let corpus_dirs: Vec<PathBuf> = if args.corpus.is_empty() {
        super::syscalls::known_corpora(&l.tree, &l.manifest)
    } else {
        args.corpus.clone()
    };
    check_outputs(&args, &corpus_dirs)?;
    let (items, skipped) = regress::collect(
        &l.loaded.target,
        &corpus_dirs,
        &workdir.join("crashes"),
        shell,
    );
    let repros = items.iter().filter(|i| i.repro_of.is_some()).count();
    let patch = change_since_recording(&args, &l.tree.root, &items, shell)?;
    // `--fuzz --patch` without `--syscalls`: the calls that reach the patch, as `run` picks them.
    if let (Some(p), Some(_), true) = (&patch, args.fuzz, args.target.syscalls.is_empty()) {
        super::run::choose_calls_for(p, &mut l, corpus_dirs.clone(), &args.target.disable, shell)?;
    }
    let l = l;
    let t = &l.loaded.target;
    let work = l.tree.work_dir();
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let accel = Accel::detect_and_tell(shell);
    let scale = accel.timeout_scale();
    // The baseline first: its checkout and build are the slow, failing-early part.
    let baseline = match &args.baseline {
        Some(rev) => {
            let (btree, id) = baseline::checkout(&l.tree, rev, shell)?;
            shell.status(
                "Building",
                format!("the baseline {rev} ({:.12})", id.to_string()),
            );
            let k = match build::build(&btree, &l.manifest, &BuildOptions::default(), shell)? {
                BuildOutcome::Kernel(k) => {
                    crate::vm::boot::kernel_from_build(&btree.build_dir()).unwrap_or(k.bzimage)
                }
                BuildOutcome::ConfigOnly { .. } => {
                    anyhow::bail!("the baseline build made no kernel")
                }
            };
            Some((rev.clone(), k))
        }
        None => match &args.baseline_kernel {
            Some(p) => Some((p.display().to_string(), kernel_at(p)?)),
            None => None,
        },
    };
    let baseline_kernel = baseline.as_ref().map(|(_, k)| k.clone());
    let vms = args
        .vms
        .unwrap_or(l.manifest.vm.count as usize)
        .clamp(1, items.len().max(1));
    // Every program on `kernel`'s VMs (their consoles under .kfuzz/<dir>/).
    let replay_on = |kernel: PathBuf, dir: &str| {
        let symbols = crate::kernel::symbols::load_for(&kernel, shell);
        let spec = guest.spec(&l.manifest.vm, kernel, work.join(dir), accel.clone());
        let timeout = Duration::from_secs(args.timeout) * scale;
        regress::replay(t, symbols.as_deref(), &spec, vms, timeout, &items, shell)
    };
    shell.status(
        "Replaying",
        format!(
            "{} corpus programs and {repros} reproducers on {vms} VM{}",
            items.len() - repros,
            if vms == 1 { "" } else { "s" }
        ),
    );
    let kernel_path = kernel.clone();
    let results = replay_on(kernel, "regress");
    let diff = baseline.map(|(rev, k)| {
        shell.status("Replaying", format!("the same on the baseline {rev}"));
        let bresults = replay_on(k, "regress-baseline");
        let d = regress::diff(&items, &results, &bresults);
        (rev, d)
    });
    let mut results = results;
    if let Some((_, d)) = &diff {
        for r in results.iter_mut() {
            if r.verdict == Verdict::NewCrash && d.crashes_on_both.iter().any(|(p, _)| *p == r.path)
            {
                r.verdict = Verdict::CrashesOnBaseline;
            }
        }
    }
    // Coverage is judged on the replay; what fuzzing finds joins the crashes below.
    let mut items = items;
    let replayed = items.len();
    let fuzzed = match args.fuzz {
        Some(d) => {
            let sort = FuzzSort {
                duration: d,
                vms: args.vms.unwrap_or(l.manifest.vm.count as usize),
                reproduce: l.manifest.fuzz.reproduce && !args.no_reproduce,
                seeds: corpus_dirs.clone(),
                baseline: baseline_kernel.map(|k| {
                    guest.spec(
                        &l.manifest.vm,
                        k,
                        work.join("regress-fuzz/baseline"),
                        accel.clone(),
                    )
                }),
            };
            let f = fuzz_and_sort(&l, &guest, &kernel_path, patch.clone(), sort, shell)?;
            for c in &f.crashes {
                let (item, result) = c.as_item(&l.loaded.target);
                items.push(item);
                results.push(result);
            }
            Some(f)
        }
        None => None,
    };
    let mut new_crashes = 0;
    let mut errors = 0;
    for (i, r) in results.iter().enumerate() {
        let found = i >= replayed;
        let what = match r.verdict {
            Verdict::Ok => continue,
            Verdict::CrashesOnBaseline if found => "found by fuzzing, already on the baseline",
            Verdict::CrashesOnBaseline => "crashes on the baseline too",
            Verdict::NewCrash => {
                new_crashes += 1;
                if found {
                    "found by fuzzing, new with this patch"
                } else {
                    "new crash"
                }
            }
            Verdict::StillBroken => "still broken",
            Verdict::OtherCrash => "crashed differently",
            Verdict::Fixed => "fixed (no longer crashes)",
            Verdict::Error => {
                errors += 1;
                "not run"
            }
        };
        shell.note(
            "Regress",
            format!(
                "{}: {what}{}",
                r.path.display(),
                r.title
                    .as_ref()
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
            ),
        );
    }
    let threshold = l.manifest.regress.lost_coverage_percent;
    let (pc_lost, pc_recorded, _) =
        regress::lost_coverage(&items[..replayed], &results[..replayed]);
    let judgement = judge_coverage(
        &items[..replayed],
        &results[..replayed],
        &kernel_path,
        patch.as_ref(),
        shell,
    );
    let (lost, recorded) = (judgement.lost, judgement.recorded);
    let pct = judgement.percent();
    let losing: Vec<_> = results.iter().filter(|r| r.lost_cover > 0).collect();
    for r in &losing {
        shell.verbose(
            "Lost",
            format!(
                "{}: {} of {} recorded PCs",
                r.path.display(),
                r.lost_cover,
                r.recorded_cover
            ),
        );
    }
    let groups = by_file(&judgement);
    let unit = judgement.unit_name();
    let unchanged = if judgement.changed.is_empty() {
        ""
    } else {
        " of unchanged code"
    };
    shell.status(
        "Coverage",
        format!(
            "{lost} of {recorded} recorded {unit}{unchanged} no longer reached ({pct:.1}%, threshold {threshold}%); {} programs lost some PCs",
            losing.len()
        ),
    );
    for f in &judgement.touched_files {
        shell.status(
            "Coverage",
            format!(
                "{}, which the patch touches: {} of {} recorded {unit} of unchanged code no longer reached ({:.1}%)",
                f.file,
                f.lost,
                f.recorded,
                f.percent()
            ),
        );
    }
    let shown = if shell.verbosity == crate::shell::Verbosity::Verbose {
        usize::MAX
    } else {
        10
    };
    for f in judgement.lost_functions.iter().take(shown) {
        let mut what: Vec<String> = f.lost.iter().take(8).cloned().collect();
        if f.lost.len() > 8 {
            what.push("…".into());
        }
        let place = if f.file.is_empty() {
            f.function.clone()
        } else {
            format!("{}: {}", f.file, f.function)
        };
        shell.note(
            "Lost",
            format!(
                "{place}: {} of {} {unit} ({})",
                f.lost.len(),
                f.recorded,
                what.join(", ")
            ),
        );
    }
    for c in &judgement.changed {
        shell.note(
            "Changed",
            format!(
                "{}{}: changed by the patch; {} {unit} reached now, {} when recorded",
                if c.file.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", c.file)
                },
                c.function,
                c.reached,
                c.recorded
            ),
        );
    }
    // With a baseline, the coverage verdict is the baseline's coverage this build misses.
    let mut verdict_pct = judgement.judged_percent();
    if let Some((rev, d)) = &diff {
        let bpct = 100.0 * d.cover_only_on_baseline.len() as f64 / d.baseline_cover.max(1) as f64;
        verdict_pct = bpct;
        shell.status(
            "Baseline",
            format!(
                "{rev}: {} crash(es) only on this build, {} on both, {} only on the baseline; \
                 {} of {} PCs reached on the baseline are not reached here ({bpct:.1}%), {} new here",
                d.crashes_only_here.len(),
                d.crashes_on_both.len(),
                d.crashes_only_on_baseline.len(),
                d.cover_only_on_baseline.len(),
                d.baseline_cover,
                d.cover_only_here
            ),
        );
        for (group, n, funcs) in
            regress::summarize_lost(&items[..replayed], &d.cover_only_on_baseline)
                .iter()
                .take(10)
        {
            shell.note(
                "Only base",
                format!(
                    "{group}: {n} PCs ({})",
                    funcs.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let coverage = CoverageSummary {
        lost,
        recorded,
        judged_percent: verdict_pct,
        threshold_percent: threshold,
        by_file: &groups,
    };
    if let Some(path) = &args.junit {
        let x = regress::junit(&items, &results, &skipped, &coverage, secs);
        crate::fsutil::write_atomic(path, x.as_bytes())?;
    }
    if args.ktap.is_some() || args.kcidb.is_some() {
        let report = RegressRun::new(&items, &results, &skipped, coverage, secs);
        if let Some(path) = &args.ktap {
            crate::fsutil::write_atomic(path, ci_report::ktap::write(&report).as_bytes())?;
        }
        if let Some(path) = &args.kcidb {
            let kernel = tested_kernel(&args, &l.tree, &l.manifest);
            let run_id = ci_report::kcidb::new_run_id(started_at);
            let doc = ci_report::kcidb::write(&report, &kernel, &run_id, started_at);
            crate::fsutil::write_atomic(path, format!("{doc:#}\n").as_bytes())?;
        }
    }
    let summary = serde_json::json!({
        "programs": results,
        "skipped": skipped
            .iter()
            .map(|(p, why)| serde_json::json!({"path": p, "reason": why}))
            .collect::<Vec<_>>(),
        "lost_cover": lost,
        "recorded_cover": recorded,
        "lost_by_file": groups
            .iter()
            .map(|(g, n, f)| serde_json::json!({"file": g, "lost": n, "functions": f}))
            .collect::<Vec<_>>(),
        "lost_percent": pct,
        "judged_percent": judgement.judged_percent(),
        "touched_files": judgement.touched_files,
        "coverage_unit": judgement.unit,
        "lost_functions": judgement.lost_functions,
        "changed_functions": judgement.changed,
        "patch": patch.as_ref().map(|p| &p.origin),
        // Every recorded PC compared by offset, changed functions included: the rule before
        // changes and lines were told apart.
        "pc_comparison": {
            "lost": pc_lost,
            "recorded": pc_recorded,
            "percent": 100.0 * pc_lost as f64 / pc_recorded.max(1) as f64,
        },
        "threshold_percent": threshold,
        "new_crashes": new_crashes,
        "baseline": diff.as_ref().map(|(rev, d)| serde_json::json!({"ref": rev, "diff": d})),
        "fuzz": fuzzed,
        "seconds": secs,
    });
    if let Some(path) = &args.json {
        crate::fsutil::write_atomic(path, format!("{summary:#}\n").as_bytes())?;
    }
    shell.json(&serde_json::json!({"reason": "regress-finished", "summary": summary}));
    let code = if errors > 0 && errors == results.len() {
        3
    } else if new_crashes > 0 {
        1
    } else if verdict_pct > threshold {
        2
    } else {
        0
    };
    shell.status(
        "Finished",
        format!(
            "{} programs in {secs:.0}s: {new_crashes} new crash(es), exit status {code}",
            results.len()
        ),
    );
    Ok(code)
}

/// The kernel `kfuzz regress` replayed on: the tree's commit, and the build's `.config` (the
/// tree's build, or the one beside `--kernel`'s bzImage when it has one).
fn tested_kernel(
    args: &Args,
    tree: &crate::kernel::tree::KernelTree,
    manifest: &crate::manifest::Manifest,
) -> TestedKernel {
    let config = match &args.kernel {
        None => Some(tree.build_dir().join(".config")),
        // <build>/arch/x86/boot/bzImage or <build>/vmlinux
        Some(k) => std::path::absolute(k)
            .unwrap_or_else(|_| k.clone())
            .ancestors()
            .skip(1)
            .take(4)
            .map(|d| d.join(".config"))
            .find(|c| c.is_file()),
    };
    let mut kernel = TestedKernel::of_tree(&tree.root, config.as_deref());
    if args.kernel.is_none() {
        // What kfuzz.toml builds: the base and its fragments.
        kernel.config_name = Some(
            std::iter::once(manifest.kernel.base.to_string())
                .chain(manifest.kernel.fragments.iter().cloned())
                .collect::<Vec<_>>()
                .join("+"),
        );
    }
    kernel
}

/// The change the corpus is judged against: `--patch`, or else the working tree against the
/// commit every program was recorded at (a git checkout; None when the programs disagree, or
/// none was recorded at a commit).
fn change_since_recording(
    args: &Args,
    root: &std::path::Path,
    items: &[regress::Item],
    shell: &Shell,
) -> anyhow::Result<Option<Patch>> {
    if let Some(arg) = &args.patch {
        let p = Patch::load(root, &PatchSource::from_arg(Some(arg)))?;
        shell.status(
            "Patch",
            format!("{}: {} files changed", p.origin, p.files.len()),
        );
        return Ok(Some(p));
    }
    let commits: BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i.recorded.as_ref()?.commit.as_deref())
        .collect();
    let [commit] = commits.into_iter().collect::<Vec<_>>()[..] else {
        return Ok(None);
    };
    match Patch::load(root, &PatchSource::Since(commit.to_string())) {
        Ok(p) => {
            shell.status(
                "Patch",
                format!(
                    "{}: {} files changed since the corpus was recorded",
                    p.origin,
                    p.files.len()
                ),
            );
            Ok(Some(p))
        }
        Err(e) => {
            shell.warn(format!(
                "cannot tell what changed since the corpus was recorded at {commit}: {e:#}; \
                 every function is compared as unchanged (give the change with --patch)"
            ));
            Ok(None)
        }
    }
}

/// Judges the replay's coverage against the change, by source line when the replayed
/// kernel's vmlinux has a line table.
fn judge_coverage(
    items: &[regress::Item],
    results: &[regress::ItemResult],
    kernel: &std::path::Path,
    patch: Option<&Patch>,
    shell: &Shell,
) -> Judgement {
    let table = crate::kernel::symbols::vmlinux_for(kernel)
        .map(|v| LineTable::open(&v))
        .transpose()
        .unwrap_or_else(|e| {
            shell.verbose("Lines", format!("{e:#}: coverage is compared by PC"));
            None
        });
    let map = match (patch, &table) {
        (Some(p), Some(t)) => match PatchMap::new(p, t) {
            Ok(m) => Some(m),
            Err(e) => {
                shell.warn(format!("cannot locate the patch in this build: {e:#}"));
                None
            }
        },
        _ => None,
    };
    let reached = table.as_ref().map(|t| {
        let started = Instant::now();
        let pcs: HashSet<u64> = results.iter().flat_map(|r| r.pcs.iter().copied()).collect();
        let n = pcs.len();
        let lines = t.reached_lines(pcs);
        shell.verbose(
            "Lines",
            format!(
                "{n} PCs reached {} lines in {} functions ({:.2}s)",
                lines.values().map(|l| l.len()).sum::<usize>(),
                lines.len(),
                started.elapsed().as_secs_f64()
            ),
        );
        lines
    });
    let change = Change {
        patch,
        map: map.as_ref(),
    };
    judge::judge(items, results, reached.as_ref(), &change)
}

/// Lost coverage by file: (file, lost, functions), most lost first.
fn by_file(j: &Judgement) -> Vec<(String, usize, Vec<String>)> {
    let mut files: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for f in &j.lost_functions {
        let key = if f.file.is_empty() {
            f.function.clone()
        } else {
            f.file.clone()
        };
        let e = files.entry(key).or_default();
        e.0 += f.lost.len();
        e.1.push(f.function.clone());
    }
    let mut out: Vec<_> = files.into_iter().map(|(k, (n, f))| (k, n, f)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// A kernel given by path: a bzImage (or vmlinux), or a build folder holding one.
fn kernel_at(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    let p = std::path::absolute(path)?;
    if p.is_dir() {
        return crate::vm::boot::kernel_from_build(&p);
    }
    if !p.is_file() {
        anyhow::bail!(
            "--baseline-kernel {}: no such file or folder",
            path.display()
        );
    }
    Ok(p)
}

/// How `--fuzz` fuzzes and what it tries crashes on.
struct FuzzSort {
    duration: Duration,
    vms: usize,
    reproduce: bool,
    /// The corpora replayed: the fuzzer starts from their programs.
    seeds: Vec<PathBuf>,
    /// The baseline's VMs.
    baseline: Option<crate::vm::VmSpec>,
}

/// What `--fuzz` did: the run's figures, how much of the patch it reached, and every crash
/// title it found, sorted against the baseline.
#[derive(serde::Serialize)]
struct Fuzzed {
    seconds: f64,
    execs: u64,
    corpus: u64,
    workdir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<crate::fuzz::focus::PatchReport>,
    crashes: Vec<FoundCrash>,
}

/// Fuzzes `kernel` (the patched build) aimed at `patch`, then tries what crashed on the
/// baseline.
fn fuzz_and_sort(
    l: &super::syscalls::Loaded,
    guest: &crate::guest::Guest,
    kernel: &std::path::Path,
    patch: Option<Patch>,
    how: FuzzSort,
    shell: &Shell,
) -> anyhow::Result<Fuzzed> {
    let work = l.tree.work_dir().join("regress-fuzz");
    if patch.is_none() {
        shell.warn("--fuzz without a known change: fuzzing is not aimed (give --patch)");
    }
    let sandbox = kfuzz_wire::Sandbox::None;
    let plan = crate::ops::fuzz::Plan {
        enabled: l.selection.enabled.clone(),
        kernel: kernel.to_path_buf(),
        vm_dir: work.join("vms"),
        workdir: work.clone(),
        seeds: how.seeds,
        vms: how.vms,
        procs: l.manifest.fuzz.procs as usize,
        threaded: l.manifest.fuzz.threaded,
        collide: l.manifest.fuzz.collide,
        sandbox,
        duration: Some(how.duration),
        seed: None,
        reproduce: how.reproduce,
        no_feedback: false,
        patch,
        follow_only: false,
        http: None,
    };
    let target = std::sync::Arc::new(l.loaded.target.clone());
    let summary = crate::ops::fuzz::fuzz(&l.tree, &l.manifest, target, guest, plan, shell)?;
    if let Some(e) = &summary.error {
        anyhow::bail!("fuzzing stopped: {e}");
    }
    let crashes = found::sort(
        &l.loaded.target,
        &work.join("crashes"),
        &summary.crashes,
        how.baseline.as_ref(),
        sandbox,
        shell,
    );
    Ok(Fuzzed {
        seconds: summary.elapsed_secs,
        execs: summary.execs,
        corpus: summary.corpus,
        workdir: work,
        patch: summary.patch,
        crashes,
    })
}
