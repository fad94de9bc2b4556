//! kfuzz.toml mistakes as every command that reads the manifest reports them: on a skeleton
//! kernel tree (a Makefile, a Kconfig and arch/), since each fails before touching the kernel.

use crate::common;

use std::path::Path;

use common::{kfuzz, stderr_of, stdout_of};

/// The least `kfuzz` takes for a kernel tree, with `manifest` as its kfuzz.toml.
fn skeleton(manifest: &[u8]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::write(
        root.join("Makefile"),
        "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n",
    )
    .expect("write Makefile");
    std::fs::write(root.join("Kconfig"), "mainmenu \"Linux\"\n").expect("write Kconfig");
    std::fs::create_dir(root.join("arch")).expect("create arch/");
    std::fs::write(root.join("kfuzz.toml"), manifest).expect("write kfuzz.toml");
    tmp
}

fn run(tree: &Path, args: &[&str]) -> std::process::Output {
    kfuzz()
        .args(args)
        .current_dir(tree)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run kfuzz")
}

/// Fails with exactly one `error:` line that contains `want`.
fn fails_with(out: &std::process::Output, want: &str) -> String {
    let err = stderr_of(out);
    assert!(
        !out.status.success(),
        "succeeded:\n{err}\n{}",
        stdout_of(out)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(want), "expected {want:?} in:\n{err}");
    err
}

#[test]
fn an_empty_manifest_works_with_the_defaults() {
    let tree = skeleton(b"");
    let out = run(tree.path(), &["crashes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(".kfuzz/work/crashes"),
        "the default work dir: {}",
        stderr_of(&out)
    );
}

#[test]
fn a_manifest_that_is_not_utf8_says_so_with_the_byte_offset() {
    let tree = skeleton(b"[kernel]\nbase = \"mini\xffmal\"\n");
    let out = run(tree.path(), &["crashes"]);
    let err = fails_with(
        &out,
        "kfuzz.toml:2:13: the file is not UTF-8: byte 21 (0xff) starts no UTF-8 character",
    );
    assert!(!err.contains("kfuzz init"), "{err}");
}

#[test]
fn dotted_keys_work_at_the_top_and_are_explained_under_a_table() {
    let tree = skeleton(b"vm.count = 0\n");
    fails_with(
        &run(tree.path(), &["crashes"]),
        "kfuzz.toml:1:12: vm.count must be at least 1",
    );
    let tree = skeleton(b"vm.count = 3\n[kernel]\nbase = \"minimal\"\n");
    let out = run(tree.path(), &["crashes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let tree = skeleton(b"[kernel]\nbase = \"minimal\"\nvm.count = 3\n");
    fails_with(
        &run(tree.path(), &["crashes"]),
        "`vm.count` under [kernel] is `kernel.vm.count`: write it in the [vm] table",
    );
}

#[test]
fn a_huge_number_is_out_of_range_on_its_line() {
    let tree = skeleton(b"[vm]\ncpus = 1\ncount = 99999999999999999999\n");
    fails_with(
        &run(tree.path(), &["crashes"]),
        "kfuzz.toml:3:9: `count = 99999999999999999999`: the number is out of range (expected a \
         whole number from 0 to 4294967295)",
    );
}

#[test]
fn a_million_star_glob_in_the_manifest_is_read_without_trouble() {
    let manifest = format!("[fuzz]\nsyscalls = [\"{}\"]\n", "*".repeat(1_000_000));
    let tree = skeleton(manifest.as_bytes());
    let out = run(tree.path(), &["crashes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn an_unknown_fragment_fails_every_command_that_reads_the_manifest() {
    let tree = skeleton(b"[kernel]\nfragments = [\"kcov\", \"kasna\"]\n");
    for args in [
        &["build"][..],
        &["build", "--config-only"],
        &["boot"],
        &["syscalls"],
        &["run", "--duration", "1s"],
        &["crashes"],
    ] {
        let err = fails_with(
            &run(tree.path(), args),
            "kfuzz.toml:2:22: unknown config fragment `kasna`: expected one of fuzz-base, \
             qemu-guest, kcov, kasan, lockdep, debug",
        );
        assert!(err.contains("did you mean `kasan`?"), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_base_or_fragment_file_names_the_path_and_the_root() {
    let tree = skeleton(b"[kernel]\nbase = \"configs/mine.config\"\n");
    let root = tree.path().display().to_string();
    for args in [&["build"][..], &["syscalls"], &["crashes"]] {
        let err = fails_with(
            &run(tree.path(), args),
            "kfuzz.toml:2:8: base `configs/mine.config` does not exist",
        );
        assert!(
            err.contains(&format!("{root}/configs/mine.config")),
            "{err}"
        );
        assert!(
            err.contains(&format!("relative to the tree root, {root}")),
            "{err}"
        );
    }
    let tree = skeleton(b"[kernel]\nfragments = [\"kcov\", \"ci/extra.config\"]\n");
    fails_with(
        &run(tree.path(), &["build"]),
        "kfuzz.toml:2:22: config fragment `ci/extra.config` does not exist",
    );
    std::fs::create_dir(tree.path().join("ci")).expect("mkdir ci");
    std::fs::write(tree.path().join("ci/extra.config"), "CONFIG_KCOV=y\n").expect("write");
    let out = run(tree.path(), &["crashes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}
