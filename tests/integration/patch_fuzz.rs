//! `kfuzz run --patch` on the test kernel: a patch of two lines of ipc/shm.c, one in `newseg`
//! (every shmget that creates a segment runs it) and one in `shm_destroy_orphaned` (run only from
//! a sysctl, which no shm* call reaches). The run follows them line by line: the first is
//! reported reached, the second listed as never reached.

use crate::common;

use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

const FOCUS: &str = "tests/fixtures/patches/shm-focus.diff";

#[test]
fn run_patch_reports_the_changed_function_reached_and_lists_the_one_never_reached() {
    let (_tmp, tree) = common::private_test_tree();
    // kfuzz.toml's work dir: what `syscalls --files` learns from.
    let work = tree.join(".kfuzz/work");
    let out = kfuzz()
        .args(["run", "--syscalls", "shm*", "--vms", "1", "--procs", "1"])
        .args(["--duration", "60s", "--message-format", "json", "--patch"])
        .arg(std::path::absolute(FOCUS).unwrap())
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(common::qemus_in(&tree).is_empty());

    let messages: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    // Located before fuzzing: two changed lines with code, in two functions.
    let located = messages
        .iter()
        .find(|m| m["reason"] == "patch-located")
        .unwrap_or_else(|| panic!("no patch-located message: {stdout}"));
    assert_eq!(located["lines_with_code"], 2, "{located}");
    assert_eq!(located["functions"], 2, "{located}");
    let summary = common::run_summary(&out);
    let patch = &summary["patch"];
    assert_eq!(patch["lines_total"], 2, "{patch}");
    let function = |name: &str| {
        patch["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == name)
            .unwrap_or_else(|| panic!("{name} in {patch}"))
            .clone()
    };
    let newseg = function("newseg");
    assert_eq!(newseg["file"], "ipc/shm.c");
    assert_eq!(newseg["lines_reached"], 1, "{patch}");
    let orphaned = function("shm_destroy_orphaned");
    assert_eq!(orphaned["lines_reached"], 0, "{patch}");
    assert_eq!(orphaned["unreached_lines"], serde_json::json!([436]));
    assert_eq!(
        patch["summary"], "1/2 functions, 1/2 lines reached",
        "{patch}"
    );
    assert!(patch["first_reach_secs"].as_f64().is_some(), "{patch}");

    // The first reach was told as it happened, and the status line carried the figures.
    let reached: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| m["reason"] == "patch-line-reached")
        .collect();
    assert!(
        reached
            .iter()
            .any(|m| m["line"]["line"] == 714 && m["line"]["file"] == "ipc/shm.c"),
        "{reached:?}"
    );

    // The corpus programs that reached newseg are in the changed-function area, which
    // mutation favours: at least one program made it into the corpus through it.
    let corpus = std::fs::read_dir(work.join("corpus")).unwrap().count();
    assert!(corpus > 0);

    // Which calls reach ipc/shm.c, and a MAINTAINERS entry's files, from what the corpus
    // recorded.
    let out = kfuzz()
        .args([
            "syscalls",
            "--files",
            "ipc/shm.c",
            "--message-format",
            "json",
        ])
        .current_dir(&tree)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reaching: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "call-reaches")
        .collect();
    let shmget = reaching
        .iter()
        .find(|m| m["name"].as_str().is_some_and(|n| n.starts_with("shmget")))
        .unwrap_or_else(|| panic!("shmget reaches ipc/shm.c: {reaching:?}"));
    assert_eq!(shmget["files"][0]["file"], "ipc/shm.c");
    assert!(
        shmget["files"][0]["lines"].as_u64().unwrap() > 5,
        "{shmget}"
    );
    // Creating a segment makes a shmem file: the tmpfs maintainers' mm/shmem.c.
    let out = kfuzz()
        .args(["syscalls", "--subsystem", "tmpfs"])
        .current_dir(&tree)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("shmget") && l.contains("mm/shmem.c (")),
        "{text}"
    );

    // Again, as a user reads it and with no --syscalls: the calls are chosen for the patch
    // from what the corpus recorded, the corpus is re-triaged (the programs recorded reaching
    // newseg first) and the summary says what was never reached.
    let out = kfuzz()
        .args(["run", "--vms", "1", "--procs", "1"])
        .args(["--duration", "30s", "--patch"])
        .arg(std::path::absolute(FOCUS).unwrap())
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("2 with code in 2 functions"), "{stderr}");
    assert!(
        stderr.contains("chosen for the patch: their recorded coverage reaches ipc/shm.c"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Reached ipc/shm.c:714 (newseg)"),
        "{stderr}"
    );
    assert!(stderr.contains("patch: 1/2 functions"), "{stderr}");
    assert!(
        stdout.contains("patch:   1/2 functions, 1/2 lines reached"),
        "{stdout}"
    );
    assert!(
        stdout.contains("never reached: shm_destroy_orphaned (ipc/shm.c:436)"),
        "{stdout}"
    );
    assert!(common::qemus_in(&tree).is_empty());
}

/// A patch that is not a diff: a clear error naming the file and line, before any VM.
#[test]
fn run_patch_with_a_broken_diff_is_an_error_naming_it() {
    let (tmp, tree) = common::private_test_tree();
    let bad = tmp.path().join("bad.diff");
    std::fs::write(
        &bad,
        "--- a/ipc/shm.c\n+++ b/ipc/shm.c\n@@ -1,2 +1,2 @@\n-x\n+y\n",
    )
    .unwrap();
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "shmget",
            "--duration",
            "10s",
            "--patch",
        ])
        .arg(&bad)
        .current_dir(&tree)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("bad.diff"), "{err}");
    assert!(
        !tree.join(".kfuzz/vm0").exists(),
        "no VM was started: {err}"
    );
}
