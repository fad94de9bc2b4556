//! Constant values from the tree being fuzzed: each description file's `include`s, `incdir`s
//! and `define`s are compiled the way the kernel compiles itself (its own and generated
//! headers, `__KERNEL__`, the build's `.config`), into an object file whose data holds the
//! values; no program is run and no cross-compiler is needed. Names a file's headers do not
//! define are found from the compiler's errors and left out. Results are cached per file by
//! (tree, .config, the file's requirements), so a warm load reads only small JSON files.
//! Without a configured build dir, the exported uapi headers (`make headers_install`) are used.
//! Never writes outside `.kfuzz/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use kfuzz_prog::target::FileConsts;
use sha2::{Digest, Sha256};

use super::tree::KernelTree;

/// Bump when the way values are computed changes: old cache entries are then ignored.
const RECIPE: &str = "kfuzz-consts-v2";

/// How one translation unit is compiled: the kernel's include paths and flags, or the
/// exported uapi headers.
#[derive(Debug, Clone)]
pub struct HeaderSet {
    cc: String,
    flags: Vec<String>,
    /// Lines before the includes.
    prelude: &'static str,
    /// What `incdir` paths are relative to: the tree.
    root: PathBuf,
    /// Where `#include <…>` looks, to leave out headers this tree does not have before
    /// compiling (gcc stops at the first missing one).
    search: Vec<PathBuf>,
    /// Hashes into the cache key: what the flags point at.
    identity: Vec<u8>,
}

impl HeaderSet {
    /// The kernel's own view (`-nostdinc`, arch and generated headers, kconfig.h) when the
    /// build dir is configured, else `None`.
    pub fn kernel(tree: &KernelTree, cc: &str) -> Option<HeaderSet> {
        let src = &tree.root;
        let obj = tree.build_dir();
        let config = std::fs::read(obj.join(".config")).ok()?;
        if !obj.join("include/generated/autoconf.h").is_file() {
            return None;
        }
        let p = |base: &Path, rel: &str| base.join(rel).display().to_string();
        let mut flags: Vec<String> = vec!["-nostdinc".into()];
        let mut search = Vec::new();
        if let Some(dir) = gcc_include(cc) {
            flags.extend(["-isystem".into(), dir.display().to_string()]);
            search.push(dir);
        }
        for (base, rel) in [
            (src.as_path(), "arch/x86/include"),
            (obj.as_path(), "arch/x86/include/generated"),
            (src.as_path(), "include"),
            (obj.as_path(), "include"),
            (src.as_path(), "arch/x86/include/uapi"),
            (obj.as_path(), "arch/x86/include/generated/uapi"),
            (src.as_path(), "include/uapi"),
            (obj.as_path(), "include/generated/uapi"),
        ] {
            flags.push(format!("-I{}", p(base, rel)));
            search.push(base.join(rel));
        }
        search.push(src.clone());
        // Descriptions also name headers by their path in the tree (`include/uapi/…`,
        // `drivers/…`).
        flags.push(format!("-I{}", src.display()));
        for inc in [
            "include/linux/compiler-version.h",
            "include/linux/kconfig.h",
            "include/linux/compiler_types.h",
        ] {
            if src.join(inc).is_file() {
                flags.extend(["-include".into(), p(src, inc)]);
            }
        }
        flags.extend(
            [
                "-D__KERNEL__",
                "-O2",
                "-DKBUILD_MODNAME=\"kfuzz\"",
                "-DKBUILD_BASENAME=\"kfuzz\"",
                "-DCC_USING_FENTRY",
                "-m64",
                "-mcmodel=kernel",
                "-fno-PIE",
                "-std=gnu11",
                "-fshort-wchar",
                "-funsigned-char",
                "-fno-strict-aliasing",
            ]
            .map(String::from),
        );
        let mut identity = config;
        identity.extend(tree.version.as_bytes());
        Some(HeaderSet {
            cc: cc.to_string(),
            flags,
            prelude: "",
            root: tree.root.clone(),
            search,
            identity,
        })
    }

