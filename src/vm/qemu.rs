//! The qemu-system-x86_64 command line for one kfuzz VM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const QEMU: &str = "qemu-system-x86_64";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation, and why KVM was not used.
    Tcg(String),
}

impl Accel {
    /// KVM when it is really usable (see `host::kvm`), TCG otherwise.
    pub fn detect() -> Accel {
        match crate::host::kvm() {
            crate::host::Kvm::Usable => Accel::Kvm,
            crate::host::Kvm::Unusable(why) => Accel::Tcg(why),
        }
    }

    /// Timeouts are written for KVM; TCG is this many times slower.
    pub fn timeout_scale(&self) -> u32 {
        match self {
            Accel::Kvm => 1,
            Accel::Tcg(_) => 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    /// bzImage, or an ELF vmlinux booted through its PVH entry point.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Holds `vmN/` (console log, channel socket).
    pub work_dir: PathBuf,
    pub accel: Accel,
    pub cpus: u32,
    pub memory_mb: u32,
    /// Appended to kfuzz's kernel command line.
    pub cmdline: String,
    pub qemu_args: Vec<String>,
    /// A raw ext4 disk image to boot into (see `kfuzz image`): the initramfs's init mounts it
    /// and makes it the root. Each VM writes to a copy-on-write layer of its own that QEMU
    /// drops on exit, so the image itself never changes.
    pub image: Option<PathBuf>,
    /// Commands (`/bin/sh -c`) run in each guest once it is up (`[guest] setup`).
    pub setup: Vec<String>,
    /// Where snapshots of a ready VM are kept (see `snapshot`); None: every VM boots.
    pub snapshot_dir: Option<PathBuf>,
}

impl VmSpec {
    /// A spec from kfuzz.toml's `[vm]` table.
    pub fn new(
        vm: &crate::manifest::VmConfig,
        kernel: PathBuf,
        initrd: PathBuf,
        work_dir: PathBuf,
        accel: Accel,
    ) -> VmSpec {
        VmSpec {
            kernel,
            initrd,
            work_dir,
            accel,
            cpus: vm.cpus,
            memory_mb: vm.memory_mb,
            cmdline: vm.cmdline.clone(),
            qemu_args: vm.qemu_args.clone(),
            image: None,
            setup: Vec::new(),
            snapshot_dir: None,
        }
    }
}

impl Accel {
    /// `detect`, with the one-line notice when it falls back to TCG.
    pub fn detect_and_tell(shell: &crate::shell::Shell) -> Accel {
        let accel = Accel::detect();
        if let Accel::Tcg(why) = &accel {
            shell.note(
                "Notice",
                format!(
                    "using TCG (slow software emulation): {why}; timeouts x{}",
                    accel.timeout_scale()
                ),
            );
        }
        accel
    }
}

/// The kernel command line: serial console, no KASLR (stable PCs for coverage), a panic ends
/// the VM (QEMU runs with -no-reboot), and the executor as init; with a disk `image`, the
/// device init makes the root (the image is the only virtio disk, so the first).
pub fn kernel_cmdline(extra: &str, image: bool) -> String {
    let mut c = String::from(
        "console=ttyS0 earlyprintk=serial nokaslr panic=-1 oops=panic panic_on_warn=0 \
         rdinit=/init printk.devkmsg=on",
    );
    if image {
        c.push_str(" kfuzz.root=/dev/vda");
    }
    if !extra.trim().is_empty() {
        c.push(' ');
        c.push_str(extra.trim());
    }
    c
}

/// The channel sockets of a VM in `dir`: the virtio-serial port (kfuzz kernels), and a second
/// UART (ttyS1) the executor falls back to on kernels whose virtio console is a module or absent.
pub fn channel_sockets(dir: &Path) -> [PathBuf; 2] {
    [dir.join("kfuzz.sock"), dir.join("serial.sock")]
}

/// QEMU's monitor (QMP) socket of a VM in `dir`: snapshots are taken through it.
pub fn qmp_socket(dir: &Path) -> PathBuf {
    dir.join("qmp.sock")
}

pub fn command(spec: &VmSpec, dir: &Path) -> Command {
    let [socket, serial] = channel_sockets(dir);
    let mut cmd = Command::new(QEMU);
    let (accel, cpu) = match spec.accel {
        Accel::Kvm => ("kvm", "host"),
        Accel::Tcg(_) => ("tcg", "max"),
    };
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args(["-machine", &format!("pc,accel={accel}")])
    .args(["-cpu", cpu])
    .args(["-smp", &spec.cpus.to_string()])
    .args(["-m", &spec.memory_mb.to_string()])
    .args(["-serial", "stdio", "-monitor", "none"])
    .arg("-qmp")
    .arg(format!(
        "unix:{},server=on,wait=off",
        qmp_socket(dir).display()
    ))
    .args([
        "-chardev",
        &format!(
            "socket,id=kfuzzS,path={},server=on,wait=off",
            serial.display()
        ),
    ])
    .args(["-serial", "chardev:kfuzzS"])
    .arg("-kernel")
    .arg(&spec.kernel)
    .arg("-initrd")
    .arg(&spec.initrd)
    .args([
        "-append",
        &kernel_cmdline(&spec.cmdline, spec.image.is_some()),
    ])
    .args(["-device", "virtio-serial-pci,id=vser0"])
    .args([
        "-chardev",
        &format!(
            "socket,id=kfuzz,path={},server=on,wait=off",
            socket.display()
        ),
    ])
    .args([
        "-device",
        &format!(
            "virtserialport,bus=vser0.0,chardev=kfuzz,name={}",
            kfuzz_wire::PORT_NAME
        ),
    ])
    .args(spec.image.iter().flat_map(|img| {
        [
            "-drive".to_string(),
            // snapshot=on: writes go to a temporary file of QEMU's, the image is only read.
            format!(
                "file={},format=raw,if=virtio,snapshot=on",
                img.display().to_string().replace(',', ",,")
            ),
        ]
    }))
    .args(&spec.qemu_args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// True when the file is an ELF image (a vmlinux, booted through PVH) rather than a bzImage.
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accel: Accel) -> VmSpec {
        VmSpec {
            kernel: "/k/bzImage".into(),
            initrd: "/k/initrd".into(),
            work_dir: "/w".into(),
            accel,
            cpus: 2,
            memory_mb: 512,
            cmdline: "rdinit=/nope".into(),
            qemu_args: vec!["-s".into()],
            image: None,
            setup: Vec::new(),
            snapshot_dir: None,
        }
    }

    #[test]
    fn an_image_is_a_snapshot_disk_and_the_root_init_switches_to() {
        let mut s = spec(Accel::Kvm);
        s.image = Some("/cache/images/a,b.img".into());
        let args: Vec<String> = command(&s, Path::new("/w/vm0"))
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let drive = &args[args.iter().position(|a| a == "-drive").unwrap() + 1];
        assert_eq!(
            drive,
            "file=/cache/images/a,,b.img,format=raw,if=virtio,snapshot=on"
        );
        let append = &args[args.iter().position(|a| a == "-append").unwrap() + 1];
        assert!(append.contains(" kfuzz.root=/dev/vda"), "{append}");
        let plain: Vec<String> = command(&spec(Accel::Kvm), Path::new("/w/vm0"))
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!plain
            .iter()
            .any(|a| a == "-drive" || a.contains("kfuzz.root")));
    }

    #[test]
    fn tcg_command_line() {
        let cmd = command(&spec(Accel::Tcg("no vmx".into())), Path::new("/w/vm0"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("-machine pc,accel=tcg -cpu max -smp 2 -m 512"),
            "{joined}"
        );
        assert!(
            joined.contains("-kernel /k/bzImage -initrd /k/initrd"),
            "{joined}"
        );
        assert!(
            joined.contains("path=/w/vm0/kfuzz.sock,server=on,wait=off"),
            "{joined}"
        );
        assert!(joined.contains("name=kfuzz"), "{joined}");
        assert!(
            joined.contains("path=/w/vm0/serial.sock,server=on,wait=off -serial chardev:kfuzzS"),
            "{joined}"
        );
        assert!(joined.ends_with("-s"), "user args last: {joined}");
        let append = &args[args.iter().position(|a| a == "-append").unwrap() + 1];
        assert!(
            append.contains("console=ttyS0") && append.ends_with("rdinit=/nope"),
            "{append}"
        );
    }

    #[test]
    fn kvm_uses_the_host_cpu() {
        let cmd = command(&spec(Accel::Kvm), Path::new("/s"));
        let joined: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(joined.join(" ").contains("accel=kvm -cpu host"));
        assert_eq!(Accel::Kvm.timeout_scale(), 1);
        assert!(Accel::Tcg(String::new()).timeout_scale() > 1);
    }
}
