//! `kfuzz regress --ktap`: the results as KTAP version 1 (Documentation/dev-tools/ktap.rst),
//! the format kselftest and KUnit print, so that kernel CI parsers read them as they read a
//! selftest run. One test per program (the crash title and lost coverage in `# ` diagnostic
//! lines before its result line), `# SKIP` for programs that were not replayed, and a last
//! `coverage` test whose subtests are the files that lost coverage.

use std::fmt::Write as _;

use super::{failed, one_line, verdict_words, RegressRun, COVERAGE_TEST};
use crate::regress::Verdict;

/// At most this many lost PCs are named in a program's diagnostics.
const LOST_NAMED: usize = 10;

/// A KTAP test description: any text but `#` and line breaks (the spec's rule), and not
/// starting with `- ` (which TAP readers take as a separator).
pub fn safe_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c == '#' || c.is_control() { '_' } else { c })
        .collect::<String>()
        .trim()
        .to_string();
    if out.starts_with("- ") || out == "-" {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() {
        out.push_str("unnamed");
    }
    out
}

/// Directive data and diagnostic text: one line; `#` is allowed there.
fn data(s: &str) -> String {
    one_line(s)
}

#[derive(Default)]
struct Totals {
    pass: usize,
    fail: usize,
    skip: usize,
}

/// The run as a KTAP document.
pub fn write(run: &RegressRun) -> String {
    let (names, skipped_names) = run.test_names();
    let mut out = String::new();
    let mut totals = Totals::default();
    let total = run.programs.len() + run.skipped.len() + 1;
    let repros = run.programs.iter().filter(|p| p.repro_of.is_some()).count();
    let _ = writeln!(out, "KTAP version 1");
    let _ = writeln!(out, "1..{total}");
    let _ = writeln!(
        out,
        "# kfuzz regress: {} corpus programs, {repros} reproducers, {} skipped, in {:.0}s",
        run.programs.len() - repros,
        run.skipped.len(),
        run.seconds
    );
    let mut n = 0;
    for (p, name) in run.programs.iter().zip(&names) {
        n += 1;
        let r = p.result;
        let _ = writeln!(out, "# {name}: {}", data(&r.path.display().to_string()));
        match (&r.verdict, r.title.as_deref()) {
            (Verdict::Ok, _) | (Verdict::Error, _) => {}
            (Verdict::Fixed, _) => {
                let _ = writeln!(
                    out,
                    "# {name}: fixed: no longer crashes with {}",
                    data(p.repro_of.unwrap_or("its title"))
                );
            }
            (v, title) => {
                let _ = writeln!(
                    out,
                    "# {name}: {}: {}",
                    verdict_words(v),
                    data(title.unwrap_or("(no title)"))
                );
                if *v == Verdict::OtherCrash {
                    if let Some(t) = p.repro_of {
                        let _ = writeln!(out, "# {name}: saved for: {}", data(t));
                    }
                }
                // The oops as it was printed, its indentation kept.
                for line in r.report.as_deref().unwrap_or("").lines() {
                    let line: String = line
                        .chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect();
                    if !line.trim().is_empty() {
                        let _ = writeln!(out, "# {}", line.trim_end());
                    }
                }
            }
        }
        if r.lost_cover > 0 {
            let mut named = r
                .lost
                .iter()
                .take(LOST_NAMED)
                .map(|k| data(k))
                .collect::<Vec<_>>()
                .join(", ");
            if r.lost.len() > LOST_NAMED {
                let _ = write!(named, ", … ({} more)", r.lost.len() - LOST_NAMED);
            }
            let _ = writeln!(
                out,
                "# {name}: lost {} of {} recorded PCs: {named}",
                r.lost_cover, r.recorded_cover
            );
        }
        if r.verdict == Verdict::Error {
            totals.fail += 1;
            let why = r
                .report
                .as_deref()
                .and_then(|s| s.lines().map(data).find(|l| !l.is_empty()));
            let _ = writeln!(
                out,
                "not ok {n} {} # ERROR {}",
                safe_name(name),
                why.as_deref().unwrap_or("not run")
            );
        } else if failed(&r.verdict) {
            totals.fail += 1;
            let _ = writeln!(out, "not ok {n} {}", safe_name(name));
        } else {
            totals.pass += 1;
            let _ = writeln!(out, "ok {n} {}", safe_name(name));
        }
    }
    for ((path, why), name) in run.skipped.iter().zip(&skipped_names) {
        n += 1;
        totals.skip += 1;
        let _ = writeln!(out, "# {name}: {}", data(&path.display().to_string()));
        let _ = writeln!(
            out,
            "ok {n} {} # SKIP does not fit the current descriptions: {}",
            safe_name(name),
            data(why)
        );
    }
    n += 1;
    write_coverage(&mut out, run, n, &mut totals);
    let _ = writeln!(
        out,
        "# Totals: pass:{} fail:{} skip:{} total:{total}",
        totals.pass, totals.fail, totals.skip
    );
    out
}

/// The `coverage` test: a subtest per file (or function) that lost coverage, each failing
/// when the whole is over the threshold (a parent fails with its subtests, as the spec wants).
fn write_coverage(out: &mut String, run: &RegressRun, n: usize, totals: &mut Totals) {
    let c = &run.coverage;
    if c.recorded == 0 {
        totals.skip += 1;
        let _ = writeln!(
            out,
            "ok {n} {COVERAGE_TEST} # SKIP no program has recorded coverage to compare"
        );
        return;
    }
    let exceeded = c.exceeded();
    if !c.by_file.is_empty() {
        let _ = writeln!(out, "  KTAP version 1");
        let _ = writeln!(out, "  1..{}", c.by_file.len());
        for (i, (group, lost, funcs)) in c.by_file.iter().enumerate() {
            let funcs = funcs.iter().map(|f| data(f)).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                out,
                "{}ok {} {} # lost {lost} PCs in {funcs}",
                if exceeded { "  not " } else { "  " },
                i + 1,
                safe_name(group),
            );
        }
    }
    let _ = writeln!(
        out,
        "# {COVERAGE_TEST}: {} of {} recorded PCs no longer reached ({:.1}%); judged {:.1}% against the threshold {}%",
        c.lost,
        c.recorded,
        c.lost_percent(),
        c.judged_percent,
        c.threshold_percent
    );
    if exceeded {
        totals.fail += 1;
        let _ = writeln!(out, "not ok {n} {COVERAGE_TEST}");
    } else {
        totals.pass += 1;
        let _ = writeln!(out, "ok {n} {COVERAGE_TEST}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_hashes_and_line_breaks() {
        assert_eq!(safe_name("a#b\nc"), "a_b_c");
        assert_eq!(safe_name("- x"), "_ x");
        assert_eq!(safe_name("  "), "unnamed");
        assert_eq!(safe_name("lib/maple_tree.c"), "lib/maple_tree.c");
    }
}
