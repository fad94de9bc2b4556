//! The fuzzing target for a tree: our descriptions (embedded) plus any the user adds, compiled
//! against the tree's syscall table and the constants its own headers define. Constants come from
//! compiling one generated C file against `make headers_install` output with the host compiler,
//! cached per tree and description set; syzkaller `*.const` files are read when a folder has them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kfuzz_prog::target::{self as ptarget, DescriptionFile, Target};
use sha2::{Digest, Sha256};

use super::tree::KernelTree;
use crate::shell::Shell;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/descriptions.rs"));
}

/// The description files: the embedded ones, then each folder's `*.txt` (a file with the same
/// name replaces the embedded one). A folder holding syzkaller `*.const` files replaces the
/// embedded set altogether (its calls would clash with ours).
pub fn description_files(dirs: &[PathBuf]) -> anyhow::Result<(Vec<DescriptionFile>, Vec<PathBuf>)> {
    let mut files: Vec<DescriptionFile> = embedded::EMBEDDED
        .iter()
        .map(|(n, t)| DescriptionFile {
            name: format!("descriptions/linux/{n}"),
            text: t.to_string(),
        })
        .collect();
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
        if !consts.is_empty() {
            files.retain(|f| !f.name.starts_with("descriptions/linux/"));
            const_files.extend(consts);
        }
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let base = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.retain(|f| {
                !f.name.ends_with(&format!("/{base}")) || !f.name.starts_with("descriptions/linux/")
            });
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

/// The values of `names`, by compiling and running a C program against the tree's headers.
/// Names the headers do not define are simply absent from the result.
pub fn tree_consts(
    tree: &KernelTree,
    includes: &[String],
    names: &BTreeSet<String>,
    shell: &Shell,
) -> anyhow::Result<HashMap<String, u64>> {
    let inc = headers(tree, shell)?;
    let mut h = Sha256::new();
    h.update(b"kfuzz-consts-v1\0");
    h.update(tree.version.as_bytes());
    h.update(std::fs::read(inc.join("linux/version.h")).unwrap_or_default());
    for i in includes {
        h.update(i.as_bytes());
        h.update(b"\0");
    }
    for n in names {
        h.update(n.as_bytes());
        h.update(b"\0");
    }
    let key = hex::encode(&h.finalize()[..8]);
    let cache_dir = tree.work_dir().join("target");
    let cache = cache_dir.join(format!("consts-{key}.json"));
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Ok(map) = serde_json::from_slice::<HashMap<String, u64>>(&bytes) {
            return Ok(map);
        }
    }
    shell.status(
        "Extracting",
        format!("{} constants from the tree's headers", names.len()),
    );
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut remaining: Vec<String> = names.iter().cloned().collect();
    let mut includes: Vec<String> = includes.to_vec();
    includes.dedup();
    for _attempt in 0..8 {
        let (src, first_line) = c_source(&includes, &remaining);
        let c = dir.path().join("consts.c");
        let exe = dir.path().join("consts");
        std::fs::write(&c, &src).context("cannot write the constants program")?;
        let out = duct::cmd!("gcc", "-w", "-fmax-errors=0", "-I", &inc, "-o", &exe, &c)
            .stderr_capture()
            .stdout_null()
            .unchecked()
            .run()
            .context("cannot run gcc (Debian: apt-get install gcc)")?;
        if out.status.success() {
            let text = duct::cmd!(&exe)
                .read()
                .context("running the constants program")?;
            let mut map = HashMap::new();
            for line in text.lines() {
                if let Some((n, v)) = line.split_once(' ') {
                    if let Ok(v) = v.parse::<u64>() {
                        map.insert(n.to_string(), v);
                    }
                }
            }
            std::fs::create_dir_all(&cache_dir)
                .with_context(|| format!("cannot create {}", cache_dir.display()))?;
            crate::kernel::build::write_atomic(&cache, &serde_json::to_vec(&map)?)?;
            return Ok(map);
        }
        // Drop the names whose lines failed, or the includes that do not exist, and try again.
        let err = String::from_utf8_lossy(&out.stderr);
        let mut bad_lines = BTreeSet::new();
        let mut bad_includes = Vec::new();
        for l in err.lines() {
            if let Some(rest) = l.split("consts.c:").nth(1) {
                if let Some(n) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) {
                    if l.contains("error") {
                        bad_lines.insert(n);
                    }
                }
            }
            if l.contains("No such file or directory") {
                bad_includes.extend(includes.iter().filter(|i| l.contains(i.as_str())).cloned());
            }
        }
        let before = remaining.len() + includes.len();
        includes.retain(|i| !bad_includes.contains(i));
        remaining = remaining
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !bad_lines.contains(&(first_line + i)))
            .map(|(_, n)| n)
            .collect();
        if remaining.len() + includes.len() == before {
            bail!(
                "cannot compile the constants program against {}:\n{}",
                inc.display(),
                err.lines().take(15).collect::<Vec<_>>().join("\n")
            );
        }
    }
    bail!(
        "cannot compile the constants program against {} (too many attempts)",
        inc.display()
    )
}

/// The C program, and the line number of the first name's printf.
fn c_source(includes: &[String], names: &[String]) -> (String, usize) {
    let mut s = String::from("#define _GNU_SOURCE\n");
    for i in includes {
        s.push_str(&format!("#include <{i}>\n"));
    }
    s.push_str("int printf(const char *, ...);\nint main(void) {\n");
    let first = s.lines().count() + 1;
    for n in names {
        s.push_str(&format!(
            "printf(\"{n} %llu\\n\", (unsigned long long)({n}));\n"
        ));
    }
    s.push_str("return 0;\n}\n");
    (s, first)
}

/// Everything `load` found, for `kfuzz syscalls` to print.
pub struct LoadedTarget {
    pub target: Target,
    pub files: usize,
}

/// Parses the descriptions and compiles them for this tree.
pub fn load(tree: &KernelTree, dirs: &[PathBuf], shell: &Shell) -> anyhow::Result<LoadedTarget> {
    let (files, const_files) = description_files(dirs)?;
    let nodes = ptarget::parse_files(&files).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (includes, names) = ptarget::const_requirements(&nodes);
    let mut consts = read_const_files(&const_files)?;
    let missing: BTreeSet<String> = names
        .iter()
        .filter(|n| !consts.contains_key(*n))
        .cloned()
        .collect();
    if !missing.is_empty() && const_files.is_empty() {
        let _lock = tree.lock()?;
        consts.extend(tree_consts(tree, &includes, &missing, shell)?);
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
