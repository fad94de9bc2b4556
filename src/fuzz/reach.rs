//! Which calls reach which source files, learned from the coverage corpus programs were
//! recorded with (`.meta.json`: the source lines, or the functions' files): what
//! `kfuzz syscalls --files/--subsystem` answers and `kfuzz run --patch` chooses its calls by.
//!
//! A program's coverage counts for each of its calls: corpus programs are minimized, so few
//! calls share it, and a call that only creates a resource for the others is listed as such by
//! the selection anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kfuzz_prog::target::Target;
use kfuzz_prog::text;

use super::corpus;

/// Per call: the lines (or, for programs recorded without lines, the functions) of each file
/// its programs reached.
#[derive(Debug, Default)]
pub struct CallReach {
    by_call: BTreeMap<String, BTreeMap<String, Reached>>,
    /// Programs with a coverage record that were read.
    pub programs: usize,
}

#[derive(Debug, Default, Clone)]
struct Reached {
    lines: BTreeSet<u32>,
    functions: BTreeSet<String>,
}

/// How much of one file a call reaches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReach {
    pub file: String,
    /// Source lines reached (0 when only functions were recorded).
    pub lines: usize,
    pub functions: usize,
}

impl CallReach {
    /// Reads the corpus programs of `dirs` that have a coverage record and parse against
    /// `target`.
    pub fn learn(target: &Target, dirs: &[PathBuf]) -> CallReach {
        let mut r = CallReach::default();
        for dir in dirs {
            for (path, src) in corpus::load_texts(dir) {
                let Some(meta) = corpus::load_meta(&path) else {
                    continue;
                };
                let Ok(prog) = text::parse(target, &src) else {
                    continue;
                };
                let calls: BTreeSet<&str> = prog
                    .calls
                    .iter()
                    .map(|c| target.syscalls[c.meta].name.as_str())
                    .collect();
                let mut files: BTreeMap<String, Reached> = BTreeMap::new();
                for (file, funcs) in &meta.lines {
                    let f = files.entry(file.clone()).or_default();
                    for (func, lines) in funcs {
                        f.functions.insert(func.clone());
                        f.lines.extend(lines.iter().copied());
                    }
                }
                if meta.lines.is_empty() {
                    for (func, file) in &meta.files {
                        files
                            .entry(file.clone())
                            .or_default()
                            .functions
                            .insert(func.clone());
                    }
                }
                if files.is_empty() {
                    continue;
                }
                r.programs += 1;
                for call in calls {
                    let mine = r.by_call.entry(call.to_string()).or_default();
                    for (file, got) in &files {
                        let m = mine.entry(file.clone()).or_default();
                        m.lines.extend(got.lines.iter().copied());
                        m.functions.extend(got.functions.iter().cloned());
                    }
                }
            }
        }
        r
    }

