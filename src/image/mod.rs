//! The guest disk images kfuzz keeps in its cache (`$KFUZZ_CACHE_DIR/images`, by default
//! `~/.cache/kfuzz/images/`): where they live, what is there, and how to get one (`fetch`). An
//! image, once placed, is never written again: VMs boot it through an overlay of their own.
//!
//! Layout of the folder:
//! - `NAME.raw`: a finished image, raw (what the VMs boot);
//! - `NAME.json`: where it came from (`Origin`), written after the image is placed;
//! - `.NAME.*.part`: a download in progress, kept when interrupted so the next fetch resumes;
//! - `.NAME.lock`: held while one kfuzz works on `NAME`.

pub mod apt_sources;
pub mod bootstrap;
pub mod build;
pub mod fetch;
pub mod resolve;

pub use resolve::resolve;

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The folder of cached images.
pub fn cache_dir() -> PathBuf {
    crate::host::cache_dir().join("images")
}

/// The extension of every finished image in the cache.
pub const IMAGE_EXT: &str = "raw";

/// Where a cached image came from, kept beside it as `NAME.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The URL the image was downloaded from.
    pub url: String,
    /// The checksum the publisher gave for that download (of the file as downloaded, before any
    /// conversion to raw).
    pub checksum: fetch::Checksum,
    /// `raw`, or `qcow2` when kfuzz converted it.
    pub format: String,
}

/// One image in the cache.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// The name commands take (`debian-12-nocloud-amd64`).
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<std::time::SystemTime>,
    /// Where it came from, when it was fetched (a build writes no origin).
    pub origin: Option<Origin>,
}

/// The path of the image called `name` in `dir`, whether or not it exists.
pub fn image_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{IMAGE_EXT}"))
}

/// The path of the origin record of `name` in `dir`.
pub fn origin_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// The origin record of `name`, if there is a readable one.
pub fn read_origin(dir: &Path, name: &str) -> Option<Origin> {
    let text = std::fs::read_to_string(origin_path(dir, name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A name usable as a file name in the cache: letters, digits, `.`, `_`, `-`, not starting with
/// a dot.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    anyhow::ensure!(
        ok,
        "'{name}' cannot name a cached image: use letters, digits, '.', '_' and '-', not a leading '.'"
    );
    Ok(())
}

/// The finished images in `dir`, by name. A missing folder is an empty cache; downloads in
/// progress and other hidden files are not images.
pub fn list(dir: &Path) -> anyhow::Result<Vec<CachedImage>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut images = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(name) = file.strip_suffix(&format!(".{IMAGE_EXT}")) else {
            continue;
        };
        if name.is_empty() || name.starts_with('.') {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        images.push(CachedImage {
            name: name.to_string(),
            size: meta.len(),
            modified: meta.modified().ok(),
            origin: read_origin(dir, name),
            path,
        });
    }
    images.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(images)
}

/// The cached image called `name`, if there is one.
pub fn find(dir: &Path, name: &str) -> anyhow::Result<Option<CachedImage>> {
    Ok(list(dir)?.into_iter().find(|i| i.name == name))
}

/// An exclusive hold on one name in the cache (`.NAME.lock`, flock), so that two kfuzz processes
/// never write the same image or download at once. Released when dropped.
#[derive(Debug)]
pub struct NameLock {
    _file: std::fs::File,
}

impl NameLock {
    /// Takes the lock, or fails at once naming the other user.
    pub fn take(dir: &Path, name: &str) -> anyhow::Result<NameLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: a valid open file descriptor for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                anyhow::bail!(
                    "another kfuzz is working on the image '{name}' (it holds {}); wait for it to finish",
                    path.display()
                );
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        Ok(NameLock { _file: file })
    }
}

/// Removes the cached image `name` and what kfuzz keeps beside it (its origin or build record,
/// downloads in progress), under the name's lock so that no build or fetch of it is under way.
/// Returns the files removed; an unknown name is an error that lists the cached ones.
pub fn remove(dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    if find(dir, name)?.is_none() {
        let names: Vec<String> = list(dir)?.into_iter().map(|i| i.name).collect();
        anyhow::bail!(
            "no image '{name}' in {} (cached: {})",
            dir.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let _lock = NameLock::take(dir, name)?;
    let mut removed = Vec::new();
    let image = image_path(dir, name);
    std::fs::remove_file(&image).with_context(|| format!("cannot remove {}", image.display()))?;
    removed.push(image);
    let part = format!(".{name}.");
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let beside = file == format!("{name}.json")
            || file == format!("{name}.build.json")
            || (file.starts_with(&part) && file.ends_with(".part"));
        if beside && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    crate::fsutil::sync_dir(dir);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shows_finished_images_only_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.raw"), b"abcd").unwrap();
        std::fs::write(dir.path().join("b.raw"), b"ab").unwrap();
        std::fs::write(dir.path().join(".b.raw.part"), b"a").unwrap();
        std::fs::write(dir.path().join(".c.qcow2.part"), b"a").unwrap();
        std::fs::write(dir.path().join(".c.lock"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let origin = Origin {
            url: "http://example.invalid/b.raw".into(),
            checksum: fetch::Checksum::parse_hex(&"ab".repeat(32)).unwrap(),
            format: "raw".into(),
        };
        std::fs::write(
            origin_path(dir.path(), "b"),
            serde_json::to_string(&origin).unwrap(),
        )
        .unwrap();
        let got = list(dir.path()).unwrap();
        let names: Vec<_> = got.iter().map(|i| (i.name.as_str(), i.size)).collect();
        assert_eq!(names, [("a", 4), ("b", 2)]);
        assert_eq!(got[0].origin, None);
        assert_eq!(got[1].origin.as_ref(), Some(&origin));
        assert!(find(dir.path(), "b").unwrap().is_some());
        assert!(find(dir.path(), "c").unwrap().is_none());
    }

    #[test]
    fn a_missing_cache_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("images")).unwrap().is_empty());
    }

    #[test]
    fn names_are_file_names_of_the_cache() {
        assert!(check_name("debian-12-nocloud-amd64").is_ok());
        assert!(check_name("a_b.c").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = NameLock::take(dir.path(), "x").unwrap();
        let err = NameLock::take(dir.path(), "x").unwrap_err().to_string();
        assert!(err.contains("another kfuzz"), "{err}");
        assert!(NameLock::take(dir.path(), "y").is_ok());
        drop(held);
        assert!(NameLock::take(dir.path(), "x").is_ok());
    }
}
