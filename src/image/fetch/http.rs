//! The HTTP side of a fetch: one client, and a download into a `.part` file that resumes with
//! `Range` where the file stops, asks again when the connection is cut, and starts over when the
//! server does not resume. Writes only the `.part` it is given.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::{StatusCode, Url};

use super::{disk_error, human_bytes};
use crate::shell::Shell;

/// How many times one fetch asks for the rest of a download that the connection cut.
const ATTEMPTS: u32 = 3;

/// The client of every request of a fetch.
pub fn client() -> anyhow::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("kfuzz/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        // In the blocking client this bounds each wait (the answer, then every read of the
        // body), not the whole download: a stalled connection is cut, and resumed.
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot set up the HTTP client")
}

/// Reads the reason out of a response that is not a success: `404 Not Found`.
pub fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// One download, however many connections it took.
#[derive(Debug)]
pub struct Transfer {
    pub size: u64,
    pub received: u64,
    pub resumed_from: u64,
    pub elapsed: Duration,
}

/// One request of a download: where its bytes started in the file, how many came, how it ended.
struct Leg {
    start: u64,
    got: u64,
    end: LegEnd,
}

enum LegEnd {
    /// The file is complete, this long.
    Complete(u64),
    /// The connection failed (not the disk): another request may get the rest.
    Cut(anyhow::Error),
}

/// Downloads `url` into `part`, resuming what `part` holds already, asking again (from where it
/// stopped) when the connection is cut, `ATTEMPTS` requests at most.
pub fn download(
    client: &reqwest::blocking::Client,
    url: &Url,
    part: &Path,
    cache: &Path,
    shell: &Shell,
) -> anyhow::Result<Transfer> {
    let started = Instant::now();
    let mut received = 0u64;
    let mut resumed_from = None;
    let bar = shell.is_term().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "    Fetching [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut attempt = 1;
    let size = loop {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let leg = download_once(client, url, part, have, cache, shell, bar.as_ref())?;
        received += leg.got;
        resumed_from.get_or_insert(leg.start);
        match leg.end {
            LegEnd::Complete(size) => break size,
            LegEnd::Cut(err) => {
                let now = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
                if attempt >= ATTEMPTS {
                    if let Some(bar) = &bar {
                        bar.abandon();
                    }
                    return Err(err.context(format!(
                        "the download of {url} was cut {attempt} times; {} received are kept in \
                         {}: run the command again to resume",
                        human_bytes(now),
                        part.display()
                    )));
                }
                shell.note(
                    "Resuming",
                    format!("{url} at {} (the connection was cut)", human_bytes(now)),
                );
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(Transfer {
        size,
        received,
        resumed_from: resumed_from.unwrap_or(0),
        elapsed: started.elapsed(),
    })
}

/// One request for the rest of `url` after the `have` bytes of `part`. An error is fatal (an
/// answer other than the file, a disk that cannot take it); a connection that fails is a
/// `LegEnd::Cut`.
fn download_once(
    client: &reqwest::blocking::Client,
    url: &Url,
    part: &Path,
    have: u64,
    cache: &Path,
    shell: &Shell,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Leg> {
    let cut = |start, err| Leg {
        start,
        got: 0,
        end: LegEnd::Cut(err),
    };
    let mut request = client.get(url.clone());
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = match request.send() {
        Ok(r) => r,
        // Connected before and failed now: the next attempt may get through.
        Err(e) if have > 0 && !e.is_connect() => return Ok(cut(have, anyhow::Error::new(e))),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot download {url}"))),
    };
    let status = resp.status();
    let start = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let start = content_range_start(&resp).with_context(|| {
                format!("{url}: a 206 answer without a usable Content-Range header")
            })?;
            if start != have {
                // Not the bytes asked for: drop what is kept and ask for the whole file.
                truncate(part, cache)?;
                let err = anyhow::anyhow!("{url}: the server sent bytes from {start}, not {have}");
                return Ok(cut(0, err));
            }
            start
        }
        StatusCode::OK => {
            if have > 0 {
                shell.note(
                    "Restarting",
                    format!(
                        "{url}: the server does not resume downloads, starting over ({} \
                         discarded)",
                        human_bytes(have)
                    ),
                );
            }
            0
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            if content_range_total(&resp) == Some(have) {
                // A run that stopped between the last byte and the check: nothing is missing.
                return Ok(Leg {
                    start: have,
                    got: 0,
                    end: LegEnd::Complete(have),
                });
            }
            // The kept part is longer than the file: not a prefix of it any more.
            truncate(part, cache)?;
            return Ok(cut(0, anyhow::anyhow!("{url}: the kept part was stale")));
        }
        _ => bail!(
            "cannot download {url}: the server answered {}",
            status_text(status)
        ),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)
        .map_err(|e| disk_error(anyhow::Error::new(e).context(open_msg(part)), cache))?;
    file.set_len(start)
        .and_then(|()| std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)))
        .map_err(|e| disk_error(anyhow::Error::new(e).context(open_msg(part)), cache))?;
    let size = resp.content_length().map(|len| start + len);
    if let Some(len) = resp.content_length() {
        ensure_room(cache, len, url)?;
    }
    if let Some(bar) = bar {
        bar.set_length(size.unwrap_or(0));
        bar.set_position(start);
        bar.reset_eta();
    }
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sync(&file, part, cache)?;
                return Ok(Leg {
                    start,
                    got,
                    end: LegEnd::Cut(anyhow::Error::new(e)),
                });
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| disk_error(anyhow::Error::new(e).context(open_msg(part)), cache))?;
        got += n as u64;
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    sync(&file, part, cache)?;
    let total = start + got;
    let end = match size {
        Some(size) if total < size => LegEnd::Cut(anyhow::anyhow!(
            "the connection closed after {} of {}",
            human_bytes(total),
            human_bytes(size)
        )),
        _ => LegEnd::Complete(total),
    };
    Ok(Leg { start, got, end })
}

/// Fails before the first byte when the cache's disk cannot take the `len` bytes to come.
fn ensure_room(cache: &Path, len: u64, url: &Url) -> anyhow::Result<()> {
    match crate::host::free_bytes(cache) {
        Some(free) if free < len => Err(disk_error(
            anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC)).context(format!(
                "{url} needs {} more, and {} are free",
                human_bytes(len),
                human_bytes(free)
            )),
            cache,
        )),
        _ => Ok(()),
    }
}

/// Empties a kept part that cannot be resumed.
fn truncate(part: &Path, cache: &Path) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(part)
        .map(drop)
        .map_err(|e| disk_error(anyhow::Error::new(e).context(open_msg(part)), cache))
}

fn open_msg(part: &Path) -> String {
    format!("cannot write {}", part.display())
}

fn sync(file: &std::fs::File, part: &Path, cache: &Path) -> anyhow::Result<()> {
    file.sync_all().map_err(|e| {
        disk_error(
            anyhow::Error::new(e).context(format!("cannot write {}", part.display())),
            cache,
        )
    })
}

/// `bytes 100-199/200` → 100.
fn content_range_start(resp: &reqwest::blocking::Response) -> Option<u64> {
    let value = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// `bytes */200` (a 416's) → 200.
fn content_range_total(resp: &reqwest::blocking::Response) -> Option<u64> {
    let value = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    value.trim().rsplit_once('/')?.1.trim().parse().ok()
}
