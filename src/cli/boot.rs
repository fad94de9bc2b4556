//! `kfuzz boot [--vms N] [--kernel PATH] [-- CMD ARGS]`

use std::path::PathBuf;
use std::time::Duration;

use crate::guest::initramfs;
use crate::kernel::tree::KernelTree;
use crate::manifest::Manifest;
use crate::shell::Shell;
use crate::vm::boot::{self, BootRequest};
use crate::vm::{Accel, VmSpec};

/// The guest options of every command that boots VMs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuestArgs {
    /// Boot into a disk image instead of the initramfs: "debian" (`kfuzz image build`), a name
    /// from `kfuzz image list`, or a path to a raw ext4 image (default: kfuzz.toml's guest.image)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

impl GuestArgs {
    /// The guest of a command that works on a tree: its initramfs under the tree's
    /// `.kfuzz/guest`, and the image from `--image` or kfuzz.toml.
    pub fn prepare(
        &self,
        shell: &Shell,
        tree: &KernelTree,
        manifest: &Manifest,
    ) -> anyhow::Result<crate::guest::Guest> {
        crate::guest::Guest::prepare(
            shell,
            manifest,
            &tree.root,
            &tree.work_dir(),
            self.image.as_deref(),
        )
    }
}

/// Boot the built kernel in QEMU with the kfuzz guest, print each handshake, optionally run CMD
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of VMs to boot in parallel (default: kfuzz.toml's vm.count)
    #[arg(long, value_name = "N")]
    pub vms: Option<usize>,
    /// Boot this kernel (any bzImage or vmlinux) instead of the tree's build
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Extra kernel command line arguments
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Seconds CMD may run in the guest
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Command to run in each guest (after `--`)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let tree = super::current_tree();
    let (tree, manifest) = match (tree, &args.kernel) {
        (Ok(t), _) => {
            let m = Manifest::load(&t.manifest_path())?;
            (Some(t), Some(m))
        }
        (Err(_), Some(_)) => (None, None),
        (Err(e), None) => {
            return Err(e.context("`kfuzz boot` needs a kernel tree, or --kernel PATH"))
        }
    };
    let kernel = match (&args.kernel, &tree) {
        (Some(k), _) => std::path::absolute(k)?,
        (None, Some(t)) => boot::kernel_from_build(&t.build_dir())?,
        (None, None) => unreachable!("handled above"),
    };
    if !kernel.is_file() {
        anyhow::bail!("kernel image {} does not exist", kernel.display());
    }
    let work_dir = match &tree {
        Some(t) => t.work_dir(),
        None => crate::host::cache_dir().join("boot"),
    };
    let vm_cfg = manifest.as_ref().map(|m| m.vm.clone()).unwrap_or_default();
    let files = manifest
        .as_ref()
        .map(|m| m.guest.files.clone())
        .unwrap_or_default();
    let base = tree
        .as_ref()
        .map(|t: &KernelTree| t.root.clone())
        .unwrap_or_default();
    let initrd = initramfs::build(&work_dir.join("guest"), &files, &base)?;
    shell.verbose(
        if initrd.cached { "Fresh" } else { "Packed" },
        format!(
            "{} ({} KiB{})",
            initrd.path.display(),
            initrd.size / 1024,
            if initrd.busybox.is_some() {
                ", with busybox"
            } else {
                ", no busybox: install busybox-static for a shell"
            }
        ),
    );
    let accel = Accel::detect_and_tell(shell);
    let mut cmdline = vm_cfg.cmdline.clone();
    if let Some(extra) = &args.append {
        cmdline = format!("{cmdline} {extra}");
    }
    let vms = args.vms.unwrap_or(vm_cfg.count as usize).max(1);
    let mut spec = VmSpec::new(&vm_cfg, kernel.clone(), initrd.path, work_dir, accel);
    spec.cmdline = cmdline;
    let guest_cfg = manifest
        .as_ref()
        .map(|m| m.guest.clone())
        .unwrap_or_default();
    if let Some(name) = args.guest.image.as_deref().or(guest_cfg.image.as_deref()) {
        spec.image = Some(crate::image::resolve(name, &base, &guest_cfg.packages)?);
    }
    spec.setup = guest_cfg.setup;
    shell.status(
        "Booting",
        format!(
            "{vms} VM{} with {}",
            if vms == 1 { "" } else { "s" },
            kernel.display()
        ),
    );
    let req = BootRequest {
        spec,
        vms,
        command: args.command,
        command_timeout: Duration::from_secs(args.timeout),
    };
    let reports = boot::boot(&req, shell)?;
    let mut code = 0;
    for r in &reports {
        shell.json(&serde_json::json!({ "reason": "vm-report", "report": r }));
        if let Some(c) = &r.command {
            if reports.len() > 1 {
                shell.println(format!("--- vm{} ---", r.vm));
            }
            if shell.format == crate::shell::MessageFormat::Human {
                print!("{}", c.stdout);
                eprint!("{}", c.stderr);
            }
            let how = match (c.status, c.signal, c.timed_out) {
                (_, _, true) => "timed out".to_string(),
                (Some(s), _, _) => format!("exit status {s}"),
                (None, Some(sig), _) => format!("killed by signal {sig}"),
                _ => "unknown status".to_string(),
            };
            shell.status("Exited", format!("vm{}: {how}", r.vm));
            if c.status != Some(0) {
                code = 1;
            }
        }
    }
    shell.status(
        "Finished",
        format!(
            "{} VM{} shut down",
            reports.len(),
            if reports.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(code)
}
