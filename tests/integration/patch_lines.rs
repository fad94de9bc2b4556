//! A patch to the test kernel's ipc/shm.c mapped through its vmlinux's DWARF: the changed lines
//! become KCOV PCs inside the functions they are in, and a set of PCs reports exactly the
//! lines it reaches. Needs the shared test kernel (built with DWARF); boots nothing.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use kfuzz::kernel::lines::{FunctionKey, LineTable, CALL_LEN};
use kfuzz::kernel::patch::cover::PatchMap;
use kfuzz::kernel::patch::{FileChange, FileStatus, Patch, PatchSource};

const FIXTURE: &str = "tests/fixtures/patches/shm.diff";

/// The fixture's new side must be the test kernel's source, line for line.
fn assert_new_side_matches(diff: &str, source: &Path) {
    let src = std::fs::read_to_string(source).expect("read ipc/shm.c");
    let src: Vec<&str> = src.lines().collect();
    let mut next = None;
    for l in diff.lines() {
        if let Some(h) = l.strip_prefix("@@ -") {
            let new = h
                .split(" +")
                .nth(1)
                .and_then(|r| r.split([',', ' ']).next());
            next = new.and_then(|n| n.parse::<usize>().ok());
            continue;
        }
        let Some(n) = next.as_mut() else { continue };
        match l.as_bytes().first() {
            Some(b' ' | b'+') if l != "-- " => {
                assert_eq!(&l[1..], src[*n - 1], "{FIXTURE}: new line {n}");
                *n += 1;
            }
            Some(b'-') if l != "-- " => {}
            _ => next = None,
        }
    }
}

#[test]
fn a_patch_to_shm_maps_to_its_functions_and_pcs_report_the_lines_they_reach() {
    let (tree, _) = common::build_test_kernel();
    let vmlinux = tree.join(".kfuzz/build/vmlinux");
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    assert_new_side_matches(&text, &tree.join("ipc/shm.c"));

    let patch = Patch::load(&tree, &PatchSource::File(FIXTURE.into())).expect("parse the fixture");
    let changed: Vec<u32> = patch.files["ipc/shm.c"].lines.iter().copied().collect();
    assert_eq!(changed, vec![997, 1004, 1009, 1010, 1024, 1725]);

    let t = Instant::now();
    let table = LineTable::open(&vmlinux).expect("open vmlinux");
    let opened = t.elapsed();
    let t = Instant::now();
    let map = PatchMap::new(&patch, &table).expect("map the patch");
    eprintln!(
        "vmlinux opened in {opened:.2?}, patch mapped (line table walk, KCOV sites, frames) in {:.2?}",
        t.elapsed()
    );
    for l in map.lines() {
        eprintln!(
            "  {}:{} {:?} in {:?}: KCOV PCs {:x?}",
            l.file, l.line, l.functions, l.hosts, l.pcs
        );
    }

    assert!(
        table.source_root().ends_with("/test-kernel/"),
        "{}",
        table.source_root()
    );
    assert!(map.files_without_code.is_empty());
    assert_eq!(
        map.lines_without_code, 2,
        "997 (no CONFIG_SECURITY) and the comment"
    );

    // The comment has no code; every line with code is in the function it is written in, and
    // its PCs are KCOV calls in the same symbol (the blocks holding the line's code).
    assert!(map.lines().all(|l| l.line != 1004), "a comment has no code");
    for l in map.lines() {
        let f = if l.line < 1700 {
            "shmctl_down"
        } else {
            "ksys_shmdt"
        };
        assert_eq!(
            l.functions,
            BTreeSet::from([f.to_string()]),
            "line {}",
            l.line
        );
        for &pc in &l.pcs {
            let (start, end) = table.block_of(pc).expect("a block");
            assert!(start + CALL_LEN <= end, "{pc:#x}");
            let host = table.symbol(start).expect("a symbol");
            assert!(l.hosts.contains(host), "{pc:#x} in {host}");
        }
    }
    let coverable: Vec<u32> = map
        .lines()
        .filter(|l| !l.pcs.is_empty())
        .map(|l| l.line)
        .collect();
    // 997's security check compiles to nothing without CONFIG_SECURITY; the other lines with
    // code all have blocks.
    assert_eq!(coverable, vec![1009, 1010, 1024, 1725]);
    assert_eq!(map.uninstrumented().count(), 0);

    // The PCs of one of shmctl_down's lines: that line and any sharing its blocks are reached,
    // ksys_shmdt is not.
    let one = map.lines().find(|l| l.line == 1009).expect("line 1009");
    let pcs = one.pcs.clone();
    let expected: Vec<u32> = map
        .lines()
        .filter(|l| l.pcs.iter().any(|pc| pcs.contains(pc)))
        .map(|l| l.line)
        .collect();
    assert!(
        expected.contains(&1009) && !expected.contains(&1725),
        "{expected:?}"
    );
    // A PC outside the patch (not even in the kernel) is ignored.
    let cov = map.coverage(pcs.iter().copied().chain([0x10]));
    eprintln!("patch: {} (lines {expected:?})", cov.summary());
    assert_eq!(
        cov.summary(),
        format!("1/2 functions, {}/4 lines reached", expected.len())
    );
    let down = cov
        .functions
        .iter()
        .find(|f| f.name == "shmctl_down")
        .expect("shmctl_down");
    assert_eq!(down.file, "ipc/shm.c");
    assert_eq!((down.lines_total, down.lines_reached), (3, expected.len()));
    let never: Vec<&str> = cov.unreached_functions().map(|f| f.name.as_str()).collect();
    assert_eq!(never, vec!["ksys_shmdt"]);

    // The line view regress compares: the same PCs as lines per function, all inside
    // shmctl_down's body (lines 978-1026).
    let t = Instant::now();
    let by_function = table.reached_lines(pcs.iter().copied());
    eprintln!("reached_lines for {} PCs in {:.2?}", pcs.len(), t.elapsed());
    for (k, lines) in &by_function {
        eprintln!("  {}:{} {:?}", k.file, k.function, lines);
    }
    let key = FunctionKey {
        file: "ipc/shm.c".into(),
        function: "shmctl_down".into(),
    };
    let lines = by_function.get(&key).expect("shmctl_down's lines");
    assert!(lines.contains(&1009), "{lines:?}");
    assert!(lines.iter().all(|l| (978..=1026).contains(l)), "{lines:?}");
}

