//! `kfuzz build` on the real linux-source-6.12 tree.

use crate::common;

use common::{kfuzz, stderr_of, stdout_of, tree_view};

fn config_value(config: &str, symbol: &str) -> Option<String> {
    config.lines().find_map(|l| {
        l.strip_prefix(&format!("CONFIG_{symbol}="))
            .map(str::to_string)
    })
}

#[test]
fn config_only_on_the_defaults_has_kcov_kasan_and_lockdep() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tree_view(&tmp.path().join("linux"));
    let out = kfuzz().arg("init").current_dir(&tree).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = kfuzz()
        .args(["build", "--config-only"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("Verified"), "{}", stderr_of(&out));
    let config = std::fs::read_to_string(tree.join(".kfuzz/build/.config")).unwrap();
    for sym in [
        "KCOV",
        "KASAN",
        "PROVE_LOCKING",
        "64BIT",
        "SMP",
        "SYSVIPC",
        "DEBUG_FS",
    ] {
        assert_eq!(
            config_value(&config, sym).as_deref(),
            Some("y"),
            "CONFIG_{sym}"
        );
    }
    // Stable PCs for coverage: no KASLR (absent on the minimal base, which is not relocatable).
    assert_eq!(config_value(&config, "RANDOMIZE_BASE"), None);

    // Nothing changed: the config step is fresh and says so.
    let out = kfuzz()
        .args(["build", "--config-only", "--message-format", "json"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msg: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    assert_eq!(msg["reason"], "config-finished");
    assert_eq!(msg["fresh"], true);
}

#[test]
fn a_fragment_whose_dependency_is_off_fails_naming_symbol_and_dependency() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tree_view(&tmp.path().join("linux"));
    // KASAN cannot coexist with SLUB_TINY: olddefconfig drops it silently.
    std::fs::write(
        tree.join("tiny-slab.config"),
        "# the smallest slab allocator\nCONFIG_SLUB_TINY=y\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("kfuzz.toml"),
        "[kernel]\nbase = \"minimal\"\nfragments = [\"kcov\", \"kasan\", \"tiny-slab.config\"]\n",
    )
    .unwrap();
    let out = kfuzz()
        .args(["build", "--config-only"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("CONFIG_KASAN=y requested (kasan.config:"),
        "{err}"
    );
    assert!(err.contains("lib/Kconfig.kasan"), "{err}");
    assert!(err.contains("!SLUB_TINY"), "{err}");
    assert!(err.contains("SLUB_TINY=y"), "{err}");
}

#[test]
fn a_bad_manifest_is_reported_with_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tree_view(&tmp.path().join("linux"));
    std::fs::write(
        tree.join("kfuzz.toml"),
        "[kernel]\nbase = \"minimal\"\njobs = \"two\"\n",
    )
    .unwrap();
    let out = kfuzz().arg("build").current_dir(&tree).output().unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("kfuzz.toml:3:8: invalid type"), "{err}");
}

#[test]
fn a_small_kernel_builds_end_to_end_and_a_second_build_is_fresh() {
    let (tree, first) = common::build_test_kernel();
    let bzimage = std::path::PathBuf::from(first["bzimage"].as_str().unwrap());
    let vmlinux = std::path::PathBuf::from(first["vmlinux"].as_str().unwrap());
    assert!(bzimage.is_file() && vmlinux.is_file(), "{first}");
    assert!(
        first["release"].as_str().unwrap().starts_with("6.12"),
        "{first}"
    );
    let config = std::fs::read_to_string(first["config"].as_str().unwrap()).unwrap();
    for sym in ["KCOV", "KASAN", "LKDTM", "VIRTIO_CONSOLE"] {
        assert_eq!(
            config_value(&config, sym).as_deref(),
            Some("y"),
            "CONFIG_{sym}"
        );
    }
    // The second build has nothing to do.
    let out = kfuzz().arg("build").current_dir(&tree).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("Fresh"), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains(&format!("bzImage: {}", bzimage.display())));
}
