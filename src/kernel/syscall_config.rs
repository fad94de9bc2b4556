//! Why a syscall is not in the built kernel: its definitions (`syscall_sources`), the `#ifdef`s
//! and Makefile lines that compile them, and the first of their options the build's `.config`
//! leaves unset (`CONFIG_ADVISE_SYSCALLS is not set`). Reads the tree and the `.config`, writes
//! nothing. Never guesses: a definition built in a way it does not follow counts as present.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::kbuild::{self, Assignment, Cond, Lhs};
use super::kconfig::DotConfig;
use super::syscall_sources::SyscallSources;
use super::tree::KernelTree;

/// The tree's definitions and the build's `.config`, to explain missing syscalls.
pub struct SyscallConfig {
    root: PathBuf,
    sources: SyscallSources,
    config: DotConfig,
    /// Syscall table name → the name its entry point was defined with (`uname` → `newuname`).
    entries: HashMap<String, String>,
    /// Parsed Kbuild/Makefiles by directory: thousands of calls ask about the same few.
    makefiles: std::cell::RefCell<HashMap<String, Option<std::rc::Rc<Vec<Assignment>>>>>,
}

impl SyscallConfig {
    /// None when the tree has not been configured (no `.config` in the build dir).
    pub fn load(tree: &KernelTree) -> anyhow::Result<Option<SyscallConfig>> {
        let path = tree.build_dir().join(".config");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Some(SyscallConfig {
            root: tree.root.clone(),
            sources: SyscallSources::load(tree)?,
            config: DotConfig::parse(&text),
            entries: table_entries(&tree.root),
            makefiles: Default::default(),
        }))
    }

    /// `Some("CONFIG_ADVISE_SYSCALLS is not set")` when every definition of the syscall is
    /// compiled out by the `.config`; None when one is built or it cannot tell.
    pub fn why_missing(&self, call_name: &str) -> Option<String> {
        let name = self
            .entries
            .get(call_name)
            .map_or(call_name, String::as_str);
        let defs = self.sources.definitions(name);
        let mut first = None;
        for d in defs {
            let mut conds = d.conds.clone();
            conds.extend(self.object_conds(&d.file, 0)?);
            let why = conds.iter().find_map(|c| c.unmet(&self.config))?;
            first.get_or_insert(why);
        }
        first
    }

    fn makefile(&self, dir: &str) -> Option<std::rc::Rc<Vec<Assignment>>> {
        if let Some(m) = self.makefiles.borrow().get(dir) {
            return m.clone();
        }
        let d = self.root.join(dir);
        let parsed = std::fs::read_to_string(d.join("Kbuild"))
            .or_else(|_| std::fs::read_to_string(d.join("Makefile")))
            .ok()
            .map(|text| std::rc::Rc::new(kbuild::parse_makefile(&text)));
        self.makefiles
            .borrow_mut()
            .insert(dir.to_string(), parsed.clone());
        parsed
    }

    /// The conditions under which `file` (a `.c` relative to the root) is compiled into the
    /// kernel, innermost first; None when its Makefile line is not found.
    fn object_conds(&self, file: &str, depth: usize) -> Option<Vec<Cond>> {
        let (dir, name) = split(file);
        let stem = name.strip_suffix(".c")?;
        let mut conds = Vec::new();
        // Its object, in the directory's Makefile or the parent's (`sub/foo.o`).
        let mut at = None;
        for anc in ancestors(dir).take(2) {
            let token = format!("{}{stem}.o", relative(dir, anc));
            if let Some(c) = self.makefile(anc).and_then(|m| chain(&m, &token)) {
                conds.extend(c);
                at = Some(anc);
                break;
            }
        }
        let Some(mut cur) = at else {
            return if depth < 2 {
                self.includer_conds(dir, name, depth)
            } else {
                None
            };
        };
        // Then each directory in the one above that descends into it.
        while !cur.is_empty() {
            let up = ancestors(cur).skip(1).find_map(|anc| {
                let token = format!("{}/", relative(cur, anc).trim_end_matches('/'));
                self.makefile(anc)
                    .and_then(|m| chain(&m, &token))
                    .map(|c| (anc, c))
            });
            let Some((anc, c)) = up else { break };
            conds.extend(c);
            cur = anc;
        }
        Some(conds)
    }

    /// A `.c` file built by being `#include`d into another of its directory
    /// (`kernel/sched/build_policy.c` includes `syscalls.c`): the includer's conditions.
    fn includer_conds(&self, dir: &str, name: &str, depth: usize) -> Option<Vec<Cond>> {
        let quoted = format!("\"{name}\"");
        // `#include "syscalls.c"`, `# include "ext.c"`.
        let includes = |l: &str| {
            l.trim_start()
                .strip_prefix('#')
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix("include"))
                .is_some_and(|l| l.trim() == quoted)
        };
        for e in std::fs::read_dir(self.root.join(dir)).ok()?.flatten() {
            let other = e.file_name().to_string_lossy().into_owned();
            if other == name || !other.ends_with(".c") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            if !text.contains(&quoted) {
                continue;
            }
            let mut at_include = None;
            kbuild::walk_c_conditions(&text, |_, l, c| {
                if at_include.is_none() && includes(l) {
                    at_include = Some(c);
                }
            });
            let file = if dir.is_empty() {
                other
            } else {
                format!("{dir}/{other}")
            };
            let mut conds = at_include.unwrap_or_default();
            conds.extend(self.object_conds(&file, depth + 1)?);
            return Some(conds);
        }
        None
    }
}

