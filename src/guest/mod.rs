//! The guest kfuzz boots: an initramfs it writes itself (the default; layout:
//! `images/initramfs.md`), optionally switching into a disk image (`kfuzz image`), plus the
//! setup commands run in it. Every command that starts VMs gets its `VmSpec` from here.

pub mod cpio;
pub mod initramfs;

use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, VmConfig};
use crate::shell::Shell;
use crate::vm::{Accel, VmSpec};

/// The guest of one command, made once; `spec` turns it into VM specs.
#[derive(Debug, Clone)]
pub struct Guest {
    pub initrd: PathBuf,
    /// The disk image to switch into, when one was asked for.
    pub image: Option<PathBuf>,
    pub setup: Vec<String>,
    /// Where VM snapshots are kept (`work/snapshots`, see `vm::snapshot`).
    pub snapshots: PathBuf,
}

impl Guest {
    /// Writes (or reuses) the initramfs under `work/guest` and finds the disk image: `--image`
    /// (`image_arg`) first, then kfuzz.toml's `guest.image`.
    pub fn prepare(
        shell: &Shell,
        manifest: &Manifest,
        root: &Path,
        work: &Path,
        image_arg: Option<&str>,
    ) -> anyhow::Result<Guest> {
        let initrd = initramfs::build(&work.join("guest"), &manifest.guest.files, root)?;
        shell.verbose(
            if initrd.cached { "Fresh" } else { "Packed" },
            format!("{} ({} KiB)", initrd.path.display(), initrd.size / 1024),
        );
        let image = match image_arg.or(manifest.guest.image.as_deref()) {
            Some(name) => Some(crate::image::resolve(name, root, &manifest.guest.packages)?),
            None => None,
        };
        if let Some(img) = &image {
            shell.verbose("Image", img.display());
        }
        Ok(Guest {
            initrd: initrd.path,
            image,
            setup: manifest.guest.setup.clone(),
            snapshots: work.join("snapshots"),
        })
    }

    /// A spec for VMs of `kernel` whose consoles and sockets go under `vm_dir`.
    pub fn spec(&self, vm: &VmConfig, kernel: PathBuf, vm_dir: PathBuf, accel: Accel) -> VmSpec {
        let mut spec = VmSpec::new(vm, kernel, self.initrd.clone(), vm_dir, accel);
        spec.image = self.image.clone();
        spec.setup = self.setup.clone();
        spec.snapshot_dir = vm.snapshots.then(|| self.snapshots.clone());
        spec
    }
}
