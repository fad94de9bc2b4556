//! syzkaller's pseudo-calls (`syz_*`) run by kfuzz's executor on the real test kernel, each doing
//! what syzkaller's documentation says, checked through the results of the calls around it; and
//! the C that `kfuzz prog2c` writes for them compiles and gives the same results in the guest.
//! The descriptions are a file of the test's own, declaring the calls as syzkaller does. Calls
//! that need a driver (tun, loop) use the test kernel's CONFIG_TUN and CONFIG_BLK_DEV_LOOP.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{kfuzz, stderr_of, stdout_of};

/// The pseudo-calls as syzkaller's sys/linux declares them, and the calls the tests use around
/// them; numbers rather than constant names, so no header is needed.
const DESCRIPTIONS: &str = r#"
resource fd_tty[fd]
resource fd_dir[fd]
resource sock_nl_generic[fd]
resource sock_packet[fd]
resource pseudo_pid[int32]: 0, 0xffffffffffffffff
resource genl_family_id[int16]

pseudo_open_flags = 0x0, 0x1, 0x2, 0x40, 0x100, 0x800, 0x10000
pseudo_mount_flags = 0x1, 0x2, 0x4, 0x8

syz_open_dev$null(dev ptr[in, string["/dev/null"]], id intptr, flags flags[pseudo_open_flags]) fd
syz_open_dev$proc(dev ptr[in, string["/proc/#/comm"]], id intptr, flags flags[pseudo_open_flags]) fd
syz_open_dev$char(dev const[0xc], major intptr, minor intptr) fd
syz_open_procfs(pid pseudo_pid, file ptr[in, string["comm"]]) fd
syz_open_pts(fd fd_tty, flags flags[pseudo_open_flags]) fd_tty
syz_genetlink_get_family_id(name ptr[in, string], fd sock_nl_generic) genl_family_id
syz_init_net_socket$unix(domain const[1], type const[1], proto const[0]) fd
syz_emit_ethernet(len len[packet], packet ptr[in, array[int8]], frags const[0])
syz_mount_image$tmpfs(fs ptr[in, string["tmpfs"]], dir ptr[in, filename], flags flags[pseudo_mount_flags], opts ptr[in, string], chdir bool8, size len[img], img ptr[in, compressed_image]) fd_dir (no_generate, no_minimize)
syz_mount_image$ext4(fs ptr[in, string["ext4"]], dir ptr[in, filename], flags flags[pseudo_mount_flags], opts ptr[in, string], chdir bool8, size len[img], img ptr[in, compressed_image]) fd_dir (no_generate, no_minimize)

gettid$pseudo() pseudo_pid
openat$ptmx(fd const[0xffffffffffffff9c], file ptr[in, string["/dev/ptmx"]], flags flags[pseudo_open_flags], mode const[0]) fd_tty
openat$in_dir(fd fd_dir, file ptr[in, filename], flags flags[pseudo_open_flags], mode const[0]) fd
ioctl$TIOCSPTLCK(fd fd_tty, cmd const[0x40045431], arg ptr[in, int32])
write$pseudo(fd fd, buf buffer[in], len len[buf])
read$pseudo(fd fd, buf buffer[out], len len[buf])
socket$nl_generic(domain const[16], type const[3], proto const[16]) sock_nl_generic
socket$packet(domain const[17], type const[3], proto const[0xb588]) sock_packet
recvfrom$packet(fd sock_packet, buf buffer[out], len len[buf], flags const[0], addr const[0], addrlen const[0])
"#;

/// `/dev/null` by path, `/proc/1/comm` by `#`, `/dev/null` again as char device 1:3, and this
/// process's, this thread's and a thread's `comm`.
const OPEN_DEV_PROCFS: &str = r#"r0 = syz_open_dev$null(&(0x20000000)='/dev/null\x00', 0x0, 0x2)
write$pseudo(r0, &(0x20000100)='kfuzz', 0x5)
r1 = syz_open_dev$proc(&(0x20000200)='/proc/#/comm\x00', 0x1, 0x0)
read$pseudo(r1, &(0x20000300)=""/64, 0x40)
r2 = syz_open_dev$char(0xc, 0x1, 0x3)
write$pseudo(r2, &(0x20000400)='kfuzz', 0x5)
r3 = syz_open_procfs(0x0, &(0x20000500)='comm\x00')
read$pseudo(r3, &(0x20000600)=""/64, 0x40)
r4 = gettid$pseudo()
syz_open_procfs(r4, &(0x20000700)='comm\x00')
syz_open_procfs(0xffffffffffffffff, &(0x20000800)='comm\x00')
"#;