/// Follows `token` through a Makefile's assignments to the `obj-…`/`lib-…` line that builds
/// it: the conditions on the way, innermost first; None when it is not found.
fn chain(assigns: &[Assignment], token: &str) -> Option<Vec<Cond>> {
    let mut targets = vec![token.to_string()];
    let mut conds = Vec::new();
    for _ in 0..8 {
        let a = assigns
            .iter()
            .find(|a| a.rhs.iter().any(|t| targets.contains(t)))?;
        match kbuild::classify(&a.lhs) {
            Lhs::Built(c) => {
                conds.extend(c);
                conds.extend(a.block.iter().cloned());
                return Some(conds);
            }
            Lhs::PartOf(names, c) => {
                conds.extend(c);
                conds.extend(a.block.iter().cloned());
                targets = names;
            }
        }
    }
    None
}

/// `mm/madvise.c` → (`mm`, `madvise.c`); `foo.c` → (``, `foo.c`).
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `a/b/c` → `a/b/c`, `a/b`, `a`, ``.
fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(dir);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur.is_empty() {
            None
        } else {
            Some(split(cur).0)
        };
        Some(cur)
    })
}

/// `dir` relative to its ancestor `anc`, with a trailing `/` unless equal (``).
fn relative<'a>(dir: &'a str, anc: &str) -> String {
    let rest: &'a str = if anc.is_empty() {
        dir
    } else {
        dir.strip_prefix(anc)
            .map_or(dir, |r| r.trim_start_matches('/'))
    };
    if rest.is_empty() {
        String::new()
    } else {
        format!("{rest}/")
    }
}

/// `arch/x86/entry/syscalls/syscall_64.tbl`: call name → entry point without `sys_`, for the
/// 64-bit ABI.
fn table_entries(root: &Path) -> HashMap<String, String> {
    let tbl = root.join("arch/x86/entry/syscalls/syscall_64.tbl");
    let text = std::fs::read_to_string(tbl).unwrap_or_default();
    let mut out = HashMap::new();
    for l in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, abi, name, entry, ..] = f[..] {
            if abi == "common" || abi == "64" {
                let e = entry.strip_prefix("sys_").unwrap_or(entry);
                out.insert(name.to_string(), e.to_string());
            }
        }
    }
    out
}

