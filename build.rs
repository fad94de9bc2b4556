//! Builds the guest executor (`crates/kfuzz-executor`) as a static binary and embeds it in kfuzz,
//! so that the initramfs can be written from any directory, with no toolchain at run time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = "x86_64-unknown-linux-gnu";
    let target_dir = out.join("executor");
    for dir in ["crates/kfuzz-executor", "crates/kfuzz-wire", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--offline",
        "-p",
        "kfuzz-executor",
        "--target",
        target,
    ])
    .arg("--manifest-path")
    .arg(root.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_BUILD_RUSTFLAGS")
    .env_remove("CARGO_TARGET_DIR")
    .env_remove("CARGO_BUILD_TARGET");
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_PROFILE_") || k.starts_with("CARGO_FEATURE_") {
            cmd.env_remove(k);
        }
    }
    embed_descriptions(&root, &out);
    let status = cmd.status().expect("run cargo to build kfuzz-executor");
    assert!(
        status.success(),
        "building kfuzz-executor (static, {target}) failed"
    );
    let exe = target_dir.join(target).join("release/kfuzz-executor");
    println!("cargo:rustc-env=KFUZZ_EXECUTOR_PATH={}", exe.display());
}

/// `descriptions.rs` in OUT_DIR: every `descriptions/linux/*.txt` as `(name, text)`.
fn embed_descriptions(root: &std::path::Path, out: &std::path::Path) {
    let dir = root.join("descriptions/linux");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from("pub const EMBEDDED: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("descriptions.rs"), code).expect("write descriptions.rs");
}
