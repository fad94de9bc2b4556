//! Crash storage: `crashes/<id>/` per title, with `description` (the title) and up to
//! `MAX_LOGS` pairs of `logN` (console, including the programs that ran) and `reportN`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::CrashReport;

pub const MAX_LOGS: usize = 20;

pub fn dir_of(crashes: &Path, title: &str) -> PathBuf {
    crashes.join(&super::corpus::name_of(title)[..16])
}

/// Saves one occurrence; returns the crash dir and whether the title is new.
pub fn save(crashes: &Path, report: &CrashReport, log: &str) -> anyhow::Result<(PathBuf, bool)> {
    let dir = dir_of(crashes, &report.title);
    let new = !dir.join("description").exists();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if new {
        crate::kernel::build::write_atomic(
            &dir.join("description"),
            format!("{}\n", report.title).as_bytes(),
        )?;
    }
    if let Some(n) = (0..MAX_LOGS).find(|n| !dir.join(format!("log{n}")).exists()) {
        crate::kernel::build::write_atomic(&dir.join(format!("log{n}")), log.as_bytes())?;
        crate::kernel::build::write_atomic(
            &dir.join(format!("report{n}")),
            report.report.as_bytes(),
        )?;
    }
    Ok((dir, new))
}
