//! No command deletes or overwrites a file it did not write: `corpus export` manages only the
//! files on its `.kfuzz-export` list and never writes into kfuzz's own folders, `-o` and the like
//! never name an input, shared files get the user's umask, and a mistyped work dir is an error.
//! None of these needs a kernel tree or a VM: the checks come before any of that.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{kfuzz, stderr_of};

/// A work dir with a corpus of four programs, three with coverage records, in a temp dir that is
/// not a kernel tree.
fn work_with_corpus() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("work/corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let meta = |f: &str, pc: u32| {
        format!(r#"{{"signal":[],"cover":{{"{f}":[{pc}]}},"commit":null,"recorded":1}}"#)
    };
    for (name, text, m) in [
        ("p1", "dup(0x0)\n", Some(meta("do_shmat", 1))),
        (
            "p2",
            "shmctl$IPC_RMID(0x0, 0x0)\n",
            Some(meta("ksys_shmget", 2)),
        ),
        ("p3", "dup(0x1)\ndup(0x2)\n", Some(meta("shmctl_down", 3))),
        ("p4", "close(0x3)\n", None),
    ] {
        std::fs::write(corpus.join(format!("{name}.syz")), text).unwrap();
        if let Some(m) = m {
            std::fs::write(corpus.join(format!("{name}.meta.json")), m).unwrap();
        }
    }
    let work = tmp.path().join("work");
    (tmp, work)
}

fn export(cwd: &Path, work: &Path, to: &Path) -> std::process::Output {
    kfuzz()
        .args(["corpus", "export", "--all"])
        .arg(to)
        .arg("--workdir")
        .arg(work)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Every file in `dir` (name → bytes).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn names_ending(dir: &Path, suffix: &str) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(suffix))
        .collect()
}

#[test]
fn export_removes_only_what_it_wrote_and_leaves_the_users_files() {
    let (tmp, work) = work_with_corpus();
    let to = tmp.path().join("regression");
    std::fs::create_dir_all(&to).unwrap();
    // The user's own program and record, and a README.
    std::fs::write(to.join("my-own.syz"), "getpid()\n").unwrap();
    std::fs::write(to.join("my-own.meta.json"), "{}\n").unwrap();
    std::fs::write(to.join("README"), "ours\n").unwrap();

    let out = export(tmp.path(), &work, &to);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Exported 4 of 4 programs"), "{err}");
    assert_eq!(names_ending(&to, ".syz").len(), 5);
    let list = std::fs::read_to_string(to.join(".kfuzz-export")).unwrap();
    assert_eq!(
        list.lines().filter(|l| !l.starts_with('#')).count(),
        7,
        "{list}"
    );
    assert!(!list.contains("my-own"), "{list}");

    // Two programs leave the corpus; the user edited the export of one of them.
    let edited = names_ending(&to, ".syz")
        .into_iter()
        .find(|n| n.starts_with("close-"))
        .unwrap();
    std::fs::write(to.join(&edited), "close(0x3)\n# a note of mine\n").unwrap();
    std::fs::remove_file(work.join("corpus/p4.syz")).unwrap();
    std::fs::remove_file(work.join("corpus/p3.syz")).unwrap();
    let out = export(tmp.path(), &work, &to);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Exported 2 of 2 programs"), "{err}");
    assert!(err.contains("removed 1 no longer in the set"), "{err}");
    assert!(
        err.contains(&format!("warning: left {}", to.join(&edited).display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(to.join(&edited)).unwrap(),
        "close(0x3)\n# a note of mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("my-own.syz")).unwrap(),
        "getpid()\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("my-own.meta.json")).unwrap(),
        "{}\n"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("README")).unwrap(),
        "ours\n"
    );
    // The user's, the edited one, and the two still exported.
    assert_eq!(
        names_ending(&to, ".syz").len(),
        4,
        "{:?}",
        names_ending(&to, ".syz")
    );

    // With --no-meta the records it wrote go; the user's record stays.
    let out = kfuzz()
        .args(["corpus", "export", "--all", "--no-meta"])
        .arg(&to)
        .arg("--workdir")
        .arg(&work)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(names_ending(&to, ".meta.json"), ["my-own.meta.json"]);
}

#[test]
fn export_refuses_to_write_over_a_users_file_of_the_same_name() {
    let (tmp, work) = work_with_corpus();
    let scratch = tmp.path().join("scratch");
    assert!(export(tmp.path(), &work, &scratch).status.success());
    let taken = names_ending(&scratch, ".syz").remove(0);

    let to = tmp.path().join("regression");
    std::fs::create_dir_all(&to).unwrap();
    std::fs::write(to.join(&taken), "the user's own\n").unwrap();
    let before = snapshot(&to);
    let out = export(tmp.path(), &work, &to);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.starts_with("error: cannot export to"), "{err}");
    assert!(
        err.contains(&taken) && err.contains("did not write"),
        "{err}"
    );
    assert_eq!(
        snapshot(&to),
        before,
        "nothing changes when a name is taken"
    );

    // A file with exactly the bytes it would write is left and never claimed.
    std::fs::write(
        to.join(&taken),
        std::fs::read(scratch.join(&taken)).unwrap(),
    )
    .unwrap();
    let out = export(tmp.path(), &work, &to);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Kept 1 file(s) already there"), "{err}");
    let list = std::fs::read_to_string(to.join(".kfuzz-export")).unwrap();
    assert!(!list.contains(&taken), "{list}");
}

