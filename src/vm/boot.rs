//! `kfuzz boot`: start N VMs on one kernel, wait for each executor's handshake, run the coverage
//! probe and an optional command in each, shut them down. Reports through `Shell`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kfuzz_wire::{GuestMsg, Handshake};
use serde::Serialize;

use super::{Vm, VmSpec};
use crate::shell::Shell;

/// Base (KVM) time to wait for a handshake; scaled under TCG.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct BootRequest {
    pub spec: VmSpec,
    pub vms: usize,
    /// Run in each guest after the handshake (empty: none).
    pub command: Vec<String>,
    pub command_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    pub vm: usize,
    pub handshake: Handshake,
    pub boot_secs: f64,
    pub probe: Result<kfuzz_wire::ProbeResult, String>,
    pub command: Option<CommandReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandReport {
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Boots every VM; the first failure is returned after all VMs are stopped.
pub fn boot(req: &BootRequest, shell: &Shell) -> anyhow::Result<Vec<VmReport>> {
    // Spawned from this thread, which outlives them (see `Vm::start`).
    let mut vms = Vec::new();
    for i in 0..req.vms {
        vms.push(Vm::start(&req.spec, i)?);
    }
    let timeout = BOOT_TIMEOUT * req.spec.accel.timeout_scale();
    let results: Vec<anyhow::Result<VmReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = vms
            .iter_mut()
            .map(|vm| s.spawn(move || one(vm, req, timeout, shell)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a VM thread panicked")))
            })
            .collect()
    });
    for vm in vms {
        vm.shutdown();
    }
    results.into_iter().collect()
}

/// Shows each `[guest] setup` command a VM ran, with its output.
pub fn tell_setup(vm: &Vm, shell: &Shell) {
    for (cmd, out) in &vm.setup_log {
        let out: String = out.lines().map(|l| format!("\n    {l}")).collect();
        shell.status("Setup", format!("vm{}: {cmd}{out}", vm.index));
    }
}

fn one(
    vm: &mut Vm,
    req: &BootRequest,
    timeout: Duration,
    shell: &Shell,
) -> anyhow::Result<VmReport> {
    let (handshake, took) = vm.wait_ready(timeout)?;
    let features = handshake
        .features
        .list()
        .iter()
        .map(|(n, on)| if *on { n.to_string() } else { format!("-{n}") })
        .collect::<Vec<_>>()
        .join(" ");
    shell.status(
        "Ready",
        format!(
            "vm{}: linux {} in {:.1}s, {} cpu, {} MiB, features: {features}",
            vm.index,
            handshake.release,
            took.as_secs_f64(),
            handshake.cpus,
            handshake.memory_kib / 1024
        ),
    );
    vm.run_setup(&req.spec.setup)?;
    tell_setup(vm, shell);
    let probe = match vm.coverage_probe()? {
        GuestMsg::CoverageProbe(r) => r,
        other => Err(format!("unexpected reply {other:?}")),
    };
    match &probe {
        Ok(p) => shell.status(
            "Coverage",
            format!(
                "vm{}: {} distinct kernel PCs from {}",
                vm.index,
                p.distinct_pcs,
                p.syscalls.join(", ")
            ),
        ),
        Err(e) => shell.note("Coverage", format!("vm{}: {e}", vm.index)),
    }
    let command = if req.command.is_empty() {
        None
    } else {
        shell.status(
            "Running",
            format!("vm{}: {}", vm.index, req.command.join(" ")),
        );
        let reply = vm
            .command(&req.command, req.command_timeout)
            .with_context(|| format!("vm{}: running {:?}", vm.index, req.command))?;
        match reply {
            GuestMsg::CommandDone {
                status,
                signal,
                timed_out,
                stdout,
                stderr,
            } => Some(CommandReport {
                status,
                signal,
                timed_out,
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            }),
            GuestMsg::Error(e) => anyhow::bail!("vm{}: {e}", vm.index),
            other => anyhow::bail!("vm{}: unexpected reply {other:?}", vm.index),
        }
    };
    Ok(VmReport {
        vm: vm.index,
        handshake,
        boot_secs: took.as_secs_f64(),
        probe,
        command,
    })
}

/// The kernel image to boot from a kfuzz build dir: `vmlinux` through PVH when the config has
/// CONFIG_PVH=y (skips the decompressor), else `bzImage`. Not with KASAN: there the PVH entry
/// faults on the not-yet-mapped KASAN shadow before the first console line (seen with 6.12 under
/// QEMU 7.2: a #PF at CR2=fffffbff…, then a triple fault).
pub fn kernel_from_build(build_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let bzimage = build_dir.join("arch/x86/boot/bzImage");
    let vmlinux = build_dir.join("vmlinux");
    if !bzimage.is_file() {
        anyhow::bail!(
            "no kernel at {}: run `kfuzz build` first (or pass --kernel)",
            bzimage.display()
        );
    }
    let config = std::fs::read_to_string(build_dir.join(".config")).unwrap_or_default();
    let has = |sym: &str| config.lines().any(|l| l == format!("CONFIG_{sym}=y"));
    if has("PVH") && !has("KASAN") && vmlinux.is_file() {
        return Ok(vmlinux);
    }
    Ok(bzimage)
}
