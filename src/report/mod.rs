//! Console log → crash reports: where an oops starts and ends, its kind, and a stable title
//! (`KASAN: slab-use-after-free Read in shm_lock`) that groups crashes. Pure text processing,
//! judged against real console logs in `tests/fixtures/reports/`.

pub mod symbolize;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashKind {
    Kasan,
    Bug,
    Warning,
    NullDeref,
    PageFault,
    Gpf,
    Lockdep,
    AtomicSleep,
    RcuStall,
    TaskHung,
    Ubsan,
    Panic,
    Oops,
    /// The guest printed nothing for too long.
    NoOutput,
    /// The executor stopped answering (the VM died without a recognisable report).
    LostConnection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrashReport {
    pub title: String,
    pub kind: CrashKind,
    /// The report's lines, prefixes (timestamps, caller ids) removed.
    pub report: String,
    /// 1-based line in the log where the report starts.
    pub line: usize,
    /// The log ends before the report does.
    pub truncated: bool,
    /// Part of the title could not be found (no function for it).
    pub corrupted: bool,
}

/// `[   12.345678][  T123] text` → `text` (PRINTK_TIME and PRINTK_CALLER prefixes).
/// The program id (and proc) of a `kfuzz: executing program <id> on proc <proc>` line.
pub fn program_marker(line: &str) -> Option<(u64, Option<u32>)> {
    let rest = line.split("kfuzz: executing program ").nth(1)?;
    let mut words = rest.split_whitespace();
    let id = words.next()?.parse().ok()?;
    let proc = match (words.next(), words.next()) {
        (Some("on"), Some("proc")) => words.next().and_then(|p| p.parse().ok()),
        _ => None,
    };
    Some((id, proc))
}

pub fn strip_prefix(line: &str) -> &str {
    let mut s = line.trim_end_matches('\r');
    for _ in 0..2 {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                let inner = rest[..end].trim();
                let ts = inner.chars().all(|c| c.is_ascii_digit() || c == '.') && !inner.is_empty();
                let caller = (inner.starts_with('T') || inner.starts_with('C'))
                    && inner[1..].chars().all(|c| c.is_ascii_digit())
                    && inner.len() > 1;
                if ts || caller {
                    s = &rest[end + 1..];
                    continue;
                }
            }
        }
        break;
    }
    s.strip_prefix(' ').unwrap_or(s)
}

/// Markers that start a report, in the order they are tried on each line.
fn start_kind(line: &str) -> Option<CrashKind> {
    let l = line;
    // The kernel echoes its command line, which may hold anything (`foo="BUG: KASAN: …"`).
    if l.starts_with("Kernel command line:") || l.starts_with("Unknown kernel command line") {
        return None;
    }
    Some(if l.contains("BUG: KASAN:") || l.starts_with("KASAN:") {
        CrashKind::Kasan
    } else if l.contains("BUG: kernel NULL pointer dereference") {
        CrashKind::NullDeref
    } else if l.contains("BUG: unable to handle page fault")
        || l.contains("BUG: unable to handle kernel paging request")
    {
        CrashKind::PageFault
    } else if l.contains("BUG: sleeping function called from invalid context")
        || l.contains("BUG: scheduling while atomic")
    {
        CrashKind::AtomicSleep
    } else if l.contains("kernel BUG at ")
        || l.starts_with("BUG: ")
        || l.contains("BUG: soft lockup")
    {
        CrashKind::Bug
    } else if l.contains("possible circular locking dependency detected")
        || l.contains("possible recursive locking detected")
        || l.contains("inconsistent lock state")
        || l.contains("possible irq lock inversion dependency")
        || l.contains("suspicious RCU usage")
        || l.contains("lock held when returning to user space")
        || l.contains("bad unlock balance detected")
    {
        CrashKind::Lockdep
    } else if l.starts_with("WARNING: ") {
        CrashKind::Warning
    } else if l.starts_with("general protection fault")
        || l.starts_with("Oops: general protection fault")
    {
        CrashKind::Gpf
    } else if (l.contains("INFO: rcu") || l.starts_with("rcu: INFO: rcu")) && l.contains("stall") {
        CrashKind::RcuStall
    } else if l.starts_with("INFO: task ") && l.contains("blocked for more than") {
        CrashKind::TaskHung
    } else if l.starts_with("UBSAN: ") {
        CrashKind::Ubsan
    } else if l.starts_with("Oops: ") || l.starts_with("Oops#") {
        CrashKind::Oops
    } else if l.starts_with("Kernel panic - not syncing") {
        CrashKind::Panic
    } else {
        return None;
    })
}

/// `lkdtm_BUG+0x9/0xb` → `lkdtm_BUG` (also `func.cold+…`, `func.isra.0+…`).
fn func_of(frame: &str) -> Option<String> {
    let f = frame.trim().trim_start_matches("? ");
    let name = f.split('+').next()?.trim();
    let name = name.split_whitespace().last()?;
    let name = name.split('.').next()?;
    (!name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("0x"))
    .then(|| name.to_string())
}

