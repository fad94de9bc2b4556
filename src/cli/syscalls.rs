//! `kfuzz syscalls [--syscalls GLOBS] [--disable GLOBS] [--descriptions DIR]`: the selected calls
//! on stdout, a summary by description file (disabled calls counted by reason) on stderr, and
//! every disabled call with `-v`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kfuzz_prog::summary::{summarize, FileSummary, Summary};

use crate::manifest::{GlobKey, Manifest};
use crate::shell::{Shell, Verbosity};

/// Which calls the descriptions give for this tree, which a glob selects, and why others are out
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print every call left out and why, not only disabled ones
    #[arg(long)]
    pub all: bool,
    /// List the calls that reach these source files or directories (from the corpus's
    /// coverage records), with how much of each they reach
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub files: Vec<String>,
    /// The same for a MAINTAINERS entry's files (its title, or a unique part of it)
    #[arg(long, value_name = "NAME", conflicts_with = "files")]
    pub subsystem: Option<String>,
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
    /// Add a folder of syzlang descriptions (repeatable; a same-named file replaces ours);
    /// `syzkaller` or `syzkaller@REV` for those `kfuzz descriptions fetch` brought in
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
        let mut dirs = Vec::new();
        for d in &manifest.fuzz.descriptions {
            dirs.push(
                crate::descriptions::resolve_entry(d, &tree.root).with_context(|| {
                    format!(
                        "{}: [fuzz] descriptions entry `{}`",
                        tree.manifest_path().display(),
                        d.display()
                    )
                })?,
            );
        }
        for d in &self.descriptions {
            dirs.push(crate::descriptions::resolve_entry(d, Path::new(""))?);
        }
        let loaded = crate::kernel::target::load(&tree, &dirs, shell)?;
        let selection = select(&manifest, &loaded.target, &self.syscalls, &self.disable)?;
        Ok(Loaded {
            tree,
            manifest,
            loaded,
            selection,
        })
    }
}

/// The calls `--syscalls` (or kfuzz.toml's `syscalls`) select minus the disabled ones. Every glob
/// must name some call, and something must be left: each problem is named with where the glob
/// was written (the kfuzz.toml line, or the option).
pub fn select(
    manifest: &Manifest,
    target: &kfuzz_prog::target::Target,
    syscalls: &[String],
    disable: &[String],
) -> anyhow::Result<kfuzz_prog::select::Selection> {
    use kfuzz_prog::select::{check_disable_globs, split_globs};
    let from_manifest = syscalls.is_empty();
    let globs = if from_manifest {
        &manifest.fuzz.syscalls
    } else {
        syscalls
    };
    let mut problems: Vec<String> = Vec::new();
    if let Err(bad) = check_disable_globs(target, &manifest.fuzz.disable) {
        problems.extend(
            bad.0
                .iter()
                .map(|g| format!("{}: {g}", manifest.glob_origin(GlobKey::Disable, &g.glob))),
        );
    }
    if let Err(bad) = check_disable_globs(target, disable) {
        problems.extend(bad.0.iter().map(|g| format!("--disable: {g}")));
    }
    let mut all_disable = manifest.fuzz.disable.clone();
    all_disable.extend(disable.iter().cloned());
    let selection = match kfuzz_prog::select::select(target, globs, &all_disable) {
        Ok(s) => Some(s),
        Err(bad) => {
            problems.extend(bad.0.iter().map(|g| {
                if from_manifest {
                    format!("{}: {g}", manifest.glob_origin(GlobKey::Syscalls, &g.glob))
                } else {
                    g.to_string()
                }
            }));
            None
        }
    };
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let selection = selection.context("no selection and no problem")?;
    if !selection.enabled.is_empty() {
        return Ok(selection);
    }
    let source = if from_manifest {
        format!("{}: [fuzz] syscalls", manifest.path.display())
    } else {
        "--syscalls".to_string()
    };
    if split_globs(globs).is_empty() {
        bail!("no call is selected: {source} lists no glob (e.g. `shm*,msgsnd`)");
    }
    let mut by = Vec::new();
    if !manifest.fuzz.disable.is_empty() {
        by.push(format!("{}: [fuzz] disable", manifest.path.display()));
    }
    if !disable.is_empty() {
        by.push("--disable".to_string());
    }
    if by.is_empty() {
        bail!("no call is selected by {source}");
    }
    bail!(
        "no call is selected: every call {source} selects is left out by {}",
        by.join(" and ")
    )
}

/// The corpora whose coverage records say which calls reach which files: the work dir's and
/// kfuzz.toml's regression corpora.
pub fn known_corpora(
    tree: &crate::kernel::tree::KernelTree,
    manifest: &crate::manifest::Manifest,
) -> Vec<PathBuf> {
    std::iter::once(tree.root.join(&manifest.fuzz.workdir).join("corpus"))
        .chain(manifest.regress.corpus.iter().map(|d| tree.root.join(d)))
        .collect()
}

