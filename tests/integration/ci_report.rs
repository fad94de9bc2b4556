//! `kfuzz regress`'s kernel CI formats from results built here (no kernel, no VM): the KTAP
//! output read back by our KTAP reader, and the KCIDB JSON validated against our JSON Schema
//! of the facts we rely on (tests/fixtures/kcidb/). scripts/check-kcidb.sh checks the sample
//! this writes against the real KCIDB schema.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use kfuzz::ci_report::ktap_reader::{self, Counts, Directive};
use kfuzz::ci_report::provenance::TestedKernel;
use kfuzz::ci_report::{kcidb, ktap, CoverageSummary, ProgramRun, RegressRun};
use kfuzz::regress::{ItemResult, Verdict};
use serde_json::Value;

const KASAN: &str = "KASAN: slab-use-after-free Read in shm_lock";
const GPF: &str = "general protection fault in lkdtm_EXCEPTION";
const WARN: &str = "WARNING in do_msgsnd";

fn result(path: &str, verdict: Verdict, title: Option<&str>) -> ItemResult {
    ItemResult {
        path: PathBuf::from(path),
        verdict,
        title: title.map(String::from),
        report: title.map(|t| format!("{t}\nCall Trace:\n <TASK>\n dump_stack+0x10/0x20\n")),
        recorded_cover: 0,
        lost_cover: 0,
        lost: Vec::new(),
        seconds: 1.5,
        reached: Vec::new(),
        cover: HashSet::new(),
        pcs: HashSet::new(),
    }
}

/// A run with one of everything: a clean program, one that lost coverage, a new crash, a
/// still-broken reproducer, a fixed one, one that crashed differently, one not run, a
/// skipped program, and lost coverage over the threshold.
struct Fixture {
    results: Vec<ItemResult>,
    repro_of: Vec<Option<&'static str>>,
    skipped: Vec<(PathBuf, String)>,
    by_file: Vec<(String, usize, Vec<String>)>,
}

fn fixture() -> Fixture {
    let mut lossy = result("/c/corpus/lossy.syz", Verdict::Ok, None);
    lossy.recorded_cover = 40;
    lossy.lost_cover = 3;
    lossy.lost = vec![
        "do_shmat+0x1a".into(),
        "do_shmat+0x2b".into(),
        "mas_walk+0x10".into(),
    ];
    let mut error = result("/c/corpus/never.syz", Verdict::Error, None);
    error.report = Some("not run: the VMs failed to boot".into());
    let results = vec![
        result("/c/corpus/gen-1-shm.syz", Verdict::Ok, None),
        lossy,
        result("/c/corpus/crasher.syz", Verdict::NewCrash, Some(KASAN)),
        result(
            "/w/crashes/0123abcd/repro.syz",
            Verdict::StillBroken,
            Some(GPF),
        ),
        result("/w/crashes/4567ef01/repro.syz", Verdict::Fixed, None),
        result(
            "/w/crashes/89ab2345/repro.syz",
            Verdict::OtherCrash,
            Some(KASAN),
        ),
        error,
    ];
    let repro_of = vec![None, None, None, Some(GPF), Some(WARN), Some(WARN), None];
    Fixture {
        results,
        repro_of,
        skipped: vec![(
            PathBuf::from("/c/corpus/old # format.syz"),
            "1:1: unknown call 'ioctl$OLD'\nline two".into(),
        )],
        by_file: vec![
            ("lib/maple_tree.c".into(), 215, vec!["mas_walk".into()]),
            (
                "ipc/shm.c".into(),
                54,
                vec!["do_shmat".into(), "shm_lock".into()],
            ),
        ],
    }
}

fn run(f: &Fixture, lost: usize, recorded: usize) -> RegressRun<'_> {
    RegressRun {
        programs: f
            .results
            .iter()
            .zip(&f.repro_of)
            .map(|(result, r)| ProgramRun {
                result,
                repro_of: *r,
            })
            .collect(),
        skipped: &f.skipped,
        coverage: CoverageSummary {
            lost,
            recorded,
            judged_percent: 100.0 * lost as f64 / recorded.max(1) as f64,
            threshold_percent: 5.0,
            by_file: &f.by_file,
        },
        seconds: 27.0,
    }
}

