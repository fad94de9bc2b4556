//! Kernel PCs as `function+offset` (from vmlinux's symbol table) and, when vmlinux has DWARF,
//! the source file of each function (through `addr2line`).
//!
//! Raw KCOV PCs mean nothing on another build: a patch that grows one function moves every
//! function linked after it. A PC named by its function and its offset in it stays the same on
//! any build where that function did not change, which is what `kfuzz regress` compares.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Covered PCs by function: function name → sorted offsets into it.
pub type Cover = BTreeMap<String, Vec<u32>>;

pub struct Symbols {
    /// (start, end, index into `names`), sorted by start.
    funcs: Vec<(u64, u64, usize)>,
    names: Vec<String>,
    /// Code symbols `funcs` leaves out, for `resolve`: labels (no size) and assembly
    /// functions (no type), (start, size, index into `names`), sorted.
    labels: Vec<(u64, u64, usize)>,
    /// (start, ELF size, index into `names`) of `funcs` and `labels`, sorted by name, built
    /// on the first `resolve`.
    by_name: OnceLock<Vec<(u64, u64, usize)>>,
    /// Source files by function, looked up once per function.
    dwarf: Option<Mutex<Dwarf>>,
}

/// One function (or inlined function) at a PC, as DWARF tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    pub function: Option<String>,
    /// Relative to the kernel tree when the path says where that is.
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The inline chain DWARF gives for a code address, innermost first, each file path passed
/// through `path` (to make it relative to the tree); empty when DWARF does not cover it.
pub fn inline_chain(
    loader: &addr2line::Loader,
    addr: u64,
    path: impl Fn(&str) -> String,
) -> Vec<SourceFrame> {
    let mut out = Vec::new();
    let Ok(mut iter) = loader.find_frames(addr) else {
        return out;
    };
    while let Ok(Some(f)) = iter.next() {
        let function = f
            .function
            .as_ref()
            .and_then(|n| n.demangle().ok())
            .map(|n| n.into_owned());
        let (file, line) = match f.location {
            Some(l) => (l.file.map(&path), l.line),
            None => (None, None),
        };
        out.push(SourceFrame {
            function,
            file,
            line,
        });
    }
    out
}

struct Dwarf {
    loader: addr2line::Loader,
    files: HashMap<usize, Option<String>>,
}

fn _symbols_are_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<Symbols>();
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols")
            .field("functions", &self.funcs.len())
            .field("dwarf", &self.dwarf.is_some())
            .finish()
    }
}

