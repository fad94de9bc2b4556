//! Coverage by source: which lines of which files the recorded KCOV PCs reach, with per-function
//! and per-file figures. One computation serves `kfuzz cover` (a static HTML report or JSON,
//! from a corpus) and the dashboard's coverage pages (from a running fuzzer's PCs).
//!
//! A line is *coverable* when some of its code lies in a basic block with a KCOV call (see
//! `kernel::lines`), and *reached* when one of those blocks ran. Lines with no code (comments,
//! declarations) or only uninstrumented code count in no figure. Inlined code counts where it is
//! written: a `static inline` helper of a header is covered in the header.

pub mod html;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use crate::kernel::lines::LineTable;
use crate::kernel::patch::cover::PatchMap;
use crate::kernel::symbols::Symbols;

/// One file's coverable lines and functions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileCover {
    /// Tree-relative (`ipc/shm.c`).
    pub path: String,
    /// Coverable lines.
    pub lines: usize,
    pub reached: usize,
    pub percent: f64,
    pub functions: Vec<FunctionCover>,
    /// With a patch: its changed lines in this file that have code, and those reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<ChangedCover>,
    /// Each coverable line: reached or not.
    #[serde(skip)]
    pub by_line: BTreeMap<u32, bool>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionCover {
    pub name: String,
    /// Its first coverable line.
    pub line: u32,
    pub lines: usize,
    pub reached: usize,
    pub percent: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChangedCover {
    pub lines: Vec<u32>,
    pub reached: Vec<u32>,
}

/// Coverage of a set of files.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// KCOV PCs the coverage came from.
    pub pcs: usize,
    /// The files, sorted by path.
    pub files: Vec<FileCover>,
    pub total: Totals,
    /// With a patch: where it comes from (`Patch::origin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub files: usize,
    pub lines: usize,
    pub reached: usize,
    pub percent: f64,
}

/// `part` of `whole` in percent, rounded down to a tenth: 100.0 only when all of it.
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).floor() / 10.0
    }
}

impl Totals {
    pub fn of<'a>(files: impl IntoIterator<Item = &'a FileCover>) -> Totals {
        let mut t = Totals::default();
        for f in files {
            t.files += 1;
            t.lines += f.lines;
            t.reached += f.reached;
        }
        t.percent = percent(t.reached, t.lines);
        t
    }
}

