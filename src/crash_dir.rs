//! One crash's directory, `crashes/<id>/`: the only code that knows its layout. `description`
//! (the title), `stats.json` (how often and when), up to `MAX_LOGS` pairs of `logN` (the console,
//! with the programs that ran) and `reportN` (the report, symbolized when vmlinux has DWARF),
//! and the reproducer's `repro.syz`, `repro.c`, `repro.log` and `repro.json`. It never removes
//! or rewrites a log or report once written.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::kernel::symbols::Symbols;
use crate::report::CrashReport;

pub const MAX_LOGS: usize = 20;

/// How often a title was seen (unix seconds).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A crash directory (it may not exist yet). Reproducer files may also go to a folder of the
/// user's (`kfuzz repro -o DIR`): `CrashDir::at` names any folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashDir {
    path: PathBuf,
}

impl CrashDir {
    /// The directory of `title` under a work dir's `crashes/`.
    pub fn for_title(crashes: &Path, title: &str) -> CrashDir {
        CrashDir {
            path: crashes.join(&crate::fuzz::corpus::name_of(title)[..16]),
        }
    }

    pub fn at(path: impl Into<PathBuf>) -> CrashDir {
        CrashDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn description(&self) -> PathBuf {
        self.path.join("description")
    }

    pub fn log(&self, n: usize) -> PathBuf {
        self.path.join(format!("log{n}"))
    }

    pub fn report(&self, n: usize) -> PathBuf {
        self.path.join(format!("report{n}"))
    }

    pub fn repro_syz(&self) -> PathBuf {
        self.path.join("repro.syz")
    }

    pub fn repro_c(&self) -> PathBuf {
        self.path.join("repro.c")
    }

    pub fn repro_log(&self) -> PathBuf {
        self.path.join("repro.log")
    }

    pub fn repro_json(&self) -> PathBuf {
        self.path.join("repro.json")
    }

    /// The files a reproduction writes, in the order it writes them.
    pub fn repro_outputs(&self) -> [PathBuf; 4] {
        [
            self.repro_syz(),
            self.repro_c(),
            self.repro_log(),
            self.repro_json(),
        ]
    }

    /// The title, from `description`.
    pub fn title(&self) -> anyhow::Result<String> {
        let path = self.description();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} has no description: is it a crash directory?",
                self.path.display()
            )
        })?;
        Ok(text.trim().to_string())
    }

    /// The first occurrence's console log (what `kfuzz repro` reads).
    pub fn first_log(&self) -> anyhow::Result<String> {
        let path = self.log(0);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The newest occurrence's console log: (N of `logN`, its text).
    pub fn newest_log(&self) -> Option<(usize, String)> {
        let n = (0..MAX_LOGS)
            .filter_map(|n| {
                let t = std::fs::metadata(self.log(n)).ok()?.modified().ok()?;
                Some((t, n))
            })
            .max()?
            .1;
        Some((n, std::fs::read_to_string(self.log(n)).ok()?))
    }

    /// Saves one occurrence: the title when new, the counts, and the next free `logN` and
    /// `reportN`. The report is saved as a developer reads it: its frames with their source
    /// lines when `symbols` has DWARF (as the kernel's decode_stacktrace.sh prints them).
    /// Returns whether the title is new here.
    pub fn save(
        &self,
        r: &CrashReport,
        symbols: Option<&Symbols>,
        log: &str,
    ) -> anyhow::Result<bool> {
        let report = match symbols {
            Some(s) if s.has_debug_info() => crate::report::symbolize::symbolize(&r.report, s).text,
            _ => r.report.clone(),
        };
        let dir = &self.path;
        let new = !self.description().exists();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if new {
            crate::fsutil::write_atomic(&self.description(), format!("{}\n", r.title).as_bytes())?;
        }
        let mut stats = self.stats().unwrap_or_default();
        let t = now();
        if stats.count == 0 {
            stats.first_seen = t;
        }
        stats.count += 1;
        stats.last_seen = t;
        crate::fsutil::write_atomic(
            &dir.join("stats.json"),
            format!("{}\n", serde_json::to_string(&stats)?).as_bytes(),
        )?;
        if let Some(n) = (0..MAX_LOGS).find(|&n| !self.log(n).exists()) {
            crate::fsutil::write_atomic(&self.log(n), log.as_bytes())?;
            crate::fsutil::write_atomic(&self.report(n), report.as_bytes())?;
        }
        Ok(new)
    }

    fn stats(&self) -> Option<Stats> {
        let text = std::fs::read_to_string(self.path.join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// What `kfuzz crashes` shows of it; None when it is no crash directory.
    pub fn entry(&self) -> Option<Entry> {
        let title = self.title().ok()?;
        let dir = &self.path;
        let stats = self.stats().unwrap_or_else(|| {
            // Directories from before stats.json: count the logs, date them by the directory.
            let t = std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            Stats {
                count: (0..MAX_LOGS).filter(|&n| self.log(n).exists()).count() as u64,
                first_seen: t,
                last_seen: t,
            }
        });
        let c_repro_crashes = std::fs::read_to_string(self.repro_json())
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["c_crashes"].as_bool());
        Some(Entry {
            title,
            // A reproducer is a file: a directory by that name is not one.
            syz_repro: self.repro_syz().is_file(),
            c_repro: self.repro_c().is_file(),
            c_repro_crashes,
            count: stats.count,
            first_seen: stats.first_seen,
            last_seen: stats.last_seen,
            dir: dir.clone(),
        })
    }
}

/// One crash directory as `kfuzz crashes` lists it.
#[derive(Debug, serde::Serialize)]
pub struct Entry {
    pub title: String,
    pub dir: PathBuf,
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    pub syz_repro: bool,
    pub c_repro: bool,
    /// From repro.json: whether the C reproducer crashed the kernel with the same title.
    pub c_repro_crashes: Option<bool>,
}

impl Entry {
    pub fn crash_dir(&self) -> CrashDir {
        CrashDir::at(&self.dir)
    }
}

/// Every crash directory under `crashes`, most frequent first (none when it does not exist).
pub fn list(crashes: &Path) -> Vec<Entry> {
    let mut out: Vec<Entry> = std::fs::read_dir(crashes)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|dir| dir.is_dir())
                .filter_map(|dir| CrashDir::at(dir).entry())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.title.cmp(&b.title)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_are_counted_and_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let r = CrashReport {
            title: "WARNING in foo".into(),
            alt_titles: Vec::new(),
            frame: Some("foo".into()),
            kind: crate::report::CrashKind::Warning,
            report: "WARNING: CPU: 0 PID: 1 at foo".into(),
            line: 0,
            truncated: false,
            corrupted: false,
        };
        let dir = CrashDir::for_title(tmp.path(), &r.title);
        assert!(dir.save(&r, None, "log").unwrap());
        assert!(!dir.save(&r, None, "log").unwrap());
        assert_eq!(dir, CrashDir::for_title(tmp.path(), "WARNING in foo"));
        assert_eq!(std::fs::read_to_string(dir.report(1)).unwrap(), r.report);
        std::fs::write(dir.repro_syz(), "").unwrap();
        let l = list(tmp.path());
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].title, "WARNING in foo");
        assert_eq!(l[0].count, 2);
        assert!(l[0].syz_repro && !l[0].c_repro);
        assert!(l[0].first_seen <= l[0].last_seen && l[0].first_seen > 0);
    }

    #[test]
    fn directories_named_like_reproducers_are_not_reproducers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("0123456789abcdef");
        std::fs::create_dir_all(dir.join("repro.syz")).unwrap();
        std::fs::create_dir_all(dir.join("repro.c")).unwrap();
        std::fs::write(dir.join("description"), "KASAN: use-after-free in foo\n").unwrap();
        // A stray file among the crash dirs is not a crash.
        std::fs::write(tmp.path().join("description"), "not a crash\n").unwrap();
        let l = list(tmp.path());
        assert_eq!(l.len(), 1);
        assert!(!l[0].syz_repro && !l[0].c_repro, "{:?}", l[0]);
        assert!(list(&tmp.path().join("missing")).is_empty());
    }
}
