//! vmlinux's DWARF read both ways between source lines and code: which addresses a source
//! line became (the line table, walked once over all units), which KCOV PCs stand for that code,
//! and which functions and lines a PC stands for (inlining included). x86-64 only; never reads
//! the source tree.
//!
//! A KCOV PC is the *return address* of a `call __sanitizer_cov_trace_pc` (`e8` + rel32), which
//! the compiler puts at the start of every basic block: the call is at `pc - 5`, and the PC
//! stands for its block, the code from that call up to the next one (or the function's end). A
//! source line is reached when a block holding some of its code is: most lines (a condition, an
//! assignment) have code but no call of their own.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use addr2line::gimli;
use anyhow::Context;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind};

/// Length of the `call rel32` that KCOV's PC returns from.
pub const CALL_LEN: u64 = 5;

const COV_TRACE_PC: &str = "__sanitizer_cov_trace_pc";

/// The code of one source line in one place: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineRange {
    /// Repository-relative (`ipc/shm.c`).
    pub file: String,
    pub line: u32,
    pub start: u64,
    pub end: u64,
}

use super::symbols::inline_chain;
pub use super::symbols::SourceFrame;

/// A function by the file it is written in and its name (two `static` functions may share a
/// name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionKey {
    pub file: String,
    pub function: String,
}

/// Source lines reached, by function: what `regress` compares for functions a patch changed.
pub type LinesByFunction = BTreeMap<FunctionKey, BTreeSet<u32>>;

/// vmlinux opened for line questions. Not `Sync` (addr2line parses lazily); one per thread or
/// behind a lock.
pub struct LineTable {
    path: PathBuf,
    map: memmap2::Mmap,
    /// Executable sections: (address, size, file offset).
    code: Vec<(u64, u64, u64)>,
    /// Function symbols: [start, end), sorted.
    functions: Vec<(u64, u64)>,
    cov_trace_pc: Option<u64>,
    /// The kernel tree as DWARF spells it, ending in `/` (found from `start_kernel`, which
    /// lives in `init/main.c`).
    root: String,
    loader: addr2line::Loader,
}

fn _line_tables_can_move_between_threads() {
    fn check<T: Send>() {}
    check::<LineTable>();
}

impl std::fmt::Debug for LineTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineTable")
            .field("path", &self.path)
            .field("root", &self.root)
            .field("kcov", &self.cov_trace_pc.is_some())
            .finish()
    }
}

