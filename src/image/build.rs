//! `kfuzz image build`: a Debian root file system made without root where the host allows it
//! (mmdebstrap in a user namespace; debootstrap when running as root), packed into an ext4 image
//! with `mkfs.ext4 -d` and cached under the name of its recipe. Never mounts anything, never asks
//! for sudo, and never leaves a half-made image in the cache: the work happens in a hidden folder
//! beside the cache and the image is renamed into place at the very end.
//!
//! Beside `NAME.raw` (an ext4 file system, no partition table) lies `NAME.build.json`, the
//! [`BuildRecord`] saying what went into it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::shell::Shell;

/// Changes whenever what kfuzz does to a root file system changes (the setup script, the mkfs
/// options, the bootstrap options): every cached build then gets a new name.
pub const RECIPE_VERSION: u32 = 1;

pub const DEFAULT_SUITE: &str = "bookworm";

/// What a guest is given unless `--packages` says otherwise: the network tools (`ip`, `ping`),
/// `modprobe` for modules, and `ps`/`top` to look around. No ssh: kfuzz brings its own executor.
pub const DEFAULT_PACKAGES: &[&str] = &["iproute2", "iputils-ping", "kmod", "procps"];

/// 2 GiB: room for a few hundred MiB of packages on top of minbase. The file is sparse.
pub const DEFAULT_SIZE: u64 = 2 << 30;

/// The smallest image kfuzz agrees to make; minbase alone takes about 150 MiB.
pub const MIN_SIZE: u64 = 256 << 20;

/// Used when the host names no Debian mirror of its own.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Run on the finished root file system, its path as `$1`, inside the bootstrap's namespace.
/// Part of the recipe: a change here is a change of [`RECIPE_VERSION`].
const SETUP_SCRIPT: &str = r#"set -e
echo kfuzz > "$1/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkfuzz\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1/etc/hosts"
printf '# kfuzz mounts the root file system itself.\n' > "$1/etc/fstab"
# No password for root: the console is the only way in (no ssh), for looking at a crash by hand.
sed -i 's/^root:[^:]*:/root::/' "$1/etc/shadow"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log
"#;

/// What goes into an image. Two recipes with the same [`Recipe::key`] make the same image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    /// `bookworm`, `trixie`, `stable`, …
    pub suite: String,
    /// Sorted, without duplicates.
    pub packages: Vec<String>,
    /// The archive root (`http://deb.debian.org/debian`).
    pub mirror: String,
    /// The size of the ext4 file system, in bytes.
    pub size: u64,
}

impl Recipe {
    /// Checks the names a user typed; the package list is sorted and deduplicated.
    pub fn new(
        suite: &str,
        packages: &[String],
        mirror: &str,
        size: u64,
    ) -> anyhow::Result<Recipe> {
        let suite = suite.trim();
        anyhow::ensure!(
            !suite.is_empty()
                && suite
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)),
            "'{suite}' is not a Debian suite name (like bookworm, trixie or stable)"
        );
        let mut pkgs: Vec<String> = Vec::new();
        for p in packages.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            anyhow::ensure!(
                is_package_name(p),
                "'{p}' is not a Debian package name (lower-case letters, digits, '+', '-' and '.', \
                 at least two characters, starting with a letter or digit)"
            );
            pkgs.push(p.to_string());
        }
        pkgs.sort();
        pkgs.dedup();
        let mirror = mirror.trim().trim_end_matches('/');
        anyhow::ensure!(
            ["http://", "https://", "file:/"]
                .iter()
                .any(|s| mirror.starts_with(s))
                && !mirror.contains(char::is_whitespace),
            "'{mirror}' is not a mirror URL (http://…, https://… or file:/…)"
        );
        anyhow::ensure!(
            size >= MIN_SIZE,
            "an image of {} cannot hold a Debian system: give --size {} or more",
            human_size(size),
            human_size(MIN_SIZE)
        );
        Ok(Recipe {
            suite: suite.to_string(),
            packages: pkgs,
            mirror: mirror.to_string(),
            size,
        })
    }

    /// The hash of everything that decides the image's content, kfuzz's recipe included.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "kfuzz image recipe {RECIPE_VERSION}\narch {}\nsuite {}\nmirror {}\npackages {}\nsize {}\n",
            std::env::consts::ARCH,
            self.suite,
            self.mirror,
            self.packages.join(","),
            self.size
        ));
        h.update(SETUP_SCRIPT);
        hex::encode(h.finalize())
    }

    /// `bookworm (iproute2, kmod) from http://deb.debian.org/debian`
    pub fn describe(&self) -> String {
        let packages = if self.packages.is_empty() {
            "minbase".to_string()
        } else {
            self.packages.join(", ")
        };
        format!("{} ({packages}) from {}", self.suite, self.mirror)
    }

    /// The name of the image in the cache: `debian-bookworm-0123456789ab`.
    pub fn name(&self) -> String {
        format!("debian-{}-{}", self.suite, &self.key()[..12])
    }
}

