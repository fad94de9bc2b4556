//! `kfuzz corpus import|minimize|export` on the test tree's descriptions: which programs are
//! kept and why the others are not, the minimized set, the committed regression corpus.

use crate::common;

use std::path::Path;

use common::{kfuzz, stderr_of};

fn program(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.syz")),
    )
    .unwrap()
}

fn syz_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".syz"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn import_keeps_what_parses_and_says_why_the_rest_is_skipped() {
    let (tmp, tree) = common::private_test_tree();
    let from = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&from).unwrap();
    let w = |name: &str, text: &str| std::fs::write(from.join(name), text).unwrap();
    // Good ones, one of them in syzkaller's style: no extension, and a coverage record.
    w("a.syz", &program("gen-1-shm"));
    w("b.syz", &program("gen-2-msg"));
    w("9f2c1e", &program("shm-remap-file-pages"));
    std::fs::write(
        from.join("9f2c1e.meta.json"),
        r#"{"signal":[1,2,3],"cover":{"do_shmat":[8,16]},"commit":null,"recorded":1}"#,
    )
    .unwrap();
    // The same program as a.syz: imported once.
    w("a-again.syz", &program("gen-1-shm"));
    // Malformed: a missing parenthesis; an argument that is not a value.
    w("broken.syz", "r0 = shmget(0x5, 0x2000, 0x200\n");
    w("short.syz", "close(0x3)\nshmctl$IPC_RMID(0x1, @@)\n");
    // Calls we do not describe.
    w("bpf.syz", "bpf$PROG_LOAD(0x5, 0x0, 0x0)\n");
    w("io.syz", "mmap(&(0x7f0000000000/0x2000)=nil, 0x2000, 0x3, 0x32, 0xffffffffffffffff, 0x0)\nio_uring_setup(0x1, 0x0)\n");
    // No calls at all.
    w("empty.syz", "# nothing\n");

    let work = tmp.path().join("work");
    let out = kfuzz()
        .args(["corpus", "import"])
        .arg(&from)
        .arg("--workdir")
        .arg(&work)
        .current_dir(&tree)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Imported 3 programs") && err.contains("(1 already there)"),
        "{err}"
    );
    assert!(
        err.contains("skipped 5: 2 malformed, 2 with unknown calls, 1 empty"),
        "{err}"
    );
    let line = |file: &str| {
        err.lines()
            .find(|l| l.contains(&format!("{file}:")))
            .unwrap_or_else(|| panic!("nothing about {file} in {err}"))
            .to_string()
    };
    assert!(line("broken.syz").contains("broken.syz:1:"), "{err}");
    assert!(line("broken.syz").contains("malformed"), "{err}");
    assert!(line("short.syz").contains("short.syz:2:"), "{err}");
    assert!(line("bpf.syz").contains("bpf.syz:1:1: unknown or disabled call `bpf$PROG_LOAD`"));
    assert!(line("io.syz").contains("io.syz:2:1:"), "{err}");
    assert!(line("io.syz").contains("do not have"), "{err}");
    assert!(line("empty.syz").contains("no calls"), "{err}");

    let corpus = work.join("corpus");
    let files = syz_files(&corpus);
    assert_eq!(files.len(), 3, "{files:?}");
    // The record came along with its program.
    let metas = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".meta.json"))
        .count();
    assert_eq!(metas, 1);

    // Again: everything is already there.
    let out = kfuzz()
        .args(["corpus", "import", "--message-format", "json"])
        .arg(&from)
        .arg("--workdir")
        .arg(&work)
        .current_dir(&tree)
        .output()
        .unwrap();
    let report: serde_json::Value = common::stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "corpus-imported")
        .expect("a corpus-imported message")["report"]
        .clone();
    assert_eq!(report["imported"], 0);
    assert_eq!(report["already"], 4);
    assert_eq!(report["malformed"].as_array().unwrap().len(), 2);
    assert_eq!(report["unknown_call"].as_array().unwrap().len(), 2);
}

fn meta(cover: &[(&str, &[u32])]) -> String {
    let cover: serde_json::Map<String, serde_json::Value> = cover
        .iter()
        .map(|(f, offs)| (f.to_string(), serde_json::json!(offs)))
        .collect();
    serde_json::json!({"signal": [], "cover": cover, "commit": null, "recorded": 1}).to_string()
}

#[test]
fn minimize_and_export_keep_the_smallest_set_with_the_same_coverage() {
    let (tmp, tree) = common::private_test_tree();
    let work = tmp.path().join("work");
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    // Three recorded programs: the second covers everything the first does and more; the
    // third adds one PC; a fourth has no record and is kept as it is.
    let progs = [
        ("p1", "dup(0x0)\n", Some(meta(&[("do_shmat", &[1, 2])]))),
        (
            "p2",
            "r0 = shmget$private(0x0, 0x2000, 0x0, &(0x20000000/0x2000)=nil)\nshmctl$IPC_RMID(r0, 0x0)\n",
            Some(meta(&[("do_shmat", &[1, 2, 3]), ("ksys_shmget", &[4])])),
        ),
        ("p3", "dup(0x1)\ndup(0x2)\n", Some(meta(&[("shmctl_down", &[9])]))),
        ("p4", "close(0x3)\n", None),
    ];
    for (name, text, m) in &progs {
        std::fs::write(corpus.join(format!("{name}.syz")), text).unwrap();
        if let Some(m) = m {
            std::fs::write(corpus.join(format!("{name}.meta.json")), m).unwrap();
        }
    }
    let run = |args: &[&str]| {
        let out = kfuzz()
            .args(args)
            .arg("--workdir")
            .arg(&work)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stderr_of(&out)
    };

    // A committed regression corpus: the minimized set, named by last call.
    let export = tmp.path().join("kfuzz-corpus");
    let err = run(&["corpus", "export", export.to_str().unwrap()]);
    assert!(err.contains("Exported 3 of 4 programs"), "{err}");
    let files = syz_files(&export);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("shmctl_IPC_RMID-")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.starts_with("close-")), "{files:?}");
    assert_eq!(
        std::fs::read_dir(&export)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".meta.json"))
            .count(),
        2,
        "records go with the recorded programs"
    );
    // Files kfuzz did not write are left alone, programs looking like its own included.
    std::fs::write(export.join("old-0000.syz"), "close(0x4)\n").unwrap();
    std::fs::write(export.join("README"), "ours\n").unwrap();
    let err = run(&["corpus", "export", "--all", export.to_str().unwrap()]);
    assert!(err.contains("Exported 4 of 4"), "{err}");
    assert!(!err.contains("removed"), "{err}");
    assert_eq!(syz_files(&export).len(), 5);
    assert!(export.join("old-0000.syz").exists() && export.join("README").exists());

    let err = run(&["corpus", "minimize", "--dry-run"]);
    assert!(err.contains("3 of 4 programs"), "{err}");
    assert_eq!(syz_files(&corpus).len(), 4, "a dry run changes nothing");
    let err = run(&["corpus", "minimize"]);
    assert!(err.contains("1 moved to"), "{err}");
    assert_eq!(syz_files(&corpus), ["p2.syz", "p3.syz", "p4.syz"]);
    assert_eq!(syz_files(&work.join("corpus.dropped")), ["p1.syz"]);
    assert!(work.join("corpus.dropped/p1.meta.json").exists());
}
