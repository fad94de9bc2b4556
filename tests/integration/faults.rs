//! Faults during `kfuzz run` on the real test kernel: `kill -9` at random moments, a guest that
//! stops answering, a guest that floods its console, and a disk that fills up. The guest faults
//! are real: LKDTM's HARDLOCKUP and sysrq task dumps (tests/fixtures/faults/faults.txt).

use crate::common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{kfuzz, run_summary as summary, stderr_of, stdout_of};
use rand::{Rng, SeedableRng};

/// A private test tree whose kfuzz.toml also loads the fault descriptions.
fn run_json(tree: &Path, work: &Path, syscalls: &str, duration: &str) -> std::process::Output {
    kfuzz()
        .args([
            "run",
            "--syscalls",
            syscalls,
            "--vms",
            "1",
            "--no-reproduce",
        ])
        .args([
            "--duration",
            duration,
            "--message-format",
            "json",
            "--workdir",
        ])
        .arg(work)
        .current_dir(tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap()
}

fn events(out: &std::process::Output, reason: &str) -> Vec<serde_json::Value> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == reason)
        .collect()
}

#[test]
fn a_guest_that_stops_answering_is_restarted_and_fuzzing_goes_on() {
    let (_tmp, tree) = common::tree_with_descriptions("faults");
    let work = tree.join("work");
    // Every program the fuzzer can make locks the guest up: each lockup must be noticed
    // (within the program timeout and a round trip, scaled), titled, and followed by a new VM.
    // The first lockup is noticed after about 110s under TCG (boot, program timeout, round
    // trip); the new VM comes from a snapshot in under a second.
    let out = run_json(&tree, &work, "*$hang", "170s");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = summary(&out);
    let crashes = s["crashes"].as_array().unwrap();
    assert!(
        crashes
            .iter()
            .any(|c| c[0].as_str() == kfuzz::report::CrashKind::NoOutput.made_up_title()),
        "no hang noticed: {s}"
    );
    // After the lockup a new VM came up and ran programs again (the end of the run, not a
    // second detection, may be what stops it: the run does not wait out a hung guest).
    assert!(s["vm_restarts"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["execs"].as_u64().unwrap() >= 2, "{s}");
    let dir = events(&out, "crash")[0]["dir"]
        .as_str()
        .unwrap()
        .to_string();
    let log = std::fs::read_to_string(Path::new(&dir).join("log0")).unwrap();
    assert!(
        log.contains("write$hang("),
        "the log names the program:\n{log}"
    );
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}

#[test]
fn a_guest_that_floods_its_console_is_restarted_and_fuzzing_goes_on() {
    let (_tmp, tree) = common::tree_with_descriptions("faults");
    let work = tree.join("work");
    // Under TCG the first flood is given up on after about 35s, the second after 65s on an idle
    // host (later when the host is busy). The kill test, which starts first, runs longer.
    let out = run_json(&tree, &work, "*$sysrq", "170s");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = summary(&out);
    assert!(
        s["floods"].as_u64().unwrap() >= 2,
        "a flooding VM is given up on, again after each restart: {s}"
    );
    let floods = events(&out, "vm-flooded");
    assert!(!floods.is_empty(), "{}", stdout_of(&out));
    // The storm is kept for a look (and capped), not titled as a crash.
    let log = PathBuf::from(floods[0]["log"].as_str().unwrap());
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        (2 << 20..=65 << 20).contains(&size),
        "{}: {size}",
        log.display()
    );
    assert!(s["crashes"].as_array().unwrap().is_empty(), "{s}");
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}

/// `(path, text)` of every `*.syz` file under `dir`.
fn programs(dir: &Path) -> BTreeMap<PathBuf, String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "syz"))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