fn is_package_name(p: &str) -> bool {
    p.len() >= 2
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// `2G`, `512M`, `1536MiB`, `3000000000`: binary units, as `truncate` and `qemu-img` take them.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .with_context(|| format!("'{text}' is not a size (like 2G or 512M)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => bail!("'{text}': unknown unit '{other}' (use K, M, G or T)"),
    };
    n.checked_mul(1u64 << shift)
        .with_context(|| format!("'{text}' is too large"))
}

/// `2.0 GiB`, `176 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.0} {}", UNITS[i])
    }
}

/// The Debian mirror this host's apt uses for `suite`, else [`FALLBACK_MIRROR`]. Reads
/// `/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.list` and `*.sources` (deb822).
pub fn host_mirror(suite: &str) -> String {
    let mut files: Vec<PathBuf> = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut sources = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if f.extension().is_some_and(|e| e == "sources") {
            sources.extend(parse_deb822(&text));
        } else {
            sources.extend(parse_one_line(&text));
        }
    }
    pick_mirror(&sources, suite).unwrap_or_else(|| FALLBACK_MIRROR.to_string())
}

/// One `deb` source of apt: its archive URIs and suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
}

/// `deb [options] URI SUITE COMPONENT…` lines (`deb-src` and comments skipped).
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let rest = rest.trim_start();
        // `[arch=amd64 signed-by=…]`
        let rest = match rest.strip_prefix('[') {
            Some(r) => match r.split_once(']') {
                Some((_, after)) => after,
                None => continue,
            },
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(AptSource {
                uris: vec![uri.to_string()],
                suites: vec![suite.to_string()],
            });
        }
    }
    out
}

/// deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Enabled: no` honoured).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line.
                if let Some(last) = fields.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let words = |k: &str| -> Vec<String> {
            get(k)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        if !words("types").iter().any(|t| t == "deb") {
            continue;
        }
        if get("enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")) {
            continue;
        }
        out.push(AptSource {
            uris: words("uris"),
            suites: words("suites"),
        });
    }
    out
}

/// The first Debian archive (a URI whose path ends in `/debian`, so not `debian-security`) that
/// serves `suite`, else the first Debian archive at all.
pub fn pick_mirror(sources: &[AptSource], suite: &str) -> Option<String> {
    let is_debian = |u: &str| {
        (u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:/"))
            && u.trim_end_matches('/').ends_with("/debian")
    };
    let debian: Vec<(&AptSource, &String)> = sources
        .iter()
        .flat_map(|s| s.uris.iter().filter(|u| is_debian(u)).map(move |u| (s, u)))
        .collect();
    debian
        .iter()
        .find(|(s, _)| s.suites.iter().any(|x| x == suite))
        .or_else(|| debian.first())
        .map(|(_, u)| u.trim_end_matches('/').to_string())
}

/// What a finished build says about itself, as `NAME.build.json` beside the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub name: String,
    pub key: String,
    pub recipe_version: u32,
    pub suite: String,
    pub packages: Vec<String>,
    pub mirror: String,
    /// The file system's size (the file's apparent size), in bytes.
    pub size: u64,
    /// What the sparse file takes on disk, in bytes.
    pub disk_bytes: u64,
    /// `mmdebstrap (unshare)`, `debootstrap`.
    pub bootstrap: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// How long the build took, in seconds.
    pub build_seconds: f64,
}

