//! Calls the kernel lacks, on the real test kernel (tinyconfig-based: no CONFIG_ADVISE_SYSCALLS):
//! `kfuzz syscalls` names the option from the tree and the build's .config, and `kfuzz run`
//! finds the call missing in the guest, says why, and fuzzes the others.

use crate::common;

use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

#[test]
fn madvise_is_named_as_compiled_out_and_is_not_fuzzed() {
    let (_tmp, tree) = common::private_test_tree();
    let config = std::fs::read_to_string(tree.join(".kfuzz/build/.config")).expect(".config");
    assert!(
        config.contains("# CONFIG_ADVISE_SYSCALLS is not set"),
        "the test kernel has madvise now: this test needs a variant kernel without it"
    );

    let out = kfuzz()
        .args(["syscalls", "--syscalls", "madvise,mmap"])
        .current_dir(&tree)
        .timeout(Duration::from_secs(20 * 60))
        .output()
        .unwrap();
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("not in this kernel: madvise (CONFIG_ADVISE_SYSCALLS is not set)"),
        "{text}"
    );
    assert!(!text.contains("not in this kernel: mmap"), "{text}");

    let work = tree.join("work");
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "madvise,mmap",
            "--vms",
            "1",
            "--duration",
            "40s",
            "--workdir",
        ])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: madvise: not in this kernel (CONFIG_ADVISE_SYSCALLS is not set)"),
        "{err}"
    );
    assert!(!err.contains("warning: mmap"), "{err}");
    assert!(err.contains("calls on this kernel"), "{err}");
    // What was fuzzed after the check: no corpus program calls madvise.
    for e in std::fs::read_dir(work.join("corpus"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        assert!(
            !text.contains("madvise("),
            "{}:\n{text}",
            e.path().display()
        );
    }
}
