//! The report parser's stories: whole logs, reports cut off or interleaved, huge logs. Titles
//! of each kind are in `kinds.rs`, the title moving past skipped functions in `skipping.rs`.

mod kinds;
mod skipping;

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

/// The title and kind of the first report in `log` (lines joined with `\n`).
pub(super) fn first(log: &[&str]) -> (String, CrashKind, bool) {
    let reports = parse(&log.join("\n"));
    let r = reports
        .first()
        .unwrap_or_else(|| panic!("no report in {log:#?}"));
    (r.title.clone(), r.kind, r.corrupted)
}

#[test]
fn a_report_without_frames_is_corrupted() {
    let (title, _, corrupted) = first(&[
        "WARNING: CPU: 0 PID: 1 at net/foo.c:12 foo_check+0x1/0x2",
        "Modules linked in:",
    ]);
    // The title's function comes from the stack, not from the WARNING line.
    assert_eq!(title, "WARNING in corrupted");
    assert!(corrupted);
}

#[test]
fn interleaved_output_of_another_task_stays_out_of_the_report() {
    let (title, ..) = first(&[
        "[   10.1][  T100] WARNING: CPU: 0 PID: 100 at net/foo.c:12 foo_check+0x1/0x2",
        "[   10.1][  T200] RIP: 0010:other_task+0x1/0x2",
        "[   10.1][  T100] RIP: 0010:foo_check+0x1/0x2",
        "[   10.1][  T100] Call Trace:",
        "[   10.1][  T200]  other_caller+0x1/0x2",
        "[   10.1][  T100]  foo_ioctl+0x1/0x2",
    ]);
    assert_eq!(title, "WARNING in foo_check");
}

#[test]
fn the_panic_after_a_report_is_part_of_it() {
    let log = [
        "WARNING: CPU: 0 PID: 1 at net/foo.c:12 foo_check+0x1/0x2",
        "RIP: 0010:foo_check+0x1/0x2",
        "Call Trace:",
        " foo_ioctl+0x1/0x2",
        "---[ end trace 0000000000000000 ]---",
        "Kernel panic - not syncing: panic_on_warn set ...",
    ]
    .join("\n");
    let reports = parse(&log);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(!reports[0].truncated);
    // Seen alone, the panic names a lost report.
    let (title, _, corrupted) = first(&["Kernel panic - not syncing: panic_on_warn set ..."]);
    assert_eq!(title, "kernel panic: panic_on_warn set");
    assert!(corrupted);
}

#[test]
fn a_huge_log_is_read_in_bounded_time() {
    let mut log = String::new();
    for i in 0..200_000 {
        log.push_str(&format!(
            "[ {i}.000000][  T1] WARNING: CPU: 0 PID: 1 at net/foo.c:{i} foo_check+0x1/0x2\n"
        ));
    }
    let started = std::time::Instant::now();
    let reports = parse(&log);
    assert!(reports.len() <= 64);
    // Long reports whose details never come: every format searches all of each.
    let mut log = String::new();
    for _ in 0..70 {
        log.push_str("[ 1.000000][  T1] BUG: KASAN: slab-out-of-bounds in f+0x1/0x2\n");
        for i in 0..5000 {
            log.push_str(&format!(
                "[ 1.000000][  T1]  filler_{i}+0x1/0x2 and more text\n"
            ));
        }
    }
    let reports = parse(&log);
    assert_eq!(reports.len(), 64);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_next_program_ends_a_report() {
    let log = [
        "[   10.1][  T100] WARNING: CPU: 0 PID: 100 at net/foo.c:12 foo_check+0x1/0x2",
        "[   10.1][  T100] RIP: 0010:foo_check+0x1/0x2",
        "[   10.1][  T100] Call Trace:",
        "[   10.1][  T100]  foo_ioctl+0x1/0x2",
        "[   10.2][  T100] kfuzz: executing program 8 on proc 0",
        "[   10.2][  T100] later chatter of the same task",
    ]
    .join("\n");
    let r = &parse(&log)[0];
    assert_eq!(r.title, "WARNING in foo_check");
    assert!(!r.report.contains("executing program"), "{}", r.report);
    assert!(!r.truncated);
}
