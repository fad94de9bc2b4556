//! The report parser's stories: whole logs, titles of each kind, and the title moving past
//! each family of skipped functions to the caller.

use super::*;

/// A console log of `tests/fixtures/reports/`.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_wanted_crash_counts_behind_another_report() {
    let first = fixture("fuzz-refcount-warning.log");
    let second = fixture("lkdtm-warning-message.log");
    let both = format!("{first}{second}");
    let t1 = crash_title(&first, None).unwrap();
    let t2 = crash_title(&second, None).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(crash_title(&both, Some(&t2)).as_deref(), Some(t2.as_str()));
    assert_eq!(crash_title(&both, Some(&t1)).as_deref(), Some(t1.as_str()));
    // Another crash than the one looked for: the first report names the run.
    assert_eq!(
        crash_title(&both, Some("BUG: other")).as_deref(),
        Some(t1.as_str())
    );
    assert_eq!(crash_title(&fixture("no-crash.log"), Some(&t1)), None);
}

#[test]
fn a_bug_reported_while_booting_is_named() {
    assert_eq!(
        crash_title(&fixture("boot-kasan-wild-memory-access.log"), None).as_deref(),
        Some("KASAN: wild-memory-access Write in handle_edge_irq")
    );
    assert_eq!(crash_title(&fixture("no-crash.log"), None), None);
}

#[test]
fn the_echoed_command_line_is_no_report() {
    let log = "[    0.910529][    T0] Kernel command line: console=ttyS0 x=\"BUG: KASAN: no in f\"\n\
               [    0.923633][    T0] Unknown kernel command line parameters \"x=BUG: KASAN: no in f\", will be passed to user space.\n";
    assert!(parse(log).is_empty(), "{:?}", parse(log));
}
