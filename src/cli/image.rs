//! `kfuzz image …`: the guest disk images in kfuzz's cache (`~/.cache/kfuzz/images/`). Thin:
//! parse, call `crate::image`, print.

use crate::image::fetch::{self, Algorithm, Checksum, FetchRequest};
use crate::shell::Shell;

/// Fetch, build and manage the disk images VMs can boot
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Fetch(FetchArgs),
    Build(BuildArgs),
    List(ListArgs),
    Rm(RmArgs),
}

/// Download a prebuilt image into the cache: its publisher's checksum checked, an interrupted
/// download resumed, qcow2 converted to raw
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Names: debian-12-nocloud (Debian 12 bookworm, nocloud, amd64, raw; \
                        alias debian-nocloud), debian-12-genericcloud, debian-12-generic. \
                        KFUZZ_DEBIAN_CLOUD_URL replaces https://cloud.debian.org/images/cloud \
                        (a mirror)."
)]
pub struct FetchArgs {
    /// A known name (debian-12-nocloud) or the http(s) URL of an image
    #[arg(value_name = "NAME|URL")]
    pub source: String,
    /// The name in the cache (default: the known name, or the URL's file name less .raw/.qcow2)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The publisher's checksum file, when it is not SHA512SUMS or SHA256SUMS next to the image
    #[arg(long, value_name = "URL", conflicts_with_all = ["sha256", "sha512"])]
    pub checksum_url: Option<String>,
    /// The image's SHA-256, instead of a checksum file
    #[arg(long, value_name = "HEX", conflicts_with = "sha512")]
    pub sha256: Option<String>,
    /// The image's SHA-512, instead of a checksum file
    #[arg(long, value_name = "HEX")]
    pub sha512: Option<String>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    match args.command {
        Command::Fetch(a) => exec_fetch(a, shell),
        Command::Build(a) => exec_build(a, shell),
        Command::List(a) => exec_list(a, shell),
        Command::Rm(a) => exec_rm(a, shell),
    }
}

fn exec_fetch(a: FetchArgs, shell: &Shell) -> anyhow::Result<i32> {
    let checksum = match (&a.sha256, &a.sha512) {
        (Some(h), _) => Some(Checksum::new(Algorithm::Sha256, h)?),
        (_, Some(h)) => Some(Checksum::new(Algorithm::Sha512, h)?),
        _ => None,
    };
    let req = FetchRequest {
        source: a.source,
        name: a.name,
        checksum,
        checksum_url: a.checksum_url,
    };
    let cache = crate::image::cache_dir();
    let f = fetch::fetch(&req, &cache, shell)?;
    let file = f
        .path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if f.fresh {
        shell.status(
            "Fresh",
            format!("{file} ({}, {})", fetch::human_bytes(f.size), f.url),
        );
    } else {
        let resumed = if f.resumed_from > 0 {
            format!(", resumed at {}", fetch::human_bytes(f.resumed_from))
        } else {
            String::new()
        };
        let converted = if f.format == "raw" {
            String::new()
        } else {
            format!(", converted from {}", f.format)
        };
        shell.status(
            "Fetched",
            format!(
                "{file} ({}{resumed}{converted}) in {:.2}s, {}/s",
                fetch::human_bytes(f.size),
                f.transfer_seconds,
                fetch::human_bytes(f.rate() as u64),
            ),
        );
    }
    shell.println(f.path.display());
    shell.json(&serde_json::json!({
        "reason": "image-fetched",
        "name": f.name,
        "path": f.path,
        "url": f.url,
        "checksum": f.checksum,
        "size": f.size,
        "download_size": f.download_size,
        "received": f.received,
        "resumed_from": f.resumed_from,
        "transfer_seconds": f.transfer_seconds,
        "bytes_per_second": f.rate(),
        "format": f.format,
        "fresh": f.fresh,
    }));
    Ok(0)
}

