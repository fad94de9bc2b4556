//! `kfuzz regress`: replay a corpus and the saved reproducers on a build, and say what crashed
//! and what recorded coverage is no longer reached.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kfuzz_prog::prog::Prog;
use kfuzz_prog::target::Target;
use kfuzz_prog::{exec, text};
use kfuzz_wire::ExecOpts;

use crate::fuzz::corpus;
use crate::report;
use crate::shell::Shell;
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
    /// Recorded signal, and how much of it this build did not reach.
    pub recorded_signal: usize,
    pub lost_signal: usize,
    pub seconds: f64,
    /// The recorded signal this build reached.
    #[serde(skip)]
    pub reached: Vec<u32>,
}

/// Corpus programs (`*.syz`, with their `.meta.json` when present) and reproducers
/// (`crashes/*/repro.syz`). Programs that do not parse are skipped with the reason.
pub fn collect(
    target: &Target,
    corpus_dirs: &[PathBuf],
    crashes_dir: &Path,
    shell: &Shell,
) -> Vec<Item> {
    let mut items = Vec::new();
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
            Err(e) => shell.warn(format!(
                "{}:{e} (skipped: it does not fit the current descriptions)",
                path.display()
            )),
        };
    for dir in corpus_dirs {
        for (path, src) in corpus::load_texts(dir) {
            add(path, src, None);
        }
    }
    for e in crate::fuzz::crashes::list(crashes_dir) {
        let syz = e.dir.join("repro.syz");
        if let Ok(src) = std::fs::read_to_string(&syz) {
            add(syz, src, Some(e.title));
        }
    }
    items
}

/// Replays every item on `vms` VMs; results in the items' order.
pub fn replay(
    target: &Target,
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
                    let mut vm = match Vm::start(spec, index).and_then(|mut vm| {
                        vm.wait_ready(crate::vm::boot::BOOT_TIMEOUT * scale)?;
                        Ok(vm)
                    }) {
                        Ok(vm) => vm,
                        Err(e) => {
                            shell.warn(format!("{e:#}"));
                            failures += 1;
                            continue;
                        }
                    };
                    failures = 0;
                    let mut scan_from = vm.console().offset();
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
                        // Signal that depends on what ran before (first-use paths, caches) may
                        // not show on one run: up to two more runs, while recorded signal is
                        // missing and nothing crashed.
                        for _ in 0..2 {
                            let Some(meta) = &item.recorded else { break };
                            let Ok(first) = &res else { break };
                            let got: HashSet<u32> = first
                                .calls
                                .iter()
                                .flat_map(|c| c.signal.iter().copied())
                                .collect();
                            if meta.signal.iter().all(|s| got.contains(s))
                                || !report::parse(&vm.console().since(scan_from).0).is_empty()
                            {
                                break;
                            }
                            id += 1;
                            match vm.exec(id, &encoded, opts) {
                                Ok(mut again) => {
                                    if let Ok(first) = &mut res {
                                        for (a, b) in
                                            first.calls.iter_mut().zip(again.calls.drain(..))
                                        {
                                            a.signal.extend(b.signal);
                                        }
                                    }
                                }
                                Err(e) => res = Err(e),
                            }
                        }
                        let (text, complete) = vm.console().since_lines(scan_from);
                        let crashed = res.is_err() || !report::parse(&text).is_empty();
                        let mut r = ItemResult {
                            path: item.path.clone(),
                            verdict: Verdict::Ok,
                            title: None,
                            report: None,
                            recorded_signal: 0,
                            lost_signal: 0,
                            seconds: 0.0,
                            reached: Vec::new(),
                        };
                        if crashed {
                            std::thread::sleep(vm.scaled(Duration::from_millis(700)));
                            let (text, _) = vm.console().since(scan_from);
                            let rep = report::parse(&text).into_iter().next();
                            let title = rep.as_ref().map_or_else(
                                || "lost connection to the guest".to_string(),
                                |r| r.title.clone(),
                            );
                            r.verdict = match &item.repro_of {
                                None => Verdict::NewCrash,
                                Some(t) if *t == title => Verdict::StillBroken,
                                Some(_) => Verdict::OtherCrash,
                            };
                            r.report = rep.map(|r| r.report);
                            r.title = Some(title);
                        } else {
                            scan_from = complete;
                            if item.repro_of.is_some() {
                                r.verdict = Verdict::Fixed;
                            }
                        }
                        if let (Ok(res), Some(meta)) = (&res, &item.recorded) {
                            let got: HashSet<u32> = res
                                .calls
                                .iter()
                                .flat_map(|c| c.signal.iter().copied())
                                .collect();
                            r.recorded_signal = meta.signal.len();
                            r.reached = meta
                                .signal
                                .iter()
                                .copied()
                                .filter(|s| got.contains(s))
                                .collect();
                            r.lost_signal = r.recorded_signal - r.reached.len();
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
            r.unwrap_or_else(|| ItemResult {
                path: item.path.clone(),
                verdict: Verdict::Error,
                title: None,
                report: Some("not run: the VMs failed to boot".into()),
                recorded_signal: 0,
                lost_signal: 0,
                seconds: 0.0,
                reached: Vec::new(),
            })
        })
        .collect()
}

/// Lost coverage over the whole corpus: (recorded signal no program reached any more,
/// recorded signal).
pub fn lost_coverage(items: &[Item], results: &[ItemResult]) -> (usize, usize) {
    let mut recorded = HashSet::new();
    let mut reached = HashSet::new();
    for (item, r) in items.iter().zip(results) {
        if let Some(meta) = &item.recorded {
            recorded.extend(meta.signal.iter().copied());
        }
        reached.extend(r.reached.iter().copied());
    }
    (recorded.difference(&reached).count(), recorded.len())
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
    lost: (usize, usize),
    threshold: f64,
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
            Verdict::NewCrash | Verdict::StillBroken | Verdict::OtherCrash | Verdict::Error => {
                failures += 1;
                let kind = match r.verdict {
                    Verdict::NewCrash => "new-crash",
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
                "{}recorded signal {}, lost {}",
                item.text, r.recorded_signal, r.lost_signal
            ))
        ));
    }
    let pct = 100.0 * lost.0 as f64 / lost.1.max(1) as f64;
    cases.push_str(
        "    <testcase classname=\"kfuzz.coverage\" name=\"recorded signal\" time=\"0\">\n",
    );
    if pct > threshold {
        failures += 1;
        cases.push_str(&format!(
            "      <failure type=\"lost-coverage\" message=\"{} of {} recorded signal lost ({pct:.1}% &gt; {threshold}%)\"/>\n",
            lost.0, lost.1
        ));
    }
    cases.push_str("    </testcase>\n");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"kfuzz regress\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        items.len() + 1
    )
}
