//! Where the tree defines each syscall: every `SYSCALL_DEFINEn(name, …)` (not the `COMPAT_`
//! ones) in the directories that hold syscalls, with the `#if CONFIG_…` conditions around it.
//! Reads the tree; writes nothing but its cache under `.kfuzz/target/`, keyed by the files'
//! paths, sizes and modification times.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::kbuild::{self, Cond};
use super::tree::KernelTree;

/// The directories that hold syscall definitions (x86-64 only).
const SYSCALL_DIRS: &[&str] = &[
    "kernel", "mm", "fs", "ipc", "net", "security", "block", "io_uring", "arch/x86",
];
/// Not part of an x86-64 kernel: user-mode Linux, the boot loader, build tools.
const SKIP_DIRS: &[&str] = &["arch/x86/um", "arch/x86/boot", "arch/x86/tools"];

/// One `SYSCALL_DEFINEn(name, …)` and the `#if` conditions around it, innermost first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    /// Relative to the tree root, `/`-separated.
    pub file: String,
    pub line: usize,
    pub conds: Vec<Cond>,
}

/// Every syscall definition of the tree, by the name given to `SYSCALL_DEFINEn`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyscallSources {
    defs: BTreeMap<String, Vec<Definition>>,
}

impl SyscallSources {
    /// Scans the tree's `.c` files, or reads the cache made by an earlier scan of the same files
    /// (same version, paths, sizes and modification times).
    pub fn load(tree: &KernelTree) -> anyhow::Result<SyscallSources> {
        let files = c_files(&tree.root);
        let mut h = Sha256::new();
        h.update(b"kfuzz-syscall-sources-v1\0");
        h.update(tree.version.as_bytes());
        for (rel, stamp) in &files {
            h.update(rel.as_bytes());
            h.update(stamp.to_le_bytes());
        }
        let key = hex::encode(&h.finalize()[..8]);
        let dir = tree.work_dir().join("target");
        let cache = dir.join(format!("syscall-sources-{key}.json"));
        if let Some(s) = std::fs::read(&cache)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return Ok(s);
        }
        let sources = SyscallSources::scan(&tree.root, files.iter().map(|(r, _)| r.as_str()))?;
        // A cache that cannot be written (a read-only tree) only costs the next scan.
        if std::fs::create_dir_all(&dir).is_ok() {
            if let Ok(old) = std::fs::read_dir(&dir) {
                for e in old.flatten() {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with("syscall-sources-")
                    {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            let _ = crate::fsutil::write_atomic(&cache, &serde_json::to_vec(&sources)?);
        }
        Ok(sources)
    }

    /// Reads `files` (relative to `root`) for definitions.
    fn scan<'a>(root: &Path, files: impl Iterator<Item = &'a str>) -> anyhow::Result<Self> {
        let mut defs: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
        for rel in files {
            let path = root.join(rel);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if !contains(&bytes, b"SYSCALL_DEFINE") {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            kbuild::walk_c_conditions(&text, |line, l, conds| {
                if let Some(name) = defined_name(l) {
                    defs.entry(name.to_string()).or_default().push(Definition {
                        file: rel.to_string(),
                        line,
                        conds,
                    });
                }
            });
        }
        Ok(SyscallSources { defs })
    }

    /// The definitions of `name` (as given to `SYSCALL_DEFINEn`).
    pub fn definitions(&self, name: &str) -> &[Definition] {
        self.defs.get(name).map_or(&[], Vec::as_slice)
    }

    /// Where `name` is defined (`mm/madvise.c:1493`).
    pub fn locations(&self, name: &str) -> Vec<String> {
        self.defs
            .get(name)
            .map(|d| d.iter().map(|d| format!("{}:{}", d.file, d.line)).collect())
            .unwrap_or_default()
    }
}

/// The `.c` files under `SYSCALL_DIRS` with a stamp of their size and modification time,
/// sorted. Unreadable entries are skipped.
fn c_files(root: &Path) -> Vec<(String, u128)> {
    let mut out = Vec::new();
    for d in SYSCALL_DIRS {
        let walk = walkdir::WalkDir::new(root.join(d))
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                !SKIP_DIRS.iter().any(|s| rel == Path::new(s))
            });
        for e in walk.flatten() {
            if !e.file_type().is_file() || e.path().extension().is_none_or(|x| x != "c") {
                continue;
            }
            let Ok(rel) = e.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            let stamp = e.metadata().ok().map_or(0, |m| {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                t ^ (u128::from(m.len()) << 64)
            });
            out.push((rel.to_string(), stamp));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `SYSCALL_DEFINE3(madvise, …` → `madvise`; not `COMPAT_SYSCALL_DEFINE…` nor `__SYSCALL_…`.
fn defined_name(line: &str) -> Option<&str> {
    if line.trim_start().starts_with('#') {
        return None;
    }
    for (i, _) in line.match_indices("SYSCALL_DEFINE") {
        let before = line[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &line[i + "SYSCALL_DEFINE".len()..];
        let Some(rest) = rest.strip_prefix(|c: char| ('0'..='6').contains(&c)) else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('(') else {
            continue;
        };
        let name = rest.split([',', ')']).next().unwrap_or("").trim();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_definitions_are_cached_by_the_files_stamps() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "Makefile", "VERSION = 6\nPATCHLEVEL = 12\n");
        write(tmp.path(), "Kconfig", "");
        write(
            tmp.path(),
            "mm/madvise.c",
            "SYSCALL_DEFINE3(madvise, unsigned long, start)\n",
        );
        std::fs::create_dir_all(tmp.path().join("arch/x86")).unwrap();
        let tree = KernelTree::at(tmp.path()).unwrap();
        let s = SyscallSources::load(&tree).unwrap();
        assert_eq!(s.locations("madvise"), ["mm/madvise.c:1"]);
        let cached: Vec<_> = std::fs::read_dir(tree.work_dir().join("target"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(cached.len(), 1, "{cached:?}");
        assert!(cached[0].starts_with("syscall-sources-"));
        // The cache is what is read next time (a file it does not know about stays unknown).
        let path = tree.work_dir().join("target").join(&cached[0]);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replace("\"madvise\"", "\"madvise2\"");
        std::fs::write(&path, text).unwrap();
        assert!(SyscallSources::load(&tree)
            .unwrap()
            .locations("madvise")
            .is_empty());
        // A changed source file is a new key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(
            &tree.root,
            "mm/madvise.c",
            "\nSYSCALL_DEFINE3(madvise, unsigned long, start)\n",
        );
        let s = SyscallSources::load(&tree).unwrap();
        assert_eq!(s.locations("madvise"), ["mm/madvise.c:2"]);
    }

    #[test]
    fn definition_lines() {
        assert_eq!(defined_name("SYSCALL_DEFINE0(getpid)"), Some("getpid"));
        assert_eq!(
            defined_name("SYSCALL_DEFINE3(madvise, unsigned long, s)"),
            Some("madvise")
        );
        assert_eq!(
            defined_name("COMPAT_SYSCALL_DEFINE3(madvise, int, x)"),
            None
        );
        assert_eq!(defined_name("#define SYSCALL_DEFINE1(name, ...)"), None);
        assert_eq!(defined_name("static long __SYSCALL_DEFINEx(x)"), None);
    }
}
