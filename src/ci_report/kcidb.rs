//! `kfuzz regress --kcidb`: the results as KernelCI's KCIDB I/O JSON (schema v5.3, the one the
//! `kcidb-io` package calls latest): a checkout (the tree's commit), a build (the kernel under
//! test), a test per program under `kfuzz.regress.`, an issue per crash title and the incidents
//! that tie issues to tests. Pure: the caller says what was tested and when.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::provenance::TestedKernel;
use super::{one_line, verdict_words, ProgramRun, RegressRun, COVERAGE_TEST};
use crate::regress::Verdict;

/// The origin every id starts with (`kfuzz:…`).
pub const ORIGIN: &str = "kfuzz";
/// The schema version written.
pub const SCHEMA_MAJOR: u64 = 5;
pub const SCHEMA_MINOR: u64 = 3;
/// The test path every program's test is under.
pub const TEST_PATH: &str = "kfuzz.regress";
/// The schema's limit on a `log_excerpt`, in characters.
const LOG_EXCERPT_MAX: usize = 16384;

/// An id for one regress run: the start time and a random part, e.g. `20250314t101500z-3f9a2c1d`.
pub fn new_run_id(started: SystemTime) -> String {
    let stamp: String = rfc3339(started)
        .chars()
        .take(19)
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("{stamp}z-{:08x}", rand::random::<u32>()).to_ascii_lowercase()
}

/// The id of the issue for a crash title: the same title gives the same issue in every run, so
/// a dashboard groups its incidents.
pub fn issue_id(title: &str) -> String {
    let digest = Sha256::digest(title.as_bytes());
    format!("{ORIGIN}:crash-{}", &hex::encode(digest)[..16])
}

/// What the schema allows in a string: anything but NUL.
fn text(s: &str) -> String {
    s.replace('\0', "")
}

fn excerpt(s: &str) -> String {
    text(s).chars().take(LOG_EXCERPT_MAX).collect()
}

/// `t` as the schema's date-time, in UTC: `2025-03-14T10:15:00.123456+00:00`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let rem = secs % 86_400;
    let (year, month, day) = crate::shell::civil_date(secs);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// An object of the schema: properties the writer has no value for are left out (the schema
/// allows no `null`).
#[derive(Default)]
struct Object(Map<String, Value>);

impl Object {
    fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), v.into());
        self
    }

    fn maybe(self, key: &str, v: Option<impl Into<Value>>) -> Self {
        match v {
            Some(v) => self.set(key, v),
            None => self,
        }
    }
}

fn status(p: &ProgramRun) -> &'static str {
    match p.result.verdict {
        Verdict::Ok | Verdict::Fixed => "PASS",
        Verdict::NewCrash
        | Verdict::StillBroken
        | Verdict::OtherCrash
        | Verdict::CrashesOnBaseline => "FAIL",
        Verdict::Error => "ERROR",
    }
}

/// An issue seen (or no longer seen) by a test.
struct Sighting<'a> {
    title: &'a str,
    test_id: String,
    present: bool,
}

