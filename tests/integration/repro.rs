//! `kfuzz repro` with LKDTM on the real test kernel: a crash found by `kfuzz run` becomes a
//! minimized syz and C reproducer, and a culprit hidden behind innocent programs is found.

use crate::common;

use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

fn repro_result(out: &std::process::Output) -> serde_json::Value {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "repro")
        .unwrap_or_else(|| panic!("{}\n{}", stdout_of(out), stderr_of(out)))
}

#[test]
fn a_crash_found_by_run_is_reproduced_minimized_and_in_c() {
    let (_tmp, tree) = common::private_test_tree();
    let work = tree.join("work");
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "*lkdtm*",
            "--duration",
            "45s",
            "--workdir",
        ])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // A crash that is not a panic or a hang: one LKDTM write does it. A title naming an LKDTM
    // function first; other WARNINGs and BUGs may be the fallout of an earlier LKDTM write.
    let crashes: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(work.join("crashes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .map(|d| {
            let t = std::fs::read_to_string(d.join("description")).unwrap();
            (d, t)
        })
        .collect();
    let dir = crashes
        .iter()
        .find(|(_, t)| t.contains("lkdtm_"))
        .or_else(|| {
            crashes
                .iter()
                .find(|(_, t)| t.starts_with("WARNING") || t.starts_with("kernel BUG"))
        })
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| panic!("no LKDTM crash found:\n{}", stderr_of(&out)));
    let out = kfuzz()
        .args(["repro", "--message-format", "json"])
        .arg(&dir)
        .current_dir(&tree)
        .timeout(Duration::from_secs(1200))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = repro_result(&out);
    assert_eq!(r["reproduced"], true, "{r}");
    // Each step of the repro, shown with a failure below (and with --nocapture).
    let log = std::fs::read_to_string(dir.join("repro.log")).unwrap();
    println!("{log}");
    let res = &r["result"];
    assert!(res["calls_after"].as_u64().unwrap() <= 2, "{r}");
    assert!(res["calls_after"].as_u64() <= res["calls_before"].as_u64());
    assert_eq!(
        res["c_crashes"], true,
        "repro.c crashes with the same title: {r}"
    );
    let syz = std::fs::read_to_string(dir.join("repro.syz")).unwrap();
    assert!(syz.starts_with("# kfuzz repro options:"), "{syz}");
    assert!(syz.contains("write$lkdtm("), "{syz}");
    assert_eq!(
        syz.lines().filter(|l| !l.starts_with('#')).count() as u64,
        res["calls_after"].as_u64().unwrap()
    );
    let c = std::fs::read_to_string(dir.join("repro.c")).unwrap();
    assert!(c.contains("/sys/kernel/debug/provoke-crash/DIRECT"), "{c}");
    assert!(log.contains("confirmed"), "{log}");
    assert!(common::qemus_in(&tree).is_empty());
}

#[test]
fn a_culprit_behind_innocent_programs_is_found_by_bisection() {
    let (tmp, tree) = common::private_test_tree();
    // A real oops from the test kernel, with a log of programs in front of it: the culprit,
    // then more innocent programs than are tried one by one.
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reports/lkdtm-exception.log"
    ))
    .unwrap();
    let oops: String = fixture
        .lines()
        .skip_while(|l| !l.contains("lkdtm: Performing direct entry"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut log = String::from("[    5.000000][    T1] kfuzz-init: started\n");
    let mut id = 0;
    let mut marker = |log: &mut String| {
        id += 1;
        log.push_str(&format!(
            "[    6.{id:06}][   T40] kfuzz: executing program {id} on proc 0\n"
        ));
    };
    marker(&mut log);
    log.push_str(
        "r0 = openat$lkdtm(0xffffffffffffff9c, &(0x20000000)='/sys/kernel/debug/provoke-crash/DIRECT\\x00', 0x1, 0x0)\n\
         close(0xffffffffffffffff)\n\
         write$lkdtm(r0, &(0x20000040)='EXCEPTION\\x00', 0xa)\n",
    );
    for _ in 0..11 {
        marker(&mut log);
        log.push_str("pipe(&(0x20000000)={0xffffffffffffffff, 0xffffffffffffffff})\n");
    }
    log.push_str(&oops);
    let path = tmp.path().join("console.log");
    std::fs::write(&path, &log).unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = kfuzz()
        .args(["repro", "--message-format", "json", "-o"])
        .arg(&out_dir)
        .arg(&path)
        .current_dir(&tree)
        .timeout(Duration::from_secs(1200))
        .output()
        .unwrap();
    let r = repro_result(&out);
    assert_eq!(r["reproduced"], true, "{r}\n{}", stderr_of(&out));
    let steps = std::fs::read_to_string(out_dir.join("repro.log")).unwrap();
    assert!(steps.contains("bisect:"), "{steps}");
    // Each step says when it happened and how many attempts and VMs it had taken; after the
    // first boot, the attempts ran on VMs restored from its snapshot.
    let last = steps.lines().rev().find(|l| l.starts_with('[')).unwrap();
    assert!(last.contains("attempt "), "{steps}");
    let restored: u32 = last
        .split("VMs: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no VM count in {last:?}"));
    assert!(restored >= 1, "{steps}");
    let syz = std::fs::read_to_string(out_dir.join("repro.syz")).unwrap();
    let calls: Vec<&str> = syz.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(calls.len(), 2, "{syz}");
    assert!(
        calls[0].contains("openat$lkdtm") && calls[1].contains("EXCEPTION"),
        "{syz}"
    );
}