impl LineTable {
    /// Opens vmlinux (mapped, not read); fails when it has no DWARF.
    pub fn open(vmlinux: &Path) -> anyhow::Result<LineTable> {
        let file = std::fs::File::open(vmlinux)
            .with_context(|| format!("cannot read {}", vmlinux.display()))?;
        // SAFETY: the mapping is read-only; a vmlinux rewritten by a build while mapped is the
        // same hazard every debugger takes, and the caller owns the build.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", vmlinux.display()))?;
        let obj = object::File::parse(&*map)
            .with_context(|| format!("{} is not an ELF file", vmlinux.display()))?;
        anyhow::ensure!(
            obj.section_by_name(".debug_line")
                .is_some_and(|s| s.size() > 0),
            "{} has no DWARF line table: build with CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y \
             (kfuzz's debug.config fragment)",
            vmlinux.display()
        );
        let code = obj
            .sections()
            .filter(|s| s.kind() == SectionKind::Text && s.size() > 0)
            .filter_map(|s| {
                let (off, size) = s.file_range()?;
                Some((s.address(), size.min(s.size()), off))
            })
            .collect();
        let mut cov_trace_pc = None;
        let mut start_kernel = None;
        let mut functions = Vec::new();
        for sym in obj.symbols() {
            if sym.kind() == object::SymbolKind::Text && sym.size() > 0 {
                functions.push((sym.address(), sym.address() + sym.size()));
            }
            match sym.name() {
                Ok(COV_TRACE_PC) => cov_trace_pc = Some(sym.address()),
                Ok("start_kernel") => start_kernel = Some(sym.address()),
                _ => {}
            }
        }
        functions.sort_unstable();
        functions.dedup();
        let loader = addr2line::Loader::new(vmlinux)
            .map_err(|e| anyhow::anyhow!("cannot read the DWARF of {}: {e}", vmlinux.display()))?;
        let root = start_kernel
            .and_then(|a| {
                let loc = loader.find_location(a).ok()??;
                let file = normalize(loc.file?);
                file.strip_suffix("init/main.c").map(str::to_string)
            })
            .with_context(|| {
                format!(
                    "cannot tell where {}'s sources were: `start_kernel` has no line in \
                     init/main.c",
                    vmlinux.display()
                )
            })?;
        Ok(LineTable {
            path: vmlinux.to_path_buf(),
            map,
            code,
            functions,
            cov_trace_pc,
            root,
            loader,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the kernel was built with KCOV (it has `__sanitizer_cov_trace_pc`).
    pub fn has_kcov(&self) -> bool {
        self.cov_trace_pc.is_some()
    }

    /// The kernel tree the build compiled, as DWARF spells it (ends in `/`).
    pub fn source_root(&self) -> &str {
        &self.root
    }

    /// A path as DWARF gives it, relative to the kernel tree; None for files outside it.
    pub fn relative(&self, dwarf_path: &str) -> Option<String> {
        normalize(dwarf_path)
            .strip_prefix(self.root.as_str())
            .map(str::to_string)
    }

    /// The code of the wanted source lines (file → lines), from the line table of every unit
    /// that names one of the files. Ranges are merged where one line's code is contiguous, and
    /// lie inside vmlinux's code (rows of discarded code are dropped).
    pub fn ranges_of(
        &self,
        wanted: &BTreeMap<String, BTreeSet<u32>>,
    ) -> anyhow::Result<Vec<LineRange>> {
        let basenames: HashSet<&str> = wanted.keys().map(|p| basename(p)).collect();
        self.ranges_where(
            &|name| basenames.contains(basename(name)),
            &|file| wanted.contains_key(file),
            &|file, line| wanted.get(file).is_some_and(|l| l.contains(&line)),
        )
    }

    /// The code of every line of the files under `paths` (repository-relative files or
    /// directories; every file of the tree when empty).
    pub fn ranges_under(&self, paths: &[String]) -> anyhow::Result<Vec<LineRange>> {
        let wanted: HashSet<&str> = paths.iter().map(|p| p.trim_end_matches('/')).collect();
        let all = paths.is_empty() || wanted.contains("");
        // The file, or one of the folders it is in, was asked for.
        let under = |file: &str| {
            all || wanted.contains(file)
                || file
                    .match_indices('/')
                    .any(|(i, _)| wanted.contains(&file[..i]))
        };
        self.ranges_where(&|_| true, &under, &|_, _| true)
    }

    /// The line table rows of the files `file` accepts (repository-relative; `quick` sees the
    /// name as the unit spells it, to skip the others cheaply) and their lines `line` accepts,
    /// as merged code ranges inside vmlinux's code.
    fn ranges_where(
        &self,
        quick: &dyn Fn(&str) -> bool,
        file: &dyn Fn(&str) -> bool,
        line: &dyn Fn(&str, u32) -> bool,
    ) -> anyhow::Result<Vec<LineRange>> {
        let obj = object::File::parse(&*self.map)?;
        let endian = if obj.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, gimli::Error> {
            Ok(obj
                .section_by_name(id.name())
                .and_then(|s| s.uncompressed_data().ok())
                .unwrap_or(Cow::Borrowed(&[])))
        })?;
        let dwarf = sections.borrow(|s| gimli::EndianSlice::new(s, endian));
        let mut names: HashSet<std::rc::Rc<str>> = HashSet::new();
        let mut out = Vec::new();
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            let comp_dir = unit
                .comp_dir
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            let lp = program.header();
            let first_index = if lp.version() >= 5 { 0 } else { 1 };
            let mut files: HashMap<u64, std::rc::Rc<str>> = HashMap::new();
            for (i, entry) in lp.file_names().iter().enumerate() {
                let name = dwarf.attr_string(&unit, entry.path_name())?;
                let name = name.to_string_lossy();
                if !quick(&name) {
                    continue;
                }
                let dir = match entry.directory(lp) {
                    Some(d) => dwarf.attr_string(&unit, d)?.to_string_lossy().into_owned(),
                    None => String::new(),
                };
                let full = join(&[&comp_dir, &dir, &name]);
                if let Some(rel) = self.relative(&full).filter(|r| file(r)) {
                    let rel: std::rc::Rc<str> = match names.get(rel.as_str()) {
                        Some(r) => r.clone(),
                        None => {
                            let r: std::rc::Rc<str> = rel.into();
                            names.insert(r.clone());
                            r
                        }
                    };
                    files.insert(first_index + i as u64, rel);
                }
            }
            if files.is_empty() {
                continue;
            }
            let mut rows = program.rows();
            let mut open: Option<(u64, &std::rc::Rc<str>, u32)> = None;
            while let Some((_, row)) = rows.next_row()? {
                let addr = row.address();
                if let Some((start, file, line)) = open.take() {
                    if addr > start {
                        out.push(LineRange {
                            file: file.to_string(),
                            line,
                            start,
                            end: addr,
                        });
                    }
                }
                if row.end_sequence() {
                    continue;
                }
                let Some(file) = files.get(&row.file_index()) else {
                    continue;
                };
                let n = row
                    .line()
                    .and_then(|l| u32::try_from(l.get()).ok())
                    .unwrap_or(0);
                if n > 0 && line(file, n) {
                    open = Some((addr, file, n));
                }
            }
        }
        out.retain(|r| self.code_at(r.start).is_some());
        out.sort_unstable_by_key(|a| (a.start, a.end));
        let mut merged: Vec<LineRange> = Vec::with_capacity(out.len());
        for r in out {
            match merged.last_mut() {
                Some(m) if m.file == r.file && m.line == r.line && m.end >= r.start => {
                    m.end = m.end.max(r.end)
                }
                _ => merged.push(r),
            }
        }
        Ok(merged)
    }

    /// The bytes of vmlinux's code from `addr` to the end of its section.
    fn code_at(&self, addr: u64) -> Option<&[u8]> {
        let &(start, size, off) = self
            .code
            .iter()
            .find(|&&(s, size, _)| addr >= s && addr - s < size)?;
        let from = usize::try_from(off + (addr - start)).ok()?;
        let to = usize::try_from(off + size).ok()?;
        self.map.get(from..to)
    }

    /// The function symbol holding `addr`: [start, end).
    fn function_at(&self, addr: u64) -> Option<(u64, u64)> {
        let i = self
            .functions
            .partition_point(|f| f.0 <= addr)
            .checked_sub(1)?;
        // Aliases share a start; the longest one decides.
        let start = self.functions[i].0;
        let end = self.functions[..=i]
            .iter()
            .rev()
            .take_while(|f| f.0 == start)
            .map(|f| f.1)
            .max()?;
        (addr < end).then_some((start, end))
    }

    /// The addresses of the `call __sanitizer_cov_trace_pc` instructions starting in
    /// `[start, end)`. Empty without KCOV.
    fn kcov_sites(&self, start: u64, end: u64) -> Vec<u64> {
        let (Some(target), Some(code)) = (self.cov_trace_pc, self.code_at(start)) else {
            return Vec::new();
        };
        let len = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        calls_to(code, start, len, target).collect()
    }

    /// The KCOV PCs whose instrumentation call starts in `[start, end)`: return addresses of
    /// `call __sanitizer_cov_trace_pc`. Empty without KCOV.
    pub fn kcov_pcs(&self, start: u64, end: u64) -> Vec<u64> {
        let mut pcs = self.kcov_sites(start, end);
        for pc in &mut pcs {
            *pc += CALL_LEN;
        }
        pcs
    }

    /// The KCOV PCs of the blocks holding the code in `[start, end)`: the block it begins in
    /// (the last call before it in its function; the function's first call for code ahead of
    /// it, the prologue) and every block starting inside it. Empty when the function has no
    /// KCOV calls (a file built with `KCOV_INSTRUMENT := n`, `noinstr` code).
    pub fn block_pcs(&self, start: u64, end: u64) -> Vec<u64> {
        let Some((fstart, fend)) = self.function_at(start) else {
            return self.kcov_pcs(start, end);
        };
        blocks_in(&self.kcov_sites(fstart, fend), start, end.min(fend))
    }

    /// `block_pcs` of many ranges, each function's KCOV calls found once.
    pub fn block_pcs_many(&self, ranges: &[LineRange]) -> Vec<Vec<u64>> {
        let mut sites: HashMap<(u64, u64), Vec<u64>> = HashMap::new();
        ranges
            .iter()
            .map(|r| {
                let Some(f) = self.function_at(r.start) else {
                    return self.kcov_pcs(r.start, r.end);
                };
                let sites = sites.entry(f).or_insert_with(|| self.kcov_sites(f.0, f.1));
                blocks_in(sites, r.start, r.end.min(f.1))
            })
            .collect()
    }

    /// The code a KCOV PC stands for: from its call to the next call in the function, or the
    /// function's end.
    pub fn block_of(&self, pc: u64) -> Option<(u64, u64)> {
        let site = pc.checked_sub(CALL_LEN)?;
        let (_, fend) = self.function_at(site)?;
        let end = self.kcov_sites(pc, fend).first().copied().unwrap_or(fend);
        Some((site, end))
    }

    /// The inline chain at a code address, innermost first: the function the line is written
    /// in, then the functions it was inlined into, up to the symbol's own function.
    pub fn frames(&self, addr: u64) -> Vec<SourceFrame> {
        inline_chain(&self.loader, addr, |p| {
            self.relative(p).unwrap_or_else(|| p.to_string())
        })
    }

    /// The ELF symbol (function) holding a code address: what KCOV coverage is grouped by
    /// elsewhere (`foo.isra.0`, not DWARF's `foo`).
    pub fn symbol(&self, addr: u64) -> Option<&str> {
        self.loader.find_symbol(addr)
    }

    /// For each function, the source lines the KCOV PCs reach: the lines of each PC's block,
    /// at every level of their inline chains (the inlined callee's line, and the caller's line
    /// that inlined it). Lines, unlike offsets, survive a rebuild where the function changed.
    pub fn reached_lines(&self, pcs: impl IntoIterator<Item = u64>) -> LinesByFunction {
        let mut out = LinesByFunction::new();
        for pc in pcs {
            let Some((start, end)) = self.block_of(pc) else {
                continue;
            };
            let mut addrs = vec![start];
            if let Ok(rows) = self.loader.find_location_range(start, end) {
                addrs.extend(
                    rows.map(|(addr, _, _)| addr)
                        .filter(|&a| a > start && a < end),
                );
            }
            addrs.sort_unstable();
            addrs.dedup();
            for addr in addrs {
                for f in self.frames(addr) {
                    if let (Some(function), Some(file), Some(line)) = (f.function, f.file, f.line) {
                        out.entry(FunctionKey { file, function })
                            .or_default()
                            .insert(line);
                    }
                }
            }
        }
        out
    }
}

/// The KCOV PCs of the blocks holding `[start, end)`, given its function's KCOV call sites
/// (sorted): the block it begins in (the last call at or before `start`; the function's first
/// for code ahead of every call) and every block starting inside it.
fn blocks_in(sites: &[u64], start: u64, end: u64) -> Vec<u64> {
    // A call at `start` opens the block the code begins in: it is that block, not the one
    // before.
    let after = sites.partition_point(|&a| a <= start);
    let inside = sites[after..].iter().take_while(|&&a| a < end);
    let entry = after.checked_sub(1).map_or(sites.first(), |i| sites.get(i));
    entry
        .into_iter()
        .chain(inside)
        .map(|a| a + CALL_LEN)
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect()
}

/// The addresses of the `call rel32` instructions (`e8` + 4 bytes) landing on `target` that start
/// in the first `len` bytes of `code`, which is mapped at `base`. Any byte may start one: a false
/// hit would need four bytes that happen to encode the exact distance to `target`.
fn calls_to(code: &[u8], base: u64, len: usize, target: u64) -> impl Iterator<Item = u64> + '_ {
    code.windows(5)
        .take(len)
        .enumerate()
        .filter_map(move |(i, w)| {
            let &[0xe8, a, b, c, d] = w else { return None };
            let at = base + i as u64;
            let rel = i64::from(i32::from_le_bytes([a, b, c, d]));
            ((at + CALL_LEN).wrapping_add_signed(rel) == target).then_some(at)
        })
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `dir` + `name` as DWARF combines them: an absolute part restarts the path.
fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        if p.starts_with('/') || out.is_empty() {
            out = p.to_string();
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(p);
        }
    }
    out
}

