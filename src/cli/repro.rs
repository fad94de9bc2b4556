//! `kfuzz repro CRASH_DIR | LOG_FILE`

use std::path::PathBuf;

use anyhow::Context;

use super::run::SandboxArg;
use super::syscalls::TargetArgs;
use crate::repro;
use crate::shell::Shell;
use crate::vm::Accel;

/// Find the program that triggers a crash, minimize it, and write repro.syz and repro.c
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A crash directory (crashes/<id>/) or a console log with kfuzz's program markers
    pub crash: PathBuf,
    /// Sandbox the programs ran in
    #[arg(long, value_enum, default_value_t = SandboxArg::None)]
    pub sandbox: SandboxArg,
    /// Where repro.syz, repro.c and repro.log go (default: the crash directory, or the log
    /// file's directory)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub guest: super::boot::GuestArgs,
}

/// The files `kfuzz repro` writes into its output folder.
const OUTPUTS: [&str; 4] = ["repro.syz", "repro.c", "repro.log", "repro.json"];

/// Checks the output folder before any work: a folder (made when `-o` names a new one), and none
/// of the files written there is the log being read.
fn prepare_output(args: &Args) -> anyhow::Result<()> {
    let out_dir = match &args.output {
        Some(d) => d.clone(),
        None if args.crash.is_dir() => args.crash.clone(),
        None => args
            .crash
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let inputs = if args.crash.is_dir() {
        vec![args.crash.join("log0"), args.crash.join("description")]
    } else {
        vec![args.crash.clone()]
    };
    for name in OUTPUTS {
        let out = out_dir.join(name);
        if let Some(input) = inputs.iter().find(|i| crate::fsutil::same_file(&out, i)) {
            anyhow::bail!(
                "kfuzz repro writes {} and would write over {}, the log it reads; give another \
                 folder with -o",
                OUTPUTS.join(", "),
                input.display()
            );
        }
    }
    if let Some(dir) = &args.output {
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!("`-o {}` is not a folder", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    prepare_output(&args)?;
    let (log, title, out_dir) = if args.crash.is_dir() {
        let d = &args.crash;
        let title = std::fs::read_to_string(d.join("description"))
            .with_context(|| {
                format!(
                    "{} has no description: is it a crash directory?",
                    d.display()
                )
            })?
            .trim()
            .to_string();
        let log = std::fs::read_to_string(d.join("log0"))
            .with_context(|| format!("cannot read {}", d.join("log0").display()))?;
        (log, title, d.clone())
    } else {
        let log = std::fs::read_to_string(&args.crash)
            .with_context(|| format!("cannot read {}", args.crash.display()))?;
        let title = crate::report::parse(&log)
            .into_iter()
            .next()
            .map(|r| r.title)
            .ok_or_else(|| {
                anyhow::anyhow!("{}: no crash report found in the log", args.crash.display())
            })?;
        let dir = args
            .crash
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        (log, title, dir)
    };
    let out_dir = args.output.clone().unwrap_or(out_dir);
    let l = args.target.load(shell)?;
    let t = &l.loaded.target;
    let kernel = crate::vm::boot::kernel_from_build(&l.tree.build_dir())?;
    let work = l.tree.work_dir();
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let accel = Accel::detect_and_tell(shell);
    let spec = guest.spec(&l.manifest.vm, kernel, work.join("repro"), accel);
    shell.status("Reproducing", &title);
    let found = repro::reproduce_into(
        t,
        spec,
        &log,
        &title,
        args.sandbox.into(),
        &out_dir,
        shell,
        None,
    )
    .with_context(|| format!("reproducing from {}", args.crash.display()))?;
    match found {
        Some(s) => {
            shell.status("Reproduced", s.line());
            shell.println(format!("syz: {}", s.syz.display()));
            shell.println(format!("C:   {}", s.c.display()));
            shell.println(format!("log: {}", out_dir.join("repro.log").display()));
            shell.json(&serde_json::json!({"reason": "repro", "reproduced": true, "result": s}));
            Ok(0)
        }
        None => {
            let path = out_dir.join("repro.log");
            shell.warn(format!(
                "{title:?} was not reproduced (steps in {})",
                path.display()
            ));
            shell.json(&serde_json::json!({"reason": "repro", "reproduced": false, "log": path}));
            Ok(1)
        }
    }
}
