//! A crash report's frames (`func+0x1a/0x40`) given their source lines from vmlinux's DWARF,
//! printed as the kernel's `scripts/decode_stacktrace.sh` prints them (`func (mm/shm.c:123)`,
//! inlined functions' lines first), and the frames as data for tools. Changes frame words only:
//! never a title, which is always computed from the raw text.

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;

use crate::kernel::symbols::{SourceFrame, Symbols};

/// One `func+0x1a/0x40` in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The symbol as printed (`shm_lock.isra.0`).
    pub function: String,
    pub offset: u64,
    /// The function's size as the kernel printed it (to the next symbol).
    pub size: u64,
    /// The module the kernel named after the frame (`[tun]`); such frames are not looked up
    /// in vmlinux.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// False for the unwinder's guesses (`? func+…`).
    pub reliable: bool,
    /// Where in `function` itself the PC is (for an inlined call: the line of the call).
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The functions inlined into `function` at this PC, innermost (where the PC is) first.
    pub inlined: Vec<InlinedFrame>,
    /// The report line (0-based) the frame is on.
    pub report_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlinedFrame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// A report's text with its frames symbolized, and the frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbolized {
    pub text: String,
    pub frames: Vec<Frame>,
}

/// A frame word found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FrameWord<'a> {
    /// The bytes of `name+0x…/0x…` in the line (without a `0010:` segment or parentheses).
    range: Range<usize>,
    name: &'a str,
    offset: u64,
    size: u64,
    module: Option<&'a str>,
    reliable: bool,
    /// The PC itself (a `RIP:` or `WARNING: … at` line), not a return address.
    exact: bool,
}

/// The frames of a report, without source lines (no vmlinux needed).
pub fn frames(report: &str) -> Vec<Frame> {
    report
        .lines()
        .enumerate()
        .filter_map(|(i, l)| parse_frame(l).map(|w| frame(&w, i, &[])))
        .collect()
}

/// The report with each frame the symbols can place given its source lines, and every frame.
/// A frame whose function is unknown, ambiguous or of another size (another build), or that
/// DWARF does not cover, stays as printed.
pub fn symbolize(report: &str, symbols: &Symbols) -> Symbolized {
    let mut cache: HashMap<u64, Vec<SourceFrame>> = HashMap::new();
    let mut text = String::with_capacity(report.len() * 2);
    let mut frames = Vec::new();
    for (i, line) in report.lines().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let Some(w) = parse_frame(line) else {
            text.push_str(line);
            continue;
        };
        let source = match pc_of(&w, symbols) {
            Some(pc) => cache
                .entry(pc)
                .or_insert_with(|| symbols.frames_at(pc))
                .as_slice(),
            None => &[],
        };
        let f = frame(&w, i, source);
        if source.iter().any(|s| s.file.is_some()) {
            text.push_str(&line[..w.range.start]);
            text.push_str(&decoded(w.name, source));
            text.push_str(&line[w.range.end..]);
        } else {
            text.push_str(line);
        }
        frames.push(f);
    }
    if report.ends_with('\n') {
        text.push('\n');
    }
    Symbolized { text, frames }
}

/// The address to look up: the PC itself for a faulting PC, else the call instruction before
/// the return address (the kernel prints return addresses, and a call that ends a function
/// returns past its end: `func+0x20/0x20`).
fn pc_of(w: &FrameWord, symbols: &Symbols) -> Option<u64> {
    if w.module.is_some() {
        return None;
    }
    let addr = symbols.resolve(w.name, w.offset, w.size)?;
    Some(if w.exact || w.offset == 0 {
        addr
    } else {
        addr - 1
    })
}

fn frame(w: &FrameWord, report_line: usize, source: &[SourceFrame]) -> Frame {
    let (outer, inner) = match source.split_last() {
        Some((o, i)) => (Some(o), i),
        None => (None, &[][..]),
    };
    Frame {
        function: w.name.to_string(),
        offset: w.offset,
        size: w.size,
        module: w.module.map(str::to_string),
        reliable: w.reliable,
        file: outer.and_then(|o| o.file.clone()),
        line: outer.and_then(|o| o.line),
        inlined: inner
            .iter()
            .map(|s| InlinedFrame {
                function: s.function.clone(),
                file: s.file.clone(),
                line: s.line,
            })
            .collect(),
        report_line,
    }
}

/// `func (inner.c:10 outer.c:20)`: decode_stacktrace.sh's form of `addr2line -i`, the
/// innermost inlined function's line first and the line in `func` itself last.
fn decoded(name: &str, source: &[SourceFrame]) -> String {
    let code: Vec<String> = source
        .iter()
        .map(|s| {
            let file = s.file.as_deref().unwrap_or("??");
            match s.line {
                Some(l) => format!("{file}:{l}"),
                None => format!("{file}:?"),
            }
        })
        .collect();
    format!("{name} ({})", code.join(" "))
}