/// A pty pair: what the slave writes, the master reads (with the tty's `\n` → `\r\n`).
const PTS: &str = r#"r0 = openat$ptmx(0xffffffffffffff9c, &(0x20000000)='/dev/ptmx\x00', 0x102, 0x0)
ioctl$TIOCSPTLCK(r0, 0x40045431, &(0x20000100)=0x0)
r1 = syz_open_pts(r0, 0x102)
write$pseudo(r1, &(0x20000200)='kfuzz\n', 0x6)
read$pseudo(r0, &(0x20000300)=""/64, 0x40)
"#;

/// The controller's own family id (0x10), asked on a socket of the call's own and on the
/// program's; a family that does not exist; a socket in the initial namespace.
const NETLINK: &str = r#"syz_genetlink_get_family_id(&(0x20000000)='nlctrl\x00', 0xffffffffffffffff)
r0 = socket$nl_generic(0x10, 0x3, 0x10)
syz_genetlink_get_family_id(&(0x20000100)='nlctrl\x00', r0)
syz_genetlink_get_family_id(&(0x20000200)='kfuzz-none\x00', r0)
r1 = syz_init_net_socket$unix(0x1, 0x1, 0x0)
close(r1)
"#;

/// A read-only tmpfs (creating in it is EROFS), then a writable one the program moves into
/// (a file made in the current directory appears in it).
const MOUNT_TMPFS: &str = r#"r0 = syz_mount_image$tmpfs(&(0x20000000)='tmpfs\x00', &(0x20000100)='./file0\x00', 0x1, &(0x20000200)='size=1m\x00', 0x0, 0x0, &(0x20000300)="$")
openat$in_dir(r0, &(0x20000400)='./file1\x00', 0x42, 0x0)
r1 = syz_mount_image$tmpfs(&(0x20000500)='tmpfs\x00', &(0x20000600)='./file2\x00', 0x0, &(0x20000700)='size=1m\x00', 0x1, 0x0, &(0x20000800)="$")
openat(0xffffffffffffff9c, &(0x20000900)='./file3\x00', 0x42, 0x0)
openat$in_dir(r1, &(0x20000a00)='./file3\x00', 0x0, 0x0)
"#;

/// After a mounting program: its mounts are gone from the proc's temp dir, and the runner is
/// back in that dir (a relative path lands there).
const AFTER_MOUNT: &str = r#"openat(0xffffffffffffff9c, &(0x20000000)='/tmp/kfuzz-0/file2\x00', 0x0, 0x0)
openat(0xffffffffffffff9c, &(0x20000100)='./file4\x00', 0x42, 0x0)
openat(0xffffffffffffff9c, &(0x20000200)='/tmp/kfuzz-0/file4\x00', 0x0, 0x0)
"#;

/// A 64 KiB ext4 image (mkfs.ext4 -b 1024 -N 16 -O ^has_journal,^resize_inode,^metadata_csum)
/// holding `hello` ("hello from kfuzz\n"), zlib-compressed and in base64, as syzkaller writes
/// images.
const EXT4_IMAGE: &str = "eNrt3b9rE2EYB/D37hLQtMWWKoiDnLgYCkEoODnUteDkv2BDIdGA2qWD6CC4Ors6uCqUDi6l+Ce4WAd/7CJi9/PNXQJWgy4VTe7zCU8ud1wI7+X9Hk+Gu4QA1NVirLVYWax2rEas5Mcd8qoWR6s77YVeCEVx40tS7letV8bvmxutXIqL/TSE4Q5vd6+svv60/vzR+XeNj5urL/7FWF+dOTx4cuH6+8cf7n99urFyLokjnz8yruOVx0cyYfvwGC/P2Dw6KUpTKRvNxYtl/hshLWcnUAdF0QxXQ3hQALUT2/PYAydpJy6r12na6VQ9/OnQSvuDu/dWuoOt2zdD2Su/yZrJ5ka/P3DqhKk391P+D7Mq/0BN+MkP8g/IPyD/gPwD8g/IPyD/gPwD8g/IPzAVymt58u6dwa28193a3m45JAAw84pTroGGunIGBAAAAAAAAAAAAAAAAACA/89Oe6E3rjqN+/O1UN7/7NfxZ+X/IYdwonxufUuO3CYtCcdz27R8wvdgNgIAf9PesP+5PKn/ScPZ3/Q/87GaM9D/PHsYwlJcvoyfO65xh/en/m9J/wcAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAtfQdk4g5FA==";

