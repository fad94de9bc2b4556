//! `kfuzz execprog` on the real test kernel: per-call results, the executor's modes (a blocking
//! call interrupted, or left behind in threaded mode), coverage output, and a real crash.

use crate::common;

use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

/// The `executed` messages of a JSON run.
fn executed(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "executed")
        .collect()
}

/// msgrcv on an empty queue blocks until it is interrupted.
const BLOCKING: &str = "r0 = msgget$private(0x0, 0x180)
msgrcv(r0, &(0x20000000)=nil, 0x10, 0x0, 0x0)
msgctl$IPC_RMID(r0, 0x0)
";

#[test]
fn a_blocking_call_is_interrupted_or_left_behind_and_later_calls_still_run() {
    let (tmp, tree) = common::private_test_tree();
    let prog = tmp.path().join("block.syz");
    std::fs::write(&prog, BLOCKING).unwrap();
    let cover = tmp.path().join("cover.txt");

    // Calls one after the other: msgrcv returns EINTR when the per-call timer fires.
    let out = kfuzz()
        .args(["execprog", "--message-format", "json", "--cover"])
        .arg(&cover)
        .arg(&prog)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let runs = executed(&out);
    assert_eq!(runs.len(), 1, "{}", stdout_of(&out));
    let calls = runs[0]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["executed"], true);
    assert_eq!(calls[0]["errno"], 0);
    assert_eq!(calls[1]["errno"], 4, "EINTR: {}", runs[0]);
    assert_eq!(calls[2]["errno"], 0, "the queue was removed: {}", runs[0]);
    assert!(calls.iter().all(|c| c["cover"].as_u64().unwrap() > 0));
    let pcs: Vec<u64> = std::fs::read_to_string(&cover)
        .unwrap()
        .lines()
        .map(|l| u64::from_str_radix(l.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert!(pcs.len() > 100, "{} PCs", pcs.len());
    assert!(
        pcs.iter().all(|pc| *pc >= 0xffff_ffff_8000_0000),
        "kernel text addresses"
    );

    // Threaded, twice, with collide: msgrcv never finishes, the calls after it do.
    let out = kfuzz()
        .args([
            "execprog",
            "--message-format",
            "json",
            "--threaded",
            "--collide",
            "--repeat",
            "2",
            "--procs",
            "2",
        ])
        .arg(&prog)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let runs = executed(&out);
    assert_eq!(runs.len(), 2, "{}", stdout_of(&out));
    for run in &runs {
        let calls = run["calls"].as_array().unwrap();
        assert_eq!(calls[0]["executed"], true, "{run}");
        assert_eq!(calls[1]["executed"], false, "left behind: {run}");
        assert_eq!(calls[2]["executed"], true, "{run}");
        assert_eq!(calls[2]["errno"], 0, "{run}");
    }
}

#[test]
fn an_lkdtm_program_crashes_the_kernel_and_the_crash_is_saved() {
    let (tmp, tree) = common::private_test_tree();
    let work = tmp.path().join("work");
    let prog = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/programs/gen-9-lkdtm.syz"
    );
    let out = kfuzz()
        .args(["execprog", prog, "--workdir"])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    let crash = err
        .lines()
        .find(|l| l.trim_start().starts_with("Crash"))
        .unwrap_or_else(|| panic!("{err}"));
    // LKDTM's EXCEPTION is a NULL dereference in lkdtm_EXCEPTION.
    assert!(crash.contains("lkdtm_EXCEPTION"), "{crash}");
    let dirs: Vec<_> = std::fs::read_dir(work.join("crashes"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(dirs.len(), 1);
    let log = std::fs::read_to_string(dirs[0].path().join("log0")).unwrap();
    assert!(
        log.contains("write$lkdtm(r0,"),
        "the program is in the log:\n{log}"
    );
    // The saved report reads as decode_stacktrace.sh prints it: the test kernel has DWARF.
    let report = std::fs::read_to_string(dirs[0].path().join("report0")).unwrap();
    assert!(
        report.contains("lkdtm_EXCEPTION (drivers/misc/lkdtm/bugs.c:"),
        "the report's frames carry their source lines:\n{report}"
    );
    assert!(common::qemus_in(&tree).is_empty());
}

/// A program as syzkaller writes it today: pointers at its data address (0x200000000000),
/// and one at the older 0x7f0000000000, unchanged.
const SYZKALLER_ADDRESSES: &str =
    "pipe2(&(0x200000000000)={<r0=>0xffffffffffffffff, <r1=>0xffffffffffffffff}, 0x0)
write(r1, &(0x200000000040)='hello', 0x5)
writev(r1, &(0x7f0000000080)=[{&(0x7f0000000100)='abc', 0x3}], 0x1)
read(r0, &(0x200000001000)=\"\"/8, 0x8)
close(r0)
";

#[test]
fn a_syzkaller_program_at_its_own_data_addresses_runs_with_its_calls_succeeding() {
    let (tmp, tree) = common::private_test_tree();
    let prog = tmp.path().join("syz.syz");
    std::fs::write(&prog, SYZKALLER_ADDRESSES).unwrap();
    let out = kfuzz()
        .args(["execprog", "--message-format", "json"])
        .arg(&prog)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let runs = executed(&out);
    assert_eq!(runs.len(), 1, "{}", stdout_of(&out));
    let calls = runs[0]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 5);
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(c["executed"], true, "call {i}: {}", runs[0]);
        assert_eq!(c["errno"], 0, "call {i}: {}", runs[0]);
    }
    // Both writes went through: 5 + 3 bytes read back.
    assert_eq!(calls[3]["ret"], 8, "{}", runs[0]);

    // Its C program maps the same areas and compiles.
    let c = tmp.path().join("syz.c");
    let out = kfuzz()
        .args(["prog2c", "-o"])
        .arg(&c)
        .arg(&prog)
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let src = std::fs::read_to_string(&c).unwrap();
    assert!(
        src.contains("0x200000000000ul") && src.contains("0x7f0000000000ul"),
        "the data areas: {src}"
    );
    let ok = std::process::Command::new("gcc")
        .arg("-o")
        .arg(tmp.path().join("syz"))
        .arg(&c)
        .status()
        .unwrap()
        .success();
    assert!(ok, "gcc failed on {}", c.display());
}

/// Small fd numbers are what mutation draws; none of them may be the runner's own.
const SMALL_FDS: &str = "write(0x3, &(0x20000000)='x', 0x1)
write(0x4, &(0x20000000)='x', 0x1)
close(0x3)
close(0x4)
close(0x5)
close(0x6)
close(0x7)
close(0x8)
";

#[test]
fn programs_cannot_reach_the_runners_own_fds() {
    let (tmp, tree) = common::private_test_tree();
    let small = tmp.path().join("small-fds.syz");
    std::fs::write(&small, SMALL_FDS).unwrap();
    let after = tmp.path().join("after.syz");
    std::fs::write(&after, BLOCKING).unwrap();
    // The runner's pipes and KCOV handles once sat at 3..8: writing into the done pipe or
    // closing them broke the runner or its coverage. Now they are not there to hit, and the
    // next program runs on the same runner with its coverage.
    let out = kfuzz()
        .args(["execprog", "--message-format", "json"])
        .args([&small, &after])
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let runs = executed(&out);
    assert_eq!(runs.len(), 2, "{}", stdout_of(&out));
    for c in runs[0]["calls"].as_array().unwrap() {
        assert_eq!(c["errno"], 9, "EBADF: no fd there: {}", runs[0]);
    }
    let calls = runs[1]["calls"].as_array().unwrap();
    assert_eq!(calls[0]["errno"], 0, "{}", runs[1]);
    assert!(
        calls.iter().all(|c| c["cover"].as_u64().unwrap() > 0),
        "{}",
        runs[1]
    );
}