    /// The exported uapi headers in `inc` (user space's view).
    pub fn uapi(inc: &Path, root: &Path, cc: &str) -> HeaderSet {
        let identity = std::fs::read(inc.join("linux/version.h")).unwrap_or_default();
        let mut search = vec![inc.to_path_buf()];
        search.extend(gcc_include(cc));
        search.extend(
            [
                "/usr/local/include",
                "/usr/include/x86_64-linux-gnu",
                "/usr/include",
            ]
            .map(PathBuf::from),
        );
        HeaderSet {
            cc: cc.to_string(),
            flags: vec![format!("-I{}", inc.display())],
            prelude: "#define _GNU_SOURCE\n",
            root: root.to_path_buf(),
            search,
            identity,
        }
    }
}

/// The compiler's own headers (stddef.h, stdarg.h).
fn gcc_include(cc: &str) -> Option<PathBuf> {
    let out = duct::cmd!(cc, "-print-file-name=include")
        .stderr_null()
        .read()
        .ok()?;
    let dir = PathBuf::from(out.trim());
    dir.is_dir().then_some(dir)
}

/// The values each file's names have in this tree (a name missing from the result is not
/// defined by that file's headers), computed on `jobs` threads, cached under `cache_dir`.
/// Each header set is tried in turn for the names the ones before it left undefined.
pub fn extract(
    files: &[FileConsts],
    headers: &[HeaderSet],
    cache_dir: &Path,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<HashMap<String, u64>> {
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let todo: Vec<&FileConsts> = files.iter().filter(|f| !f.names.is_empty()).collect();
    let results: Mutex<Vec<HashMap<String, u64>>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Some(f) = todo.get(i) else { break };
        match file_consts(f, headers, cache_dir) {
            Ok(map) => results.lock().unwrap_or_else(|e| e.into_inner()).push(map),
            Err(e) => errors.lock().unwrap_or_else(|e| e.into_inner()).push(e),
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        progress(n, todo.len());
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(work);
        }
    });
    if let Some(e) = errors.into_inner().unwrap_or_default().into_iter().next() {
        return Err(e);
    }
    let mut out = HashMap::new();
    for m in results.into_inner().unwrap_or_default() {
        for (k, v) in m {
            out.entry(k).or_insert(v);
        }
    }
    Ok(out)
}

fn cache_key(f: &FileConsts, headers: &HeaderSet) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    h.update(headers.prelude.as_bytes());
    h.update(&headers.identity);
    for flag in &headers.flags {
        h.update(flag.as_bytes());
        h.update(b"\0");
    }
    for part in f.includes.iter().chain(&f.incdirs) {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for (n, v) in &f.defines {
        h.update(format!("{n}={v}\0").as_bytes());
    }
    for n in &f.names {
        h.update(n.as_bytes());
        h.update(b"\0");
    }
    hex::encode(&h.finalize()[..12])
}

/// One description file's values, each header set asked for what the previous ones lacked.
fn file_consts(
    f: &FileConsts,
    headers: &[HeaderSet],
    cache_dir: &Path,
) -> anyhow::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    let mut rest = f.clone();
    for h in headers {
        let got = file_consts_with(&rest, h, cache_dir)?;
        rest.names.retain(|n| !got.contains_key(n));
        out.extend(got);
        if rest.names.is_empty() {
            break;
        }
    }
    Ok(out)
}

fn file_consts_with(
    f: &FileConsts,
    headers: &HeaderSet,
    cache_dir: &Path,
) -> anyhow::Result<HashMap<String, u64>> {
    let cache = cache_dir.join(format!("{}.json", cache_key(f, headers)));
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Ok(map) = serde_json::from_slice::<HashMap<String, u64>>(&bytes) {
            return Ok(map);
        }
    }
    let map = compile_values(f, headers)
        .with_context(|| format!("computing the constants of {}", f.file))?;
    crate::fsutil::write_atomic(&cache, &serde_json::to_vec(&map)?)?;
    Ok(map)
}

