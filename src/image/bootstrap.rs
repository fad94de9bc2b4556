//! The tools that make a Debian root file system and its ext4 image, and the choice between
//! them: mmdebstrap in a user namespace (no root), debootstrap (root), `mkfs.ext4 -d` (never a
//! loop mount). When none can run here, the error names the package or setting that fixes it.
//! Nothing here knows about the cache beyond the work folder it is given.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::build::{human_size, Recipe};

/// Run on the finished root file system, its path as `$1`, inside the bootstrap's namespace.
/// Part of the recipe: a change here is a change of [`RECIPE_VERSION`](super::build::RECIPE_VERSION).
pub(super) const SETUP_SCRIPT: &str = r#"set -e
echo kfuzz > "$1/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkfuzz\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1/etc/hosts"
printf '# kfuzz mounts the root file system itself.\n' > "$1/etc/fstab"
# No password for root: the console is the only way in (no ssh), for looking at a crash by hand.
sed -i 's/^root:[^:]*:/root::/' "$1/etc/shadow"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log
"#;

/// Which tool makes the root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BootstrapChoice {
    /// mmdebstrap when installed, else debootstrap when running as root
    #[default]
    Auto,
    Mmdebstrap,
    Debootstrap,
}

/// The tools a build runs, found before anything is written.
#[derive(Debug, Clone)]
pub struct Tools {
    bootstrap: Bootstrap,
    mkfs: PathBuf,
}

#[derive(Debug, Clone)]
enum Bootstrap {
    /// `mmdebstrap --mode=unshare`; `userns` when kfuzz is not root, so that the tree's files
    /// belong to subordinate ids and are read (by mkfs) and removed inside a user namespace.
    Mmdebstrap { path: PathBuf, userns: bool },
    /// `debootstrap`, as root only.
    Debootstrap { path: PathBuf },
}

impl Tools {
    /// True when the tree belongs to subordinate ids (mmdebstrap without root).
    fn userns(&self) -> bool {
        matches!(self.bootstrap, Bootstrap::Mmdebstrap { userns: true, .. })
    }

    /// Without root, mmdebstrap's root in the namespace is a subordinate id and must be able to
    /// walk down to `dir`: every folder on the way needs the search bit for others.
    pub(super) fn check_reachable(&self, dir: &Path) -> anyhow::Result<()> {
        if !self.userns() {
            return Ok(());
        }
        let dir = crate::fsutil::canonical(dir)?;
        for folder in dir.ancestors() {
            let Ok(meta) = std::fs::metadata(folder) else {
                continue;
            };
            if meta.permissions().mode() & 0o001 == 0 {
                bail!(
                    "mmdebstrap builds without root as a subordinate user, who cannot reach the \
                     image cache {}: {} is closed to others; `chmod o+x {}`, or set \
                     KFUZZ_CACHE_DIR to a folder under one that is open",
                    dir.display(),
                    folder.display(),
                    folder.display()
                );
            }
        }
        Ok(())
    }