#[test]
fn ktap_output_reads_back_with_one_test_per_program() {
    let f = fixture();
    let text = ktap::write(&run(&f, 269, 3669));
    let sample = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-sample.ktap");
    std::fs::write(sample, &text).unwrap();
    let doc = ktap_reader::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(doc.version, "KTAP version 1");
    assert_eq!(doc.plan, Some(9), "{text}");
    let names: Vec<&str> = doc.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gen-1-shm",
            "lossy",
            "crasher",
            "repro-0123abcd",
            "repro-4567ef01",
            "repro-89ab2345",
            "never",
            "old___format",
            "coverage"
        ]
    );
    // ok: gen-1-shm, lossy, the fixed reproducer; not ok: the three crashes, the one not
    // run, the coverage over the threshold; skipped: the program that does not parse.
    assert_eq!(
        doc.counts(),
        Counts {
            pass: 3,
            fail: 5,
            skip: 1
        }
    );
    assert!(doc
        .trailing
        .iter()
        .any(|d| d == "Totals: pass:3 fail:5 skip:1 total:9"));
    let test = |name: &str| doc.test(name).unwrap();
    let said = |name: &str, what: &str| test(name).diagnostics.iter().any(|d| d.contains(what));
    assert!(said("crasher", &format!("new crash: {KASAN}")));
    assert!(said("crasher", "Call Trace:"));
    assert!(said("crasher", "/c/corpus/crasher.syz"));
    assert!(said("repro-0123abcd", &format!("still broken: {GPF}")));
    assert!(said(
        "repro-4567ef01",
        &format!("fixed: no longer crashes with {WARN}")
    ));
    assert!(test("repro-4567ef01").ok);
    assert!(said("repro-89ab2345", &format!("saved for: {WARN}")));
    assert!(said(
        "lossy",
        "lost 3 of 40 recorded PCs: do_shmat+0x1a, do_shmat+0x2b, mas_walk+0x10"
    ));
    assert!(test("lossy").ok);
    let never = test("never");
    assert_eq!(
        (never.ok, never.directive, never.data.as_str()),
        (
            false,
            Some(Directive::Error),
            "not run: the VMs failed to boot"
        )
    );
    let skipped = test("old___format");
    assert!(skipped.skipped());
    assert!(
        skipped.data.contains("unknown call 'ioctl$OLD' line two"),
        "{}",
        skipped.data
    );
    let cov = test("coverage");
    assert!(!cov.ok);
    assert!(said("coverage", "269 of 3669 recorded PCs"));
    let files = cov.subtests.as_ref().unwrap();
    assert_eq!(files.plan, Some(2));
    assert_eq!(files.tests[0].name, "lib/maple_tree.c");
    assert_eq!(files.tests[0].data, "lost 215 PCs in mas_walk");
    assert_eq!(
        files.counts(),
        Counts {
            pass: 0,
            fail: 2,
            skip: 0
        }
    );
}

#[test]
fn ktap_coverage_within_the_threshold_passes_and_none_recorded_skips() {
    let f = fixture();
    let doc = ktap_reader::parse(&ktap::write(&run(&f, 3, 3669))).unwrap();
    let cov = doc.test("coverage").unwrap();
    assert!(cov.ok && !cov.skipped());
    assert_eq!(cov.subtests.as_ref().unwrap().counts().pass, 2);
    let empty = Fixture {
        by_file: Vec::new(),
        ..fixture()
    };
    let doc = ktap_reader::parse(&ktap::write(&run(&empty, 0, 0))).unwrap();
    let cov = doc.test("coverage").unwrap();
    assert!(cov.skipped() && cov.subtests.is_none());
}

fn schema_validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kcidb/kfuzz-subset.schema.json"
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn kernel() -> TestedKernel {
    TestedKernel {
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        branch: Some("shm-fix".into()),
        repository_url: Some("https://git.kernel.org/pub/scm/linux/kernel/git/x/linux.git".into()),
        compiler: Some("gcc (Debian 12.2.0-14) 12.2.0".into()),
        config_name: Some("minimal+kcov.config".into()),
        config_sha256: Some("ab".repeat(32)),
        architecture: "x86_64".into(),
    }
}