impl Report {
    pub fn file(&self, path: &str) -> Option<&FileCover> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// The files under a directory (or the one file) `path`; everything for "".
    pub fn under<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a FileCover> + 'a {
        let p = path.trim_matches('/');
        self.files.iter().filter(move |f| {
            p.is_empty()
                || f.path == p
                || f.path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// Source lines known reached without a PC to show it (a corpus's records), by file.
pub type Lines = BTreeMap<String, BTreeSet<u32>>;

/// The coverage of the files under `paths` (files or directories, tree-relative; with none,
/// every file reached) by the KCOV PCs `covered` and the lines `recorded`, on the build
/// `table` was opened on.
pub fn compute(
    table: &LineTable,
    paths: &[String],
    covered: &HashSet<u64>,
    recorded: &Lines,
    patch: Option<&PatchMap>,
) -> anyhow::Result<Report> {
    anyhow::ensure!(
        table.has_kcov(),
        "{} has no `__sanitizer_cov_trace_pc`: the kernel was built without KCOV",
        table.path().display()
    );
    let paths: Vec<String> = if paths.is_empty() {
        // The files the PCs reach, not the whole tree.
        let reached = table.reached_lines(covered.iter().copied());
        let files: BTreeSet<String> = reached
            .into_keys()
            .map(|k| k.file)
            .chain(recorded.keys().cloned())
            .collect();
        if files.is_empty() {
            return Ok(Report {
                pcs: covered.len(),
                files: Vec::new(),
                total: Totals::default(),
                patch: patch.map(|p| p.origin.clone()),
            });
        }
        files.into_iter().collect()
    } else {
        paths.iter().map(|p| clean(p)).collect()
    };
    let ranges = table.ranges_under(&paths)?;
    let blocks = table.block_pcs_many(&ranges);
    // (file, line) → reached; and the function each line is written in.
    let mut lines: BTreeMap<(&str, u32), bool> = BTreeMap::new();
    let mut function_of: HashMap<(&str, u32), String> = HashMap::new();
    for (r, pcs) in ranges.iter().zip(&blocks) {
        if pcs.is_empty() {
            continue;
        }
        let hit = pcs.iter().any(|pc| covered.contains(pc))
            || recorded.get(&r.file).is_some_and(|l| l.contains(&r.line));
        let e = lines.entry((r.file.as_str(), r.line)).or_insert(false);
        *e |= hit;
        function_of
            .entry((r.file.as_str(), r.line))
            .or_insert_with(|| {
                table
                    .frames(r.start)
                    .into_iter()
                    .find(|f| f.file.as_deref() == Some(r.file.as_str()))
                    .and_then(|f| f.function)
                    .unwrap_or_else(|| table.symbol(r.start).unwrap_or("?").to_string())
            });
    }
    let mut files: BTreeMap<&str, FileCover> = BTreeMap::new();
    let mut functions: BTreeMap<(&str, &str), FunctionCover> = BTreeMap::new();
    for (&(file, line), &hit) in &lines {
        let f = files.entry(file).or_insert_with(|| FileCover {
            path: file.to_string(),
            lines: 0,
            reached: 0,
            percent: 0.0,
            functions: Vec::new(),
            changed: None,
            by_line: BTreeMap::new(),
        });
        f.lines += 1;
        f.reached += usize::from(hit);
        f.by_line.insert(line, hit);
        let name = function_of.get(&(file, line)).map_or("?", String::as_str);
        let func = functions
            .entry((file, name))
            .or_insert_with(|| FunctionCover {
                name: name.to_string(),
                line,
                lines: 0,
                reached: 0,
                percent: 0.0,
            });
        func.line = func.line.min(line);
        func.lines += 1;
        func.reached += usize::from(hit);
    }
    for ((file, _), mut func) in functions {
        func.percent = percent(func.reached, func.lines);
        if let Some(f) = files.get_mut(file) {
            f.functions.push(func);
        }
    }
    let mut files: Vec<FileCover> = files.into_values().collect();
    for f in &mut files {
        f.percent = percent(f.reached, f.lines);
        f.functions.sort_by_key(|x| x.line);
        if let Some(p) = patch {
            let mut c = ChangedCover::default();
            for l in p.lines().filter(|l| l.file == f.path && !l.pcs.is_empty()) {
                c.lines.push(l.line);
                if l.pcs.iter().any(|pc| covered.contains(pc))
                    || recorded.get(&l.file).is_some_and(|r| r.contains(&l.line))
                {
                    c.reached.push(l.line);
                }
            }
            if !c.lines.is_empty() {
                f.changed = Some(c);
            }
        }
    }
    let total = Totals::of(&files);
    Ok(Report {
        pcs: covered.len(),
        files,
        total,
        patch: patch.map(|p| p.origin.clone()),
    })
}

/// `./ipc//shm.c/` → `ipc/shm.c`.
pub fn clean(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// What a corpus's programs were recorded reaching (`*.meta.json` beside each program).
#[derive(Debug, Default)]
pub struct Recorded {
    /// Their PCs (function+offset) located in the build `symbols` was read from.
    pub pcs: HashSet<u64>,
    /// Their source lines (DWARF, as recorded): these also count the PCs of functions whose
    /// name several functions share (`static inline` helpers), which function+offset cannot
    /// locate.
    pub lines: Lines,
    /// Recorded PCs not located (a function this build lacks, or names several).
    pub unlocated: usize,
    /// Programs with a record.
    pub programs: usize,
}

/// What the corpora in `dirs` were recorded reaching.
pub fn recorded(dirs: &[&Path], symbols: &Symbols) -> Recorded {
    let mut r = Recorded::default();
    for dir in dirs {
        for (path, _) in crate::fuzz::corpus::load_texts(dir) {
            let Some(meta) = crate::fuzz::corpus::load_meta(&path) else {
                continue;
            };
            r.programs += 1;
            for (func, offsets) in &meta.cover {
                match symbols.start_of(func, meta.files.get(func).map(String::as_str)) {
                    Some(start) => r.pcs.extend(offsets.iter().map(|&o| start + u64::from(o))),
                    None => r.unlocated += offsets.len(),
                }
            }
            for (file, functions) in meta.lines {
                r.lines
                    .entry(file)
                    .or_default()
                    .extend(functions.into_values().flatten());
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, lines: usize, reached: usize) -> FileCover {
        FileCover {
            path: path.into(),
            lines,
            reached,
            percent: percent(reached, lines),
            functions: Vec::new(),
            changed: None,
            by_line: BTreeMap::new(),
        }
    }

    #[test]
    fn figures_add_up_by_directory() {
        let files = vec![
            file("ipc/msg.c", 10, 5),
            file("ipc/shm.c", 30, 10),
            file("ipc2/x.c", 7, 7),
            file("mm/mmap.c", 100, 1),
        ];
        let total = Totals::of(&files);
        let r = Report {
            pcs: 0,
            files,
            total,
            patch: None,
        };
        assert_eq!(r.total.lines, 147);
        assert_eq!(r.total.reached, 23);
        assert_eq!(r.total.percent, 15.6);
        let ipc: Vec<&str> = r.under("ipc/").map(|f| f.path.as_str()).collect();
        assert_eq!(ipc, ["ipc/msg.c", "ipc/shm.c"], "ipc2 is not under ipc");
        assert_eq!(Totals::of(r.under("ipc")).percent, 37.5);
        assert_eq!(r.under("ipc/shm.c").count(), 1);
        assert_eq!(r.under("").count(), 4);
        assert_eq!(r.file("mm/mmap.c").map(|f| f.reached), Some(1));
        assert!(r.file("mm").is_none());
    }

    #[test]
    fn paths_are_cleaned_and_percentages_rounded() {
        assert_eq!(clean("./ipc//shm.c/"), "ipc/shm.c");
        assert_eq!(clean("/"), "");
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(2, 3), 66.6);
        assert_eq!(percent(9995, 10000), 99.9, "not all of it: not 100");
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(2, 2), 100.0);
    }
}
