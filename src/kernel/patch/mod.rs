//! A patch as the source lines it changes: per file, the lines of the *new* version that were
//! added or modified, from a unified diff or from git. It never reads the kernel's build:
//! turning those lines into code is `kernel::lines`, judging coverage is `patch::cover`.
//!
//! A pure deletion has no new line of its own, so it marks its neighbour: the new line that
//! follows it in the hunk, or the one before it when the deletion ends the hunk (end of file, or
//! a diff made without context).

pub mod cover;
mod diff;
mod git;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use diff::DiffError;

#[cfg(test)]
mod tests;

/// Where a patch comes from (`kfuzz run --patch [REV|FILE.diff]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchSource {
    /// The working tree and index against `HEAD`; `HEAD`'s own change when the tree is clean.
    WorkingTree,
    /// A commit (anything `git rev-parse` takes) against its first parent.
    Revision(String),
    /// A unified diff (`git diff`, `git format-patch`, `diff -u`).
    File(PathBuf),
    /// The working tree and index against a commit: all changed since it (what `regress`
    /// compares a corpus recorded at that commit with).
    Since(String),
}

impl PatchSource {
    /// `--patch` with no value is the working tree; an existing file is a diff; anything else
    /// a revision.
    pub fn from_arg(arg: Option<&str>) -> PatchSource {
        match arg {
            None | Some("") => PatchSource::WorkingTree,
            Some(a) if Path::new(a).is_file() => PatchSource::File(PathBuf::from(a)),
            Some(a) => PatchSource::Revision(a.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Modified,
    Added,
    Deleted,
    /// Renamed or copied: `FileChange::old_path` is the old name.
    Renamed,
}

/// One file of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Repository-relative (`ipc/shm.c`): the new name, or the old one for a deleted file.
    pub path: String,
    /// The old name when it differs (renames, copies).
    pub old_path: Option<String>,
    pub status: FileStatus,
    /// A binary file: no lines.
    pub binary: bool,
    /// Changed lines, numbered in the new file (1-based).
    pub lines: BTreeSet<u32>,
    /// The hunks as `(old start, old count, new start, new count)`, in order: how the lines
    /// the patch did not change moved. One list per patch of a series that changes the file.
    pub hunks: Vec<Vec<(u32, u32, u32, u32)>>,
}

impl FileChange {
    /// Where line `old` of the old file is in the new one: moved by the hunks before it, or
    /// None when it lies in a hunk (changed, or context the patch surrounds a change with).
    pub fn new_line_of(&self, old: u32) -> Option<u32> {
        self.hunks
            .iter()
            .try_fold(old, |line, hunks| moved_by(hunks, line))
    }
}

/// Where `old` is after one patch's hunks of a file.
fn moved_by(hunks: &[(u32, u32, u32, u32)], old: u32) -> Option<u32> {
    {
        let mut delta: i64 = 0;
        for &(os, oc, ns, nc) in hunks {
            // A hunk with no old (new) lines sits *after* line os (ns).
            let (start_old, end_old) = if oc == 0 {
                (os.saturating_add(1), os.saturating_add(1))
            } else {
                (os, os.saturating_add(oc))
            };
            let end_new = if nc == 0 {
                ns.saturating_add(1)
            } else {
                ns.saturating_add(nc)
            };
            if old < start_old {
                break;
            }
            if old < end_old {
                return None;
            }
            delta = i64::from(end_new) - i64::from(end_old);
        }
        u32::try_from(i64::from(old) + delta).ok()
    }
}

/// What a patch changes, file by file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// What the patch is, for messages: `working tree against HEAD`, `a1b2c3d4e5f6`, `fix.diff`.
    pub origin: String,
    /// By path.
    pub files: BTreeMap<String, FileChange>,
    /// Kconfig symbols whose `config` block the patch edits, or that a defconfig/fragment line
    /// it edits sets (`CONFIG_SHMEM=y`), without the `CONFIG_` prefix.
    pub config_options: BTreeSet<String>,
}

impl Patch {
    /// Reads a patch from `source`; `tree` is the kernel checkout (a git repository for the
    /// working tree and revisions).
    pub fn load(tree: &Path, source: &PatchSource) -> anyhow::Result<Patch> {
        match source {
            PatchSource::WorkingTree => git::working_tree(tree),
            PatchSource::Revision(rev) => git::revision(tree, rev),
            PatchSource::Since(rev) => git::since(tree, rev),
            PatchSource::File(path) => {
                let f = std::fs::File::open(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                Ok(Patch::read(
                    std::io::BufReader::new(f),
                    &path.display().to_string(),
                )?)
            }
        }
    }

    /// Parses a unified diff; `origin` names it in errors (`fix.diff:12: …`).
    pub fn read(input: impl std::io::BufRead, origin: &str) -> Result<Patch, DiffError> {
        diff::parse(input, origin)
    }

    /// Parses a unified diff held in memory.
    pub fn parse(text: &str, origin: &str) -> Result<Patch, DiffError> {
        diff::parse(text.as_bytes(), origin)
    }

    /// How many changed lines, over all files.
    pub fn line_count(&self) -> usize {
        self.files.values().map(|f| f.lines.len()).sum()
    }

    /// The changed lines of one file (empty for files the patch does not touch).
    pub fn lines_of(&self, path: &str) -> Option<&BTreeSet<u32>> {
        self.files.get(path).map(|f| &f.lines)
    }

    fn add(&mut self, file: FileChange) {
        match self.files.get_mut(&file.path) {
            // The same file twice (a concatenated series): the union. Later patches number
            // lines after the earlier ones applied, so this is exact only for the last.
            Some(prev) => {
                prev.lines.extend(file.lines);
                prev.hunks.extend(file.hunks);
                prev.binary |= file.binary;
            }
            None => {
                self.files.insert(file.path.clone(), file);
            }
        }
    }
}

/// Collects one file's changes from hunk events; shared by the text parser and git.
#[derive(Debug)]
struct FileBuilder {
    old_path: Option<String>,
    new_path: Option<String>,
    binary: bool,
    renamed: bool,
    lines: BTreeSet<u32>,
    hunks: Vec<(u32, u32, u32, u32)>,
    /// The next line number in the new file.
    next_new: u32,
    /// A deletion waiting for its neighbour.
    pending_deletion: bool,
    kconfig: KconfigScan,
    /// In a `Kconfig*` file: the symbol of the `config` block the hunk is in.
    kconfig_symbol: Option<String>,
    config_options: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KconfigScan {
    None,
    /// A `Kconfig*` file: the symbol of the `config` block being read.
    Kconfig,
    /// A defconfig or fragment: `CONFIG_X=…` lines.
    Fragment,
}

impl FileBuilder {
    fn new(old_path: Option<String>, new_path: Option<String>) -> FileBuilder {
        let mut b = FileBuilder {
            old_path,
            new_path,
            binary: false,
            renamed: false,
            lines: BTreeSet::new(),
            hunks: Vec::new(),
            next_new: 1,
            pending_deletion: false,
            kconfig: KconfigScan::None,
            kconfig_symbol: None,
            config_options: BTreeSet::new(),
        };
        b.set_paths(b.old_path.clone(), b.new_path.clone());
        b
    }

