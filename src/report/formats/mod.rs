//! The table of oops formats: which console line starts a report (its header word), how each
//! known report of that header is recognised, what title it gets and where the title's function
//! comes from. Data only; `title.rs` applies it. Templates use `{N}` for the N-th value: first
//! the captures of the format's patterns, then the picked frames.

mod bug;
mod other;
mod warning;

use std::sync::LazyLock;

use regex::Regex;

use super::frames::{pattern, Pick, CALL_TRACE, RIP_LINE};
use super::skip;

/// One step of finding a title's function in a report.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Advance to the first line matching this pattern; its captures are frames.
    Find(&'static str),
    /// Advance to the instruction pointer line; its function is a frame.
    Rip,
    /// Advance to a WARNING's first frame: the instruction pointer line on x86, the
    /// `--- interrupt:` line on powerpc.
    WarnRip,
    /// Advance past a `Call Trace:` header.
    CallTrace,
    /// Read frames until the stack ends (or the next step's pattern matches).
    Stack,
}

/// Where a title's function comes from.
#[derive(Debug, Clone, Copy)]
pub struct StackRule {
    pub steps: &'static [Step],
    /// Tried when `steps` find nothing.
    pub fallback: &'static [Step],
    /// Functions skipped for this format only, on top of the skip families.
    pub skip: &'static [&'static str],
    pub pick: Pick,
}

impl StackRule {
    pub const NEW: StackRule = StackRule {
        steps: &[Step::CallTrace, Step::Stack],
        fallback: &[],
        skip: &[],
        pick: Pick::First,
    };
}

/// The stack of a WARNING: from the instruction pointer, or else after `Call Trace:`.
pub const fn warning_stack(skip: &'static [&'static str]) -> Option<StackRule> {
    Some(StackRule {
        steps: &[Step::WarnRip, Step::Stack],
        fallback: &[Step::CallTrace, Step::Stack],
        skip,
        pick: Pick::First,
    })
}

/// The stack of an oops with registers: the faulting function, else the call trace.
pub const fn rip_stack() -> Option<StackRule> {
    Some(StackRule {
        steps: &[Step::Rip, Step::CallTrace, Step::Stack],
        ..StackRule::NEW
    })
}

/// The stack after `Call Trace:`, skipping `skip`.
pub const fn call_trace(skip: &'static [&'static str]) -> Option<StackRule> {
    Some(StackRule {
        skip,
        ..StackRule::NEW
    })
}

/// One known report.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// Recognises the report (searched in the whole report text; the earliest match wins).
    pub title: &'static str,
    /// When set, must also match, and its captures are the values (else the title's are).
    /// A report matching `title` but not this is corrupted.
    pub detail: Option<&'static str>,
    pub template: &'static str,
    /// Alternative titles, same values.
    pub alt: &'static [&'static str],
    pub stack: Option<StackRule>,
    /// The report has no stack trace of its own to check for corruption.
    pub no_stack: bool,
    /// Only ever matched by a damaged report.
    pub corrupted: bool,
}

impl Format {
    pub const NEW: Format = Format {
        title: "",
        detail: None,
        template: "",
        alt: &[],
        stack: None,
        no_stack: false,
        corrupted: false,
    };
}

/// The formats of reports whose first line holds `header`.
#[derive(Debug)]
pub struct Oops {
    pub header: &'static str,
    pub formats: &'static [Format],
    /// Lines holding `header` that are not reports.
    pub not_reports: &'static [&'static str],
}

/// An `Oops` with its patterns compiled.
pub struct CompiledOops {
    pub header: &'static str,
    pub formats: Vec<CompiledFormat>,
    pub not_reports: Vec<Regex>,
}

pub struct CompiledFormat {
    pub format: &'static Format,
    pub title: Regex,
    pub detail: Option<Regex>,
    pub stack: Option<CompiledStack>,
}

pub struct CompiledStack {
    pub rule: StackRule,
    pub steps: Vec<CompiledStep>,
    pub fallback: Vec<CompiledStep>,
    pub skip: Regex,
}

pub enum CompiledStep {
    Find(Regex),
    Stack,
}