/// The walk's worst case: headers that nearly every unit includes, every line of them, and a
/// large .c file. Prints the times; the bound is loose (a loaded 2-core machine).
#[test]
fn a_patch_to_widely_included_headers_maps_in_seconds() {
    let (tree, _) = common::build_test_kernel();
    let vmlinux = tree.join(".kfuzz/build/vmlinux");
    let mut patch = Patch::default();
    for (path, lines) in [
        ("include/linux/list.h", 1200),
        ("include/linux/spinlock.h", 600),
        ("include/linux/slab.h", 1000),
        ("mm/slub.c", 8000),
    ] {
        patch.files.insert(
            path.to_string(),
            FileChange {
                path: path.to_string(),
                old_path: None,
                status: FileStatus::Modified,
                binary: false,
                lines: (1..=lines).collect(),
                hunks: Vec::new(),
            },
        );
    }
    let t = Instant::now();
    let table = LineTable::open(&vmlinux).expect("open vmlinux");
    let opened = t.elapsed();
    let t = Instant::now();
    let ranges = table
        .ranges_of(
            &patch
                .files
                .iter()
                .map(|(p, f)| (p.clone(), f.lines.clone()))
                .collect(),
        )
        .expect("walk");
    let walked = t.elapsed();
    let t = Instant::now();
    let map = PatchMap::new(&patch, &table).expect("map");
    let mapped = t.elapsed();
    let cov = map.coverage(map.pcs().collect::<Vec<_>>());
    eprintln!(
        "open {opened:.2?}; line-table walk {walked:.2?} ({} ranges); whole map {mapped:.2?}: \
         {} lines with code, {} PCs, {} host functions, {} uninstrumented; all PCs: {}",
        ranges.len(),
        map.lines().count(),
        map.pcs().count(),
        map.hosts().len(),
        cov.lines_uninstrumented,
        cov.summary()
    );
    assert_eq!(cov.lines_reached, cov.lines_total);
    assert!(map.lines().count() > 500);
    // mm/Makefile builds slub.o with `KCOV_INSTRUMENT := n`: code, but nothing to report it.
    let slub: Vec<_> = map.lines().filter(|l| l.file == "mm/slub.c").collect();
    assert!(slub.len() > 100 && slub.iter().all(|l| l.pcs.is_empty()));
    assert!(walked.as_secs() < 20 && mapped.as_secs() < 60);
}