    fn set_paths(&mut self, old: Option<String>, new: Option<String>) {
        self.old_path = old;
        self.new_path = new;
        let name = self.new_path.as_deref().or(self.old_path.as_deref());
        self.kconfig = name.map_or(KconfigScan::None, kconfig_scan_of);
    }

    fn hunk(&mut self, old_start: u32, old_count: u32, new_start: u32, new_count: u32) {
        self.end_hunk();
        self.hunks
            .push((old_start, old_count, new_start, new_count));
        // With no new lines, the start is the line *after which* the change sits.
        self.next_new = if new_count == 0 {
            new_start.saturating_add(1)
        } else {
            new_start
        };
        self.kconfig_symbol = None;
    }

    fn context(&mut self, text: &[u8]) {
        if std::mem::take(&mut self.pending_deletion) {
            self.lines.insert(self.next_new);
        }
        self.scan_config(text, false);
        self.next_new = self.next_new.saturating_add(1);
    }

    fn added(&mut self, text: &[u8]) {
        self.pending_deletion = false;
        self.lines.insert(self.next_new);
        self.scan_config(text, true);
        self.next_new = self.next_new.saturating_add(1);
    }

    fn removed(&mut self, text: &[u8]) {
        self.pending_deletion = true;
        self.scan_config(text, true);
    }

    fn end_hunk(&mut self) {
        if std::mem::take(&mut self.pending_deletion) && self.next_new > 1 {
            self.lines.insert(self.next_new - 1);
        }
    }

    fn scan_config(&mut self, text: &[u8], changed: bool) {
        match self.kconfig {
            KconfigScan::None => {}
            KconfigScan::Kconfig => {
                let text = String::from_utf8_lossy(text);
                let mut words = text.split_whitespace();
                match words.next() {
                    Some("config" | "menuconfig") => {
                        self.kconfig_symbol = words.next().map(str::to_string);
                    }
                    Some(
                        "choice" | "endchoice" | "menu" | "endmenu" | "if" | "endif" | "source"
                        | "comment" | "mainmenu",
                    ) => self.kconfig_symbol = None,
                    _ => {}
                }
                if changed {
                    if let Some(s) = &self.kconfig_symbol {
                        self.config_options.insert(s.clone());
                    }
                }
            }
            KconfigScan::Fragment if changed => {
                let text = String::from_utf8_lossy(text);
                let t = text.trim_start();
                let t = t.strip_prefix("# ").unwrap_or(t);
                if let Some(rest) = t.strip_prefix("CONFIG_") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        self.config_options.insert(name);
                    }
                }
            }
            KconfigScan::Fragment => {}
        }
    }

    fn finish(mut self, patch: &mut Patch) {
        self.end_hunk();
        patch.config_options.append(&mut self.config_options);
        let (path, status, old_path) = match (self.old_path, self.new_path) {
            (None, None) => return,
            (Some(old), None) => (old, FileStatus::Deleted, None),
            (None, Some(new)) => (new, FileStatus::Added, None),
            (Some(old), Some(new)) if old != new || self.renamed => {
                (new, FileStatus::Renamed, Some(old))
            }
            (Some(_), Some(new)) => (new, FileStatus::Modified, None),
        };
        let lines = if status == FileStatus::Deleted {
            BTreeSet::new()
        } else {
            self.lines
        };
        patch.add(FileChange {
            path,
            old_path,
            status,
            binary: self.binary,
            lines,
            hunks: vec![self.hunks],
        });
    }
}

fn kconfig_scan_of(path: &str) -> KconfigScan {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with("Kconfig") {
        KconfigScan::Kconfig
    } else if name.ends_with("defconfig")
        || (name.ends_with(".config") && (path.contains("configs/") || path.contains("kconfig")))
    {
        KconfigScan::Fragment
    } else {
        KconfigScan::None
    }
}
