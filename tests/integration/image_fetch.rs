//! `kfuzz image fetch` against an HTTP server this test starts on 127.0.0.1, serving a generated
//! image and its checksum files and honouring `Range`; kfuzz's cache in a temporary folder. The
//! server can corrupt a byte, cut a response after N bytes, ignore `Range`, or have no file.
//!
//! The server is std's TcpListener with `Connection: close` answers: tiny_http, the small crate
//! for this, keeps a connection open after a response it could not finish, so it cannot show a
//! client a connection that drops halfway.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{kfuzz, stderr_of, stdout_of};
use sha2::Digest;

const MIB: usize = 1 << 20;

/// One request the server saw.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    range: Option<String>,
}

#[derive(Default)]
struct Behaviour {
    /// Cut this many of the next image responses…
    cuts: u32,
    /// …after this many body bytes each.
    cut_after: usize,
    /// Answer a `Range` request with the whole file (200), as some servers do.
    ignore_range: bool,
    /// Announce this Content-Length for the image, whatever is sent.
    claim_len: Option<u64>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    hits: Vec<Hit>,
    behaviour: Behaviour,
}

struct Server {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { base, state }
    }

    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), bytes);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap().behaviour);
    }

    /// The GET requests for `path`.
    fn hits(&self, path: &str) -> Vec<Hit> {
        let state = self.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|h| h.path == path && h.method == "GET")
            .cloned()
            .collect()
    }
}

/// Answers one request on `stream`, then closes it.
fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let mut out = stream;
    let (status, headers, body, cut) = {
        let mut st = state.lock().unwrap();
        st.hits.push(Hit {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
        });
        match st.files.get(&path).cloned() {
            None => (
                "404 Not Found",
                String::new(),
                b"not found\n".to_vec(),
                None,
            ),
            Some(data) => {
                let len = data.len();
                let start = range
                    .as_deref()
                    .filter(|_| !st.behaviour.ignore_range)
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|n| n.parse::<usize>().ok());
                let cut = (st.behaviour.cuts > 0 && method == "GET" && !path.ends_with("SUMS"))
                    .then(|| {
                        st.behaviour.cuts -= 1;
                        st.behaviour.cut_after
                    });
                match start {
                    Some(s) if s >= len => (
                        "416 Range Not Satisfiable",
                        format!("Content-Range: bytes */{len}\r\n"),
                        Vec::new(),
                        None,
                    ),
                    Some(s) => (
                        "206 Partial Content",
                        format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
                        data[s..].to_vec(),
                        cut,
                    ),
                    None => ("200 OK", String::new(), data, cut),
                }
            }
        }
    };
    let claimed = state.lock().unwrap().behaviour.claim_len;
    let len = match claimed {
        Some(n) if !path.ends_with("SUMS") && status.starts_with("200") => n,
        _ => body.len() as u64,
    };
    let head =
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{headers}Connection: close\r\n\r\n");
    let send = if method == "HEAD" {
        0
    } else {
        cut.unwrap_or(body.len()).min(body.len())
    };
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&body[..send]);
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Both);
}

