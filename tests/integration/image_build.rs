//! `kfuzz image build`, `list` and `rm`: a real minbase image with `iproute2` (built once into the
//! shared cache, like the test kernel), looked into with e2fsprogs (no mount), a second build that
//! is Fresh, a failed build that leaves no image, and the clear errors of a user who can build
//! nothing without root.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{build_test_image, kfuzz, stderr_of, stdout_of};

/// `debugfs -R REQUEST IMAGE`'s output (read-only, no mount).
fn debugfs(image: &Path, request: &str) -> String {
    let out = Command::new(sbin("debugfs"))
        .args(["-R", request])
        .arg(image)
        .output()
        .expect("run debugfs (e2fsprogs)");
    assert!(
        out.status.success(),
        "debugfs -R '{request}': {}",
        stderr_of(&out)
    );
    stdout_of(&out)
}

fn sbin(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The files of a cache folder, hidden ones included.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn build_makes_an_ext4_image_with_ip_owned_by_root_and_a_second_build_is_fresh() {
    let (image, msg) = build_test_image();
    assert!(image.is_file(), "{}", image.display());
    let name = msg["name"].as_str().expect("name");
    assert!(name.starts_with("debian-bookworm-"), "{name}");
    assert_eq!(
        image.file_name().and_then(|n| n.to_str()),
        Some(format!("{name}.raw").as_str())
    );
    let record = &msg["record"];
    assert_eq!(record["suite"], "bookworm");
    assert_eq!(record["packages"], serde_json::json!(["iproute2"]));
    assert_eq!(record["size"], 2u64 << 30);

    // A 2 GiB sparse file holding an ext4 file system (superblock magic 0xEF53 at 1024 + 0x38).
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 2 << 30);
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "the image is not sparse"
    );
    let mut head = [0u8; 2048];
    std::io::Read::read_exact(&mut std::fs::File::open(&image).unwrap(), &mut head).unwrap();
    assert_eq!(&head[1024 + 0x38..1024 + 0x3a], &[0x53, 0xef]);
    let out = Command::new(sbin("dumpe2fs"))
        .arg("-h")
        .arg(&image)
        .output()
        .expect("run dumpe2fs");
    let super_block = stdout_of(&out);
    assert!(super_block.contains("extent"), "{super_block}");
    assert!(super_block.contains("kfuzz-root"), "{super_block}");
    let fsck = Command::new(sbin("e2fsck"))
        .args(["-n", "-f"])
        .arg(&image)
        .output()
        .expect("run e2fsck");
    assert!(fsck.status.success(), "e2fsck -n -f: {}", stdout_of(&fsck));

    // `ip` is there, root's, and so is kfuzz's setup; /etc/shadow keeps its group (shadow).
    // Merged /usr: /sbin is a link to usr/sbin, and Debian's /usr/sbin/ip a link to /bin/ip.
    let sbin_ip = debugfs(&image, "stat /usr/sbin/ip");
    assert!(
        sbin_ip.contains("Type: regular") || sbin_ip.contains("Fast link dest: \"/bin/ip\""),
        "{sbin_ip}"
    );
    let ip = debugfs(&image, "stat /usr/bin/ip");
    assert!(ip.contains("Type: regular"), "{ip}");
    assert!(ip.contains("User:     0   Group:     0"), "{ip}");
    let sbin_link = debugfs(&image, "stat /sbin");
    assert!(sbin_link.contains("Type: symlink"), "{sbin_link}");
    assert_eq!(debugfs(&image, "cat /etc/hostname").trim(), "kfuzz");
    let shadow = debugfs(&image, "stat /etc/shadow");
    assert!(shadow.contains("User:     0   Group:    42"), "{shadow}");
    assert!(debugfs(&image, "cat /etc/shadow").starts_with("root::"));
    // No apt lists or downloaded packages left in the image.
    let lists = debugfs(&image, "ls -l /var/lib/apt/lists");
    assert!(!lists.contains("_Packages"), "{lists}");

    // The second build is Fresh, instant, and leaves the image as it was.
    let mtime = meta.modified().unwrap();
    let cache = common::cache_dir();
    let started = Instant::now();
    let out = kfuzz()
        .args(["image", "build", "--packages", "iproute2"])
        .env("KFUZZ_CACHE_DIR", &cache)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("Fresh"), "{}", stderr_of(&out));
    assert!(took < Duration::from_secs(5), "a fresh build took {took:?}");
    assert_eq!(stdout_of(&out).trim(), image.display().to_string());
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        mtime
    );
}

