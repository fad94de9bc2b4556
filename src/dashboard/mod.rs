//! `kfuzz run --http`: a read-only dashboard of a running fuzzer. Pages are rendered on the
//! server (maud, SVG plots from plotters) from snapshots of the fuzzer's counters, taken by the
//! requests themselves and by a sampler; a slow or stuck browser holds no lock the fuzzer needs.
//! Files are served only from under the work dir.

pub mod history;
mod pages;
mod plot;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::fuzz::Fuzzer;
use crate::kernel::lines::LineTable;
use crate::shell::Shell;
use history::{History, Sample};

/// A coverage report and the run's coverage count it was made at.
type CachedCover = (u64, Arc<crate::cover::Report>);

/// What the pages are made from.
pub struct App {
    fuzzer: Arc<Fuzzer>,
    /// The work dir, canonical: nothing outside it is served.
    workdir: PathBuf,
    /// The kernel tree, for the source of coverage pages.
    tree: PathBuf,
    /// vmlinux, for coverage by source (opened on the first coverage page).
    vmlinux: Option<PathBuf>,
    table: Mutex<Option<LineTable>>,
    /// Coverage reports by the paths asked for, with the run's coverage count they were made
    /// at: made again only when coverage grew.
    covers: Mutex<std::collections::HashMap<Vec<String>, CachedCover>>,
    history: Mutex<History>,
    started: Instant,
    /// The `Host` values a request may carry (the address, and `localhost` on loopback); None
    /// when bound beyond loopback on purpose.
    hosts: Option<Vec<String>>,
}

impl App {
    fn sample(&self) -> Sample {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.fuzzer.stats;
        Sample {
            secs: self.started.elapsed().as_secs_f64(),
            execs: st.execs.load(Relaxed),
            execs_per_sec: 0.0,
            signal: st.signal.load(Relaxed),
            cover: st.cover.load(Relaxed),
            corpus: st.corpus.load(Relaxed),
            crashes: st.crashes.load(Relaxed),
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.history.lock().map(|h| h.samples()).unwrap_or_default()
    }
}

/// A running dashboard; dropping it stops the server (within about 3 s: requests still
/// running then are dropped).
pub struct Dashboard {
    pub url: String,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Files larger than this are served cut (a console log is capped far below it).
const MAX_FILE: u64 = 32 << 20;

/// `--http [ADDR]`: the address to serve on; `127.0.0.1:0` (a free port) when none is given.
pub fn parse_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().with_context(|| {
        format!("expected an address like 127.0.0.1:8080 (or a port alone), found {s:?}")
    })
}

/// Serves the dashboard of `fuzzer` on `addr` from a thread of its own.
pub fn start(
    addr: SocketAddr,
    fuzzer: Arc<Fuzzer>,
    tree: &Path,
    vmlinux: Option<PathBuf>,
    shell: &Shell,
) -> anyhow::Result<Dashboard> {
    if !addr.ip().is_loopback() {
        shell.warn(format!(
            "the dashboard listens on {addr}, beyond this machine: whoever reaches it can read \
             the work dir's corpus and crashes"
        ));
    }
    let workdir = &fuzzer.options().workdir;
    std::fs::create_dir_all(workdir)
        .with_context(|| format!("cannot create {}", workdir.display()))?;
    let workdir = workdir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", workdir.display()))?;
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}/");
    // On loopback, a page from elsewhere may not read the dashboard through a DNS name that
    // resolves to 127.0.0.1 (DNS rebinding): only these `Host` values are answered.
    let hosts = local.ip().is_loopback().then(|| {
        let port = local.port();
        vec![
            local.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]
    });
    let app = Arc::new(App {
        fuzzer,
        workdir,
        tree: tree.to_path_buf(),
        vmlinux,
        table: Mutex::new(None),
        covers: Mutex::new(Default::default()),
        history: Mutex::new(History::new(1800, Duration::from_secs(2))),
        started: Instant::now(),
        hosts,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(2)
        .build()
        .context("cannot start the dashboard's runtime")?;
    let thread = std::thread::Builder::new()
        .name("dashboard".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::spawn(sampler(Arc::clone(&app)));
                let mut graceful = stopped.clone();
                let serve = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
                    let _ = graceful.wait_for(|s| *s).await;
                });
                // A client that never finishes its request would hold a graceful shutdown
                // forever: the run's end waits 2 s for requests, no more.
                let mut deadline = stopped;
                tokio::select! {
                    _ = serve => {}
                    _ = async move {
                        let _ = deadline.wait_for(|s| *s).await;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    } => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .context("cannot start the dashboard's thread")?;
    Ok(Dashboard {
        url,
        stop,
        thread: Some(thread),
    })
}

async fn sampler(app: Arc<App>) {
    loop {
        let every = match app.history.lock() {
            Ok(mut h) => {
                h.push(app.sample());
                h.every()
            }
            Err(_) => return,
        };
        tokio::time::sleep(every).await;
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/live", get(live))
        .route("/stats.json", get(stats_json))
        .route("/calls", get(calls))
        .route("/corpus", get(corpus))
        .route("/corpus/{name}", get(program))
        .route("/cover", get(cover_index))
        .route("/cover/file/{*path}", get(cover_file))
        .route("/files/{*path}", get(file))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            check_host,
        ))
        .with_state(app)
}

async fn check_host(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(hosts) = &app.hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !hosts.iter().any(|h| h == host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                format!("this dashboard answers to {}\n", hosts[0]),
            )
                .into_response();
        }
    }
    next.run(req).await
}

