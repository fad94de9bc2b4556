//! `kfuzz crashes` on work dirs that are not what they seem: a misspelt `--workdir`, and crash
//! folders holding a directory where a reproducer file belongs.

use crate::common;

use common::{kfuzz, stderr_of, stdout_of};

#[test]
fn a_misspelt_workdir_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let typo = tmp.path().join("wrok");
    let out = kfuzz()
        .args(["crashes", "--workdir"])
        .arg(&typo)
        .output()
        .expect("run kfuzz");
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: --workdir {}: no such directory (the work dir `kfuzz run` wrote to)",
            typo.display()
        )
    );
    let file = tmp.path().join("file");
    std::fs::write(&file, "").expect("write");
    let out = kfuzz()
        .args(["crashes", "--workdir"])
        .arg(&file)
        .output()
        .expect("run kfuzz");
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("not a directory"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_directory_named_repro_syz_is_not_a_reproducer() {
    let work = tempfile::tempdir().expect("temp dir");
    let crash = work.path().join("crashes/0123456789abcdef");
    std::fs::create_dir_all(crash.join("repro.syz")).expect("mkdir repro.syz");
    std::fs::write(crash.join("description"), "WARNING in shm_destroy\n").expect("write");
    let other = work.path().join("crashes/fedcba9876543210");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(
        other.join("description"),
        "KASAN: use-after-free in msgrcv\n",
    )
    .expect("write");
    std::fs::write(other.join("repro.syz"), "msgget(0x0, 0x0)\n").expect("write");
    let out = kfuzz()
        .args(["crashes", "--message-format", "json", "--workdir"])
        .arg(work.path())
        .output()
        .expect("run kfuzz");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let repro: Vec<(String, bool)> = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "crash")
        .map(|m| {
            let c = &m["crash"];
            (
                c["title"].as_str().unwrap_or("").to_string(),
                c["syz_repro"] == true,
            )
        })
        .collect();
    assert_eq!(
        repro,
        [
            ("KASAN: use-after-free in msgrcv".to_string(), true),
            ("WARNING in shm_destroy".to_string(), false)
        ]
    );
}
