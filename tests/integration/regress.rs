//! `kfuzz regress` on the real test kernel: a clean corpus replays clean with a well-formed
//! JUnit report, a saved reproducer that still crashes is "still broken", and a corpus
//! program that crashes is a new crash (exit 1, the JUnit testcase failed with its title).

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{kfuzz, stderr_of};

fn copy_program(name: &str, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.syz"));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// (testcase name, failure type and message) for every testcase.
fn testcases(xml: &str) -> Vec<(String, Option<(String, String)>)> {
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>"));
    assert!(xml.trim_end().ends_with("</testsuites>"));
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.matches("</testcase>").count()
    );
    // ` name=` with its space: `classname=` ends with `name=` too.
    let attr = |s: &str, name: &str| {
        s.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(String::from)
    };
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let case = case.split("</testcase>").next().unwrap();
            let failure = case
                .split("<failure")
                .nth(1)
                .map(|f| (attr(f, "type").unwrap(), attr(f, "message").unwrap()));
            (attr(case, "name").unwrap(), failure)
        })
        .collect()
}

#[test]
fn clean_replay_still_broken_reproducer_and_a_new_crash() {
    let (tmp, tree) = common::private_test_tree();
    let corpus = tmp.path().join("corpus");
    for p in ["gen-1-shm", "gen-2-msg", "shm-remap-file-pages"] {
        copy_program(p, &corpus.join(format!("{p}.syz")));
    }
    // A crash kfuzz saved earlier, with its reproducer.
    let crash = tree.join(".kfuzz/work/crashes/0123456789abcdef");
    copy_program("gen-9-lkdtm", &crash.join("repro.syz"));
    std::fs::write(
        crash.join("description"),
        "general protection fault in lkdtm_EXCEPTION\n",
    )
    .unwrap();
    // A program with a call our descriptions do not have: skipped with a warning.
    std::fs::write(corpus.join("gone.syz"), "bpf$PROG_LOAD(0x5, 0x0, 0x0)\n").unwrap();
    let junit = tmp.path().join("junit.xml");
    let json = tmp.path().join("regress.json");
    let run = |junit: &Path| {
        kfuzz()
            // The shared test kernel as it is: the private tree view would otherwise rebuild
            // it (its build record names the shared tree).
            .args(["regress", "--kernel"])
            .arg(tree.join(".kfuzz/build/arch/x86/boot/bzImage"))
            .arg("--corpus")
            .arg(&corpus)
            .arg("--junit")
            .arg(junit)
            .arg("--json")
            .arg(&json)
            .current_dir(&tree)
            .timeout(Duration::from_secs(900))
            .output()
            .unwrap()
    };
    let out = run(&junit);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("still broken: general protection fault in lkdtm_EXCEPTION"),
        "{err}"
    );
    assert!(
        err.contains("gone.syz:1:1: unknown or disabled call `bpf$PROG_LOAD`"),
        "{err}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("skipped=\"1\""), "{xml}");
    let cases = testcases(&xml);
    assert_eq!(
        cases.len(),
        6,
        "3 programs, 1 skipped, 1 reproducer, coverage: {cases:?}"
    );
    for p in ["gen-1-shm", "gen-2-msg", "shm-remap-file-pages"] {
        let c = cases
            .iter()
            .find(|(n, _)| n.ends_with(&format!("{p}.syz")))
            .unwrap_or_else(|| panic!("{p} not in {cases:?}\n{err}"));
        assert_eq!(c.1, None, "{p} replays clean");
    }
    let repro = cases
        .iter()
        .find(|(n, _)| n.ends_with("repro.syz"))
        .unwrap();
    assert_eq!(
        repro.1,
        Some((
            "still-broken".into(),
            "general protection fault in lkdtm_EXCEPTION".into()
        ))
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["programs"].as_array().unwrap().len(), 4);
    assert_eq!(v["new_crashes"], 0);

    // The same crash from a corpus program is new: exit 1.
    copy_program("gen-9-lkdtm", &corpus.join("lkdtm.syz"));
    let out = run(&junit);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let cases = testcases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(cases.len(), 7);
    let new = cases
        .iter()
        .find(|(n, _)| n.ends_with("lkdtm.syz") && !n.ends_with("repro.syz"));
    assert_eq!(
        new.unwrap().1,
        Some((
            "new-crash".into(),
            "general protection fault in lkdtm_EXCEPTION".into()
        ))
    );
    assert!(common::qemus_in(&tree).is_empty());
}

