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
