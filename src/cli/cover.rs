//! `kfuzz cover [PATH…] [--corpus DIR] [--html DIR] [--json] [--patch [REV|FILE]]`: the lines
//! a corpus reaches, by file and function, without a running fuzzer.

use std::path::PathBuf;

use anyhow::Context;

use crate::kernel::lines::LineTable;
use crate::kernel::patch::{cover::PatchMap, Patch, PatchSource};
use crate::kernel::symbols::Symbols;
use crate::shell::Shell;

/// Coverage by source: the lines a corpus reaches in the built kernel, per file and function
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories of the tree (default: every file the corpus reaches)
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// A corpus folder (repeatable; default: the work dir's corpus and kfuzz.toml's
    /// regress.corpus)
    #[arg(long, value_name = "DIR")]
    pub corpus: Vec<PathBuf>,
    /// The kernel the corpus is located in: a vmlinux, a bzImage in its build, or a build
    /// folder (default: the tree's build)
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Write an HTML report (index.html and a page per file) into DIR
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
    /// Print the per-file and per-function figures as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Mark a patch's changed lines: a diff file, a commit, or (no value) the working tree's
    /// changes against HEAD
    #[arg(long, value_name = "REV|FILE", num_args = 0..=1, default_missing_value = "")]
    pub patch: Option<String>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    let tree = super::current_tree()?;
    let manifest = crate::manifest::Manifest::load(&tree.manifest_path())?;
    let patch = match &args.patch {
        Some(a) => Some(Patch::load(&tree.root, &PatchSource::from_arg(Some(a)))?),
        None => None,
    };
    let kernel = args.kernel.clone().unwrap_or_else(|| tree.build_dir());
    let vmlinux = crate::kernel::symbols::vmlinux_for(&kernel).with_context(|| {
        format!(
            "no vmlinux for {}: `kfuzz build` first, or pass --kernel",
            kernel.display()
        )
    })?;
    let corpora = if args.corpus.is_empty() {
        super::syscalls::known_corpora(&tree, &manifest)
    } else {
        for c in &args.corpus {
            anyhow::ensure!(c.is_dir(), "--corpus {}: not a directory", c.display());
        }
        args.corpus.clone()
    };
    let started = std::time::Instant::now();
    let symbols = Symbols::load(&vmlinux)?;
    let table = LineTable::open(&vmlinux)?;
    let dirs: Vec<&std::path::Path> = corpora.iter().map(PathBuf::as_path).collect();
    let rec = crate::cover::recorded(&dirs, &symbols);
    if rec.programs == 0 {
        shell.warn(format!(
            "no corpus program with a coverage record in {}",
            corpora
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if rec.unlocated > 0 {
        shell.verbose(
            "Cover",
            format!(
                "{} recorded PCs are in functions this build lacks or has twice: their recorded \
                 lines count instead",
                rec.unlocated
            ),
        );
    }
    let map = match &patch {
        Some(p) => Some(PatchMap::new(p, &table)?),
        None => None,
    };
    let report = crate::cover::compute(&table, &args.paths, &rec.pcs, &rec.lines, map.as_ref())?;
    for p in &args.paths {
        if report.under(p).next().is_none() {
            shell.warn(format!(
                "{p}: no coverable line there in {} (not built, not a path of the tree, or no \
                 KCOV)",
                vmlinux.display()
            ));
        }
    }
    shell.status(
        "Covered",
        format!(
            "{} of {} lines ({:.1}%) in {} files, from {} programs ({} PCs) in {:.1}s",
            report.total.reached,
            report.total.lines,
            report.total.percent,
            report.total.files,
            rec.programs,
            rec.pcs.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    if let Some(dir) = &args.html {
        let n = crate::cover::html::write(&report, &tree.root, dir)?;
        shell.status(
            "Wrote",
            format!("{n} pages: {}", dir.join("index.html").display()),
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.html.is_none() {
        for f in &report.files {
            shell.println(format!(
                "{:>6.1}%  {:>5}/{:<5}  {}",
                f.percent, f.reached, f.lines, f.path
            ));
        }
    }
    Ok(0)
}
