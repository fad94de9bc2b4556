//! `kfuzz image fetch`: a prebuilt disk image over HTTP(S) into the image cache. The source is a
//! known name (Debian's official cloud images) or a URL; the publisher's checksum is checked
//! before the image is placed (a bad download is deleted, never kept); an interrupted download
//! resumes from its `.part` file with an HTTP `Range`; qcow2 is converted to raw with `qemu-img`.
//! Knows nothing of clap and prints only through `Shell`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use super::{check_name, image_path, origin_path, read_origin, NameLock, Origin};
use crate::shell::Shell;

mod checksum;
mod http;

pub use checksum::{checksum_in_list, Algorithm, Checksum};

/// Where Debian publishes its cloud images; `KFUZZ_DEBIAN_CLOUD_URL` replaces it (a mirror, or a
/// local server in tests).
pub const DEBIAN_CLOUD_URL: &str = "https://cloud.debian.org/images/cloud";

/// The checksum files looked for next to an image URL, in this order.
pub const CHECKSUM_FILES: [&str; 2] = ["SHA512SUMS", "SHA256SUMS"];

/// A name `kfuzz image fetch` knows: Debian's official cloud image of a release, as raw (the
/// format the VMs boot; Debian also publishes qcow2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownImage {
    pub name: &'static str,
    /// The release's folder under `DEBIAN_CLOUD_URL` (`bookworm`).
    pub suite: &'static str,
    /// The file in `<suite>/latest/`.
    pub file: &'static str,
    pub about: &'static str,
}

/// The names `fetch` resolves. `nocloud` is the image with no cloud-init datasource to wait for
/// (root without a password on the console), the one a test VM wants.
pub const KNOWN: &[KnownImage] = &[
    KnownImage {
        name: "debian-12-nocloud",
        suite: "bookworm",
        file: "debian-12-nocloud-amd64.raw",
        about: "Debian 12 (bookworm) nocloud, amd64",
    },
    KnownImage {
        name: "debian-12-genericcloud",
        suite: "bookworm",
        file: "debian-12-genericcloud-amd64.raw",
        about: "Debian 12 (bookworm) genericcloud (cloud-init, virtual hardware only), amd64",
    },
    KnownImage {
        name: "debian-12-generic",
        suite: "bookworm",
        file: "debian-12-generic-amd64.raw",
        about: "Debian 12 (bookworm) generic (cloud-init, all hardware), amd64",
    },
];

/// Other spellings of a known name.
const ALIASES: &[(&str, &str)] = &[
    ("debian-nocloud", "debian-12-nocloud"),
    ("debian-12-nocloud-amd64", "debian-12-nocloud"),
    ("debian-12-genericcloud-amd64", "debian-12-genericcloud"),
    ("debian-12-generic-amd64", "debian-12-generic"),
];

impl KnownImage {
    pub fn find(name: &str) -> Option<&'static KnownImage> {
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, to)| *to);
        KNOWN.iter().find(|k| k.name == name)
    }

    /// The image's URL under `base` (`DEBIAN_CLOUD_URL` or a mirror of it).
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/{}/latest/{}",
            base.trim_end_matches('/'),
            self.suite,
            self.file
        )
    }
}

/// What to fetch, as the user said it.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    /// A known name (`debian-12-nocloud`) or an `http(s)://` URL.
    pub source: String,
    /// The name in the cache; by default the known name, or the URL's file name less its
    /// extension.
    pub name: Option<String>,
    /// The checksum, when the user gives it; otherwise it comes from a checksum file.
    pub checksum: Option<Checksum>,
    /// The checksum file, when not next to the image.
    pub checksum_url: Option<String>,
}

/// The fetch, resolved: what to download, where it goes, what it must hash to.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    url: Url,
    /// The URL's last segment, the name checksum files list.
    file: String,
    /// Checksum files to try in order (empty when the checksum was given).
    checksum_urls: Vec<Url>,
    checksum: Option<Checksum>,
}

/// What a fetch did.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    pub name: String,
    pub path: PathBuf,
    pub url: String,
    pub checksum: Checksum,
    /// The size of the image in the cache.
    pub size: u64,
    /// The size of the download (before any conversion).
    pub download_size: u64,
    /// Bytes this run received (less than `download_size` when it resumed).
    pub received: u64,
    /// Where this run started in the download (0 unless it resumed a `.part`).
    pub resumed_from: u64,
    /// Time spent receiving.
    pub transfer_seconds: f64,
    /// `raw`, or `qcow2` when converted.
    pub format: String,
    /// The image was already in the cache with the same origin: nothing was downloaded.
    pub fresh: bool,
}

