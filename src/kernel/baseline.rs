//! `kfuzz regress --baseline REF`: the tree as it is at another commit, checked out under
//! `.kfuzz/baseline/src` (files only: no index, branch or worktree entry is touched in the
//! user's repository) and built there like the tree itself.
//!
//! A later run against another commit rewrites only the files that differ, so make rebuilds
//! only what the change touches.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use git2::{Delta, ObjectType, Oid, Repository};

use super::tree::KernelTree;
use crate::shell::Shell;

/// The baseline tree for `rev` and its commit id, checked out (or brought up to date).
pub fn checkout(tree: &KernelTree, rev: &str, shell: &Shell) -> anyhow::Result<(KernelTree, Oid)> {
    let repo = Repository::discover(&tree.root).with_context(|| {
        format!(
            "--baseline needs a git checkout, and {} is not in a git repository",
            tree.root.display()
        )
    })?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{rev}` does not name a commit in {}", tree.root.display()))?;
    // The kernel may sit in a subdirectory of the repository.
    let workdir = repo
        .workdir()
        .context("the repository is bare")?
        .canonicalize()?;
    let rel = tree
        .root
        .canonicalize()?
        .strip_prefix(&workdir)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let base = tree.work_dir().join("baseline");
    let dir = base.join("src");
    let stamp = base.join("commit");
    let previous = std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|s| Oid::from_str(s.trim()).ok());
    let short = &commit.id().to_string()[..12];
    let subtree = |c: &git2::Commit<'_>| -> anyhow::Result<Oid> {
        let t = c.tree()?;
        if rel.as_os_str().is_empty() {
            return Ok(t.id());
        }
        let entry = t
            .get_path(&rel)
            .with_context(|| format!("{} is not in commit {}", rel.display(), c.id()))?;
        Ok(entry.id())
    };
    let new_tree = repo.find_tree(subtree(&commit)?)?;
    match previous {
        Some(id) if id == commit.id() && dir.is_dir() => {
            shell.verbose(
                "Baseline",
                format!("{rev} ({short}) is checked out already"),
            );
        }
        Some(id) if dir.is_dir() && repo.find_commit(id).is_ok() => {
            let old = repo.find_commit(id)?;
            let old_tree = repo.find_tree(subtree(&old)?)?;
            let diff = repo.diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)?;
            shell.status(
                "Baseline",
                format!(
                    "updating the checkout to {rev} ({short}): {} files differ",
                    diff.deltas().len()
                ),
            );
            // The stamp goes first: an interrupted update is redone from scratch.
            std::fs::remove_file(&stamp)?;
            for d in diff.deltas() {
                if let Some(p) = d.old_file().path() {
                    if matches!(d.status(), Delta::Deleted | Delta::Renamed) {
                        let _ = std::fs::remove_file(dir.join(p));
                    }
                }
                if d.status() != Delta::Deleted {
                    let f = d.new_file();
                    if let Some(p) = f.path() {
                        write_blob(&repo, &dir.join(p), f.id(), f.mode().into())?;
                    }
                }
            }
        }
        _ => {
            shell.status(
                "Baseline",
                format!("checking out {rev} ({short}) into {}", dir.display()),
            );
            let _ = std::fs::remove_file(&stamp);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
            let mut failed = None;
            new_tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
                if entry.kind() != Some(ObjectType::Blob) {
                    return git2::TreeWalkResult::Ok;
                }
                let name = entry.name().unwrap_or_default();
                let path = dir.join(parent).join(name);
                match write_blob(&repo, &path, entry.id(), entry.filemode()) {
                    Ok(()) => git2::TreeWalkResult::Ok,
                    Err(e) => {
                        failed = Some(e);
                        git2::TreeWalkResult::Abort
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
    crate::fsutil::write_atomic(&stamp, format!("{}\n", commit.id()).as_bytes())?;
    let base_tree = KernelTree::at(&dir).with_context(|| {
        format!(
            "{rev} ({short}) is not a kernel tree at {}",
            if rel.as_os_str().is_empty() {
                "the repository's top".to_string()
            } else {
                rel.display().to_string()
            }
        )
    })?;
    Ok((base_tree, commit.id()))
}

/// Writes one blob as a file (mode 0o100755: executable; 0o120000: a symlink).
fn write_blob(repo: &Repository, path: &PathBuf, id: Oid, mode: i32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if id.is_zero() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let blob = repo.find_blob(id)?;
    let _ = std::fs::remove_file(path);
    if mode == 0o120000 {
        let target = std::str::from_utf8(blob.content())
            .with_context(|| format!("symlink {} is not UTF-8", path.display()))?;
        std::os::unix::fs::symlink(target, path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        return Ok(());
    }
    if mode & 0o170000 == 0o160000 {
        bail!(
            "{} is a submodule, which kfuzz does not check out",
            path.display()
        );
    }
    std::fs::write(path, blob.content())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if mode == 0o100755 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{MessageFormat, Shell, Verbosity};

    fn commit_all(repo: &Repository, msg: &str) -> Oid {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn a_commit_is_checked_out_beside_the_tree_and_updated_file_by_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("linux");
        std::fs::create_dir_all(root.join("arch/x86")).unwrap();
        std::fs::create_dir_all(root.join("ipc")).unwrap();
        std::fs::write(
            root.join("Makefile"),
            "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n",
        )
        .unwrap();
        std::fs::write(root.join("Kconfig"), "# top\n").unwrap();
        std::fs::write(root.join("arch/x86/Kconfig"), "# x86\n").unwrap();
        std::fs::write(root.join("ipc/shm.c"), "int shm;\n").unwrap();
        std::fs::write(root.join("ipc/gone.c"), "int gone;\n").unwrap();
        let repo = Repository::init(&root).unwrap();
        let first = commit_all(&repo, "first");
        std::fs::write(root.join("ipc/shm.c"), "int shm_patched;\n").unwrap();
        std::fs::remove_file(root.join("ipc/gone.c")).unwrap();
        std::fs::write(root.join("ipc/new.c"), "int new;\n").unwrap();
        let second = commit_all(&repo, "second");
        let tree = KernelTree::at(&root).unwrap();
        let shell = Shell::new(Verbosity::Quiet, MessageFormat::Human);

        let (base, id) = checkout(&tree, "HEAD~1", &shell).unwrap();
        assert_eq!(id, first);
        assert_eq!(base.root, root.join(".kfuzz/baseline/src"));
        assert_eq!(base.version, "6.12.0");
        let read = |p: &str| std::fs::read_to_string(base.root.join(p)).ok();
        assert_eq!(read("ipc/shm.c").as_deref(), Some("int shm;\n"));
        assert_eq!(read("ipc/gone.c").as_deref(), Some("int gone;\n"));
        // The user's files and index are untouched.
        assert_eq!(
            std::fs::read_to_string(root.join("ipc/shm.c")).unwrap(),
            "int shm_patched;\n"
        );
        assert!(repo
            .statuses(None)
            .unwrap()
            .iter()
            .all(|s| s.path().is_some_and(|p| p.starts_with(".kfuzz"))));

        // Moving the baseline rewrites only what differs.
        let untouched = base.root.join("Kconfig");
        let before = std::fs::metadata(&untouched).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (base, id) = checkout(&tree, &second.to_string(), &shell).unwrap();
        assert_eq!(id, second);
        assert_eq!(read("ipc/shm.c").as_deref(), Some("int shm_patched;\n"));
        assert_eq!(read("ipc/gone.c"), None);
        assert_eq!(read("ipc/new.c").as_deref(), Some("int new;\n"));
        assert_eq!(
            std::fs::metadata(base.root.join("Kconfig"))
                .unwrap()
                .modified()
                .unwrap(),
            before
        );

        let err = checkout(&tree, "no-such-ref", &shell).unwrap_err();
        assert!(format!("{err:#}").contains("`no-such-ref` does not name a commit"));
        let plain = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(plain.path().join("arch")).unwrap();
        std::fs::write(plain.path().join("Kconfig"), "").unwrap();
        std::fs::write(
            plain.path().join("Makefile"),
            "VERSION = 6\nPATCHLEVEL = 1\n",
        )
        .unwrap();
        let t = KernelTree::at(plain.path()).unwrap();
        let err = checkout(&t, "HEAD", &shell).unwrap_err();
        assert!(
            format!("{err:#}").contains("needs a git checkout"),
            "{err:#}"
        );
    }
}
