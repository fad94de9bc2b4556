//! `kfuzz regress --fuzz`: the crashes fuzzing the patched build found, each tried on the
//! baseline build: new with the patch, or already on the baseline.
//!
//! A crash is tried with its reproducer (`repro.syz`, with the options it was saved with) or,
//! without one, with the last programs of its newest log. It is "already on the baseline" only
//! when the baseline crashes with the same title; anything else (no crash, another title, no
//! baseline) leaves it new with the patch, so a crash is never explained away by chance.

use std::path::{Path, PathBuf};

use kfuzz_prog::prog::Prog;
use kfuzz_prog::target::Target;
use kfuzz_prog::text;
use kfuzz_wire::Sandbox;

use crate::crash_dir::CrashDir;
use crate::repro::{programs_from_log, ReproOpts, Reproducer};
use crate::shell::Shell;
use crate::vm::VmSpec;

/// Times a crash is run on the baseline before it is called new.
pub const BASELINE_ATTEMPTS: usize = 3;

/// Programs of a log tried when a crash has no reproducer: the last ones, which ran just
/// before the crash.
const LOG_PROGRAMS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// Not seen on the baseline: the patch brought it (exit 1).
    NewWithPatch,
    /// The baseline crashes the same way.
    OnBaseline,
}

/// One crash title fuzzing found, and what the baseline made of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundCrash {
    pub title: String,
    /// Times fuzzing hit it.
    pub count: usize,
    pub dir: PathBuf,
    pub verdict: Found,
    /// What ran on the baseline: `repro.syz`, `logN` (its last programs), or nothing.
    pub tried: Option<String>,
    /// The title the baseline crashed with, when it crashed.
    pub baseline_title: Option<String>,
    /// Why it could not be tried, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The program shown for it: the reproducer, or the last of the log's programs.
    #[serde(skip)]
    pub program: Option<Prog>,
}

impl FoundCrash {
    /// The crash as one more replayed program, for the verdicts, the exit status and the CI
    /// reports: its crash folder, and the program tried on the baseline (none when none was).
    pub fn as_item(&self, target: &Target) -> (super::Item, super::ItemResult) {
        let prog = self.program.clone().unwrap_or_else(|| Prog {
            calls: Vec::new(),
            next_var: Default::default(),
        });
        let item = super::Item {
            path: self.dir.clone(),
            text: text::format(target, &prog),
            prog,
            repro_of: None,
            recorded: None,
        };
        let mut result = super::ItemResult::not_run(&item, "");
        result.verdict = match self.verdict {
            Found::NewWithPatch => super::Verdict::NewCrash,
            Found::OnBaseline => super::Verdict::CrashesOnBaseline,
        };
        result.title = Some(self.title.clone());
        result.report = std::fs::read_to_string(self.dir.join("report0")).ok();
        (item, result)
    }
}

/// What to run on the baseline for the crash in `dir`: the reproducer with its options, or the
/// newest log's last programs (threaded, once each). None when there is neither.
pub fn trial_of(
    target: &Target,
    dir: &CrashDir,
    sandbox: Sandbox,
) -> Option<(String, Vec<Prog>, ReproOpts)> {
    if let Ok(src) = std::fs::read_to_string(dir.repro_syz()) {
        if let Ok(p) = text::parse(target, &src) {
            let o = ReproOpts::from_syz(&src).unwrap_or(ReproOpts {
                threaded: false,
                collide: false,
                repeat: 1,
                procs: 1,
                sandbox,
            });
            return Some(("repro.syz".into(), vec![p], o));
        }
    }
    let (n, log) = dir.newest_log()?;
    let mut progs: Vec<Prog> = programs_from_log(target, &log)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if progs.is_empty() {
        return None;
    }
    let keep = progs.len().saturating_sub(LOG_PROGRAMS);
    progs.drain(..keep);
    let o = ReproOpts {
        threaded: true,
        collide: false,
        repeat: 1,
        procs: 1,
        sandbox,
    };
    Some((format!("log{n}"), progs, o))
}

/// Each crash fuzzing found (`(title, count)` under `crashes`), tried on `baseline` when there
/// is one.
pub fn sort(
    target: &Target,
    crashes: &Path,
    found: &[(String, usize)],
    baseline: Option<&VmSpec>,
    sandbox: Sandbox,
    shell: &Shell,
) -> Vec<FoundCrash> {
    let mut out = Vec::new();
    for (title, count) in found {
        let dir = CrashDir::for_title(crashes, title);
        let mut c = FoundCrash {
            title: title.clone(),
            count: *count,
            dir: dir.path().to_path_buf(),
            verdict: Found::NewWithPatch,
            tried: None,
            baseline_title: None,
            note: None,
            program: None,
        };
        let Some((what, progs, opts)) = trial_of(target, &dir, sandbox) else {
            c.note = Some("no reproducer and no program in its log".into());
            out.push(c);
            continue;
        };
        c.program = progs.last().cloned();
        let Some(spec) = baseline else {
            c.note = Some("no baseline to try it on".into());
            out.push(c);
            continue;
        };
        shell.status(
            "Baseline",
            format!("trying {title:?} ({what}) on the baseline"),
        );
        let mut r = Reproducer::new(target, spec.clone(), title, shell);
        let refs: Vec<&Prog> = progs.iter().collect();
        match r.try_runs(&refs, &opts, BASELINE_ATTEMPTS) {
            Ok(t) => {
                if t.as_deref() == Some(title.as_str()) {
                    c.verdict = Found::OnBaseline;
                }
                c.baseline_title = t;
                c.tried = Some(what);
            }
            Err(e) => c.note = Some(format!("not tried on the baseline: {e:#}")),
        }
        r.finish();
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repro_options_come_back_from_the_header() {
        let o = ReproOpts {
            threaded: true,
            collide: false,
            repeat: 3,
            procs: 2,
            sandbox: Sandbox::Setuid,
        };
        let syz = format!("{}\nshmget(0x0, 0x1000, 0x0)\n", o.header());
        assert_eq!(ReproOpts::from_syz(&syz), Some(o));
        assert_eq!(ReproOpts::from_syz("shmget(0x0, 0x1000, 0x0)\n"), None);
        assert_eq!(
            ReproOpts::from_syz("# kfuzz repro options: threaded=maybe\n"),
            None
        );
        let big = ReproOpts::from_syz("# kfuzz repro options: repeat=4294967295 procs=0\n");
        assert_eq!(big.map(|o| (o.repeat, o.procs)), Some((100, 1)));
    }
}
