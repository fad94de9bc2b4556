//! `kfuzz boot` on the shared test kernel: real QEMU, real guest, real KCOV.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{build_test_kernel, kfuzz, stderr_of, stdout_of};

fn reports(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "vm-report")
        .map(|m| m["report"].clone())
        .collect()
}

#[test]
fn boot_prints_handshake_features_coverage_and_runs_uname() {
    let (tree, built) = build_test_kernel();
    let out = kfuzz()
        .args([
            "boot",
            "--vms",
            "1",
            "--message-format",
            "json",
            "--",
            "uname",
            "-r",
        ])
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = reports(&out);
    assert_eq!(r.len(), 1, "{}", stdout_of(&out));
    let release = built["release"].as_str().unwrap();
    assert_eq!(r[0]["handshake"]["release"], release);
    let f = &r[0]["handshake"]["features"];
    assert_eq!(f["kcov"], true, "{f}");
    assert_eq!(f["kasan"], true, "{f}");
    assert_eq!(f["lkdtm"], true, "{f}");
    let pcs = r[0]["probe"]["Ok"]["distinct_pcs"].as_u64().unwrap_or(0);
    assert!(pcs > 0, "the coverage probe saw no PCs: {}", r[0]["probe"]);
    assert_eq!(r[0]["command"]["status"], 0);
    assert_eq!(r[0]["command"]["stdout"].as_str().unwrap().trim(), release);
}

#[test]
fn two_vms_boot_in_parallel_and_report_human_output() {
    let (tree, _) = build_test_kernel();
    let out = kfuzz()
        .args(["boot", "--vms", "2", "--", "cat", "/proc/cmdline"])
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    for vm in ["vm0", "vm1"] {
        assert!(err.contains(&format!("Ready {vm}: linux 6.12")), "{err}");
        assert!(err.contains(&format!("Coverage {vm}: ")), "{err}");
        assert!(
            err.contains(&format!("Exited {vm}: exit status 0")),
            "{err}"
        );
    }
    assert_eq!(
        stdout_of(&out).matches("console=ttyS0").count(),
        2,
        "{}",
        stdout_of(&out)
    );
    for vm in ["vm0", "vm1"] {
        let log = std::fs::read_to_string(tree.join(format!(".kfuzz/{vm}/console.log"))).unwrap();
        assert!(log.contains("Linux version 6.12"), "{vm} console log");
    }
}

#[test]
fn a_kernel_that_panics_at_boot_is_reported_with_the_panic_line() {
    let (tree, _) = build_test_kernel();
    // No such init in the initramfs and no root device: the kernel panics.
    let out = kfuzz()
        .args([
            "boot",
            "--vms",
            "1",
            "--append",
            "rdinit=/does-not-exist root=/dev/nowhere",
        ])
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("QEMU exited"), "{err}");
    assert!(err.contains("Kernel panic - not syncing"), "{err}");
    assert!(err.contains("last console lines"), "{err}");
}

fn kill_mid_boot_leaves_no_qemu(signal: &str) {
    let (_tmp, view) = common::private_test_tree();
    let bin = assert_cmd::cargo::cargo_bin("kfuzz");
    let mut child = Command::new(bin)
        .args(["boot", "--vms", "2"])
        .current_dir(&view)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = view.join(".kfuzz");
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::qemus_in(&work).len() < 2 {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = common::qemus_in(&work);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let _ = Command::new("pkill")
                .args(["-9", "-f", &work.display().to_string()])
                .status();
            panic!("QEMU still running after kill {signal} of kfuzz: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_mid_boot_leaves_no_qemu() {
    kill_mid_boot_leaves_no_qemu("-INT");
}

#[test]
fn sigkill_mid_boot_leaves_no_qemu() {
    kill_mid_boot_leaves_no_qemu("-KILL");
}

#[test]
fn a_distribution_kernel_boots_over_the_serial_fallback_with_features_absent() {
    let kernel = common::debian_kernel();
    let tmp = tempfile::tempdir().unwrap();
    // Outside any kernel tree: --kernel alone is enough.
    let out = kfuzz()
        .args(["boot", "--message-format", "json", "--kernel"])
        .arg(&kernel)
        .args(["--", "uname", "-r"])
        .current_dir(tmp.path())
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = reports(&out);
    let release = r[0]["handshake"]["release"].as_str().unwrap();
    assert!(release.ends_with("-amd64"), "{release}");
    assert_eq!(r[0]["handshake"]["features"]["kcov"], false);
    assert!(
        r[0]["probe"]["Err"].as_str().unwrap().contains("no KCOV"),
        "{}",
        r[0]["probe"]
    );
    assert_eq!(r[0]["command"]["stdout"].as_str().unwrap().trim(), release);
}