/// A few MiB that do not compress, the same every run.
fn image(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha512(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha512::digest(bytes))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A `SHA512SUMS` listing `file` among others, as Debian's does.
fn sha512sums(file: &str, bytes: &[u8]) -> Vec<u8> {
    format!(
        "{}  other-image.qcow2\n{}  {file}\n{}  other-image.json\n",
        sha512(b"other"),
        sha512(bytes),
        sha512(b"json")
    )
    .into_bytes()
}

/// kfuzz with its cache in `cache`, no proxy between it and the test's server.
fn fetch(cache: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = kfuzz();
    cmd.env("KFUZZ_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("KFUZZ_DEBIAN_CLOUD_URL");
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["image", "fetch"]).args(args);
    cmd.output().expect("run kfuzz")
}

/// The files in the images folder, hidden ones (downloads in progress, locks) included.
fn files_in(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("images"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn parts_in(cache: &Path) -> Vec<PathBuf> {
    files_in(cache)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .map(|n| cache.join("images").join(n))
        .collect()
}

/// A server with `/img/disk.raw` (8 MiB) and its `SHA512SUMS`.
fn disk_server() -> (Server, Vec<u8>) {
    let data = image(8 * MIB);
    let server = Server::start();
    server.put("/img/disk.raw", data.clone());
    server.put("/img/SHA512SUMS", sha512sums("disk.raw", &data));
    (server, data)
}

fn assert_cached(cache: &Path, file: &str, data: &[u8]) {
    let path = cache.join("images").join(file);
    let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got.len(), data.len());
    assert_eq!(sha512(&got), sha512(data), "{} differs", path.display());
}

#[test]
fn fetch_by_url_checks_sha512sums_places_the_image_and_prints_the_rate() {
    let (server, data) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_cached(cache.path(), "disk.raw", &data);
    let fetched = err
        .lines()
        .find(|l| l.trim_start().starts_with("Fetched"))
        .unwrap_or_else(|| panic!("no Fetched line: {err}"));
    assert!(fetched.contains("disk.raw (8.00 MiB) in "), "{fetched}");
    assert!(fetched.ends_with("/s"), "{fetched}");
    // The figure the issue asks for: the fetch rate from a local server.
    eprintln!("local fetch: {}", fetched.trim());
    assert!(
        stdout_of(&out).contains("images/disk.raw"),
        "{}",
        stdout_of(&out)
    );
    // The cache holds the image and its origin, nothing half-made.
    assert!(
        parts_in(cache.path()).is_empty(),
        "{:?}",
        files_in(cache.path())
    );
    let origin = std::fs::read_to_string(cache.path().join("images/disk.json")).unwrap();
    assert!(origin.contains(&sha512(&data)), "{origin}");
    assert!(origin.contains("/img/disk.raw"), "{origin}");
    let hits = server.hits("/img/disk.raw");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].range, None);

    // Again: the checksum file says the image has not changed, so nothing is downloaded.
    let again = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert!(stderr_of(&again).contains("Fresh"), "{}", stderr_of(&again));
    assert_eq!(server.hits("/img/disk.raw").len(), 1);
    assert_eq!(server.hits("/img/SHA512SUMS").len(), 2);
}

#[test]
fn json_messages_give_size_rate_and_checksum() {
    let (server, data) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(
        cache.path(),
        &[
            "--message-format",
            "json",
            "--name",
            "mine",
            &server.url("/img/disk.raw"),
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msg: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    assert_eq!(msg["reason"], "image-fetched");
    assert_eq!(msg["name"], "mine");
    assert_eq!(msg["size"], data.len() as u64);
    assert_eq!(msg["checksum"]["algorithm"], "sha512");
    assert_eq!(msg["checksum"]["hex"], sha512(&data));
    assert!(msg["bytes_per_second"].as_f64().unwrap() > 0.0);
    assert_cached(cache.path(), "mine.raw", &data);
}

#[test]
fn a_corrupted_byte_is_refused_and_not_kept() {
    let (server, data) = disk_server();
    let mut bad = data.clone();
    bad[3 * MIB + 17] ^= 0x40;
    server.put("/img/disk.raw", bad);
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&server.url("/img/disk.raw")), "{err}");
    assert!(
        err.contains(&format!("expected sha512 {}", sha512(&data))),
        "{err}"
    );
    assert!(err.contains("was deleted"), "{err}");
    let left: Vec<String> = files_in(cache.path())
        .into_iter()
        .filter(|f| !f.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "the bad download was kept: {left:?}");
}

#[test]
fn a_download_cut_halfway_resumes_with_a_range_request() {
    let (server, data) = disk_server();
    server.set(|b| {
        b.cuts = 1;
        b.cut_after = 4 * MIB;
    });
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Resuming"), "{err}");
    let hits = server.hits("/img/disk.raw");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].range, None);
    assert_eq!(hits[1].range.as_deref(), Some("bytes=4194304-"));
    assert_cached(cache.path(), "disk.raw", &data);
    assert!(parts_in(cache.path()).is_empty());
}

