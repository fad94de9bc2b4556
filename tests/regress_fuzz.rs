//! `kfuzz regress --fuzz` against a baseline: a crash fuzzing finds is tried on the baseline,
//! and one the baseline has too is reported, not failed. Every program of the fixture's call
//! warns through LKDTM, on the test kernel used as both builds.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{kfuzz, stderr_of};

#[test]
fn a_crash_fuzzing_finds_that_the_baseline_has_too_is_reported_and_passes() {
    let (tmp, tree) = common::private_test_tree();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regress-fuzz");
    let manifest = format!(
        "{}\n[fuzz]\ndescriptions = [{:?}]\n",
        common::TEST_KERNEL_MANIFEST,
        fixtures.display().to_string()
    );
    std::fs::write(tree.join("kfuzz.toml"), manifest).unwrap();
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/gen-1-shm.syz"),
        corpus.join("gen-1-shm.syz"),
    )
    .unwrap();
    let build = tree.join(".kfuzz/build");
    let json = tmp.path().join("r.json");
    let out = kfuzz()
        .args(["regress", "--kernel"])
        .arg(build.join("arch/x86/boot/bzImage"))
        .arg("--baseline-kernel")
        .arg(&build)
        .arg("--corpus")
        .arg(&corpus)
        .args(["--syscalls", "openat$lkdtm,write$lkdtm_warning"])
        .args(["--fuzz", "60s", "--no-reproduce", "--json"])
        .arg(&json)
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let found = r["fuzz"]["crashes"].as_array().unwrap();
    let warning = found
        .iter()
        .find(|c| c["title"] == "WARNING in lkdtm_WARNING")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(warning["verdict"], "on-baseline", "{warning:#}");
    assert_eq!(warning["baseline_title"], "WARNING in lkdtm_WARNING");
    assert!(
        warning["tried"].as_str().unwrap().starts_with("log"),
        "{warning:#}"
    );
    assert!(
        err.contains("found by fuzzing, already on the baseline: WARNING in lkdtm_WARNING"),
        "{err}"
    );
    assert_eq!(r["new_crashes"], 0);
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}
