//! `kfuzz syscalls [--syscalls GLOBS] [--disable GLOBS] [--descriptions DIR]`

use std::path::PathBuf;

use crate::manifest::Manifest;
use crate::shell::Shell;

/// Which calls the descriptions give for this tree, which a glob selects, and why others are out
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print every call left out and why, not only disabled ones
    #[arg(long)]
    pub all: bool,
}

/// Options shared by every command that needs the descriptions.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Calls to fuzz: globs, comma separated (`shm*,msgsnd`); default: kfuzz.toml
    #[arg(long, value_name = "GLOBS")]
    pub syscalls: Vec<String>,
    /// Calls never to fuzz (globs)
    #[arg(long, value_name = "GLOBS")]
    pub disable: Vec<String>,
    /// Add a folder of syzlang descriptions (repeatable; a same-named file replaces ours)
    #[arg(long, value_name = "DIR")]
    pub descriptions: Vec<PathBuf>,
}

/// The tree, its manifest, the compiled target and the selected calls.
pub struct Loaded {
    pub tree: crate::kernel::tree::KernelTree,
    pub manifest: Manifest,
    pub loaded: crate::kernel::target::LoadedTarget,
    pub selection: kfuzz_prog::select::Selection,
}

impl TargetArgs {
    pub fn load(&self, shell: &Shell) -> anyhow::Result<Loaded> {
        let tree = super::current_tree()?;
        let manifest = Manifest::load(&tree.manifest_path())?;
        let mut dirs: Vec<PathBuf> = manifest
            .fuzz
            .descriptions
            .iter()
            .map(|d| tree.root.join(d))
            .collect();
        dirs.extend(self.descriptions.iter().cloned());
        let loaded = crate::kernel::target::load(&tree, &dirs, shell)?;
        let globs = if self.syscalls.is_empty() {
            manifest.fuzz.syscalls.clone()
        } else {
            self.syscalls.clone()
        };
        let mut disable = manifest.fuzz.disable.clone();
        disable.extend(self.disable.iter().cloned());
        let selection = kfuzz_prog::select::select(&loaded.target, &globs, &disable);
        Ok(Loaded {
            tree,
            manifest,
            loaded,
            selection,
        })
    }
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let l = args.target.load(shell)?;
    let t = &l.loaded.target;
    for w in &t.warnings {
        shell.warn(w);
    }
    shell.status(
        "Loaded",
        format!(
            "{} calls from {} description files ({} disabled) for linux {}",
            t.syscalls.len() + t.disabled.len(),
            l.loaded.files,
            t.disabled.len(),
            l.tree.version
        ),
    );
    for id in &l.selection.enabled {
        let name = &t.syscalls[*id].name;
        match l.selection.added_for.get(name) {
            Some(r) => shell.println(format!("{name}  (needed to create {r})")),
            None => shell.println(name),
        }
        shell.json(&serde_json::json!({"reason": "syscall", "name": name, "enabled": true, "added_for": l.selection.added_for.get(name)}));
    }
    for d in &t.disabled {
        shell.println(format!("  disabled {}: {}", d.name, d.reason));
        shell.json(&serde_json::json!({"reason": "syscall", "name": d.name, "enabled": false, "why": d.reason}));
    }
    if args.all {
        for (n, why) in &l.selection.left_out {
            shell.println(format!("  left out {n}: {why}"));
        }
    }
    shell.status(
        "Selected",
        format!(
            "{} of {} enabled calls",
            l.selection.enabled.len(),
            t.syscalls.len()
        ),
    );
    Ok(0)
}