/// The whole submission for one run.
pub fn write(run: &RegressRun, kernel: &TestedKernel, run_id: &str, started: SystemTime) -> Value {
    let checkout_id = format!("{ORIGIN}:{run_id}");
    let build_id = format!("{ORIGIN}:{run_id}");
    let start_time = rfc3339(started);
    let commit = kernel
        .commit
        .as_deref()
        .filter(|c| c.len() == 40 && c.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase);
    let checkout = Object::default()
        .set("id", checkout_id.clone())
        .set("origin", ORIGIN)
        .maybe("git_commit_hash", commit)
        .maybe(
            "git_repository_url",
            kernel
                .repository_url
                .as_deref()
                .filter(|u| u.starts_with("https://"))
                .map(text),
        )
        .maybe("git_repository_branch", kernel.branch.as_deref().map(text))
        .set("start_time", start_time.clone())
        .set("valid", true);
    let build = Object::default()
        .set("id", build_id.clone())
        .set("checkout_id", checkout_id.clone())
        .set("origin", ORIGIN)
        .set("start_time", start_time.clone())
        .set("architecture", kernel.architecture.clone())
        .maybe("compiler", kernel.compiler.as_deref().map(text))
        .maybe("config_name", kernel.config_name.as_deref().map(text))
        .set("status", "PASS")
        .set("comment", "the kernel kfuzz regress replayed its corpus on")
        .maybe(
            "misc",
            kernel
                .config_sha256
                .as_ref()
                .map(|h| json!({ "config_sha256": h })),
        );
    let (names, skipped_names) = run.test_names();
    let test_id = |name: &str| format!("{ORIGIN}:{run_id}:{name}");
    let mut tests = Vec::new();
    let mut sightings: Vec<Sighting> = Vec::new();
    for (p, name) in run.programs.iter().zip(&names) {
        let r = p.result;
        let id = test_id(name);
        let mut misc = Map::new();
        misc.insert("verdict".into(), json!(r.verdict));
        misc.insert("program".into(), json!(text(&r.path.display().to_string())));
        if let Some(t) = p.repro_of {
            misc.insert("reproducer_of".into(), json!(text(t)));
        }
        if r.recorded_cover > 0 {
            misc.insert("recorded_cover".into(), json!(r.recorded_cover));
            misc.insert("lost_cover".into(), json!(r.lost_cover));
            let lost: Vec<String> = r.lost.iter().take(100).map(|k| text(k)).collect();
            misc.insert("lost".into(), json!(lost));
        }
        let comment = match (&r.verdict, r.title.as_deref()) {
            (Verdict::Ok, _) | (Verdict::Error, _) | (Verdict::Fixed, _) => {
                verdict_words(&r.verdict).to_string()
            }
            (v, Some(t)) => format!("{}: {}", verdict_words(v), one_line(t)),
            (v, None) => verdict_words(v).to_string(),
        };
        tests.push(
            Object::default()
                .set("id", id.clone())
                .set("build_id", build_id.clone())
                .set("origin", ORIGIN)
                .set("path", format!("{TEST_PATH}.{name}"))
                .set("status", status(p))
                .set("duration", r.seconds)
                .set("comment", text(&comment))
                .maybe("log_excerpt", r.report.as_deref().map(excerpt))
                .set("misc", Value::Object(misc))
                .0,
        );
        let crashed = matches!(
            r.verdict,
            Verdict::NewCrash
                | Verdict::StillBroken
                | Verdict::OtherCrash
                | Verdict::CrashesOnBaseline
        );
        if let (true, Some(t)) = (crashed, r.title.as_deref()) {
            sightings.push(Sighting {
                title: t,
                test_id: id.clone(),
                present: true,
            });
        }
        // A reproducer that did not crash with its title: that issue is absent here.
        if let (Verdict::Fixed | Verdict::OtherCrash, Some(t)) = (&r.verdict, p.repro_of) {
            sightings.push(Sighting {
                title: t,
                test_id: id,
                present: false,
            });
        }
    }
    for ((path, why), name) in run.skipped.iter().zip(&skipped_names) {
        tests.push(
            Object::default()
                .set("id", test_id(name))
                .set("build_id", build_id.clone())
                .set("origin", ORIGIN)
                .set("path", format!("{TEST_PATH}.{name}"))
                .set("status", "SKIP")
                .set(
                    "comment",
                    text(&format!(
                        "not replayed: it does not fit the current descriptions: {}",
                        one_line(why)
                    )),
                )
                .set(
                    "misc",
                    json!({ "program": text(&path.display().to_string()) }),
                )
                .0,
        );
    }
    tests.push(coverage_test(run, &test_id(COVERAGE_TEST), &build_id));
    // One issue per title, in title order; its incidents in test order.
    let mut issues: BTreeMap<&str, String> = BTreeMap::new();
    for s in &sightings {
        issues.entry(s.title).or_insert_with(|| issue_id(s.title));
    }
    let incidents: Vec<Value> = sightings
        .iter()
        .filter_map(|s| {
            let issue = issues.get(s.title)?;
            let issue_hash = issue.rsplit('-').next().unwrap_or(issue);
            Some(
                Object::default()
                    .set("id", format!("{}:{issue_hash}", s.test_id))
                    .set("origin", ORIGIN)
                    .set("issue_id", issue.clone())
                    .set("issue_version", 1)
                    .set("build_id", build_id.clone())
                    .set("test_id", s.test_id.clone())
                    .set("present", s.present)
                    .0
                    .into(),
            )
        })
        .collect();
    let issues: Vec<Value> = issues
        .iter()
        .map(|(title, id)| {
            Object::default()
                .set("id", id.clone())
                .set("version", 1)
                .set("origin", ORIGIN)
                .set("comment", text(&one_line(title)))
                .0
                .into()
        })
        .collect();
    json!({
        "version": { "major": SCHEMA_MAJOR, "minor": SCHEMA_MINOR },
        "checkouts": [checkout.0],
        "builds": [build.0],
        "tests": tests,
        "issues": issues,
        "incidents": incidents,
    })
}

/// The corpus's coverage as one test: FAIL over the threshold, SKIP with nothing recorded.
fn coverage_test(run: &RegressRun, id: &str, build_id: &str) -> Map<String, Value> {
    let c = &run.coverage;
    let status = if c.recorded == 0 {
        "SKIP"
    } else if c.exceeded() {
        "FAIL"
    } else {
        "PASS"
    };
    let by_file: Vec<Value> = c
        .by_file
        .iter()
        .map(|(g, n, f)| json!({ "file": text(g), "lost": n, "functions": f }))
        .collect();
    Object::default()
        .set("id", id)
        .set("build_id", build_id)
        .set("origin", ORIGIN)
        .set("path", format!("{TEST_PATH}.{COVERAGE_TEST}"))
        .set("status", status)
        .set("duration", run.seconds)
        .set(
            "comment",
            format!(
                "{} of {} recorded PCs no longer reached ({:.1}%); judged {:.1}% against the \
                 threshold {}%",
                c.lost,
                c.recorded,
                c.lost_percent(),
                c.judged_percent,
                c.threshold_percent
            ),
        )
        .set(
            "misc",
            json!({
                "lost_cover": c.lost,
                "recorded_cover": c.recorded,
                "judged_percent": c.judged_percent,
                "threshold_percent": c.threshold_percent,
                "lost_by_file": by_file,
            }),
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000+00:00");
        let t = UNIX_EPOCH + Duration::from_micros(1_709_164_800_250_000);
        assert_eq!(rfc3339(t), "2024-02-29T00:00:00.250000+00:00");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_799);
        assert_eq!(rfc3339(t), "2000-02-29T23:59:59.000000+00:00");
    }

    #[test]
    fn run_ids_are_lowercase_and_start_with_the_time() {
        let id = new_run_id(UNIX_EPOCH + Duration::from_secs(86_400 + 3_661));
        assert!(id.starts_with("19700102t010101z-"), "{id}");
        assert_eq!(id.len(), "19700102t010101z-".len() + 8);
    }

    #[test]
    fn one_title_one_issue_id() {
        assert_eq!(issue_id("BUG: x"), issue_id("BUG: x"));
        assert_ne!(issue_id("BUG: x"), issue_id("BUG: y"));
        assert!(issue_id("BUG: x").starts_with("kfuzz:crash-"));
    }
}