fn html(m: maud::Markup) -> Response {
    Html(m.into_string()).into_response()
}

fn not_found(what: impl std::fmt::Display) -> Response {
    (StatusCode::NOT_FOUND, format!("{what}\n")).into_response()
}

async fn index(State(app): State<Arc<App>>) -> Response {
    html(pages::index(&app))
}

async fn live(State(app): State<Arc<App>>) -> Response {
    html(pages::live(&app))
}

async fn stats_json(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        pages::stats(&app).to_string(),
    )
        .into_response()
}

async fn calls(State(app): State<Arc<App>>) -> Response {
    html(pages::calls(&app))
}

async fn corpus(State(app): State<Arc<App>>) -> Response {
    let a = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || pages::corpus(&a)).await {
        Ok(m) => html(m),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn program(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> Response {
    // A corpus file name: hex and `.syz`, nothing that could leave the folder.
    if !name.ends_with(".syz") || name.contains('/') || name.starts_with('.') {
        return not_found(format!("no corpus program {name:?}"));
    }
    let a = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || pages::program(&a, &name)).await {
        Ok(Some(m)) => html(m),
        Ok(None) => not_found("no such corpus program"),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CoverQuery {
    #[serde(default)]
    path: String,
}

async fn cover_index(State(app): State<Arc<App>>, Query(q): Query<CoverQuery>) -> Response {
    let a = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || pages::cover_index(&a, &q.path)).await {
        Ok(Ok(m)) => html(m),
        Ok(Err(e)) => not_found(format!("{e:#}")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn cover_file(State(app): State<Arc<App>>, UrlPath(path): UrlPath<String>) -> Response {
    if tree_relative(&path).is_none() {
        return not_found(format!("{path:?} is not a path of the tree"));
    }
    let a = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || pages::cover_file(&a, &path)).await {
        Ok(Ok(m)) => html(m),
        Ok(Err(e)) => not_found(format!("{e:#}")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A file under the work dir (crash reports, logs, reproducers, corpus programs), as text.
async fn file(State(app): State<Arc<App>>, UrlPath(path): UrlPath<String>) -> Response {
    let Some(full) = inside(&app.workdir, &path) else {
        return (
            StatusCode::FORBIDDEN,
            format!("{path:?} is not a file under the work dir\n"),
        )
            .into_response();
    };
    let read = move || -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(full)?
            .take(MAX_FILE)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        _ => not_found(format!("no file {path:?} under the work dir")),
    }
}

/// A relative path made of plain names only (no `..`, no root, no `.`).
fn tree_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    (!path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_))))
        .then(|| p.to_path_buf())
}

/// `path` under `root` (canonical), when it is a regular file there once symlinks are resolved.
fn inside(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = tree_relative(path)?;
    let full = root.join(rel).canonicalize().ok()?;
    (full.starts_with(root) && full.is_file()).then_some(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_under_the_root_are_served() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("work");
        std::fs::create_dir_all(root.join("crashes/abc")).unwrap();
        std::fs::write(root.join("crashes/abc/report0"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("link")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(inside(&root, "crashes/abc/report0").is_some());
        assert!(inside(&root, "../secret").is_none());
        assert!(inside(&root, "crashes/../../secret").is_none());
        assert!(inside(&root, "/etc/passwd").is_none());
        assert!(inside(&root, "link").is_none(), "a symlink out of the root");
        assert!(inside(&root, "crashes/abc").is_none(), "a folder");
        assert!(inside(&root, "").is_none());
        assert!(inside(&root, "./crashes/abc/report0").is_none());
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(parse_addr("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(parse_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert_eq!(parse_addr("[::1]:9").unwrap().to_string(), "[::1]:9");
        let e = parse_addr("localhost:x").unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:8080"), "{e}");
    }
}
