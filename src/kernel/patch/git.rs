//! A patch from the kernel checkout's git repository: the working tree (and index) against
//! `HEAD`, falling back to `HEAD`'s own change when the tree is clean, or one commit against its
//! first parent. Reads the repository only; never writes to it.
//!
//! Untracked files are not part of the working tree's patch (a build directory inside the tree
//! would be): `git add -N` a new file to include it.

use anyhow::Context;
use git2::{Diff, DiffFindOptions, DiffOptions, Repository};

use super::{FileBuilder, Patch};

pub(super) fn working_tree(tree: &std::path::Path) -> anyhow::Result<Patch> {
    let repo = open(tree)?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .context("the repository has no HEAD commit")?;
    let head_tree = head.tree()?;
    let mut opts = DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&head_tree), Some(&mut opts))
        .context("cannot diff the working tree against HEAD")?;
    if diff.deltas().len() > 0 {
        return collect(diff, "working tree against HEAD".into());
    }
    commit_patch(&repo, &head, format!("HEAD ({})", short(&head)))
}

/// The working tree (and index) against `rev`: everything changed since that commit.
pub(super) fn since(tree: &std::path::Path, rev: &str) -> anyhow::Result<Patch> {
    let repo = open(tree)?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{rev}` is not a commit of {}", tree.display()))?;
    let mut opts = DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&commit.tree()?), Some(&mut opts))
        .with_context(|| format!("cannot diff the working tree against {rev}"))?;
    collect(diff, format!("working tree against {}", short(&commit)))
}

pub(super) fn revision(tree: &std::path::Path, rev: &str) -> anyhow::Result<Patch> {
    let repo = open(tree)?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{rev}` is not a commit of {}", tree.display()))?;
    commit_patch(&repo, &commit, format!("{rev} ({})", short(&commit)))
}

fn open(tree: &std::path::Path) -> anyhow::Result<Repository> {
    Repository::discover(tree).with_context(|| {
        format!(
            "{} is not in a git repository: give the patch as a .diff file",
            tree.display()
        )
    })
}

fn short(c: &git2::Commit<'_>) -> String {
    let id = c.id().to_string();
    let summary = c.summary().unwrap_or("");
    format!("{} {summary}", &id[..12.min(id.len())])
}

/// A commit against its first parent (against nothing for a root commit).
fn commit_patch(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    origin: String,
) -> anyhow::Result<Patch> {
    let new_tree = commit.tree()?;
    let old_tree = match commit.parent(0) {
        Ok(p) => Some(p.tree()?),
        Err(_) => None,
    };
    let mut opts = DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo.diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))?;
    collect(diff, origin)
}

fn collect(mut diff: Diff<'_>, origin: String) -> anyhow::Result<Patch> {
    diff.find_similar(Some(DiffFindOptions::new().renames(true).copies(false)))?;
    let mut patch = Patch {
        origin,
        ..Patch::default()
    };
    for idx in 0..diff.deltas().len() {
        let Some(delta) = diff.get_delta(idx) else {
            continue;
        };
        let path = |f: git2::DiffFile<'_>| f.path().map(|p| p.to_string_lossy().into_owned());
        let (old, new) = match delta.status() {
            git2::Delta::Added | git2::Delta::Untracked => (None, path(delta.new_file())),
            git2::Delta::Deleted => (path(delta.old_file()), None),
            _ => (path(delta.old_file()), path(delta.new_file())),
        };
        let mut b = FileBuilder::new(old, new);
        b.renamed = matches!(delta.status(), git2::Delta::Renamed | git2::Delta::Copied);
        // Loads one file's hunks at a time.
        let p = git2::Patch::from_diff(&diff, idx)?;
        match p {
            Some(p) if !p.delta().flags().is_binary() => {
                for h in 0..p.num_hunks() {
                    let (hunk, n) = p.hunk(h)?;
                    b.hunk(
                        hunk.old_start(),
                        hunk.old_lines(),
                        hunk.new_start(),
                        hunk.new_lines(),
                    );
                    for l in 0..n {
                        let line = p.line_in_hunk(h, l)?;
                        match line.origin() {
                            '+' => b.added(line.content()),
                            '-' => b.removed(line.content()),
                            ' ' => b.context(line.content()),
                            _ => {} // end-of-file newline markers
                        }
                    }
                }
            }
            _ => b.binary = true,
        }
        b.finish(&mut patch);
    }
    Ok(patch)
}
