//! A VM's console: QEMU's serial output (and its own stderr) copied to `console.log`, with the
//! recent tail kept in memory for error messages and crash detection. A guest that floods its
//! console is noticed here (`flooded`), and the log on disk stops growing at `LOG_CAP`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

const TAIL_BYTES: usize = 256 << 10;

/// More output than this within `FLOOD_WINDOW` (scaled) is a flood: a printk storm the guest may
/// never come out of. A boot prints ~100 KiB, a KASAN or lockdep report tens of KiB, a program
/// marker line ~50 bytes; a task dump in a loop passes it in seconds under KVM, in ~40 s
/// under TCG (whose serial console carries ~60 KiB/s).
pub const FLOOD_BYTES: u64 = 2 << 20;
/// Base (KVM) window for `FLOOD_BYTES`; scaled under TCG.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// `console.log` stops growing here (one line says so); the in-memory tail goes on.
const LOG_CAP: u64 = 64 << 20;

pub struct Console {
    tail: Arc<Mutex<VecDeque<u8>>>,
    /// Bytes seen in all (the tail holds the last TAIL_BYTES of them).
    total: Arc<std::sync::atomic::AtomicU64>,
    flooded: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Output per second over the last `window`: at most one bucket per second in it.
struct Rate {
    window: Duration,
    start: Instant,
    buckets: VecDeque<(u64, u64)>,
    sum: u64,
}

impl Rate {
    fn new(window: Duration) -> Rate {
        Rate {
            window,
            start: Instant::now(),
            buckets: VecDeque::new(),
            sum: 0,
        }
    }

    /// Counts `n` bytes now; returns the bytes seen within the window.
    fn add(&mut self, n: u64) -> u64 {
        let sec = self.start.elapsed().as_secs();
        let oldest = sec.saturating_sub(self.window.as_secs().max(1) - 1);
        while self.buckets.front().is_some_and(|(s, _)| *s < oldest) {
            if let Some((_, b)) = self.buckets.pop_front() {
                self.sum -= b;
            }
        }
        match self.buckets.back_mut() {
            Some((s, b)) if *s == sec => *b += n,
            _ => self.buckets.push_back((sec, n)),
        }
        self.sum += n;
        self.sum
    }
}

impl Console {
    /// Copies `child`'s stdout and stderr to `log_path` and the tail. `flood_window`: the
    /// (scaled) window for `FLOOD_BYTES`.
    pub fn capture(
        child: &mut Child,
        log_path: &Path,
        flood_window: Duration,
    ) -> anyhow::Result<Console> {
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log = Arc::new(Mutex::new((log, 0u64)));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
        let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let flooded = Arc::new(AtomicBool::new(false));
        let rate = Arc::new(Mutex::new(Rate::new(flood_window)));
        let mut threads = Vec::new();
        let sources: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for mut src in sources {
            let log = Arc::clone(&log);
            let tail = Arc::clone(&tail);
            let total = Arc::clone(&total);
            let flooded = Arc::clone(&flooded);
            let rate = Arc::clone(&rate);
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if let Ok(mut r) = rate.lock() {
                        if r.add(n as u64) > FLOOD_BYTES {
                            flooded.store(true, Ordering::SeqCst);
                        }
                    }
                    if let Ok(mut l) = log.lock() {
                        let (f, written) = &mut *l;
                        if *written < LOG_CAP {
                            let take = n.min((LOG_CAP - *written) as usize);
                            let _ = f.write_all(&buf[..take]);
                            *written += take as u64;
                            if *written >= LOG_CAP {
                                let _ = writeln!(
                                    f,
                                    "\n[kfuzz: console.log stops here at {} MiB]",
                                    LOG_CAP >> 20
                                );
                            }
                        }
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend(&buf[..n]);
                        let excess = t.len().saturating_sub(TAIL_BYTES);
                        t.drain(..excess);
                        total.fetch_add(n as u64, Ordering::SeqCst);
                    }
                }
            }));
        }
        Ok(Console {
            tail,
            total,
            flooded,
            threads,
        })
    }

    /// True once more than `FLOOD_BYTES` came within the flood window.
    pub fn flooded(&self) -> bool {
        self.flooded.load(Ordering::SeqCst)
    }

    /// The flag behind `flooded`, for waits that run apart from the `Vm` (see `Proc`).
    pub fn flood_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flooded)
    }

    /// The last `n` lines of output.
    pub fn tail_lines(&self, n: usize) -> Vec<String> {
        let bytes: Vec<u8> = self
            .tail
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .filter(|l| !l.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    /// Bytes of output so far: an offset for `since`.
    pub fn offset(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// Output after `offset` (as much of it as the tail still holds), and the new offset.
    pub fn since(&self, offset: u64) -> (String, u64) {
        let Ok(t) = self.tail.lock() else {
            return (String::new(), offset);
        };
        let total = self.total.load(Ordering::SeqCst);
        let want = total.saturating_sub(offset).min(t.len() as u64) as usize;
        let bytes: Vec<u8> = t.iter().skip(t.len() - want).copied().collect();
        (String::from_utf8_lossy(&bytes).into_owned(), total)
    }

    /// Like `since`, plus the offset just after the last complete line: where the next look
    /// starts when this text held nothing of interest (a line being written is read again).
    pub fn since_lines(&self, offset: u64) -> (String, u64) {
        let Ok(t) = self.tail.lock() else {
            return (String::new(), offset);
        };
        let total = self.total.load(Ordering::SeqCst);
        let want = total.saturating_sub(offset).min(t.len() as u64) as usize;
        let bytes: Vec<u8> = t.iter().skip(t.len() - want).copied().collect();
        let partial = bytes.len() - bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        (
            String::from_utf8_lossy(&bytes).into_owned(),
            total - partial as u64,
        )
    }

    /// The whole tail (up to the last 256 KiB).
    pub fn tail_text(&self) -> String {
        self.since(0).0
    }

    pub fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_sums_the_window_and_forgets_what_left_it() {
        let mut r = Rate::new(Duration::from_secs(3));
        assert_eq!(r.add(10), 10);
        assert_eq!(r.add(5), 15);
        assert_eq!(r.buckets.len(), 1, "one bucket per second");
        // Seconds later the old bytes are out of the window.
        r.start -= Duration::from_secs(5);
        assert_eq!(r.add(7), 7);
        assert_eq!(r.buckets.len(), 1);
    }

    #[test]
    fn a_flood_is_flagged_and_the_log_stops_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        // 80 MiB of output in well under the window: a flood, and more than LOG_CAP.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "head -c 83886080 /dev/zero | tr '\\0' x"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut c = Console::capture(&mut child, &log, Duration::from_secs(60)).unwrap();
        child.wait().unwrap();
        c.join();
        assert!(c.flooded());
        assert_eq!(c.offset(), 80 << 20);
        let size = std::fs::metadata(&log).unwrap().len();
        assert!((LOG_CAP..LOG_CAP + 64).contains(&size), "{size}");
        let quiet = dir.path().join("quiet.log");
        let mut child = std::process::Command::new("echo")
            .arg("hello")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut c = Console::capture(&mut child, &quiet, Duration::from_secs(60)).unwrap();
        child.wait().unwrap();
        c.join();
        assert!(!c.flooded());
        assert_eq!(std::fs::read_to_string(&quiet).unwrap(), "hello\n");
    }
}
