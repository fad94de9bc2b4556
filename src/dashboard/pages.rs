//! The dashboard's pages.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use maud::{html, Markup, PreEscaped};

use super::{plot, App};
use crate::cover::html::page;
use crate::crash_dir;
use crate::fuzz::live::VmPhase;

/// Refreshes `#live` from `/live` every few seconds; the page works without it.
const SCRIPT: &str = r#"
setInterval(async () => {
  try {
    const r = await fetch('/live', {cache: 'no-store'});
    if (r.ok) document.getElementById('live').innerHTML = await r.text();
  } catch (e) {}
}, 5000);
"#;

fn nav() -> Markup {
    html! {
        a href="/" { "overview" }
        a href="/corpus" { "corpus" }
        a href="/calls" { "calls" }
        a href="/cover" { "coverage" }
        a href="/stats.json" { "stats.json" }
    }
}

pub fn index(app: &App) -> Markup {
    page(
        "kfuzz run",
        nav(),
        html! {
            h1 { "kfuzz run" }
            p.muted { "work dir " code { (app.workdir.display()) } }
            div #live { (live(app)) }
            script { (PreEscaped(SCRIPT)) }
        },
    )
}

fn since(secs: u64) -> String {
    if secs == 0 {
        "-".into()
    } else {
        crate::shell::utc(secs)
    }
}