    /// `mmdebstrap (unshare)` or `debootstrap`.
    pub fn describe(&self) -> &'static str {
        match self.bootstrap {
            Bootstrap::Mmdebstrap { userns: true, .. } => "mmdebstrap (unshare, without root)",
            Bootstrap::Mmdebstrap { userns: false, .. } => "mmdebstrap (unshare, as root)",
            Bootstrap::Debootstrap { .. } => "debootstrap (as root)",
        }
    }

    /// Finds the tools for `choice`, or says in one sentence what to install or set.
    pub fn find(choice: BootstrapChoice) -> anyhow::Result<Tools> {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let mkfs = find_sbin("mkfs.ext4").context(
            "mkfs.ext4 is not installed; it makes the image (Debian: apt-get install e2fsprogs)",
        )?;
        let mmdebstrap = which::which("mmdebstrap").ok();
        let debootstrap = find_sbin("debootstrap");
        let bootstrap = match (choice, mmdebstrap, debootstrap) {
            (BootstrapChoice::Auto | BootstrapChoice::Mmdebstrap, Some(path), _) => {
                if !root {
                    check_user_namespaces()?;
                }
                Bootstrap::Mmdebstrap {
                    path,
                    userns: !root,
                }
            }
            (BootstrapChoice::Auto | BootstrapChoice::Debootstrap, _, Some(path)) if root => {
                Bootstrap::Debootstrap { path }
            }
            (BootstrapChoice::Debootstrap, _, Some(_)) => bail!(
                "debootstrap needs root: run as root, or build without root with mmdebstrap \
                 (Debian: apt-get install mmdebstrap uidmap)"
            ),
            (BootstrapChoice::Debootstrap, _, None) => {
                bail!("debootstrap is not installed (Debian: apt-get install debootstrap)")
            }
            (_, None, _) if root => bail!(
                "building a Debian image needs mmdebstrap or debootstrap, and neither is \
                 installed (Debian: apt-get install mmdebstrap)"
            ),
            (_, None, _) => bail!(
                "building a Debian image without root needs mmdebstrap, which is not in PATH \
                 (Debian: apt-get install mmdebstrap uidmap); as root, debootstrap would do"
            ),
        };
        Ok(Tools { bootstrap, mkfs })
    }
}

/// `name` in PATH, else in /usr/sbin or /sbin (not in a user's PATH on Debian).
fn find_sbin(name: &str) -> Option<PathBuf> {
    which::which(name).ok().or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// Whether this user can make the user namespace mmdebstrap's unshare mode needs; when not,
/// the error names the setting or package that fixes it.
fn check_user_namespaces() -> anyhow::Result<()> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        bail!(
            "user namespaces are turned off (user.max_user_namespaces = 0), and mmdebstrap needs \
             them to build without root: `sysctl -w user.max_user_namespaces=10000`, or run as root"
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        bail!(
            "unprivileged user namespaces are turned off (kernel.unprivileged_userns_clone = 0), \
             and mmdebstrap needs them to build without root: \
             `sysctl -w kernel.unprivileged_userns_clone=1`, or run as root"
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        bail!(
            "AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns = 1), and mmdebstrap needs them to \
             build without root: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or \
             run as root"
        );
    }
    if which::which("newuidmap").is_err() || which::which("newgidmap").is_err() {
        bail!(
            "newuidmap/newgidmap are not installed, and mmdebstrap needs them to build without \
             root (Debian: apt-get install uidmap)"
        );
    }
    // SAFETY: getuid cannot fail; getpwuid returns null or a pointer valid until the next call.
    let uid = unsafe { libc::getuid() };
    let user = unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    let who = user.clone().unwrap_or_else(|| uid.to_string());
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !has_subordinate_ids(&text, user.as_deref(), uid) {
            bail!(
                "{file} gives the user {who} no subordinate ids, and mmdebstrap needs them to \
                 build without root: `usermod --add-subuids 100000-165535 --add-subgids \
                 100000-165535 {who}` (as root), or run as root"
            );
        }
    }
    Ok(())
}

/// True when `/etc/subuid`-style `text` has a range for the user (by name or number).
pub fn has_subordinate_ids(text: &str, user: Option<&str>, uid: u32) -> bool {
    let uid = uid.to_string();
    text.lines().any(|l| {
        let mut f = l.trim().split(':');
        let owner = f.next().unwrap_or("");
        let count = f.nth(1).and_then(|c| c.trim().parse::<u64>().ok());
        (Some(owner) == user || owner == uid) && count.is_some_and(|c| c > 0)
    })
}

/// The hidden folder a build works in (`.NAME.build-XXXXXX` in the cache), removed when dropped
/// whatever happened: inside a user namespace when its files belong to subordinate ids, and
/// never across a mount point a failed bootstrap left behind.
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
    tools: Tools,
}