/// Frames that are about reporting, not about the bug.
const SKIP_FRAMES: &[&str] = &[
    "dump_stack",
    "dump_stack_lvl",
    "show_stack",
    "__schedule_bug",
    "__warn",
    "warn_slowpath_fmt",
    "report_bug",
    "handle_bug",
    "exc_invalid_op",
    "asm_exc_invalid_op",
    "__might_sleep",
    "__might_resched",
    "___might_sleep",
    "might_sleep",
    "panic",
    "print_report",
    "kasan_report",
    "__asan_load",
    "__asan_store",
    "check_noncircular",
    "lockdep_",
    "__lock_acquire",
    "lock_acquire",
    "rcu_dump_cpu_stacks",
    "print_cpu_stall",
    "sched_show_task",
    "watchdog",
    "__schedule",
    "schedule",
    "__sanitizer_cov_trace_pc",
    "lkdtm_do_action",
    "direct_entry",
    "full_proxy_write",
];

fn first_frame(lines: &[&str]) -> Option<String> {
    let start = lines.iter().position(|l| l.trim() == "Call Trace:")?;
    lines[start + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.starts_with('<') && !l.starts_with("? ") && l.contains('+'))
        .filter_map(func_of)
        .find(|f| {
            !SKIP_FRAMES
                .iter()
                .any(|s| f == s || (s.ends_with('_') && f.starts_with(s)))
                && !f.starts_with("__asan_")
                && !f.starts_with("kasan_")
        })
}

fn rip_func(lines: &[&str]) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("RIP: 0010:").and_then(func_of))
}

fn title(kind: CrashKind, lines: &[&str]) -> (String, bool) {
    let first = lines[0].trim();
    let with = |prefix: &str, f: Option<String>| match f {
        Some(f) => (format!("{prefix} in {f}"), false),
        None => (prefix.to_string(), true),
    };
    match kind {
        CrashKind::Kasan => {
            let rest = first.split("KASAN: ").nth(1).unwrap_or("");
            let (what, func) = match rest.split_once(" in ") {
                Some((w, f)) => (w.trim(), func_of(f)),
                None => (rest.trim(), None),
            };
            let access = lines.iter().find_map(|l| {
                let l = l.trim();
                if l.starts_with("Read of size") {
                    Some("Read")
                } else if l.starts_with("Write of size") {
                    Some("Write")
                } else {
                    None
                }
            });
            let prefix = match access {
                Some(a) => format!("KASAN: {what} {a}"),
                None => format!("KASAN: {what}"),
            };
            with(&prefix, func)
        }
        CrashKind::Bug if first.contains("kernel BUG at ") => {
            with("kernel BUG", rip_func(lines).or_else(|| first_frame(lines)))
        }
        CrashKind::Bug if first.contains("BUG: soft lockup") => with(
            "BUG: soft lockup",
            rip_func(lines).or_else(|| first_frame(lines)),
        ),
        CrashKind::Bug => {
            let what = first.trim_end_matches(['!', ':']).to_string();
            let what = what.split(" at ").next().unwrap_or(&what).to_string();
            with(&what, rip_func(lines).or_else(|| first_frame(lines)))
        }
        CrashKind::NullDeref => with("BUG: kernel NULL pointer dereference", rip_func(lines)),
        CrashKind::PageFault => with(
            "BUG: unable to handle kernel paging request",
            rip_func(lines),
        ),
        CrashKind::AtomicSleep => {
            let what = if first.contains("scheduling while atomic") {
                "BUG: scheduling while atomic"
            } else {
                "BUG: sleeping function called from invalid context"
            };
            with(what, first_frame(lines))
        }
        CrashKind::Warning => {
            // WARNING: CPU: 0 PID: 33 at drivers/x.c:112 func+0x2b/0x33
            let f = first
                .split(" at ")
                .nth(1)
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(func_of);
            with("WARNING", f.or_else(|| rip_func(lines)))
        }
        CrashKind::Gpf => with("general protection fault", rip_func(lines)),
        CrashKind::Lockdep => {
            let what = if first.contains("circular") || first.contains("recursive") {
                "possible deadlock"
            } else if first.contains("lock held when returning to user space") {
                "WARNING: lock held when returning to user space"
            } else if first.contains("bad unlock balance") {
                "WARNING: bad unlock balance"
            } else if first.contains("inconsistent lock state") {
                "inconsistent lock state"
            } else if first.contains("suspicious RCU usage") {
                "suspicious RCU usage"
            } else {
                "possible irq lock inversion"
            };
            let f = lines
                .iter()
                .find_map(|l| l.split(", at: ").nth(1).and_then(func_of))
                .or_else(|| first_frame(lines));
            with(what, f)
        }
        CrashKind::RcuStall => with(
            "INFO: rcu detected stall",
            rip_func(lines).or_else(|| first_frame(lines)),
        ),
        CrashKind::TaskHung => with("INFO: task hung", first_frame(lines)),
        CrashKind::Ubsan => {
            let what = first.split(" in ").next().unwrap_or(first);
            with(what, first_frame(lines))
        }
        CrashKind::Oops => {
            let what = first
                .trim_start_matches("Oops: ")
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let what = if what.is_empty() {
                "Oops".to_string()
            } else {
                format!("Oops: {what}")
            };
            with(&what, rip_func(lines))
        }
        CrashKind::Panic => {
            let msg = first
                .trim_start_matches("Kernel panic - not syncing:")
                .trim();
            (format!("kernel panic: {msg}"), false)
        }
        CrashKind::NoOutput => ("no output from the guest".into(), false),
        CrashKind::LostConnection => ("lost connection to the guest".into(), false),
    }
}

