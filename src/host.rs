//! What the host machine offers kfuzz: tools, packages, KVM. `kfuzz doctor` prints it; the VM
//! code asks `kvm()` before choosing an accelerator. Reads only /proc, /sys and PATH.

use std::path::Path;

/// kfuzz's cache outside any tree: `$KFUZZ_CACHE_DIR`, else `$XDG_CACHE_HOME/kfuzz` or
/// `~/.cache/kfuzz`.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("KFUZZ_CACHE_DIR").filter(|d| !d.is_empty()) {
        return std::path::PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("kfuzz")
}

/// Whether hardware virtualisation can run a stock guest kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kvm {
    Usable,
    /// Why not, in a sentence a user can act on.
    Unusable(String),
}

/// `/dev/kvm` opening is not proof: a PVM nested hypervisor (`kvm_pvm`) also provides it, and
/// stock kernels hang under it. Usable means: the CPU has vmx or svm, kvm_intel or kvm_amd is
/// loaded, and `/dev/kvm` opens read-write.
pub fn kvm() -> Kvm {
    kvm_from(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
        |m| Path::new("/sys/module").join(m).exists(),
        || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
}

fn kvm_from(
    cpuinfo: &str,
    module_loaded: impl Fn(&str) -> bool,
    open_dev: impl Fn() -> Result<(), String>,
) -> Kvm {
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let vendor_module = if has("vmx") {
        "kvm_intel"
    } else if has("svm") {
        "kvm_amd"
    } else if module_loaded("kvm_pvm") {
        return Kvm::Unusable(
            "/dev/kvm belongs to a PVM nested hypervisor (kvm_pvm) and the CPU has no vmx/svm; \
             stock kernels do not boot under it"
                .into(),
        );
    } else {
        return Kvm::Unusable("the CPU has no vmx/svm flag (no hardware virtualisation)".into());
    };
    if !module_loaded(vendor_module) {
        return Kvm::Unusable(format!(
            "module {vendor_module} is not loaded (modprobe {vendor_module})"
        ));
    }
    match open_dev() {
        Ok(()) => Kvm::Usable,
        Err(e) => Kvm::Unusable(format!(
            "cannot open /dev/kvm read-write: {e} (add yourself to the kvm group)"
        )),
    }
}

/// One thing `kfuzz doctor` checks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub required: bool,
    /// What was found, or why it is missing.
    pub detail: String,
    /// The Debian package that provides it.
    pub package: Option<&'static str>,
}

/// (program, Debian package, required)
const PROGRAMS: &[(&str, &str, bool)] = &[
    ("qemu-system-x86_64", "qemu-system-x86", true),
    ("make", "make", true),
    ("gcc", "gcc", true),
    ("flex", "flex", true),
    ("bison", "bison", true),
    ("bc", "bc", true),
    ("perl", "perl", true),
    ("cpio", "cpio", true),
    ("busybox", "busybox-static", false),
    ("debootstrap", "debootstrap", false),
];

/// (header, what it is, Debian package)
const HEADERS: &[(&str, &str, &str)] = &[
    ("/usr/include/libelf.h", "libelf headers", "libelf-dev"),
    (
        "/usr/include/openssl/ssl.h",
        "OpenSSL headers",
        "libssl-dev",
    ),
];

pub fn doctor(dir: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    for (prog, pkg, required) in PROGRAMS {
        let found = which::which(prog);
        checks.push(Check {
            name: (*prog).to_string(),
            ok: found.is_ok(),
            required: *required,
            detail: match &found {
                Ok(p) => p.display().to_string(),
                Err(_) => "not found in PATH".into(),
            },
            package: Some(pkg),
        });
    }
    for (header, what, pkg) in HEADERS {
        let ok = Path::new(header).exists();
        checks.push(Check {
            name: (*what).to_string(),
            ok,
            required: true,
            detail: if ok {
                (*header).to_string()
            } else {
                format!("{header} missing")
            },
            package: Some(pkg),
        });
    }
    let cc = crate::kernel::compiler::detect(crate::manifest::Compiler::Gcc);
    checks.push(Check {
        name: "KCOV compiler support".into(),
        ok: cc.is_ok(),
        required: true,
        detail: match &cc {
            Ok(c) => format!(
                "{}: trace-pc yes, trace-cmp {}",
                c.version,
                if c.trace_cmp { "yes" } else { "no" }
            ),
            Err(e) => e.to_string(),
        },
        package: Some("gcc"),
    });
    let kvm = kvm();
    checks.push(Check {
        name: "KVM".into(),
        ok: kvm == Kvm::Usable,
        required: false,
        detail: match kvm {
            Kvm::Usable => "usable: VMs run at native speed".into(),
            Kvm::Unusable(why) => format!("{why}; VMs will use TCG (slow emulation)"),
        },
        package: None,
    });
    let free = free_bytes(dir);
    let gib = free.map(|b| b as f64 / (1u64 << 30) as f64);
    checks.push(Check {
        name: "free disk".into(),
        ok: gib.is_some_and(|g| g >= 10.0),
        required: true,
        detail: match gib {
            Some(g) => format!(
                "{g:.1} GiB free in {} (a debug kernel build needs ~10 GiB)",
                dir.display()
            ),
            None => format!("cannot read free space of {}", dir.display()),
        },
        package: None,
    });
    checks
}

/// Bytes an unprivileged user may still write on the file system holding `dir` (None when
/// statvfs fails).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// The commit checked out in `dir`'s git repository (None outside git).
pub fn git_commit(dir: &std::path::Path) -> Option<String> {
    let repo = git2::Repository::discover(dir).ok()?;
    let head = repo.head().ok()?;
    head.peel_to_commit().ok().map(|c| c.id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvm_without_vmx_is_not_usable() {
        let k = kvm_from(
            "flags\t: fpu sse2 hypervisor\n",
            |m| m == "kvm_pvm",
            || Ok(()),
        );
        assert!(
            matches!(k, Kvm::Unusable(ref why) if why.contains("kvm_pvm")),
            "{k:?}"
        );
    }

    #[test]
    fn vmx_with_module_and_device_is_usable() {
        let k = kvm_from("flags\t: fpu vmx sse2\n", |m| m == "kvm_intel", || Ok(()));
        assert_eq!(k, Kvm::Usable);
    }

    #[test]
    fn svm_without_module_or_permission_says_why() {
        let k = kvm_from("flags\t: svm\n", |_| false, || Ok(()));
        assert!(
            matches!(k, Kvm::Unusable(ref w) if w.contains("kvm_amd")),
            "{k:?}"
        );
        let k = kvm_from(
            "flags\t: svm\n",
            |m| m == "kvm_amd",
            || Err("Permission denied".into()),
        );
        assert!(
            matches!(k, Kvm::Unusable(ref w) if w.contains("Permission denied")),
            "{k:?}"
        );
    }
}
