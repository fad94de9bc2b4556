//! The console report parser never panics on a console log, and what it finds is consistent: every
//! report starts inside the log, has a title, and `crash_title` names the first one.
#![no_main]
use kfuzz::report::{crash_title, parse, program_marker, strip_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The console is read lossily, as kfuzz reads a VM's serial output.
    let log = String::from_utf8_lossy(data);
    let reports = parse(&log);
    let lines = log.lines().count();
    for r in &reports {
        assert!(
            r.line >= 1 && r.line <= lines,
            "report at line {} of {lines}",
            r.line
        );
        assert!(
            !r.title.is_empty(),
            "a report without a title at line {}",
            r.line
        );
        assert!(
            !r.title.contains('\n'),
            "a title of several lines: {:?}",
            r.title
        );
    }
    assert_eq!(
        crash_title(&log, None),
        reports.first().map(|r| r.title.clone())
    );
    if let Some(r) = reports.last() {
        assert_eq!(
            crash_title(&log, Some(&r.title)).as_deref(),
            Some(r.title.as_str())
        );
    }
    for line in log.lines() {
        let _ = program_marker(line);
        let _ = strip_prefix(line);
    }
});
