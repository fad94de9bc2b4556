//! `kfuzz init` on the real kernel tree.

use crate::common;

use common::{kfuzz, stderr_of, tree_view};

#[test]
fn init_outside_a_kernel_tree_says_what_it_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kfuzz()
        .arg("init")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("could not find a Linux kernel tree"), "{err}");
    assert!(err.contains("VERSION ="), "{err}");
    assert!(!tmp.path().join("kfuzz.toml").exists());
}

#[test]
fn init_in_a_git_checkout_writes_manifest_workdir_and_only_excludes_kfuzz() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tree_view(&tmp.path().join("linux"));
    git2::Repository::init(&tree).unwrap();
    let exclude = tree.join(".git/info/exclude");
    let before = std::fs::read_to_string(&exclude).unwrap_or_default();

    // From a subdirectory: the tree is found by walking up.
    let out = kfuzz()
        .arg("init")
        .current_dir(tree.join("mm"))
        .env("PWD", tree.join("mm"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let manifest = std::fs::read_to_string(tree.join("kfuzz.toml")).unwrap();
    assert!(manifest.contains("base = \"minimal\""), "{manifest}");
    assert!(manifest.contains("# "), "the manifest is commented");
    assert!(tree.join(".kfuzz").is_dir());
    let after = std::fs::read_to_string(&exclude).unwrap();
    assert_eq!(after.strip_prefix(before.as_str()).unwrap(), "/.kfuzz/\n");

    // Twice: refused without --force, and the manifest is kept.
    std::fs::write(tree.join("kfuzz.toml"), "[kernel]\nbase = \"defconfig\"\n").unwrap();
    let out = kfuzz().arg("init").current_dir(&tree).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("already initialised"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("kfuzz.toml")).unwrap(),
        "[kernel]\nbase = \"defconfig\"\n"
    );

    // --force rewrites it and does not add the exclude line twice.
    let out = kfuzz()
        .args(["init", "--force"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(std::fs::read_to_string(tree.join("kfuzz.toml"))
        .unwrap()
        .contains("minimal"));
    assert_eq!(std::fs::read_to_string(&exclude).unwrap(), after);
}

#[test]
fn init_outside_git_just_creates_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tree_view(&tmp.path().join("linux"));
    let out = kfuzz()
        .args(["init", "--message-format", "json"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msg: serde_json::Value =
        serde_json::from_str(common::stdout_of(&out).lines().next().unwrap()).unwrap();
    assert_eq!(msg["reason"], "init");
    assert!(
        msg["version"].as_str().unwrap().starts_with("6.12."),
        "{msg}"
    );
    assert_eq!(msg["git_excluded"], false);
    assert!(tree.join("kfuzz.toml").is_file());
    assert!(!tree.join(".git").exists());
}
