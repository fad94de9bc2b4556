//! A patch mapped onto one build, and which of its changed lines and functions a set of KCOV
//! PCs reaches ("patch: 7/9 functions, 31/40 lines reached").
//!
//! A changed line is reached when a basic block holding some of its code ran (its KCOV PC was
//! covered; see `kernel::lines`). Only *coverable* lines count: a comment or a declaration has no
//! code, and code in a function without KCOV calls (`KCOV_INSTRUMENT := n`, `noinstr`) can never
//! be reported. Those are counted apart and left out of every total.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::kernel::lines::LineTable;

use super::Patch;

/// A changed line as code in this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedLine {
    pub file: String,
    pub line: u32,
    /// The functions it is written in (DWARF; usually one).
    pub functions: BTreeSet<String>,
    /// The ELF symbols its code was compiled into: its own function, or every function it was
    /// inlined into.
    pub hosts: BTreeSet<String>,
    /// KCOV PCs of the blocks holding its code; empty when its function has no KCOV calls.
    pub pcs: Vec<u64>,
}

/// A patch's changed lines located in one vmlinux.
#[derive(Debug, Clone, Default)]
pub struct PatchMap {
    /// What the patch is (`Patch::origin`).
    pub origin: String,
    /// Changed lines that have code, by (file, line).
    lines: BTreeMap<(String, u32), ChangedLine>,
    /// KCOV PC → the keys of the lines whose code its block holds.
    by_pc: HashMap<u64, Vec<(String, u32)>>,
    /// Changed lines the patch has but no code was found for (comments, declarations,
    /// Kconfig, files not built).
    pub lines_without_code: usize,
    /// Changed `.c`/`.h`/`.S` files none of whose changed lines has code in this build: not
    /// built (a config option off), only declarations, or a path that does not match the
    /// tree's (a diff made with `--no-prefix`).
    pub files_without_code: Vec<String>,
}

impl PatchMap {
    /// Locates every changed line of `patch` in the build `table` was opened on.
    pub fn new(patch: &Patch, table: &LineTable) -> anyhow::Result<PatchMap> {
        anyhow::ensure!(
            table.has_kcov(),
            "{} has no `__sanitizer_cov_trace_pc`: the kernel was built without KCOV",
            table.path().display()
        );
        let wanted: BTreeMap<String, BTreeSet<u32>> = patch
            .files
            .iter()
            .filter(|(_, f)| !f.lines.is_empty())
            .map(|(p, f)| (p.clone(), f.lines.clone()))
            .collect();
        let mut lines: BTreeMap<(String, u32), ChangedLine> = BTreeMap::new();
        for r in table.ranges_of(&wanted)? {
            let pcs = table.block_pcs(r.start, r.end);
            let l = lines
                .entry((r.file.clone(), r.line))
                .or_insert_with(|| ChangedLine {
                    file: r.file.clone(),
                    line: r.line,
                    functions: BTreeSet::new(),
                    hosts: BTreeSet::new(),
                    pcs: Vec::new(),
                });
            if let Some(f) = table
                .frames(r.start)
                .first()
                .and_then(|f| f.function.clone())
            {
                l.functions.insert(f);
            }
            if let Some(s) = table.symbol(r.start) {
                l.hosts.insert(s.to_string());
            }
            l.pcs.extend(pcs);
        }
        let with_code = lines.len();
        let files_without_code = wanted
            .keys()
            .filter(|f| [".c", ".h", ".S"].iter().any(|e| f.ends_with(e)))
            .filter(|f| !lines.keys().any(|(lf, _)| lf == *f))
            .cloned()
            .collect();
        let mut map = PatchMap::from_lines(
            patch.origin.clone(),
            lines.into_values(),
            patch.line_count().saturating_sub(with_code),
        );
        map.files_without_code = files_without_code;
        Ok(map)
    }

    /// A map from lines already located (tests, or a cache).
    pub fn from_lines(
        origin: String,
        lines: impl IntoIterator<Item = ChangedLine>,
        lines_without_code: usize,
    ) -> PatchMap {
        let mut map = PatchMap {
            origin,
            lines_without_code,
            ..PatchMap::default()
        };
        for mut l in lines {
            l.pcs.sort_unstable();
            l.pcs.dedup();
            let key = (l.file.clone(), l.line);
            for &pc in &l.pcs {
                map.by_pc.entry(pc).or_default().push(key.clone());
            }
            map.lines.insert(key, l);
        }
        map
    }