fn is_end(line: &str) -> bool {
    line.starts_with("---[ end trace")
        || line.starts_with("---[ end Kernel panic")
        || line.starts_with("Kernel Offset:")
        || line.starts_with("kfuzz: executing program")
}

/// Every report in a console log, in order. A `Kernel panic` that follows a report (the usual
/// `Fatal exception` after an oops) belongs to that report.
pub fn parse(log: &str) -> Vec<CrashReport> {
    let lines: Vec<&str> = log.lines().map(strip_prefix).collect();
    let mut out: Vec<CrashReport> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(mut kind) = start_kind(lines[i].trim_start()) else {
            i += 1;
            continue;
        };
        if kind == CrashKind::Panic && !out.is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        // "Oops: …" directly after a more specific marker belongs to it.
        if kind == CrashKind::Oops && start > 0 {
            if let Some(k) = lines[start.saturating_sub(3)..start]
                .iter()
                .rev()
                .find_map(|l| start_kind(l.trim_start()))
            {
                kind = k;
            }
        }
        let mut end = start + 1;
        let mut ended = false;
        while end < lines.len() && end - start < 300 {
            let l = lines[end].trim_start();
            if is_end(l) {
                ended = !l.starts_with("kfuzz: executing program");
                if ended {
                    end += 1;
                }
                break;
            }
            // A new, different report starts (not a continuation like Oops after BUG).
            if let Some(k) = start_kind(l) {
                if !matches!(k, CrashKind::Oops | CrashKind::Panic) && end - start > 2 {
                    break;
                }
            }
            end += 1;
        }
        let body = &lines[start..end];
        let truncated = !ended && end >= lines.len() && !body.iter().any(|l| l.trim() == "</TASK>");
        let (title, corrupted) = title(kind, body);
        out.push(CrashReport {
            title,
            kind,
            report: body.join("\n"),
            line: start + 1,
            truncated,
            corrupted,
        });
        i = end;
        // The register dump repeated after `end trace` and the final panic are part of it.
        while i < lines.len()
            && start_kind(lines[i].trim_start())
                .is_none_or(|k| k == CrashKind::Panic || k == CrashKind::Oops)
        {
            if start_kind(lines[i].trim_start()) == Some(CrashKind::Panic) {
                i += 1;
                continue;
            }
            if lines[i].starts_with("kfuzz: executing program") {
                break;
            }
            i += 1;
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
mod tests {
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
            Some("KASAN: wild-memory-access Write in do_raw_spin_lock")
        );
        assert_eq!(crash_title(&fixture("no-crash.log"), None), None);
    }

    #[test]
    fn the_echoed_command_line_is_no_report() {
        let log = "[    0.910529][    T0] Kernel command line: console=ttyS0 x=\"BUG: KASAN: no in f\"\n\
                   [    0.923633][    T0] Unknown kernel command line parameters \"x=BUG: KASAN: no in f\", will be passed to user space.\n";
        assert!(parse(log).is_empty(), "{:?}", parse(log));
    }

    #[test]
    fn prefixes_are_stripped() {
        assert_eq!(
            strip_prefix("[    8.904421][   T33] lkdtm: Performing"),
            "lkdtm: Performing"
        );
        assert_eq!(strip_prefix("[    8.904421] WARNING: x"), "WARNING: x");
        assert_eq!(strip_prefix("no prefix"), "no prefix");
        assert_eq!(strip_prefix("[ end ] kept"), "[ end ] kept");
    }

    #[test]
    fn frames_name_their_function() {
        assert_eq!(func_of("lkdtm_BUG+0x9/0xb").as_deref(), Some("lkdtm_BUG"));
        assert_eq!(
            func_of(" ? shm_lock.isra.0+0x10/0x20").as_deref(),
            Some("shm_lock")
        );
        assert_eq!(func_of("0x47b7a0").as_deref(), None);
    }
}
