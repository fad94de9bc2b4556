//! `kfuzz regress --fuzz` against a baseline: each crash fuzzing finds is tried on the baseline.
//! One the baseline has too is reported and passes; one only the patched build has fails (exit
//! 1). Every program of the fixture's LKDTM call warns on any build; the patched build also
//! warns in `ksys_shmctl`'s SHM_INFO path (titled "WARNING in shmctl"), which the baseline does
//! not.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{kfuzz, stderr_of};

/// `regress --kernel <patched> --baseline-kernel <the test kernel> --fuzz <fuzz>` with a corpus of
/// one shm program: (exit code, stderr, the JSON report).
fn regress_fuzz(
    patched: &Path,
    syscalls: &str,
    fuzz: &str,
) -> (Option<i32>, String, serde_json::Value, tempfile::TempDir) {
    let (tmp, tree) = common::tree_with_descriptions("regress-fuzz");
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/gen-1-shm.syz"),
        corpus.join("gen-1-shm.syz"),
    )
    .unwrap();
    let json = tmp.path().join("r.json");
    let out = kfuzz()
        .args(["regress", "--kernel"])
        .arg(patched)
        .arg("--baseline-kernel")
        .arg(tree.join(".kfuzz/build"))
        .arg("--corpus")
        .arg(&corpus)
        .args(["--syscalls", syscalls])
        .args(["--fuzz", fuzz, "--no-reproduce", "--json"])
        .arg(&json)
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    let report = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{json:?}: {e}\n{err}"));
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
    (out.status.code(), err, r, tmp)
}

fn found<'a>(r: &'a serde_json::Value, title: &str) -> &'a serde_json::Value {
    r["fuzz"]["crashes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == title)
        .unwrap_or_else(|| panic!("no {title:?} in {r:#}"))
}

#[test]
fn a_crash_fuzzing_finds_that_the_baseline_has_too_is_reported_and_passes() {
    let (tree, _) = common::build_test_kernel();
    let bzimage = tree.join(".kfuzz/build/arch/x86/boot/bzImage");
    let (code, err, r, _) = regress_fuzz(&bzimage, "openat$lkdtm,write$lkdtm_warning", "60s");
    assert_eq!(code, Some(0), "{err}");
    let warning = found(&r, "WARNING in lkdtm_WARNING");
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
}

#[test]
fn a_crash_only_the_patched_build_has_is_new_with_the_patch_and_fails() {
    let patched = common::patched_kernel(
        "shm-info-warn",
        "ipc/shm.c",
        &[(
            "\t\tif (err < 0)\n\t\t\treturn err;\n\t\tif (copy_to_user(buf, &shm_info, sizeof(shm_info)))",
            "\t\tif (err < 0)\n\t\t\treturn err;\n\t\tWARN_ON(1);\n\t\tif (copy_to_user(buf, &shm_info, sizeof(shm_info)))",
        )],
    );
    let (code, err, r, _) = regress_fuzz(
        &patched,
        "openat$lkdtm,write$lkdtm_warning,shmctl$SHM_INFO",
        "90s",
    );
    assert_eq!(code, Some(1), "{err}");
    let shm = found(&r, "WARNING in shmctl");
    assert_eq!(shm["verdict"], "new-with-patch", "{shm:#}");
    // The baseline does not warn in shmctl. (It may crash otherwise: a program of 15-30 calls
    // from these three often writes to LKDTM too, and then the baseline says so.)
    assert_ne!(shm["baseline_title"], "WARNING in shmctl", "{shm:#}");
    assert!(
        err.contains("found by fuzzing, new with this patch: WARNING in shmctl"),
        "{err}"
    );
    // The LKDTM warning is on both builds: reported, and not what fails the run.
    let warning = found(&r, "WARNING in lkdtm_WARNING");
    assert_eq!(warning["verdict"], "on-baseline", "{warning:#}");
    assert_eq!(r["new_crashes"], 1, "{r:#}");
}
