//! The Kconfig fragments kfuzz ships, embedded in the binary so `kfuzz` works from any directory,
//! and the resolution of a manifest's fragment names to files or embedded text.

use std::path::Path;

use anyhow::{bail, Context};

use super::kconfig::KconfigFragment;

/// `(name, text)` of every fragment in `kconfig-fragments/`.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "minimal",
        include_str!("../../kconfig-fragments/minimal.config"),
    ),
    (
        "fuzz-base",
        include_str!("../../kconfig-fragments/fuzz-base.config"),
    ),
    (
        "qemu-guest",
        include_str!("../../kconfig-fragments/qemu-guest.config"),
    ),
    ("kcov", include_str!("../../kconfig-fragments/kcov.config")),
    (
        "kasan",
        include_str!("../../kconfig-fragments/kasan.config"),
    ),
    (
        "lockdep",
        include_str!("../../kconfig-fragments/lockdep.config"),
    ),
    (
        "debug",
        include_str!("../../kconfig-fragments/debug.config"),
    ),
];

pub fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Whether a manifest entry names a file (has a '/' or ends in `.config`) rather than one of the
/// embedded fragments.
pub fn is_path(entry: &str) -> bool {
    entry.contains('/') || entry.ends_with(".config")
}

/// The embedded fragments a manifest may name (`minimal` is the base, not offered).
pub fn known_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n).filter(|n| *n != "minimal")
}

/// Checks a manifest entry that is not a path: `Err` lists the known names and the nearest one.
pub fn check_name(entry: &str) -> Result<(), String> {
    if is_path(entry) || embedded(entry).is_some() {
        return Ok(());
    }
    Err(unknown_name(entry))
}

fn unknown_name(entry: &str) -> String {
    let known = known_names().collect::<Vec<_>>().join(", ");
    let hint = closest(entry).map_or(String::new(), |n| format!("; did you mean `{n}`?"));
    format!(
        "unknown config fragment `{entry}`: expected one of {known} or a path to a fragment file \
         (containing '/' or ending in .config){hint}"
    )
}

/// The known fragment nearest to `name` by edit distance, if close enough to be a typo.
fn closest(name: &str) -> Option<&'static str> {
    let limit = (name.len() / 3).clamp(1, 3);
    known_names()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Edit distance over bytes where swapping two neighbours costs one edit, like any other typo
/// (optimal string alignment), one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A manifest entry: a path (has a '/' or ends in `.config`, relative to the tree) or the name
/// of an embedded fragment.
pub fn resolve(entry: &str, tree_root: &Path) -> anyhow::Result<KconfigFragment> {
    if is_path(entry) {
        let path = tree_root.join(entry);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config fragment {}", path.display()))?;
        return KconfigFragment::parse(entry, &text);
    }
    match embedded(entry) {
        Some(text) => KconfigFragment::parse(&format!("{entry}.config"), text),
        None => bail!("kfuzz.toml: {}", unknown_name(entry)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_fragment_parses_and_asks_for_something() {
        for (name, text) in EMBEDDED {
            let f = KconfigFragment::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(!f.requests.is_empty(), "{name} is empty");
        }
    }

    #[test]
    fn the_issue_options_are_in_their_fragments() {
        let has = |frag: &str, sym: &str| {
            let f = resolve(frag, Path::new("/nonexistent")).unwrap();
            f.requests.iter().any(|r| r.symbol == sym && r.value == "y")
        };
        for sym in [
            "KCOV",
            "KCOV_INSTRUMENT_ALL",
            "KCOV_ENABLE_COMPARISONS",
            "DEBUG_FS",
        ] {
            assert!(has("kcov", sym), "{sym}");
        }
        for sym in ["KASAN", "KASAN_INLINE"] {
            assert!(has("kasan", sym), "{sym}");
        }
        for sym in ["PROVE_LOCKING", "PROVE_RCU", "DEBUG_ATOMIC_SLEEP"] {
            assert!(has("lockdep", sym), "{sym}");
        }
        for sym in ["KALLSYMS_ALL", "DEBUG_VM"] {
            assert!(has("debug", sym), "{sym}");
        }
        for sym in [
            "SYSVIPC",
            "VIRTIO_CONSOLE",
            "DEVTMPFS",
            "BLK_DEV_INITRD",
            "9P_FS",
        ] {
            assert!(has("qemu-guest", sym), "{sym}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = resolve("kcvo", Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("unknown config fragment `kcvo`"), "{err}");
        assert!(err.contains("kcov, kasan"), "{err}");
        assert!(err.ends_with("did you mean `kcov`?"), "{err}");
    }

    #[test]
    fn names_far_from_every_fragment_get_no_suggestion() {
        assert_eq!(check_name("kasan"), Ok(()));
        assert_eq!(check_name("my/own"), Ok(()));
        assert_eq!(check_name("extra.config"), Ok(()));
        let err = check_name("ubsan-everything").unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
        assert_eq!(
            check_name("lockdpe").unwrap_err().rsplit("; ").next(),
            Some("did you mean `lockdep`?")
        );
        assert_eq!(edit_distance("kcvo", "kcov"), 1);
        assert_eq!(edit_distance("kasan", "kcov"), 4);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