/// Write `text` into a file and return its path.
fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The tests' descriptions folder, in `dir`.
fn descriptions(dir: &Path) -> PathBuf {
    let d = dir.join("descriptions");
    std::fs::create_dir_all(&d).unwrap();
    file(&d, "pseudo.txt", DESCRIPTIONS);
    d
}

/// Each program's calls (`executed`, `ret`, `errno`), from one `kfuzz execprog` run of them all
/// in order on one proc.
fn execprog(tree: &Path, desc: &Path, progs: &[PathBuf]) -> Vec<Vec<serde_json::Value>> {
    let out = kfuzz()
        .args(["execprog", "--message-format", "json", "--syscalls", "*"])
        .arg("--descriptions")
        .arg(desc)
        .args(progs)
        .current_dir(tree)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let runs: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "executed")
        .collect();
    assert_eq!(runs.len(), progs.len(), "{}", stdout_of(&out));
    runs.iter()
        .map(|r| r["calls"].as_array().unwrap().clone())
        .collect()
}

/// Call `i` succeeded; its return value.
fn ok(calls: &[serde_json::Value], i: usize) -> i64 {
    let c = &calls[i];
    assert_eq!(c["executed"], true, "call {i}: {c}");
    assert_eq!(c["errno"], 0, "call {i} failed: {c}");
    c["ret"].as_i64().unwrap()
}

/// Call `i` failed; its errno.
fn failed(calls: &[serde_json::Value], i: usize) -> i64 {
    let c = &calls[i];
    assert_eq!(c["executed"], true, "call {i}: {c}");
    c["errno"].as_i64().unwrap()
}

#[test]
fn open_dev_procfs_pts_genetlink_and_init_net_socket_do_what_they_say() {
    let (tmp, tree) = common::private_test_tree();
    let desc = descriptions(tmp.path());
    let progs = [
        file(tmp.path(), "open.syz", OPEN_DEV_PROCFS),
        file(tmp.path(), "pts.syz", PTS),
        file(tmp.path(), "netlink.syz", NETLINK),
    ];
    let runs = execprog(&tree, &desc, &progs);

    let open = &runs[0];
    assert!(ok(open, 0) >= 3, "an fd for /dev/null");
    assert_eq!(ok(open, 1), 5, "/dev/null takes the write");
    assert!(
        ok(open, 2) >= 3,
        "/proc/1/comm from `/proc/#/comm` and id 1"
    );
    assert_eq!(ok(open, 3), 5, "pid 1 is `init`: {open:?}");
    assert!(ok(open, 4) >= 3, "char device 1:3");
    assert_eq!(ok(open, 5), 5, "char 1:3 is /dev/null too");
    assert!(ok(open, 6) >= 3);
    assert!(ok(open, 7) > 0, "this process's comm");
    for i in [9, 10] {
        assert!(ok(open, i) >= 3, "a thread's /proc files: {open:?}");
    }

    let pts = &runs[1];
    assert!(ok(pts, 2) >= 3, "the slave of the ptmx: {pts:?}");
    assert_eq!(ok(pts, 3), 6);
    assert_eq!(ok(pts, 4), 7, "`kfuzz\\r\\n` at the master: {pts:?}");

    let nl = &runs[2];
    assert_eq!(ok(nl, 0), 0x10, "nlctrl's id, on a socket of its own");
    assert_eq!(ok(nl, 2), 0x10, "nlctrl's id, on the program's socket");
    assert_eq!(failed(nl, 3), 2, "no such family: ENOENT");
    assert!(ok(nl, 4) >= 3, "a socket in the initial namespace");
    assert_eq!(ok(nl, 5), 0);
}