#[test]
fn a_download_cut_every_time_is_kept_and_the_next_run_resumes_it() {
    let (server, data) = disk_server();
    server.set(|b| {
        b.cuts = 3;
        b.cut_after = MIB;
    });
    let cache = tempfile::tempdir().unwrap();
    let first = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&first);
    assert!(!first.status.success(), "{err}");
    assert!(err.contains("run the command again to resume"), "{err}");
    assert!(!cache.path().join("images/disk.raw").exists());
    let parts = parts_in(cache.path());
    assert_eq!(parts.len(), 1, "{:?}", files_in(cache.path()));
    assert_eq!(std::fs::metadata(&parts[0]).unwrap().len(), 3 * MIB as u64);

    let second = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&second);
    assert!(second.status.success(), "{err}");
    assert!(err.contains("resumed at 3.00 MiB"), "{err}");
    let hits = server.hits("/img/disk.raw");
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert_eq!(hits[3].range.as_deref(), Some("bytes=3145728-"));
    assert_cached(cache.path(), "disk.raw", &data);
    assert!(parts_in(cache.path()).is_empty());
}

#[test]
fn a_server_that_ignores_range_gets_the_download_started_over() {
    let (server, data) = disk_server();
    server.set(|b| {
        b.cuts = 1;
        b.cut_after = 2 * MIB;
        b.ignore_range = true;
    });
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("does not resume downloads, starting over"),
        "{err}"
    );
    let hits = server.hits("/img/disk.raw");
    assert_eq!(hits[1].range.as_deref(), Some("bytes=2097152-"));
    assert_cached(cache.path(), "disk.raw", &data);
}

