//! Shared by the integration tests: the real kernel tree (Debian's linux-source-6.12, unpacked
//! once into ~/.cache/kfuzz), cheap per-test views of it, and the small test kernel that is built
//! once and reused by every test that boots.
#![allow(dead_code)]

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("KFUZZ_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("kfuzz")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kfuzz")))
        .expect("HOME is not set");
    std::fs::create_dir_all(&base).expect("create the test cache dir");
    base
}

/// An exclusive lock held while the guard lives (flock on a file in the cache dir), so that test
/// binaries running at the same time do not unpack or build twice.
pub struct CacheLock(std::fs::File);

pub fn lock(name: &str) -> CacheLock {
    let path = cache_dir().join(format!("{name}.lock"));
    let f = std::fs::File::create(&path).expect("create lock file");
    // SAFETY: a valid open fd.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    CacheLock(f)
}

/// The unpacked linux-source-6.12 tree (read-only for tests).
pub fn kernel_source() -> PathBuf {
    if let Some(p) = std::env::var_os("KFUZZ_TEST_TREE") {
        return PathBuf::from(p);
    }
    let tree = cache_dir().join("linux-source-6.12");
    let _guard = lock("linux-source-6.12");
    if tree.join("Makefile").is_file() && tree.join(".unpacked").exists() {
        return tree;
    }
    assert!(
        Path::new(TARBALL).exists(),
        "{TARBALL} is missing: run scripts/install-deps.sh (Debian package linux-source-6.12) \
         or set KFUZZ_TEST_TREE to an unpacked kernel tree"
    );
    let _ = std::fs::remove_dir_all(&tree);
    let status = Command::new("tar")
        .arg("-C")
        .arg(cache_dir())
        .arg("-xf")
        .arg(TARBALL)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {TARBALL} failed");
    std::fs::write(tree.join(".unpacked"), "").expect("mark unpacked");
    tree
}

/// A directory that looks like the kernel tree (a symlink per top-level entry) but where kfuzz
/// can write its own kfuzz.toml and .kfuzz/ without touching the shared tree.
pub fn tree_view(dir: &Path) -> PathBuf {
    let src = kernel_source();
    std::fs::create_dir_all(dir).expect("create view dir");
    for entry in std::fs::read_dir(&src).expect("read the kernel tree") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == ".kfuzz" || name == "kfuzz.toml" || name == ".unpacked" {
            continue;
        }
        let link = dir.join(&name);
        match std::os::unix::fs::symlink(entry.path(), &link) {
            Ok(()) => {}
            // Another test made the same view at the same time.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("symlink {} into the tree: {e}", link.display()),
        }
    }
    dir.to_path_buf()
}

pub fn kfuzz() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("kfuzz").expect("the kfuzz binary")
}

pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The manifest of the small kernel every booting test shares: the minimal base with the fuzzing
/// fragments, KASAN for real memory-error reports, LKDTM to provoke crashes on demand, and DWARF
/// (line tables, reduced type info) for symbolized reports and patch-to-PC mapping.
pub const TEST_KERNEL_MANIFEST: &str = r#"[kernel]
base = "minimal"
fragments = ["fuzz-base", "qemu-guest", "kcov", "kasan"]
config = [
    "CONFIG_LKDTM=y",
    "CONFIG_TUN=y",
    "CONFIG_BLK_DEV_LOOP=y",
    "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y",
    "CONFIG_DEBUG_INFO_REDUCED=y",
]
[vm]
count = 1
cpus = 1
memory_mb = 512
"#;

/// The tree view of the shared test kernel (built on first use, cached in ~/.cache/kfuzz).
pub fn test_kernel_tree() -> PathBuf {
    let dir = cache_dir().join("test-kernel");
    let tree = tree_view(&dir);
    let manifest = tree.join("kfuzz.toml");
    if std::fs::read_to_string(&manifest).ok().as_deref() != Some(TEST_KERNEL_MANIFEST) {
        std::fs::write(&manifest, TEST_KERNEL_MANIFEST).expect("write the test kernel manifest");
    }
    tree
}

