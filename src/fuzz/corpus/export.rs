//! An export folder shared with people (a regression corpus committed next to a subsystem): kfuzz
//! keeps there a list, `.kfuzz-export`, of the files it wrote with their sha256, and replaces or
//! removes only those, and only while they still hold what it wrote. It never touches any other
//! file, and never writes over a file that is not its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::fsutil;

/// The list's name in the export folder.
pub const LIST: &str = ".kfuzz-export";

const HEADER: &str =
    "# kfuzz export: the files kfuzz wrote in this folder and their sha256. kfuzz \
                      replaces or removes only these, and only while unchanged.\n";

/// What one export did to the folder (file names, relative to it).
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Written or rewritten.
    pub written: Vec<String>,
    /// Already there with the same bytes, kfuzz's own.
    pub unchanged: Vec<String>,
    /// kfuzz's, no longer in the set, removed.
    pub removed: Vec<String>,
    /// kfuzz's once, no longer in the set, but changed since: left, and no longer kfuzz's.
    pub left_changed: Vec<String>,
    /// Not kfuzz's, yet holding exactly what it would write: left as they are and not claimed
    /// (an export by a kfuzz that kept no list, or a copy by hand).
    pub foreign_same: Vec<String>,
}

/// Hex sha256 of `bytes`.
fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file name the list may hold: one plain name in the folder, never a path out of it.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != LIST
        && !name.contains('/')
        && !name.contains('\0')
}

/// The list: file name → the hashes it may hold and still be kfuzz's (two while a rewrite is
/// under way, so that a crash in between leaves it kfuzz's either way).
type Owned = BTreeMap<String, BTreeSet<String>>;

fn read_list(dir: &Path) -> anyhow::Result<Owned> {
    let path = dir.join(LIST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Owned::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut owned = Owned::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line.split_once("  ").and_then(|(hash, name)| {
            let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            (ok && plain_name(name)).then_some((hash, name))
        });
        let Some((hash, name)) = entry else {
            anyhow::bail!(
                "{}:{}: expected `<sha256>  <file name>`: is this kfuzz's export list? kfuzz \
                 will not manage a folder whose list it cannot read",
                path.display(),
                n + 1
            );
        };
        owned
            .entry(name.to_string())
            .or_default()
            .insert(hash.to_ascii_lowercase());
    }
    Ok(owned)
}

fn write_list(dir: &Path, owned: &Owned) -> anyhow::Result<()> {
    let path = dir.join(LIST);
    if owned.is_empty() {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        };
    }
    let mut text = HEADER.to_string();
    for (name, hashes) in owned {
        for hash in hashes {
            text.push_str(&format!("{hash}  {name}\n"));
        }
    }
    fsutil::write_atomic(&path, text.as_bytes())
}

/// What is at a name in the folder now.
enum Found {
    Nothing,
    /// A regular file and its sha256.
    File(String),
    /// A folder, a symbolic link, a device…: never kfuzz's.
    Other,
}

fn look(path: &Path) -> anyhow::Result<Found> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Nothing),
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", path.display())),
        Ok(m) if !m.file_type().is_file() => Ok(Found::Other),
        Ok(_) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Found::File(digest(&bytes)))
        }
    }
}