/// The part of the overview that changes: figures, plots, VMs, crashes.
pub fn live(app: &App) -> Markup {
    let st = &app.fuzzer.stats;
    let samples = app.samples();
    let elapsed = app.started.elapsed();
    let rate = samples.last().map_or(0.0, |s| s.execs_per_sec);
    let crashes = crash_dir::list(&app.workdir.join("crashes"));
    let reproducing = app.fuzzer.live.reproducing();
    let patch = app
        .fuzzer
        .options()
        .focus
        .as_ref()
        .map(|f| f.coverage().summary());
    html! {
        p #figures {
            "up " (crate::kernel::build::human_duration(std::time::Duration::from_secs(elapsed.as_secs())))
            " · execs " (st.execs.load(Relaxed)) " (" (format!("{rate:.1}")) "/s)"
            " · corpus " (st.corpus.load(Relaxed))
            " · signal " (st.signal.load(Relaxed))
            " · cover " (st.cover.load(Relaxed))
            " · crashes " (st.crashes.load(Relaxed))
            @if let Some(p) = &patch { " · patch: " (p) }
        }
        div.plots {
            figure #plot-execs { (PreEscaped(plot::line_chart("execs/s", &samples, |s| s.execs_per_sec))) }
            figure #plot-signal { (PreEscaped(plot::line_chart("signal", &samples, |s| s.signal as f64))) }
            figure #plot-cover { (PreEscaped(plot::line_chart("coverage (PCs)", &samples, |s| s.cover as f64))) }
            figure #plot-corpus { (PreEscaped(plot::line_chart("corpus", &samples, |s| s.corpus as f64))) }
            figure #plot-crashes { (PreEscaped(plot::line_chart("crashes", &samples, |s| s.crashes as f64))) }
        }
        h2 { "VMs" }
        table #vms {
            tr { th { "VM" } th { "state" } th.num { "for" } }
            @for v in app.fuzzer.live.vms() {
                tr {
                    td { "vm" (v.vm) }
                    td class=(phase_name(v.phase)) { (phase_name(v.phase)) }
                    td.num { (format!("{:.0}s", v.secs)) }
                }
            }
            @if let Some((title, secs)) = &reproducing {
                tr { td { "repro" } td.reproducing { "reproducing " (title) } td.num { (format!("{secs:.0}s")) } }
            }
        }
        h2 { "Crashes" }
        @if crashes.is_empty() { p.muted { "None yet." } }
        @else {
            table #crashes {
                tr { th { "title" } th.num { "count" } th { "first seen" } th { "last seen" } th { "reproducer" } th { "files" } }
                @for e in &crashes {
                    @let dir = e.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    @let d = e.crash_dir();
                    tr {
                        td.title { (e.title) }
                        td.num { (e.count) }
                        td { (since(e.first_seen)) }
                        td { (since(e.last_seen)) }
                        td {
                            @if reproducing.as_ref().is_some_and(|(t, _)| *t == e.title) { "reproducing…" }
                            @else if e.syz_repro {
                                "syz" @if e.c_repro { " + C" @if e.c_repro_crashes == Some(false) { " (C does not crash)" } }
                            }
                            @else if d.repro_log().exists() { "did not reproduce" }
                            @else { "-" }
                        }
                        td.links {
                            @for (name, path) in [("report", d.report(0)), ("log", d.log(0)), ("repro.syz", d.repro_syz()), ("repro.c", d.repro_c())] {
                                @if path.is_file() {
                                    a href=(format!("/files/crashes/{dir}/{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())) { (name) } " "
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn phase_name(p: VmPhase) -> &'static str {
    match p {
        VmPhase::Booting => "booting",
        VmPhase::Fuzzing => "fuzzing",
        VmPhase::Restarting => "restarting",
        VmPhase::Stopped => "stopped",
    }
}

/// `/stats.json`: what the overview shows, for tools.
pub fn stats(app: &App) -> serde_json::Value {
    let st = &app.fuzzer.stats;
    serde_json::json!({
        "uptime_secs": app.started.elapsed().as_secs_f64(),
        "execs": st.execs.load(Relaxed),
        "corpus": st.corpus.load(Relaxed),
        "signal": st.signal.load(Relaxed),
        "cover": st.cover.load(Relaxed),
        "crashes": st.crashes.load(Relaxed),
        "vms": app.fuzzer.live.vms(),
        "reproducing": app.fuzzer.live.reproducing().map(|(t, _)| t),
        "samples": app.samples(),
        "crash_titles": crash_dir::list(&app.workdir.join("crashes")),
    })
}

pub fn calls(app: &App) -> Markup {
    let t = &app.fuzzer.options().target;
    let mut calls = app.fuzzer.live.calls(&app.fuzzer.options().enabled, |id| {
        t.syscalls[id].name.clone()
    });
    calls.sort_by(|a, b| b.execs.cmp(&a.execs).then(a.name.cmp(&b.name)));
    page(
        "kfuzz: calls",
        nav(),
        html! {
            h1 { "Enabled calls (" (calls.len()) ")" }
            table #calls {
                tr { th { "call" } th.num { "executions" } th.num { "corpus programs" } th.num { "signal" } }
                @for c in &calls {
                    tr { td { (c.name) } td.num { (c.execs) } td.num { (c.inputs) } td.num { (c.signal) } }
                }
            }
            p.muted { "Signal: the stable signal of the corpus programs ending with the call (a minimized program ends with the call that made it worth keeping)." }
        },
    )
}

pub fn corpus(app: &App) -> Markup {
    let dir = app.workdir.join("corpus");
    let programs = crate::fuzz::corpus::load_texts(&dir);
    page(
        "kfuzz: corpus",
        nav(),
        html! {
            h1 { "Corpus (" (programs.len()) " programs)" }
            table #corpus {
                tr { th { "program" } th.num { "calls" } th.num { "signal" } th.num { "lines reached" } th { "calls" } }
                @for (path, text) in &programs {
                    @let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    @let meta = crate::fuzz::corpus::load_meta(path);
                    @let calls: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).collect();
                    tr {
                        td { a href=(format!("/corpus/{name}")) { (name) } }
                        td.num { (calls.len()) }
                        td.num { (meta.as_ref().map_or(0, |m| m.signal.len())) }
                        td.num { (meta.as_ref().map_or(0, |m| m.lines.values().flat_map(|f| f.values()).map(Vec::len).sum::<usize>())) }
                        td.muted { (calls.iter().map(|l| call_name(l)).collect::<Vec<_>>().join(" ")) }
                    }
                }
            }
        },
    )
}

/// `r0 = shmget(…)` → `shmget`.
fn call_name(line: &str) -> &str {
    let l = line.split_once(" = ").map_or(line, |(_, r)| r);
    l.split('(').next().unwrap_or(l).trim()
}

pub fn program(app: &App, name: &str) -> Option<Markup> {
    let path = app.workdir.join("corpus").join(name);
    let text = std::fs::read_to_string(&path).ok()?;
    let meta = crate::fuzz::corpus::load_meta(&path);
    Some(page(
        name,
        nav(),
        html! {
            h1 { "Corpus program " code { (name) } }
            pre #program { (text) }
            @if let Some(m) = &meta {
                p { (m.signal.len()) " signal; recorded " (crate::shell::utc(m.recorded)) "." }
                h2 { "What it covers" }
                table #covers {
                    tr { th { "file" } th { "function" } th.num { "lines" } }
                    @for (file, functions) in &m.lines {
                        @for (function, lines) in functions {
                            tr {
                                td { a href=(format!("/cover/file/{file}#L{}", lines.first().copied().unwrap_or(1))) { (file) } }
                                td { (function) }
                                td.num { (lines.len()) }
                            }
                        }
                    }
                }
            } @else { p.muted { "No coverage record beside it." } }
        },
    ))
}

/// The coverage of the run's PCs under `paths` (made again only when coverage grew).
fn cover_report(app: &App, paths: &[String]) -> anyhow::Result<Arc<crate::cover::Report>> {
    let key = paths.to_vec();
    let now = app.fuzzer.stats.cover.load(Relaxed);
    if let Some((at, r)) = app.covers.lock().ok().and_then(|c| c.get(&key).cloned()) {
        if at == now {
            return Ok(r);
        }
    }
    let r = Arc::new(make_cover_report(app, paths)?);
    if let Ok(mut c) = app.covers.lock() {
        if c.len() >= 64 {
            c.clear();
        }
        c.insert(key, (now, Arc::clone(&r)));
    }
    Ok(r)
}

fn make_cover_report(app: &App, paths: &[String]) -> anyhow::Result<crate::cover::Report> {
    let vmlinux = app
        .vmlinux
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no vmlinux beside the kernel: no coverage by source"))?;
    let mut table = app
        .table
        .lock()
        .map_err(|_| anyhow::anyhow!("the line table is unusable"))?;
    if table.is_none() {
        *table = Some(crate::kernel::lines::LineTable::open(vmlinux)?);
    }
    let Some(table) = table.as_ref() else {
        anyhow::bail!("no line table");
    };
    let pcs = app.fuzzer.cover_pcs();
    let focus = app.fuzzer.options().focus.as_ref();
    crate::cover::compute(
        table,
        paths,
        &pcs,
        &Default::default(),
        focus.map(|f| &f.map),
    )
}

pub fn cover_index(app: &App, path: &str) -> anyhow::Result<Markup> {
    // `/`, `.` and `` all mean the files the run reached, never the whole kernel.
    let path = crate::cover::clean(path);
    let path = path.as_str();
    let paths: Vec<String> = if path.is_empty() {
        Vec::new()
    } else {
        vec![path.to_string()]
    };
    let r = cover_report(app, &paths)?;
    Ok(page(
        "kfuzz: coverage",
        nav(),
        html! {
            form method="get" action="/cover" {
                "file or directory: " input type="text" name="path" value=(path) placeholder="ipc/";
                " " button type="submit" { "show" }
            }
            (crate::cover::html::index(&r, path, &|p| format!("/cover/file/{p}")))
        },
    ))
}

pub fn cover_file(app: &App, path: &str) -> anyhow::Result<Markup> {
    let r = cover_report(app, &[path.to_string()])?;
    let f = r
        .file(path)
        .ok_or_else(|| anyhow::anyhow!("{path}: no coverable line in this kernel"))?;
    let source = std::fs::read_to_string(app.tree.join(path)).ok();
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    Ok(page(
        path,
        html! { (nav()) a href=(format!("/cover?path={dir}")) { (dir) "/" } },
        crate::cover::html::file(f, source.as_deref()),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_names_are_read_from_program_lines() {
        assert_eq!(super::call_name("r0 = shmget(0x0, 0x1000)"), "shmget");
        assert_eq!(
            super::call_name("shmctl$IPC_RMID(r0, 0x0)"),
            "shmctl$IPC_RMID"
        );
        assert_eq!(super::call_name("weird"), "weird");
    }
}
