//! `kfuzz crashes [--workdir DIR]`: what the fuzzer found, per title.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::crash_dir;
use crate::shell::Shell;

/// List the crashes found: count, first and last seen, and whether reproducers exist
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The work dir (default: kfuzz.toml's fuzz.workdir)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let workdir = match &args.workdir {
        Some(d) => {
            // A work dir named by hand must exist: a typo would otherwise read as "no crashes".
            match std::fs::metadata(d) {
                Ok(m) if m.is_dir() => d.clone(),
                Ok(_) => bail!("--workdir {}: not a directory", d.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                    "--workdir {}: no such directory (the work dir `kfuzz run` wrote to)",
                    d.display()
                ),
                Err(e) => {
                    return Err(e).with_context(|| format!("--workdir {}", d.display()));
                }
            }
        }
        None => {
            let tree = super::current_tree()?;
            let m = crate::manifest::Manifest::load(&tree.manifest_path())?;
            tree.root.join(&m.fuzz.workdir)
        }
    };
    let dir = workdir.join("crashes");
    if dir.exists() && !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let list = crash_dir::list(&dir);
    if list.is_empty() {
        shell.status("Crashes", format!("none in {}", dir.display()));
    }
    for e in &list {
        let c = match (e.c_repro, e.c_repro_crashes) {
            (true, Some(true)) => "C (crashes)",
            (true, Some(false)) => "C (does not crash)",
            (true, None) => "C",
            (false, _) => "-",
        };
        shell.println(format!(
            "{:>5}x  first {}  last {}  repro: {:>3} {:<18}  {}\n        {}",
            e.count,
            crate::shell::utc(e.first_seen),
            crate::shell::utc(e.last_seen),
            if e.syz_repro { "syz" } else { "-" },
            c,
            e.title,
            e.dir.display()
        ));
        shell.json(&serde_json::json!({"reason": "crash", "crash": e}));
    }
    Ok(0)
}
