//! `kfuzz run [--syscalls GLOBS] [--vms N] [--sandbox S] [--duration D] [--workdir DIR]`

use std::path::PathBuf;

use anyhow::Context;

use std::sync::Arc;
use std::time::Duration;

use super::syscalls::TargetArgs;
use crate::kernel::patch::{Patch, PatchSource};
use crate::ops::fuzz::Plan;
use crate::shell::Shell;

/// Coverage-guided fuzzing of the selected syscalls on the built kernel, until stopped
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub guest: super::boot::GuestArgs,
    /// Number of VMs (default: kfuzz.toml's vm.count)
    #[arg(long, value_name = "N")]
    pub vms: Option<usize>,
    /// Programs run at once in each VM (default: kfuzz.toml's fuzz.procs)
    #[arg(long, value_name = "N")]
    pub procs: Option<usize>,
    /// Run each call in a thread of its own (default: kfuzz.toml's fuzz.threaded)
    #[arg(long)]
    pub threaded: bool,
    /// Also run programs with pairs of calls racing (default: kfuzz.toml's fuzz.collide)
    #[arg(long)]
    pub collide: bool,
    /// none | setuid (run programs as nobody) | namespace (new user/mount/net/ipc/uts namespaces)
    #[arg(long, value_enum, default_value_t = SandboxArg::None)]
    pub sandbox: SandboxArg,
    /// Stop after this long (`90s`, `30m`, `2h`); default: until Ctrl-C
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where the corpus and crashes live (default: kfuzz.toml's fuzz.workdir)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Seed the program generator (runs still differ: the kernel is not deterministic)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Do not reproduce new crashes while fuzzing (default: kfuzz.toml's fuzz.reproduce)
    #[arg(long)]
    pub no_reproduce: bool,
    /// Aim at a patch: a diff file, a commit, or (no value) the working tree's changes against
    /// HEAD. Programs reaching changed code are mutated more, and the changed lines reached
    /// are followed
    #[arg(long, value_name = "REV|FILE", num_args = 0..=1, default_missing_value = "")]
    pub patch: Option<String>,
    /// Serve a live dashboard (plots, crashes, corpus, coverage by source) at ADDR while
    /// fuzzing; with no value, on a free port of 127.0.0.1 (default: kfuzz.toml's fuzz.http)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub http: Option<String>,
    /// With --patch: follow the patch's lines without aiming at them (for measuring)
    #[arg(long, hide = true)]
    pub no_focus: bool,
    /// Generate programs only, with no coverage feedback (a baseline for benchmarks)
    #[arg(long, hide = true)]
    pub no_feedback: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SandboxArg {
    None,
    Setuid,
    Namespace,
}

impl From<SandboxArg> for kfuzz_wire::Sandbox {
    fn from(s: SandboxArg) -> Self {
        match s {
            SandboxArg::None => kfuzz_wire::Sandbox::None,
            SandboxArg::Setuid => kfuzz_wire::Sandbox::Setuid,
            SandboxArg::Namespace => kfuzz_wire::Sandbox::Namespace,
        }
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 90s, 30m or 2h, found {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let mut l = args.target.load(shell)?;
    // The patch first: a bad one is an error before anything is built or booted.
    let patch = match &args.patch {
        Some(a) => Some(Patch::load(&l.tree.root, &PatchSource::from_arg(Some(a)))?),
        None => None,
    };
    if let (Some(p), true) = (&patch, args.target.syscalls.is_empty()) {
        let extra: Vec<PathBuf> = args.workdir.iter().map(|w| w.join("corpus")).collect();
        choose_calls_for(p, &mut l, extra, &args.target.disable, shell)?;
    }
    let http = match (&args.http, &l.manifest.fuzz.http) {
        (Some(a), _) => Some(crate::dashboard::parse_addr(a).context("--http")?),
        (None, Some(a)) => Some(
            crate::dashboard::parse_addr(a)
                .with_context(|| format!("{}: fuzz.http", l.manifest.path.display()))?,
        ),
        (None, None) => None,
    };
    let kernel = crate::vm::boot::kernel_from_build(&l.tree.build_dir())?;
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let workdir = match &args.workdir {
        Some(d) => std::path::absolute(d)?,
        None => l.tree.root.join(&l.manifest.fuzz.workdir),
    };
    let plan = Plan {
        enabled: l.selection.enabled.clone(),
        kernel,
        vm_dir: l.tree.work_dir(),
        workdir,
        seeds: Vec::new(),
        vms: args.vms.unwrap_or(l.manifest.vm.count as usize),
        procs: args.procs.unwrap_or(l.manifest.fuzz.procs as usize),
        threaded: args.threaded || l.manifest.fuzz.threaded,
        collide: args.collide || l.manifest.fuzz.collide,
        sandbox: args.sandbox.into(),
        duration: args.duration,
        seed: args.seed,
        reproduce: l.manifest.fuzz.reproduce && !args.no_reproduce,
        no_feedback: args.no_feedback,
        patch,
        follow_only: args.no_focus,
        http,
    };
    let target = Arc::new(l.loaded.target);
    let summary = crate::ops::fuzz::fuzz(&l.tree, &l.manifest, target, &guest, plan, shell)?;
    shell.json(&serde_json::json!({"reason": "run-finished", "summary": summary}));
    if let Some(e) = summary.error {
        anyhow::bail!("{e}");
    }
    Ok(0)
}

/// `--patch` without `--syscalls`: the calls whose recorded coverage reaches the files the
/// patch changes (and the calls they need), instead of kfuzz.toml's. Without such records the
/// selection stays kfuzz.toml's, with a warning.
pub(crate) fn choose_calls_for(
    patch: &Patch,
    l: &mut super::syscalls::Loaded,
    more_corpora: Vec<PathBuf>,
    disable: &[String],
    shell: &Shell,
) -> anyhow::Result<()> {
    use crate::fuzz::reach::{CallReach, FileSet};
    let files: Vec<String> = patch.files.keys().cloned().collect();
    let mut corpora = super::syscalls::known_corpora(&l.tree, &l.manifest);
    for c in more_corpora {
        if !corpora.contains(&c) {
            corpora.push(c);
        }
    }
    let known = CallReach::learn(&l.loaded.target, &corpora);
    let calls = known.calls_reaching(&FileSet::of_paths(&files));
    if calls.is_empty() {
        shell.warn(format!(
            "no recorded corpus program reaches {} ({} programs with coverage records): \
             fuzzing kfuzz.toml's calls; give --syscalls to aim better",
            files.join(", "),
            known.programs
        ));
        return Ok(());
    }
    let names: Vec<String> = calls.iter().map(|(c, _)| c.clone()).collect();
    l.selection =
        super::syscalls::select(&l.manifest, &l.loaded.target, &[names.join(",")], disable)?;
    shell.status(
        "Calls",
        format!(
            "{} chosen for the patch: their recorded coverage reaches {} ({} with the calls they need)",
            names.len(),
            files.join(", "),
            l.selection.enabled.len()
        ),
    );
    shell.json(&serde_json::json!({"reason": "patch-calls", "calls": names, "enabled": l.selection.enabled.len()}));
    Ok(())
}
