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
    threads: Vec<JoinHandle<()>>,
}

impl Console {
    pub fn capture(child: &mut Child, log_path: &Path) -> anyhow::Result<Console> {
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(log));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_BYTES)));
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
                    }
                }
            }));
        }
        Ok(Console { tail, threads })
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

    pub fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