#[test]
fn list_and_rm_work_on_a_cache_of_their_own() {
    let (image, msg) = build_test_image();
    let name = msg["name"].as_str().expect("name").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("kfuzz");
    let images = cache.join("images");
    std::fs::create_dir_all(&images).unwrap();
    // The shared image linked in (rm must not touch the original), with its record.
    let copy = images.join(format!("{name}.raw"));
    if std::fs::hard_link(&image, &copy).is_err() {
        let ok = Command::new("cp")
            .arg("--sparse=always")
            .arg(&image)
            .arg(&copy)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp {}", image.display());
    }
    let record = image.with_file_name(format!("{name}.build.json"));
    std::fs::copy(&record, images.join(format!("{name}.build.json"))).unwrap();
    // An image kfuzz did not build (fetched, or put there by hand).
    std::fs::write(images.join("other.raw"), b"not an image").unwrap();

    let list = |format: &str| {
        kfuzz()
            .args(["image", "list", "--message-format", format])
            .env("KFUZZ_CACHE_DIR", &cache)
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    };
    let out = list("human");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} is not listed:\n{text}"));
    for want in ["2.0 GiB", "bookworm", "iproute2", "UTC"] {
        assert!(row.contains(want), "{want} missing from: {row}");
    }
    assert!(text.lines().any(|l| l.starts_with("other ")), "{text}");
    let msgs = json_lines(&list("json"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let built = msgs.iter().find(|m| m["name"] == name.as_str()).unwrap();
    assert_eq!(built["build"]["packages"], serde_json::json!(["iproute2"]));
    assert_eq!(built["size"], 2u64 << 30);

    let rm = |what: &str| {
        kfuzz()
            .args(["image", "rm", what])
            .env("KFUZZ_CACHE_DIR", &cache)
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    };
    let out = rm(&name);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("Removed"), "{}", stderr_of(&out));
    let left = files_in(&images);
    assert!(
        !left.iter().any(|f| f.starts_with(&name)),
        "left behind: {left:?}"
    );
    assert!(
        image.is_file(),
        "rm in another cache removed the shared image"
    );
    let out = rm(&name);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!("no image '{name}'")) && err.contains("other"),
        "{err}"
    );
    let out = rm("../escape");
    assert!(!out.status.success());
    assert!(rm("other").status.success());
    let out = list("human");
    assert!(out.status.success());
    assert!(!stdout_of(&out).contains("other"), "{}", stdout_of(&out));
}

#[test]
fn a_build_that_fails_leaves_no_image_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("kfuzz");
    let out = kfuzz()
        .args(["image", "build", "--packages", "kfuzz-no-such-package"])
        .env("KFUZZ_CACHE_DIR", &cache)
        .timeout(Duration::from_secs(15 * 60))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("kfuzz-no-such-package"), "{err}");
    assert!(err.contains("full log:"), "{err}");
    let left = files_in(&cache.join("images"));
    assert!(
        left.iter()
            .all(|f| f.ends_with(".lock") || f.ends_with(".build.log")),
        "a failed build left {left:?}"
    );
    let out = kfuzz()
        .args(["image", "list", "--message-format", "json"])
        .env("KFUZZ_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(json_lines(&out).is_empty(), "{}", stdout_of(&out));
}

/// Runs `kfuzz ARGS` as a user without root (nobody, when the tests run as root) with `path` as
/// PATH and `cache` as its cache.
fn kfuzz_without_root(tmp: &Path, path: &str, cache: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    // A copy of the binary nobody can run wherever the build tree lives.
    let bin = tmp.join("kfuzz");
    if !bin.exists() {
        std::fs::copy(assert_cmd::cargo::cargo_bin("kfuzz"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = if is_root() {
        let mut c = Command::new(sbin("setpriv"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", tmp)
        .env("KFUZZ_CACHE_DIR", cache)
        .output()
        .expect("run kfuzz without root")
}

/// A folder anyone may write, as the cache of a user who is not root.
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    tmp
}

#[test]
fn building_without_root_and_without_mmdebstrap_names_the_package_and_makes_no_image() {
    let tmp = open_dir();
    let cache = tmp.path().join("cache");
    // A PATH without mmdebstrap (nor anything else).
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = kfuzz_without_root(
        tmp.path(),
        &empty.display().to_string(),
        &cache,
        &["image", "build", "--packages", "iproute2"],
    );
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("error: building a Debian image without root needs mmdebstrap"),
        "{err}"
    );
    assert!(err.contains("apt-get install mmdebstrap"), "{err}");
    assert!(
        files_in(&cache.join("images")).is_empty(),
        "{:?}",
        files_in(&cache.join("images"))
    );
    // Asking for debootstrap explicitly says it needs root.
    let out = kfuzz_without_root(
        tmp.path(),
        &empty.display().to_string(),
        &cache,
        &["image", "build", "--bootstrap", "debootstrap"],
    );
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("debootstrap"), "{err}");
    assert!(files_in(&cache.join("images")).is_empty());
}

#[test]
fn building_without_root_or_subordinate_ids_names_the_setting() {
    if which_mmdebstrap().is_none() {
        eprintln!("skipped: mmdebstrap is not installed (scripts/install-deps.sh)");
        return;
    }
    if !is_root() {
        eprintln!("skipped: needs root, to act as a user (nobody) without subordinate ids");
        return;
    }
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if subuid
        .lines()
        .any(|l| l.starts_with("nobody:") || l.starts_with("65534:"))
    {
        eprintln!("skipped: nobody has subordinate ids here");
        return;
    }
    let tmp = open_dir();
    let cache = tmp.path().join("cache");
    let out = kfuzz_without_root(
        tmp.path(),
        "/usr/local/bin:/usr/bin:/bin",
        &cache,
        &["image", "build", "--packages", "iproute2"],
    );
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("/etc/subuid") && err.contains("usermod --add-subuids"),
        "{err}"
    );
    assert!(files_in(&cache.join("images")).is_empty());
}

fn which_mmdebstrap() -> Option<PathBuf> {
    ["/usr/bin/mmdebstrap", "/usr/local/bin/mmdebstrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}