/// `--files`/`--subsystem`: the calls that reach those files.
fn reaching(args: &Args, l: &Loaded, shell: &Shell) -> anyhow::Result<i32> {
    use crate::fuzz::reach::{self, CallReach, FileSet};
    let (what, files) = match &args.subsystem {
        Some(name) => {
            let s = reach::subsystem(&l.tree.root.join("MAINTAINERS"), name)?;
            shell.status(
                "Subsystem",
                format!("{}: {}", s.name, s.files.include.join(" ")),
            );
            (s.name.clone(), s.files)
        }
        None => (args.files.join(" "), FileSet::of_paths(&args.files)),
    };
    let corpora = known_corpora(&l.tree, &l.manifest);
    let known = CallReach::learn(&l.loaded.target, &corpora);
    if known.programs == 0 {
        bail!(
            "no corpus program with a coverage record in {}: run `kfuzz run` first (each \
             program it keeps records what it reached)",
            corpora
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let calls = known.calls_reaching(&files);
    for (call, hits) in &calls {
        let files: Vec<String> = hits
            .iter()
            .map(|h| {
                if h.lines > 0 {
                    format!("{} ({} lines)", h.file, h.lines)
                } else {
                    format!("{} ({} functions)", h.file, h.functions)
                }
            })
            .collect();
        shell.println(format!("{call}  {}", files.join(", ")));
        shell.json(&serde_json::json!({"reason": "call-reaches", "name": call, "files": hits}));
    }
    shell.status(
        "Reaching",
        format!(
            "{} calls reach {what} (learned from {} corpus programs' coverage)",
            calls.len(),
            known.programs
        ),
    );
    Ok(0)
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let l = args.target.load(shell)?;
    if !args.files.is_empty() || args.subsystem.is_some() {
        return reaching(&args, &l, shell);
    }
    let t = &l.loaded.target;
    for w in &t.warnings {
        shell.warn(w);
    }
    for w in &t.shadowed {
        shell.verbose("Shadowed", w);
    }
    if !t.shadowed.is_empty() {
        shell.note(
            "Shadowed",
            format!(
                "{} declarations made again by later description files; the first is used (-v lists them)",
                t.shadowed.len()
            ),
        );
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
    let verbose = shell.verbosity == Verbosity::Verbose;
    for d in &t.disabled {
        if verbose {
            shell.println(format!("  disabled {}: {}", d.name, d.reason));
        }
        shell.json(&serde_json::json!({"reason": "syscall", "name": d.name, "enabled": false, "why": d.reason}));
    }
    print_summary(&summarize(t, &l.selection.enabled), shell);
    if args.all {
        for (n, why) in &l.selection.left_out {
            shell.println(format!("  left out {n}: {why}"));
        }
    }
    // Calls the build's .config compiles out (none when the tree is not built yet).
    let calls: Vec<_> = l
        .selection
        .enabled
        .iter()
        .map(|id| &t.syscalls[*id])
        .collect();
    let names = calls.iter().map(|s| s.call_name.as_str());
    match crate::kernel::syscall_config::missing_syscalls(&l.tree, names) {
        Ok(missing) => {
            for s in &calls {
                if let Some(why) = missing.get(&s.call_name) {
                    shell.println(format!("  not in this kernel: {} ({why})", s.name));
                    let msg =
                        serde_json::json!({"reason": "not-in-kernel", "name": s.name, "why": why});
                    shell.json(&msg);
                }
            }
        }
        Err(e) => shell.warn(format!("{e:#} (looking for calls the .config leaves out)")),
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

/// How many reason classes a file's summary line names before "N more".
const CLASSES_PER_FILE: usize = 2;
/// How many reason classes the overall list shows.
const TOP_REASONS: usize = 10;

/// The per-file table and the most common reasons on stderr, and as JSON objects.
fn print_summary(summary: &Summary, shell: &Shell) {
    let short = |file: &str| file.rsplit('/').next().unwrap_or(file).to_string();
    let width = summary
        .files
        .iter()
        .map(|f| short(&f.file).len())
        .max()
        .unwrap_or(0);
    shell.status(
        "Summary",
        format!(
            "{:<width$} {:>7} {:>8} {:>8}",
            "file", "enabled", "disabled", "selected"
        ),
    );
    // By file name, whichever folder it comes from (ours, syzkaller's, the user's).
    let mut files: Vec<&FileSummary> = summary.files.iter().collect();
    files.sort_by_key(|f| (short(&f.file), f.file.as_str()));
    for f in files {
        let mut why: Vec<String> = f
            .disabled_by
            .iter()
            .take(CLASSES_PER_FILE)
            .map(|(class, n)| format!("{n} {class}"))
            .collect();
        if f.disabled_by.len() > CLASSES_PER_FILE {
            why.push(format!("{} more", f.disabled_by.len() - CLASSES_PER_FILE));
        }
        let why = if why.is_empty() {
            String::new()
        } else {
            format!("  ({})", why.join("; "))
        };
        shell.status(
            "",
            format!(
                "{:<width$} {:>7} {:>8} {:>8}{why}",
                short(&f.file),
                f.enabled,
                f.disabled,
                f.selected
            ),
        );
        let by: Vec<serde_json::Value> = f
            .disabled_by
            .iter()
            .map(|(class, n)| serde_json::json!({"why": class, "calls": n}))
            .collect();
        shell.json(&serde_json::json!({
            "reason": "description-file",
            "file": f.file,
            "enabled": f.enabled,
            "disabled": f.disabled,
            "selected": f.selected,
            "disabled_by": by,
        }));
    }
    let total: usize = summary.reasons.iter().map(|(_, n)| n).sum();
    if total > 0 {
        shell.status(
            "Disabled",
            format!("{total} calls, most often because (`-v` lists each call):"),
        );
        for (class, n) in summary.reasons.iter().take(TOP_REASONS) {
            shell.status("", format!("{n:>6}  {class}"));
        }
    }
    let reasons: Vec<serde_json::Value> = summary
        .reasons
        .iter()
        .map(|(class, n)| serde_json::json!({"why": class, "calls": n}))
        .collect();
    shell.json(&serde_json::json!({"reason": "disabled-reasons", "reasons": reasons}));
}
