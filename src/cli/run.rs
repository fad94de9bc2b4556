//! `kfuzz run [--syscalls GLOBS] [--vms N] [--sandbox S] [--duration D] [--workdir DIR]`

use std::path::PathBuf;

use anyhow::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::syscalls::TargetArgs;
use crate::fuzz::focus::{Focus, PatchReport};
use crate::fuzz::{FuzzOptions, Fuzzer};
use crate::kernel::lines::LineTable;
use crate::kernel::patch::{Patch, PatchSource};
use crate::shell::Shell;
use crate::vm::Accel;

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
        let extra = args.workdir.as_ref().map(|w| w.join("corpus"));
        choose_calls_for(p, &mut l, extra, &args.target.disable, shell)?;
    }
    let t = Arc::new(l.loaded.target);
    if l.selection.enabled.is_empty() {
        anyhow::bail!("no call is selected: see `kfuzz syscalls --syscalls …`");
    }
    let names: Vec<&str> = l
        .selection
        .enabled
        .iter()
        .map(|id| t.syscalls[*id].name.as_str())
        .collect();
    // Thousands with syzkaller's descriptions: a few names, all of them with -v.
    const SHOWN: usize = 12;
    if names.len() > SHOWN && shell.verbosity != crate::shell::Verbosity::Verbose {
        shell.status(
            "Enabled",
            format!(
                "{} calls: {} … (-v or `kfuzz syscalls` lists them)",
                names.len(),
                names[..SHOWN].join(" ")
            ),
        );
    } else {
        shell.status(
            "Enabled",
            format!("{} calls: {}", names.len(), names.join(" ")),
        );
    }
    let kernel = crate::vm::boot::kernel_from_build(&l.tree.build_dir())?;
    let work = l.tree.work_dir();
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let accel = Accel::detect_and_tell(shell);
    let vm = &l.manifest.vm;
    let spec_kernel = kernel.clone();
    let spec = guest.spec(vm, kernel, work.clone(), accel);
    let workdir = match &args.workdir {
        Some(d) => std::path::absolute(d)?,
        None => l.tree.root.join(&l.manifest.fuzz.workdir),
    };
    let vms = args.vms.unwrap_or(vm.count as usize).max(1);
    let symbols = crate::kernel::symbols::load_for(&spec_kernel, shell);
    // The line table: corpus programs are recorded with the source lines they reach, and
    // `--patch` is located through it.
    let table = crate::kernel::symbols::vmlinux_for(&spec_kernel)
        .context("no vmlinux beside the kernel image")
        .and_then(|v| LineTable::open(&v));
    let focus = match &patch {
        Some(p) => {
            let t = table
                .as_ref()
                .map_err(|e| anyhow::anyhow!("--patch: {e:#}"))?;
            let f = Focus::load(p, t, symbols.clone(), shell)?;
            Some(Arc::new(if args.no_focus { f.follow_only() } else { f }))
        }
        None => None,
    };
    let lines = match table {
        Ok(t) => Some(Arc::new(std::sync::Mutex::new(t))),
        Err(e) => {
            shell.verbose(
                "Lines",
                format!("{e:#}: corpus programs are recorded without their source lines"),
            );
            None
        }
    };
    let sandbox = args.sandbox.into();
    let fuzzer = Fuzzer::new(
        FuzzOptions {
            target: t,
            enabled: l.selection.enabled.clone(),
            spec,
            vms,
            procs: args
                .procs
                .unwrap_or(l.manifest.fuzz.procs as usize)
                .clamp(1, 32),
            threaded: args.threaded || l.manifest.fuzz.threaded,
            collide: args.collide || l.manifest.fuzz.collide,
            sandbox,
            duration: args.duration,
            workdir: workdir.clone(),
            no_feedback: args.no_feedback,
            reproduce: l.manifest.fuzz.reproduce && !args.no_reproduce,
            commit: crate::host::git_commit(&l.tree.root),
            symbols,
            seed: args.seed,
            tree: Some(l.tree.clone()),
            focus,
            lines,
        },
        shell,
    )?;
    let f = Arc::clone(&fuzzer);
    crate::vm::reaper::on_interrupt(move || f.stop.store(true, Ordering::SeqCst));
    shell.status(
        "Fuzzing",
        format!(
            "with {vms} VM{} x {} procs (work dir {})",
            if vms == 1 { "" } else { "s" },
            args.procs
                .unwrap_or(l.manifest.fuzz.procs as usize)
                .clamp(1, 32),
            workdir.display()
        ),
    );
    let summary = fuzzer.run();
    shell.status(
        "Finished",
        format!(
            "{:.0}s: {} execs, corpus {}, signal {}, cover {}, {} crash title(s), {} programs from hints",
            summary.elapsed_secs,
            summary.execs,
            summary.corpus,
            summary.signal,
            summary.cover,
            summary.crashes.len(),
            summary.hints
        ),
    );
    if let Some(p) = &summary.patch {
        print_patch(p, shell);
    }
    for (title, n) in &summary.crashes {
        shell.println(format!("crash: {title} ({n}x)"));
    }
    if summary.vm_replaced > 0 {
        shell.println(format!(
            "VMs:     {} replaced after a crash or hang, back in {:.1}s on average; {} started from a snapshot",
            summary.vm_replaced, summary.recovery_secs, summary.vm_restores
        ));
    }
    shell.println(format!("corpus:  {}", workdir.join("corpus").display()));
    shell.println(format!("crashes: {}", workdir.join("crashes").display()));
    shell.json(&serde_json::json!({"reason": "run-finished", "summary": summary}));
    if let Some(e) = summary.error {
        anyhow::bail!("{e}");
    }
    Ok(0)
}

/// The end of a `--patch` run: how much of the patch was reached, and what never was.
fn print_patch(p: &PatchReport, shell: &Shell) {
    let first = p
        .first_reach_secs
        .map(|s| format!("; first changed line reached after {s:.0}s"))
        .unwrap_or_default();
    shell.println(format!("patch:   {} ({}){first}", p.summary, p.origin));
    for f in &p.functions {
        if f.lines_reached == 0 {
            shell.println(format!(
                "  never reached: {} ({}:{})",
                f.function,
                f.file,
                join_lines(&f.unreached_lines)
            ));
        } else if !f.unreached_lines.is_empty() {
            shell.println(format!(
                "  {}: {}/{} changed lines reached; not {}:{}",
                f.function,
                f.lines_reached,
                f.lines_total,
                f.file,
                join_lines(&f.unreached_lines)
            ));
        }
    }
}

fn join_lines(lines: &[u32]) -> String {
    lines
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `--patch` without `--syscalls`: the calls whose recorded coverage reaches the files the
/// patch changes (and the calls they need), instead of kfuzz.toml's. Without such records the
/// selection stays kfuzz.toml's, with a warning.
fn choose_calls_for(
    patch: &Patch,
    l: &mut super::syscalls::Loaded,
    workdir_corpus: Option<PathBuf>,
    disable: &[String],
    shell: &Shell,
) -> anyhow::Result<()> {
    use crate::fuzz::reach::{CallReach, FileSet};
    let files: Vec<String> = patch.files.keys().cloned().collect();
    let mut corpora = super::syscalls::known_corpora(l);
    corpora.extend(workdir_corpus);
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
