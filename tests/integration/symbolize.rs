//! Symbolized crash reports against the test kernel's own vmlinux (built with DWARF): an LKDTM
//! report, its frames rewritten to this build's sizes, gets `file:line` for each frame, through
//! the library and through `kfuzz report --json`.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{build_test_kernel, kfuzz, stderr_of, stdout_of};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// The test kernel's vmlinux, which must have DWARF.
fn vmlinux() -> (PathBuf, PathBuf) {
    let (tree, built) = build_test_kernel();
    let vmlinux = PathBuf::from(built["vmlinux"].as_str().expect("vmlinux path"));
    (tree, vmlinux)
}

/// Sizes of the text symbols of `vmlinux` by name, as kallsyms would print them for labels
/// (the distance to the next symbol) and as the ELF symbol table has them for functions.
fn sizes(vmlinux: &Path) -> HashMap<String, Vec<u64>> {
    let data = std::fs::read(vmlinux).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let text: Vec<_> = file
        .symbols()
        .filter(|s| {
            // Functions, and assembly (no type) in code sections.
            s.kind() == SymbolKind::Text
                || (s.kind() == SymbolKind::Unknown
                    && s.section_index()
                        .and_then(|i| file.section_by_index(i).ok())
                        .is_some_and(|sec| sec.kind() == SectionKind::Text))
        })
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    let mut starts: Vec<u64> = text.iter().map(|t| t.0).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut sizes: HashMap<String, Vec<u64>> = HashMap::new();
    for (start, size, name) in text {
        let size = match size {
            0 => match starts.get(starts.partition_point(|&s| s <= start)) {
                Some(next) => next - start,
                None => continue,
            },
            s => s,
        };
        sizes.entry(name).or_default().push(size);
    }
    sizes
}

/// The fixture's log with each `func+0xOFF/0xSIZE` ending a line rewritten to the size `func`
/// has in this build (offsets kept when they still fit), so that it reads as this kernel's.
fn log_for_this_build(fixture: &str, vmlinux: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(fixture);
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, log) = text
        .split_once("\n\n")
        .expect("a header, a blank line, the log");
    let sizes = sizes(vmlinux);
    let mut out = String::new();
    for line in log.lines() {
        let rewritten = (|| {
            let word = line.split_whitespace().last()?;
            let sym = word.rsplit(':').next()?;
            let (name, place) = sym.rsplit_once('+')?;
            let off = u64::from_str_radix(place.split('/').next()?.strip_prefix("0x")?, 16).ok()?;
            let [size] = sizes.get(name)?.as_slice() else {
                return None;
            };
            let new = format!("{name}+{:#x}/{size:#x}", off.min(size - 1));
            Some(format!("{}{new}", line.strip_suffix(sym)?))
        })();
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn an_lkdtm_bug_gets_file_and_line_for_its_frames() {
    let (_, vmlinux) = vmlinux();
    let t = Instant::now();
    let symbols = kfuzz::kernel::symbols::Symbols::load(&vmlinux).unwrap();
    let load = t.elapsed();
    assert!(
        symbols.has_debug_info(),
        "{} has no DWARF: the test kernel is built with CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT",
        vmlinux.display()
    );
    let log = log_for_this_build("lkdtm-bug.log", &vmlinux);
    let reports = kfuzz::report::parse(&log);
    let report = &reports[0];
    assert_eq!(report.title, "kernel BUG in lkdtm_BUG");

    let t = Instant::now();
    let sym = kfuzz::report::symbolize::symbolize(&report.report, &symbols);
    let first = t.elapsed();
    let t = Instant::now();
    let again = kfuzz::report::symbolize::symbolize(&report.report, &symbols);
    let second = t.elapsed();
    eprintln!("Symbols::load {load:?}; symbolize: first report {first:?}, next {second:?}");
    assert_eq!(sym, again);
    // The decoded report reads as the same crash.
    let reparsed = kfuzz::report::parse(&sym.text);
    assert_eq!(
        reparsed.first().map(|r| r.title.as_str()),
        Some(report.title.as_str()),
        "{}",
        sym.text
    );

    let bug = &sym.frames[0];
    assert_eq!(bug.function, "lkdtm_BUG");
    assert_eq!(bug.file.as_deref(), Some("drivers/misc/lkdtm/bugs.c"));
    assert!(bug.line.is_some_and(|l| l > 0), "{bug:?}");
    let entry = sym
        .frames
        .iter()
        .find(|f| f.function == "direct_entry")
        .expect("a direct_entry frame");
    assert_eq!(entry.file.as_deref(), Some("drivers/misc/lkdtm/core.c"));
    let rip = sym
        .text
        .lines()
        .find(|l| l.starts_with("RIP: 0010:"))
        .unwrap();
    assert!(
        rip.starts_with("RIP: 0010:lkdtm_BUG (drivers/misc/lkdtm/bugs.c:"),
        "{rip}"
    );
    assert!(
        sym.text
            .contains(" direct_entry (drivers/misc/lkdtm/core.c:"),
        "{}",
        sym.text
    );
    assert_eq!(
        sym.text.lines().count(),
        report.report.lines().count(),
        "decode_stacktrace.sh keeps one line per line"
    );
    // An assembly label (no ELF size) is found too.
    let entry = sym
        .frames
        .iter()
        .find(|f| f.function == "entry_SYSCALL_64_after_hwframe")
        .expect("the syscall entry frame");
    assert_eq!(entry.file.as_deref(), Some("arch/x86/entry/entry_64.S"));
    assert!(second < Duration::from_secs(1), "{second:?}");
}

#[test]
fn kfuzz_report_json_is_one_array_with_source_lines() {
    let (tree, vmlinux) = vmlinux();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    std::fs::write(&log, log_for_this_build("lkdtm-bug.log", &vmlinux)).unwrap();
    let check = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", stderr_of(out));
        let stdout = stdout_of(out);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let reports = v.as_array().expect("one JSON array");
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(r["title"], "kernel BUG in lkdtm_BUG");
        assert_eq!(r["kind"], "kernel-bug");
        assert_eq!(r["symbolized"], true);
        let frames = r["frames"].as_array().unwrap();
        assert_eq!(frames[0]["file"], "drivers/misc/lkdtm/bugs.c");
        assert!(frames[0]["line"].as_u64().is_some_and(|l| l > 0));
        assert!(r["report"]
            .as_str()
            .unwrap()
            .contains("lkdtm_BUG (drivers/misc/lkdtm/bugs.c:"));
    };
    let out = kfuzz()
        .args(["report", "--json", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&log)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    check(&out);
    // In the kfuzz tree the built vmlinux is found, and --message-format json is --json.
    let out = kfuzz()
        .args(["report", "--message-format", "json"])
        .arg(&log)
        .current_dir(&tree)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    check(&out);
}
