//! Snapshots of a ready VM. After a clean boot, the executor's handshake and nothing else, QEMU's
//! whole state is written to a file (a migration to a file); later VMs of the same spec start
//! from it (`-incoming`) in about a second instead of booting, and a crashed VM is replaced the
//! same way. A snapshot is named by a hash of everything that shapes the guest (kernel,
//! initramfs, QEMU and its command line), so a VM is never restored from another kernel's state;
//! a snapshot that fails to restore is removed and the VM boots, with a notice.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kfuzz_wire::Handshake;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::qemu::{self, VmSpec};

/// Snapshot files kept per directory; older ones are removed when a new one is written.
const KEEP: usize = 3;

/// What a restored VM needs to know that a boot would have told it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub handshake: Handshake,
    /// The channel socket the executor answered on (see `qemu::channel_sockets`).
    pub active: usize,
    /// Seconds the boot that made the snapshot took.
    pub boot_secs: f64,
    /// Unix seconds when it was made.
    pub created: u64,
    /// Seconds the VM was paused to write it.
    #[serde(default)]
    pub save_secs: f64,
    /// Its size in bytes.
    #[serde(default)]
    pub bytes: u64,
}

/// A snapshot file and its meta data.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: PathBuf,
    pub meta: Meta,
    pub key: String,
}

/// Snapshots are taken of initramfs guests only: a disk image's copy-on-write layer is not in
/// QEMU's migration stream, so a restored guest would see a disk out of step with its memory.
pub fn enabled(spec: &VmSpec) -> bool {
    spec.snapshot_dir.is_some() && spec.image.is_none()
}

/// The name of `spec`'s snapshot: a hash of the kernel and initramfs bytes, QEMU's version and
/// the command line (with the per-VM directory left out, so every VM of a spec shares it).
pub fn key(spec: &VmSpec) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(b"kfuzz-snapshot-1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(qemu_version().as_bytes());
    for f in [&spec.kernel, &spec.initrd] {
        let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let dir = Path::new("/VM");
    for a in qemu::command(spec, dir).get_args() {
        h.update(a.as_encoded_bytes());
        h.update(b"\0");
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

fn qemu_version() -> String {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        std::process::Command::new(qemu::QEMU)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
    .clone()
}

fn paths(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{key}.vmstate")),
        dir.join(format!("{key}.json")),
    )
}

/// The snapshot for `spec`, if one was saved.
pub fn find(spec: &VmSpec) -> anyhow::Result<Option<Snapshot>> {
    let Some(dir) = spec.snapshot_dir.as_deref().filter(|_| enabled(spec)) else {
        return Ok(None);
    };
    let key = key(spec)?;
    let (state, meta_path) = paths(dir, &key);
    if !state.is_file() {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", meta_path.display())),
    };
    let meta: Meta = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a kfuzz snapshot description", meta_path.display()))?;
    Ok(Some(Snapshot { state, meta, key }))
}

/// Removes a snapshot that failed to restore (a newer one may have replaced it meanwhile: only
/// files that are still the ones tried go).
pub fn discard(snap: &Snapshot) {
    let _ = std::fs::remove_file(&snap.state);
    let _ = std::fs::remove_file(snap.state.with_extension("json"));
}

/// An exclusive claim on writing `key`'s snapshot, so that VMs booting together write it once.
pub struct SaveLock {
    _file: std::fs::File,
}

pub fn try_lock_save(dir: &Path, key: &str) -> Option<SaveLock> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).ok()?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{key}.lock")))
        .ok()?;
    // SAFETY: flock on an fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (r == 0).then_some(SaveLock { _file: f })
}

