//! `kfuzz run` on the real test kernel: a corpus that grows and survives, and crashes from LKDTM
//! (`kill -9` and other faults: faults.rs).

use crate::common;

use std::time::Duration;

use common::{kfuzz, run_summary as summary, stderr_of};

fn corpus_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "syz"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fuzzing_shm_grows_a_corpus_that_parses_and_reloads() {
    let (_tmp, tree) = common::private_test_tree();
    let work = tree.join("work");
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "shm*",
            "--vms",
            "1",
            "--duration",
            "90s",
            "--workdir",
        ])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    // The status line is printed every 10 s: the corpus grows between the first and the last.
    let corpus_sizes: Vec<u64> = err
        .lines()
        .filter(|l| l.trim_start().starts_with("Fuzzing") && l.contains("corpus "))
        .filter_map(|l| {
            l.split("corpus ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(corpus_sizes.len() >= 5, "{err}");
    assert!(
        corpus_sizes.last() > corpus_sizes.first(),
        "corpus did not grow: {corpus_sizes:?}"
    );
    assert!(err.contains("signal "), "{err}");
    let files = corpus_files(&work.join("corpus"));
    assert!(!files.is_empty());
    assert_eq!(
        files.len() as u64,
        *corpus_sizes.last().unwrap().max(&(files.len() as u64))
    );

    // Every corpus file is canonical program text for the current descriptions.
    let check = kfuzz()
        .args(["prog", "fmt", "--check", "--syscalls", "*"])
        .args(&files)
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr_of(&check));

    // A second run loads every program and re-executes them (re-triage) before fuzzing.
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "shm*",
            "--vms",
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
    let err = stderr_of(&out);
    let loaded = format!(
        "Loaded {} corpus programs from {} (0 skipped)",
        files.len(),
        work.join("corpus").display()
    );
    assert!(err.contains(&loaded), "want {loaded:?} in\n{err}");
    let finished = err
        .lines()
        .find(|l| l.trim_start().starts_with("Finished"))
        .unwrap_or_else(|| panic!("{err}"));
    let execs: u64 = finished
        .split(": ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        execs >= 3 * files.len() as u64,
        "each corpus program is re-run for triage: {finished}"
    );
    for f in &files {
        assert!(f.exists(), "{} lost", f.display());
    }
}

#[test]
fn lkdtm_crashes_are_found_titled_and_fuzzing_goes_on() {
    let (_tmp, tree) = common::private_test_tree();
    let work = tree.join("work");
    let out = kfuzz()
        .args([
            "run",
            "--syscalls",
            "*lkdtm*",
            "--vms",
            "1",
            // The executor's other modes under real crashes: calls in threads, pairs of calls
            // racing, two programs at a time.
            "--procs",
            "2",
            "--threaded",
            "--collide",
            "--duration",
            "120s",
            "--message-format",
            "json",
            "--workdir",
        ])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = summary(&out);
    let crashes = s["crashes"].as_array().unwrap();
    assert!(!crashes.is_empty(), "no crash found: {s}");
    let occurrences: u64 = crashes.iter().map(|c| c[1].as_u64().unwrap()).sum();
    assert!(
        occurrences >= 2,
        "fuzzing went on after the first crash: {s}"
    );
    // Crashed VMs were replaced by VMs restored from the snapshot of the first boot.
    assert!(s["vm_restores"].as_u64().unwrap() >= 1, "{s}");
    // What LKDTM's direct entries report. A crash type that corrupts kernel state (a list, the
    // stack, a refcount) can make a later, unrelated-looking report too (CI once saw "WARNING in
    // __split_vma" after such an entry), so other titles are allowed as long as each one is well
    // formed and at least one crash is LKDTM's own.
    let known = [
        "WARNING in lkdtm_",
        "kernel BUG in ",
        "KASAN: ",
        "general protection fault in lkdtm_",
        "kernel panic: ",
        "WARNING: refcount bug in ",
        "BUG: ",
    ];
    let mut dirs = 0;
    let mut lkdtm_titles = 0;
    for entry in std::fs::read_dir(work.join("crashes")).unwrap().flatten() {
        dirs += 1;
        let d = entry.path();
        let title = std::fs::read_to_string(d.join("description")).unwrap();
        let title = title.trim();
        assert!(!title.is_empty() && !title.contains('\n'), "{title:?}");
        let lkdtm = known.iter().any(|k| title.starts_with(k));
        lkdtm_titles += usize::from(lkdtm);
        let report = std::fs::read_to_string(d.join("report0")).unwrap();
        let log = std::fs::read_to_string(d.join("log0")).unwrap();
        assert!(
            log.contains("kfuzz: executing program"),
            "the log shows the programs that ran"
        );
        if lkdtm {
            assert!(log.contains("lkdtm: Performing direct entry"), "{log}");
        }
        // The function a title names is in the report (`corrupted` stands in for one that
        // could not be found; `a / b` names two).
        let named = title.rsplit_once(" in ").map(|(_, f)| f);
        for func in named.iter().flat_map(|f| f.split(" / ")) {
            if func != "corrupted" {
                assert!(report.contains(func), "report of {title:?} names {func}");
            }
        }
    }
    assert_eq!(dirs, crashes.len());
    assert!(lkdtm_titles > 0, "no LKDTM crash among {s}");
}