/// Build a Debian image (minbase and the given packages) into the cache, without root when
/// mmdebstrap is installed; a second build of the same recipe is instant
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The mirror is the host's (from /etc/apt/sources.list and \
                        /etc/apt/sources.list.d/), else http://deb.debian.org/debian. The image \
                        is an ext4 file system (no partition table) in a sparse file, named after \
                        a hash of suite, packages, mirror, size and kfuzz's recipe."
)]
pub struct BuildArgs {
    /// The Debian suite
    #[arg(long, default_value = crate::image::build::DEFAULT_SUITE)]
    pub suite: String,
    /// Packages on top of minbase, comma-separated (replaces the default set)
    #[arg(long, value_delimiter = ',', value_name = "PKG,…",
          default_values_t = crate::image::build::DEFAULT_PACKAGES.iter().map(|p| p.to_string()))]
    pub packages: Vec<String>,
    /// The size of the file system (sparse file): 2G, 512M, …
    #[arg(long, default_value = "2G", value_parser = crate::image::build::parse_size)]
    pub size: u64,
    /// The Debian archive to install from (default: the host's)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// The tool that makes the root file system
    #[arg(long, value_enum, default_value_t = crate::image::build::BootstrapChoice::Auto)]
    pub bootstrap: crate::image::build::BootstrapChoice,
}

fn exec_build(a: BuildArgs, shell: &Shell) -> anyhow::Result<i32> {
    use crate::image::build::{self, human_size, Recipe};
    let mirror = a.mirror.unwrap_or_else(|| build::host_mirror(&a.suite));
    let recipe = Recipe::new(&a.suite, &a.packages, &mirror, a.size)?;
    let cache = crate::image::cache_dir();
    let started = std::time::Instant::now();
    let img = build::build(&recipe, a.bootstrap, &cache, shell)?;
    let r = &img.record;
    if img.fresh {
        shell.status("Fresh", format!("{} ({})", img.name, recipe.describe()));
    } else {
        shell.status(
            "Finished",
            format!(
                "{} ({}, {} on disk) in {}",
                img.name,
                human_size(r.size),
                human_size(r.disk_bytes),
                crate::kernel::build::human_duration(started.elapsed())
            ),
        );
    }
    shell.println(img.path.display());
    shell.json(&serde_json::json!({
        "reason": "image-built",
        "name": img.name,
        "path": img.path,
        "fresh": img.fresh,
        "record": r,
    }));
    Ok(0)
}

/// List the cached images: name, size, where they came from, when
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

fn exec_list(_a: ListArgs, shell: &Shell) -> anyhow::Result<i32> {
    use crate::image::build::{human_size, read_record, utc_time};
    let cache = crate::image::cache_dir();
    let images = crate::image::list(&cache)?;
    if images.is_empty() {
        shell.note("Empty", format!("no images in {}", cache.display()));
    } else {
        shell.println(format!(
            "{:<32} {:>9} {:<10} {:<20} PACKAGES / SOURCE",
            "NAME", "SIZE", "SUITE", "CREATED"
        ));
    }
    for img in &images {
        let record = read_record(&cache, &img.name);
        let created = match (&record, img.modified) {
            (Some(r), _) => utc_time(r.created),
            (None, Some(t)) => t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or_else(|_| "?".to_string(), |d| utc_time(d.as_secs())),
            (None, None) => "?".to_string(),
        };
        let (suite, what) = match (&record, &img.origin) {
            (Some(r), _) => (r.suite.clone(), r.packages.join(",")),
            (None, Some(o)) => ("-".to_string(), o.url.clone()),
            (None, None) => ("-".to_string(), "-".to_string()),
        };
        shell.println(format!(
            "{:<32} {:>9} {:<10} {:<20} {what}",
            img.name,
            human_size(img.size),
            suite,
            created
        ));
        shell.json(&serde_json::json!({
            "reason": "image",
            "name": img.name,
            "path": img.path,
            "size": img.size,
            "build": record,
            "origin": img.origin,
        }));
    }
    Ok(0)
}

/// Remove an image (and its record) from the cache
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The names `kfuzz image list` shows
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

fn exec_rm(a: RmArgs, shell: &Shell) -> anyhow::Result<i32> {
    let cache = crate::image::cache_dir();
    for name in &a.names {
        let removed = crate::image::remove(&cache, name)?;
        shell.status("Removed", name);
        shell.json(&serde_json::json!({
            "reason": "image-removed",
            "name": name,
            "files": removed,
        }));
    }
    Ok(0)
}