/// With `KFUZZ_DEBUG_CONSTS=DIR`, each failed try's C source and gcc's errors are kept in DIR
/// (`FILE.k0.c`/`.err` for the kernel's view, `u` for the uapi one), to see why a constant is
/// missing.
fn keep_for_debugging(f: &FileConsts, headers: &HeaderSet, attempt: usize, src: &str, err: &[u8]) {
    let Some(dir) = std::env::var_os("KFUZZ_DEBUG_CONSTS") else {
        return;
    };
    let name = Path::new(&f.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = Path::new(&dir).join(name);
    let view = if headers.prelude.is_empty() { "k" } else { "u" };
    let _ = std::fs::write(base.with_extension(format!("{view}{attempt}.c")), src);
    let _ = std::fs::write(
        base.with_extension(format!("{view}{attempt}.err")),
        format!("{:?}\n{}", headers.flags, String::from_utf8_lossy(err)),
    );
}

/// What a line of the generated C file holds, so that a compiler error's line number says
/// what to leave out on the next try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Line {
    Other,
    Include(usize),
    Define(usize),
    Name(usize),
}

/// The C source: includes, defines, then one array element per name, one per line, with what
/// each line (1-based, index 0 unused) holds.
fn c_source(
    prelude: &str,
    includes: &[String],
    defines: &[(String, String)],
    names: &[String],
) -> (String, Vec<Line>) {
    let mut s = prelude.to_string();
    let mut lines = vec![Line::Other; s.lines().count() + 1];
    for (i, inc) in includes.iter().enumerate() {
        s.push_str(&format!("#include <{inc}>\n"));
        lines.push(Line::Include(i));
    }
    for (i, (n, v)) in defines.iter().enumerate() {
        s.push_str(&format!("#ifndef {n}\n#define {n} {v}\n#endif\n"));
        lines.extend([Line::Define(i); 3]);
    }
    s.push_str("unsigned long long kfuzz_consts[] = {\n");
    lines.push(Line::Other);
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!("(unsigned long long)({n}),\n"));
        lines.push(Line::Name(i));
    }
    s.push_str("0};\n");
    (s, lines)
}

fn compile_values(f: &FileConsts, headers: &HeaderSet) -> anyhow::Result<HashMap<String, u64>> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let c = dir.path().join("consts.c");
    let o = dir.path().join("consts.o");
    let mut names: Vec<String> = f.names.iter().cloned().collect();
    let incdir_paths: Vec<PathBuf> = f.incdirs.iter().map(|d| headers.root.join(d)).collect();
    let mut includes: Vec<String> = f
        .includes
        .iter()
        .filter(|i| {
            headers
                .search
                .iter()
                .chain(&incdir_paths)
                .any(|d| d.join(i).is_file())
        })
        .cloned()
        .collect();
    let mut defines: Vec<(String, String)> = f.defines.clone();
    let incdirs: Vec<String> = f
        .incdirs
        .iter()
        .map(|d| format!("-I{}", headers.root.join(d).display()))
        .collect();
    for attempt in 0..8 {
        let (src, map) = c_source(headers.prelude, &includes, &defines, &names);
        std::fs::write(&c, &src).context("cannot write the constants program")?;
        let out = duct::cmd(
            &headers.cc,
            headers
                .flags
                .iter()
                .chain(&incdirs)
                .map(String::as_str)
                .chain([
                    "-w",
                    "-fmax-errors=0",
                    "-fno-zero-initialized-in-bss",
                    "-c",
                    "-o",
                ])
                .map(Into::into)
                .chain([o.clone().into_os_string(), c.clone().into_os_string()]),
        )
        .stderr_capture()
        .stdout_null()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", headers.cc))?;
        if out.status.success() {
            let values = read_array(&o, names.len())?;
            return Ok(names.into_iter().zip(values).collect());
        }
        keep_for_debugging(f, headers, attempt, &src, &out.stderr);
        let bad = failures(&String::from_utf8_lossy(&out.stderr), &map);
        if bad.is_empty() {
            // An error the lines do not explain: the file gets no values, and its constants
            // disable only their users.
            return Ok(HashMap::new());
        }
        let keep = |kind: fn(usize) -> Line, i: usize| !bad.contains(&kind(i));
        includes = drop_where(includes, |i| !keep(Line::Include, i));
        defines = drop_where(defines, |i| !keep(Line::Define, i));
        names = drop_where(names, |i| !keep(Line::Name, i));
    }
    Ok(HashMap::new())
}