#[test]
fn kcidb_json_fits_the_schema_with_a_test_per_program_and_an_issue_per_title() {
    let f = fixture();
    let started = UNIX_EPOCH + Duration::from_secs(1_741_947_300);
    let doc = kcidb::write(&run(&f, 269, 3669), &kernel(), "run1", started);
    let v = schema_validator();
    assert_eq!(errors(&v, &doc), Vec::<String>::new(), "{doc:#}");
    // The sample scripts/check-kcidb.sh checks against the real schema.
    let sample = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kcidb-sample.json");
    std::fs::write(&sample, format!("{doc:#}\n")).unwrap();

    assert_eq!(doc["version"], serde_json::json!({"major": 5, "minor": 3}));
    let checkout = &doc["checkouts"][0];
    assert_eq!(checkout["id"], "kfuzz:run1");
    assert_eq!(
        checkout["git_commit_hash"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(checkout["start_time"], "2025-03-14T10:15:00.000000+00:00");
    let build = &doc["builds"][0];
    assert_eq!(build["checkout_id"], "kfuzz:run1");
    assert_eq!(build["architecture"], "x86_64");
    assert_eq!(build["compiler"], "gcc (Debian 12.2.0-14) 12.2.0");
    let tests = doc["tests"].as_array().unwrap();
    let status: Vec<(&str, &str)> = tests
        .iter()
        .map(|t| (t["path"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("kfuzz.regress.gen-1-shm", "PASS"),
            ("kfuzz.regress.lossy", "PASS"),
            ("kfuzz.regress.crasher", "FAIL"),
            ("kfuzz.regress.repro-0123abcd", "FAIL"),
            ("kfuzz.regress.repro-4567ef01", "PASS"),
            ("kfuzz.regress.repro-89ab2345", "FAIL"),
            ("kfuzz.regress.never", "ERROR"),
            ("kfuzz.regress.old___format", "SKIP"),
            ("kfuzz.regress.coverage", "FAIL"),
        ]
    );
    assert!(tests.iter().all(|t| t["build_id"] == "kfuzz:run1"));
    assert_eq!(tests[2]["duration"], 1.5);
    assert!(tests[2]["log_excerpt"].as_str().unwrap().starts_with(KASAN));
    assert_eq!(tests[1]["misc"]["lost_cover"], 3);
    // One issue per title, the title as its comment.
    let issues = doc["issues"].as_array().unwrap();
    let mut titles: Vec<&str> = issues
        .iter()
        .map(|i| i["comment"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, [KASAN, WARN, GPF]);
    let issue_of = |title: &str| kcidb::issue_id(title);
    // Incidents: the crashes present in their tests, the reproducers' titles absent from
    // the fixed one and the one that crashed differently.
    let incidents: HashSet<(String, String, bool)> = doc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["build_id"], "kfuzz:run1");
            assert_eq!(i["issue_version"], 1);
            (
                i["issue_id"].as_str().unwrap().to_string(),
                i["test_id"].as_str().unwrap().to_string(),
                i["present"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: HashSet<(String, String, bool)> = [
        (KASAN, "crasher", true),
        (GPF, "repro-0123abcd", true),
        (WARN, "repro-4567ef01", false),
        (KASAN, "repro-89ab2345", true),
        (WARN, "repro-89ab2345", false),
    ]
    .into_iter()
    .map(|(t, test, present)| (issue_of(t), format!("kfuzz:run1:{test}"), present))
    .collect();
    assert_eq!(incidents, want);
    let ids: HashSet<&str> = doc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "incident ids are unique");
}

#[test]
fn kcidb_json_without_git_or_config_still_fits_and_the_schema_is_not_vacuous() {
    let f = fixture();
    let bare = TestedKernel {
        architecture: "x86_64".into(),
        ..TestedKernel::default()
    };
    let doc = kcidb::write(&run(&f, 0, 0), &bare, "run2", UNIX_EPOCH);
    let v = schema_validator();
    assert_eq!(errors(&v, &doc), Vec::<String>::new(), "{doc:#}");
    assert!(doc["checkouts"][0].get("git_commit_hash").is_none());
    assert!(doc["builds"][0].get("compiler").is_none());
    let coverage = doc["tests"].as_array().unwrap().last().unwrap();
    assert_eq!(coverage["status"], "SKIP");
    // What the schema must refuse: a null, an unknown status, a bad path, a missing id, an
    // id without its origin.
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        edit(&mut d);
        errors(&v, &d)
    };
    assert!(!broken(&|d| d["builds"][0]["compiler"] = Value::Null).is_empty());
    assert!(!broken(&|d| d["tests"][0]["status"] = "BROKEN".into()).is_empty());
    assert!(!broken(&|d| d["tests"][0]["path"] = "kfuzz.regress.a b".into()).is_empty());
    assert!(!broken(&|d| {
        d["issues"] = serde_json::json!([{"version": 1, "origin": "kfuzz"}]);
    })
    .is_empty());
    assert!(!broken(&|d| d["checkouts"][0]["id"] = "run2".into()).is_empty());
    assert!(!broken(&|d| d["checkouts"][0]["start_time"] = "yesterday".into()).is_empty());
    assert!(!broken(&|d| d["version"]["major"] = 4.into()).is_empty());
}
