//! `kfuzz report LOG…`

use std::path::PathBuf;

use anyhow::Context;

use crate::shell::Shell;

/// Find the crash reports in console logs: title, kind, and whether each looks truncated
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Console logs (any kernel's), e.g. saved from a mailing list
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
    /// Print one JSON object per report
    #[arg(long)]
    pub json: bool,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let mut found = 0;
    for path in &args.logs {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let reports = crate::report::parse(&text);
        if reports.is_empty() && !args.json {
            shell.println(format!("{}: no crash report", path.display()));
        }
        for r in reports {
            found += 1;
            if args.json || shell.format == crate::shell::MessageFormat::Json {
                println!(
                    "{}",
                    serde_json::json!({"file": path, "line": r.line, "title": r.title, "kind": r.kind, "truncated": r.truncated, "corrupted": r.corrupted})
                );
            } else {
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
            }
        }
    }
    Ok(if found > 0 { 0 } else { 1 })
}
