//! VMs booted into a disk image instead of the initramfs: a small ext4 image made here from the
//! host's static busybox (the switch of root, `[guest] setup`, a failing setup), and the Debian
//! image the tests build once (`ip` from the image, a short `kfuzz run`). Each image is hashed
//! before and after: VMs write only to their own copy-on-write layer.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// A 64 MiB ext4 image holding busybox and `/etc/marker`, made without root (`mkfs.ext4 -d`).
fn busybox_image(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "run", "tmp", "proc", "sys", "dev", "etc", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "cat", "echo", "uname"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/marker"), "hello from the image\n").unwrap();
    let img = dir.join("busybox.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let out = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&root)
        .arg(&img)
        .output()
        .expect("mkfs.ext4 (e2fsprogs)");
    assert!(out.status.success(), "{}", stderr_of(&out));
    img
}

fn with_guest(tree: &Path, guest: &str) {
    std::fs::write(
        tree.join("kfuzz.toml"),
        format!("{}\n[guest]\n{guest}\n", common::TEST_KERNEL_MANIFEST),
    )
    .unwrap();
}

#[test]
fn a_disk_image_becomes_the_root_is_set_up_and_stays_unchanged() {
    let (tmp, tree) = common::private_test_tree();
    let img = busybox_image(tmp.path());
    let before = sha256(&img);
    with_guest(
        &tree,
        &format!(
            "image = {:?}\nsetup = [\"echo set up with $(cat /etc/marker)\"]",
            img.display().to_string()
        ),
    );
    let out = kfuzz()
        .args(["boot", "--", "cat", "/etc/marker"])
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "hello from the image\n");
    let err = stderr_of(&out);
    assert!(err.contains("set up with hello from the image"), "{err}");
    // A setup command that fails stops the run with its message and output.
    with_guest(
        &tree,
        &format!(
            "image = {:?}\nsetup = [\"echo no such device; exit 3\"]",
            img.display().to_string()
        ),
    );
    let out = kfuzz()
        .args(["run", "--syscalls", "shm*", "--duration", "120s"])
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("setup command `echo no such device; exit 3` failed (exit status 3)")
            && err.contains("no such device"),
        "{err}"
    );
    assert_eq!(sha256(&img), before, "the image was written");
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}

#[test]
fn the_debian_image_runs_its_own_ip_and_fuzzing_on_it_grows_a_corpus() {
    let (img, _) = common::build_test_image();
    let before = sha256(&img);
    let (_tmp, tree) = common::private_test_tree();
    with_guest(
        &tree,
        &format!("packages = [{:?}]", common::TEST_IMAGE_PACKAGES),
    );
    let out = kfuzz()
        .args(["boot", "--image", "debian", "--", "ip", "-br", "link"])
        .env("KFUZZ_CACHE_DIR", common::cache_dir())
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let links = stdout_of(&out);
    assert!(
        links.lines().any(|l| l.starts_with("lo ")),
        "iproute2's ip lists the loopback device: {links:?}"
    );
    let work = tree.join("work");
    let out = kfuzz()
        .args([
            "run",
            "--image",
            "debian",
            "--syscalls",
            "shm*",
            "--vms",
            "1",
        ])
        .args(["--duration", "90s", "--no-reproduce", "--workdir"])
        .arg(&work)
        .env("KFUZZ_CACHE_DIR", common::cache_dir())
        .current_dir(&tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let corpus = std::fs::read_dir(work.join("corpus"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "syz"))
                .count()
        })
        .unwrap_or(0);
    assert!(corpus > 0, "no corpus on the image:\n{}", stderr_of(&out));
    assert_eq!(sha256(&img), before, "the cached image was written");
    assert!(common::qemus_in(&tree.join(".kfuzz")).is_empty());
}
