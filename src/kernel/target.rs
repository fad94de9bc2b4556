//! The fuzzing target for a tree: our descriptions (embedded) plus any the user adds, compiled
//! against the tree's syscall table and the constants its own headers define. Constants come from
//! compiling one generated C file against `make headers_install` output with the host compiler,
//! cached per tree and description set; syzkaller `*.const` files are read when a folder has them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kfuzz_prog::target::{self as ptarget, DescriptionFile, Target};

use super::consts;
use super::tree::KernelTree;
use crate::shell::Shell;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/descriptions.rs"));
}

/// The description files: the embedded ones, then each folder's `*.txt`. A folder of
/// syzkaller's (it has `*.const` files beside its descriptions) adds its files but never
/// replaces one of ours: our file of the same name stands in for theirs. Any other folder is
/// the user's, and its file replaces ours of the same name.
pub fn description_files(dirs: &[PathBuf]) -> anyhow::Result<(Vec<DescriptionFile>, Vec<PathBuf>)> {
    let mut files: Vec<DescriptionFile> = embedded::EMBEDDED
        .iter()
        .map(|(n, t)| DescriptionFile {
            name: format!("descriptions/linux/{n}"),
            text: t.to_string(),
        })
        .collect();
    let ours = |f: &DescriptionFile, base: &str| {
        f.name.starts_with("descriptions/linux/") && f.name.ends_with(&format!("/{base}"))
    };
    let mut const_files = Vec::new();
    for dir in dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read descriptions folder {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        let consts: Vec<PathBuf> = paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "const"))
            .cloned()
            .collect();
        let syzkaller = !consts.is_empty();
        const_files.extend(consts);
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        {
            let base = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if syzkaller && files.iter().any(|f| ours(f, &base)) {
                continue;
            }
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            files.retain(|f| !ours(f, &base));
            files.push(DescriptionFile {
                name: p.display().to_string(),
                text,
            });
        }
    }
    Ok((files, const_files))
}

/// x86_64 syscall numbers from the tree's `syscall_64.tbl` (`common` and `64` ABIs).
pub fn syscall_numbers(root: &Path) -> anyhow::Result<HashMap<String, u64>> {
    let path = root.join("arch/x86/entry/syscalls/syscall_64.tbl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(nr), Some(abi), Some(name)) = (cols.first(), cols.get(1), cols.get(2)) else {
            bail!(
                "{}:{}: expected `number abi name [entry]`",
                path.display(),
                i + 1
            );
        };
        if *abi == "common" || *abi == "64" {
            let nr: u64 = nr.parse().with_context(|| {
                format!("{}:{}: bad syscall number {nr:?}", path.display(), i + 1)
            })?;
            out.insert(name.to_string(), nr);
        }
    }
    Ok(out)
}

/// `NAME = 123` / `NAME = amd64:123, arm:…` lines of syzkaller `*.const` files (amd64 values).
pub fn read_const_files(paths: &[PathBuf]) -> anyhow::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        for line in text.lines() {
            let Some((name, vals)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name == "arches" || name.starts_with('#') {
                continue;
            }
            let pick = vals
                .split(',')
                .map(str::trim)
                .find_map(|v| match v.split_once(':') {
                    Some((arch, v)) if arch.trim() == "amd64" => Some(v.trim()),
                    Some(_) => None,
                    None => Some(v),
                });
            if let Some(v) = pick.and_then(parse_c_int) {
                out.insert(name.to_string(), v);
            }
        }
    }
    Ok(out)
}

fn parse_c_int(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(n) = s.strip_prefix('-') {
        n.parse::<u64>().ok().map(|v| v.wrapping_neg())
    } else {
        s.parse().ok()
    }
}