    /// Changed lines with code, in file and line order.
    pub fn lines(&self) -> impl Iterator<Item = &ChangedLine> {
        self.lines.values()
    }

    /// Changed lines with code in functions without KCOV calls: never reported as reached or
    /// not.
    pub fn uninstrumented(&self) -> impl Iterator<Item = &ChangedLine> {
        self.lines.values().filter(|l| l.pcs.is_empty())
    }

    /// Every KCOV PC of a changed line.
    pub fn pcs(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_pc.keys().copied()
    }

    /// Whether a KCOV PC is one of a changed line's (for triage order and weights).
    pub fn reaches_change(&self, pc: u64) -> bool {
        self.by_pc.contains_key(&pc)
    }

    /// The changed lines a KCOV PC's block holds code of.
    pub fn lines_of(&self, pc: u64) -> impl Iterator<Item = &ChangedLine> {
        self.by_pc
            .get(&pc)
            .into_iter()
            .flatten()
            .filter_map(|k| self.lines.get(k))
    }

    /// ELF symbols holding changed code (for per-function weights).
    pub fn hosts(&self) -> BTreeSet<&str> {
        self.lines
            .values()
            .flat_map(|l| l.hosts.iter().map(String::as_str))
            .collect()
    }

    /// Which changed lines and functions the covered PCs reach; PCs that are not a changed
    /// line's are ignored, so the whole coverage can be passed.
    pub fn coverage(&self, covered: impl IntoIterator<Item = u64>) -> PatchCoverage {
        let reached: BTreeSet<&(String, u32)> = covered
            .into_iter()
            .filter_map(|pc| self.by_pc.get(&pc))
            .flatten()
            .collect();
        let mut functions: BTreeMap<(&str, &str), FunctionCoverage> = BTreeMap::new();
        let mut hosts: BTreeMap<&str, FunctionCoverage> = BTreeMap::new();
        let (mut total, mut hit) = (0, 0);
        for (key, l) in self.lines.iter().filter(|(_, l)| !l.pcs.is_empty()) {
            let is_hit = reached.contains(key);
            total += 1;
            hit += usize::from(is_hit);
            let count = |fc: &mut FunctionCoverage| {
                fc.lines_total += 1;
                if is_hit {
                    fc.lines_reached += 1;
                } else {
                    fc.unreached.push((l.file.clone(), l.line));
                }
            };
            let names: Vec<&str> = if l.functions.is_empty() {
                vec!["?"]
            } else {
                l.functions.iter().map(String::as_str).collect()
            };
            for f in names {
                count(
                    functions
                        .entry((l.file.as_str(), f))
                        .or_insert_with(|| FunctionCoverage::new(&l.file, f)),
                );
            }
            for h in &l.hosts {
                count(
                    hosts
                        .entry(h.as_str())
                        .or_insert_with(|| FunctionCoverage::new("", h)),
                );
            }
        }
        PatchCoverage {
            functions: functions.into_values().collect(),
            hosts: hosts.into_values().collect(),
            lines_total: total,
            lines_reached: hit,
            lines_uninstrumented: self.uninstrumented().count(),
        }
    }
}

/// How much of one function's changed code was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCoverage {
    /// The file the function is written in; empty for `PatchCoverage::hosts`, whose changed
    /// lines may come from several files (inlined headers).
    pub file: String,
    pub name: String,
    /// Coverable changed lines in it.
    pub lines_total: usize,
    pub lines_reached: usize,
    /// (file, line) of the coverable changed lines not reached.
    pub unreached: Vec<(String, u32)>,
}

impl FunctionCoverage {
    fn new(file: &str, name: &str) -> FunctionCoverage {
        FunctionCoverage {
            file: file.to_string(),
            name: name.to_string(),
            lines_total: 0,
            lines_reached: 0,
            unreached: Vec::new(),
        }
    }

    pub fn reached(&self) -> bool {
        self.lines_reached > 0
    }
}