impl Fetched {
    /// Received bytes per second (0 when nothing was received).
    pub fn rate(&self) -> f64 {
        if self.transfer_seconds > 0.0 {
            self.received as f64 / self.transfer_seconds
        } else {
            0.0
        }
    }
}

fn resolve(req: &FetchRequest) -> anyhow::Result<Plan> {
    let source = req.source.trim();
    let (url, default_name) = if source.contains("://") {
        let url = Url::parse(source).with_context(|| format!("'{source}' is not a valid URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "cannot fetch {url}: only http:// and https:// URLs are supported"
        );
        let file = last_segment(&url)
            .with_context(|| format!("{url} names no file: give the URL of the image itself"))?;
        let stem = [".raw", ".qcow2", ".img"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext))
            .unwrap_or(&file)
            .to_string();
        (url, stem)
    } else {
        let Some(known) = KnownImage::find(source) else {
            let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
            bail!(
                "unknown image '{source}': give an http(s) URL or one of {}",
                names.join(", ")
            );
        };
        let base = std::env::var("KFUZZ_DEBIAN_CLOUD_URL")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| DEBIAN_CLOUD_URL.to_string());
        let url = known.url(&base);
        let url = Url::parse(&url).with_context(|| format!("'{url}' is not a valid URL"))?;
        (url, known.name.to_string())
    };
    let name = req.name.clone().unwrap_or(default_name);
    check_name(&name)?;
    let file = last_segment(&url).unwrap_or_default();
    let checksum_urls = if req.checksum.is_some() {
        Vec::new()
    } else if let Some(c) = &req.checksum_url {
        vec![Url::parse(c).with_context(|| format!("'{c}' is not a valid checksum URL"))?]
    } else {
        CHECKSUM_FILES
            .iter()
            .map(|f| {
                url.join(f)
                    .with_context(|| format!("cannot name {f} next to {url}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(Plan {
        name,
        file,
        url,
        checksum_urls,
        checksum: req.checksum.clone(),
    })
}

fn last_segment(url: &Url) -> Option<String> {
    url.path_segments()?
        .next_back()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The checksum the publisher gives for `plan.file`, from the first checksum file that lists it.
fn published_checksum(
    client: &reqwest::blocking::Client,
    plan: &Plan,
    shell: &Shell,
) -> anyhow::Result<Checksum> {
    if let Some(c) = &plan.checksum {
        return Ok(c.clone());
    }
    let mut tried = Vec::new();
    for url in &plan.checksum_urls {
        shell.verbose("Checking", format!("checksums in {url}"));
        let resp = client
            .get(url.clone())
            .send()
            .with_context(|| format!("cannot download the checksum file {url}"))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            tried.push(format!("{url}: {}", http::status_text(status)));
            continue;
        }
        if !status.is_success() {
            bail!(
                "cannot download the checksum file {url}: the server answered {}",
                http::status_text(status)
            );
        }
        let mut text = String::new();
        resp.take(16 << 20)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the checksum file {url}"))?;
        match checksum_in_list(&text, &plan.file) {
            Some(c) => return Ok(c),
            None => tried.push(format!("{url}: no line for '{}'", plan.file)),
        }
    }
    bail!(
        "no checksum for {}: {}; give the checksum file with --checksum-url, or the digest with \
         --sha512/--sha256",
        plan.url,
        tried.join("; ")
    )
}

/// Fetches the image `req` names into `cache` (the images folder), unless the same image (same
/// URL, same published checksum) is there already.
pub fn fetch(req: &FetchRequest, cache: &Path, shell: &Shell) -> anyhow::Result<Fetched> {
    let plan = resolve(req)?;
    if let Some(known) = KnownImage::find(req.source.trim()) {
        shell.verbose(
            "Resolved",
            format!("{} is {}", req.source.trim(), known.about),
        );
    }
    let _lock = NameLock::take(cache, &plan.name)?;
    let client = http::client()?;
    let checksum = match published_checksum(&client, &plan, shell) {
        Ok(c) => c,
        Err(e) => {
            // A mistyped URL is better told as the 404 it is than as a missing checksum line.
            if let Ok(resp) = client.head(plan.url.clone()).send() {
                if resp.status() == StatusCode::NOT_FOUND {
                    bail!(
                        "cannot download {}: the server answered {}",
                        plan.url,
                        http::status_text(resp.status())
                    );
                }
            }
            return Err(e);
        }
    };
    let dest = image_path(cache, &plan.name);
    let origin = read_origin(cache, &plan.name);
    if dest.exists() && origin.is_none() {
        bail!(
            "{} is in the cache already and was not fetched (a build, or put there by hand): \
             remove it with `kfuzz image rm {}`, or fetch under another name with --name",
            dest.display(),
            plan.name
        );
    }
    if let Some(origin) = origin {
        if !dest.is_file() {
            // A record left without its image: the download below replaces both.
        } else if origin.url == plan.url.as_str() && origin.checksum == checksum {
            let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
            return Ok(Fetched {
                name: plan.name,
                path: dest,
                url: origin.url,
                checksum,
                size,
                download_size: 0,
                received: 0,
                resumed_from: 0,
                transfer_seconds: 0.0,
                format: origin.format,
                fresh: true,
            });
        } else {
            shell.note(
                "Replacing",
                format!(
                    "{} (fetched from {}, {})",
                    dest.display(),
                    origin.url,
                    origin.checksum
                ),
            );
        }
    }

    let part = cache.join(format!(".{}.{}.part", plan.name, checksum.tag()));
    shell.status("Downloading", &plan.url);
    remove_stale_parts(cache, &plan.name, &part);
    let transfer = http::download(&client, &plan.url, &part, cache, shell)?;

    shell.verbose(
        "Verifying",
        format!("{} of {}", checksum.algorithm, plan.file),
    );
    let got = checksum.of_file(&part)?;
    if got != checksum {
        let removed = std::fs::remove_file(&part);
        bail!(
            "checksum mismatch for {}: expected {checksum}, got {}; the download {}",
            plan.url,
            got.hex,
            match removed {
                Ok(()) => "was deleted".to_string(),
                Err(e) => format!("could not be deleted ({}: {e})", part.display()),
            }
        );
    }

    let format = if is_qcow2(&part)? {
        convert_qcow2(&part, &dest, cache, shell)?;
        let _ = std::fs::remove_file(&part);
        "qcow2"
    } else {
        place(&part, &dest)?;
        "raw"
    };
    let origin = Origin {
        url: plan.url.to_string(),
        checksum: checksum.clone(),
        format: format.to_string(),
    };
    let json = serde_json::to_vec_pretty(&origin).context("cannot encode the image's origin")?;
    crate::fsutil::write_atomic(&origin_path(cache, &plan.name), &json)
        .map_err(|e| disk_error(e, cache))?;
    let size = std::fs::metadata(&dest)
        .with_context(|| format!("cannot read {}", dest.display()))?
        .len();
    Ok(Fetched {
        name: plan.name,
        path: dest,
        url: plan.url.to_string(),
        checksum,
        size,
        download_size: transfer.size,
        received: transfer.received,
        resumed_from: transfer.resumed_from,
        transfer_seconds: transfer.elapsed.as_secs_f64(),
        format: format.to_string(),
        fresh: false,
    })
}

/// Removes the `.part` files of `name` other than `keep`: downloads of an image the publisher has
/// replaced since, which can never be resumed.
fn remove_stale_parts(cache: &Path, name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let tag = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".part"));
        let stale = tag.is_some_and(|t| t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale && path != keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Turns a full disk into an error that names the cache (and the way to move it); other errors
/// pass through.
fn disk_error(err: anyhow::Error, cache: &Path) -> anyhow::Error {
    let full = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
    });
    if full {
        err.context(format!(
            "no space left on the disk of the image cache {}: free some space there (or point \
             KFUZZ_CACHE_DIR elsewhere) and run the command again to resume",
            cache.display()
        ))
    } else {
        err
    }
}

