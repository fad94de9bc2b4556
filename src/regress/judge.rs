//! What "coverage lost" means after a change: only code the change did not touch counts
//! against the threshold, and it is compared by source line when the corpus was recorded with
//! lines (an unchanged function whose offsets moved in a rebuild loses nothing). Functions the
//! change touched are compared apart, by how many of their lines are still reached: their lines
//! and offsets moved with the change.
//!
//! What was recorded is already stable (reached on every triage run, and by a fresh runner), and
//! the replay has retried what it missed in a fresh runner (see `replay`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::kernel::lines::{FunctionKey, LinesByFunction};
use crate::kernel::patch::cover::PatchMap;
use crate::kernel::patch::Patch;

use super::{recorded_keys, Item, ItemResult};

/// The change between the recording and this build, as far as it is known.
#[derive(Default)]
pub struct Change<'a> {
    pub patch: Option<&'a Patch>,
    /// The patch located in this build.
    pub map: Option<&'a PatchMap>,
}

impl Change<'_> {
    /// DWARF functions holding changed code: `(file, function)`.
    fn functions(&self) -> BTreeSet<(String, String)> {
        self.map
            .map(|m| {
                m.lines()
                    .flat_map(|l| l.functions.iter().map(|f| (l.file.clone(), f.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// ELF symbols holding changed code (the PC-keyed comparison's unit).
    fn hosts(&self) -> HashSet<String> {
        self.map
            .map(|m| m.hosts().into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn touches(&self, file: &str) -> bool {
        self.patch.is_some_and(|p| p.files.contains_key(file))
    }

    /// Where a recorded line of `file` is now: moved by the patch's hunks, or None inside one.
    fn now(&self, file: &str, line: u32) -> Option<u32> {
        match self.patch.and_then(|p| p.files.get(file)) {
            Some(f) => f.new_line_of(line),
            None => Some(line),
        }
    }
}

/// A function the change touched, compared by how many lines are reached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangedFunction {
    pub file: String,
    pub function: String,
    /// Lines the corpus reached in it when recorded (or PCs, without a line table).
    pub recorded: usize,
    /// Lines the replay reached in it now.
    pub reached: usize,
}

/// Unchanged code no longer reached, by function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LostFunction {
    pub file: String,
    pub function: String,
    /// Lost lines (numbered in this build's source) or `+0xoffset`s.
    pub lost: Vec<String>,
    pub recorded: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Source lines (the corpus was recorded with a line table, and this build has one).
    Lines,
    /// `function+offset` PCs, or edge signal for programs recorded without symbols.
    Pcs,
}

/// The coverage verdict of a replay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Judgement {
    pub unit: Unit,
    /// Recorded coverage of unchanged code.
    pub recorded: usize,
    /// Of it, what no program reached now.
    pub lost: usize,
    pub lost_functions: Vec<LostFunction>,
    /// Functions the change touched (not in `recorded`/`lost`).
    pub changed: Vec<ChangedFunction>,
    /// Recorded lines that sit inside a hunk's context: neither changed nor comparable.
    pub in_hunks: usize,
    /// The unchanged code of each file the change touched: a path cut there is diluted in
    /// the whole corpus's figure, and is what the change's author needs to hear about.
    pub touched_files: Vec<FileLoss>,
}

/// Unchanged code of one file: recorded, and lost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileLoss {
    pub file: String,
    pub recorded: usize,
    pub lost: usize,
}

impl FileLoss {
    pub fn percent(&self) -> f64 {
        100.0 * self.lost as f64 / self.recorded.max(1) as f64
    }
}

impl Judgement {
    fn empty(unit: Unit) -> Judgement {
        Judgement {
            unit,
            recorded: 0,
            lost: 0,
            lost_functions: Vec::new(),
            changed: Vec::new(),
            in_hunks: 0,
            touched_files: Vec::new(),
        }
    }

    pub fn percent(&self) -> f64 {
        100.0 * self.lost as f64 / self.recorded.max(1) as f64
    }

    /// The percentage the verdict is taken on: the whole corpus's, or a touched file's when
    /// that is worse.
    pub fn judged_percent(&self) -> f64 {
        self.touched_files
            .iter()
            .map(FileLoss::percent)
            .fold(self.percent(), f64::max)
    }

    /// The touched file the verdict was taken on, when it is one.
    pub fn worst_file(&self) -> Option<&FileLoss> {
        self.touched_files
            .iter()
            .filter(|f| f.percent() > self.percent())
            .max_by(|a, b| a.percent().total_cmp(&b.percent()))
    }

    pub fn unit_name(&self) -> &'static str {
        match self.unit {
            Unit::Lines => "lines",
            Unit::Pcs => "PCs",
        }
    }
}

/// Judges a replay. `reached_now`: the lines this build's replay reached (None: no line
/// table, or programs recorded without lines, so PCs are compared).
pub fn judge(
    items: &[Item],
    results: &[ItemResult],
    reached_now: Option<&LinesByFunction>,
    change: &Change<'_>,
) -> Judgement {
    let recorded: Vec<&crate::fuzz::corpus::Meta> =
        items.iter().filter_map(|i| i.recorded.as_ref()).collect();
    let with_lines = !recorded.is_empty() && recorded.iter().all(|m| !m.lines.is_empty());
    match reached_now {
        Some(now) if with_lines => by_lines(&recorded, now, change),
        _ => by_pcs(items, results, change),
    }
}

fn by_lines(
    recorded: &[&crate::fuzz::corpus::Meta],
    now: &LinesByFunction,
    change: &Change<'_>,
) -> Judgement {
    let changed_fns = change.functions();
    let mut before: BTreeMap<(String, String), BTreeSet<u32>> = BTreeMap::new();
    for m in recorded {
        for (file, funcs) in &m.lines {
            for (func, lines) in funcs {
                before
                    .entry((file.clone(), func.clone()))
                    .or_default()
                    .extend(lines.iter().copied());
            }
        }
    }
    let mut j = Judgement::empty(Unit::Lines);
    let mut files: BTreeMap<String, FileLoss> = BTreeMap::new();
    let empty = BTreeSet::new();
    for ((file, function), lines) in before {
        let key = FunctionKey {
            file: file.clone(),
            function: function.clone(),
        };
        let reached = now.get(&key).unwrap_or(&empty);
        if changed_fns.contains(&(file.clone(), function.clone())) {
            j.changed.push(ChangedFunction {
                file,
                function,
                recorded: lines.len(),
                reached: reached.len(),
            });
            continue;
        }
        let mut lost = Vec::new();
        let mut counted = 0;
        for l in lines {
            let Some(n) = change.now(&file, l) else {
                j.in_hunks += 1;
                continue;
            };
            counted += 1;
            if !reached.contains(&n) {
                lost.push(n.to_string());
            }
        }
        j.recorded += counted;
        j.lost += lost.len();
        if change.touches(&file) {
            let f = files.entry(file.clone()).or_insert_with(|| FileLoss {
                file: file.clone(),
                recorded: 0,
                lost: 0,
            });
            f.recorded += counted;
            f.lost += lost.len();
        }
        if !lost.is_empty() {
            j.lost_functions.push(LostFunction {
                file,
                function,
                lost,
                recorded: counted,
            });
        }
    }
    j.touched_files = files.into_values().collect();
    sort(&mut j, change);
    j
}

fn by_pcs(items: &[Item], results: &[ItemResult], change: &Change<'_>) -> Judgement {
    let hosts = change.hosts();
    let mut files: BTreeMap<&str, &str> = BTreeMap::new();
    let mut before: BTreeSet<String> = BTreeSet::new();
    for meta in items.iter().filter_map(|i| i.recorded.as_ref()) {
        before.extend(recorded_keys(meta));
        for (f, file) in &meta.files {
            files.insert(f, file);
        }
    }
    let reached: HashSet<&str> = results
        .iter()
        .flat_map(|r| r.reached.iter().map(String::as_str))
        .collect();
    let mut j = Judgement::empty(Unit::Pcs);
    let mut changed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut lost: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut per_fn: BTreeMap<&str, usize> = BTreeMap::new();
    for key in &before {
        let (func, off) = match key.rsplit_once('+') {
            Some((f, o)) if !key.starts_with('#') => (f, o),
            _ => ("(edge signal)", key.as_str()),
        };
        let hit = reached.contains(key.as_str());
        if hosts.contains(func) {
            let c = changed.entry(func).or_default();
            c.0 += 1;
            c.1 += usize::from(hit);
            continue;
        }
        j.recorded += 1;
        *per_fn.entry(func).or_default() += 1;
        if !hit {
            j.lost += 1;
            lost.entry(func)
                .or_default()
                .push(if func == "(edge signal)" {
                    off.to_string()
                } else {
                    format!("+{off}")
                });
        }
    }
    j.changed = changed
        .into_iter()
        .map(|(f, (rec, hit))| ChangedFunction {
            file: files.get(f).map(|s| s.to_string()).unwrap_or_default(),
            function: f.to_string(),
            recorded: rec,
            reached: hit,
        })
        .collect();
    j.lost_functions = lost
        .into_iter()
        .map(|(f, l)| LostFunction {
            file: files.get(f).map(|s| s.to_string()).unwrap_or_default(),
            function: f.to_string(),
            recorded: per_fn.get(f).copied().unwrap_or(0),
            lost: l,
        })
        .collect();
    sort(&mut j, change);
    j
}

/// Lost functions in the files the change touched first (what its author reads first), then
/// by how much they lost.
fn sort(j: &mut Judgement, change: &Change<'_>) {
    let touched = |f: &LostFunction| change.touches(&f.file);
    j.lost_functions.sort_by(|a, b| {
        touched(b)
            .cmp(&touched(a))
            .then_with(|| b.lost.len().cmp(&a.lost.len()))
            .then_with(|| (&a.file, &a.function).cmp(&(&b.file, &b.function)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::corpus::Meta;
    use crate::kernel::patch::cover::ChangedLine;
    use std::path::PathBuf;

    fn item(lines: &[(&str, &str, &[u32])]) -> Item {
        let mut meta = Meta::default();
        for (file, func, ls) in lines {
            meta.lines
                .entry(file.to_string())
                .or_default()
                .insert(func.to_string(), ls.to_vec());
        }
        Item {
            path: PathBuf::from("p.syz"),
            prog: kfuzz_prog::prog::Prog::default(),
            text: String::new(),
            repro_of: None,
            recorded: Some(meta),
        }
    }

    fn now(lines: &[(&str, &str, &[u32])]) -> LinesByFunction {
        lines
            .iter()
            .map(|(file, func, ls)| {
                (
                    FunctionKey {
                        file: file.to_string(),
                        function: func.to_string(),
                    },
                    ls.iter().copied().collect(),
                )
            })
            .collect()
    }

    /// ksys_shmctl changed at line 1240 (two lines added), shmctl_shm_info (line 1050) before it
    /// and do_shmat (line 1520) after it did not.
    fn patch() -> (Patch, PatchMap) {
        let text = "--- a/ipc/shm.c\n+++ b/ipc/shm.c\n@@ -1239,2 +1239,4 @@\n a\n+x\n+y\n b\n";
        let p = Patch::parse(text, "t.diff").unwrap();
        let map = PatchMap::from_lines(
            "t.diff".into(),
            [1240, 1241].map(|l| ChangedLine {
                file: "ipc/shm.c".into(),
                line: l,
                functions: BTreeSet::from(["ksys_shmctl".to_string()]),
                hosts: BTreeSet::from(["ksys_shmctl".to_string()]),
                pcs: vec![0x100 + u64::from(l)],
            }),
            0,
        );
        (p, map)
    }

    #[test]
    fn a_changed_function_is_compared_apart_and_moved_lines_are_not_lost() {
        let items = [item(&[
            ("ipc/shm.c", "ksys_shmctl", &[1230, 1241, 1250]),
            ("ipc/shm.c", "shmctl_shm_info", &[1050, 1051]),
            ("ipc/shm.c", "do_shmat", &[1520, 1530]),
        ])];
        // Everything is still reached; what follows the hunk moved down by two.
        let reached = now(&[
            ("ipc/shm.c", "ksys_shmctl", &[1230, 1243, 1252]),
            ("ipc/shm.c", "shmctl_shm_info", &[1050, 1051]),
            ("ipc/shm.c", "do_shmat", &[1522, 1532]),
        ]);
        let (p, map) = patch();
        let change = Change {
            patch: Some(&p),
            map: Some(&map),
        };
        let j = judge(&items, &[], Some(&reached), &change);
        assert_eq!(j.unit, Unit::Lines);
        assert_eq!((j.lost, j.recorded), (0, 4), "{j:?}");
        assert_eq!(
            j.changed,
            vec![ChangedFunction {
                file: "ipc/shm.c".into(),
                function: "ksys_shmctl".into(),
                recorded: 3,
                reached: 3,
            }]
        );
        // Without knowing the change, the moved lines look lost, and ksys_shmctl counts.
        let j = judge(&items, &[], Some(&reached), &Change::default());
        assert_eq!((j.lost, j.recorded), (4, 7), "{j:?}");
    }

    #[test]
    fn a_cut_path_in_unchanged_code_is_lost_and_named() {
        let items = [item(&[
            ("ipc/shm.c", "ksys_shmctl", &[1230]),
            ("ipc/shm.c", "shmctl_shm_info", &[1050, 1051]),
            ("ipc/shm.c", "shm_get_stat", &[950, 951, 952]),
        ])];
        let reached = now(&[("ipc/shm.c", "ksys_shmctl", &[1230])]);
        let (p, map) = patch();
        let change = Change {
            patch: Some(&p),
            map: Some(&map),
        };
        let j = judge(&items, &[], Some(&reached), &change);
        assert_eq!((j.lost, j.recorded), (5, 5));
        assert_eq!(j.percent(), 100.0);
        assert_eq!(
            j.touched_files,
            vec![FileLoss {
                file: "ipc/shm.c".into(),
                recorded: 5,
                lost: 5
            }]
        );
        let names: Vec<&str> = j
            .lost_functions
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(names, vec!["shm_get_stat", "shmctl_shm_info"]);
        // Files the patch touched come first, however little they lost.
        let mut items = items;
        items[0].recorded.as_mut().unwrap().lines.insert(
            "mm/memory.c".into(),
            [("do_anonymous_page".to_string(), (1..=50).collect())].into(),
        );
        let j = judge(&items, &[], Some(&reached), &change);
        let names: Vec<&str> = j
            .lost_functions
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["shm_get_stat", "shmctl_shm_info", "do_anonymous_page"]
        );
        assert_eq!(j.lost_functions[0].file, "ipc/shm.c");
        assert_eq!(j.lost_functions[0].lost, vec!["950", "951", "952"]);
    }

    #[test]
    fn programs_recorded_without_lines_are_compared_by_pc_minus_changed_functions() {
        let mut meta = Meta::default();
        meta.cover.insert("ksys_shmctl".into(), vec![0x10, 0x20]);
        meta.cover.insert("do_shmat".into(), vec![0x8]);
        meta.files.insert("do_shmat".into(), "ipc/shm.c".into());
        let items = [Item {
            path: PathBuf::from("p.syz"),
            prog: kfuzz_prog::prog::Prog::default(),
            text: String::new(),
            repro_of: None,
            recorded: Some(meta),
        }];
        let results = [ItemResult {
            reached: vec!["ksys_shmctl+0x10".into()],
            ..ItemResult::not_run(&items[0], "")
        }];
        let (p, map) = patch();
        let change = Change {
            patch: Some(&p),
            map: Some(&map),
        };
        let j = judge(&items, &results, None, &change);
        assert_eq!(j.unit, Unit::Pcs);
        assert_eq!((j.lost, j.recorded), (1, 1));
        assert_eq!(j.lost_functions[0].function, "do_shmat");
        assert_eq!(j.lost_functions[0].file, "ipc/shm.c");
        assert_eq!(j.lost_functions[0].lost, vec!["+0x8"]);
        assert_eq!(j.changed[0].function, "ksys_shmctl");
        assert_eq!((j.changed[0].recorded, j.changed[0].reached), (2, 1));
    }

    #[test]
    fn a_path_cut_in_a_touched_file_is_judged_on_that_file_not_the_whole_corpus() {
        // 5 of 100 recorded unchanged lines lost overall (5%), all 5 in ipc/shm.c, which
        // has 10: 50% there.
        let items = [item(&[
            (
                "ipc/shm.c",
                "shmctl_shm_info",
                &[1050, 1051, 1052, 1053, 1054],
            ),
            ("ipc/shm.c", "newseg", &[710, 711, 712, 713, 714]),
            (
                "mm/shmem.c",
                "shmem_get_inode",
                &(1..=90).collect::<Vec<u32>>(),
            ),
        ])];
        let reached = now(&[
            ("ipc/shm.c", "newseg", &[710, 711, 712, 713, 714]),
            (
                "mm/shmem.c",
                "shmem_get_inode",
                &(1..=90).collect::<Vec<u32>>(),
            ),
        ]);
        let (p, map) = patch();
        let change = Change {
            patch: Some(&p),
            map: Some(&map),
        };
        let j = judge(&items, &[], Some(&reached), &change);
        assert_eq!(j.percent(), 5.0);
        assert_eq!(j.judged_percent(), 50.0);
        assert_eq!(j.worst_file().map(|f| f.file.as_str()), Some("ipc/shm.c"));
        // Without the patch nothing is "touched": the whole corpus's figure.
        let j = judge(&items, &[], Some(&reached), &Change::default());
        assert_eq!(j.judged_percent(), 5.0);
        assert!(j.worst_file().is_none());
    }
}
