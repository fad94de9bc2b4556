//! Finding the kernel source tree kfuzz works in, and the paths kfuzz keeps inside it.
//! Never writes anything.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A Linux source tree: a top-level `Makefile` with `VERSION =` and `PATCHLEVEL =`, a `Kconfig`
/// and an `arch/` directory.
#[derive(Debug, Clone)]
pub struct KernelTree {
    pub root: PathBuf,
    /// `VERSION.PATCHLEVEL.SUBLEVEL` from the Makefile, e.g. `6.12.117`.
    pub version: String,
}

impl KernelTree {
    /// Walks up from `start` to the first directory that is a kernel tree.
    pub fn find(start: &Path) -> anyhow::Result<KernelTree> {
        let start = std::path::absolute(start)
            .with_context(|| format!("cannot resolve {}", start.display()))?;
        for dir in start.ancestors() {
            if let Some(tree) = KernelTree::at(dir) {
                return Ok(tree);
            }
        }
        bail!(
            "could not find a Linux kernel tree in {} or any parent directory\n\
             (looked for a top-level `Makefile` with `VERSION =` and `PATCHLEVEL =` lines, \
             a `Kconfig` file and an `arch/` directory; run kfuzz inside a kernel checkout)",
            start.display()
        )
    }

    /// `dir` itself, if it is a kernel tree.
    pub fn at(dir: &Path) -> Option<KernelTree> {
        if !dir.join("Kconfig").is_file() || !dir.join("arch").is_dir() {
            return None;
        }
        let makefile = std::fs::read_to_string(dir.join("Makefile")).ok()?;
        let var = |name: &str| {
            makefile.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let version = var("VERSION")?;
        let patchlevel = var("PATCHLEVEL")?;
        let mut full = format!("{version}.{patchlevel}");
        if let Some(sub) = var("SUBLEVEL").filter(|s| !s.is_empty()) {
            full = format!("{full}.{sub}");
        }
        Some(KernelTree {
            root: dir.to_path_buf(),
            version: full,
        })
    }

    /// `.kfuzz/`, kfuzz's work dir in the tree (like cargo's `target/`).
    pub fn work_dir(&self) -> PathBuf {
        self.root.join(".kfuzz")
    }

    /// Where `make O=…` builds.
    pub fn build_dir(&self) -> PathBuf {
        self.work_dir().join("build")
    }

    /// Holds `.kfuzz/lock` exclusively while alive, so that two kfuzz processes never run make
    /// in the same build dir at once (the second waits).
    pub fn lock(&self) -> anyhow::Result<WorkLock> {
        use std::os::fd::AsRawFd;
        let dir = self.work_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("lock");
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(WorkLock { _file: file })
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(crate::manifest::MANIFEST_NAME)
    }
}

/// See `KernelTree::lock`; released on drop (closing the file).
pub struct WorkLock {
    _file: std::fs::File,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("arch/x86")).unwrap();
        std::fs::write(dir.join("Kconfig"), "mainmenu \"x\"\n").unwrap();
        std::fs::write(
            dir.join("Makefile"),
            "# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\nEXTRAVERSION =\n",
        )
        .unwrap();
    }

    #[test]
    fn found_from_a_subdirectory() {
        let tmp = tempfile::tempdir().unwrap();
        fake_tree(tmp.path());
        let sub = tmp.path().join("mm/sub");
        std::fs::create_dir_all(&sub).unwrap();
        let tree = KernelTree::find(&sub).unwrap();
        assert_eq!(tree.root, tmp.path());
        assert_eq!(tree.version, "6.12.3");
    }

    #[test]
    fn outside_a_tree_the_error_says_what_was_looked_for() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("Makefile"), "all:\n").unwrap();
        let err = KernelTree::find(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("VERSION ="), "{err}");
        assert!(err.contains("Kconfig"), "{err}");
        assert!(err.contains("arch/"), "{err}");
    }
}
