//! `kfuzz build [--config-only] [-j N]`

use crate::kernel::build::{self, BuildOptions, BuildOutcome};
use crate::manifest::Manifest;
use crate::shell::Shell;

/// Configure (base + fragments, verified) and build the kernel in .kfuzz/build
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop after writing and verifying .kfuzz/build/.config
    #[arg(long)]
    pub config_only: bool,
    /// Parallel make jobs (default: kfuzz.toml's `jobs`, else one per CPU)
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<u32>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let tree = super::current_tree()?;
    let manifest = Manifest::load(&tree.manifest_path())?;
    let opts = BuildOptions {
        config_only: args.config_only,
        jobs: args.jobs,
    };
    match build::build(&tree, &manifest, &opts, shell)? {
        BuildOutcome::ConfigOnly { config, fresh } => {
            shell.println(format!("config: {}", config.display()));
            shell.json(&serde_json::json!({
                "reason": "config-finished",
                "config": config,
                "fresh": fresh,
            }));
        }
        BuildOutcome::Kernel(_) => {}
    }
    Ok(0)
}