#[test]
fn a_missing_image_is_a_404_naming_the_url() {
    let (server, _) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    let url = server.url("/img/gone.raw");
    // The checksum file has no line for it either: the 404 is what the user needs to hear.
    let out = fetch(
        cache.path(),
        &["--checksum-url", &server.url("/img/SHA512SUMS"), &url],
    );
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot download {url}")), "{err}");
    assert!(err.contains("404 Not Found"), "{err}");

    let out = fetch(cache.path(), &["--sha256", &"0".repeat(64), &url]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot download {url}")), "{err}");
    assert!(err.contains("404 Not Found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        parts_in(cache.path()).is_empty(),
        "{:?}",
        files_in(cache.path())
    );
}

#[test]
fn no_checksum_file_next_to_the_image_is_a_clear_error() {
    let server = Server::start();
    server.put("/x/disk.raw", image(MIB));
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/x/disk.raw")]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("no checksum for"), "{err}");
    assert!(err.contains("SHA512SUMS: 404 Not Found"), "{err}");
    assert!(err.contains("SHA256SUMS: 404 Not Found"), "{err}");
    assert!(err.contains("--checksum-url"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(server.hits("/x/disk.raw").is_empty());
}

#[test]
fn sha256sums_is_used_when_there_is_no_sha512sums_and_a_given_digest_wins() {
    let data = image(2 * MIB);
    let server = Server::start();
    server.put("/y/disk.raw", data.clone());
    server.put(
        "/y/SHA256SUMS",
        format!("{} *disk.raw\n", sha256(&data)).into_bytes(),
    );
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/y/disk.raw")]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_cached(cache.path(), "disk.raw", &data);

    let other = tempfile::tempdir().unwrap();
    let out = fetch(
        other.path(),
        &["--sha512", &sha512(b"not it"), &server.url("/y/disk.raw")],
    );
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("checksum mismatch"),
        "{}",
        stderr_of(&out)
    );
    assert!(!other.path().join("images/disk.raw").exists());
}

#[test]
fn debian_12_nocloud_is_the_raw_image_and_sha512sums_of_bookworm_latest() {
    let data = image(3 * MIB);
    let server = Server::start();
    let dir = "/cloud/bookworm/latest";
    server.put(&format!("{dir}/debian-12-nocloud-amd64.raw"), data.clone());
    server.put(
        &format!("{dir}/SHA512SUMS"),
        sha512sums("debian-12-nocloud-amd64.raw", &data),
    );
    let cache = tempfile::tempdir().unwrap();
    let out = kfuzz()
        .env("KFUZZ_CACHE_DIR", cache.path())
        .env("KFUZZ_DEBIAN_CLOUD_URL", server.url("/cloud"))
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .args(["image", "fetch", "debian-12-nocloud"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_cached(cache.path(), "debian-12-nocloud.raw", &data);
    assert_eq!(server.hits(&format!("{dir}/SHA512SUMS")).len(), 1);
}

#[test]
fn a_qcow2_image_needs_qemu_img_and_says_which_package_has_it() {
    // A qcow2 header is enough: the format is told by its magic, after the checksum.
    let mut data = b"QFI\xfb\0\0\0\x03".to_vec();
    data.resize(64 * 1024, 0);
    let server = Server::start();
    server.put("/q/disk.qcow2", data.clone());
    server.put("/q/SHA512SUMS", sha512sums("disk.qcow2", &data));
    let cache = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = kfuzz()
        .env("KFUZZ_CACHE_DIR", cache.path())
        .env("PATH", empty.path())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .args(["image", "fetch", &server.url("/q/disk.qcow2")])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("qemu-img"), "{err}");
    assert!(err.contains("qemu-utils"), "{err}");
    assert!(!cache.path().join("images/disk.raw").exists());
}

#[test]
fn a_qcow2_image_is_converted_to_raw_when_qemu_img_is_there() {
    let Ok(qemu_img) = which::which("qemu-img") else {
        eprintln!("skipped: qemu-img is not installed (Debian: qemu-utils)");
        return;
    };
    let raw = image(4 * MIB);
    let work = tempfile::tempdir().unwrap();
    let raw_path = work.path().join("src.raw");
    let qcow2_path = work.path().join("src.qcow2");
    std::fs::write(&raw_path, &raw).unwrap();
    let status = std::process::Command::new(qemu_img)
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw_path)
        .arg(&qcow2_path)
        .status()
        .unwrap();
    assert!(status.success());
    let qcow2 = std::fs::read(&qcow2_path).unwrap();
    let server = Server::start();
    server.put("/q/disk.qcow2", qcow2.clone());
    server.put("/q/SHA512SUMS", sha512sums("disk.qcow2", &qcow2));
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/q/disk.qcow2")]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("converted from qcow2"), "{err}");
    assert_cached(cache.path(), "disk.raw", &raw);
    assert!(
        parts_in(cache.path()).is_empty(),
        "{:?}",
        files_in(cache.path())
    );
}

#[test]
fn a_complete_part_left_by_a_stopped_run_is_checked_not_downloaded_again() {
    let (server, data) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    // A run stopped after the last byte and before the check: its part holds the whole file.
    let images = cache.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let tag = &sha512(&data)[..12];
    std::fs::write(images.join(format!(".disk.{tag}.part")), &data).unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let hits = server.hits("/img/disk.raw");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].range.as_deref(), Some("bytes=8388608-"));
    assert_cached(cache.path(), "disk.raw", &data);
    assert!(parts_in(cache.path()).is_empty());
}

#[test]
fn an_image_larger_than_the_free_space_is_refused_naming_the_cache() {
    let (server, _) = disk_server();
    // More than any disk the test runs on has: the refusal comes before the first byte.
    server.set(|b| b.claim_len = Some(1 << 60));
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("no space left on the disk of the image cache"),
        "{err}"
    );
    assert!(
        err.contains(&cache.path().join("images").display().to_string()),
        "{err}"
    );
    assert!(err.contains("needs 1.00 EiB more"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!cache.path().join("images/disk.raw").exists());
}

#[test]
fn an_image_in_the_cache_that_was_not_fetched_is_never_replaced() {
    let (server, _) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    let images = cache.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("disk.raw"), b"a built image").unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("was not fetched"), "{err}");
    assert!(err.contains("kfuzz image rm disk"), "{err}");
    assert_eq!(
        std::fs::read(images.join("disk.raw")).unwrap(),
        b"a built image"
    );
    assert!(server.hits("/img/disk.raw").is_empty());
}

#[test]
fn a_new_image_under_the_same_name_replaces_the_fetched_one() {
    let (server, _) = disk_server();
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // The publisher puts out a new image under the same URL.
    let newer = image(3 * MIB);
    server.put("/img/disk.raw", newer.clone());
    server.put("/img/SHA512SUMS", sha512sums("disk.raw", &newer));
    let out = fetch(cache.path(), &[&server.url("/img/disk.raw")]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Replacing"), "{err}");
    assert_cached(cache.path(), "disk.raw", &newer);
}