/// Writes the snapshot of the running VM behind `qmp` (paused meanwhile, resumed after), then
/// its meta data; both appear whole or not at all.
pub fn save(
    qmp: &mut Qmp,
    dir: &Path,
    key: &str,
    meta: &mut Meta,
    timeout: Duration,
    _lock: &SaveLock,
) -> anyhow::Result<PathBuf> {
    let (state, meta_path) = paths(dir, key);
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let quoted = shell_quote(&tmp)?;
    let paused = Instant::now();
    qmp.execute("stop", None)?;
    let result = (|| -> anyhow::Result<()> {
        qmp.execute(
            "migrate-set-parameters",
            Some(serde_json::json!({"max-bandwidth": 64u64 << 30})),
        )?;
        qmp.execute(
            "migrate",
            Some(serde_json::json!({"uri": format!("exec:cat > {quoted}")})),
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            let r = qmp.execute("query-migrate", None)?;
            match r.get("status").and_then(|s| s.as_str()) {
                Some("completed") => break,
                Some("failed") | Some("cancelled") => bail!(
                    "QEMU's migration to {} failed: {}",
                    tmp.display(),
                    r.get("error-desc").and_then(|d| d.as_str()).unwrap_or("?")
                ),
                _ if Instant::now() > deadline => {
                    let _ = qmp.execute("migrate_cancel", None);
                    bail!("saving the snapshot took more than {}s", timeout.as_secs())
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let f =
            std::fs::File::open(&tmp).with_context(|| format!("cannot open {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        meta.bytes = f.metadata().map_or(0, |m| m.len());
        meta.save_secs = paused.elapsed().as_secs_f64();
        std::fs::rename(&tmp, &state)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), state.display()))?;
        let json = serde_json::to_vec_pretty(meta).context("encoding the snapshot meta data")?;
        crate::fsutil::write_atomic(&meta_path, &json)?;
        Ok(())
    })();
    // The VM goes on whatever happened to the file.
    let resumed = qmp.execute("cont", None);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    resumed.context("resuming the VM after its snapshot")?;
    prune(dir, key);
    Ok(state)
}

/// Keeps the `KEEP` newest snapshots of `dir` (and always `key`'s), and removes what saves
/// that were killed midway left (`.KEY.PID.tmp` of a process that is gone).
fn prune(dir: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let entries: Vec<std::fs::DirEntry> = entries.flatten().collect();
    for e in &entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_suffix(".tmp")
            .and_then(|n| n.rsplit('.').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if name.starts_with('.') && gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let mut states: Vec<(std::time::SystemTime, PathBuf)> = entries
        .iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "vmstate"))
        .filter(|p| p.file_stem().is_some_and(|s| s != key))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    states.sort();
    states.reverse();
    for (_, p) in states.into_iter().skip(KEEP.saturating_sub(1)) {
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(p.with_extension("json"));
        let _ = std::fs::remove_file(p.with_extension("lock"));
    }
}

/// `path` in single quotes for `/bin/sh`, as QEMU's `exec:` migration runs it.
pub fn shell_quote(path: &Path) -> anyhow::Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("{}: not UTF-8", path.display()))?;
    Ok(format!("'{}'", s.replace('\'', r"'\''")))
}

/// A QEMU Machine Protocol connection (JSON lines over the VM's `qmp.sock`).
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects (retrying until `deadline`: QEMU creates the socket as it starts) and leaves
    /// capabilities negotiation mode.
    pub fn connect(path: &Path, deadline: Instant) -> anyhow::Result<Qmp> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => bail!("cannot connect to {}: {e}", path.display()),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .context("setting a QMP timeout")?;
        let writer = stream.try_clone().context("cloning the QMP socket")?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            bail!("QEMU's monitor did not greet: {greeting}");
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn read(&mut self) -> anyhow::Result<serde_json::Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("reading from QEMU's monitor")?;
        if n == 0 {
            bail!("QEMU's monitor closed");
        }
        serde_json::from_str(&line).with_context(|| format!("QEMU's monitor said {line:?}"))
    }

    /// Runs a command; its `return` value, or its error as an error. Events are skipped.
    pub fn execute(
        &mut self,
        cmd: &str,
        args: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = serde_json::json!({ "execute": cmd });
        if let Some(a) = args {
            req["arguments"] = a;
        }
        let mut text = req.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .with_context(|| format!("sending `{cmd}` to QEMU's monitor"))?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                bail!(
                    "QEMU refused `{cmd}`: {}",
                    e.get("desc").and_then(|d| d.as_str()).unwrap_or("?")
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(
            shell_quote(Path::new("/a b/it's")).unwrap(),
            r"'/a b/it'\''s'"
        );
    }

    #[test]
    fn prune_keeps_the_newest_and_the_current() {
        let d = tempfile::tempdir().unwrap();
        for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let p = d.path().join(format!("{k}.vmstate"));
            std::fs::write(&p, b"x").unwrap();
            std::fs::write(d.path().join(format!("{k}.json")), b"{}").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::write(d.path().join(".a.999999999.tmp"), b"x").unwrap();
        let mine = format!(".a.{}.tmp", std::process::id());
        std::fs::write(d.path().join(&mine), b"x").unwrap();
        prune(d.path(), "a");
        assert!(
            !d.path().join(".a.999999999.tmp").exists(),
            "a dead save's file goes"
        );
        assert!(d.path().join(&mine).exists(), "a live save's file stays");
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".vmstate"))
            .collect();
        left.sort();
        assert_eq!(left, ["a.vmstate", "d.vmstate", "e.vmstate"]);
        assert!(!d.path().join("b.json").exists());
    }
}
