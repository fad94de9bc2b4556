//! The kfuzz initramfs: `/init` (the embedded static executor), a static busybox when the host
//! has one, `/dev/console`, a minimal `/etc`, and the host files listed in kfuzz.toml. Written
//! once per distinct set of inputs and cached in the work dir by content hash.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::cpio::CpioWriter;
use crate::manifest::GuestFile;

/// The guest executor, built static by build.rs and embedded here.
pub static EXECUTOR: &[u8] = include_bytes!(env!("KFUZZ_EXECUTOR_PATH"));

/// Where Debian's busybox-static installs it.
const BUSYBOX_PATHS: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

#[derive(Debug, Clone)]
pub struct Initramfs {
    pub path: PathBuf,
    pub size: u64,
    /// The archive was already cached.
    pub cached: bool,
    /// The static busybox it carries, if any.
    pub busybox: Option<PathBuf>,
}

/// A static busybox on the host (dynamic ones would not run in the guest).
pub fn find_busybox() -> Option<PathBuf> {
    BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file() && is_static_elf(p))
}

/// An ELF with no PT_INTERP program header is statically linked.
fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    let Ok(file) = object::File::parse(&*data) else {
        return false;
    };
    use object::Object;
    !file.sections().any(|s| {
        use object::ObjectSection;
        s.name() == Ok(".interp")
    })
}

/// Writes (or finds cached) the initramfs for these inputs under `dir`.
pub fn build(dir: &Path, files: &[GuestFile], base: &Path) -> anyhow::Result<Initramfs> {
    let busybox = find_busybox();
    let busybox_bytes = match &busybox {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let mut user_files = Vec::new();
    for f in files {
        let host = base.join(&f.host);
        let data = std::fs::read(&host).with_context(|| {
            format!(
                "cannot read {} (listed in kfuzz.toml [[guest.files]])",
                host.display()
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&host)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        if !f.guest.starts_with('/') {
            bail!(
                "guest path {:?} in kfuzz.toml [[guest.files]] must be absolute",
                f.guest
            );
        }
        user_files.push((f.guest.clone(), mode, data));
    }

    let mut h = Sha256::new();
    h.update(b"kfuzz-initramfs-v1\0");
    h.update(EXECUTOR);
    if let Some(b) = &busybox_bytes {
        h.update(b);
    }
    for (g, m, d) in &user_files {
        h.update(format!("{g}\0{m}\0{}\0", d.len()));
        h.update(d);
    }
    let key = hex::encode(&h.finalize()[..8]);
    let path = dir.join(format!("initramfs-{key}.cpio"));
    if let Ok(meta) = std::fs::metadata(&path) {
        return Ok(Initramfs {
            path,
            size: meta.len(),
            cached: true,
            busybox,
        });
    }

    let mut w = CpioWriter::new();
    for d in [
        "/bin",
        "/sbin",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/dev",
        "/proc",
        "/sys",
        "/tmp",
        "/root",
        "/etc",
        "/mnt",
    ] {
        w.dir(d);
    }
    w.char_device("/dev/console", 0o600, 5, 1);
    w.char_device("/dev/null", 0o666, 1, 3);
    w.file("/init", 0o755, EXECUTOR);
    w.file(
        "/etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    w.file("/etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    if let (Some(bin), Some(bytes)) = (&busybox, &busybox_bytes) {
        w.file("/bin/busybox", 0o755, bytes);
        for applet in busybox_applets(bin) {
            if applet == "bin/busybox"
                || applet == "init"
                || applet == "sbin/init"
                || applet == "linuxrc"
            {
                continue;
            }
            let depth = applet.matches('/').count();
            let target = format!("{}bin/busybox", "../".repeat(depth));
            w.symlink(&applet, &target);
        }
    }
    let mut made: Vec<String> = Vec::new();
    for (guest, mode, data) in &user_files {
        let mut parent = Path::new(guest).parent();
        let mut parents = Vec::new();
        while let Some(p) = parent.filter(|p| *p != Path::new("/")) {
            parents.push(p.display().to_string());
            parent = p.parent();
        }
        for p in parents.into_iter().rev() {
            if !made.contains(&p) {
                w.dir(&p);
                made.push(p);
            }
        }
        w.file(guest, *mode, data);
    }
    let bytes = w.finish();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Older archives go, except the most recent few: another kfuzz (another version, other
    // guest files) may be booting VMs from one right now.
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut old: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("initramfs-") && n.ends_with(".cpio")
            })
            .map(|e| {
                let t = e.metadata().and_then(|m| m.modified());
                (t.unwrap_or(std::time::UNIX_EPOCH), e.path())
            })
            .collect();
        old.sort();
        let keep = 3;
        for (_, p) in old.iter().take(old.len().saturating_sub(keep)) {
            let _ = std::fs::remove_file(p);
        }
    }
    crate::fsutil::write_atomic(&path, &bytes)?;
    Ok(Initramfs {
        path,
        size: bytes.len() as u64,
        cached: false,
        busybox,
    })
}

/// `busybox --list-full`: `bin/sh`, `usr/bin/awk`, …
fn busybox_applets(busybox: &Path) -> Vec<String> {
    duct::cmd!(busybox, "--list-full")
        .stderr_null()
        .read()
        .map(|s| {
            s.lines()
                .map(|l| l.trim().trim_start_matches('/').to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_executor_is_a_static_elf() {
        assert!(EXECUTOR.starts_with(b"\x7fELF"));
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("exe");
        std::fs::write(&p, EXECUTOR).unwrap();
        assert!(
            is_static_elf(&p),
            "the executor must not need a dynamic loader"
        );
    }

    #[test]
    fn the_archive_is_cached_by_content_and_lists_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("prog"), b"#!/bin/sh\necho hi\n").unwrap();
        let files = [GuestFile {
            host: "prog".into(),
            guest: "/opt/t/prog".into(),
        }];
        let first = build(&tmp.path().join("guest"), &files, tmp.path()).unwrap();
        assert!(!first.cached);
        let again = build(&tmp.path().join("guest"), &files, tmp.path()).unwrap();
        assert!(again.cached);
        assert_eq!(first.path, again.path);
        let listing = duct::cmd!("cpio", "-it", "--quiet")
            .stdin_path(&first.path)
            .read()
            .unwrap();
        for want in ["init", "dev/console", "etc/passwd", "opt/t", "opt/t/prog"] {
            assert!(
                listing.lines().any(|l| l == want),
                "{want} missing from\n{listing}"
            );
        }
        if first.busybox.is_some() {
            assert!(listing.lines().any(|l| l == "bin/sh"));
        }
    }
}