#[test]
fn mount_image_mounts_tmpfs_and_the_runner_takes_the_mounts_down_after_the_program() {
    let (tmp, tree) = common::private_test_tree();
    let desc = descriptions(tmp.path());
    let progs = [
        file(tmp.path(), "mount.syz", MOUNT_TMPFS),
        file(tmp.path(), "after.syz", AFTER_MOUNT),
    ];
    let runs = execprog(&tree, &desc, &progs);
    let m = &runs[0];
    assert!(ok(m, 0) >= 3, "the mount point, opened: {m:?}");
    assert_eq!(failed(m, 1), 30, "EROFS: a read-only mount: {m:?}");
    assert!(ok(m, 2) >= 3);
    assert!(ok(m, 3) >= 3, "created in the current directory");
    assert!(ok(m, 4) >= 3, "which is the mount: {m:?}");
    let after = &runs[1];
    assert_eq!(failed(after, 0), 2, "the mount point is gone: {after:?}");
    assert!(ok(after, 1) >= 3);
    assert!(
        ok(after, 2) >= 3,
        "the runner is back in its temp dir: {after:?}"
    );
}

#[test]
fn mount_image_mounts_a_compressed_ext4_image_through_a_loop_device() {
    let (tmp, tree) = common::private_test_tree();
    let desc = descriptions(tmp.path());
    let size = kfuzz_prog::image::decode_base64(EXT4_IMAGE.as_bytes())
        .unwrap()
        .len();
    let prog = format!(
        "openat(0xffffffffffffff9c, &(0x20000000)='/dev/loop-control\\x00', 0x2, 0x0)\n\
         r0 = syz_mount_image$ext4(&(0x20000100)='ext4\\x00', &(0x20000200)='./file0\\x00', 0x1, &(0x20000300)='\\x00', 0x0, {size:#x}, &(0x20000400)=\"${EXT4_IMAGE}\")\n\
         r1 = openat$in_dir(r0, &(0x20001000)='./hello\\x00', 0x0, 0x0)\n\
         read$pseudo(r1, &(0x20001100)=\"\"/64, 0x40)\n"
    );
    let runs = execprog(&tree, &desc, &[file(tmp.path(), "ext4.syz", &prog)]);
    let m = &runs[0];
    assert!(
        ok(m, 0) >= 3,
        "the test kernel has /dev/loop-control (CONFIG_BLK_DEV_LOOP=y): {m:?}"
    );
    assert!(ok(m, 1) >= 3, "the image is mounted: {m:?}");
    assert!(ok(m, 2) >= 3, "its file opens: {m:?}");
    assert_eq!(ok(m, 3), 17, "`hello from kfuzz\\n`: {m:?}");
}

#[test]
fn emit_ethernet_puts_a_frame_into_the_stack_through_syz_tun() {
    let (tmp, tree) = common::private_test_tree();
    let desc = descriptions(tmp.path());
    // To aa:aa:aa:aa:aa:aa (syz_tun) from aa:aa:aa:aa:aa:bb, ethertype 0x88b5 (local
    // experimental: only the packet socket bound to it sees the frame), "kfuzz", padding.
    let prog = "openat(0xffffffffffffff9c, &(0x20000000)='/dev/net/tun\\x00', 0x2, 0x0)\n\
         r0 = socket$packet(0x11, 0x3, 0xb588)\n\
         syz_emit_ethernet(0x1e, &(0x20000100)=\"aaaaaaaaaaaaaaaaaaaaaabb88b56b66757a7a0000000000000000000000\", 0x0)\n\
         recvfrom$packet(r0, &(0x20000200)=\"\"/128, 0x80, 0x0, 0x0, 0x0)\n";
    let runs = execprog(&tree, &desc, &[file(tmp.path(), "emit.syz", prog)]);
    let m = &runs[0];
    assert!(
        ok(m, 0) >= 3,
        "the test kernel has /dev/net/tun (CONFIG_TUN=y): {m:?}"
    );
    assert!(ok(m, 1) >= 3, "a packet socket (CONFIG_PACKET): {m:?}");
    assert_eq!(ok(m, 2), 0x1e, "the frame is written: {m:?}");
    assert_eq!(ok(m, 3), 0x1e, "and received by the stack: {m:?}");
}

