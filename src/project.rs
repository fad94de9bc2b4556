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
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(false);
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&pattern);
    text.push('\n');
    std::fs::write(&exclude, text)
        .with_context(|| format!("cannot write {}", exclude.display()))?;
    Ok(true)
}
