//! A VM's console: QEMU's serial output (and its own stderr) copied to `console.log`, with the
//! recent tail kept in memory for error messages and crash detection.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;

const TAIL_BYTES: usize = 256 << 10;

pub struct Console {
    tail: Arc<Mutex<VecDeque<u8>>>,
    /// Bytes seen in all (the tail holds the last TAIL_BYTES of them).
    total: Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Console {
    pub fn capture(child: &mut Child, log_path: &Path) -> anyhow::Result<Console> {
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(log));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
        let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
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
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if let Ok(mut f) = log.lock() {
                        let _ = f.write_all(&buf[..n]);
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend(&buf[..n]);
                        let excess = t.len().saturating_sub(TAIL_BYTES);
                        t.drain(..excess);
                        total.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }));
        }
        Ok(Console {
            tail,
            total,
            threads,
        })
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
        self.total.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Output after `offset` (as much of it as the tail still holds), and the new offset.
    pub fn since(&self, offset: u64) -> (String, u64) {
        let Ok(t) = self.tail.lock() else {
            return (String::new(), offset);
        };
        let total = self.total.load(std::sync::atomic::Ordering::SeqCst);
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
        let total = self.total.load(std::sync::atomic::Ordering::SeqCst);
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