/// Which of a patch's coverable changed lines and functions were reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchCoverage {
    /// The functions the changed lines are written in, by file and name.
    pub functions: Vec<FunctionCoverage>,
    /// The ELF symbols the changed lines were compiled into (a changed `static inline` helper
    /// counts for every function it was inlined into), by name.
    pub hosts: Vec<FunctionCoverage>,
    pub lines_total: usize,
    pub lines_reached: usize,
    /// Changed lines with code in functions without KCOV calls, not in the totals.
    pub lines_uninstrumented: usize,
}

impl PatchCoverage {
    /// `7/9 functions, 31/40 lines reached`.
    pub fn summary(&self) -> String {
        let reached = self.functions.iter().filter(|f| f.reached()).count();
        format!(
            "{reached}/{} functions, {}/{} lines reached",
            self.functions.len(),
            self.lines_reached,
            self.lines_total
        )
    }

    /// The changed functions no PC reached.
    pub fn unreached_functions(&self) -> impl Iterator<Item = &FunctionCoverage> {
        self.functions.iter().filter(|f| !f.reached())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(file: &str, line: u32, function: &str, hosts: &[&str], pcs: &[u64]) -> ChangedLine {
        ChangedLine {
            file: file.into(),
            line,
            functions: BTreeSet::from([function.to_string()]),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            pcs: pcs.to_vec(),
        }
    }

    fn map() -> PatchMap {
        PatchMap::from_lines(
            "t.diff".into(),
            [
                line("ipc/shm.c", 10, "newseg", &["newseg"], &[0x100, 0x110]),
                line("ipc/shm.c", 11, "newseg", &["newseg"], &[0x120]),
                line("ipc/shm.c", 12, "newseg", &["newseg"], &[0x120]),
                line("ipc/shm.c", 13, "newseg", &["newseg"], &[]),
                line(
                    "ipc/shm.c",
                    40,
                    "shm_destroy",
                    &["shm_close", "do_shm_rmid"],
                    &[0x200, 0x300],
                ),
                line("ipc/shm.c", 90, "ksys_shmdt", &["ksys_shmdt"], &[0x400]),
            ],
            3,
        )
    }

    #[test]
    fn nothing_covered_reaches_nothing_and_totals_skip_uninstrumented_lines() {
        let c = map().coverage([]);
        assert_eq!(c.summary(), "0/3 functions, 0/5 lines reached");
        assert_eq!(c.lines_uninstrumented, 1);
        assert_eq!(c.unreached_functions().count(), 3);
    }

    #[test]
    fn one_pc_of_a_line_reaches_it_and_an_inlined_line_counts_for_its_host() {
        let m = map();
        assert!(m.reaches_change(0x110) && !m.reaches_change(0x111));
        let lines = |pc| m.lines_of(pc).map(|l| l.line).collect::<Vec<_>>();
        assert_eq!(lines(0x300), vec![40]);
        assert_eq!(lines(0x120), vec![11, 12], "one block, two lines");
        // 0x999 is not a changed line's PC: ignored.
        let c = m.coverage([0x110, 0x300, 0x999]);
        assert_eq!(c.summary(), "2/3 functions, 2/5 lines reached");
        let newseg = &c.functions[1];
        assert_eq!(
            (
                newseg.name.as_str(),
                newseg.lines_total,
                newseg.lines_reached
            ),
            ("newseg", 3, 1)
        );
        assert_eq!(
            newseg.unreached,
            vec![("ipc/shm.c".to_string(), 11), ("ipc/shm.c".to_string(), 12)]
        );
        let never: Vec<&str> = c.unreached_functions().map(|f| f.name.as_str()).collect();
        assert_eq!(never, vec!["ksys_shmdt"]);
        let hosts: Vec<(&str, usize, usize)> = c
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.lines_total, h.lines_reached))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("do_shm_rmid", 1, 1),
                ("ksys_shmdt", 1, 0),
                ("newseg", 3, 1),
                ("shm_close", 1, 1)
            ]
        );
        assert_eq!(m.hosts().len(), 4);
        assert_eq!(
            m.coverage([0x120]).summary(),
            "1/3 functions, 2/5 lines reached"
        );
        assert_eq!(m.pcs().count(), 6);
    }
}
