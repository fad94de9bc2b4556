//! `kfuzz corpus import|export|minimize`: moving corpora between machines, trees and CI.
//!
//! Corpus programs are plain syzkaller-format text (`*.syz`), each with an optional
//! `<name>.meta.json` holding the coverage it was recorded with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kfuzz_prog::text;

use super::syscalls::TargetArgs;
use crate::fuzz::corpus;
use crate::shell::Shell;

/// Import, export or minimize the corpus
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add the programs of other folders (another machine's corpus, a syzkaller corpus
    /// unpacked to text) that parse against the current descriptions; list the rest
    Import {
        /// Folders to read (every file but `*.meta.json`)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The work dir whose corpus receives them (default: kfuzz.toml's fuzz.workdir)
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Write the corpus (by default its minimized set) to a folder, e.g. a regression corpus
    /// committed next to the subsystem; of the folder's files, only those it wrote (listed in
    /// its `.kfuzz-export`) are ever replaced or removed
    Export {
        /// Where (default: kfuzz.toml's regress.export)
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Every program, not only the smallest set with the same coverage
        #[arg(long)]
        all: bool,
        /// Leave out the coverage records (`*.meta.json`); `kfuzz regress` then checks crashes
        /// only
        #[arg(long)]
        no_meta: bool,
        /// The work dir to export from (default: kfuzz.toml's fuzz.workdir)
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
    /// Keep the smallest set of programs with the same recorded coverage; the others move to
    /// `corpus.dropped/` beside the corpus
    Minimize {
        /// Only say what would be dropped
        #[arg(long)]
        dry_run: bool,
        /// The work dir (default: kfuzz.toml's fuzz.workdir)
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    match args.command {
        Command::Import {
            dirs,
            workdir,
            target,
        } => import(&dirs, workdir, &target, shell),
        Command::Export {
            dir,
            all,
            no_meta,
            workdir,
        } => export(dir, all, no_meta, workdir, shell),
        Command::Minimize { dry_run, workdir } => minimize(dry_run, workdir, shell),
    }
}

/// The work dir and the tree root (when in a tree) and its manifest.
fn workdir_of(
    given: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, Option<(PathBuf, crate::manifest::Manifest)>)> {
    let in_tree = super::current_tree().and_then(|t| {
        let m = crate::manifest::Manifest::load(&t.manifest_path())?;
        Ok((t.root, m))
    });
    match (given, in_tree) {
        (Some(d), t) => Ok((std::path::absolute(d)?, t.ok())),
        (None, Ok((root, m))) => Ok((root.join(&m.fuzz.workdir), Some((root, m)))),
        (None, Err(e)) => Err(e.context("give --workdir outside a kfuzz-initialised tree")),
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct ImportReport {
    imported: usize,
    already: usize,
    malformed: Vec<(PathBuf, String)>,
    unknown_call: Vec<(PathBuf, String)>,
    empty: Vec<PathBuf>,
}

fn import(
    dirs: &[PathBuf],
    workdir: Option<PathBuf>,
    target: &TargetArgs,
    shell: &Shell,
) -> anyhow::Result<i32> {
    let l = target.load(shell)?;
    let t = &l.loaded.target;
    let workdir = match workdir {
        Some(d) => std::path::absolute(d)?,
        None => l.tree.root.join(&l.manifest.fuzz.workdir),
    };
    let into = workdir.join("corpus");
    let mut rep = ImportReport::default();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
            .collect();
        files.sort();
        for path in files {
            let src = match std::fs::read(&path) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(s) => s,
                    Err(_) => {
                        rep.malformed
                            .push((path, "not text (a binary syzkaller corpus.db?)".into()));
                        continue;
                    }
                },
                Err(e) => {
                    rep.malformed.push((path, format!("cannot read: {e}")));
                    continue;
                }
            };
            let prog = match text::parse(t, &src) {
                Ok(p) if p.calls.is_empty() => {
                    rep.empty.push(path);
                    continue;
                }
                Ok(p) => p,
                Err(e) if e.is_unknown_call() => {
                    rep.unknown_call.push((path, e.to_string()));
                    continue;
                }
                Err(e) => {
                    rep.malformed.push((path, e.to_string()));
                    continue;
                }
            };
            let txt = text::format(t, &prog);
            let dest = into.join(format!("{}.syz", corpus::name_of(&txt)));
            if dest.exists() {
                rep.already += 1;
                continue;
            }
            let saved = corpus::save(&into, &txt)?;
            // Its coverage record, when it came with one (`x.syz` → `x.meta.json`, or
            // `x.meta.json` beside an extension-less `x`).
            let meta = corpus::load_meta(&path).or_else(|| {
                let p = PathBuf::from(format!("{}.meta.json", path.display()));
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|s| serde_json::from_str(&s).ok())
            });
            if let Some(meta) = meta {
                corpus::save_meta(&saved, &meta)?;
            }
            rep.imported += 1;
        }
    }
    for (p, why) in &rep.malformed {
        shell.warn(format!("{}:{why} (skipped: malformed)", p.display()));
    }
    for (p, why) in &rep.unknown_call {
        shell.warn(format!(
            "{}:{why} (skipped: our descriptions do not have it)",
            p.display()
        ));
    }
    for p in &rep.empty {
        shell.warn(format!("{}: no calls (skipped)", p.display()));
    }
    let skipped = rep.malformed.len() + rep.unknown_call.len() + rep.empty.len();
    shell.status(
        "Imported",
        format!(
            "{} programs into {} ({} already there); skipped {skipped}: {} malformed, {} with \
             unknown calls, {} empty",
            rep.imported,
            into.display(),
            rep.already,
            rep.malformed.len(),
            rep.unknown_call.len(),
            rep.empty.len()
        ),
    );
    shell.json(&serde_json::json!({"reason": "corpus-imported", "report": rep}));
    Ok(0)
}

/// The corpus programs with their recorded coverage keys and sizes.
struct Entry {
    path: PathBuf,
    text: String,
    meta: Option<corpus::Meta>,
    keys: Vec<String>,
}

fn entries(dir: &Path) -> Vec<Entry> {
    corpus::load_texts(dir)
        .into_iter()
        .map(|(path, text)| {
            let meta = corpus::load_meta(&path);
            let keys = meta
                .as_ref()
                .map(crate::regress::recorded_keys)
                .unwrap_or_default();
            Entry {
                path,
                text,
                meta,
                keys,
            }
        })
        .collect()
}

/// Indices of the entries to keep: the minimized set of those with coverage, and every one
/// without (nothing to judge it by).
fn keep_set(list: &[Entry]) -> Vec<usize> {
    let with: Vec<usize> = (0..list.len())
        .filter(|&i| !list[i].keys.is_empty())
        .collect();
    let covers: Vec<(Vec<String>, usize)> = with
        .iter()
        .map(|&i| (list[i].keys.clone(), list[i].text.lines().count()))
        .collect();
    let mut keep: Vec<usize> = corpus::minimize_set(&covers)
        .into_iter()
        .map(|k| with[k])
        .chain((0..list.len()).filter(|&i| list[i].keys.is_empty()))
        .collect();
    keep.sort_unstable();
    keep
}

/// The work dir's corpus folder, which must be there: a mistyped `--workdir` is an error, not
/// an empty corpus.
fn corpus_dir_of(workdir: &Path) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        workdir.is_dir(),
        "work dir {} does not exist (is --workdir right?)",
        workdir.display()
    );
    let dir = workdir.join("corpus");
    anyhow::ensure!(
        dir.is_dir(),
        "{} does not exist: the work dir has no corpus yet",
        dir.display()
    );
    Ok(dir)
}

