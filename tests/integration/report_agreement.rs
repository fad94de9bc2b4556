//! How often our crash titles agree with syzkaller's own parser, measured on syzkaller's test
//! logs (`pkg/report/testdata/linux/report/`: a header of `TITLE:`, `ALT:`, `TYPE:`,
//! `CORRUPTED: Y`, …, a blank line, then the console log). A measurement, not a CI test: it
//! needs those logs on disk, in the directory named by `KFUZZ_SYZKALLER_REPORTS`.
//!
//! ```text
//! mkdir -p ~/.cache/kfuzz/syzkaller-reports
//! git -C <syzkaller checkout> archive HEAD pkg/report/testdata/linux/report \
//!     | tar -x -C ~/.cache/kfuzz/syzkaller-reports
//! KFUZZ_SYZKALLER_REPORTS=~/.cache/kfuzz/syzkaller-reports/pkg/report/testdata/linux/report \
//!     cargo test --release --test integration report_agreement -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use kfuzz::report::{parse, CrashKind};

/// What syzkaller expects of one log.
struct Expected {
    /// `None`: the log holds no crash.
    title: Option<String>,
    corrupted: bool,
    /// Sorted.
    alt_titles: Vec<String>,
    log: String,
}

fn read_expected(text: &str) -> Expected {
    let text = text.replace('\r', "");
    let (header, rest) = text.split_once("\n\n").unwrap_or(("", text.as_str()));
    // A `REPORT:` section after the log holds the expected report text, not console output.
    let log = match rest.find("\n\nREPORT:\n") {
        Some(at) => &rest[..at + 1],
        None => rest,
    };
    let field = |name: &str| header.lines().find_map(|l| l.strip_prefix(name));
    Expected {
        title: field("TITLE:")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        corrupted: field("CORRUPTED: ") == Some("Y"),
        alt_titles: {
            let mut alts: Vec<String> = header
                .lines()
                .filter_map(|l| l.strip_prefix("ALT: "))
                .map(str::to_string)
                .collect();
            alts.sort();
            alts
        },
        log: log.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    files: usize,
    agreed: usize,
}

#[test]
#[ignore = "a measurement: needs syzkaller's report logs in $KFUZZ_SYZKALLER_REPORTS"]
fn titles_agree_with_syzkaller() {
    let dir = std::env::var_os("KFUZZ_SYZKALLER_REPORTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KFUZZ_SYZKALLER_REPORTS is not set: point it at syzkaller's \
             pkg/report/testdata/linux/report (see this file's header for how to extract it)"
            )
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no logs", dir.display());

    let mut total = Tally::default();
    let mut by_kind: BTreeMap<String, Tally> = BTreeMap::new();
    let mut mismatches = Vec::new();
    // Alternative titles are reported, not judged: they only widen matching against known bugs.
    let mut alt_agreed = 0;
    let mut alt_mismatches = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let want = read_expected(&String::from_utf8_lossy(&bytes));
        let got = parse(&want.log).into_iter().next();
        let got_title = got.as_ref().map(|r| r.title.as_str());
        let got_corrupted = got.as_ref().is_some_and(|r| r.corrupted);
        let agreed = got_title == want.title.as_deref()
            && (want.title.is_none() || got_corrupted == want.corrupted);
        let kind = match &want.title {
            Some(t) => format!("{:?}", CrashKind::of_title(t)),
            None => "(no crash)".to_string(),
        };
        let tally = by_kind.entry(kind).or_default();
        for t in [&mut total, tally] {
            t.files += 1;
            t.agreed += usize::from(agreed);
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if want.title.is_some() {
            let mut got_alts = got
                .as_ref()
                .map(|r| r.alt_titles.clone())
                .unwrap_or_default();
            got_alts.sort();
            if got_alts == want.alt_titles {
                alt_agreed += 1;
            } else {
                alt_mismatches.push(format!(
                    "{name}: got {got_alts:?}, want {:?}",
                    want.alt_titles
                ));
            }
        }
        if !agreed {
            mismatches.push(format!(
                "{name}: got {got_title:?}{}, want {:?}{}",
                if got_corrupted { " (corrupted)" } else { "" },
                want.title,
                if want.corrupted { " (corrupted)" } else { "" },
            ));
        }
    }
    println!("alternative title mismatches:");
    for m in &alt_mismatches {
        println!("  {m}");
    }
    println!("mismatches:");
    for m in &mismatches {
        println!("  {m}");
    }
    let pct = |t: &Tally| 100.0 * t.agreed as f64 / t.files.max(1) as f64;
    println!("agreement by kind (of the expected title):");
    for (kind, t) in &by_kind {
        println!(
            "  {kind:<16} {:>4}/{:<4} {:>5.1} %",
            t.agreed,
            t.files,
            pct(t)
        );
    }
    let crashes = total.files - by_kind.get("(no crash)").map_or(0, |t| t.files);
    println!("alternative titles agree: {alt_agreed}/{crashes}");
    println!(
        "agreement: {}/{} = {:.1} %",
        total.agreed,
        total.files,
        pct(&total)
    );
    assert!(
        pct(&total) >= 90.0,
        "agreement {:.1} % is below 90 %",
        pct(&total)
    );
}