/// The tree's exported headers (`make headers_install` into the build dir), made on first use.
fn headers(tree: &KernelTree, shell: &Shell) -> anyhow::Result<PathBuf> {
    let build = tree.build_dir();
    let inc = build.join("usr/include");
    if inc.join("linux/version.h").is_file() {
        return Ok(inc);
    }
    std::fs::create_dir_all(&build)
        .with_context(|| format!("cannot create {}", build.display()))?;
    shell.status(
        "Exporting",
        format!(
            "uapi headers of linux {} (make headers_install)",
            tree.version
        ),
    );
    let out = duct::cmd!(
        "make",
        "-C",
        &tree.root,
        format!("O={}", build.display()),
        "headers_install"
    )
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run()
    .context("cannot run make")?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        bail!(
            "`make headers_install` failed in {}:\n{}",
            tree.root.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(inc)
}

/// Everything `load` found, for `kfuzz syscalls` to print.
pub struct LoadedTarget {
    pub target: Target,
    pub files: usize,
}

/// Parses the descriptions and compiles them for this tree: constants from the tree's own
/// headers as the build configured them (see `consts`), falling back to the exported uapi
/// headers for names that view lacks.
pub fn load(tree: &KernelTree, dirs: &[PathBuf], shell: &Shell) -> anyhow::Result<LoadedTarget> {
    let (files, _const_files) = description_files(dirs)?;
    let nodes = ptarget::parse_files(&files).map_err(|e| anyhow::anyhow!("{e}"))?;
    let needs = ptarget::const_requirements(&nodes);
    let _lock = tree.lock()?;
    let cc = consts::compiler();
    let mut sets = Vec::new();
    if let Some(k) = consts::HeaderSet::kernel(tree, &cc) {
        sets.push(k);
    }
    sets.push(consts::HeaderSet::uapi(
        &headers(tree, shell)?,
        &tree.root,
        &cc,
    ));
    let cache = consts::cache_dir(tree);
    let bar = (shell.is_term() && needs.len() > 20).then(|| {
        let bar = indicatif::ProgressBar::new(needs.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  Extracting [{bar:30}] {pos}/{len} description files' constants",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let started = std::time::Instant::now();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let consts = consts::extract(&needs, &sets, &cache, jobs, &|n, _| {
        if let Some(b) = &bar {
            b.set_position(n as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if started.elapsed() > std::time::Duration::from_secs(2) {
        shell.status(
            "Extracted",
            format!(
                "{} constants of {} description files from linux {}'s headers in {}",
                consts.len(),
                needs.len(),
                tree.version,
                super::build::human_duration(started.elapsed())
            ),
        );
    }
    let numbers = syscall_numbers(&tree.root)?;
    let target = ptarget::compile(&nodes, &consts, &numbers);
    Ok(LoadedTarget {
        target,
        files: files.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syzkaller_const_files_give_amd64_values() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("ipc_amd64.const");
        std::fs::write(&p, "# Code generated by syz-sysgen. DO NOT EDIT.\narches = 386, amd64, arm64\nIPC_RMID = 0\nSHM_HUGETLB = 2048\n__NR_shmget = 386:???, amd64:29, arm64:194\nNEG = -1\n").unwrap();
        let c = read_const_files(&[p]).unwrap();
        assert_eq!(c["IPC_RMID"], 0);
        assert_eq!(c["SHM_HUGETLB"], 2048);
        assert_eq!(c["__NR_shmget"], 29);
        assert_eq!(c["NEG"], u64::MAX);
        assert!(!c.contains_key("arches"));
    }

    #[test]
    fn the_syscall_table_is_read_for_the_64_bit_abi() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("arch/x86/entry/syscalls");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("syscall_64.tbl"), "# comment\n0\tcommon\tread\tsys_read\n29\tcommon\tshmget\tsys_shmget\n512\tx32\trt_sigaction\tcompat_sys_rt_sigaction\n334\t64\trseq\tsys_rseq\n").unwrap();
        let n = syscall_numbers(tmp.path()).unwrap();
        assert_eq!(n["read"], 0);
        assert_eq!(n["shmget"], 29);
        assert_eq!(n["rseq"], 334);
        assert!(
            !n.contains_key("rt_sigaction"),
            "x32 entries are not x86_64 syscalls"
        );
    }
}
