//! `kfuzz repro CRASH_DIR | LOG_FILE`

use std::path::PathBuf;

use anyhow::Context;

use super::run::SandboxArg;
use super::syscalls::TargetArgs;
use crate::crash_dir::CrashDir;
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
        let crash = CrashDir::at(&args.crash);
        vec![crash.log(0), crash.description()]
    } else {
        vec![args.crash.clone()]
    };
    let outputs = CrashDir::at(out_dir).repro_outputs();
    for out in &outputs {
        if let Some(input) = inputs.iter().find(|i| crate::fsutil::same_file(out, i)) {
            let names: Vec<String> = outputs
                .iter()
                .filter_map(|o| o.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            anyhow::bail!(
                "kfuzz repro writes {} and would write over {}, the log it reads; give another \
                 folder with -o",
                names.join(", "),
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
        let d = CrashDir::at(&args.crash);
        let title = d.title()?;
        (d.first_log()?, title, args.crash.clone())
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
        &CrashDir::at(&out_dir),
        shell,
        None,
    )
    .with_context(|| format!("reproducing from {}", args.crash.display()))?;
    match found {
        Some(s) => {
            shell.status("Reproduced", s.line());
            shell.println(format!("syz: {}", s.syz.display()));
            shell.println(format!("C:   {}", s.c.display()));
            shell.println(format!(
                "log: {}",
                CrashDir::at(&out_dir).repro_log().display()
            ));
            shell.json(&serde_json::json!({"reason": "repro", "reproduced": true, "result": s}));
            Ok(0)
        }
        None => {
            let path = CrashDir::at(&out_dir).repro_log();
            shell.warn(format!(
                "{title:?} was not reproduced (steps in {})",
                path.display()
            ));
            shell.json(&serde_json::json!({"reason": "repro", "reproduced": false, "log": path}));
            Ok(1)
        }
    }
}