#[test]
fn a_corpus_survives_sigkill_at_twenty_random_moments_losing_no_announced_program_or_crash() {
    let (_tmp, tree) = common::private_test_tree();
    let work = tree.join("work");
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    // A program that warns at once: every run re-triages it first, so crashes are being saved
    // around many of the kills.
    std::fs::write(
        corpus.join("warn.syz"),
        "r0 = openat$lkdtm(0xffffffffffffff9c, &(0x20000000)='/sys/kernel/debug/provoke-crash/DIRECT\\x00', 0x1, 0x0)\nwrite$lkdtm(r0, &(0x20000040)='WARNING\\x00', 0x8)\n",
    )
    .unwrap();
    let seed: u64 = std::env::var("KFUZZ_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    eprintln!("kill moments from seed {seed} (KFUZZ_FAULT_SEED)");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let bin = assert_cmd::cargo::cargo_bin("kfuzz");
    let mut announced: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut crash_dirs: Vec<PathBuf> = Vec::new();
    for round in 0..20 {
        let mut child = Command::new(&bin)
            .args(["run", "--syscalls", "shm*,msg*,*lkdtm*", "--vms", "1"])
            .args(["--no-reproduce", "--message-format", "json", "--workdir"])
            .arg(&work)
            .current_dir(&tree)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        // The longest test here: it is named to start first, beside the three others in turn.
        let moment = Duration::from_millis(rng.gen_range(300..25_000));
        let until = Instant::now() + moment;
        // What is announced before the kill must be there, whole, after it.
        while let Ok(v) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            match v["reason"].as_str() {
                Some("corpus-added") => {
                    let p = PathBuf::from(v["path"].as_str().unwrap());
                    let text = std::fs::read_to_string(&p).unwrap();
                    announced.insert(p, text);
                }
                Some("crash") => crash_dirs.push(PathBuf::from(v["dir"].as_str().unwrap())),
                _ => {}
            }
            if Instant::now() >= until {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        reader.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !common::qemus_in(&tree.join(".kfuzz")).is_empty() {
            assert!(
                Instant::now() < deadline,
                "round {round}: QEMU outlived kfuzz"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let now = programs(&corpus);
        for (p, text) in &announced {
            assert_eq!(
                now.get(p),
                Some(text),
                "round {round} (killed after {moment:?}): {} lost or damaged",
                p.display()
            );
        }
        for d in &crash_dirs {
            let title = std::fs::read_to_string(d.join("description")).unwrap();
            assert!(!title.trim().is_empty(), "{}", d.display());
            assert!(d.join("log0").is_file(), "{}", d.display());
        }
    }
    eprintln!(
        "{} corpus programs and {} crashes announced over 20 kills",
        announced.len(),
        crash_dirs.len()
    );
    assert!(announced.len() >= 5, "too few programs saved to test much");
    assert!(!crash_dirs.is_empty(), "no crash was saved to test");
    // Everything left behind loads: no half-written program, no stray temporary file.
    let out = kfuzz()
        .args(["run", "--syscalls", "shm*,msg*,*lkdtm*", "--vms", "1"])
        .args(["--no-reproduce", "--duration", "10s", "--workdir"])
        .arg(&work)
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("(0 skipped)"), "{err}");
    let loaded: usize = err
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("Loaded ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{err}"));
    assert!(loaded > announced.len(), "{loaded} loaded:\n{err}");
}

#[test]
fn a_full_disk_stops_the_run_with_a_clear_error_and_keeps_the_corpus() {
    let (_tmp, tree) = common::private_test_tree();
    let scratch = tempfile::tempdir().unwrap();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let kept = scratch.path().join("kept");
    // The work dir is a 1 MiB tmpfs in a mount namespace of the test's own (it goes away with
    // the shell): the corpus gets two programs, then the disk is filled to the last page, then
    // kfuzz runs. Afterwards the work dir is copied out for a look.
    let script = r#"
set -e
work="$1"; seeds="$2"; kept="$3"; kfuzz="$4"
mkdir -p "$work"
mount -t tmpfs -o size=1m tmpfs "$work"
mkdir "$work/corpus"
cp "$seeds/gen-1-shm.syz" "$seeds/gen-2-msg.syz" "$work/corpus/"
dd if=/dev/zero of="$work/filler" bs=4k 2>/dev/null || true
set +e
"$kfuzz" run --syscalls 'shm*,msg*' --vms 1 --no-reproduce --duration 300s --workdir "$work" 2>"$kept.err"
echo $? >"$kept.rc"
cp -a "$work" "$kept"
"#;
    let unshare: &[&str] = if unsafe { libc::geteuid() } == 0 {
        &["--mount", "--propagation", "private"]
    } else {
        &[
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ]
    };
    let status = Command::new("unshare")
        .args(unshare)
        .args(["sh", "-c", script, "sh"])
        .arg(tree.join("work"))
        .arg(&seeds)
        .arg(&kept)
        .arg(assert_cmd::cargo::cargo_bin("kfuzz"))
        .current_dir(&tree)
        .status()
        .unwrap();
    assert!(status.success(), "the namespace script failed");
    let err = std::fs::read_to_string(kept.with_extension("err")).unwrap();
    let rc = std::fs::read_to_string(kept.with_extension("rc")).unwrap();
    assert_eq!(rc.trim(), "1", "{err}");
    let last = err
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        err.contains("error: cannot save a corpus program")
            && err.contains("No space left on device")
            && err.contains(&tree.join("work/corpus").display().to_string()),
        "{last}\n{err}"
    );
    // What was there is whole, and nothing half-written is left beside it.
    let now = programs(&kept.join("corpus"));
    for seed in ["gen-1-shm.syz", "gen-2-msg.syz"] {
        assert_eq!(
            now.get(&kept.join("corpus").join(seed)),
            Some(&std::fs::read_to_string(seeds.join(seed)).unwrap())
        );
    }
    for p in std::fs::read_dir(kept.join("corpus")).unwrap().flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".syz") || name.ends_with(".meta.json"),
            "left behind: {name}"
        );
    }
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}
