//! `kfuzz run --patch`: fuzzing aimed at a patch. The patch's changed lines are located in the
//! build (`kernel::patch::PatchMap`); every corpus program falls in one focus area by what it
//! covers (a changed function, another function of a changed file, the rest), and mutation
//! picks an area first, by weight, then a program in it. The areas and their weights 6:3:1 are
//! the focus areas of syzkaller's patch-series fuzzing. The fuzzer's coverage is also followed
//! line by line: the first time a changed line is reached is told, and the status line and the
//! summary say how much of the patch was reached.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::kernel::lines::LineTable;
use crate::kernel::patch::cover::{PatchCoverage, PatchMap};
use crate::kernel::patch::Patch;
use crate::kernel::symbols::Symbols;
use crate::shell::Shell;

/// Where a corpus program's coverage lies, most focused last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// Nothing of the patch.
    Rest = 0,
    /// A function of a file the patch changes.
    ChangedFile = 1,
    /// A function holding changed code.
    ChangedFunction = 2,
}

impl Area {
    pub const ALL: [Area; 3] = [Area::Rest, Area::ChangedFile, Area::ChangedFunction];

    /// How much more often a program of this area is mutated than one of the rest.
    pub fn weight(self) -> u32 {
        match self {
            Area::Rest => 1,
            Area::ChangedFile => 3,
            Area::ChangedFunction => 6,
        }
    }
}

/// A changed line reached for the first time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FirstReach {
    pub file: String,
    pub line: u32,
    pub functions: Vec<String>,
    /// Since the run started.
    pub secs: f64,
}

/// The patch a run is aimed at, and what of it the run has reached.
pub struct Focus {
    pub map: PatchMap,
    symbols: Option<Arc<Symbols>>,
    /// ELF symbols holding changed code.
    hosts: HashSet<String>,
    /// Changed files, tree-relative.
    files: HashSet<String>,
    /// Function symbol → in a changed file (DWARF lookups, kept).
    in_changed_file: Mutex<HashMap<String, bool>>,
    /// Changed-line PCs reached so far.
    reached: Mutex<BTreeSet<u64>>,
    /// Each changed line's first reach, in order.
    firsts: Mutex<Vec<FirstReach>>,
    started: Instant,
    /// Programs are put in areas (false: the patch is only followed, for measuring what the
    /// weights buy).
    weighted: bool,
}

impl Focus {
    pub fn new(map: PatchMap, symbols: Option<Arc<Symbols>>, files: HashSet<String>) -> Focus {
        let hosts = map.hosts().into_iter().map(str::to_string).collect();
        Focus {
            map,
            symbols,
            hosts,
            files,
            in_changed_file: Mutex::new(HashMap::new()),
            reached: Mutex::new(BTreeSet::new()),
            firsts: Mutex::new(Vec::new()),
            started: Instant::now(),
            weighted: true,
        }
    }

    /// Follows the patch without aiming at it: every program is in the rest.
    pub fn follow_only(mut self) -> Focus {
        self.weighted = false;
        self
    }

