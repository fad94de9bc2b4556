//! The dashboard of a real `kfuzz run --http` on the test kernel, looked at with a real browser
//! (Debian's chromium, headless): plots with points, the LKDTM crash in the crash table with
//! links that work, a coverage page marking a line the run reached. Then `kfuzz cover --html
//! --json` on the run's corpus: the same line marked, the JSON figures those of the HTML.

use crate::common;

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kfuzz;

/// A line `shmget` always reaches: `SYSCALL_DEFINE3(shmget, …)`'s body.
const SHMGET_LINE: &str = "return ksys_shmget(key, size, shmflg);";

/// The DOM chromium builds for `url`, scripts run.
fn browse(url: &str) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--dump-dom",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("chromium (Debian: apt-get install chromium)");
    assert!(out.status.success(), "chromium failed on {url}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let code = r.status().as_u16();
    (code, r.text().unwrap_or_default())
}

/// The request line sent as is (a client would normalize `..` away).
fn raw_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `<tr>` of the source table whose text holds `needle`.
fn source_row<'a>(dom: &'a str, needle: &str) -> &'a str {
    let at = dom
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not on the page"));
    let start = dom[..at].rfind("<tr").unwrap();
    let end = at + dom[at..].find("</tr>").unwrap();
    &dom[start..end]
}

/// The run, killed when the test fails before it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_dashboard_of_a_real_run_shows_plots_crashes_and_coverage_and_cover_agrees() {
    let (tmp, tree) = common::tree_with_descriptions("regress-fuzz");
    let work = tmp.path().join("work");
    // Bad hardening would serve this file through a symlink in the work dir.
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(tmp.path().join("secret"), "not for the browser").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret"), work.join("leak")).unwrap();
    let mut child = Killed(
        Command::new(assert_cmd::cargo::cargo_bin("kfuzz"))
            .args(["run", "--syscalls", "shm*,openat$lkdtm,write$lkdtm_warning"])
            .args(["--vms", "1", "--duration", "400s", "--http"])
            .args(["--message-format", "json", "--workdir"])
            .arg(&work)
            .current_dir(&tree)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let url = loop {
        let v = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("a dashboard event");
        if v["reason"] == "dashboard" {
            break v["url"].as_str().unwrap().to_string();
        }
    };
    let addr = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix('/'))
        .unwrap()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "loopback by default: {url}");

    // Wait for the LKDTM crash and a few samples.
    let started = Instant::now();
    loop {
        let (code, body) = get(&format!("{url}stats.json"));
        assert_eq!(code, 200);
        let s: serde_json::Value = serde_json::from_str(&body).unwrap();
        if s["crashes"].as_u64() > Some(0)
            && s["samples"].as_array().unwrap().len() >= 4
            && s["corpus"].as_u64() > Some(3)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no crash or corpus after 300s: {s}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // The overview, as a browser renders it.
    let dom = browse(&url);
    let plot = &dom[dom.find("id=\"plot-execs\"").expect("the execs/s plot")..];
    let plot = &plot[..plot.find("</figure>").unwrap()];
    // The axes are lines too: the data is the longest.
    let points = plot
        .split("<polyline")
        .skip(1)
        .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
        .max_by_key(|p| p.split_whitespace().count())
        .expect("a line in the plot");
    assert!(points.split_whitespace().count() >= 4, "{points}");
    for id in ["plot-signal", "plot-cover", "plot-corpus", "plot-crashes"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let crashes = &dom[dom.find("id=\"crashes\"").expect("the crash table")..];
    let crashes = &crashes[..crashes.find("</table>").unwrap()];
    assert!(crashes.contains("WARNING in lkdtm_WARNING"), "{crashes}");
    let links: Vec<&str> = crashes
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(
        links.iter().any(|l| l.ends_with("/report0")) && links.iter().any(|l| l.ends_with("/log0")),
        "{links:?}"
    );
    for l in &links {
        let (code, body) = get(&format!("{url}{}", l.trim_start_matches('/')));
        assert_eq!(code, 200, "{l}");
        if l.ends_with("/report0") {
            assert!(body.contains("WARNING"), "{body}");
        }
    }
    assert!(
        dom.contains("id=\"vms\"") && dom.contains("vm0"),
        "the VM table"
    );

    // The calls page counts the LKDTM call's executions.
    let calls = browse(&format!("{url}calls"));
    let row = source_row(&calls, "write$lkdtm_warning");
    let execs: u64 = row
        .split("<td class=\"num\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(execs > 0, "{row}");

    // Coverage by source: shmget's body was reached.
    let cover = browse(&format!("{url}cover/file/ipc/shm.c"));
    let row = source_row(&cover, SHMGET_LINE);
    assert!(row.contains("class=\"reached\""), "{row}");
    let index = browse(&format!("{url}cover?path=ipc"));
    assert!(index.contains("/cover/file/ipc/shm.c"), "{index}");

    // Nothing outside the work dir is served.
    for path in [
        "/files/../../../etc/passwd",
        "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/files//etc/passwd",
        "/files/leak",
    ] {
        let resp = raw_get(&addr, path);
        let status = resp.lines().next().unwrap_or_default().to_string();
        assert!(
            !status.contains(" 200 ") && !resp.contains("root:") && !resp.contains("not for the"),
            "{path}: {resp}"
        );
    }
    // A page elsewhere reaching it through a name that resolves to 127.0.0.1 (DNS rebinding)
    // is not answered.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /stats.json HTTP/1.1
Host: attacker.example
Connection: close

"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 421"), "{resp}");

    // Ctrl-C ends the run, and the server with it.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    reader.join().unwrap();
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());

    // `kfuzz cover` on the run's corpus: the same line, and the JSON is the HTML's figures.
    let html = tmp.path().join("cover");
    let out = kfuzz()
        .args(["cover", "ipc/shm.c", "--json", "--html"])
        .arg(&html)
        .arg("--corpus")
        .arg(work.join("corpus"))
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &r["files"][0];
    assert_eq!(file["path"], "ipc/shm.c", "{r:#}");
    let page = std::fs::read_to_string(html.join("files/ipc/shm.c.html")).unwrap();
    let row = source_row(&page, SHMGET_LINE);
    assert!(row.contains("class=\"reached\""), "{row}");
    let reached = page.matches("class=\"reached\"").count() as u64;
    let unreached = page.matches("class=\"unreached\"").count() as u64;
    assert!(reached > 0 && unreached > 0, "{reached} {unreached}");
    assert_eq!(file["reached"].as_u64(), Some(reached));
    assert_eq!(file["lines"].as_u64(), Some(reached + unreached));
    let functions = file["functions"].as_array().unwrap();
    let sum = |k: &str| {
        functions
            .iter()
            .map(|f| f[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("lines"), reached + unreached);
    assert_eq!(sum("reached"), reached);
    let shmget = functions
        .iter()
        .find(|f| f["name"] == "__do_sys_shmget" || f["name"] == "__se_sys_shmget")
        .or_else(|| {
            functions
                .iter()
                .find(|f| f["name"].as_str().unwrap().contains("shmget"))
        });
    assert!(
        shmget.is_some_and(|f| f["reached"].as_u64() > Some(0)),
        "{functions:?}"
    );
    let index = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(index.contains("href=\"files/ipc/shm.c.html\""), "{index}");
    assert!(Path::new(&html.join("index.html")).is_file());
}
