//! Where a report starts and what belongs to it: the first line that matches an oops header,
//! then the lines of the same task (or CPU) that follow, up to the next report — or, when the
//! kernel prints no caller ids, up to the next report on the console. Also drops the panic and
//! lockdep noise that follows a long enough report.

use super::console::{program_marker, ConsoleLine, Context};
use super::formats::{oops_of_line, CompiledOops, CONTINUATIONS, STACK_NOISE};

/// At most this many lines are read for one report: a report is a few hundred lines, and
/// reading on for a task's every later line would make a huge log quadratic.
const MAX_REPORT_LINES: usize = 4000;

/// The kernel echoes its command line, which may hold anything (`foo="BUG: KASAN: …"`).
fn is_echo(line: &str) -> bool {
    line.contains("Kernel command line:") || line.contains("Unknown kernel command line")
}

/// The oops a console line starts, if it starts one.
pub fn oops_at(lines: &[ConsoleLine], i: usize) -> Option<&'static CompiledOops> {
    let line = lines.get(i)?.raw;
    if is_echo(line) {
        return None;
    }
    let oops = oops_of_line(line)?;
    // The kernel is about to print the line again, whole.
    let replayed = lines
        .get(i + 1)
        .is_some_and(|next| next.raw.contains("** replaying previous printk message **"));
    (!replayed).then_some(oops)
}

/// The first report starting at or after line `from`.
pub fn first_oops(lines: &[ConsoleLine], from: usize) -> Option<(usize, &'static CompiledOops)> {
    (from..lines.len()).find_map(|i| oops_at(lines, i).map(|o| (i, o)))
}

/// One report's lines.
pub struct Extent {
    /// The lines of the same caller just before the report (what the task was doing), each
    /// ending in `\n`.
    pub prefix: String,
    /// The report's text (prefixes off), a line per line, each ending in `\n`.
    pub text: String,
    /// The bytes of `text` that belong to this report alone (before a second report, when
    /// lines can't be told apart by their caller).
    pub own: usize,
    /// Where the next report starts, if one does within the lines read.
    pub next: Option<usize>,
    /// The first line not read (the end of the log, the next program our executor started, or
    /// the most lines a report may have).
    pub read_to: usize,
    /// The report reached an end marker (`---[ end trace`, the sanitizers' `=====` rule, …).
    pub ended: bool,
}

/// The panic after `panic_on_warn` or an oops, and lockdep reports caused by the oops's own
/// printing, repeat what is already known once a report has this many lines.
fn enough_lines(first: &str) -> usize {
    // KMSAN reports have no `Call Trace:` header and fewer lines.
    if first.contains("BUG: KMSAN:") {
        16
    } else {
        22
    }
}

fn is_end_marker(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("---[ end trace")
        || t.starts_with("---[ end Kernel panic")
        || t.starts_with("Kernel Offset:")
        || t.starts_with("</TASK>")
        || t.starts_with("Rebooting in")
        || (t.starts_with("=====") && t.trim_end().chars().all(|c| c == '='))
}

/// How many lines before a report are kept with it: more when they are surely the same task's.
fn prefix_lines(context: &Context) -> usize {
    if context.is_task() {
        50
    } else {
        5
    }
}

pub fn extent(lines: &[ConsoleLine], start: usize) -> Extent {
    let context = lines[start].context.clone();
    let mut before: Vec<&str> = lines[..start]
        .iter()
        .rev()
        .filter(|l| l.context == context && !l.guessed && !l.text.is_empty())
        .take(prefix_lines(&context))
        .map(|l| l.text)
        .collect();
    before.reverse();
    let prefix: String = before.iter().flat_map(|l| [*l, "\n"]).collect();
    let by_caller = matches!(context, Context::Caller(_));
    let enough = enough_lines(lines[start].raw);
    let mut text = String::new();
    let mut own = 0;
    let mut next = None;
    let mut taken = 0;
    let mut dropping = false;
    let mut all_cpus = false;
    let mut ended = false;
    let mut end = lines.len().min(start.saturating_add(MAX_REPORT_LINES));
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let first = i == start;
        // Our executor starting the next program: the kernel is done with this report.
        if !first && line.context == context && program_marker(line.text).is_some() {
            end = i;
            break;
        }
        if !first && next.is_none() {
            let other = oops_at(lines, i)
                .is_some_and(|_| !CONTINUATIONS.iter().any(|c| c.is_match(line.raw)));
            if other || STACK_NOISE.iter().any(|n| line.raw.contains(n)) {
                next = Some(i);
            }
        }
        // Another task's or CPU's output, or a guessed frame (CPU backtraces after an NMI
        // belong to the report).
        let foreign = line.context != context && !(all_cpus && line.context.is_cpu());
        if !first && (line.guessed || foreign) {
            continue;
        }
        taken += 1;
        let mut drop = dropping;
        if line
            .raw
            .contains("Disabling lock debugging due to kernel taint")
        {
            drop = true;
        } else if line.raw.contains("Sending NMI from CPU") {
            all_cpus = true;
        } else if (line.raw.contains("Kernel panic - not syncing")
            || line
                .raw
                .contains("WARNING: possible circular locking dependency detected"))
            && taken > enough
        {
            dropping = true;
            drop = true;
        }
        if !first && drop {
            continue;
        }
        if next.is_none() && is_end_marker(line.text) {
            ended = true;
        }
        text.push_str(line.text);
        text.push('\n');
        if next.is_none() || by_caller {
            own = text.len();
        }
    }
    Extent {
        prefix,
        text,
        own,
        next,
        read_to: end,
        ended,
    }
}