/// `a/./b/../c` → `a/c`, lexically (DWARF names may go through `..` from the build dir).
fn normalize(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcov_calls_are_found_by_their_target() {
        let base = 0xffff_ffff_8100_0000u64;
        let target = base + 0x100;
        let call = |at: u64, to: u64| {
            let rel = i32::try_from(to as i64 - (at + CALL_LEN) as i64).unwrap();
            let mut v = vec![0xe8];
            v.extend_from_slice(&rel.to_le_bytes());
            v
        };
        let mut code = vec![0x90, 0x90]; // nop nop
        code.extend(call(base + 2, target)); // a KCOV call at +2
        code.extend(call(base + 7, base + 0x200)); // a call elsewhere at +7
        code.push(0x90);
        code.extend(call(base + 13, target)); // a KCOV call at +13
        let sites: Vec<u64> = calls_to(&code, base, code.len(), target).collect();
        assert_eq!(sites, vec![base + 2, base + 13]);
        // A call must start inside the first `len` bytes, but may end beyond them.
        let sites: Vec<u64> = calls_to(&code, base, 14, target).collect();
        assert_eq!(sites, vec![base + 2, base + 13]);
        let sites: Vec<u64> = calls_to(&code, base, 13, target).collect();
        assert_eq!(sites, vec![base + 2]);
        // Cut short: no call.
        assert_eq!(calls_to(&code[..4], base, 4, target).count(), 0);
    }

    #[test]
    fn a_range_belongs_to_the_blocks_it_lies_in() {
        let sites = [0x100, 0x120, 0x140];
        let pcs = |s, e| blocks_in(&sites, s, e);
        let pc = |a: u64| a + CALL_LEN;
        // Code opened by a call is that call's block only, not the one before.
        assert_eq!(pcs(0x120, 0x130), [pc(0x120)]);
        // Code inside a block, and code running into the next one.
        assert_eq!(pcs(0x125, 0x130), [pc(0x120)]);
        assert_eq!(pcs(0x125, 0x141), [pc(0x120), pc(0x140)]);
        // The end is exclusive.
        assert_eq!(pcs(0x125, 0x140), [pc(0x120)]);
        // Ahead of every call (the prologue): the function's first block.
        assert_eq!(pcs(0xf0, 0xf8), [pc(0x100)]);
        assert_eq!(pcs(0xf0, 0x101), [pc(0x100)]);
        // After the last call.
        assert_eq!(pcs(0x150, 0x160), [pc(0x140)]);
        // No KCOV call in the function: nothing.
        assert!(blocks_in(&[], 0x10, 0x20).is_empty());
    }

    #[test]
    fn dwarf_paths_are_joined_and_normalized() {
        assert_eq!(
            join(&["/k/.kfuzz/build", "../../ipc", "shm.c"]),
            "/k/.kfuzz/build/../../ipc/shm.c"
        );
        assert_eq!(normalize("/k/.kfuzz/build/../../ipc/shm.c"), "/k/ipc/shm.c");
        assert_eq!(
            join(&["/build", "/src/include/linux", "shm.h"]),
            "/src/include/linux/shm.h"
        );
        assert_eq!(join(&["/build", "", "/src/ipc/shm.c"]), "/src/ipc/shm.c");
        assert_eq!(normalize("./ipc/./shm.c"), "ipc/shm.c");
        assert_eq!(normalize("../x/../y"), "../y");
        assert_eq!(normalize("/../a"), "/a");
        assert_eq!(basename("ipc/shm.c"), "shm.c");
    }
}