/// Whether `path` starts with qcow2's magic (`QFI\xfb`).
fn is_qcow2(path: &Path) -> anyhow::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"QFI\xfb"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Moves the verified download into place, read-only (the cache's images are never written).
fn place(part: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(part, std::fs::Permissions::from_mode(0o444))
        .with_context(|| format!("cannot make {} read-only", part.display()))?;
    std::fs::rename(part, dest)
        .with_context(|| format!("cannot move {} to {}", part.display(), dest.display()))?;
    if let Some(dir) = dest.parent() {
        crate::fsutil::sync_dir(dir);
    }
    Ok(())
}

/// `qemu-img convert -f qcow2 -O raw` into a temporary file beside `dest`, then placed.
fn convert_qcow2(part: &Path, dest: &Path, cache: &Path, shell: &Shell) -> anyhow::Result<()> {
    let qemu_img = which::which("qemu-img").map_err(|_| {
        anyhow::anyhow!(
            "the image is qcow2 and the VMs boot raw: converting it needs qemu-img, which is not \
             installed (Debian/Ubuntu: apt-get install qemu-utils; Fedora: dnf install qemu-img)"
        )
    })?;
    let tmp = dest.with_file_name(format!(
        ".{}.tmp",
        dest.file_name()
            .map_or_else(|| "image".to_string(), |f| f.to_string_lossy().into_owned())
    ));
    shell.status("Converting", "qcow2 to raw (qemu-img)");
    let out = std::process::Command::new(&qemu_img)
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(part)
        .arg(&tmp)
        .output()
        .with_context(|| format!("cannot run {}", qemu_img.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let err = anyhow::anyhow!(
            "qemu-img convert {} failed ({}): {}",
            part.display(),
            out.status,
            stderr.trim()
        );
        if stderr.contains("No space left on device") {
            return Err(disk_error(
                err.context(std::io::Error::from_raw_os_error(libc::ENOSPC)),
                cache,
            ));
        }
        return Err(err);
    }
    let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
    if let Err(e) = synced {
        let _ = std::fs::remove_file(&tmp);
        return Err(disk_error(
            anyhow::Error::new(e).context(format!("cannot write {}", tmp.display())),
            cache,
        ));
    }
    place(&tmp, dest)
}

/// `64.00 MiB`.
pub fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_name_resolves_to_debians_raw_nocloud_image_and_its_sha512sums() {
        let plan = resolve(&FetchRequest {
            source: "debian-12-nocloud".into(),
            ..Default::default()
        })
        .unwrap();
        // The test process may point KFUZZ_DEBIAN_CLOUD_URL elsewhere; the tail is fixed.
        assert!(
            plan.url
                .as_str()
                .ends_with("/bookworm/latest/debian-12-nocloud-amd64.raw"),
            "{}",
            plan.url
        );
        assert_eq!(plan.name, "debian-12-nocloud");
        assert_eq!(plan.file, "debian-12-nocloud-amd64.raw");
        assert!(plan.checksum_urls[0]
            .as_str()
            .ends_with("/bookworm/latest/SHA512SUMS"));
        assert!(plan.checksum_urls[1]
            .as_str()
            .ends_with("/bookworm/latest/SHA256SUMS"));
        assert_eq!(
            KnownImage::find("debian-nocloud").map(|k| k.name),
            Some("debian-12-nocloud")
        );
        assert_eq!(
            KNOWN[0].url(DEBIAN_CLOUD_URL),
            "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-nocloud-amd64.raw"
        );
    }

    #[test]
    fn a_url_gives_its_file_stem_as_name_and_checksum_files_beside_it() {
        let plan = resolve(&FetchRequest {
            source: "http://127.0.0.1:8000/imgs/disk.qcow2".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.name, "disk");
        assert_eq!(plan.file, "disk.qcow2");
        assert_eq!(
            plan.checksum_urls[0].as_str(),
            "http://127.0.0.1:8000/imgs/SHA512SUMS"
        );
        let given = resolve(&FetchRequest {
            source: "https://h.invalid/d.raw".into(),
            name: Some("mine".into()),
            checksum: Some(Checksum::new(Algorithm::Sha512, &"ab".repeat(64)).unwrap()),
            checksum_url: None,
        })
        .unwrap();
        assert_eq!(given.name, "mine");
        assert!(given.checksum_urls.is_empty());
    }

    #[test]
    fn unknown_names_and_other_schemes_are_refused_with_what_would_do() {
        let err = resolve(&FetchRequest {
            source: "ubuntu".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown image 'ubuntu'"), "{err}");
        assert!(err.contains("debian-12-nocloud"), "{err}");
        let err = resolve(&FetchRequest {
            source: "ftp://h.invalid/d.raw".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("only http:// and https://"), "{err}");
    }

    #[test]
    fn a_full_disk_names_the_cache() {
        let cache = Path::new("/var/cache/kfuzz/images");
        let err = disk_error(
            anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
                .context("cannot write x.part"),
            cache,
        );
        let text = format!("{err:#}");
        assert!(text.contains("no space left"), "{text}");
        assert!(text.contains("/var/cache/kfuzz/images"), "{text}");
        let other = disk_error(
            anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EACCES)),
            cache,
        );
        assert!(!format!("{other:#}").contains("no space"));
    }

    #[test]
    fn qcow2_is_told_by_its_magic() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        std::fs::write(&q, b"QFI\xfb\0\0\0\x03rest").unwrap();
        let r = dir.path().join("r");
        std::fs::write(&r, [0u8; 512]).unwrap();
        let s = dir.path().join("s");
        std::fs::write(&s, b"QF").unwrap();
        assert!(is_qcow2(&q).unwrap());
        assert!(!is_qcow2(&r).unwrap());
        assert!(!is_qcow2(&s).unwrap());
    }
}
