//! Crash report parsing, judged against real console logs from our test kernels
//! (`tests/fixtures/reports/*.log`: a `TITLE:` header, `KIND:`, optionally `CORRUPTED: yes`
//! and `ALT:` lines, a blank line, then the log as captured). `TITLE: -` means the log holds no
//! crash. `ALT:` lines, when present, are the report's alternative titles, all of them. The
//! `format-*.log` fixtures are composed from the kernel's printk formats for kinds our test
//! kernels can't produce.

use std::path::Path;

#[test]
fn every_fixture_gets_its_expected_title_and_kind() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{} fixtures", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let (header, log) = text
            .split_once("\n\n")
            .expect("a header, a blank line, then the log");
        let field = |name: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let want_title = field("TITLE:").expect("TITLE: header");
        let reports = kfuzz::report::parse(log);
        let name = f.file_name().unwrap().to_string_lossy();
        if want_title == "-" {
            if !reports.is_empty() {
                failures.push(format!(
                    "{name}: expected no report, got {:?}",
                    reports[0].title
                ));
            }
            continue;
        }
        let Some(r) = reports.first() else {
            failures.push(format!("{name}: no report found"));
            continue;
        };
        if r.title != want_title {
            failures.push(format!("{name}: title {:?}, want {want_title:?}", r.title));
        }
        let kind = serde_json::to_value(r.kind).unwrap();
        if Some(kind.as_str().unwrap()) != field("KIND:") {
            failures.push(format!("{name}: kind {kind}, want {:?}", field("KIND:")));
        }
        let mut want_alt: Vec<&str> = header
            .lines()
            .filter_map(|l| l.strip_prefix("ALT:"))
            .map(str::trim)
            .collect();
        if !want_alt.is_empty() {
            want_alt.sort();
            let mut got: Vec<&str> = r.alt_titles.iter().map(String::as_str).collect();
            got.sort();
            if got != want_alt {
                failures.push(format!("{name}: alt titles {got:?}, want {want_alt:?}"));
            }
        }
        if r.corrupted != (field("CORRUPTED:") == Some("yes")) {
            failures.push(format!("{name}: corrupted = {}", r.corrupted));
        }
        assert!(
            r.report.lines().count() >= 5,
            "{name}: the report text is kept"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_cut_off_report_is_flagged_truncated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let text = std::fs::read_to_string(dir.join("lkdtm-warning.log")).unwrap();
    let log = text.split_once("\n\n").unwrap().1;
    let at = log.find("WARNING: CPU").unwrap();
    let cut = &log[..at + 400];
    let r = &kfuzz::report::parse(cut)[0];
    assert_eq!(r.title, "WARNING in lkdtm_WARNING");
    assert!(r.truncated);
    let whole = &kfuzz::report::parse(log)[0];
    assert!(!whole.truncated);
}

#[test]
fn kfuzz_report_prints_titles_and_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let out = assert_cmd::Command::cargo_bin("kfuzz")
        .unwrap()
        .args(["report", "--json"])
        .arg(dir.join("lkdtm-bug.log"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &all.as_array().expect("one JSON array of reports")[0];
    assert_eq!(v["title"], "kernel BUG in lkdtm_BUG");
    assert_eq!(v["kind"], "kernel-bug");
    assert!(v["alt_titles"].is_array(), "{v}");
    let out = assert_cmd::Command::cargo_bin("kfuzz")
        .unwrap()
        .arg("report")
        .arg(dir.join("no-crash.log"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "no report: non-zero exit");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no crash report"));
}