/// Builds the shared test kernel (a no-op when it is up to date) and returns the tree view and
/// kfuzz's JSON `build-finished` message.
pub fn build_test_kernel() -> (PathBuf, serde_json::Value) {
    let tree = test_kernel_tree();
    let _guard = lock("test-kernel");
    let out = kfuzz()
        .args(["build", "--message-format", "json"])
        .current_dir(&tree)
        .timeout(std::time::Duration::from_secs(60 * 60))
        .output()
        .expect("run kfuzz build");
    assert!(
        out.status.success(),
        "building the test kernel failed:\n{}\n{}",
        stderr_of(&out),
        stdout_of(&out)
    );
    let msg = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "build-finished")
        .expect("a build-finished message");
    // The uapi headers, exported into the build dir from this view: a private view (whose
    // .kfuzz/build links here) would otherwise export them with its own path as the source
    // tree, changing make's command lines in the shared build.
    if !tree
        .join(".kfuzz/build/usr/include/linux/version.h")
        .is_file()
    {
        let out = kfuzz()
            .args(["syscalls", "--syscalls", "shmget"])
            .current_dir(&tree)
            .timeout(std::time::Duration::from_secs(20 * 60))
            .output()
            .expect("run kfuzz syscalls");
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    (tree, msg)
}

/// Debian 12's own kernel (`linux-image-amd64`), unpacked into the cache once: a kernel kfuzz did
/// not build, with virtio_console as a module and no KCOV.
pub fn debian_kernel() -> PathBuf {
    let dir = cache_dir().join("debian-kernel");
    let _guard = lock("debian-kernel");
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(dir.join("x/boot"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
    };
    if let Some(k) = find() {
        return k;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let deps = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .expect("apt-cache");
    let pkg = String::from_utf8_lossy(&deps.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: ").map(str::to_string))
        .expect("linux-image-amd64 depends on a versioned kernel package (run apt-get update)");
    let ok = Command::new("apt-get")
        .args(["download", &pkg])
        .current_dir(&dir)
        .status()
        .expect("apt-get download")
        .success();
    assert!(ok, "apt-get download {pkg} failed");
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("the downloaded .deb");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.join("x"))
        .status()
        .expect("dpkg-deb")
        .success();
    assert!(ok, "dpkg-deb -x {} failed", deb.display());
    let _ = std::fs::remove_file(&deb);
    find().expect("a vmlinuz in the kernel package")
}

/// A private view of the test kernel's tree (its own kfuzz.toml and .kfuzz/, the shared build
/// linked in), so that a test's VMs and work files are its own.
pub fn private_test_tree() -> (tempfile::TempDir, PathBuf) {
    let (shared, _) = build_test_kernel();
    let tmp = tempfile::tempdir().expect("tempdir");
    let view = tree_view(&tmp.path().join("linux"));
    std::fs::write(view.join("kfuzz.toml"), TEST_KERNEL_MANIFEST).expect("manifest");
    std::fs::create_dir_all(view.join(".kfuzz")).expect(".kfuzz");
    std::os::unix::fs::symlink(shared.join(".kfuzz/build"), view.join(".kfuzz/build"))
        .expect("link the build");
    (tmp, view)
}

/// A private tree view (as `private_test_tree`) whose kfuzz.toml adds the descriptions of
/// `tests/fixtures/<fixtures>` to the tree's own.
pub fn tree_with_descriptions(fixtures: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, tree) = private_test_tree();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixtures);
    let manifest = format!(
        "{TEST_KERNEL_MANIFEST}\n[fuzz]\ndescriptions = [{:?}]\n",
        dir.display().to_string()
    );
    std::fs::write(tree.join("kfuzz.toml"), manifest).expect("manifest");
    (tmp, tree)
}

