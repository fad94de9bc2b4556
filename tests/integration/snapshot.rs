//! VM snapshots on the real test kernel: a VM that crashed is replaced by one restored from the
//! snapshot of a freshly booted VM, which marks its console and carries nothing of the crash;
//! a snapshot that cannot be restored leads to a boot, with a notice, and is made again.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

/// Creates a file at the guest's root and leaves it there.
const CREATE: &str = "openat(0xffffffffffffff9c, &(0x20000000)='/kfuzz-leak\\x00', 0x41, 0x1ff)\n";
/// Opens that file: 0 when it is there, ENOENT when not.
const CHECK: &str = "openat(0xffffffffffffff9c, &(0x20000000)='/kfuzz-leak\\x00', 0x0, 0x0)\n";
/// Creates the file, then crashes the kernel through LKDTM.
const CREATE_AND_CRASH: &str = "\
openat(0xffffffffffffff9c, &(0x20000000)='/kfuzz-leak\\x00', 0x41, 0x1ff)
r0 = openat$lkdtm(0xffffffffffffff9c, &(0x20000100)='/sys/kernel/debug/provoke-crash/DIRECT\\x00', 0x1, 0x0)
write$lkdtm(r0, &(0x20000200)='BUG\\x00', 0x4)
";

const RESTORED: &str = "kfuzz: vm0 restored from snapshot";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `kfuzz execprog` of `progs` in `tree`: its output, and the console log of its VM.
fn execprog(tree: &Path, progs: &[&Path]) -> (std::process::Output, String) {
    let out = kfuzz()
        .args([
            "execprog",
            "--syscalls",
            "openat,*lkdtm*",
            "--message-format",
            "json",
            "--workdir",
        ])
        .arg(tree.join("work"))
        .args(progs)
        .current_dir(tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let console =
        std::fs::read_to_string(tree.join(".kfuzz/execprog/vm0/console.log")).unwrap_or_default();
    (out, console)
}

/// The errno of the one call of each `executed` result, in order.
fn errnos(out: &std::process::Output) -> Vec<i64> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "executed")
        .map(|v| v["calls"][0]["errno"].as_i64().unwrap())
        .collect()
}

fn snapshot_files(tree: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tree.join(".kfuzz/snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "vmstate"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_crashed_vm_is_replaced_by_a_restored_one_with_nothing_of_the_crash_left() {
    let (tmp, tree) = common::private_test_tree();
    let create = write(tmp.path(), "create.syz", CREATE);
    let check = write(tmp.path(), "check.syz", CHECK);
    let crash = write(tmp.path(), "crash.syz", CREATE_AND_CRASH);

    // The first VM boots, and is saved as a snapshot before it runs anything. In it, the check
    // sees the file the first program made: it would see one left over.
    let (out, console) = execprog(&tree, &[&create, &check]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(errnos(&out), [0, 0], "{}", stdout_of(&out));
    assert!(console.contains("Linux version"), "booted: {console}");
    assert!(!console.contains(RESTORED), "{console}");
    assert_eq!(snapshot_files(&tree).len(), 1, "one snapshot saved");

    // A restored VM makes the file and crashes.
    let (out, console) = execprog(&tree, &[&crash]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("\"reason\":\"crash\""),
        "{}",
        stdout_of(&out)
    );
    assert!(console.contains(RESTORED), "{console}");
    assert!(
        console.contains("lkdtm: Performing direct entry BUG"),
        "{console}"
    );

    // The next VM is restored too: its console starts with the mark, the program runs on it,
    // and neither the crash nor the file it made is there.
    let (out, console) = execprog(&tree, &[&check]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(errnos(&out), [2], "ENOENT: {}", stdout_of(&out));
    // The kernel may print a line as it resumes (the clocksource watchdog, when the host was
    // busy): the first line of kfuzz's is the mark.
    let first = console
        .lines()
        .find(|l| l.contains("kfuzz"))
        .unwrap_or_default();
    assert!(
        first.contains(RESTORED),
        "first kfuzz line: {first:?}\n{console}"
    );
    let mark = console.find(RESTORED).unwrap();
    let ran = console
        .find("kfuzz: executing program 1 on proc 0")
        .unwrap();
    assert!(mark < ran, "{console}");
    for leak in ["Linux version", "lkdtm", "BUG", "Call Trace"] {
        assert!(!console.contains(leak), "{leak:?} in {console}");
    }
    assert!(!stderr_of(&out).contains("warning"), "{}", stderr_of(&out));
}

#[test]
fn a_broken_snapshot_falls_back_to_a_boot_with_a_notice_and_is_made_again() {
    let (tmp, tree) = common::private_test_tree();
    let check = write(tmp.path(), "check.syz", CHECK);
    let (out, _) = execprog(&tree, &[&check]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let snaps = snapshot_files(&tree);
    assert_eq!(snaps.len(), 1);
    let size = std::fs::metadata(&snaps[0]).unwrap().len();

    // Cut short, as a full disk or a crash of the machine might leave it.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&snaps[0])
        .unwrap();
    f.set_len(size / 2).unwrap();
    drop(f);
    let (out, console) = execprog(&tree, &[&check]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot restore the snapshot") && err.contains("booting instead"),
        "{err}"
    );
    assert_eq!(errnos(&out), [2], "the program ran: {}", stdout_of(&out));
    assert!(console.contains("Linux version"), "booted: {console}");
    // The boot made a whole snapshot again, and the next VM comes from it without a word.
    let snaps = snapshot_files(&tree);
    assert_eq!(snaps.len(), 1);
    assert!(std::fs::metadata(&snaps[0]).unwrap().len() > size / 2);
    let (out, console) = execprog(&tree, &[&check]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("warning"), "{}", stderr_of(&out));
    assert!(console.contains(RESTORED), "{console}");
    assert_eq!(errnos(&out), [2]);
}