/// Where the build record of `name` lives in `dir`.
pub fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.build.json"))
}

/// The build record of `name`, when it was built (not fetched) and the record is readable.
pub fn read_record(dir: &Path, name: &str) -> Option<BuildRecord> {
    let text = std::fs::read_to_string(record_path(dir, name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `2026-11-30 10:40 UTC` for seconds since the epoch.
pub fn utc_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

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

/// A finished image in the cache.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub name: String,
    pub path: PathBuf,
    pub record: BuildRecord,
    /// True when the cache already had it.
    pub fresh: bool,
}

/// The cached image for `recipe`, when there is a complete one.
pub fn cached(dir: &Path, recipe: &Recipe) -> Option<BuiltImage> {
    let name = recipe.name();
    let path = super::image_path(dir, &name);
    let record = read_record(dir, &name)?;
    let meta = std::fs::metadata(&path).ok()?;
    (meta.is_file() && record.key == recipe.key() && meta.len() == recipe.size).then_some(
        BuiltImage {
            name,
            path,
            record,
            fresh: true,
        },
    )
}

/// Builds the image for `recipe` into the cache folder `dir`, or returns the cached one.
pub fn build(
    recipe: &Recipe,
    choice: BootstrapChoice,
    dir: &Path,
    shell: &Shell,
) -> anyhow::Result<BuiltImage> {
    if let Some(img) = cached(dir, recipe) {
        return Ok(img);
    }
    let tools = Tools::find(choice)?;
    let name = recipe.name();
    let _lock = super::NameLock::take(dir, &name)?;
    if let Some(img) = cached(dir, recipe) {
        return Ok(img);
    }
    let started = Instant::now();
    shell.status("Building", format!("image {}", recipe.describe()));
    remove_leftovers(dir, &name, &tools);
    let work = WorkDir::new(dir, &name, &tools)?;
    let log_path = dir.join(format!(".{name}.build.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let progress = Progress::new(shell);

    let root = work.path.join("root");
    progress.step(
        shell,
        "Installing",
        format!("{} with {}", recipe.suite, tools.describe()),
    );
    bootstrap(recipe, &tools, &root, &mut log, &log_path, &progress, shell)?;

    progress.step(
        shell,
        "Packing",
        format!("ext4, {}", human_size(recipe.size)),
    );
    let image = work.path.join(format!("{name}.{}", super::IMAGE_EXT));
    make_ext4(
        &tools,
        &root,
        &image,
        recipe.size,
        &mut log,
        &log_path,
        &progress,
        shell,
    )?;
    progress.finish();

    let disk_bytes = std::fs::metadata(&image)
        .map(|m| m.blocks() * 512)
        .with_context(|| format!("cannot read {}", image.display()))?;
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = BuildRecord {
        name: name.clone(),
        key: recipe.key(),
        recipe_version: RECIPE_VERSION,
        suite: recipe.suite.clone(),
        packages: recipe.packages.clone(),
        mirror: recipe.mirror.clone(),
        size: recipe.size,
        disk_bytes,
        bootstrap: tools.describe().to_string(),
        created,
        build_seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&record).context("cannot encode the build record")?;
    // The record first: an image in the cache always has one (a record without an image is
    // not an image, and is written over by the next build).
    crate::fsutil::write_atomic(&record_path(dir, &name), format!("{json}\n").as_bytes())?;
    let path = super::image_path(dir, &name);
    std::fs::rename(&image, &path)
        .with_context(|| format!("cannot move {} to {}", image.display(), path.display()))?;
    crate::fsutil::sync_dir(dir);
    drop(work);
    let _ = std::fs::remove_file(&log_path);
    Ok(BuiltImage {
        name,
        path,
        record,
        fresh: false,
    })
}

/// The spinner (on a terminal) and the step it shows.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(shell: &Shell) -> Progress {
        let bar = shell.is_term().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "    Building {spinner} [{elapsed}] {wide_msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar }
    }

    /// A new step: a status line, and the spinner's message.
    fn step(&self, shell: &Shell, verb: &str, what: String) {
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| shell.status(verb, &what));
                bar.set_message(what);
            }
            None => shell.status(verb, what),
        }
    }

    /// A line from the tool: on the spinner, or with `-v`.
    fn detail(&self, shell: &Shell, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            // The tools' own steps (`I: installing essential packages...`) mark the progress in
            // a log; the rest is for -v.
            None if line.contains(": I: ") => shell.status("", line),
            None => shell.verbose("", line),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The hidden folder a build works in (`.NAME.build-XXXXXX` in the cache), removed when dropped
/// whatever happened: inside a user namespace when its files belong to subordinate ids, and
/// never across a mount point a failed bootstrap left behind.
struct WorkDir {
    path: PathBuf,
    tools: Tools,
}

impl WorkDir {
    fn new(dir: &Path, name: &str, tools: &Tools) -> anyhow::Result<WorkDir> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.build-"))
            .tempdir_in(dir)
            .with_context(|| format!("cannot create a work folder in {}", dir.display()))?;
        Ok(WorkDir {
            path: tmp.keep(),
            tools: tools.clone(),
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        remove_tree(&self.path, &self.tools);
    }
}

/// Work folders of `name` that a killed kfuzz left behind (the caller holds the name's lock).
fn remove_leftovers(dir: &Path, name: &str, tools: &Tools) {
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
        let _ = std::process::Command::new(mmdebstrap)
            .arg("--unshare-helper")
            .args(["rm", "-rf", "--one-file-system"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
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
fn bootstrap(
    recipe: &Recipe,
    tools: &Tools,
    root: &Path,
    log: &mut std::fs::File,
    log_path: &Path,
    progress: &Progress,
    shell: &Shell,
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
            run_tool(path, &args, log, log_path, progress, shell)
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
            run_tool(path, &args, log, log_path, progress, shell)?;
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
                progress,
                shell,
            )
        }
    }
}

/// A sparse file of `size` bytes holding an ext4 file system with the tree `root`, made by
/// `mkfs.ext4 -d` (inside the user namespace when the tree belongs to subordinate ids, so that
/// its files are root's in the image).
#[allow(clippy::too_many_arguments)]
fn make_ext4(
    tools: &Tools,
    root: &Path,
    image: &Path,
    size: u64,
    log: &mut std::fs::File,
    log_path: &Path,
    progress: &Progress,
    shell: &Shell,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(image)
        .with_context(|| format!("cannot create {}", image.display()))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {} to {}", image.display(), human_size(size)))?;
    drop(file);
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
    run_tool(&program, &args, log, log_path, progress, shell).map_err(|e| {
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
    progress: &Progress,
    shell: &Shell,
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
            progress.detail(shell, &format!("{tool}: {line}"));
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
    fn sizes_are_binary_units() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1536MiB").unwrap(), 1536 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("2X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_size(2 << 30), "2.0 GiB");
        assert_eq!(human_size(176 << 20), "176 MiB");
    }

    #[test]
    fn a_recipe_is_named_by_what_goes_in() {
        let pk = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = Recipe::new(
            "bookworm",
            &pk(&["kmod", "iproute2", "kmod"]),
            FALLBACK_MIRROR,
            2 << 30,
        )
        .unwrap();
        let b = Recipe::new(
            "bookworm",
            &pk(&["iproute2", "kmod"]),
            "http://deb.debian.org/debian/",
            2 << 30,
        )
        .unwrap();
        assert_eq!(a.packages, ["iproute2", "kmod"]);
        assert_eq!(a.name(), b.name());
        assert!(a.name().starts_with("debian-bookworm-"));
        crate::image::check_name(&a.name()).unwrap();
        let c = Recipe::new("bookworm", &pk(&["iproute2"]), FALLBACK_MIRROR, 2 << 30).unwrap();
        let d = Recipe::new(
            "trixie",
            &pk(&["iproute2", "kmod"]),
            FALLBACK_MIRROR,
            2 << 30,
        )
        .unwrap();
        let e = Recipe::new(
            "bookworm",
            &pk(&["iproute2", "kmod"]),
            "http://ftp.fr.debian.org/debian",
            2 << 30,
        )
        .unwrap();
        let names = [a.name(), c.name(), d.name(), e.name()];
        for (i, x) in names.iter().enumerate() {
            for y in &names[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert!(Recipe::new("Bookworm!", &[], FALLBACK_MIRROR, 2 << 30).is_err());
        assert!(Recipe::new("bookworm", &pk(&["ip route"]), FALLBACK_MIRROR, 2 << 30).is_err());
        assert!(Recipe::new("bookworm", &pk(&["x;rm"]), FALLBACK_MIRROR, 2 << 30).is_err());
        assert!(Recipe::new("bookworm", &[], "deb.debian.org", 2 << 30).is_err());
        let small = Recipe::new("bookworm", &[], FALLBACK_MIRROR, 1 << 20).unwrap_err();
        assert!(small.to_string().contains("--size"), "{small}");
    }

    #[test]
    fn the_mirror_is_the_hosts_debian_archive() {
        let deb822 = "Types: deb\n\
                      URIs: http://mirror.example/debian\n\
                      Suites: bookworm bookworm-updates\n\
                      Components: main\n\n\
                      Types: deb\n\
                      URIs: http://deb.debian.org/debian-security\n\
                      Suites: bookworm-security\n\n\
                      Types: deb\n\
                      Enabled: no\n\
                      URIs: http://off.example/debian\n\
                      Suites: trixie\n";
        let s = parse_deb822(deb822);
        assert_eq!(s.len(), 2);
        assert_eq!(
            pick_mirror(&s, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        // Another suite from the same archive.
        assert_eq!(
            pick_mirror(&s, "trixie").as_deref(),
            Some("http://mirror.example/debian")
        );

        let list = "# comment\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://a.example/ubuntu noble main\n\
                    deb http://ftp.de.debian.org/debian/ bookworm main\n\
                    deb http://ftp.fr.debian.org/debian trixie main # the next one\n";
        let s = parse_one_line(list);
        assert_eq!(s.len(), 3);
        assert_eq!(
            pick_mirror(&s, "trixie").as_deref(),
            Some("http://ftp.fr.debian.org/debian")
        );
        assert_eq!(
            pick_mirror(&s, "bookworm").as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(
            pick_mirror(&s, "sid").as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        // An Ubuntu host names no Debian archive.
        assert_eq!(pick_mirror(&s[..1], "bookworm"), None);
        assert_eq!(pick_mirror(&[], "bookworm"), None);
    }

    #[test]
    fn subordinate_ids_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:65536\nbob:300000:0\n";
        assert!(has_subordinate_ids(text, Some("alice"), 1000));
        assert!(has_subordinate_ids(text, Some("carol"), 1001));
        assert!(!has_subordinate_ids(text, Some("bob"), 1002));
        assert!(!has_subordinate_ids(text, None, 1003));
        assert!(!has_subordinate_ids("", Some("alice"), 1000));
    }

    #[test]
    fn rm_takes_the_image_and_its_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.raw",
            "a.build.json",
            "a.json",
            ".a.x.part",
            "ab.raw",
            "ab.build.json",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let removed = crate::image::remove(d, "a").unwrap();
        assert_eq!(removed.len(), 4, "{removed:?}");
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        left.sort();
        assert_eq!(left, ["ab.build.json", "ab.raw"]);
        let err = crate::image::remove(d, "a").unwrap_err().to_string();
        assert!(err.contains("no image 'a'") && err.contains("ab"), "{err}");
        assert!(crate::image::remove(d, "../ab").is_err());
        assert!(read_record(d, "ab").is_none(), "not a build record");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(1_796_036_110), "2026-11-30 10:55 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00 UTC");
    }
}