impl WorkDir {
    pub(super) fn new(dir: &Path, name: &str, tools: &Tools) -> anyhow::Result<WorkDir> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.build-"))
            .tempdir_in(dir)
            .with_context(|| format!("cannot create a work folder in {}", dir.display()))?;
        let path = tmp.keep();
        let work = WorkDir {
            path,
            tools: tools.clone(),
        };
        if tools.userns() {
            // mmdebstrap's root in the namespace is a subordinate id, one of "others" here: it
            // must reach the tree (search, not list), and nobody may guess the folder's name.
            std::fs::set_permissions(&work.path, std::fs::Permissions::from_mode(0o711))
                .with_context(|| format!("cannot open up {}", work.path.display()))?;
        }
        Ok(work)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        remove_tree(&self.path, &self.tools);
    }
}

/// Work folders of `name` that a killed kfuzz left behind (the caller holds the name's lock).
pub(super) fn remove_leftovers(dir: &Path, name: &str, tools: &Tools) {
    let prefix = format!(".{name}.build-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                remove_tree(&e.path(), tools);
            }
        }
    }
}

/// Removes a work folder. Mounts inside it (a bootstrap killed halfway may leave /proc or a
/// bind-mounted /dev) are unmounted first; when one stays, the folder is left alone rather than
/// deleting through it.
fn remove_tree(path: &Path, tools: &Tools) {
    let mounts = mounts_under(path);
    for m in mounts.iter().rev() {
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(m)
            .stderr(std::process::Stdio::null())
            .status();
    }
    if !mounts_under(path).is_empty() {
        return;
    }
    if let Bootstrap::Mmdebstrap {
        path: mmdebstrap,
        userns: true,
    } = &tools.bootstrap
    {
        // The namespace's root may not list our folder (0711), so it is given what it owns:
        // the tree, emptied there, and removed here.
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        let theirs = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.path()
                    .symlink_metadata()
                    .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) != me)
            });
        for entry in theirs {
            let _ = std::process::Command::new(mmdebstrap)
                .arg("--unshare-helper")
                .args(["rm", "-rf", "--one-file-system"])
                .arg(entry.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

/// Mount points at or below `path`, shallowest first (from /proc/self/mountinfo).
fn mounts_under(path: &Path) -> Vec<PathBuf> {
    let Ok(base) = path.canonicalize() else {
        return Vec::new();
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(&base))
        .collect();
    out.sort_by_key(|m| m.components().count());
    out
}

/// Runs the bootstrap tool into `root`, then kfuzz's setup script on it.
#[allow(clippy::too_many_arguments)]
pub(super) fn bootstrap(
    recipe: &Recipe,
    tools: &Tools,
    root: &Path,
    log: &mut std::fs::File,
    log_path: &Path,
    on_line: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let include = recipe.packages.join(",");
    match &tools.bootstrap {
        Bootstrap::Mmdebstrap { path, .. } => {
            let mut args: Vec<String> = vec![
                "--mode=unshare".into(),
                "--variant=minbase".into(),
                "--format=directory".into(),
                "--components=main".into(),
                "--aptopt=APT::Install-Recommends \"false\"".into(),
                format!("--customize-hook={SETUP_SCRIPT}"),
            ];
            if !include.is_empty() {
                args.push(format!("--include={include}"));
            }
            args.push(recipe.suite.clone());
            args.push(root.display().to_string());
            args.push(recipe.mirror.clone());
            run_tool(path, &args, log, log_path, on_line)
        }
        Bootstrap::Debootstrap { path } => {
            let mut args: Vec<String> =
                vec!["--variant=minbase".into(), "--components=main".into()];
            if !include.is_empty() {
                args.push(format!("--include={include}"));
            }
            args.push(recipe.suite.clone());
            args.push(root.display().to_string());
            args.push(recipe.mirror.clone());
            run_tool(path, &args, log, log_path, on_line)?;
            let sh = PathBuf::from("/bin/sh");
            run_tool(
                &sh,
                &[
                    "-c".into(),
                    SETUP_SCRIPT.into(),
                    "sh".into(),
                    root.display().to_string(),
                ],
                log,
                log_path,
                on_line,
            )
        }
    }
}

/// A sparse file of `size` bytes holding an ext4 file system with the tree `root`, made by
/// `mkfs.ext4 -d` (inside the user namespace when the tree belongs to subordinate ids, so that
/// its files are root's in the image).
#[allow(clippy::too_many_arguments)]
pub(super) fn make_ext4(
    tools: &Tools,
    root: &Path,
    image: &Path,
    size: u64,
    log: &mut std::fs::File,
    log_path: &Path,
    on_line: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let file = std::fs::File::create(image)
        .with_context(|| format!("cannot create {}", image.display()))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {} to {}", image.display(), human_size(size)))?;
    drop(file);
    if tools.userns() {
        // mkfs runs as the namespace's root, a subordinate id: it may write this file (in a
        // folder only it and we can reach, under a name it cannot list) until it is packed.
        std::fs::set_permissions(image, std::fs::Permissions::from_mode(0o666))
            .with_context(|| format!("cannot open up {}", image.display()))?;
    }
    let mut args: Vec<String> = vec![
        "-F".into(),
        "-q".into(),
        "-t".into(),
        "ext4".into(),
        "-L".into(),
        "kfuzz-root".into(),
        "-m".into(),
        "0".into(),
        "-d".into(),
        root.display().to_string(),
        image.display().to_string(),
    ];
    let program = match &tools.bootstrap {
        Bootstrap::Mmdebstrap { path, userns: true } => {
            args.insert(0, tools.mkfs.display().to_string());
            args.insert(0, "--unshare-helper".into());
            path.clone()
        }
        _ => tools.mkfs.clone(),
    };
    let packed = run_tool(&program, &args, log, log_path, on_line);
    // Read-only, as every finished image in the cache: VMs write to overlays of their own.
    std::fs::set_permissions(image, std::fs::Permissions::from_mode(0o444))
        .with_context(|| format!("cannot make {} read-only", image.display()))?;
    packed.map_err(|e| {
        if tail(log_path, 20).contains("Could not allocate block") {
            anyhow::anyhow!(
                "the packages do not fit in {}: give a larger --size",
                human_size(size)
            )
        } else {
            e
        }
    })
}

/// Runs `program args`, its output into the log and, line by line, onto the progress spinner;
/// a failure says which tool failed with the end of its output.
fn run_tool(
    program: &Path,
    args: &[String],
    log: &mut std::fs::File,
    log_path: &Path,
    on_line: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let tool = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let _ = writeln!(log, "$ {} {}", program.display(), args.join(" "));
    let reader = duct::cmd(program, args)
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
        .env("LC_ALL", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .reader()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let mut lines = BufReader::new(&reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = lines
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading the output of {tool}"))?;
        if n == 0 {
            break;
        }
        let _ = log.write_all(&buf);
        let text = String::from_utf8_lossy(&buf);
        // apt redraws its progress with carriage returns; the last state is the line.
        if let Some(line) = text.rsplit('\r').map(str::trim).find(|l| !l.is_empty()) {
            on_line(&format!("{tool}: {line}"));
        }
    }
    let _ = log.flush();
    let status = reader
        .try_wait()
        .with_context(|| format!("waiting for {tool}"))?
        .map(|o| o.status);
    match status {
        Some(s) if s.success() => Ok(()),
        _ => bail!(
            "{tool} failed ({}):\n{}\nfull log: {}",
            status.map_or_else(|| "no status".to_string(), |s| s.to_string()),
            tail(log_path, 12),
            log_path.display()
        ),
    }
}

/// The last `n` lines of a file, indented.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ids_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:65536\nbob:300000:0\n";
        assert!(has_subordinate_ids(text, Some("alice"), 1000));
        assert!(has_subordinate_ids(text, Some("carol"), 1001));
        assert!(!has_subordinate_ids(text, Some("bob"), 1002));
        assert!(!has_subordinate_ids(text, None, 1003));
        assert!(!has_subordinate_ids("", Some("alice"), 1000));
    }
}
