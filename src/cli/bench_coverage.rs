//! `kfuzz bench --coverage-against BIN`: coverage per minute of this build against another kfuzz
//! binary (a build of an earlier commit), both fuzzing the same kernel and calls at the same
//! time, one VM each, so that they share the machine alike. Each runs `kfuzz run` in a tree view
//! of its own (its own `.kfuzz/`, the build linked in); the figures are read from the status
//! lines both print. Never writes into the user's tree beyond `.kfuzz/bench/`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::shell::Shell;

/// One contender: its name, binary, and the latest figures read from it.
struct Contender {
    name: String,
    bin: PathBuf,
    /// (seconds since the start, cover, execs) of each status line.
    samples: Arc<Mutex<Vec<(f64, u64, u64)>>>,
}

/// A directory that looks like `root` (a symlink per entry) with a `.kfuzz/` of its own whose
/// `build` is `root`'s and whose consts cache is a copy.
fn tree_view(root: &Path, view: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(view.join(".kfuzz"))
        .with_context(|| format!("cannot create {}", view.display()))?;
    for e in std::fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))? {
        let e = e?;
        let name = e.file_name();
        if name == ".kfuzz" || name == "kfuzz.toml" {
            continue;
        }
        let link = view.join(&name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(e.path(), &link)
                .with_context(|| format!("cannot link {}", link.display()))?;
        }
    }
    std::fs::copy(root.join("kfuzz.toml"), view.join("kfuzz.toml"))
        .context("copying kfuzz.toml into the bench's tree view")?;
    let build = view.join(".kfuzz/build");
    if build.symlink_metadata().is_err() {
        std::os::unix::fs::symlink(root.join(".kfuzz/build"), &build)
            .with_context(|| format!("cannot link {}", build.display()))?;
    }
    let target = root.join(".kfuzz/target");
    for e in walkdir::WalkDir::new(&target).into_iter().flatten() {
        let Ok(rel) = e.path().strip_prefix(&target) else {
            continue;
        };
        let to = view.join(".kfuzz/target").join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to)
                .with_context(|| format!("cannot create {}", to.display()))?;
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &to)
                .with_context(|| format!("cannot copy {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The number after `key ` in a status line (`... cover 4150 ...`), or before `key` when
/// `key` follows its number (`757 execs,` in the last line).
fn field(line: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', ':']))
        .collect();
    let i = words.iter().position(|w| *w == key)?;
    words
        .get(i + 1)
        .and_then(|n| n.parse().ok())
        .or_else(|| words.get(i.checked_sub(1)?)?.parse().ok())
}

/// Runs both for the longest of `at`; prints cover (distinct PCs) at each point of `at`.
pub fn compare(
    root: &Path,
    bench_dir: &Path,
    against: &Path,
    syscalls: &[String],
    at: &[Duration],
    shell: &Shell,
) -> anyhow::Result<serde_json::Value> {
    let this = std::env::current_exe().context("finding this kfuzz binary")?;
    let against = against
        .canonicalize()
        .with_context(|| format!("cannot find {}", against.display()))?;
    let duration = at.iter().max().copied().unwrap_or(Duration::from_secs(600));
    let contenders = vec![
        Contender {
            name: "against".into(),
            bin: against.clone(),
            samples: Arc::default(),
        },
        Contender {
            name: "this".into(),
            bin: this,
            samples: Arc::default(),
        },
    ];
    shell.status(
        "Coverage",
        format!(
            "this build and {} side by side, one VM each, for {}s",
            against.display(),
            duration.as_secs()
        ),
    );
    let started = Instant::now();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for c in &contenders {
        let dir = bench_dir.join("coverage").join(&c.name);
        let _ = std::fs::remove_dir_all(&dir);
        let view = dir.join("tree");
        tree_view(root, &view)?;
        let mut cmd = Command::new(&c.bin);
        cmd.arg("run")
            .args(syscalls.iter().flat_map(|s| ["--syscalls", s.as_str()]))
            .args(["--vms", "1", "--duration"])
            .arg(format!("{}s", duration.as_secs()))
            .arg("--workdir")
            .arg(dir.join("work"))
            .current_dir(&view)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        crate::vm::reaper::prepare(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", c.bin.display()))?;
        let Some(err) = child.stderr.take() else {
            anyhow::bail!("no stderr from {}", c.bin.display());
        };
        let samples = Arc::clone(&c.samples);
        let log_path = dir.join("run.log");
        readers.push(std::thread::spawn(move || {
            let mut log = std::fs::File::create(&log_path).ok();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                if let (Some(cover), Some(execs)) = (field(&line, "cover"), field(&line, "execs")) {
                    if let Ok(mut s) = samples.lock() {
                        s.push((started.elapsed().as_secs_f64(), cover, execs));
                    }
                }
            }
        }));
        children.push(child);
    }
    // A run that fails (an older build refusing a newer manifest, say) stops the other at
    // once, rather than when the phase would have ended.
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    while statuses.iter().any(Option::is_none) {
        for (i, child) in children.iter_mut().enumerate() {
            if statuses[i].is_none() {
                statuses[i] = child.try_wait().context("waiting for a bench run")?;
            }
        }
        if statuses.iter().flatten().any(|s| !s.success()) {
            for (i, child) in children.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    // Its group: the run and its QEMU (which would die with it anyway).
                    // SAFETY: kill(2) on the process group of our own child.
                    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                    statuses[i] = child.wait().ok();
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut failed = Vec::new();
    for (c, status) in contenders.iter().zip(statuses) {
        let Some(status) = status else { continue };
        if !status.success() {
            failed.push(format!(
                "{} ({}) ended with {status}; its output is in {}",
                c.name,
                c.bin.display(),
                bench_dir
                    .join("coverage")
                    .join(&c.name)
                    .join("run.log")
                    .display()
            ));
        }
    }
    for r in readers {
        let _ = r.join();
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("; "));
    }
    let at_point = |c: &Contender, t: Duration| -> Option<(u64, u64)> {
        let s = c.samples.lock().ok()?;
        s.iter()
            .rfind(|(secs, _, _)| *secs <= t.as_secs_f64() + 15.0)
            .map(|&(_, cover, execs)| (cover, execs))
    };
    let mut rows = Vec::new();
    for &t in at {
        let a = at_point(&contenders[0], t);
        let b = at_point(&contenders[1], t);
        let gain = match (a, b) {
            (Some((a, _)), Some((b, _))) if a > 0 => Some(100.0 * (b as f64 - a as f64) / a as f64),
            _ => None,
        };
        shell.println(format!(
            "    coverage at {:>4}s: this build {:>6} PCs ({} execs), {} {:>6} PCs ({} execs){}",
            t.as_secs(),
            b.map_or("?".into(), |x| x.0.to_string()),
            b.map_or("?".into(), |x| x.1.to_string()),
            against.display(),
            a.map_or("?".into(), |x| x.0.to_string()),
            a.map_or("?".into(), |x| x.1.to_string()),
            gain.map_or(String::new(), |g| format!(": {g:+.1}%"))
        ));
        rows.push(serde_json::json!({
            "secs": t.as_secs(),
            "this": b.map(|x| x.0), "this_execs": b.map(|x| x.1),
            "against": a.map(|x| x.0), "against_execs": a.map(|x| x.1),
            "gain_percent": gain,
        }));
    }
    Ok(serde_json::json!({"against": against, "points": rows}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_fields_are_read() {
        let l = "     Fuzzing 10m 0s  execs 31000 (51.6/s)  corpus 210  signal 9000  cover 4150  crashes 0  hints 120";
        assert_eq!(field(l, "cover"), Some(4150));
        assert_eq!(field(l, "execs"), Some(31000));
        assert_eq!(field(l, "nothing"), None);
        let last =
            "    Finished 80s: 757 execs, corpus 20, signal 1252, cover 1544, 0 crash title(s)";
        assert_eq!(field(last, "cover"), Some(1544));
        assert_eq!(field(last, "execs"), Some(757));
    }
}
