//! `kfuzz syscalls` selections that select less than asked: typos in `--syscalls`, `--disable`
//! and kfuzz.toml's `syscalls`/`disable` (named with their line), empty selections, and globs
//! long enough to be slow or deep. One tree view, used under a lock, one manifest at a time.

use crate::common;

use std::path::PathBuf;

use common::{kfuzz, stderr_of};

/// A private view of the kernel tree kept in the test cache (its description constants are
/// worked out once), and the lock held while a test rewrites its kfuzz.toml.
fn view() -> (PathBuf, common::CacheLock) {
    let guard = common::lock("selection-errors");
    let tree = common::tree_view(&common::cache_dir().join("selection-errors"));
    (tree, guard)
}

fn syscalls(tree: &std::path::Path, manifest: &str, args: &[&str]) -> std::process::Output {
    std::fs::write(tree.join("kfuzz.toml"), manifest).expect("write kfuzz.toml");
    kfuzz()
        .arg("syscalls")
        .args(args)
        .current_dir(tree)
        .timeout(std::time::Duration::from_secs(20 * 60))
        .output()
        .expect("run kfuzz syscalls")
}

fn error_of(out: &std::process::Output) -> String {
    let err = stderr_of(out);
    assert!(!out.status.success(), "succeeded:\n{err}");
    err
}

#[test]
fn typos_on_the_command_line_fail_with_the_nearest_names() {
    let (tree, _lock) = view();
    let err = error_of(&syscalls(&tree, "", &["--syscalls", "shm*,msgsnnd"]));
    assert!(
        err.contains("error: `msgsnnd` matches no call; did you mean `msgsnd`?"),
        "{err}"
    );
    let err = error_of(&syscalls(&tree, "", &["--syscalls", "nosuchcall*"]));
    assert!(
        err.contains("error: `nosuchcall*` matches no call"),
        "{err}"
    );
    let err = error_of(&syscalls(
        &tree,
        "",
        &["--syscalls", "shm*", "--disable", "shmctl$IPC_RMDI"],
    ));
    assert!(
        err.contains(
            "error: --disable: `shmctl$IPC_RMDI` matches no call; did you mean `shmctl$IPC_RMID`?"
        ),
        "{err}"
    );
}

#[test]
fn typos_in_the_manifest_are_named_with_their_line() {
    let (tree, _lock) = view();
    let manifest = "[fuzz]\nsyscalls = [\"shm*\",\n  \"msgsnnd\"]\ndisable = [\"semopp\"]\n";
    let err = error_of(&syscalls(&tree, manifest, &[]));
    let root = tree.display();
    assert!(
        err.contains(&format!(
            "{root}/kfuzz.toml:3:3: [fuzz] syscalls: `msgsnnd` matches no call; did you mean \
             `msgsnd`?"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{root}/kfuzz.toml:4:12: [fuzz] disable: `semopp` matches no call; did you mean \
             `semop`?"
        )),
        "{err}"
    );
}

#[test]
fn an_empty_selection_is_an_error() {
    let (tree, _lock) = view();
    let err = error_of(&syscalls(
        &tree,
        "",
        &["--syscalls", "shm*", "--disable", "shm*"],
    ));
    assert!(
        err.contains("no call is selected: every call --syscalls selects is left out by --disable"),
        "{err}"
    );
    let err = error_of(&syscalls(&tree, "[fuzz]\nsyscalls = []\n", &[]));
    assert!(err.contains("[fuzz] syscalls lists no glob"), "{err}");
}

#[test]
fn long_globs_finish_at_once() {
    let (tree, _lock) = view();
    // Warm the description cache so that the timing is the selection's.
    let out = syscalls(&tree, "", &["--syscalls", "shmget"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let start = std::time::Instant::now();
    // Selects the calls ending in x (`sendmsg$unix`); done at once either way.
    let out = syscalls(&tree, "", &["--syscalls", "****************x"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let manifest = format!("[fuzz]\nsyscalls = [\"{}qq\"]\n", "*".repeat(1_000_000));
    let err = error_of(&syscalls(&tree, &manifest, &[]));
    assert!(
        err.contains("[fuzz] syscalls: `*qq` matches no call"),
        "{err}"
    );
    let manifest = format!("[fuzz]\nsyscalls = [\"{}\"]\n", "*".repeat(1_000_000));
    let out = syscalls(&tree, &manifest, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
