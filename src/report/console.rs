//! One console line at a time: its printk prefixes (`[   12.34][  T123] `), whose output it is
//! (the caller id, when the kernel prints one), and whether it is a frame the unwinder only
//! guessed (` ? func+0x…`). Knows nothing of oopses.

use std::sync::LazyLock;

use regex::Regex;

/// `[   12.345678][  T123] text` → `text` (PRINTK_TIME and PRINTK_CALLER prefixes).
pub fn strip_prefix(line: &str) -> &str {
    let mut s = line.trim_end_matches('\r');
    for _ in 0..2 {
        let t = s.trim_start();
        let Some(rest) = t.strip_prefix('[') else {
            break;
        };
        let Some(end) = rest.find(']') else {
            break;
        };
        let inner = rest[..end].trim();
        let ts = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit() || c == '.');
        let caller = inner.len() > 1
            && (inner.starts_with('T') || inner.starts_with('C'))
            && inner[1..].chars().all(|c| c.is_ascii_digit());
        if !(ts || caller) {
            break;
        }
        s = &rest[end + 1..];
    }
    s.strip_prefix(' ').unwrap_or(s)
}

/// The program id (and proc) of the executor's `kfuzz: executing program <id> on proc <proc>`
/// line (the format is kfuzz-wire's).
pub fn program_marker(line: &str) -> Option<(u64, Option<u32>)> {
    kfuzz_wire::parse_program_marker(line)
}

/// Whose output a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// No printk timestamp: we cannot tell lines apart.
    Unknown,
    /// A timestamp but no caller id.
    Console,
    /// The caller id: `T123` for a task, `C1` for a CPU in interrupt context.
    Caller(String),
}

impl Context {
    pub fn is_task(&self) -> bool {
        matches!(self, Context::Caller(c) if c.starts_with('T'))
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Context::Caller(c) if c.starts_with('C'))
    }
}

/// The prefix the kernel (and a login prompt or a dropped-messages notice) puts before a line.
static PRINTK_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:.* login: )?(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]+\](\[ *(?:C|T)[0-9]+\])? ",
    )
    .expect("printk prefix pattern")
});

/// ` ? func+0x…` (optionally after a `[<address>]`): a stale frame the unwinder found on the
/// stack, not a caller.
static GUESSED_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\[<[0-9a-f]+>\])? \? ").expect("guessed frame pattern"));

/// A console line taken apart.
#[derive(Debug, Clone)]
pub struct ConsoleLine<'a> {
    pub raw: &'a str,
    pub context: Context,
    /// The text after the prefix (and after ` ? ` for a guessed frame).
    pub text: &'a str,
    /// A frame the unwinder only guessed.
    pub guessed: bool,
}

impl<'a> ConsoleLine<'a> {
    pub fn new(raw: &'a str) -> ConsoleLine<'a> {
        let raw = raw.trim_end_matches('\r');
        let Some(caps) = PRINTK_PREFIX.captures(raw) else {
            return ConsoleLine {
                raw,
                context: Context::Unknown,
                text: raw,
                guessed: false,
            };
        };
        let context = match caps.get(1) {
            None => Context::Console,
            Some(m) => Context::Caller(m.as_str().trim_matches(['[', ']', ' ']).to_string()),
        };
        let text = raw.find("] ").map_or(raw, |at| &raw[at + 2..]);
        let (text, guessed) = if text.contains("<EOI>") {
            (text, false)
        } else if GUESSED_FRAME.is_match(text) {
            let at = text.find(" ? ").map_or(0, |at| at + 2);
            (&text[at..], true)
        } else if let Some(t) = text.strip_suffix(" (unreliable)") {
            (t, true)
        } else {
            (text, false)
        };
        ConsoleLine {
            raw,
            context,
            text,
            guessed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_line_knows_its_caller_and_guessed_frames() {
        let l = ConsoleLine::new("[   12.5][  T123]  ? shm_lock+0x10/0x20");
        assert_eq!(l.context, Context::Caller("T123".into()));
        assert!(l.context.is_task());
        assert!(l.guessed);
        assert_eq!(l.text, " shm_lock+0x10/0x20");
        let l = ConsoleLine::new("[   12.5] BUG: x");
        assert_eq!(l.context, Context::Console);
        assert_eq!(l.text, "BUG: x");
        let l = ConsoleLine::new(" ? f+0x1/0x2");
        assert_eq!(l.context, Context::Unknown);
        assert!(!l.guessed);
    }

    #[test]
    fn program_markers_name_program_and_proc() {
        assert_eq!(
            program_marker("kfuzz: executing program 12 on proc 3"),
            Some((12, Some(3)))
        );
        assert_eq!(
            program_marker("kfuzz: executing program 7"),
            Some((7, None))
        );
        assert_eq!(program_marker("kfuzz: executing"), None);
    }
}