/// Makes `dir` hold `files` (name → bytes): writes them, and removes the files of earlier exports
/// that are no longer wanted. Fails, having changed nothing, when a wanted name is taken by a file
/// kfuzz did not write (or that was changed since it did).
pub fn sync(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Outcome> {
    if let Some(bad) = files.keys().find(|n| !plain_name(n)) {
        anyhow::bail!("cannot export a file named {bad:?}");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let owned = read_list(dir)?;
    let ours = |name: &str, hash: &str| owned.get(name).is_some_and(|h| h.contains(hash));

    let mut out = Outcome::default();
    let mut to_write: Vec<(&String, &Vec<u8>, String)> = Vec::new();
    let mut taken: Vec<PathBuf> = Vec::new();
    for (name, bytes) in files {
        let hash = digest(bytes);
        let path = dir.join(name);
        match look(&path)? {
            Found::Nothing => to_write.push((name, bytes, hash)),
            Found::File(now) if now == hash && ours(name, &now) => out.unchanged.push(name.clone()),
            Found::File(now) if now == hash => out.foreign_same.push(name.clone()),
            Found::File(now) if ours(name, &now) => to_write.push((name, bytes, hash)),
            Found::File(_) | Found::Other => taken.push(path),
        }
    }
    if !taken.is_empty() {
        anyhow::bail!(
            "{} file(s) in {} that kfuzz did not write (or that changed since it did) have the \
             names it would write: {}; kfuzz writes over no file but its own: move them away, \
             or export elsewhere",
            taken.len(),
            dir.display(),
            taken
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut stale: Vec<&String> = Vec::new();
    for name in owned.keys().filter(|n| !files.contains_key(*n)) {
        match look(&dir.join(name))? {
            Found::Nothing => {}
            Found::File(now) if ours(name, &now) => stale.push(name),
            Found::File(_) | Found::Other => out.left_changed.push(name.clone()),
        }
    }

    // The list first claims every file about to be written (old and new hash alike), so a
    // crash at any point below leaves nothing of kfuzz's unlisted and nothing listed that is not.
    let mut claimed: Owned = owned
        .iter()
        .filter(|(n, _)| !out.left_changed.contains(n) && !out.foreign_same.contains(n))
        .map(|(n, h)| (n.clone(), h.clone()))
        .collect();
    for (name, _, hash) in &to_write {
        claimed
            .entry((*name).clone())
            .or_default()
            .insert(hash.clone());
    }
    write_list(dir, &claimed)?;
    for (name, bytes, _) in &to_write {
        fsutil::write_atomic(&dir.join(name), bytes)?;
        out.written.push((*name).clone());
    }
    for name in stale {
        let path = dir.join(name);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        out.removed.push(name.clone());
    }
    fsutil::sync_dir(dir);
    let final_list: Owned = files
        .iter()
        .filter(|(n, _)| !out.foreign_same.contains(n))
        .map(|(n, b)| (n.clone(), BTreeSet::from([digest(b)])))
        .collect();
    write_list(dir, &final_list)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn removes_only_its_own_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("mine.syz"), "by hand\n").unwrap();
        let out = sync(d, &files(&[("a.syz", "a\n"), ("b.syz", "b\n")])).unwrap();
        assert_eq!(out.written, ["a.syz", "b.syz"]);
        // b is edited by its user; then neither a nor b is wanted any more.
        std::fs::write(d.join("b.syz"), "b, edited\n").unwrap();
        let out = sync(d, &files(&[("c.syz", "c\n")])).unwrap();
        assert_eq!(out.removed, ["a.syz"]);
        assert_eq!(out.left_changed, ["b.syz"]);
        assert!(!d.join("a.syz").exists());
        assert_eq!(
            std::fs::read_to_string(d.join("b.syz")).unwrap(),
            "b, edited\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("mine.syz")).unwrap(),
            "by hand\n"
        );
        // b is the user's now: a later export does not mention it again.
        let out = sync(d, &files(&[("c.syz", "c\n")])).unwrap();
        assert_eq!(out.unchanged, ["c.syz"]);
        assert!(out.left_changed.is_empty() && out.removed.is_empty());
    }

    #[test]
    fn writes_over_no_file_but_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.syz"), "the user's\n").unwrap();
        let err = sync(d, &files(&[("a.syz", "a\n"), ("b.syz", "b\n")])).unwrap_err();
        assert!(format!("{err:#}").contains("a.syz"), "{err:#}");
        assert!(
            !d.join("b.syz").exists(),
            "nothing is written when one name is taken"
        );
        assert!(!d.join(LIST).exists());
        // Same bytes as it would write: left alone and not claimed.
        std::fs::write(d.join("a.syz"), "a\n").unwrap();
        let out = sync(d, &files(&[("a.syz", "a\n")])).unwrap();
        assert_eq!(out.foreign_same, ["a.syz"]);
        let out = sync(d, &files(&[])).unwrap();
        assert!(out.removed.is_empty());
        assert!(d.join("a.syz").exists());
    }

    #[test]
    fn a_list_naming_paths_outside_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("export");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(dir.path().join("victim"), "x").unwrap();
        std::fs::write(d.join(LIST), format!("{}  ../victim\n", digest(b"x"))).unwrap();
        assert!(sync(&d, &files(&[])).is_err());
        assert!(dir.path().join("victim").exists());
    }
}
