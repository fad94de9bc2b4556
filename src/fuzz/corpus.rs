//! The corpus on disk: one program text per file, named by the hash of its text, written
//! atomically (temp file, fsync, rename, fsync of the directory) so that `kill -9` at any moment
//! loses no program that was announced as added.

pub mod export;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

pub fn name_of(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..10])
}

/// Writes `text` under `dir` durably; returns its path.
pub fn save(dir: &Path, text: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.syz", name_of(text)));
    if path.exists() {
        return Ok(path);
    }
    crate::fsutil::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Every `*.syz` file's text, sorted by name.
pub fn load_texts(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "syz"))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    out.sort();
    out
}

/// What a corpus program reached when it was added: `<name>.meta.json` beside `<name>.syz`,
/// for `kfuzz regress` to tell what a later kernel no longer reaches.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// The signal the program was added for (stable over three runs), sorted.
    pub signal: Vec<u32>,
    /// The PCs it covered on every triage run, as offsets into functions (empty when the
    /// kernel had no vmlinux to name them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cover: crate::kernel::symbols::Cover,
    /// The source file of each covered function, when vmlinux had debug info.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// The source lines it reached on every triage run, by file and function (DWARF; the
    /// functions it was inlined into included), when vmlinux had a line table. What `regress`
    /// compares: unlike offsets, lines survive a rebuild.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lines: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
    /// The tree's git commit when it was recorded, if the tree is a git checkout.
    pub commit: Option<String>,
    /// Unix seconds.
    pub recorded: u64,
}

/// `LineTable::reached_lines` as a `Meta::lines`.
pub fn lines_of(
    reached: crate::kernel::lines::LinesByFunction,
) -> BTreeMap<String, BTreeMap<String, Vec<u32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
    for (k, lines) in reached {
        out.entry(k.file)
            .or_default()
            .insert(k.function, lines.into_iter().collect());
    }
    out
}

pub fn meta_path(program: &Path) -> PathBuf {
    program.with_extension("meta.json")
}

/// Writes a program's metadata durably (after the program itself).
pub fn save_meta(program: &Path, meta: &Meta) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(&meta_path(program), &meta_bytes(meta)?)
}

/// A `.meta.json` file's bytes.
pub fn meta_bytes(meta: &Meta) -> anyhow::Result<Vec<u8>> {
    let text = serde_json::to_string(meta)?;
    Ok(format!("{text}\n").into_bytes())
}

pub fn load_meta(program: &Path) -> Option<Meta> {
    let text = std::fs::read_to_string(meta_path(program)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The smallest set (greedy set cover) of programs whose coverage together is the coverage of
/// all of them: each program is (its coverage keys, its size); returns the kept indices,
/// sorted. Among programs adding the same amount, the smaller one wins.
pub fn minimize_set(programs: &[(Vec<String>, usize)]) -> Vec<usize> {
    use std::collections::HashSet;
    let mut covered: HashSet<&str> = HashSet::new();
    let mut left: Vec<usize> = (0..programs.len()).collect();
    let mut kept = Vec::new();
    loop {
        let best = left
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                let new = programs[i]
                    .0
                    .iter()
                    .filter(|k| !covered.contains(k.as_str()))
                    .collect::<HashSet<_>>()
                    .len();
                (pos, i, new)
            })
            .filter(|&(_, _, new)| new > 0)
            .max_by(|a, b| {
                a.2.cmp(&b.2)
                    .then_with(|| programs[b.1].1.cmp(&programs[a.1].1))
                    .then_with(|| b.1.cmp(&a.1))
            });
        let Some((pos, i, _)) = best else { break };
        left.swap_remove(pos);
        covered.extend(programs[i].0.iter().map(String::as_str));
        kept.push(i);
    }
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn minimize_keeps_the_smallest_covering_set() {
        let programs = vec![
            (keys("a b"), 2),
            (keys("a b c d"), 4),
            (keys("c"), 1),
            (keys("e"), 3),
            (keys("e"), 1),
            (keys("a"), 1),
        ];
        // {a b c d} covers 0, 2 and 5; of the two programs giving only `e`, the smaller.
        assert_eq!(minimize_set(&programs), vec![1, 4]);
        assert!(minimize_set(&[]).is_empty());
        assert!(minimize_set(&[(Vec::new(), 1)]).is_empty());
    }

    #[test]
    fn save_is_idempotent_and_meta_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let a = save(dir.path(), "getpid()\n").unwrap();
        let b = save(dir.path(), "getpid()\n").unwrap();
        assert_eq!(a, b);
        let meta = Meta {
            signal: vec![1, 2],
            cover: [("do_shmat".to_string(), vec![4, 8])].into_iter().collect(),
            files: BTreeMap::new(),
            lines: BTreeMap::new(),
            commit: Some("abc".into()),
            recorded: 7,
        };
        save_meta(&a, &meta).unwrap();
        let back = load_meta(&a).unwrap();
        assert_eq!(back.cover, meta.cover);
        assert_eq!(back.signal, meta.signal);
        assert_eq!(
            load_texts(dir.path()).len(),
            1,
            "only .syz files are programs"
        );
    }
}
