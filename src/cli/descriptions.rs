//! `kfuzz descriptions fetch [--rev REV] [--url URL]`: syzkaller's Linux descriptions into kfuzz's
//! cache, where kfuzz.toml's `descriptions = ["syzkaller"]` finds them.

use crate::descriptions::{self, SYZKALLER_REV, SYZKALLER_URL};
use crate::shell::Shell;

/// Manage syzlang descriptions kept outside the tree (syzkaller's)
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Bring syzkaller's sys/linux (`*.txt`, `*.const`) at a revision into kfuzz's cache
    /// (~/.cache/kfuzz/descriptions/COMMIT); kfuzz.toml's `descriptions = ["syzkaller"]` then
    /// uses them (`syzkaller@REV` for another revision)
    Fetch {
        /// A commit, tag or branch of the repository
        #[arg(long, value_name = "REV", default_value = SYZKALLER_REV)]
        rev: String,
        /// The syzkaller repository: a URL or the path of a local clone
        #[arg(long, value_name = "URL", default_value = SYZKALLER_URL)]
        url: String,
    },
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    match args.command {
        Command::Fetch { rev, url } => {
            let f = descriptions::fetch(&url, &rev, shell)?;
            if f.fresh {
                shell.status(
                    "Fresh",
                    format!(
                        "syzkaller {} ({} description files in {})",
                        f.commit,
                        f.files,
                        f.dir.display()
                    ),
                );
            } else {
                shell.status(
                    "Extracted",
                    format!("{} description files into {}", f.files, f.dir.display()),
                );
            }
            shell.json(&serde_json::json!({
                "reason": "descriptions-fetched",
                "commit": f.commit,
                "dir": f.dir,
                "files": f.files,
                "fresh": f.fresh,
            }));
            Ok(0)
        }
    }
}
