//! `kfuzz prog2c PROG [--threaded] [--repeat N] [--sandbox S] [-o FILE]`

use std::path::PathBuf;

use anyhow::Context;
use kfuzz_prog::{csource, text};

use super::run::SandboxArg;
use super::syscalls::TargetArgs;
use crate::shell::Shell;

/// Turn a program (syzkaller text format) into a standalone C program
#[derive(Debug, clap::Args)]
pub struct Args {
    pub program: PathBuf,
    /// Each call in a thread of its own (a blocking call is left behind)
    #[arg(long)]
    pub threaded: bool,
    /// Run the program N times, each in a fresh child; 0: forever
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u64,
    #[arg(long, value_enum, default_value_t = SandboxArg::None)]
    pub sandbox: SandboxArg,
    /// Milliseconds after which a blocking call is interrupted or left behind
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub call_timeout: u64,
    /// Write the C program here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    if let Some(out) = &args.output {
        crate::fsutil::ensure_not_an_input("-o", out, [args.program.as_path()])?;
    }
    let l = args.target.load(shell)?;
    let t = &l.loaded.target;
    let src = std::fs::read_to_string(&args.program)
        .with_context(|| format!("cannot read {}", args.program.display()))?;
    let p = text::parse(t, &src).map_err(|e| anyhow::anyhow!("{}:{e}", args.program.display()))?;
    let c = csource::generate(
        t,
        &p,
        &csource::Options {
            threaded: args.threaded,
            repeat: args.repeat,
            sandbox: args.sandbox.into(),
            call_timeout_ms: args.call_timeout,
        },
    );
    match &args.output {
        Some(path) => {
            crate::fsutil::write_atomic(path, c.as_bytes())?;
            shell.status("Wrote", path.display());
        }
        None => print!("{c}"),
    }
    Ok(0)
}