fn compile_steps(steps: &[Step]) -> Vec<CompiledStep> {
    let warn_rip = format!("(?:{RIP_LINE}|--- interrupt: [0-9]+ at {{{{FUNC}}}})");
    steps
        .iter()
        .map(|s| match s {
            Step::Find(p) => CompiledStep::Find(pattern(p)),
            Step::Rip => CompiledStep::Find(pattern(RIP_LINE)),
            Step::WarnRip => CompiledStep::Find(pattern(&warn_rip)),
            Step::CallTrace => CompiledStep::Find(pattern(CALL_TRACE)),
            Step::Stack => CompiledStep::Stack,
        })
        .collect()
}

/// All oopses, in the order a line is tried against them.
const OOPSES: &[&Oops] = &[
    &bug::BUG,
    &warning::WARNING,
    &warning::INFO,
    &other::UNABLE_TO_HANDLE,
    &other::GPF,
    &other::STACK_SEGMENT,
    &other::KERNEL_PANIC,
    &other::DOUBLE_FAULT,
    &other::RUST_PANIC,
    &other::KERNEL_BUG,
    &other::KERNEL_BUG_CAPITAL,
    &other::SLAB_ALREADY_FREE,
    &other::DIVIDE_ERROR,
    &other::DIVIDE_ERROR_MISSPELT,
    &other::INVALID_OPCODE,
    &other::INT3,
    &bug::UBSAN,
    &other::REBOOT,
    &other::NETDEV_WAIT,
    &other::VFS_FILE_COUNT,
    &other::VFS_BUSY_INODES,
    &other::INTERNAL_ERROR,
    &other::UNHANDLED_FAULT,
    &other::ALIGNMENT_TRAP,
    &other::TRUSTY,
    &other::GO_FATAL,
    &other::SYZFAIL,
    &other::SYZFATAL,
    &other::USER_PANIC,
];

pub static COMPILED: LazyLock<Vec<CompiledOops>> = LazyLock::new(|| {
    OOPSES
        .iter()
        .map(|o| CompiledOops {
            header: o.header,
            not_reports: o.not_reports.iter().map(|p| pattern(p)).collect(),
            formats: o
                .formats
                .iter()
                .map(|f| CompiledFormat {
                    format: f,
                    title: pattern(f.title),
                    detail: f.detail.map(pattern),
                    stack: f.stack.map(|rule| CompiledStack {
                        rule,
                        steps: compile_steps(rule.steps),
                        fallback: compile_steps(rule.fallback),
                        skip: skip::skip_regex(rule.skip),
                    }),
                })
                .collect(),
        })
        .collect()
});

/// Lines that match an oops header but do not start a new report when they appear inside one.
pub static CONTINUATIONS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        "invalid opcode: 0000",
        "Kernel panic - not syncing",
        "unregister_netdevice: waiting for",
        "PANIC: double fault",
        "Internal error:",
    ]
    .into_iter()
    .map(pattern)
    .collect()
});

/// Messages that are no bugs but print a stack: inside a report, they mean it is mixed with
/// another stack.
pub const STACK_NOISE: &[&str] = &[
    "vmalloc: allocation failure:",
    "FAULT_INJECTION: forcing a failure",
    "FAULT_FLAG_ALLOW_RETRY missing",
];

/// The oops a line starts, if any.
pub fn oops_of_line(line: &str) -> Option<&'static CompiledOops> {
    COMPILED
        .iter()
        .find(|o| line.contains(o.header) && !o.not_reports.iter().any(|r| r.is_match(line)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::frames::expand;

    #[test]
    fn every_pattern_compiles() {
        for o in OOPSES {
            for p in o.not_reports {
                assert!(Regex::new(p).is_ok(), "{}: {p}", o.header);
            }
            for f in o.formats {
                assert!(Regex::new(&expand(f.title)).is_ok(), "{}", f.title);
                if let Some(d) = f.detail {
                    assert!(Regex::new(&expand(d)).is_ok(), "{d}");
                }
                for s in f
                    .stack
                    .iter()
                    .flat_map(|s| s.steps.iter().chain(s.fallback))
                {
                    if let Step::Find(p) = s {
                        assert!(Regex::new(&expand(p)).is_ok(), "{p}");
                    }
                }
            }
        }
    }
}