fn drop_where<T>(v: Vec<T>, bad: impl Fn(usize) -> bool) -> Vec<T> {
    v.into_iter()
        .enumerate()
        .filter(|(i, _)| !bad(*i))
        .map(|(_, x)| x)
        .collect()
}

/// The lines of consts.c to leave out next time: the names and defines an error points at
/// (directly, or through the macro it expands); failing that, the includes an error came
/// through, or that do not exist.
fn failures(stderr: &str, map: &[Line]) -> BTreeSet<Line> {
    let mut values = BTreeSet::new();
    let mut includes = BTreeSet::new();
    for l in stderr.lines() {
        let Some(rest) = l.split("consts.c:").nth(1) else {
            continue;
        };
        let Some(n) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let line = map.get(n).copied().unwrap_or(Line::Other);
        match line {
            Line::Include(_) if l.contains("included from") || l.contains("error") => {
                includes.insert(line);
            }
            Line::Name(_) | Line::Define(_)
                if l.contains("error") || l.contains("in expansion of macro") =>
            {
                values.insert(line);
            }
            _ => {}
        }
    }
    if values.is_empty() {
        includes
    } else {
        values
    }
}

/// The first `n` values of `kfuzz_consts` in the object file.
fn read_array(obj: &Path, n: usize) -> anyhow::Result<Vec<u64>> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let bytes = std::fs::read(obj).with_context(|| format!("cannot read {}", obj.display()))?;
    let file = object::File::parse(&*bytes)
        .with_context(|| format!("{} is not an object file", obj.display()))?;
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok("kfuzz_consts"))
        .context("the constants object has no kfuzz_consts symbol")?;
    let section = sym
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .context("kfuzz_consts is in no section")?;
    if section.kind() == object::SectionKind::UninitializedData {
        return Ok(vec![0; n]);
    }
    let data = section
        .data()
        .context("cannot read the constants' section")?;
    let start = (sym.address() - section.address()) as usize;
    let end = start + n * 8;
    let Some(raw) = data.get(start..end) else {
        bail!("the constants array is shorter than {n} values");
    };
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

/// The build dir's C compiler: `$CC`, else gcc.
pub fn compiler() -> String {
    std::env::var("CC")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "gcc".into())
}

/// Where per-file values are cached.
pub fn cache_dir(tree: &KernelTree) -> PathBuf {
    tree.work_dir().join("target/consts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(names: &[&str], defines: &[(&str, &str)]) -> FileConsts {
        FileConsts {
            file: "t.txt".into(),
            includes: vec!["stddef.h".into()],
            incdirs: Vec::new(),
            defines: defines
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn values_come_from_the_compiler_and_unknown_names_are_left_out() {
        if which::which("gcc").is_err() {
            eprintln!("no gcc: skipped");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let inc = tmp.path().join("inc");
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::write(
            inc.join("k.h"),
            "#define A 7\nenum { B = 40, C = -1 };\n#define D (A << 4)\n",
        )
        .unwrap();
        let mut f = file(
            &["A", "B", "C", "D", "E", "NOPE", "offsetof(struct s, y)"],
            &[("E", "A + 1")],
        );
        f.includes = vec!["k.h".into(), "missing/header.h".into(), "stddef.h".into()];
        let h = HeaderSet::uapi(&inc, tmp.path(), "gcc");
        let cache = tmp.path().join("cache");
        let got = extract(
            std::slice::from_ref(&f),
            std::slice::from_ref(&h),
            &cache,
            2,
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(got["A"], 7);
        assert_eq!(got["B"], 40);
        assert_eq!(got["C"], u64::MAX);
        assert_eq!(got["D"], 112);
        assert_eq!(got["E"], 8);
        assert!(!got.contains_key("NOPE"));
        // A second extraction reads the cache: the header is gone and nothing changes.
        std::fs::remove_file(inc.join("k.h")).unwrap();
        let again = extract(&[f], &[h], &cache, 1, &|_, _| {}).unwrap();
        assert_eq!(got, again);
    }
}
