//! Console log → crash reports: where an oops starts and ends, its title in syzkaller's scheme
//! (`KASAN: slab-use-after-free Read in shm_lock`) that groups crashes, alternative titles, its
//! kind, and whether it is too damaged to trust. Pure text processing, no I/O; judged against
//! real console logs in `tests/fixtures/reports/` and against syzkaller's own test logs
//! (`tests/integration/report_agreement.rs`).
//!
//! The pieces: `console` takes a line apart, `extent` finds a report's lines, `formats` is the
//! table of known reports, `frames`, `skip` and `stack` choose the function a title names, `title`
//! fills in and scrubs titles, `kind` classifies them.

mod console;
mod extent;
mod formats;
mod frames;
mod kind;
mod skip;
mod stack;
mod title;

pub mod symbolize;

use serde::Serialize;

pub use console::{program_marker, strip_prefix};
pub use kind::CrashKind;
/// The functions titles never name, by family: for tools that explain why a title names the
/// function it does.
pub use skip::{SkipFamily, SKIP_FAMILIES};

use console::ConsoleLine;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrashReport {
    pub title: String,
    /// Other titles the same bug may carry (`bad-access in f`, the frame with its syscall
    /// prefix, …): a crash matches a known bug if any title does.
    pub alt_titles: Vec<String>,
    /// The function the title names, if it names one.
    pub frame: Option<String>,
    pub kind: CrashKind,
    /// The report's lines, with a few lines of the same task before it, prefixes (timestamps,
    /// caller ids) removed.
    pub report: String,
    /// 1-based line in the log where the report starts.
    pub line: usize,
    /// The log ends before the report does.
    pub truncated: bool,
    /// The report is damaged (cut off, interleaved with other output, no usable frame): its
    /// title may not be the bug's.
    pub corrupted: bool,
}

/// Reports read from one log at most; a crashing kernel rarely prints more than a few.
const MAX_REPORTS: usize = 64;

/// A console disconnect in the middle of output: whatever was printed last is cut off.
const CONSOLE_HANGUP: &str = "serialport: VM disconnected.";

/// Every report in a console log, in order. What follows a report and belongs to it (the
/// `Kernel panic - not syncing: Fatal exception`, the register dump) is not a report of its own.
pub fn parse(log: &str) -> Vec<CrashReport> {
    let lines: Vec<ConsoleLine> = log.lines().map(ConsoleLine::new).collect();
    let hangup = log.contains(CONSOLE_HANGUP);
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < MAX_REPORTS {
        let Some((start, oops)) = extent::first_oops(&lines, from) else {
            break;
        };
        let ext = extent::extent(&lines, start);
        let own = &ext.text[..ext.own.min(ext.text.len())];
        let desc = title::describe(own, oops);
        let corrupted = desc.corrupted.is_some()
            || title::damage(&desc.title, &ext.text, desc.format).is_some()
            || hangup;
        let title = title::scrub(&desc.title);
        let mut alt_titles: Vec<String> = desc.alt_titles.iter().map(|t| title::scrub(t)).collect();
        alt_titles.sort();
        alt_titles.dedup();
        out.push(CrashReport {
            kind: CrashKind::of_title(&title),
            frame: title::frame_of(&title),
            title,
            alt_titles,
            report: format!("{}{own}", ext.prefix).trim_end().to_string(),
            line: start + 1,
            truncated: !ext.ended && ext.next.is_none() && ext.read_to == lines.len(),
            corrupted,
        });
        from = ext.next.unwrap_or(ext.read_to);
        if from <= start {
            break;
        }
    }
    out
}

/// The title of the crash in a run's console output: `wanted` when any report has it, even
/// behind another report (a WARNING the program also triggers), else the first report's.
pub fn crash_title(console: &str, wanted: Option<&str>) -> Option<String> {
    let reports = parse(console);
    reports
        .iter()
        .find(|r| Some(r.title.as_str()) == wanted)
        .or(reports.first())
        .map(|r| r.title.clone())
}

#[cfg(test)]
mod tests;