/// The frame a line ends with, as decode_stacktrace.sh finds it: the last word, or the one
/// before a `[module]` (and a `(P)`-like note).
fn parse_frame(line: &str) -> Option<FrameWord<'_>> {
    let words: Vec<(usize, &str)> = line
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
        .collect();
    let mut i = words.len().checked_sub(1)?;
    let word = |i: usize| words[i].1;
    let is_note = |w: &str| {
        w.strip_prefix('(')
            .and_then(|w| w.strip_suffix(')'))
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_uppercase()))
    };
    if is_note(word(i)) {
        i = i.checked_sub(1)?;
    }
    let mut module = None;
    let build_id = |w: &str| {
        w.trim_end_matches(')')
            .strip_suffix(']')
            .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
    };
    if i >= 2 && build_id(word(i)) && word(i - 1).starts_with('[') {
        module = Some(&word(i - 1)[1..]);
        i -= 2;
    } else if let Some(m) = word(i)
        .trim_end_matches(')')
        .strip_prefix('[')
        .and_then(|m| m.strip_suffix(']'))
    {
        module = Some(m);
        i = i.checked_sub(1)?;
    }
    let (mut start, mut sym) = words[i];
    if let Some(s) = sym.strip_prefix('(') {
        start += 1;
        sym = s;
    }
    sym = sym.strip_suffix(')').unwrap_or(sym);
    if let Some((segment, s)) = sym.split_once(':') {
        start += segment.len() + 1;
        sym = s;
    }
    let (name, place) = sym.rsplit_once('+')?;
    let (offset, size) = place.split_once('/')?;
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
    let (offset, size) = (hex(offset)?, hex(size)?);
    if name.is_empty() || name.starts_with("0x") || module.is_some_and(str::is_empty) {
        return None;
    }
    let before = &line[..words[i].0];
    Some(FrameWord {
        range: start..start + sym.len(),
        name,
        offset,
        size,
        module,
        reliable: before.split_whitespace().last() != Some("?"),
        exact: before.contains("RIP:") || before.trim_start().starts_with("WARNING:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(line: &str) -> FrameWord<'_> {
        parse_frame(line).unwrap_or_else(|| panic!("no frame in {line:?}"))
    }

    #[test]
    fn a_call_trace_line_is_a_return_address() {
        let w = word(" direct_entry+0x145/0x197");
        assert_eq!((w.name, w.offset, w.size), ("direct_entry", 0x145, 0x197));
        assert!(w.reliable && !w.exact && w.module.is_none());
        assert_eq!(
            &" direct_entry+0x145/0x197"[w.range],
            "direct_entry+0x145/0x197"
        );
        let w = word(" ? shm_lock.isra.0+0x10/0x20");
        assert_eq!(w.name, "shm_lock.isra.0");
        assert!(!w.reliable);
    }

    #[test]
    fn the_faulting_pc_is_looked_up_as_is() {
        let line = "RIP: 0010:lkdtm_BUG+0x9/0xb";
        let w = word(line);
        assert_eq!(&line[w.range], "lkdtm_BUG+0x9/0xb");
        assert!(w.exact);
        let w = word("WARNING: CPU: 0 PID: 33 at drivers/x.c:112 func+0x2b/0x33");
        assert_eq!(w.name, "func");
        assert!(w.exact);
        assert!(!word("BUG: KASAN: slab-use-after-free in shm_lock+0x1c/0x30").exact);
    }

    #[test]
    fn modules_and_notes_after_the_frame_are_skipped() {
        let w = word(" tun_chr_write_iter+0x10/0x20 [tun]");
        assert_eq!((w.name, w.module), ("tun_chr_write_iter", Some("tun")));
        let w = word(" f+0x10/0x20 [tun 0123abcd]");
        assert_eq!((w.name, w.module), ("f", Some("tun")));
        let w = word(" el0_svc+0x54/0x80 (P)");
        assert_eq!((w.name, w.module), ("el0_svc", None));
        let line = "  (foo+0x0/0x1 [bar])";
        let w = word(line);
        assert_eq!(&line[w.range], "foo+0x0/0x1");
        assert_eq!(w.module, Some("bar"));
    }

    #[test]
    fn lines_without_a_frame_are_not_frames() {
        for l in [
            "RIP: 0033:0x47b7a0",
            "Call Trace:",
            " <TASK>",
            "",
            "kernel BUG at drivers/misc/lkdtm/bugs.c:105!",
            "x+0x10",
            "+0x1/0x2",
            "f+0xzz/0x10",
        ] {
            assert_eq!(parse_frame(l), None, "{l:?}");
        }
    }

    fn src(function: &str, file: &str, line: u32) -> SourceFrame {
        SourceFrame {
            function: Some(function.into()),
            file: Some(file.into()),
            line: Some(line),
        }
    }

    #[test]
    fn inlined_lines_come_first_as_decode_stacktrace_prints_them() {
        let source = [
            src("list_add", "include/linux/list.h", 169),
            src("shm_add", "ipc/shm.c", 12),
        ];
        assert_eq!(
            decoded("shm_add", &source),
            "shm_add (include/linux/list.h:169 ipc/shm.c:12)"
        );
        let w = word(" shm_add+0x10/0x20");
        let f = frame(&w, 7, &source);
        assert_eq!(f.file.as_deref(), Some("ipc/shm.c"));
        assert_eq!(f.line, Some(12));
        assert_eq!(f.inlined.len(), 1);
        assert_eq!(f.inlined[0].function.as_deref(), Some("list_add"));
        assert_eq!(f.report_line, 7);
        let unknown_line = SourceFrame {
            line: None,
            ..src("f", "mm/x.c", 0)
        };
        assert_eq!(decoded("f", &[unknown_line]), "f (mm/x.c:?)");
    }

    #[test]
    fn frames_without_symbols_keep_what_was_printed() {
        let report =
            "RIP: 0010:lkdtm_BUG+0x9/0xb\nCall Trace:\n <TASK>\n ? vfs_write+0x1c8/0x3f2\n";
        let f = frames(report);
        assert_eq!(f.len(), 2);
        assert_eq!((f[1].function.as_str(), f[1].report_line), ("vfs_write", 3));
        assert!(!f[1].reliable && f[1].file.is_none() && f[1].inlined.is_empty());
    }
}