fn regress(tree: &Path, kernel: &Path, corpus: &Path, junit: &Path, json: &Path) -> Output {
    kfuzz()
        .args(["regress", "--kernel"])
        .arg(kernel)
        .arg("--corpus")
        .arg(corpus)
        .arg("--junit")
        .arg(junit)
        .arg("--json")
        .arg(json)
        .current_dir(tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap()
}

/// A corpus recorded by `kfuzz run` replays clean on the kernel it was recorded on, and a
/// kernel built without the code it covered (CONFIG_SIGNALFD off) loses that coverage: exit 2,
/// the lost functions named.
#[test]
fn a_recorded_corpus_replays_clean_and_a_kernel_without_its_code_loses_coverage() {
    let (tmp, tree) = common::private_test_tree();
    let variant = common::variant_kernel("nosignalfd", &["SIGNALFD"]);
    let work = tmp.path().join("work");
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "signalfd*,read$signalfd",
            "--vms",
            "1",
            "--procs",
            "1",
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
    let corpus = work.join("corpus");
    let programs: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "syz"))
        .collect();
    assert!(!programs.is_empty(), "no corpus: {}", stderr_of(&out));
    for p in &programs {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.with_extension("meta.json")).unwrap())
                .unwrap();
        assert!(
            meta["cover"].as_object().is_some_and(|c| !c.is_empty()),
            "{} has its coverage recorded by function: {meta}",
            p.display()
        );
    }

    // The same kernel: clean, every program a passing testcase.
    let (junit, json) = (tmp.path().join("junit.xml"), tmp.path().join("r.json"));
    let same = tree.join(".kfuzz/build/arch/x86/boot/bzImage");
    let out = regress(&tree, &same, &corpus, &junit, &json);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let cases = testcases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(cases.len(), programs.len() + 1, "{cases:?}");
    for p in &programs {
        let name = p.display().to_string();
        let c = cases.iter().find(|(n, _)| *n == name);
        assert_eq!(c.map(|c| &c.1), Some(&None), "{name} in {cases:?}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["recorded_cover"].as_u64().unwrap() > 0, "{v}");

    // No signalfd in the kernel: the recorded coverage of fs/signalfd.c is gone.
    let out = regress(&tree, &variant, &corpus, &junit, &json);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lost_in = |f: &str| {
        v["lost_by_file"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["functions"].as_array().unwrap().iter().any(|x| x == f))
    };
    assert!(lost_in("do_signalfd4"), "{v}");
    assert!(err.contains("Lost") && err.contains("signalfd"), "{err}");
    let losing = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["lost_cover"].as_u64().unwrap() > 0)
        .count();
    assert!(losing > 0, "{v}");
    let cases = testcases(&std::fs::read_to_string(&junit).unwrap());
    let cov = cases
        .iter()
        .find(|(n, _)| n == "recorded coverage")
        .unwrap();
    assert_eq!(cov.1.as_ref().map(|f| f.0.as_str()), Some("lost-coverage"));
    assert!(common::qemus_in(&tree).is_empty());
}

/// `--baseline` in a tree that is not a git checkout: a clear error and status 3, before any
/// VM is started.
#[test]
fn a_baseline_outside_git_is_a_tool_error() {
    let (tmp, tree) = common::private_test_tree();
    let corpus = tmp.path().join("corpus");
    copy_program("gen-1-shm", &corpus.join("a.syz"));
    let out = kfuzz()
        .args(["regress", "--baseline", "HEAD", "--kernel"])
        .arg(tree.join(".kfuzz/build/arch/x86/boot/bzImage"))
        .arg("--corpus")
        .arg(&corpus)
        .current_dir(&tree)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--baseline needs a git checkout"), "{err}");
    assert!(
        !tree.join(".kfuzz/regress/vm0").exists(),
        "no VM was started"
    );
}