fn minimize(dry_run: bool, workdir: Option<PathBuf>, shell: &Shell) -> anyhow::Result<i32> {
    let (workdir, _) = workdir_of(workdir)?;
    let dir = corpus_dir_of(&workdir)?;
    let list = entries(&dir);
    let keep = keep_set(&list);
    let no_meta = list.iter().filter(|e| e.keys.is_empty()).count();
    let dropped_dir = workdir.join("corpus.dropped");
    let mut dropped = 0;
    for (i, e) in list.iter().enumerate() {
        if keep.binary_search(&i).is_ok() {
            continue;
        }
        dropped += 1;
        if dry_run {
            shell.verbose("Dropping", e.path.display());
            continue;
        }
        std::fs::create_dir_all(&dropped_dir)
            .with_context(|| format!("cannot create {}", dropped_dir.display()))?;
        let to = free_name(&dropped_dir, &e.path);
        for (from, to) in [
            (e.path.clone(), to.clone()),
            (corpus::meta_path(&e.path), corpus::meta_path(&to)),
        ] {
            if from.exists() {
                std::fs::rename(&from, &to)
                    .with_context(|| format!("cannot move {}", from.display()))?;
            }
        }
    }
    shell.status(
        if dry_run { "Would keep" } else { "Minimized" },
        format!(
            "{} of {} programs keep the same recorded coverage ({no_meta} without a coverage \
             record kept as they are); {dropped} {}",
            keep.len(),
            list.len(),
            if dry_run {
                "would be dropped".to_string()
            } else {
                format!("moved to {}", dropped_dir.display())
            }
        ),
    );
    shell.json(&serde_json::json!({
        "reason": "corpus-minimized",
        "kept": keep.len(),
        "dropped": dropped,
        "dry_run": dry_run,
    }));
    Ok(0)
}

