//! `kfuzz regress` results in the kernel's own CI formats: KTAP (as kselftest and KUnit print
//! it) and KernelCI's KCIDB JSON. The writers are pure (results in, text out); only
//! `provenance` looks at the tree. Nothing here replays, decides a verdict or an exit status.

pub mod kcidb;
pub mod ktap;
pub mod ktap_reader;
pub mod provenance;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::regress::{Item, ItemResult, Verdict};

/// One replayed program as the reports see it.
#[derive(Debug, Clone, Copy)]
pub struct ProgramRun<'a> {
    pub result: &'a ItemResult,
    /// For a reproducer: the title it was saved for.
    pub repro_of: Option<&'a str>,
}

/// The corpus's coverage verdict.
#[derive(Debug, Clone, Copy)]
pub struct CoverageSummary<'a> {
    /// Recorded coverage no program reached any more, of `recorded`.
    pub lost: usize,
    pub recorded: usize,
    /// The percentage the exit status is judged on (the recorded coverage's, or with
    /// `--baseline` the baseline's), and the limit from `regress.lost_coverage_percent`.
    pub judged_percent: f64,
    pub threshold_percent: f64,
    /// (source file or function, lost count, functions), most lost first.
    pub by_file: &'a [(String, usize, Vec<String>)],
}

impl CoverageSummary<'_> {
    /// True when the lost coverage makes `kfuzz regress` exit 2.
    pub fn exceeded(&self) -> bool {
        self.judged_percent > self.threshold_percent
    }

    pub fn lost_percent(&self) -> f64 {
        100.0 * self.lost as f64 / self.recorded.max(1) as f64
    }
}

/// Everything one `kfuzz regress` run has to report.
#[derive(Debug, Clone)]
pub struct RegressRun<'a> {
    pub programs: Vec<ProgramRun<'a>>,
    /// Programs that were not replayed, with the reason (they do not parse).
    pub skipped: &'a [(PathBuf, String)],
    pub coverage: CoverageSummary<'a>,
    pub seconds: f64,
}

impl<'a> RegressRun<'a> {
    /// Pairs `regress::replay`'s results with the items they came from.
    pub fn new(
        items: &'a [Item],
        results: &'a [ItemResult],
        skipped: &'a [(PathBuf, String)],
        coverage: CoverageSummary<'a>,
        seconds: f64,
    ) -> Self {
        let programs = items
            .iter()
            .zip(results)
            .map(|(item, result)| ProgramRun {
                result,
                repro_of: item.repro_of.as_deref(),
            })
            .collect();
        RegressRun {
            programs,
            skipped,
            coverage,
            seconds,
        }
    }

    /// One name per program, then one per skipped program: short, unique in the run, and
    /// made of `[A-Za-z0-9_-]` only, so that it is a KTAP test name and a KCIDB path
    /// component as it is. A corpus program is named by its file stem, a reproducer
    /// `repro-<crash id>`; `coverage` is kept for the coverage test.
    pub fn test_names(&self) -> (Vec<String>, Vec<String>) {
        let mut taken: HashSet<String> = HashSet::from([COVERAGE_TEST.to_string()]);
        let mut unique = |wanted: String| {
            let mut name = wanted.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{wanted}-{n}");
                n += 1;
            }
            name
        };
        let programs = self
            .programs
            .iter()
            .map(|p| unique(program_name(&p.result.path, p.repro_of.is_some())))
            .collect();
        let skipped = self
            .skipped
            .iter()
            .map(|(path, _)| unique(program_name(path, false)))
            .collect();
        (programs, skipped)
    }
}

/// The name of the test that judges the corpus's coverage.
pub const COVERAGE_TEST: &str = "coverage";

fn program_name(path: &Path, reproducer: bool) -> String {
    let base = if reproducer {
        // crashes/<id>/repro.syz
        let id = path
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("repro-{id}")
    } else {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.trim_matches('_').is_empty() {
        "program".to_string()
    } else {
        clean
    }
}

/// The verdict in words, as the reports and the terminal say it.
pub fn verdict_words(v: &Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::NewCrash => "new crash",
        Verdict::StillBroken => "still broken",
        Verdict::OtherCrash => "crashed differently",
        Verdict::CrashesOnBaseline => "crashes on the baseline too",
        Verdict::Fixed => "fixed (no longer crashes)",
        Verdict::Error => "not run",
    }
}

/// True for the verdicts JUnit reports as a failure: a crash, or a program that did not run.
pub fn failed(v: &Verdict) -> bool {
    !matches!(v, Verdict::Ok | Verdict::Fixed)
}

/// `s` on one line: control characters (newlines among them) become spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(path: &str) -> ItemResult {
        ItemResult {
            path: PathBuf::from(path),
            verdict: Verdict::Ok,
            title: None,
            report: None,
            recorded_cover: 0,
            lost_cover: 0,
            lost: Vec::new(),
            seconds: 0.0,
            reached: Vec::new(),
            cover: HashSet::new(),
            pcs: HashSet::new(),
        }
    }

    #[test]
    fn names_are_short_unique_and_path_safe() {
        let rs = [
            result("/c/one/gen-1-shm.syz"),
            result("/c/two/gen-1-shm.syz"),
            result("/w/crashes/0123abcd/repro.syz"),
            result("/c/coverage.syz"),
            result("/c/ä b#c.syz"),
        ];
        let programs: Vec<ProgramRun> = rs
            .iter()
            .enumerate()
            .map(|(i, r)| ProgramRun {
                result: r,
                repro_of: (i == 2).then_some("a title"),
            })
            .collect();
        let skipped = [(PathBuf::from("/c/one/gen-1-shm.syz"), "bad".to_string())];
        let run = RegressRun {
            programs,
            skipped: &skipped,
            coverage: CoverageSummary {
                lost: 0,
                recorded: 0,
                judged_percent: 0.0,
                threshold_percent: 5.0,
                by_file: &[],
            },
            seconds: 1.0,
        };
        let (p, s) = run.test_names();
        assert_eq!(
            p,
            [
                "gen-1-shm",
                "gen-1-shm-2",
                "repro-0123abcd",
                "coverage-2",
                "__b_c"
            ]
        );
        assert_eq!(s, ["gen-1-shm-3"]);
    }
}