/// `call N: …` lines as the C program prints them, from execprog's calls; fds (which differ
/// between the executor and a C program) only as success.
fn expected_lines(calls: &[serde_json::Value], values: &[usize]) -> Vec<String> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let errno = c["errno"].as_i64().unwrap();
            if errno != 0 {
                format!("call {i}: -1 errno {errno}")
            } else if values.contains(&i) {
                format!("call {i}: {:#x}", c["ret"].as_i64().unwrap() as u64)
            } else {
                format!("call {i}: ok")
            }
        })
        .collect()
}

#[test]
fn prog2c_of_pseudo_calls_compiles_warning_free_and_does_the_same_in_the_guest() {
    let (tmp, tree) = common::private_test_tree();
    let desc = descriptions(tmp.path());
    // Each program, and the calls whose value (not an fd) is compared.
    let chosen: [(&str, &str, &[usize]); 4] = [
        ("open", OPEN_DEV_PROCFS, &[1, 3, 5]),
        ("pts", PTS, &[1, 3, 4]),
        ("netlink", NETLINK, &[0, 2, 3, 5]),
        ("mount", MOUNT_TMPFS, &[]),
    ];
    let mut files = Vec::new();
    let mut script = String::new();
    let mut expected = Vec::new();
    for (name, text, values) in chosen {
        let p = file(tmp.path(), &format!("{name}.syz"), text);
        let c = tmp.path().join(format!("{name}.c"));
        let o = kfuzz()
            .args(["prog2c", "-q", "--syscalls", "*", "--descriptions"])
            .arg(&desc)
            .arg("-o")
            .arg(&c)
            .arg(&p)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr_of(&o));
        let src = std::fs::read_to_string(&c).unwrap();
        assert!(!src.contains("__NR_syz_"), "{src}");
        let bin = tree.join(format!("pseudo-{name}"));
        let o = std::process::Command::new("gcc")
            .args(["-static", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
            .arg(&bin)
            .arg(&c)
            .arg("-lz")
            .output()
            .expect("gcc");
        assert!(
            o.status.success(),
            "{name}.c does not compile warning-free:\n{}\n{src}",
            String::from_utf8_lossy(&o.stderr)
        );
        files.push(format!(
            "{{ host = \"pseudo-{name}\", guest = \"/usr/bin/pseudo-{name}\" }}"
        ));
        // Each in a directory of its own, as the executor runs each program in its temp dir.
        script.push_str(&format!(
            "echo == {name}; mkdir -p /tmp/{name}; cd /tmp/{name}; /usr/bin/pseudo-{name} 2>&1; "
        ));
        let runs = execprog(&tree, &desc, &[p]);
        expected.push((name, expected_lines(&runs[0], values)));
    }
    let manifest = tree.join("kfuzz.toml");
    let mut m = std::fs::read_to_string(&manifest).unwrap();
    m.push_str(&format!("[guest]\nfiles = [{}]\n", files.join(", ")));
    std::fs::write(&manifest, m).unwrap();
    let out = kfuzz()
        .args(["boot", "--", "sh", "-c", &script])
        .current_dir(&tree)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    for (name, want) in expected {
        let got: Vec<String> = text
            .split(&format!("== {name}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no output of {name}:\n{text}"))
            .lines()
            .take_while(|l| l.starts_with("call "))
            .map(|l| {
                let l = l.split(" (").next().unwrap().to_string();
                let (head, value) = l.split_once(": ").unwrap();
                let i: usize = head["call ".len()..].parse().unwrap();
                let values = chosen.iter().find(|c| c.0 == name).unwrap().2;
                if value.starts_with("0x") && !values.contains(&i) {
                    format!("{head}: ok")
                } else {
                    l
                }
            })
            .collect();
        assert_eq!(got, want, "{name}: C in the guest vs execprog\n{text}");
    }
}
