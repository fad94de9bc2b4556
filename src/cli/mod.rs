//! clap definitions. One file per subcommand: parse, call into an operation, print.

pub mod bench;
pub mod bench_coverage;
pub mod boot;
pub mod build;
pub mod corpus;
pub mod cover;
pub mod crashes;
pub mod descriptions;
pub mod doctor;
pub mod execprog;
pub mod image;
pub mod init;
pub mod prog;
pub mod prog2c;
pub mod regress;
pub mod report;
pub mod repro;
pub mod run;
pub mod syscalls;

use clap::{Parser, Subcommand};

use crate::shell::{MessageFormat, Shell, Verbosity};

#[derive(Debug, Parser)]
#[command(
    name = "kfuzz",
    version,
    about = "Build, boot and fuzz the Linux kernel in this checkout",
    long_about = "kfuzz is a cargo-style build-and-fuzz driver for the Linux kernel.\n\n\
                  In a kernel checkout: `kfuzz init` writes kfuzz.toml and .kfuzz/, `kfuzz build` \
                  builds a fuzzing kernel with every requested debug option verified, `kfuzz boot` \
                  boots it in QEMU with kfuzz's own guest, and `kfuzz run --syscalls 'shm*'` fuzzes \
                  it, keeping a corpus and crash reports in .kfuzz/work."
)]
pub struct Cli {
    /// Print nothing but errors and results
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more about each step
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Output for humans or one JSON object per line for tools
    #[arg(long, global = true, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Build(build::Args),
    Doctor(doctor::Args),
    Boot(boot::Args),
    Syscalls(syscalls::Args),
    Descriptions(descriptions::Args),
    Prog(prog::Args),
    Report(report::Args),
    Run(run::Args),
    Crashes(crashes::Args),
    Execprog(execprog::Args),
    Prog2c(prog2c::Args),
    Repro(repro::Args),
    Regress(regress::Args),
    Corpus(corpus::Args),
    Cover(cover::Args),
    Bench(bench::Args),
    Image(image::Args),
}

impl Cli {
    pub fn shell(&self) -> Shell {
        let v = if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Shell::new(v, self.message_format)
    }
}

/// Runs the command; the returned code is the process exit status.
pub fn run(cli: Cli, shell: &Shell) -> anyhow::Result<i32> {
    match cli.command {
        Command::Init(a) => init::exec(a, shell),
        Command::Build(a) => build::exec(a, shell),
        Command::Doctor(a) => doctor::exec(a, shell),
        Command::Boot(a) => boot::exec(a, shell),
        Command::Syscalls(a) => syscalls::exec(a, shell),
        Command::Descriptions(a) => descriptions::exec(a, shell),
        Command::Prog(a) => prog::exec(a, shell),
        Command::Report(a) => report::exec(a, shell),
        Command::Run(a) => run::exec(a, shell),
        Command::Crashes(a) => crashes::exec(a, shell),
        Command::Execprog(a) => execprog::exec(a, shell),
        Command::Prog2c(a) => prog2c::exec(a, shell),
        Command::Repro(a) => repro::exec(a, shell),
        Command::Regress(a) => regress::exec(a, shell),
        Command::Corpus(a) => corpus::exec(a, shell),
        Command::Cover(a) => cover::exec(a, shell),
        Command::Bench(a) => bench::exec(a, shell),
        Command::Image(a) => image::exec(a, shell),
    }
}

/// The kernel tree containing the current directory.
///
/// The logical directory (`$PWD`) is preferred when it names the same directory, so that a tree
/// reached through a symlink is found where the user is, not where the link points.
pub fn current_tree() -> anyhow::Result<crate::kernel::tree::KernelTree> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let logical = std::env::var_os("PWD")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute() && p.canonicalize().ok() == cwd.canonicalize().ok());
    crate::kernel::tree::KernelTree::find(&logical.unwrap_or(cwd))
}
