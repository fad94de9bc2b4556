//! The description fixtures (`tests/fixtures/descriptions`: every construct of syzkaller's
//! description language kfuzz reads) against the real test tree: constants from its headers
//! (defines worked out by its compiler), the calls kfuzz can run enabled, each of the others
//! disabled alone with its reason, the other architecture's file not loaded; generated
//! programs read back as written.

use crate::common;

use std::path::PathBuf;

use common::{kfuzz, stderr_of, stdout_of};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/descriptions")
}

#[test]
fn every_construct_loads_and_what_cannot_run_is_disabled_alone_with_its_reason() {
    let (tree, _) = common::build_test_kernel();
    let out = kfuzz()
        .args(["syscalls", "--syscalls", "*fx*", "--message-format", "json"])
        .arg("--descriptions")
        .arg(fixtures())
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msgs: Vec<serde_json::Value> = stdout_of(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let enabled: Vec<&str> = msgs
        .iter()
        .filter(|m| m["reason"] == "syscall" && m["enabled"] == true)
        .filter_map(|m| m["name"].as_str())
        .collect();
    for call in [
        "openat$fx_dir",
        "close$fx",
        "write$fx_ints",
        "write$fx_cond",
        "write$fx_lens",
        "write$fx_strings",
        "write$fx_layouts",
        "mmap$fx",
        "mmap$fx64",
        "write$mix_fx",
        "write$bits_fx",
    ] {
        assert!(
            enabled.contains(&call),
            "{call} is not enabled: {enabled:?}"
        );
    }
    let why = |call: &str| -> String {
        msgs.iter()
            .find(|m| m["name"] == call && m["enabled"] == false)
            .and_then(|m| m["why"].as_str())
            .unwrap_or_else(|| panic!("{call} is not disabled"))
            .to_string()
    };
    for (call, reason) in [
        (
            "write$fx_fmt",
            "constructs.txt:141:6: type `fmt` is not supported",
        ),
        ("write$fx_glob", "type `glob` is not supported"),
        ("write$fx_csum", "type `csum` is not supported"),
        ("write$fx_overlay", "`out_overlay` is not supported"),
        (
            "write$fx_unknown_const",
            "constant `FX_NO_SUCH_CONSTANT` is not defined by the tree's headers",
        ),
        (
            "syz_fx_no_such_pseudo",
            "pseudo-syscall `syz_fx_no_such_pseudo` is not implemented",
        ),
        ("write$fx_disabled", "marked (disabled)"),
    ] {
        let w = why(call);
        assert!(w.contains(reason), "{call}: {w}");
    }
    assert!(
        !stdout_of(&out).contains("fx_arm64_only"),
        "a file for arm64 only was loaded"
    );

    // Generated programs of every enabled fixture call print and read back unchanged.
    let dir = tempfile::tempdir().unwrap();
    let gen = kfuzz()
        .args([
            "prog",
            "gen",
            "-n",
            "40",
            "--seed",
            "7",
            "--syscalls",
            "*fx*",
        ])
        .arg("--descriptions")
        .arg(fixtures())
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", stderr_of(&gen));
    let text = stdout_of(&gen);
    for (i, p) in text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        let f = dir.path().join(format!("p{i}.syz"));
        std::fs::write(&f, format!("{}\n", p.trim_end())).unwrap();
    }
    let check = kfuzz()
        .args(["prog", "fmt", "--check"])
        .arg("--descriptions")
        .arg(fixtures())
        .args(
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path()),
        )
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "generated programs do not read back:\n{}\n{text}",
        stderr_of(&check)
    );
    // AUTO values: constants (a define worked out by the tree's compiler: O_RDWR |
    // O_CLOEXEC), conditional fields and options chosen by the values they read, lengths of
    // siblings, parents, named parents, syscall arguments and offsets.
    let written = dir.path().join("auto.syz");
    std::fs::write(
        &written,
        "openat$fx_dir(AUTO, &AUTO=AUTO, AUTO, 0x0)\n\
         write$fx_cond(0xffffffffffffffff, &AUTO={0x2, @value=0x1234, @void, @b=0x5}, AUTO)\n\
         write$fx_cond(0xffffffffffffffff, &AUTO={0x1, @value=0x1234, @void, @b=0x5}, AUTO)\n\
         write$fx_lens(0xffffffffffffffff, &AUTO={AUTO, AUTO, AUTO, AUTO, AUTO, AUTO, AUTO, AUTO, {AUTO, AUTO, \"0102\"}, [0x1, 0x2, 0x3]}, AUTO)\n",
    )
    .unwrap();
    let fmt = kfuzz()
        .args(["prog", "fmt"])
        .arg("--descriptions")
        .arg(fixtures())
        .arg(&written)
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(fmt.status.success(), "{}", stderr_of(&fmt));
    assert_eq!(
        stdout_of(&fmt),
        "openat$fx_dir(0xffffffffffffff9c, &(0x20000000)='/\\x00', 0x80002, 0x0)\n\
         write$fx_cond(0xffffffffffffffff, &(0x20000000)={0x2, @value=0x1234, @void, @b=0x5}, 0x14)\n\
         write$fx_cond(0xffffffffffffffff, &(0x20000000)={0x1, @void, @value=0x0, @a=0x0}, 0xa)\n\
         write$fx_lens(0xffffffffffffffff, &(0x20000000)={0x3, 0xc, 0x3, 0x60, 0x38, 0x8, 0x2, 0x28, {0x38, 0x38, \"0102\"}, [0x1, 0x2, 0x3]}, 0x38)\n"
    );
}