impl Symbols {
    /// Reads vmlinux's function symbols (and opens its DWARF when there is some).
    pub fn load(vmlinux: &Path) -> anyhow::Result<Symbols> {
        let data =
            std::fs::read(vmlinux).with_context(|| format!("cannot read {}", vmlinux.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an ELF file", vmlinux.display()))?;
        let mut names = Vec::new();
        let mut funcs = Vec::new();
        let mut labels = Vec::new();
        let in_text = |sym: &object::Symbol| {
            sym.section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .is_some_and(|s| s.kind() == SectionKind::Text)
        };
        for sym in file.symbols() {
            // Assembly (`SYM_CODE_START`) has no symbol type, only a place in the code.
            let asm = sym.kind() == SymbolKind::Unknown && in_text(&sym);
            if sym.kind() != SymbolKind::Text && !asm {
                continue;
            }
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() {
                continue;
            }
            names.push(name.to_string());
            if sym.size() == 0 || asm {
                labels.push((sym.address(), sym.size(), names.len() - 1));
            } else {
                funcs.push((sym.address(), sym.address() + sym.size(), names.len() - 1));
            }
        }
        anyhow::ensure!(
            !funcs.is_empty(),
            "{} has no function symbols",
            vmlinux.display()
        );
        funcs.sort_unstable();
        labels.sort_unstable();
        let has_dwarf = file
            .section_by_name(".debug_info")
            .is_some_and(|s| s.size() > 0);
        let dwarf = if has_dwarf {
            addr2line::Loader::new(vmlinux).ok().map(|loader| {
                Mutex::new(Dwarf {
                    loader,
                    files: HashMap::new(),
                })
            })
        } else {
            None
        };
        Ok(Symbols {
            funcs,
            names,
            labels,
            by_name: OnceLock::new(),
            dwarf,
        })
    }

    pub fn has_debug_info(&self) -> bool {
        self.dwarf.is_some()
    }

    fn find(&self, pc: u64) -> Option<&(u64, u64, usize)> {
        let i = self.funcs.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        let f = &self.funcs[i];
        (pc < f.1).then_some(f)
    }

    /// `(function, offset)` of a PC.
    pub fn lookup(&self, pc: u64) -> Option<(&str, u64)> {
        self.find(pc)
            .map(|&(start, _, name)| (self.names[name].as_str(), pc - start))
    }

    /// `funcs` and `labels` by name (start, ELF size, name), built once.
    fn by_name(&self) -> &[(u64, u64, usize)] {
        self.by_name.get_or_init(|| {
            let mut v: Vec<(u64, u64, usize)> = self
                .funcs
                .iter()
                .map(|&(start, end, n)| (start, end - start, n))
                .chain(self.labels.iter().copied())
                .collect();
            v.sort_unstable_by(|a, b| self.names[a.2].cmp(&self.names[b.2]).then(a.0.cmp(&b.0)));
            v
        })
    }

    /// The start of the function `name`: the one function of that name, or, when static
    /// functions share it, the one written in `file` (tree-relative, as `file_of` gives it).
    pub fn start_of(&self, name: &str, file: Option<&str>) -> Option<u64> {
        let by_name = self.by_name();
        let first = by_name.partition_point(|f| self.names[f.2].as_str() < name);
        let starts: Vec<u64> = by_name[first..]
            .iter()
            .take_while(|f| self.names[f.2] == name)
            .filter(|f| f.1 > 0)
            .map(|f| f.0)
            .collect::<std::collections::BTreeSet<u64>>()
            .into_iter()
            .collect();
        match (starts.as_slice(), file) {
            ([one], _) => Some(*one),
            ([], _) | (_, None) => None,
            (many, Some(file)) => {
                let mut in_file = many
                    .iter()
                    .filter(|&&s| self.file_of(s).as_deref() == Some(file));
                match (in_file.next(), in_file.next()) {
                    (Some(&s), None) => Some(s),
                    _ => None,
                }
            }
        }
    }

    /// The address of `name+offset/size` as the kernel prints a PC (`%pS`, `%pB`): None when no
    /// function has that name, when several do and `size` does not tell them apart (static
    /// functions), or when no function of that name has that size (another build).
    ///
    /// The kernel's size is the distance to the next symbol (kallsyms keeps no sizes): it may
    /// count a function's padding, stop at a label inside it (`entry_SYSCALL_64_after_hwframe`
    /// in `entry_SYSCALL_64`), and is the only size a label has. Any size between the ELF size
    /// and those distances matches.
    pub fn resolve(&self, name: &str, offset: u64, size: u64) -> Option<u64> {
        let by_name = self.by_name();
        let first = by_name.partition_point(|f| self.names[f.2].as_str() < name);
        let mut found = None;
        for &(start, elf_size, _) in by_name[first..]
            .iter()
            .take_while(|f| self.names[f.2] == name)
        {
            let next_func = self.funcs[self.funcs.partition_point(|f| f.0 <= start)..]
                .first()
                .map(|f| f.0 - start);
            let next_label = self.labels[self.labels.partition_point(|l| l.0 <= start)..]
                .first()
                .map(|l| l.0 - start);
            let Some(to_next) = next_func.into_iter().chain(next_label).min().or(
                // The last symbol: only its own size counts.
                (elf_size > 0).then_some(elf_size),
            ) else {
                continue;
            };
            let elf_size = if elf_size == 0 { to_next } else { elf_size };
            let low = elf_size.min(to_next);
            let high = next_func.map_or(elf_size, |n| n.max(elf_size)).max(to_next);
            if size < low || size > high {
                continue;
            }
            match found {
                Some(s) if s != start => return None,
                _ => found = Some(start),
            }
        }
        found.filter(|_| offset <= size).map(|s| s + offset)
    }

    /// The functions at a PC from DWARF, innermost inlined function first and the function
    /// the PC is in last; empty without DWARF or when DWARF does not cover the PC.
    pub fn frames_at(&self, pc: u64) -> Vec<SourceFrame> {
        let Some(d) = self.dwarf.as_ref().and_then(|d| d.lock().ok()) else {
            return Vec::new();
        };
        inline_chain(&d.loader, pc, tidy_path)
    }

    /// The source file a function is in (needs DWARF), relative to the tree when the path
    /// says so.
    pub fn file_of(&self, pc: u64) -> Option<String> {
        let &(start, _, name) = self.find(pc)?;
        let mut d = self.dwarf.as_ref()?.lock().ok()?;
        if let Some(f) = d.files.get(&name) {
            return f.clone();
        }
        let file = d
            .loader
            .find_location(start)
            .ok()
            .flatten()
            .and_then(|l| l.file)
            .map(tidy_path);
        d.files.insert(name, file.clone());
        file
    }

    /// Groups PCs by function; PCs outside any function are dropped. With DWARF, also the
    /// functions' files.
    pub fn cover(&self, pcs: impl IntoIterator<Item = u64>) -> (Cover, BTreeMap<String, String>) {
        let mut cover = Cover::new();
        let mut files = BTreeMap::new();
        for pc in pcs {
            let Some((func, off)) = self.lookup(pc) else {
                continue;
            };
            if self.dwarf.is_some() && !files.contains_key(func) {
                if let Some(f) = self.file_of(pc) {
                    files.insert(func.to_string(), f);
                }
            }
            cover
                .entry(func.to_string())
                .or_default()
                .push(u32::try_from(off).unwrap_or(u32::MAX));
        }
        for offs in cover.values_mut() {
            offs.sort_unstable();
            offs.dedup();
        }
        (cover, files)
    }
}

/// `/abs/path/linux/mm/mmap.c` and `./mm/../mm/mmap.c` become `mm/mmap.c` when a kernel
/// top-level directory appears in the path.
fn tidy_path(p: &str) -> String {
    const TOP: [&str; 14] = [
        "arch", "block", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc", "kernel",
        "lib", "mm", "net", "security",
    ];
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    match parts.iter().position(|s| TOP.contains(s)) {
        Some(first) => parts[first..].join("/"),
        None => p.to_string(),
    }
}

/// The vmlinux that goes with a kernel image: itself when it is one, else the build dir's
/// (`arch/x86/boot/bzImage` → `vmlinux` three levels up), else one beside it; for a build
/// folder, the one in it.
pub fn vmlinux_for(kernel: &Path) -> Option<PathBuf> {
    if kernel.is_dir() {
        return Some(kernel.join("vmlinux")).filter(|v| v.is_file());
    }
    if kernel.file_name().is_some_and(|n| n == "vmlinux") {
        return Some(kernel.to_path_buf());
    }
    kernel
        .ancestors()
        .skip(1)
        .take(4)
        .map(|d| d.join("vmlinux"))
        .find(|p| p.is_file())
}

/// The symbols of the vmlinux that goes with `kernel`, or None with a note saying what that
/// costs (corpus coverage is then recorded as edge signal only).
pub fn load_for(kernel: &Path, shell: &crate::shell::Shell) -> Option<std::sync::Arc<Symbols>> {
    let Some(vmlinux) = vmlinux_for(kernel) else {
        shell.verbose(
            "Symbols",
            format!(
                "no vmlinux next to {}: coverage is kept as raw signal only",
                kernel.display()
            ),
        );
        return None;
    };
    match Symbols::load(&vmlinux) {
        Ok(s) => Some(std::sync::Arc::new(s)),
        Err(e) => {
            shell.warn(format!("{e:#}: coverage is kept as raw signal only"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_to_the_tree() {
        assert_eq!(tidy_path("/home/u/linux/ipc/shm.c"), "ipc/shm.c");
        assert_eq!(tidy_path("./mm/mmap.c"), "mm/mmap.c");
        assert_eq!(
            tidy_path("/src/arch/x86/kernel/traps.c"),
            "arch/x86/kernel/traps.c"
        );
        assert_eq!(tidy_path("weird.c"), "weird.c");
    }

    #[test]
    fn lookup_finds_the_function_and_offset() {
        let s = Symbols {
            funcs: vec![
                (0x1000, 0x1100, 0),
                (0x1100, 0x1180, 1),
                (0x2000, 0x2010, 2),
            ],
            names: vec!["a".into(), "b".into(), "c".into()],
            labels: Vec::new(),
            by_name: OnceLock::new(),
            dwarf: None,
        };
        assert_eq!(s.lookup(0x1000), Some(("a", 0)));
        assert_eq!(s.lookup(0x10ff), Some(("a", 0xff)));
        assert_eq!(s.lookup(0x1100), Some(("b", 0)));
        assert_eq!(s.lookup(0x1180), None, "a gap");
        assert_eq!(s.lookup(0xfff), None);
        assert_eq!(s.lookup(0x200f), Some(("c", 0xf)));
        let (cover, files) = s.cover([0x1010, 0x1008, 0x1010, 0x2001, 0x1500]);
        assert_eq!(cover["a"], vec![8, 0x10]);
        assert_eq!(cover["c"], vec![1]);
        assert_eq!(cover.len(), 2);
        assert!(files.is_empty());
    }

    /// `shm_lock` twice (two static functions) and `aligned`, whose kallsyms size counts the
    /// padding up to the next function.
    fn fake_table() -> Symbols {
        Symbols {
            funcs: vec![
                (0x1000, 0x1020, 0),
                (0x1020, 0x1030, 1),
                (0x1040, 0x1060, 2),
                (0x2000, 0x2040, 0),
                (0x3000, 0x30ae, 3),
            ],
            names: vec![
                "shm_lock".into(),
                "aligned".into(),
                "next".into(),
                "entry".into(),
                "after_hwframe".into(),
                "sysret".into(),
            ],
            labels: vec![(0x3025, 0, 4), (0x3078, 0, 5)],
            by_name: OnceLock::new(),
            dwarf: None,
        }
    }

    #[test]
    fn a_static_function_named_twice_is_told_apart_by_its_size() {
        let s = fake_table();
        assert_eq!(s.resolve("shm_lock", 0x1c, 0x20), Some(0x101c));
        assert_eq!(s.resolve("shm_lock", 0x1c, 0x40), Some(0x201c));
        assert_eq!(s.resolve("shm_lock", 0x1c, 0x30), None, "no such size");
        assert_eq!(s.resolve("nothing", 0, 0x10), None);
    }

    #[test]
    fn the_kernels_size_may_count_the_padding() {
        let s = fake_table();
        assert_eq!(s.resolve("aligned", 4, 0x10), Some(0x1024));
        assert_eq!(s.resolve("aligned", 4, 0x20), Some(0x1024));
        assert_eq!(
            s.resolve("aligned", 4, 0x21),
            None,
            "past the next function"
        );
        assert_eq!(
            s.resolve("aligned", 4, 0xf),
            None,
            "smaller than the function"
        );
        assert_eq!(
            s.resolve("aligned", 0x11, 0x10),
            None,
            "offset past the size"
        );
        assert_eq!(
            s.resolve("next", 0x20, 0x20),
            Some(0x1060),
            "a return address at the end"
        );
    }

    #[test]
    fn a_label_inside_a_function_cuts_its_size_and_has_one() {
        let s = fake_table();
        assert_eq!(s.resolve("entry", 0x10, 0x25), Some(0x3010));
        assert_eq!(s.resolve("entry", 0x10, 0xae), Some(0x3010));
        assert_eq!(s.resolve("after_hwframe", 0x4b, 0x53), Some(0x3070));
        assert_eq!(s.resolve("after_hwframe", 0x4b, 0x54), None);
        assert_eq!(
            s.resolve("sysret", 0, 0x10),
            None,
            "the last symbol has no size"
        );
    }

    #[test]
    fn identical_twins_are_ambiguous() {
        let mut s = fake_table();
        s.funcs[3] = (0x2000, 0x2020, 0);
        assert_eq!(s.resolve("shm_lock", 0x1c, 0x20), None);
    }
}
