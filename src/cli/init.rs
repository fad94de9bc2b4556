//! `kfuzz init [--force]`

use crate::shell::Shell;

/// Write kfuzz.toml and .kfuzz/ in the kernel tree containing the current directory
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Overwrite an existing kfuzz.toml with the defaults
    #[arg(long)]
    pub force: bool,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let tree = super::current_tree()?;
    let outcome = crate::project::init(&tree, args.force)?;
    shell.status(
        "Created",
        format!(
            "{} for linux {}",
            tree.manifest_path().display(),
            tree.version
        ),
    );
    shell.status("Created", format!("{}/", tree.work_dir().display()));
    if outcome.excluded_in_git {
        shell.status("Excluded", ".kfuzz/ in .git/info/exclude");
    }
    shell.json(&serde_json::json!({
        "reason": "init",
        "tree": tree.root,
        "version": tree.version,
        "manifest": tree.manifest_path(),
        "work_dir": tree.work_dir(),
        "git_excluded": outcome.excluded_in_git,
    }));
    shell.println("next: edit kfuzz.toml if needed, then `kfuzz build`");
    Ok(0)
}
