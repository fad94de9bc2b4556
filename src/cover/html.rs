//! Coverage as HTML: an index of files with their figures, and each file's source with its
//! lines marked reached (`class="reached"`), not reached (`unreached`) or without code; changed
//! lines of a patch carry `changed` too. Shared by `kfuzz cover --html` and the dashboard.

use std::path::Path;

use anyhow::Context;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{FileCover, Report, Totals};

/// The stylesheet every page carries inline (no CDN, no second request).
pub const CSS: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; }
td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; width: 120px; height: 10px; background: #f2c4c4; vertical-align: middle; }
.bar > span { display: block; height: 100%; background: #7cc47c; }
table.src { font: 12px/1.35 ui-monospace, monospace; width: 100%; }
table.src td { border: 0; padding: 0 6px; white-space: pre; }
table.src td.n { color: #999; text-align: right; user-select: none; width: 4em; }
tr.reached td.src { background: #dff3df; }
tr.unreached td.src { background: #f8dcdc; }
tr.changed td.n { background: #ffd966; color: #000; font-weight: bold; }
.muted { color: #888; }
nav a { margin-right: 1em; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
.plots figure { margin: 0; }
"#;

/// A whole page.
pub fn page(title: &str, nav: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav { (nav) }
                (body)
            }
        }
    }
}

fn bar(percent: f64) -> Markup {
    html! { span.bar title=(format!("{percent:.1}%")) { span style=(format!("width:{percent:.1}%")) {} } }
}

fn figures(t: &Totals) -> Markup {
    html! { (t.reached) " of " (t.lines) " lines reached (" (format!("{:.1}", t.percent)) "%) in " (t.files) " files" }
}

/// The files under `dir` ("" for all), each linked through `link(path)`.
pub fn index(report: &Report, dir: &str, link: &dyn Fn(&str) -> String) -> Markup {
    let files: Vec<&FileCover> = report.under(dir).collect();
    let total = Totals::of(files.iter().copied());
    html! {
        h1 { "Coverage" @if !dir.is_empty() { " of " code { (dir) } } }
        p { (figures(&total)) ", from " (report.pcs) " KCOV PCs."
            @if let Some(p) = &report.patch { " Patch: " (p) "." } }
        table #files {
            tr { th { "file" } th.num { "lines" } th.num { "reached" } th.num { "%" } th {} th.num { "functions" }
                 @if report.patch.is_some() { th.num { "changed lines reached" } } }
            @for f in &files {
                tr {
                    td { a href=(link(&f.path)) { (f.path) } }
                    td.num { (f.lines) } td.num { (f.reached) }
                    td.num { (format!("{:.1}", f.percent)) } td { (bar(f.percent)) }
                    td.num { (f.functions.len()) }
                    @if report.patch.is_some() {
                        td.num { @if let Some(c) = &f.changed { (c.reached.len()) "/" (c.lines.len()) } }
                    }
                }
            }
        }
    }
}

/// One file: its functions' figures, then its source with each line marked. `source` is the
/// file's text (None when the tree does not have it: the lines are listed without text).
pub fn file(f: &FileCover, source: Option<&str>) -> Markup {
    let changed: std::collections::BTreeSet<u32> = f
        .changed
        .iter()
        .flat_map(|c| c.lines.iter().copied())
        .collect();
    let last = f.by_line.keys().next_back().copied().unwrap_or(0);
    let text: Vec<&str> = source.map(|s| s.lines().collect()).unwrap_or_default();
    let count = (text.len() as u32).max(last);
    html! {
        h1 { code { (f.path) } }
        p { (f.reached) " of " (f.lines) " coverable lines reached (" (format!("{:.1}", f.percent)) "%)"
            @if let Some(c) = &f.changed { "; changed lines reached: " (c.reached.len()) "/" (c.lines.len()) } "." }
        @if source.is_none() { p.muted { "The source of this file is not in the tree." } }
        h2 { "Functions" }
        table #functions {
            tr { th { "function" } th.num { "line" } th.num { "lines" } th.num { "reached" } th.num { "%" } th {} }
            @for func in &f.functions {
                tr {
                    td { a href=(format!("#L{}", func.line)) { (func.name) } }
                    td.num { (func.line) } td.num { (func.lines) } td.num { (func.reached) }
                    td.num { (format!("{:.1}", func.percent)) } td { (bar(func.percent)) }
                }
            }
        }
        h2 { "Source" }
        table.src #source {
            @for n in 1..=count {
                @let class = match f.by_line.get(&n) { Some(true) => "reached", Some(false) => "unreached", None => "" };
                @let class = if changed.contains(&n) { format!("{class} changed") } else { class.to_string() };
                tr id=(format!("L{n}")) class=[(!class.is_empty()).then_some(class.trim())] {
                    td.n { (n) }
                    td.src { (text.get(n as usize - 1).copied().unwrap_or("")) }
                }
            }
        }
    }
}

/// Writes the report as static pages under `out`: `index.html` and `files/<path>.html`.
pub fn write(report: &Report, tree: &Path, out: &Path) -> anyhow::Result<usize> {
    let file_page = |p: &str| format!("files/{p}.html");
    let index = page(
        "kfuzz coverage",
        html! {},
        index(report, "", &|p| file_page(p)),
    );
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::fsutil::write_atomic(&out.join("index.html"), index.into_string().as_bytes())?;
    for f in &report.files {
        let path = out.join(file_page(&f.path));
        // Tree-relative paths from DWARF; one with `..` would leave `out`.
        anyhow::ensure!(
            !f.path.split('/').any(|c| c == ".." || c.is_empty()),
            "refusing to write a page for {:?}",
            f.path
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let up = "../".repeat(f.path.matches('/').count() + 1);
        let source = std::fs::read_to_string(tree.join(&f.path)).ok();
        let body = file(f, source.as_deref());
        let nav = html! { a href=(format!("{up}index.html")) { "all files" } };
        crate::fsutil::write_atomic(&path, page(&f.path, nav, body).into_string().as_bytes())?;
    }
    Ok(report.files.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cover::{ChangedCover, FunctionCover};

    #[test]
    fn lines_are_marked_and_source_is_escaped() {
        let f = FileCover {
            path: "ipc/x.c".into(),
            lines: 2,
            reached: 1,
            percent: 50.0,
            functions: vec![FunctionCover {
                name: "f".into(),
                line: 2,
                lines: 2,
                reached: 1,
                percent: 50.0,
            }],
            changed: Some(ChangedCover {
                lines: vec![3],
                reached: vec![],
            }),
            by_line: [(2, true), (3, false)].into_iter().collect(),
        };
        let src = "/* a */\nif (a < b)\n\treturn <x>;\n}\n";
        let out = file(&f, Some(src)).into_string();
        assert!(out.contains(r#"<tr id="L1"><td class="n">1</td>"#), "{out}");
        assert!(
            out.contains(r#"<tr id="L2" class="reached"><td class="n">2</td><td class="src">if (a &lt; b)</td>"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<tr id="L3" class="unreached changed">"#),
            "{out}"
        );
        assert!(!out.contains("<x>"), "source is escaped");
        assert!(out.contains("changed lines reached: 0/1"), "{out}");
        assert!(out.contains(r##"<a href="#L2">f</a>"##), "{out}");
        // Without the source, the lines are still listed and marked.
        let out = file(&f, None).into_string();
        assert!(
            out.contains(r#"<tr id="L3" class="unreached changed">"#),
            "{out}"
        );
        assert!(out.contains("not in the tree"), "{out}");
    }
}
