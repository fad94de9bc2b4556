//! Fuzzing a built kernel: its VMs, guest, line table, patch focus and fuzzer, set up once for
//! `kfuzz run` and `kfuzz regress --fuzz`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kfuzz_prog::target::Target;

use crate::fuzz::focus::{Focus, PatchReport};
use crate::fuzz::{FuzzOptions, Fuzzer, Summary};
use crate::guest::Guest;
use crate::kernel::lines::LineTable;
use crate::kernel::patch::Patch;
use crate::kernel::tree::KernelTree;
use crate::manifest::Manifest;
use crate::shell::{Shell, Verbosity};
use crate::vm::Accel;

/// What to fuzz and how.
pub struct Plan {
    /// The calls to fuzz (ids in the target).
    pub enabled: Vec<usize>,
    /// The kernel the VMs boot (a bzImage, or a vmlinux with PVH).
    pub kernel: PathBuf,
    /// Where the VMs keep their consoles.
    pub vm_dir: PathBuf,
    /// The corpus and crashes.
    pub workdir: PathBuf,
    /// More corpus folders whose programs are triaged first (read, never written).
    pub seeds: Vec<PathBuf>,
    pub vms: usize,
    pub procs: usize,
    pub threaded: bool,
    pub collide: bool,
    pub sandbox: kfuzz_wire::Sandbox,
    pub duration: Option<Duration>,
    pub seed: Option<u64>,
    pub reproduce: bool,
    pub no_feedback: bool,
    /// Aim at this change (`--patch`); with `follow_only`, follow its lines without aiming.
    pub patch: Option<Patch>,
    pub follow_only: bool,
    /// Serve the dashboard here while fuzzing.
    pub http: Option<std::net::SocketAddr>,
}

/// Fuzzes until the plan's duration passes or Ctrl-C; prints the run's end as `kfuzz run` does.
pub fn fuzz(
    tree: &KernelTree,
    manifest: &Manifest,
    target: Arc<Target>,
    guest: &Guest,
    plan: Plan,
    shell: &Shell,
) -> anyhow::Result<Summary> {
    if plan.enabled.is_empty() {
        anyhow::bail!("no call is selected: see `kfuzz syscalls --syscalls …`");
    }
    tell_enabled(&target, &plan.enabled, shell);
    let accel = Accel::detect_and_tell(shell);
    let spec = guest.spec(&manifest.vm, plan.kernel.clone(), plan.vm_dir, accel);
    let symbols = crate::kernel::symbols::load_for(&plan.kernel, shell);
    // The line table: corpus programs are recorded with the source lines they reach, and
    // `--patch` is located through it.
    let table = crate::kernel::symbols::vmlinux_for(&plan.kernel)
        .context("no vmlinux beside the kernel image")
        .and_then(|v| LineTable::open(&v));
    let focus = match &plan.patch {
        Some(p) => {
            let t = table
                .as_ref()
                .map_err(|e| anyhow::anyhow!("--patch: {e:#}"))?;
            let f = Focus::load(p, t, symbols.clone(), shell)?;
            Some(Arc::new(if plan.follow_only { f.follow_only() } else { f }))
        }
        None => None,
    };
    let lines = match table {
        Ok(t) => Some(Arc::new(Mutex::new(t))),
        Err(e) => {
            shell.verbose(
                "Lines",
                format!("{e:#}: corpus programs are recorded without their source lines"),
            );
            None
        }
    };
    let (vms, procs, workdir) = (plan.vms.max(1), plan.procs.clamp(1, 32), plan.workdir);
    let fuzzer = Fuzzer::new(
        FuzzOptions {
            target,
            enabled: plan.enabled,
            spec,
            vms,
            procs,
            threaded: plan.threaded,
            collide: plan.collide,
            sandbox: plan.sandbox,
            duration: plan.duration,
            workdir: workdir.clone(),
            seeds: plan.seeds,
            no_feedback: plan.no_feedback,
            reproduce: plan.reproduce,
            commit: crate::host::git_commit(&tree.root),
            symbols,
            seed: plan.seed,
            tree: Some(tree.clone()),
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
            "with {vms} VM{} x {procs} procs (work dir {})",
            if vms == 1 { "" } else { "s" },
            workdir.display()
        ),
    );
    let dashboard = match plan.http {
        Some(addr) => {
            let vmlinux = crate::kernel::symbols::vmlinux_for(&plan.kernel);
            let d = crate::dashboard::start(addr, Arc::clone(&fuzzer), &tree.root, vmlinux, shell)?;
            shell.status("Dashboard", &d.url);
            shell.json(&serde_json::json!({"reason": "dashboard", "url": d.url}));
            Some(d)
        }
        None => None,
    };
    let summary = fuzzer.run();
    drop(dashboard);
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
    Ok(summary)
}

/// The enabled calls: all of them, or (thousands with syzkaller's descriptions) the first few
/// unless `-v`.
fn tell_enabled(t: &Target, enabled: &[usize], shell: &Shell) {
    let names: Vec<&str> = enabled
        .iter()
        .map(|id| t.syscalls[*id].name.as_str())
        .collect();
    const SHOWN: usize = 12;
    if names.len() > SHOWN && shell.verbosity != Verbosity::Verbose {
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