#[test]
fn export_into_the_corpus_or_the_work_dir_is_refused() {
    let (tmp, work) = work_with_corpus();
    let corpus = work.join("corpus");
    let link = tmp.path().join("to-corpus");
    std::os::unix::fs::symlink(&corpus, &link).unwrap();
    let before = snapshot(&corpus);
    for to in [
        corpus.clone(),
        work.clone(),
        work.join("corpus.dropped"),
        tmp.path().join("elsewhere/../work/corpus"),
        link,
    ] {
        let out = export(tmp.path(), &work, &to);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{}: {err}", to.display());
        assert!(err.contains("will not export into"), "{err}");
        assert!(err.contains("which kfuzz manages"), "{err}");
    }
    assert_eq!(snapshot(&corpus), before, "the corpus is as it was");
    assert!(!work.join("corpus.dropped").exists());
}

#[test]
fn corpus_commands_with_a_missing_work_dir_fail_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("wrok");
    for args in [
        &["corpus", "minimize"][..],
        &["corpus", "minimize", "--dry-run"][..],
        &["corpus", "export", "out"][..],
    ] {
        let out = kfuzz()
            .args(args)
            .arg("--workdir")
            .arg(&typo)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains(&format!("work dir {} does not exist", typo.display())),
            "{err}"
        );
    }
    assert!(!typo.exists());
    assert!(!tmp.path().join("out").exists());
    // A work dir with no corpus folder.
    let out = kfuzz()
        .args(["corpus", "minimize", "--workdir"])
        .arg(tmp.path())
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("corpus does not exist"), "{err}");
}