    /// `--patch`: the patch located in the build's vmlinux through its line table.
    pub fn load(
        patch: &Patch,
        table: &LineTable,
        symbols: Option<Arc<Symbols>>,
        shell: &Shell,
    ) -> anyhow::Result<Focus> {
        let started = Instant::now();
        let map = PatchMap::new(patch, table)?;
        let coverable = map.lines().filter(|l| !l.pcs.is_empty()).count();
        let functions: BTreeSet<&str> = map
            .lines()
            .filter(|l| !l.pcs.is_empty())
            .flat_map(|l| l.functions.iter().map(String::as_str))
            .collect();
        shell.status(
            "Patch",
            format!(
                "{}: {} changed lines in {} files; {coverable} with code in {} functions \
                 (located in {:.1}s)",
                patch.origin,
                patch.line_count(),
                patch.files.len(),
                functions.len(),
                started.elapsed().as_secs_f64()
            ),
        );
        shell.json(&serde_json::json!({
            "reason": "patch-located",
            "origin": patch.origin,
            "changed_lines": patch.line_count(),
            "files": patch.files.keys().collect::<Vec<_>>(),
            "lines_with_code": coverable,
            "functions": functions.len(),
            "files_without_code": map.files_without_code,
        }));
        for f in &map.files_without_code {
            shell.warn(format!(
                "{f}: none of its changed lines has code in this build (not built with this \
                 config, only declarations, or a path the tree does not have)"
            ));
        }
        if !patch.config_options.is_empty() {
            shell.note(
                "Patch",
                format!(
                    "it also changes config options: {}",
                    patch
                        .config_options
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if coverable == 0 {
            shell.warn(
                "no changed line has KCOV code in this build: nothing to aim at, and the \
                 patch's figures stay 0/0",
            );
        }
        let files = patch.files.keys().cloned().collect();
        Ok(Focus::new(map, symbols, files))
    }

    /// The area of a program that covered `pcs`.
    pub fn area(&self, pcs: impl IntoIterator<Item = u64>) -> Area {
        let mut area = Area::Rest;
        if !self.weighted {
            return area;
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for pc in pcs {
            if self.map.reaches_change(pc) {
                return Area::ChangedFunction;
            }
            let Some(sy) = &self.symbols else { continue };
            let Some((func, _)) = sy.lookup(pc) else {
                continue;
            };
            if !seen.insert(func) {
                continue;
            }
            if self.hosts.contains(func) {
                return Area::ChangedFunction;
            }
            if area == Area::Rest && self.in_file(sy, func, pc) {
                area = Area::ChangedFile;
            }
        }
        area
    }

    /// The area of a corpus program recorded with its functions (`.meta.json`'s `cover` and
    /// `files`): candidates from disk are triaged in area order.
    pub fn area_of_functions<'a>(
        &self,
        functions: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Area {
        let mut area = Area::Rest;
        if !self.weighted {
            return area;
        }
        for (func, file) in functions {
            if self.hosts.contains(func) {
                return Area::ChangedFunction;
            }
            if file.is_some_and(|f| self.files.contains(f)) {
                area = Area::ChangedFile;
            }
        }
        area
    }

    fn in_file(&self, sy: &Symbols, func: &str, pc: u64) -> bool {
        if self.files.is_empty() || !sy.has_debug_info() {
            return false;
        }
        let known = self
            .in_changed_file
            .lock()
            .ok()
            .and_then(|m| m.get(func).copied());
        if let Some(known) = known {
            return known;
        }
        let yes = sy.file_of(pc).is_some_and(|f| self.files.contains(&f));
        if let Ok(mut m) = self.in_changed_file.lock() {
            m.insert(func.to_string(), yes);
        }
        yes
    }

    /// Takes in PCs some program covered; returns the changed lines reached for the first
    /// time.
    pub fn observe(&self, pcs: &[u64]) -> Vec<FirstReach> {
        let hits: Vec<u64> = pcs
            .iter()
            .copied()
            .filter(|&pc| self.map.reaches_change(pc))
            .collect();
        if hits.is_empty() {
            return Vec::new();
        }
        let Ok(mut reached) = self.reached.lock() else {
            return Vec::new();
        };
        let before: BTreeSet<(String, u32)> = self.lines_reached(&reached);
        let mut grew = false;
        for pc in hits {
            grew |= reached.insert(pc);
        }
        if !grew {
            return Vec::new();
        }
        let secs = self.started.elapsed().as_secs_f64();
        let new: Vec<FirstReach> = self
            .lines_reached(&reached)
            .difference(&before)
            .filter_map(|(file, line)| {
                self.map
                    .lines()
                    .find(|l| l.file == *file && l.line == *line)
            })
            .map(|l| FirstReach {
                file: l.file.clone(),
                line: l.line,
                functions: l.functions.iter().cloned().collect(),
                secs,
            })
            .collect();
        drop(reached);
        if let Ok(mut f) = self.firsts.lock() {
            f.extend(new.iter().cloned());
        }
        new
    }

    fn lines_reached(&self, pcs: &BTreeSet<u64>) -> BTreeSet<(String, u32)> {
        pcs.iter()
            .flat_map(|&pc| self.map.lines_of(pc))
            .map(|l| (l.file.clone(), l.line))
            .collect()
    }

    /// What of the patch the run reached so far.
    pub fn coverage(&self) -> PatchCoverage {
        let reached: Vec<u64> = self
            .reached
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        self.map.coverage(reached)
    }

    /// Changed lines in the order they were first reached.
    pub fn firsts(&self) -> Vec<FirstReach> {
        self.firsts.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The summary's `patch` section.
    pub fn report(&self) -> PatchReport {
        let cov = self.coverage();
        let firsts = self.firsts();
        PatchReport {
            origin: self.map.origin.clone(),
            summary: cov.summary(),
            functions_total: cov.functions.len(),
            functions_reached: cov.functions.iter().filter(|f| f.reached()).count(),
            lines_total: cov.lines_total,
            lines_reached: cov.lines_reached,
            lines_without_code: self.map.lines_without_code,
            first_reach_secs: firsts.first().map(|f| f.secs),
            functions: cov
                .functions
                .iter()
                .map(|f| FunctionReport {
                    file: f.file.clone(),
                    function: f.name.clone(),
                    lines_total: f.lines_total,
                    lines_reached: f.lines_reached,
                    unreached_lines: f.unreached.iter().map(|(_, l)| *l).collect(),
                })
                .collect(),
            firsts,
        }
    }
}

/// How much of the patch a run reached (`run-finished`'s `patch`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PatchReport {
    pub origin: String,
    /// `7/9 functions, 31/40 lines reached`.
    pub summary: String,
    pub functions_total: usize,
    pub functions_reached: usize,
    pub lines_total: usize,
    pub lines_reached: usize,
    /// Changed lines with no code in this build (comments, declarations, options off).
    pub lines_without_code: usize,
    /// When the first changed line was reached, since fuzzing started.
    pub first_reach_secs: Option<f64>,
    pub functions: Vec<FunctionReport>,
    pub firsts: Vec<FirstReach>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionReport {
    pub file: String,
    pub function: String,
    pub lines_total: usize,
    pub lines_reached: usize,
    pub unreached_lines: Vec<u32>,
}

/// Picks an area for the next mutation among those that have programs, by weight:
/// `counts[area]` programs each; `x` uniform in `0..1`.
pub fn pick_area(counts: &[usize; 3], x: f64) -> Option<Area> {
    let total: u32 = Area::ALL
        .iter()
        .filter(|a| counts[**a as usize] > 0)
        .map(|a| a.weight())
        .sum();
    if total == 0 {
        return None;
    }
    let mut at = x * f64::from(total);
    for a in Area::ALL {
        if counts[a as usize] == 0 {
            continue;
        }
        let w = f64::from(a.weight());
        if at < w {
            return Some(a);
        }
        at -= w;
    }
    Area::ALL
        .iter()
        .rev()
        .find(|a| counts[**a as usize] > 0)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::patch::cover::ChangedLine;

    fn focus() -> Focus {
        let line = |l: u32, f: &str, pcs: &[u64]| ChangedLine {
            file: "ipc/shm.c".into(),
            line: l,
            functions: BTreeSet::from([f.to_string()]),
            hosts: BTreeSet::from([f.to_string()]),
            pcs: pcs.to_vec(),
        };
        let map = PatchMap::from_lines(
            "t.diff".into(),
            [
                line(714, "newseg", &[0x100]),
                line(715, "newseg", &[0x100, 0x110]),
                line(436, "shm_destroy_orphaned", &[0x200]),
            ],
            1,
        );
        Focus::new(map, None, HashSet::from(["ipc/shm.c".to_string()]))
    }

    #[test]
    fn a_changed_line_pc_puts_a_program_in_the_changed_functions_area() {
        let f = focus();
        assert_eq!(f.area([0x5, 0x100]), Area::ChangedFunction);
        assert_eq!(f.area([0x5, 0x6]), Area::Rest);
        assert_eq!(f.area([]), Area::Rest);
    }

    #[test]
    fn recorded_functions_give_the_area_of_a_program_from_disk() {
        let f = focus();
        assert_eq!(
            f.area_of_functions([("do_shmat", Some("ipc/shm.c"))]),
            Area::ChangedFile
        );
        assert_eq!(
            f.area_of_functions([("do_shmat", Some("ipc/shm.c")), ("newseg", None)]),
            Area::ChangedFunction
        );
        assert_eq!(
            f.area_of_functions([("do_mmap", Some("mm/mmap.c"))]),
            Area::Rest
        );
    }

    #[test]
    fn first_reaches_are_told_once_per_line() {
        let f = focus();
        let first = f.observe(&[0x100, 0x999]);
        let lines: Vec<u32> = first.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![714, 715]);
        assert!(f.observe(&[0x100]).is_empty(), "already reached");
        // 0x110 is another block of 715: no line is new.
        assert!(f.observe(&[0x110]).is_empty());
        let r = f.report();
        assert_eq!(r.summary, "1/2 functions, 2/3 lines reached");
        assert_eq!(r.lines_without_code, 1);
        assert!(r.first_reach_secs.is_some());
        let orphaned = r
            .functions
            .iter()
            .find(|x| x.function == "shm_destroy_orphaned")
            .unwrap();
        assert_eq!(orphaned.unreached_lines, vec![436]);
        assert_eq!(f.firsts().len(), 2);
    }

    #[test]
    fn areas_are_picked_by_weight_among_those_with_programs() {
        // 1 + 3 + 6 = 10.
        let all = [5, 5, 5];
        assert_eq!(pick_area(&all, 0.05), Some(Area::Rest));
        assert_eq!(pick_area(&all, 0.2), Some(Area::ChangedFile));
        assert_eq!(pick_area(&all, 0.5), Some(Area::ChangedFunction));
        assert_eq!(pick_area(&all, 0.999), Some(Area::ChangedFunction));
        // No changed-file programs: 1 + 6.
        assert_eq!(pick_area(&[5, 0, 5], 0.1), Some(Area::Rest));
        assert_eq!(pick_area(&[5, 0, 5], 0.2), Some(Area::ChangedFunction));
        assert_eq!(pick_area(&[0, 0, 0], 0.5), None);
        assert_eq!(pick_area(&[3, 0, 0], 0.9), Some(Area::Rest));
    }
}