/// Where `program` goes in `dir` without replacing a program (or its record) dropped earlier:
/// its own name, or `<stem>.N.syz`.
fn free_name(dir: &Path, program: &Path) -> PathBuf {
    let stem = program
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let taken = |p: &Path| p.exists() || corpus::meta_path(p).exists();
    let first = dir.join(format!("{stem}.syz"));
    if !taken(&first) {
        return first;
    }
    (1..)
        .map(|n| dir.join(format!("{stem}.{n}.syz")))
        .find(|p| !taken(p))
        .unwrap_or(first)
}

/// A reviewable file name: the program's last call, then its hash.
fn export_name(e: &Entry) -> String {
    let last = e
        .text
        .lines()
        .last()
        .and_then(|l| l.split('(').next())
        .map(|c| c.rsplit("= ").next().unwrap_or(c).trim())
        .unwrap_or("prog");
    let clean: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{clean}-{}", corpus::name_of(&e.text))
}

/// Folders kfuzz manages, which an export must not write into: the work dir (the corpus and
/// everything beside it) and the tree's `.kfuzz/`.
fn refuse_managed(
    to: &Path,
    workdir: &Path,
    tree: Option<&(PathBuf, crate::manifest::Manifest)>,
) -> anyhow::Result<()> {
    let corpus = workdir.join("corpus");
    let managed = [
        Some((corpus, "the corpus")),
        Some((workdir.to_path_buf(), "the work dir")),
        tree.map(|(root, _)| (root.join(".kfuzz"), "kfuzz's folder")),
    ];
    for (dir, what) in managed.into_iter().flatten() {
        if crate::fsutil::is_within(to, &dir)? {
            anyhow::bail!(
                "will not export into {}: it is in {what} ({}), which kfuzz manages; give a \
                 folder outside it",
                to.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn export(
    dir: Option<PathBuf>,
    all: bool,
    no_meta: bool,
    workdir: Option<PathBuf>,
    shell: &Shell,
) -> anyhow::Result<i32> {
    let (workdir, tree) = workdir_of(workdir)?;
    let to = match (dir, &tree) {
        (Some(d), _) => d,
        (None, Some((root, m))) => match &m.regress.export {
            Some(d) => root.join(d),
            None => anyhow::bail!(
                "where to? give a folder, or set `export` under [regress] in kfuzz.toml"
            ),
        },
        (None, None) => anyhow::bail!("where to? give a folder"),
    };
    let corpus_dir = corpus_dir_of(&workdir)?;
    refuse_managed(&to, &workdir, tree.as_ref())?;
    let list = entries(&corpus_dir);
    anyhow::ensure!(!list.is_empty(), "{} has no programs", corpus_dir.display());
    let keep: Vec<usize> = if all {
        (0..list.len()).collect()
    } else {
        keep_set(&list)
    };
    // The folder's files kfuzz owns are these; what else is there is the user's.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut programs = 0;
    for &i in &keep {
        let e = &list[i];
        let name = export_name(e);
        if files
            .insert(format!("{name}.syz"), e.text.as_bytes().to_vec())
            .is_none()
        {
            programs += 1;
        }
        if let (false, Some(meta)) = (no_meta, &e.meta) {
            files.insert(format!("{name}.meta.json"), corpus::meta_bytes(meta)?);
        }
    }
    let out = corpus::export::sync(&to, &files)
        .with_context(|| format!("cannot export to {}", to.display()))?;
    for name in &out.left_changed {
        shell.warn(format!(
            "left {}: no longer in the set, but changed since kfuzz exported it, so it is yours \
             now",
            to.join(name).display()
        ));
    }
    if !out.foreign_same.is_empty() {
        shell.note(
            "Kept",
            format!(
                "{} file(s) already there with the same content, which kfuzz did not write (not \
                 in {}); it will never remove them",
                out.foreign_same.len(),
                corpus::export::LIST
            ),
        );
    }
    let removed = out.removed.iter().filter(|n| n.ends_with(".syz")).count();
    shell.status(
        "Exported",
        format!(
            "{programs} of {} programs to {}{}{}",
            list.len(),
            to.display(),
            if all { "" } else { " (the minimized set)" },
            if removed > 0 {
                format!("; removed {removed} no longer in the set")
            } else {
                String::new()
            }
        ),
    );
    shell.json(&serde_json::json!({
        "reason": "corpus-exported",
        "dir": to,
        "programs": programs,
        "removed": removed,
        "files": out,
    }));
    Ok(0)
}
