//! Crash storage: `crashes/<id>/` per title, with `description` (the title), `stats.json`
//! (how often and when), up to `MAX_LOGS` pairs of `logN` (console, including the programs that
//! ran) and `reportN`, and the reproducer files once `kfuzz repro` made them.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::CrashReport;

pub const MAX_LOGS: usize = 20;

pub fn dir_of(crashes: &Path, title: &str) -> PathBuf {
    crashes.join(&super::corpus::name_of(title)[..16])
}

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

/// Saves one occurrence; returns the crash dir and whether the title is new.
pub fn save(crashes: &Path, report: &CrashReport, log: &str) -> anyhow::Result<(PathBuf, bool)> {
    let dir = dir_of(crashes, &report.title);
    let new = !dir.join("description").exists();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if new {
        crate::fsutil::write_atomic(
            &dir.join("description"),
            format!("{}\n", report.title).as_bytes(),
        )?;
    }
    let mut stats = read_stats(&dir).unwrap_or_default();
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
    if let Some(n) = (0..MAX_LOGS).find(|n| !dir.join(format!("log{n}")).exists()) {
        crate::fsutil::write_atomic(&dir.join(format!("log{n}")), log.as_bytes())?;
        crate::fsutil::write_atomic(&dir.join(format!("report{n}")), report.report.as_bytes())?;
    }
    Ok((dir, new))
}

fn read_stats(dir: &Path) -> Option<Stats> {
    let text = std::fs::read_to_string(dir.join("stats.json")).ok()?;
    serde_json::from_str(&text).ok()
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

/// Every crash directory under `crashes`, most frequent first (none when it does not exist).
pub fn list(crashes: &Path) -> Vec<Entry> {
    let mut out: Vec<Entry> = std::fs::read_dir(crashes)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|dir| dir.is_dir())
                .filter_map(|dir| {
                    let title = std::fs::read_to_string(dir.join("description")).ok()?;
                    let stats = read_stats(&dir).unwrap_or_else(|| {
                        // Directories from before stats.json: count the logs, date them by
                        // the directory.
                        let t = std::fs::metadata(&dir)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_secs());
                        Stats {
                            count: (0..MAX_LOGS)
                                .filter(|n| dir.join(format!("log{n}")).exists())
                                .count() as u64,
                            first_seen: t,
                            last_seen: t,
                        }
                    });
                    let c_repro_crashes = std::fs::read_to_string(dir.join("repro.json"))
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v["c_crashes"].as_bool());
                    Some(Entry {
                        title: title.trim().to_string(),
                        // A reproducer is a file: a directory by that name is not one.
                        syz_repro: dir.join("repro.syz").is_file(),
                        c_repro: dir.join("repro.c").is_file(),
                        c_repro_crashes,
                        count: stats.count,
                        first_seen: stats.first_seen,
                        last_seen: stats.last_seen,
                        dir,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.title.cmp(&b.title)));
    out
}

/// `2026-11-26 23:59:01` (UTC) for unix seconds.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_737_599), "2026-11-26 23:59:59");
    }

    #[test]
    fn occurrences_are_counted_and_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let r = CrashReport {
            title: "WARNING in foo".into(),
            alt_titles: Vec::new(),
            frame: None,
            kind: crate::report::CrashKind::Warning,
            report: "WARNING: CPU: 0 PID: 1 at foo".into(),
            line: 0,
            truncated: false,
            corrupted: false,
        };
        let (dir, new) = save(tmp.path(), &r, "log").unwrap();
        assert!(new);
        let (dir2, new) = save(tmp.path(), &r, "log").unwrap();
        assert!(!new);
        assert_eq!(dir, dir2);
        std::fs::write(dir.join("repro.syz"), "").unwrap();
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