/// Runs kfuzz under `umask`.
fn kfuzz_with_umask(umask: &str, args: &[&std::ffi::OsStr], cwd: &Path) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kfuzz"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn shared_files_get_the_users_umask() {
    let (tmp, work) = work_with_corpus();
    let to = tmp.path().join("shared/regression");
    let os = |s: &str| std::ffi::OsString::from(s);
    let args = [
        os("corpus"),
        os("export"),
        to.clone().into_os_string(),
        os("--workdir"),
        work.clone().into_os_string(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = kfuzz_with_umask("002", &args, tmp.path());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(mode(&to), 0o775);
    let files = snapshot(&to);
    assert!(files.len() > 3, "{files:?}");
    for (name, _) in files {
        assert_eq!(mode(&to.join(&name)), 0o664, "{name}");
    }

    // And under a strict umask, what the user asked for.
    let to = tmp.path().join("private");
    let args = [
        os("corpus"),
        os("export"),
        to.clone().into_os_string(),
        os("--workdir"),
        work.clone().into_os_string(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = kfuzz_with_umask("077", &args, tmp.path());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(mode(&to), 0o700);
    for (name, _) in snapshot(&to) {
        assert_eq!(mode(&to.join(&name)), 0o600, "{name}");
    }
}

#[test]
fn an_output_never_names_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let prog = tmp.path().join("prog.syz");
    let text = "close(0x3)\n";
    std::fs::write(&prog, text).unwrap();
    let hard = tmp.path().join("hard.syz");
    std::fs::hard_link(&prog, &hard).unwrap();
    let sym = tmp.path().join("sym.c");
    std::os::unix::fs::symlink(&prog, &sym).unwrap();
    let log = tmp.path().join("repro.log");
    std::fs::write(&log, "a console log\n").unwrap();
    let o = |s: &str| std::ffi::OsString::from(s);
    let p = |p: &Path| p.as_os_str().to_os_string();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![o("prog2c"), o("-o"), p(&prog), p(&prog)],
            "names the input",
        ),
        (
            vec![o("prog2c"), o("-o"), p(&hard), p(&prog)],
            "names the input",
        ),
        (
            vec![o("prog2c"), o("-o"), p(&sym), p(&prog)],
            "names the input",
        ),
        (
            vec![o("prog2c"), o("-o"), o("./prog.syz"), o("prog.syz")],
            "names the input",
        ),
        (
            vec![o("execprog"), o("--cover"), p(&prog), p(&hard)],
            "names the input",
        ),
        (vec![o("repro"), p(&log)], "would write over"),
        (
            vec![o("repro"), p(&log), o("-o"), p(tmp.path())],
            "would write over",
        ),
        (
            vec![
                o("regress"),
                o("--junit"),
                p(&prog),
                o("--kernel"),
                p(&hard),
            ],
            "names the input",
        ),
        (
            vec![
                o("regress"),
                o("--json"),
                p(&prog),
                o("--corpus"),
                p(tmp.path()),
            ],
            "names the input",
        ),
        (
            vec![
                o("regress"),
                o("--json"),
                o("r.json"),
                o("--junit"),
                o("./r.json"),
            ],
            "name the same file",
        ),
        (
            vec![
                o("regress"),
                o("--ktap"),
                o("r.ktap"),
                o("--junit"),
                o("./r.ktap"),
            ],
            "`--junit` and `--ktap` name the same file",
        ),
        (
            vec![
                o("regress"),
                o("--kcidb"),
                o("r.json"),
                o("--json"),
                o("sub/../r.json"),
            ],
            "`--kcidb` and `--json` name the same file",
        ),
        (
            vec![
                o("regress"),
                o("--ktap"),
                p(&hard),
                o("--corpus"),
                p(tmp.path()),
            ],
            "names the input",
        ),
    ];
    for (args, says) in cases {
        let out = kfuzz()
            .args(&args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&prog).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "a console log\n");
    assert!(!tmp.path().join("r.json").exists());
    assert!(!tmp.path().join("r.ktap").exists());
}

#[test]
fn minimize_never_replaces_a_program_dropped_earlier() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let meta = |pcs: &str| {
        format!(r#"{{"signal":[],"cover":{{"f":[{pcs}]}},"commit":null,"recorded":1}}"#)
    };
    std::fs::write(corpus.join("big.syz"), "dup(0x0)\ndup(0x1)\n").unwrap();
    std::fs::write(corpus.join("big.meta.json"), meta("1,2,3")).unwrap();
    let minimize = || {
        let out = kfuzz()
            .args(["corpus", "minimize", "--workdir"])
            .arg(&work)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    for (n, text) in [(1, "dup(0x2)\n"), (2, "dup(0x3)\n")] {
        std::fs::write(corpus.join("small.syz"), text).unwrap();
        std::fs::write(corpus.join("small.meta.json"), meta(&n.to_string())).unwrap();
        minimize();
    }
    let dropped = work.join("corpus.dropped");
    assert_eq!(
        std::fs::read_to_string(dropped.join("small.syz")).unwrap(),
        "dup(0x2)\n"
    );
    assert_eq!(
        std::fs::read_to_string(dropped.join("small.1.syz")).unwrap(),
        "dup(0x3)\n"
    );
    assert!(std::fs::read_to_string(dropped.join("small.1.meta.json"))
        .unwrap()
        .contains("[2]"));
}
