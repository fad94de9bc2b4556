//! `kfuzz init`: the manifest and the work dir in a kernel tree. Never touches tracked files:
//! the only file outside `.kfuzz/` it may change is the repository's private `.git/info/exclude`.

use std::path::Path;

use anyhow::{bail, Context};

use crate::kernel::tree::KernelTree;
use crate::manifest;

#[derive(Debug)]
pub struct InitOutcome {
    /// `.kfuzz/` was added to `.git/info/exclude` (false: not a git checkout, or already there).
    pub excluded_in_git: bool,
}

pub fn init(tree: &KernelTree, force: bool) -> anyhow::Result<InitOutcome> {
    let manifest_path = tree.manifest_path();
    if manifest_path.exists() && !force {
        bail!(
            "{} is already initialised ({} exists); use `kfuzz init --force` to write a fresh manifest",
            tree.root.display(),
            manifest_path.display()
        );
    }
    let work = tree.work_dir();
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::fsutil::write_atomic(&manifest_path, manifest::template(cpus).as_bytes())?;
    let excluded_in_git = exclude_in_git(&tree.root)?;
    Ok(InitOutcome { excluded_in_git })
}

/// Adds `/.kfuzz/` (relative to the repository's work tree) to `.git/info/exclude`.
fn exclude_in_git(root: &Path) -> anyhow::Result<bool> {
    let Ok(repo) = git2::Repository::discover(root) else {
        return Ok(false);
    };
    let Some(workdir) = repo.workdir() else {
        return Ok(false);
    };
    let (Ok(workdir), Ok(root)) = (workdir.canonicalize(), root.canonicalize()) else {
        return Ok(false);
    };
    let Ok(rel) = root.strip_prefix(&workdir) else {
        return Ok(false);
    };
    let pattern = format!("/{}/", rel.join(".kfuzz").display()).replace("//", "/");
    let info = repo.path().join("info");
    std::fs::create_dir_all(&info).with_context(|| format!("cannot create {}", info.display()))?;
    let exclude = info.join("exclude");
    // The user's file: read as bytes (it need not be UTF-8), and only ever appended to, so that
    // nothing already in it can be lost.
    let current = match std::fs::read(&exclude) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", exclude.display())),
    };
    if String::from_utf8_lossy(&current)
        .lines()
        .any(|l| l.trim() == pattern)
    {
        return Ok(false);
    }
    let mut line = String::new();
    if !current.is_empty() && !current.ends_with(b"\n") {
        line.push('\n');
    }
    line.push_str(&pattern);
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&exclude)
        .with_context(|| format!("cannot open {}", exclude.display()))?;
    std::io::Write::write_all(&mut f, line.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", exclude.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exclude_file_is_only_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let exclude = dir.path().join(".git/info/exclude");
        std::fs::create_dir_all(exclude.parent().unwrap()).unwrap();
        // Not UTF-8, no final newline: still the user's, kept byte for byte.
        let mine = b"*.o\n# caf\xe9\n/build".to_vec();
        std::fs::write(&exclude, &mine).unwrap();
        assert!(exclude_in_git(dir.path()).unwrap());
        let after = std::fs::read(&exclude).unwrap();
        assert_eq!(&after[..mine.len()], &mine[..]);
        assert_eq!(&after[mine.len()..], b"\n/.kfuzz/\n");
        assert!(!exclude_in_git(dir.path()).unwrap(), "added once");
        assert_eq!(std::fs::read(&exclude).unwrap(), after);
    }
}