/// For `kfuzz syscalls`: the calls among `call_names` (syscall table names, e.g. `madvise`)
/// that the build's `.config` compiles out, with why. Empty when the tree is not configured.
pub fn missing_syscalls<'a>(
    tree: &KernelTree,
    call_names: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(sc) = SyscallConfig::load(tree)? else {
        return Ok(BTreeMap::new());
    };
    Ok(call_names
        .into_iter()
        .filter_map(|n| sc.why_missing(n).map(|why| (n.to_string(), why)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A tree with the shapes kbuild uses for syscalls: a conditional object inside an
    /// `ifdef` block, a composite variable, `#ifdef` in the source, a conditional directory, a
    /// file built by `#include`, and an entry point named differently from the call.
    fn fake_tree(config: Option<&str>) -> (tempfile::TempDir, KernelTree) {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        write(
            r,
            "Makefile",
            "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n",
        );
        write(r, "Kconfig", "");
        write(
            r,
            "arch/x86/entry/syscalls/syscall_64.tbl",
            "# nr abi name entry\n63\tcommon\tuname\t\tsys_newuname\n",
        );
        write(
            r,
            "Kbuild",
            "obj-y += mm/ kernel/\nobj-$(CONFIG_NET)\t+= net/\n",
        );
        write(
            r,
            "mm/Makefile",
            "mmu-y := nommu.o\nmmu-$(CONFIG_MMU) := memory.o \\\n\tmmap.o\n\
             obj-y := fadvise.o $(mmu-y)\nifdef CONFIG_MMU\n\tobj-$(CONFIG_ADVISE_SYSCALLS) += madvise.o\nendif\n",
        );
        write(
            r,
            "mm/madvise.c",
            "SYSCALL_DEFINE3(madvise, unsigned long, start)\n{}\n",
        );
        write(
            r,
            "mm/mmap.c",
            "SYSCALL_DEFINE6(mmap_pgoff, unsigned long, addr)\n",
        );
        write(
            r,
            "mm/fadvise.c",
            "#ifdef CONFIG_ADVISE_SYSCALLS\nSYSCALL_DEFINE4(fadvise64_64, int, fd)\n\
             COMPAT_SYSCALL_DEFINE6(fadvise64_64, int, fd)\n#endif /* CONFIG_ADVISE_SYSCALLS */\n",
        );
        write(r, "net/Makefile", "obj-y := socket.o\n");
        write(r, "net/socket.c", "SYSCALL_DEFINE3(socket, int, family)\n");
        write(
            r,
            "kernel/Makefile",
            "obj-y += sched/\nobj-$(CONFIG_MULTIUSER) += sys.o\n",
        );
        write(
            r,
            "kernel/sys.c",
            "SYSCALL_DEFINE1(newuname, struct new_utsname __user *, name)\n",
        );
        write(r, "kernel/odd.c", "SYSCALL_DEFINE0(odd)\n");
        write(r, "kernel/sched/Makefile", "obj-y += build_policy.o\n");
        write(
            r,
            "kernel/sched/build_policy.c",
            "#ifdef CONFIG_SCHED_CLASS_EXT\n# include \"ext.c\"\n#endif\n#include \"syscalls.c\"\n",
        );
        write(
            r,
            "kernel/sched/syscalls.c",
            "SYSCALL_DEFINE0(sched_yield)\n",
        );
        write(
            r,
            "kernel/sched/ext.c",
            "SYSCALL_DEFINE0(sched_ext_thing)\n",
        );
        if let Some(c) = config {
            write(r, ".kfuzz/build/.config", c);
        }
        let tree = KernelTree::at(r).unwrap();
        (tmp, tree)
    }

    const CONFIG: &str =
        "CONFIG_MMU=y\n# CONFIG_ADVISE_SYSCALLS is not set\n# CONFIG_NET is not set\n";

    #[test]
    fn compiled_out_calls_are_named_with_the_option_that_adds_them() {
        let (_tmp, tree) = fake_tree(Some(CONFIG));
        let names = [
            "madvise",
            "fadvise64_64",
            "mmap_pgoff",
            "socket",
            "uname",
            "sched_yield",
            "sched_ext_thing",
            "odd",
            "no_such_call",
        ];
        let missing = missing_syscalls(&tree, names).unwrap();
        let want: BTreeMap<String, String> = [
            ("madvise", "CONFIG_ADVISE_SYSCALLS is not set"),
            ("fadvise64_64", "CONFIG_ADVISE_SYSCALLS is not set"),
            ("socket", "CONFIG_NET is not set"),
            ("uname", "CONFIG_MULTIUSER is not set"),
            ("sched_ext_thing", "CONFIG_SCHED_CLASS_EXT is not set"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(missing, want);
    }

    #[test]
    fn a_tree_never_built_says_nothing() {
        let (_tmp, tree) = fake_tree(None);
        assert!(missing_syscalls(&tree, ["madvise"]).unwrap().is_empty());
    }

    /// Debian's linux-source-6.12, when the tests have unpacked it (see tests/integration/common.rs).
    fn real_tree() -> Option<PathBuf> {
        let home = std::env::var_os("HOME")?;
        let t = PathBuf::from(home).join(".cache/kfuzz/linux-source-6.12");
        t.join(".unpacked").exists().then_some(t)
    }

    /// A view of the real tree (a symlink per top-level entry) with its own `.kfuzz/`.
    fn real_view(src: &Path, config: &str) -> (tempfile::TempDir, KernelTree) {
        let tmp = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(src).unwrap().flatten() {
            if e.file_name() != ".kfuzz" {
                std::os::unix::fs::symlink(e.path(), tmp.path().join(e.file_name())).unwrap();
            }
        }
        write(tmp.path(), ".kfuzz/build/.config", config);
        let tree = KernelTree::at(tmp.path()).unwrap();
        (tmp, tree)
    }

    #[test]
    fn on_the_real_tree_madvise_needs_advise_syscalls() {
        let Some(src) = real_tree() else {
            eprintln!("skipped: ~/.cache/kfuzz/linux-source-6.12 is not unpacked");
            return;
        };
        let config = "CONFIG_64BIT=y\nCONFIG_X86_64=y\nCONFIG_MMU=y\nCONFIG_MULTIUSER=y\n\
                      # CONFIG_ADVISE_SYSCALLS is not set\n# CONFIG_NET is not set\n";
        let (_tmp, tree) = real_view(&src, config);
        let m =
            missing_syscalls(&tree, ["madvise", "fadvise64", "mmap", "socket", "getpid"]).unwrap();
        assert_eq!(m["madvise"], "CONFIG_ADVISE_SYSCALLS is not set");
        assert_eq!(m["fadvise64"], "CONFIG_ADVISE_SYSCALLS is not set");
        assert_eq!(m["socket"], "CONFIG_NET is not set");
        assert!(!m.contains_key("mmap"), "{m:?}");
        assert!(!m.contains_key("getpid"), "{m:?}");
    }
}
