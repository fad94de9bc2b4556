//! `kfuzz regress` after a patch: functions the patch changed are compared apart, by source
//! line, and only unchanged code counts against the lost-coverage threshold. The patched
//! kernel is the test kernel with ipc/shm.c changed (`common::patched_kernel`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{kfuzz, stderr_of};

/// The patch, as an edit of the test kernel's ipc/shm.c: `shmctl(SHM_INFO)` now fails early in
/// `ksys_shmctl`. That moves the rest of `ksys_shmctl` (every shmctl command's path) and cuts
/// the path through `shmctl_shm_info` and `shm_get_stat`, which it does not change.
const CUT: (&str, &str) = (
    "\tif (cmd < 0 || shmid < 0)\n\t\treturn -EINVAL;\n\n\tns = current->nsproxy->ipc_ns;\n",
    "\tif (cmd < 0 || shmid < 0)\n\t\treturn -EINVAL;\n\t/* SHM_INFO is gone */\n\tif (cmd == SHM_INFO)\n\t\treturn -EINVAL;\n\n\tns = current->nsproxy->ipc_ns;\n",
);

/// The patch as a unified diff (`diff -u`), written into `dir`.
fn cut_diff(tree: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(tree.join("ipc/shm.c")).unwrap();
    for (side, t) in [("a", text.clone()), ("b", text.replacen(CUT.0, CUT.1, 1))] {
        let f = dir.join(side).join("ipc/shm.c");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, t).unwrap();
    }
    let out = std::process::Command::new("diff")
        .args(["-u", "a/ipc/shm.c", "b/ipc/shm.c"])
        .current_dir(dir)
        .output()
        .expect("run diff");
    assert_eq!(out.status.code(), Some(1), "diff found the change");
    let path = dir.join("cut.diff");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn regress(tree: &Path, kernel: &Path, corpus: &Path, json: &Path, patch: Option<&Path>) -> Output {
    let mut cmd = kfuzz();
    cmd.args(["regress", "--kernel"])
        .arg(kernel)
        .arg("--corpus")
        .arg(corpus)
        .arg("--json")
        .arg(json)
        .arg("--junit")
        .arg(json.with_extension("xml"));
    if let Some(p) = patch {
        cmd.arg("--patch").arg(p);
    }
    cmd.current_dir(tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A corpus recorded on shmget and shmctl(IPC_STAT), then on shmctl(SHM_INFO) too, split in
/// two: the programs without SHM_INFO replay on the patched kernel with exit 0 (their
/// ksys_shmctl moved: a changed function, compared apart), those with it exit 2 naming what
/// was cut.
#[test]
fn a_patch_moving_code_passes_and_a_patch_cutting_a_path_fails_naming_it() {
    let (tmp, tree) = common::private_test_tree();
    let cut = common::patched_kernel("shm-info-cut", "ipc/shm.c", &[CUT]);
    let diff = cut_diff(&tree, tmp.path());
    let work = tmp.path().join("work");
    // First without SHM_INFO, so that the corpus surely holds programs calling shmctl without
    // it (a run on all three need not leave one: its long mutants may keep a SHM_INFO call),
    // then with it. Each run records the lines of the programs it adds.
    for (calls, secs) in [
        ("shmget,shmctl$IPC_STAT", "30s"),
        ("shmget,shmctl$IPC_STAT,shmctl$SHM_INFO", "45s"),
    ] {
        let out = kfuzz()
            .args(["run", "--syscalls", calls])
            .args([
                "--vms",
                "1",
                "--procs",
                "1",
                "--duration",
                secs,
                "--workdir",
            ])
            .arg(&work)
            .current_dir(&tree)
            .timeout(Duration::from_secs(900))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }

    // Split the corpus by SHM_INFO; every program is recorded with its source lines.
    let (with, without) = (tmp.path().join("with"), tmp.path().join("without"));
    for d in [&with, &without] {
        std::fs::create_dir_all(d).unwrap();
    }
    for e in std::fs::read_dir(work.join("corpus")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "syz") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let meta = p.with_extension("meta.json");
        let m = json(&meta);
        assert!(
            m["lines"]["ipc/shm.c"].is_object(),
            "{} is recorded with its lines: {m}",
            p.display()
        );
        let to = if text.contains("shmctl$SHM_INFO") {
            &with
        } else {
            &without
        };
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        std::fs::copy(&meta, to.join(meta.file_name().unwrap())).unwrap();
    }
    let count = |d: &Path| std::fs::read_dir(d).unwrap().count() / 2;
    assert!(
        count(&with) > 0 && count(&without) > 0,
        "both kinds recorded"
    );

    // The kernel it was recorded on: clean, by lines.
    let r = tmp.path().join("r.json");
    let same = tree.join(".kfuzz/build/arch/x86/boot/bzImage");
    let out = regress(&tree, &same, &without, &r, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v = json(&r);
    assert_eq!(v["coverage_unit"], "lines", "{v}");
    // (A line or two of timer code that ran under a program when it was recorded may not.)
    assert!(v["lost_percent"].as_f64().unwrap() < 1.0, "{v}");
    assert!(v["recorded_cover"].as_u64().unwrap() > 100, "{v}");

    // The patched kernel, without SHM_INFO programs: ksys_shmctl changed and moved, nothing
    // else lost.
    let out = regress(&tree, &cut, &without, &r, Some(&diff));
    let err = stderr_of(&out);
    let v = json(&r);
    eprintln!(
        "moved: {} of {} lines lost; by PC offsets (changed functions included) {}",
        v["lost_cover"], v["recorded_cover"], v["pc_comparison"]
    );
    assert_eq!(out.status.code(), Some(0), "{err}\n{v}");
    let changed: Vec<&str> = v["changed_functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["function"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&"ksys_shmctl"), "{v}");
    assert!(
        err.contains("ipc/shm.c: ksys_shmctl: changed by the patch"),
        "{err}"
    );

    // With SHM_INFO programs: the path through shm_get_stat is gone, in code the patch did
    // not change.
    let out = regress(&tree, &cut, &with, &r, Some(&diff));
    let err = stderr_of(&out);
    let v = json(&r);
    eprintln!("cut: {}", v["lost_functions"]);
    assert_eq!(out.status.code(), Some(2), "{err}\n{v}");
    let lost: Vec<&str> = v["lost_functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "ipc/shm.c")
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert!(lost.contains(&"shmctl_shm_info"), "{v}");
    // The patched file's losses are listed first.
    let first = err.lines().find(|l| l.trim_start().starts_with("Lost "));
    assert!(
        first.is_some_and(|l| l.contains("Lost ipc/shm.c: ")),
        "{err}"
    );
    assert!(err.contains("Lost ipc/shm.c: shmctl_shm_info"), "{err}");
    // The JUnit report says the same as the exit status.
    let xml = std::fs::read_to_string(r.with_extension("xml")).unwrap();
    assert!(xml.contains("<failure type=\"lost-coverage\""), "{xml}");
    assert!(
        !lost.contains(&"ksys_shmctl"),
        "a changed function is not lost: {v}"
    );
    assert!(common::qemus_in(&tree).is_empty());
}
