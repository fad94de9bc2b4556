//! `kfuzz image build`: a Debian root file system made without root where the host allows it
//! (mmdebstrap in a user namespace; debootstrap when running as root), packed into an ext4 image
//! with `mkfs.ext4 -d` and cached under the name of its recipe. Never mounts anything, never asks
//! for sudo, and never leaves a half-made image in the cache: the work happens in a hidden folder
//! beside the cache and the image is renamed into place at the very end.
//!
//! Beside `NAME.raw` (an ext4 file system, no partition table) lies `NAME.build.json`, the
//! [`BuildRecord`] saying what went into it. The tools that do the work are in `bootstrap`, the
//! host's mirror in `apt_sources`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};

pub use super::apt_sources::host_mirror;
pub use super::bootstrap::BootstrapChoice;
use super::bootstrap::{bootstrap, make_ext4, remove_leftovers, Tools, WorkDir};
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
        h.update(super::bootstrap::SETUP_SCRIPT);
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
    let full = crate::shell::utc(secs);
    let minutes = full.rsplit_once(':').map_or(full.as_str(), |(m, _)| m);
    format!("{minutes} UTC")
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
    tools.check_reachable(dir)?;
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
    let on_line = |line: &str| progress.detail(shell, line);
    bootstrap(recipe, &tools, &root, &mut log, &log_path, &on_line)?;

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
        &on_line,
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
    /// When a tool's line was last shown without a terminal.
    last_line: std::cell::Cell<Instant>,
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
        Progress {
            bar,
            last_line: std::cell::Cell::new(Instant::now()),
        }
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

    /// A line from the tool: on the spinner; in a log, one of the tools' own steps
    /// (`I: installing essential packages...`) every 10 s at most, every line with `-v`.
    fn detail(&self, shell: &Shell, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None if shell.verbosity == crate::shell::Verbosity::Verbose => shell.status("", line),
            None if line.contains(": I: ")
                && self.last_line.get().elapsed() >= Duration::from_secs(10) =>
            {
                self.last_line.set(Instant::now());
                shell.status("", line);
            }
            None => {}
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
