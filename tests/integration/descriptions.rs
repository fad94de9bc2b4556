//! Our descriptions against the real test tree: constants from its headers, numbers from its
//! syscall table, and the program tools on top.

use crate::common;

use common::{kfuzz, stderr_of, stdout_of};

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn all_our_descriptions_load_on_the_test_tree_with_no_disabled_call() {
    let (tree, _) = common::build_test_kernel();
    let out = kfuzz()
        .args([
            "syscalls",
            "--syscalls",
            "*,*lkdtm*",
            "--message-format",
            "json",
        ])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msgs = json_lines(&out);
    let disabled: Vec<_> = msgs.iter().filter(|m| m["enabled"] == false).collect();
    assert!(disabled.is_empty(), "disabled calls: {disabled:#?}");
    let enabled: Vec<&str> = msgs
        .iter()
        .filter(|m| m["enabled"] == true)
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(enabled.len() >= 100, "{} calls", enabled.len());
    for call in [
        "shmget",
        "shmctl$IPC_RMID",
        "msgsnd",
        "semtimedop",
        "mmap",
        "remap_file_pages",
        "splice",
        "epoll_ctl$add",
        "timerfd_settime",
        "memfd_create",
        "sendmsg$unix",
        "write$lkdtm",
    ] {
        assert!(enabled.contains(&call), "{call} missing");
    }
}

#[test]
fn selecting_shm_adds_what_it_needs_and_says_why() {
    let (tree, _) = common::build_test_kernel();
    let out = kfuzz()
        .args(["syscalls", "--syscalls", "shmat,shmdt"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.lines().any(|l| l == "shmat"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("shmget") && l.contains("needed to create ipc_shm")),
        "{text}"
    );
    assert!(!text.contains("msgsnd"), "{text}");
}

#[test]
fn the_program_folder_is_canonical_and_round_trips() {
    let (tree, _) = common::build_test_kernel();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let out = kfuzz()
        .args(["prog", "fmt", "--check", "--syscalls", "*"])
        .args(&files)
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // And printing gives back each file exactly.
    for f in &files {
        let out = kfuzz()
            .args(["prog", "fmt", "--syscalls", "*"])
            .arg(f)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert_eq!(
            stdout_of(&out),
            std::fs::read_to_string(f).unwrap(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn fmt_check_names_bad_programs_with_line_and_column() {
    let (tree, _) = common::build_test_kernel();
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.syz");
    std::fs::write(
        &bad,
        "r0 = shmget(0x5, 0x2000, 0x200, &(0x20000000/0x2000)=nil)\nshmat(r1, 0x0, 0x0)\n",
    )
    .unwrap();
    let messy = tmp.path().join("messy.syz");
    std::fs::write(&messy, "shmdt(  0x0 )\n").unwrap();
    let out = kfuzz()
        .args(["prog", "fmt", "--check", "--syscalls", "*"])
        .arg(&bad)
        .arg(&messy)
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "{}:2:7: `r1` is not defined by an earlier call",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: not in canonical form", messy.display())),
        "{err}"
    );
}

#[test]
fn generation_is_reproducible_for_a_seed_and_mutation_changes_the_program() {
    let (tree, _) = common::build_test_kernel();
    let gen = |seed: &str| {
        let out = kfuzz()
            .args([
                "prog",
                "gen",
                "-n",
                "4",
                "--seed",
                seed,
                "--syscalls",
                "shm*,msg*,sem*",
            ])
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out)
    };
    let a = gen("42");
    assert_eq!(a, gen("42"));
    assert_ne!(a, gen("43"));
    assert_eq!(a.split("\n\n").count(), 4, "{a}");

    let tmp = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs/shm-remap-file-pages.syz");
    let mut seen = std::collections::HashSet::new();
    for seed in 0..5 {
        let out = kfuzz()
            .args([
                "prog",
                "mutate",
                "--seed",
                &seed.to_string(),
                "--syscalls",
                "*",
            ])
            .arg(&src)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let m = stdout_of(&out);
        assert_ne!(m, std::fs::read_to_string(&src).unwrap());
        let f = tmp.path().join(format!("m{seed}.syz"));
        std::fs::write(&f, &m).unwrap();
        let check = kfuzz()
            .args(["prog", "fmt", "--check", "--syscalls", "*"])
            .arg(&f)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "mutant does not round-trip:\n{m}\n{}",
            stderr_of(&check)
        );
        seen.insert(m);
    }
    assert!(seen.len() >= 3, "mutations should differ across seeds");
}

/// LKDTM's calls crash the kernel on purpose: `*` or a base name like `write` must not pull
/// them into a fuzzing run (a CI run of `read,write,close` once crashed in lkdtm_WARNING).
#[test]
fn lkdtm_calls_are_enabled_only_by_name() {
    let (tree, _) = common::build_test_kernel();
    let selected = |globs: &str| {
        let out = kfuzz()
            .args(["syscalls", "--syscalls", globs])
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out)
    };
    for g in ["*", "read,write,close", "write*,open*"] {
        let text = selected(g);
        assert!(!text.contains("lkdtm"), "{g}: {text}");
        assert!(text.lines().any(|l| l.starts_with("write")), "{g}: {text}");
    }
    let text = selected("write$lkdtm");
    assert!(
        text.lines()
            .any(|l| l.starts_with("openat$lkdtm") && l.contains("needed to create fd_lkdtm")),
        "{text}"
    );
    assert!(
        selected("*lkdtm*")
            .lines()
            .filter(|l| l.contains("lkdtm"))
            .count()
            == 2
    );
}