    /// The calls reaching some file `wanted` accepts, with what they reach of those files;
    /// the calls reaching the most lines first.
    pub fn calls_reaching(&self, wanted: &FileSet) -> Vec<(String, Vec<FileReach>)> {
        let mut out: Vec<(String, Vec<FileReach>)> = self
            .by_call
            .iter()
            .filter_map(|(call, files)| {
                let hits: Vec<FileReach> = files
                    .iter()
                    .filter(|(f, _)| wanted.contains(f))
                    .map(|(f, r)| FileReach {
                        file: f.clone(),
                        lines: r.lines.len(),
                        functions: r.functions.len(),
                    })
                    .collect();
                (!hits.is_empty()).then(|| (call.clone(), hits))
            })
            .collect();
        let weight = |h: &[FileReach]| h.iter().map(|f| f.lines.max(f.functions)).sum::<usize>();
        out.sort_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// Source files given as paths (a file, or a directory for everything under it) or as
/// MAINTAINERS `F:` patterns (`*` and `?` within a name, a trailing `/` for a directory), minus
/// `X:` patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl FileSet {
    pub fn of_paths(paths: &[String]) -> FileSet {
        FileSet {
            include: paths
                .iter()
                .map(|p| p.trim_start_matches("./").to_string())
                .collect(),
            exclude: Vec::new(),
        }
    }

    pub fn contains(&self, file: &str) -> bool {
        self.include.iter().any(|p| pattern_matches(p, file))
            && !self.exclude.iter().any(|p| pattern_matches(p, file))
    }
}

/// MAINTAINERS semantics: a pattern ending in `/` (or naming a directory without wildcards)
/// covers everything below it; otherwise it is matched against the whole path, `*` and `?`
/// not crossing `/`.
fn pattern_matches(pattern: &str, file: &str) -> bool {
    if let Some(dir) = pattern.strip_suffix('/') {
        // Any directory above the file.
        return file.match_indices('/').any(|(i, _)| glob(dir, &file[..i]));
    }
    if glob(pattern, file) {
        return true;
    }
    // A plain directory name (`--files ipc`).
    !pattern.contains(['*', '?']) && file.starts_with(&format!("{pattern}/"))
}

/// `*` and `?` within one path component.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    // Iterative matching with one backtrack point per `*`.
    let (mut i, mut j) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '?' && s[j] != '/' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star.filter(|_| s[mark] != '/') {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// A MAINTAINERS entry: its name and its `F:`/`X:` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subsystem {
    pub name: String,
    pub files: FileSet,
}

/// The entry of `maintainers` (the tree's MAINTAINERS file) named `name`: the entry whose title
/// is `name` (any case), else the only one whose title contains it.
pub fn subsystem(maintainers: &Path, name: &str) -> anyhow::Result<Subsystem> {
    let text = std::fs::read_to_string(maintainers)
        .with_context(|| format!("cannot read {}", maintainers.display()))?;
    let entries = parse_maintainers(&text);
    let want = name.to_lowercase();
    if let Some(e) = entries.iter().find(|e| e.name.to_lowercase() == want) {
        return Ok(e.clone());
    }
    let near: Vec<&Subsystem> = entries
        .iter()
        .filter(|e| e.name.to_lowercase().contains(&want))
        .collect();
    match near.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(
            "{}: no entry is named `{name}` (the entries' titles are the lines above their \
             `M:`/`F:` lines)",
            maintainers.display()
        ),
        many => bail!(
            "{}: `{name}` names {} entries; give one of: {}",
            maintainers.display(),
            many.len(),
            many.iter()
                .take(12)
                .map(|e| format!("\"{}\"", e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The entries of a MAINTAINERS file: a title line, then `X:\tvalue` lines, entries separated
/// by blank lines. The preamble (before the first entry with an `F:`) is ignored.
pub fn parse_maintainers(text: &str) -> Vec<Subsystem> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let mut files = FileSet::default();
    let mut flush = |name: &mut Option<String>, files: &mut FileSet| {
        if let Some(n) = name.take() {
            if !files.include.is_empty() {
                out.push(Subsystem {
                    name: n,
                    files: std::mem::take(files),
                });
            }
        }
        *files = FileSet::default();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut name, &mut files);
            continue;
        }
        let tagged = line.as_bytes().get(1) == Some(&b':')
            && line.as_bytes()[0].is_ascii_uppercase()
            && line[2..].starts_with(['\t', ' ']);
        if tagged {
            let value = line[2..].trim().to_string();
            match &line[..1] {
                "F" => files.include.push(value),
                "X" => files.exclude.push(value),
                _ => {}
            }
        } else if name.is_none() {
            name = Some(line.trim().to_string());
        }
    }
    flush(&mut name, &mut files);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainers_patterns_match_as_the_file_documents_them() {
        assert!(pattern_matches("ipc/", "ipc/shm.c"));
        assert!(pattern_matches("ipc/", "ipc/sub/x.c"));
        assert!(!pattern_matches("ipc/", "ipcx/shm.c"));
        assert!(pattern_matches("ipc/shm.c", "ipc/shm.c"));
        assert!(!pattern_matches("ipc/shm.c", "ipc/shm.h"));
        assert!(pattern_matches("ipc/*.c", "ipc/msg.c"));
        assert!(!pattern_matches("ipc/*.c", "ipc/sub/msg.c"));
        assert!(pattern_matches(
            "include/linux/shm?.h",
            "include/linux/shmx.h"
        ));
        assert!(pattern_matches("mm", "mm/shmem.c"), "a plain directory");
        assert!(pattern_matches("*/net/", "drivers/net/tun.c"));
        assert!(pattern_matches("drivers/*/", "drivers/net/tun.c"));
        assert!(!pattern_matches("m", "mm/shmem.c"));
    }

    #[test]
    fn a_maintainers_entry_gives_its_files_minus_its_exclusions() {
        let text = "\
List of maintainers
-------------------

Descriptions of section entries and preferred order
\tM: *Mail* patches to: FullName <address@domain>

SHARED MEMORY
M:\tSomeone <s@example.org>
L:\tlinux-mm@kvack.org
S:\tMaintained
F:\tipc/shm.c
F:\tmm/shmem*
X:\tmm/shmem_quota.c

IPC MESSAGE QUEUES
F:\tipc/msg.c
";
        let all = parse_maintainers(text);
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["SHARED MEMORY", "IPC MESSAGE QUEUES"]);
        let shm = &all[0].files;
        assert!(shm.contains("ipc/shm.c"));
        assert!(shm.contains("mm/shmem.c"));
        assert!(!shm.contains("mm/shmem_quota.c"));
        assert!(!shm.contains("ipc/msg.c"));
    }

    #[test]
    fn a_subsystem_is_found_by_title_or_a_unique_part_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("MAINTAINERS");
        std::fs::write(&m, "A ONE\nF:\ta/\n\nB TWO\nF:\tb/\n\nB THREE\nF:\tc/\n").unwrap();
        assert_eq!(subsystem(&m, "a one").unwrap().name, "A ONE");
        assert_eq!(subsystem(&m, "ONE").unwrap().name, "A ONE");
        let e = subsystem(&m, "B").unwrap_err().to_string();
        assert!(
            e.contains("names 2 entries") && e.contains("\"B TWO\""),
            "{e}"
        );
        let e = subsystem(&m, "nothing").unwrap_err().to_string();
        assert!(e.contains("MAINTAINERS") && e.contains("`nothing`"), "{e}");
    }
}