/// Every qemu-system process whose command line mentions `dir`.
pub fn qemus_in(dir: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-af", "qemu-system"])
        .output()
        .expect("pgrep");
    let needle = dir.display().to_string();
    stdout_of(&out)
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// A fresh copy of the shared build at `dir` (timestamps kept, so make rebuilds only what
/// changes), without the shared build's record.
fn copy_build(shared: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let status = Command::new("cp")
        .arg("-a")
        .arg(shared)
        .arg(dir)
        .status()
        .expect("run cp");
    assert!(status.success(), "copying {} failed", shared.display());
    let _ = std::fs::remove_file(dir.join("kfuzz-build.json"));
}

/// The shared build's make arguments (from its `kfuzz-build.json`), with `O=dir`.
fn make_args(record: &str, dir: &Path) -> Vec<String> {
    let rec: serde_json::Value = serde_json::from_str(record).expect("build record JSON");
    rec["make_args"]
        .as_array()
        .expect("make_args")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .map(|a| {
            if a.starts_with("O=") {
                format!("O={}", dir.display())
            } else {
                a
            }
        })
        .collect()
}

/// A variant of the shared test kernel with some options turned off, built incrementally from a
/// copy of the shared build (cached beside it; rebuilt when the shared build changes). It sits in
/// the same tree view under `.kfuzz/`, so make's command lines are the same and only the files
/// the options touch are compiled again (CONFIG_SIGNALFD: about 30 s). Returns its bzImage.
pub fn variant_kernel(name: &str, disable: &[&str]) -> PathBuf {
    let (tree, _) = build_test_kernel();
    let _guard = lock("test-kernel");
    let shared = tree.join(".kfuzz/build");
    let dir = tree.join(format!(".kfuzz/variant-{name}"));
    let record = std::fs::read_to_string(shared.join("kfuzz-build.json"))
        .expect("the shared build's record");
    let stamp = format!("{record}\n{disable:?}\n");
    let bzimage = dir.join("arch/x86/boot/bzImage");
    if bzimage.is_file()
        && std::fs::read_to_string(dir.join("variant.stamp"))
            .ok()
            .as_deref()
            == Some(&stamp)
    {
        return bzimage;
    }
    copy_build(&shared, &dir);
    let config = dir.join(".config");
    let mut cfg = std::fs::read_to_string(&config).expect("the build's .config");
    for opt in disable {
        cfg = cfg
            .lines()
            .map(|l| {
                if l.starts_with(&format!("CONFIG_{opt}=")) {
                    format!("# CONFIG_{opt} is not set")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    }
    std::fs::write(&config, cfg).expect("write the variant's .config");
    // kfuzz's own make arguments (compiler choice included), with the variant's O=.
    let args = make_args(&record, &dir);
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = Command::new("make")
        .args(&args)
        .arg(format!("-j{jobs}"))
        .args(["olddefconfig", "bzImage"])
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "building the {name} variant failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::fs::read_to_string(&config).expect("the variant's .config");
    for opt in disable {
        assert!(
            cfg.contains(&format!("# CONFIG_{opt} is not set")),
            "CONFIG_{opt} came back on"
        );
    }
    std::fs::write(dir.join("variant.stamp"), stamp).expect("write the stamp");
    bzimage
}

/// The packages of the Debian image the tests share: minbase and `ip`.
pub const TEST_IMAGE_PACKAGES: &str = "iproute2";

/// Builds the shared test image (`kfuzz image build --packages iproute2`) into the cache, once:
/// later calls find it Fresh. Returns its path and kfuzz's JSON `image-built` message.
pub fn build_test_image() -> (PathBuf, serde_json::Value) {
    let _guard = lock("test-image");
    let out = kfuzz()
        .args(["image", "build", "--packages", TEST_IMAGE_PACKAGES])
        .args(["--message-format", "json"])
        .env("KFUZZ_CACHE_DIR", cache_dir())
        .timeout(std::time::Duration::from_secs(30 * 60))
        .output()
        .expect("run kfuzz image build");
    assert!(
        out.status.success(),
        "building the test image failed:\n{}\n{}",
        stderr_of(&out),
        stdout_of(&out)
    );
    let msg = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "image-built")
        .expect("an image-built message");
    let path = PathBuf::from(msg["path"].as_str().expect("the image's path"));
    (path, msg)
}

/// The `run-finished` summary of a `kfuzz run --message-format json`.
pub fn run_summary(out: &std::process::Output) -> serde_json::Value {
    stdout_of(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "run-finished")
        .map(|m| m["summary"].clone())
        .unwrap_or_else(|| {
            panic!(
                "no run-finished message:\n{}\n{}",
                stdout_of(out),
                stderr_of(out)
            )
        })
}

/// The shared test kernel with one source file changed (`edits`: each `(old, new)` text must
/// occur once in it), built from a copy of the shared build without rebuilding the rest: the
/// changed file is compiled with the build's own command line (from its `.cmd` file) and the
/// kernel relinked. The changed copy starts with a `#line` naming the tree's file, so its DWARF
/// lines are the tree's `file` like every other unit's. Cached beside the shared build; rebuilt
/// when it or the edits change. Returns the bzImage (vmlinux is three levels up).
pub fn patched_kernel(name: &str, file: &str, edits: &[(&str, &str)]) -> PathBuf {
    let (tree, _) = build_test_kernel();
    let _guard = lock("test-kernel");
    let shared = tree.join(".kfuzz/build");
    let dir = tree.join(format!(".kfuzz/patched-{name}"));
    let record = std::fs::read_to_string(shared.join("kfuzz-build.json"))
        .expect("the shared build's record");
    let stamp = format!("{record}\n{file}\n{edits:?}\n");
    let bzimage = dir.join("arch/x86/boot/bzImage");
    if bzimage.is_file()
        && std::fs::read_to_string(dir.join("patched.stamp"))
            .ok()
            .as_deref()
            == Some(&stamp)
    {
        return bzimage;
    }
    copy_build(&shared, &dir);

    // The changed source, under the copy.
    let source = tree.join(file);
    let mut text = std::fs::read_to_string(&source).expect("the file to change");
    for (old, new) in edits {
        assert_eq!(text.matches(old).count(), 1, "{old:?} once in {file}");
        text = text.replacen(old, new, 1);
    }
    let changed = dir.join("kfuzz-changed").join(file);
    std::fs::create_dir_all(changed.parent().unwrap()).unwrap();
    std::fs::write(
        &changed,
        format!("#line 1 \"{}\"\n{text}", source.display()),
    )
    .unwrap();

    // The object's command line, as the shared build ran it (`savedcmd_<obj> := …`).
    let obj = file.replace(".c", ".o");
    let (obj_dir, obj_name) = obj.rsplit_once('/').expect("a file in a directory");
    let cmd_file = dir.join(obj_dir).join(format!(".{obj_name}.cmd"));
    let saved = std::fs::read_to_string(&cmd_file).expect("the object's .cmd file");
    let cmd = saved
        .lines()
        .find_map(|l| l.split_once(" := ").map(|(_, c)| c.to_string()))
        .expect("a savedcmd line");
    let src = source.display().to_string();
    assert!(cmd.contains(&src), "{cmd_file:?} compiles {src}");
    let cmd = cmd.replace(&src, &changed.display().to_string());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(&dir)
        .output()
        .expect("run the compiler");
    assert!(
        out.status.success(),
        "compiling the changed {file} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(dir.join(obj_dir).join(format!(".{obj_name}.d")));

    // Relink with kfuzz's own make arguments and this O=.
    let args = make_args(&record, &dir);
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = Command::new("make")
        .args(&args)
        .arg(format!("-j{jobs}"))
        .arg("bzImage")
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "relinking the {name} kernel failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("patched.stamp"), stamp).expect("write the stamp");
    bzimage
}
