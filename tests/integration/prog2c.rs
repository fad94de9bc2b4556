//! `kfuzz prog2c`: every test program becomes C that gcc compiles without a warning, and a few
//! of them, run in the guest, give the same per-call results as `kfuzz execprog`.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

fn programs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "syz"))
        .collect();
    v.sort();
    v
}

fn prog2c(tree: &Path, prog: &Path, out: &Path, extra: &[&str]) {
    let o = kfuzz()
        .args(["prog2c", "-q", "--syscalls", "*", "-o"])
        .arg(out)
        .args(extra)
        .arg(prog)
        .current_dir(tree)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
}

fn gcc(c: &Path, bin: &Path) {
    let o = std::process::Command::new("gcc")
        .args(["-static", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(bin)
        .arg(c)
        .output()
        .expect("gcc");
    assert!(
        o.status.success(),
        "{} does not compile warning-free:\n{}",
        c.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_program_compiles_without_warnings_in_each_mode() {
    let (tmp, tree) = common::private_test_tree();
    for p in programs() {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        for (mode, extra) in [
            ("plain", &[][..]),
            (
                "threaded",
                &["--threaded", "--repeat", "3", "--sandbox", "setuid"][..],
            ),
            ("forever", &["--repeat", "0", "--sandbox", "namespace"][..]),
        ] {
            let c = tmp.path().join(format!("{name}-{mode}.c"));
            prog2c(&tree, &p, &c, extra);
            let src = std::fs::read_to_string(&c).unwrap();
            // The program's own lines are comments above the calls.
            let first = std::fs::read_to_string(&p).unwrap();
            let first = first.lines().next().unwrap();
            assert!(src.contains(&format!("/* {first} */")), "{src}");
            gcc(&c, &tmp.path().join(format!("{name}-{mode}")));
        }
    }
    // Named constants where the descriptions name them, wrappers where libc has them.
    let c = tmp.path().join("gen-1-shm-plain.c");
    let src = std::fs::read_to_string(c).unwrap();
    assert!(src.contains("IPC_RMID"), "{src}");
    assert!(src.contains("shmget("), "{src}");
    assert!(!src.contains("__NR_shmget"), "{src}");
}

/// `call N: …` lines as the C program prints them, from execprog's JSON.
fn expected_lines(out: &std::process::Output) -> Vec<String> {
    let run = stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "executed")
        .unwrap_or_else(|| panic!("{}", stdout_of(out)));
    run["calls"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c["executed"] != true {
                format!("call {i}: not finished")
            } else if c["errno"].as_i64().unwrap() != 0 {
                format!("call {i}: -1 errno {}", c["errno"])
            } else {
                format!("call {i}: {:#x}", c["ret"].as_i64().unwrap() as u64)
            }
        })
        .collect()
}

#[test]
fn c_programs_in_the_guest_match_execprog() {
    let (tmp, tree) = common::private_test_tree();
    let chosen = [
        "gen-1-shm",
        "gen-2-msg",
        "gen-5-pipesplicete",
        "shm-remap-file-pages",
    ];
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for name in chosen {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.syz"));
        let c = tmp.path().join(format!("{name}.c"));
        prog2c(&tree, &p, &c, &[]);
        let bin = tree.join(name);
        gcc(&c, &bin);
        files.push(format!(
            "{{ host = \"{name}\", guest = \"/usr/bin/{name}\" }}"
        ));
        // Each in a fresh VM, as each C program runs in a fresh IPC namespace.
        let out = kfuzz()
            .args(["execprog", "--message-format", "json", "--syscalls", "*"])
            .arg(&p)
            .current_dir(&tree)
            .timeout(Duration::from_secs(600))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        expected.push((name, expected_lines(&out)));
    }
    let manifest = tree.join("kfuzz.toml");
    let mut m = std::fs::read_to_string(&manifest).unwrap();
    m.push_str(&format!("[guest]\nfiles = [{}]\n", files.join(", ")));
    std::fs::write(&manifest, m).unwrap();
    let script: String = chosen
        .iter()
        .map(|n| format!("echo == {n}; /usr/bin/{n} 2>&1; "))
        .collect();
    let out = kfuzz()
        .args(["boot", "--", "sh", "-c", &script])
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    for (name, want) in expected {
        let section: Vec<&str> = text
            .split(&format!("== {name}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no output of {name}:\n{text}"))
            .lines()
            .take_while(|l| l.starts_with("call "))
            .collect();
        let got: Vec<String> = section
            .iter()
            .map(|l| l.split(" (").next().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{name}: C in the guest vs execprog\n{text}");
    }
}
