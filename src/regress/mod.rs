//! `kfuzz regress`: replay a corpus and the saved reproducers on a build, and say what crashed
//! and what recorded coverage is no longer reached.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kfuzz_prog::prog::Prog;
use kfuzz_prog::target::Target;
use kfuzz_prog::{exec, text};
use kfuzz_wire::{ExecOpts, ExecResult};

pub mod found;
pub mod judge;

use crate::fuzz::corpus;
use crate::kernel::symbols::Symbols;
use crate::report::CrashKind;
use crate::shell::Shell;
use crate::vm::monitor::{made_up_report, CrashMonitor, Verdict as Watch};
use crate::vm::{Vm, VmSpec};

/// One program to replay.
pub struct Item {
    pub path: PathBuf,
    pub prog: Prog,
    pub text: String,
    /// For a reproducer: the title it was saved for.
    pub repro_of: Option<String>,
    /// The signal it had when recorded (corpus programs with metadata).
    pub recorded: Option<corpus::Meta>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    /// A corpus program crashed the kernel.
    NewCrash,
    /// A reproducer still crashes with its title.
    StillBroken,
    /// A reproducer crashed with another title.
    OtherCrash,
    /// A corpus program crashed, and crashes the `--baseline` build the same way.
    CrashesOnBaseline,
    /// A reproducer no longer crashes.
    Fixed,
    /// The program could not be run (the VM did not boot…).
    Error,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemResult {
    pub path: PathBuf,
    pub verdict: Verdict,
    pub title: Option<String>,
    pub report: Option<String>,
    /// Recorded coverage (PCs as function+offset, or edge signal for programs recorded
    /// without symbols), and how much of it this build did not reach.
    pub recorded_cover: usize,
    pub lost_cover: usize,
    /// What was lost, as `function+0xoffset` (or `#signal`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
    pub seconds: f64,
    /// The recorded coverage this build reached.
    #[serde(skip)]
    pub reached: Vec<String>,
    /// Every PC this build reached, as `function+0xoffset` (for `--baseline`).
    #[serde(skip)]
    pub cover: HashSet<String>,
    /// Every PC this build reached (for its source lines).
    #[serde(skip)]
    pub pcs: HashSet<u64>,
}

impl ItemResult {
    /// A program that was not run (`why`).
    pub fn not_run(item: &Item, why: &str) -> ItemResult {
        ItemResult {
            path: item.path.clone(),
            verdict: Verdict::Error,
            title: None,
            report: Some(why.to_string()),
            recorded_cover: 0,
            lost_cover: 0,
            lost: Vec::new(),
            seconds: 0.0,
            reached: Vec::new(),
            cover: HashSet::new(),
            pcs: HashSet::new(),
        }
    }
}

/// A program's recorded coverage as comparable keys: `function+0xoffset` when it was recorded
/// with symbols, else `#signal` (meaningful on the same build only).
pub fn recorded_keys(meta: &corpus::Meta) -> Vec<String> {
    if meta.cover.is_empty() {
        meta.signal.iter().map(|s| format!("#{s:08x}")).collect()
    } else {
        meta.cover
            .iter()
            .flat_map(|(f, offs)| offs.iter().map(move |o| format!("{f}+{o:#x}")))
            .collect()
    }
}

/// What a run reached, in the keys of `recorded_keys`.
fn reached_keys(res: &ExecResult, symbols: Option<&Symbols>) -> HashSet<String> {
    let mut keys: HashSet<String> = res
        .calls
        .iter()
        .flat_map(|c| c.signal.iter().map(|s| format!("#{s:08x}")))
        .collect();
    if let Some(sy) = symbols {
        for pc in &res.new_pcs {
            if let Some((f, off)) = sy.lookup(*pc) {
                keys.insert(format!("{f}+{off:#x}"));
            }
        }
    }
    keys
}

/// Corpus programs (`*.syz`, with their `.meta.json` when present) and reproducers
/// (`crashes/*/repro.syz`). Programs that do not parse are skipped with the reason.
pub fn collect(
    target: &Target,
    corpus_dirs: &[PathBuf],
    crashes_dir: &Path,
    shell: &Shell,
) -> (Vec<Item>, Vec<(PathBuf, String)>) {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut add =
        |path: PathBuf, src: String, repro_of: Option<String>| match text::parse(target, &src) {
            Ok(prog) if !prog.calls.is_empty() => {
                let recorded = corpus::load_meta(&path);
                items.push(Item {
                    text: text::format(target, &prog),
                    path,
                    prog,
                    repro_of,
                    recorded,
                });
            }
            Ok(_) => {}
            Err(e) => {
                shell.warn(format!(
                    "{}:{e} (skipped: it does not fit the current descriptions)",
                    path.display()
                ));
                skipped.push((path, e.to_string()));
            }
        };
    for dir in corpus_dirs {
        for (path, src) in corpus::load_texts(dir) {
            add(path, src, None);
        }
    }
    for e in crate::crash_dir::list(crashes_dir) {
        let syz = e.crash_dir().repro_syz();
        if let Ok(src) = std::fs::read_to_string(&syz) {
            add(syz, src, Some(e.title));
        }
    }
    (items, skipped)
}

/// Replays every item on `vms` VMs; results in the items' order.
pub fn replay(
    target: &Target,
    symbols: Option<&Symbols>,
    spec: &VmSpec,
    vms: usize,
    timeout: Duration,
    items: &[Item],
    shell: &Shell,
) -> Vec<ItemResult> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..items.len()).collect());
    let results: Mutex<Vec<Option<ItemResult>>> = Mutex::new(vec![None; items.len()]);
    let scale = spec.accel.timeout_scale();
    let opts = ExecOpts {
        full_signal: true,
        ..ExecOpts::new(
            timeout.as_millis() as u64,
            (Duration::from_millis(50) * scale).as_millis() as u64,
        )
    };
    std::thread::scope(|scope| {
        for index in 0..vms.max(1) {
            let (queue, results, opts) = (&queue, &results, &opts);
            scope.spawn(move || {
                let mut id = 0u64;
                let mut failures = 0;
                'vm: while failures < 3 {
                    if queue.lock().map_or(true, |q| q.is_empty()) {
                        return;
                    }
                    let mut vm = match Vm::start_ready(spec, index, |w| shell.warn(w)) {
                        Ok((vm, _, _)) => vm,
                        Err(e) => {
                            shell.warn(format!("{e:#}"));
                            failures += 1;
                            continue;
                        }
                    };
                    failures = 0;
                    let mut monitor = CrashMonitor::new(&vm);
                    loop {
                        let Some(i) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                            vm.shutdown();
                            return;
                        };
                        let item = &items[i];
                        let started = Instant::now();
                        id += 1;
                        let encoded = exec::encode(target, &item.prog);
                        let mut res = vm.exec(id, &encoded, opts);
                        let recorded: Vec<String> = item
                            .recorded
                            .as_ref()
                            .map(recorded_keys)
                            .unwrap_or_default();
                        let mut reached = HashSet::new();
                        let mut pcs: HashSet<u64> = HashSet::new();
                        // Coverage that depends on what ran before (first-use paths, caches)
                        // may not show on one run: up to two more runs, while recorded coverage
                        // is missing and nothing crashed.
                        for attempt in 0..3 {
                            let Ok(r) = &res else { break };
                            reached.extend(reached_keys(r, symbols));
                            pcs.extend(r.new_pcs.iter().copied());
                            if attempt == 2
                                || recorded.iter().all(|k| reached.contains(k))
                                || monitor.seen(&vm)
                            {
                                break;
                            }
                            id += 1;
                            // Once in a new runner: another history than the long-lived
                            // runner's (and than when it was recorded).
                            let o = ExecOpts {
                                fresh: attempt == 0,
                                ..opts.clone()
                            };
                            if let Err(e) = vm.exec(id, &encoded, &o).map(|r| res = Ok(r)) {
                                res = Err(e);
                            }
                        }
                        let broken = res.as_ref().err().map(|e| format!("{e:#}"));
                        let verdict = monitor.check(&mut vm, broken.as_deref());
                        let crashed = verdict.crashed();
                        let mut r = ItemResult {
                            path: item.path.clone(),
                            verdict: Verdict::Ok,
                            title: None,
                            report: None,
                            recorded_cover: 0,
                            lost_cover: 0,
                            lost: Vec::new(),
                            seconds: 0.0,
                            reached: Vec::new(),
                            cover: reached
                                .iter()
                                .filter(|k| !k.starts_with('#'))
                                .cloned()
                                .collect(),
                            pcs,
                        };
                        let report = match verdict {
                            Watch::Crash(rep) => Some(rep),
                            Watch::Flooded => Some(made_up_report(
                                CrashKind::LostConnection,
                                "the guest printed faster than its console is kept",
                            )),
                            Watch::NoCrash => None,
                        };
                        if let Some(rep) = report {
                            r.verdict = match &item.repro_of {
                                None => Verdict::NewCrash,
                                // The same bug, named by its title or an alternative one.
                                Some(t) if *t == rep.title || rep.alt_titles.contains(t) => {
                                    Verdict::StillBroken
                                }
                                Some(_) => Verdict::OtherCrash,
                            };
                            r.title = Some(rep.title);
                            r.report = Some(match symbols {
                                Some(s) if s.has_debug_info() => {
                                    crate::report::symbolize::symbolize(&rep.report, s).text
                                }
                                _ => rep.report,
                            });
                        } else if item.repro_of.is_some() {
                            r.verdict = Verdict::Fixed;
                        }
                        if res.is_ok() && !recorded.is_empty() {
                            r.recorded_cover = recorded.len();
                            let (got, lost): (Vec<String>, Vec<String>) =
                                recorded.into_iter().partition(|k| reached.contains(k));
                            r.reached = got;
                            r.lost_cover = lost.len();
                            r.lost = lost;
                        }
                        r.seconds = started.elapsed().as_secs_f64();
                        if let Ok(mut all) = results.lock() {
                            all[i] = Some(r);
                        }
                        if crashed {
                            // A fresh kernel for the next program.
                            drop(vm);
                            continue 'vm;
                        }
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    results
        .into_iter()
        .zip(items)
        .map(|(r, item)| {
            r.unwrap_or_else(|| ItemResult::not_run(item, "not run: the VMs failed to boot"))
        })
        .collect()
}

/// The difference between this build and a baseline build on the same programs.
#[derive(Debug, Default, serde::Serialize)]
pub struct BaselineDiff {
    /// (program, title): crashes on this build that the baseline does not have.
    pub crashes_only_here: Vec<(PathBuf, String)>,
    /// (program, title): crashes on both.
    pub crashes_on_both: Vec<(PathBuf, String)>,
    /// (program, title): crashes on the baseline only.
    pub crashes_only_on_baseline: Vec<(PathBuf, String)>,
    /// PCs (function+offset) some program reached on the baseline and none reaches here.
    pub cover_only_on_baseline: Vec<String>,
    pub baseline_cover: usize,
    /// PCs reached here and not on the baseline.
    pub cover_only_here: usize,
}

fn crash_title(r: &ItemResult) -> Option<&str> {
    match r.verdict {
        Verdict::NewCrash
        | Verdict::StillBroken
        | Verdict::OtherCrash
        | Verdict::CrashesOnBaseline => r.title.as_deref(),
        _ => None,
    }
}

pub fn diff(items: &[Item], here: &[ItemResult], base: &[ItemResult]) -> BaselineDiff {
    let mut d = BaselineDiff::default();
    let (mut cover_here, mut cover_base) = (HashSet::new(), HashSet::new());
    for ((item, h), b) in items.iter().zip(here).zip(base) {
        match (crash_title(h), crash_title(b)) {
            (Some(t), Some(bt)) if t == bt => d.crashes_on_both.push((item.path.clone(), t.into())),
            (Some(t), _) => d.crashes_only_here.push((item.path.clone(), t.into())),
            (None, Some(bt)) => d
                .crashes_only_on_baseline
                .push((item.path.clone(), bt.into())),
            (None, None) => {}
        }
        cover_here.extend(h.cover.iter());
        cover_base.extend(b.cover.iter());
    }
    let mut only: Vec<String> = cover_base
        .difference(&cover_here)
        .map(|k| k.to_string())
        .collect();
    only.sort();
    d.cover_only_on_baseline = only;
    d.baseline_cover = cover_base.len();
    d.cover_only_here = cover_here.difference(&cover_base).count();
    d
}

/// Lost coverage over the whole corpus: (recorded coverage no program reached any more,
/// recorded coverage, what was lost).
pub fn lost_coverage(items: &[Item], results: &[ItemResult]) -> (usize, usize, Vec<String>) {
    let mut recorded = HashSet::new();
    let mut reached = HashSet::new();
    for (item, r) in items.iter().zip(results) {
        if let Some(meta) = &item.recorded {
            recorded.extend(recorded_keys(meta));
        }
        reached.extend(r.reached.iter().cloned());
    }
    let mut lost: Vec<String> = recorded.difference(&reached).cloned().collect();
    lost.sort();
    (lost.len(), recorded.len(), lost)
}

/// Lost coverage grouped by source file (from the programs' recorded files, when vmlinux had
/// debug info) or else by function: (group, lost count, functions), most lost first.
pub fn summarize_lost(items: &[Item], lost: &[String]) -> Vec<(String, usize, Vec<String>)> {
    let mut files: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for meta in items.iter().filter_map(|i| i.recorded.as_ref()) {
        for (f, file) in &meta.files {
            files.insert(f, file);
        }
    }
    let mut groups: std::collections::BTreeMap<String, (usize, Vec<String>)> =
        std::collections::BTreeMap::new();
    for key in lost {
        let func = match key.rsplit_once('+') {
            Some((f, _)) if !key.starts_with('#') => f,
            _ => "(edge signal)",
        };
        let group = files
            .get(func)
            .map_or_else(|| func.to_string(), |f| f.to_string());
        let g = groups.entry(group).or_default();
        g.0 += 1;
        if !g.1.iter().any(|x| x == func) {
            g.1.push(func.to_string());
        }
    }
    let mut out: Vec<_> = groups.into_iter().map(|(k, (n, f))| (k, n, f)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JUnit report: one testcase per program, a failure per crash, and one testcase for the
/// corpus's coverage.
pub fn junit(
    items: &[Item],
    results: &[ItemResult],
    skipped: &[(PathBuf, String)],
    coverage: &crate::ci_report::CoverageSummary<'_>,
    seconds: f64,
) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    for (item, r) in items.iter().zip(results) {
        let class = if item.repro_of.is_some() {
            "kfuzz.reproducer"
        } else {
            "kfuzz.corpus"
        };
        cases.push_str(&format!(
            "    <testcase classname=\"{class}\" name=\"{}\" time=\"{:.3}\">\n",
            xml(&r.path.display().to_string()),
            r.seconds
        ));
        match r.verdict {
            Verdict::NewCrash
            | Verdict::StillBroken
            | Verdict::OtherCrash
            | Verdict::CrashesOnBaseline
            | Verdict::Error => {
                failures += 1;
                let kind = match r.verdict {
                    Verdict::NewCrash => "new-crash",
                    Verdict::CrashesOnBaseline => "crashes-on-baseline",
                    Verdict::StillBroken => "still-broken",
                    Verdict::OtherCrash => "other-crash",
                    _ => "error",
                };
                cases.push_str(&format!(
                    "      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n",
                    xml(r.title.as_deref().unwrap_or("error")),
                    xml(r.report.as_deref().unwrap_or(""))
                ));
            }
            _ => {}
        }
        cases.push_str(&format!(
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml(&format!(
                "{}recorded coverage {}, lost {}",
                item.text, r.recorded_cover, r.lost_cover
            ))
        ));
    }
    for (path, why) in skipped {
        cases.push_str(&format!(
            "    <testcase classname=\"kfuzz.corpus\" name=\"{}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
            xml(&path.display().to_string()),
            xml(why)
        ));
    }
    cases.push_str(
        "    <testcase classname=\"kfuzz.coverage\" name=\"recorded coverage\" time=\"0\">\n",
    );
    if coverage.exceeded() {
        failures += 1;
        cases.push_str(&format!(
            "      <failure type=\"lost-coverage\" message=\"{} of {} recorded coverage lost ({:.1}% judged &gt; {}%)\"/>\n",
            coverage.lost,
            coverage.recorded,
            coverage.judged_percent,
            coverage.threshold_percent
        ));
    }
    cases.push_str("    </testcase>\n");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"kfuzz regress\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{seconds:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        items.len() + skipped.len() + 1,
        skipped.len()
    )
}
