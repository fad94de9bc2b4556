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

/// A manifest entry: a path (has a '/' or ends in `.config`, relative to the tree) or the name
/// of an embedded fragment.
pub fn resolve(entry: &str, tree_root: &Path) -> anyhow::Result<KconfigFragment> {
    if entry.contains('/') || entry.ends_with(".config") {
        let path = tree_root.join(entry);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config fragment {}", path.display()))?;
        return KconfigFragment::parse(entry, &text);
    }
    match embedded(entry) {
        Some(text) => KconfigFragment::parse(&format!("{entry}.config"), text),
        None => bail!(
            "unknown config fragment `{entry}` in kfuzz.toml: expected one of {} or a path to a \
             fragment file (containing '/' or ending in .config)",
            EMBEDDED
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| *n != "minimal")
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
    }
}
