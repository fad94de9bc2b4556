//! Everything kfuzz prints goes through `Shell`: cargo's voice (a right-aligned green verb, one line
//! per step), `-q`/`-v`, and `--message-format json` for tools. Operations never print directly.

use std::io::{IsTerminal, Write};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum MessageFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Clone, Debug)]
pub struct Shell {
    pub verbosity: Verbosity,
    pub format: MessageFormat,
    color: bool,
    term: bool,
}

impl Shell {
    pub fn new(verbosity: Verbosity, format: MessageFormat) -> Shell {
        let term = std::io::stderr().is_terminal();
        let color = term && std::env::var_os("NO_COLOR").is_none();
        Shell {
            verbosity,
            format,
            color,
            term,
        }
    }

    /// True when stderr is a terminal and live progress (bars, redrawn lines) makes sense.
    pub fn is_term(&self) -> bool {
        self.term && self.verbosity != Verbosity::Quiet && self.format == MessageFormat::Human
    }

    fn verb(&self, verb: &str, style: console::Style) -> String {
        let padded = format!("{verb:>12}");
        if self.color {
            style.bold().apply_to(padded).to_string()
        } else {
            padded
        }
    }

    /// `   Compiling linux 6.12 (minimal)` — a step, in green.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Quiet || self.format == MessageFormat::Json {
            return;
        }
        let v = self.verb(verb, console::Style::new().green());
        let _ = writeln!(std::io::stderr(), "{v} {message}");
    }

    /// A notice the user should read (e.g. "no usable KVM, using TCG"), in yellow.
    pub fn note(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Quiet || self.format == MessageFormat::Json {
            return;
        }
        let v = self.verb(verb, console::Style::new().yellow());
        let _ = writeln!(std::io::stderr(), "{v} {message}");
    }

    /// Details shown with `-v` only.
    pub fn verbose(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity == Verbosity::Verbose {
            self.status(verb, message);
        }
    }

    /// `warning: ...` on stderr — always shown, even with -q, and with `--message-format
    /// json` too (stdout carries the JSON, as with cargo).
    pub fn warn(&self, message: impl std::fmt::Display) {
        let w = if self.color {
            console::style("warning").yellow().bold().to_string()
        } else {
            "warning".to_string()
        };
        let _ = writeln!(std::io::stderr(), "{w}: {message}");
    }

    /// `error: ...` with anyhow's cause chain, cargo style.
    pub fn error(&self, err: &anyhow::Error) {
        let e = if self.color {
            console::style("error").red().bold().to_string()
        } else {
            "error".to_string()
        };
        let mut out = std::io::stderr();
        let _ = writeln!(out, "{e}: {err}");
        for cause in err.chain().skip(1) {
            let _ = writeln!(out, "\nCaused by:\n  {cause}");
        }
    }

    /// One JSON object on stdout (with `--message-format json` only).
    pub fn json<T: Serialize>(&self, message: &T) {
        if self.format != MessageFormat::Json {
            return;
        }
        if let Ok(line) = serde_json::to_string(message) {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    /// A plain line of program output on stdout (human mode; results, not progress). A
    /// closed stdout (`kfuzz report … | head`) is not an error worth a panic: the line is
    /// dropped.
    pub fn println(&self, line: impl std::fmt::Display) {
        if self.format == MessageFormat::Human {
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// `2026-11-26 23:59:01` (UTC) for unix seconds.
pub fn utc(secs: u64) -> String {
    let (y, m, d) = civil_date(secs);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The UTC calendar date (year, month, day) of unix seconds.
pub fn civil_date(secs: u64) -> (i64, i64, i64) {
    let days = (secs / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(super::utc(1_795_737_599), "2026-11-26 23:59:59");
    }
}
