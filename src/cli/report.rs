//! `kfuzz report LOG…`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::kernel::symbols::Symbols;
use crate::report::symbolize::{self, Frame};
use crate::report::CrashKind;
use crate::shell::{MessageFormat, Shell, Verbosity};

/// Find the crash reports in console logs: title, kind, and whether each looks truncated
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Find the crash reports in console logs: title, kind, and whether each looks \
                  truncated.\n\n\
                  With a vmlinux that has DWARF (--vmlinux, or this tree's .kfuzz/build/vmlinux \
                  when run inside a kfuzz tree), frames are given their source lines as the \
                  kernel's scripts/decode_stacktrace.sh prints them: -v prints the symbolized \
                  reports, --json puts them and their frames (function, offset, file, line, \
                  inlined functions) in its output."
)]
pub struct Args {
    /// Console logs (any kernel's), e.g. saved from a mailing list
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
    /// Print ONE JSON array of every report (file, line, title, alt_titles, kind, corrupted,
    /// truncated, frames, report text); also with --message-format json
    #[arg(long)]
    pub json: bool,
    /// The vmlinux the logs came from, to give frames their source lines (default: this
    /// tree's .kfuzz/build/vmlinux when there is one)
    #[arg(long, value_name = "PATH")]
    pub vmlinux: Option<PathBuf>,
}

/// A report as `--json` prints it.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    file: &'a Path,
    line: usize,
    title: String,
    /// Other titles the same bug may carry (syzkaller's alternative titles, for dedup).
    alt_titles: Vec<String>,
    kind: CrashKind,
    corrupted: bool,
    truncated: bool,
    /// Whether `frames` and `report` carry source lines.
    symbolized: bool,
    frames: Vec<Frame>,
    report: String,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let json = args.json || shell.format == MessageFormat::Json;
    let symbols = symbols(args.vmlinux.as_deref(), shell)?;
    let mut found = 0;
    // Frames seen and frames given source lines, to say when the vmlinux is another build's.
    let (mut seen, mut placed) = (0, 0);
    let mut out = Vec::new();
    for path in &args.logs {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let reports = crate::report::parse(&text);
        if reports.is_empty() && !json {
            shell.println(format!("{}: no crash report", path.display()));
        }
        for r in &reports {
            found += 1;
            let wants_text = json || shell.verbosity == Verbosity::Verbose;
            let (text, frames) = match &symbols {
                Some(s) if wants_text => {
                    let sym = symbolize::symbolize(&r.report, s);
                    seen += sym.frames.iter().filter(|f| f.module.is_none()).count();
                    placed += sym.frames.iter().filter(|f| f.file.is_some()).count();
                    (sym.text, sym.frames)
                }
                _ if json => (r.report.clone(), symbolize::frames(&r.report)),
                _ => (r.report.clone(), Vec::new()),
            };
            if json {
                out.push(JsonReport {
                    file: path,
                    line: r.line,
                    title: r.title.clone(),
                    alt_titles: r.alt_titles.clone(),
                    kind: r.kind,
                    corrupted: r.corrupted,
                    truncated: r.truncated,
                    symbolized: symbols.is_some(),
                    frames,
                    report: text,
                });
                continue;
            }
            let mut flags = Vec::new();
            if r.truncated {
                flags.push("truncated");
            }
            if r.corrupted {
                flags.push("corrupted");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            };
            shell.println(format!(
                "{}:{}: {} [{:?}]{flags}",
                path.display(),
                r.line,
                r.title,
                r.kind
            ));
            if shell.verbosity == Verbosity::Verbose {
                shell.println(format!("{text}\n"));
            }
        }
    }
    if json {
        let line = serde_json::to_string(&out)?;
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}") {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("cannot write to stdout")
            }
            _ => {}
        }
    }
    if seen > 0 && placed == 0 {
        shell.warn(
            "no frame was found in the vmlinux (is it the kernel that printed these logs?): \
             frames are not symbolized",
        );
    }
    Ok(if found > 0 { 0 } else { 1 })
}

/// The symbols to symbolize with: `--vmlinux` (an error when it cannot be read), else the
/// built vmlinux of the tree we are in (a warning when it cannot be read), else none.
fn symbols(vmlinux: Option<&Path>, shell: &Shell) -> anyhow::Result<Option<Symbols>> {
    let (path, explicit) = match vmlinux {
        Some(p) => (p.to_path_buf(), true),
        None => match super::current_tree()
            .map(|t| t.build_dir().join("vmlinux"))
            .ok()
            .filter(|p| p.is_file())
        {
            Some(p) => (p, false),
            None => return Ok(None),
        },
    };
    let symbols = match Symbols::load(&path) {
        Ok(s) => s,
        Err(e) if explicit => return Err(e),
        Err(e) => {
            shell.warn(format!("{e:#}: frames are not symbolized"));
            return Ok(None);
        }
    };
    if !symbols.has_debug_info() {
        let msg = format!(
            "{} has no DWARF (build with CONFIG_DEBUG_INFO): frames get no source lines",
            path.display()
        );
        if explicit {
            shell.warn(msg);
        } else {
            shell.verbose("Symbols", msg);
        }
        return Ok(None);
    }
    shell.verbose("Symbols", format!("{}", path.display()));
    Ok(Some(symbols))
}
