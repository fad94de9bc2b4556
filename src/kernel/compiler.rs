//! Which C compiler builds the kernel, and whether it can instrument for KCOV. Probes by
//! compiling a tiny file; never touches the tree.

use std::path::Path;

use anyhow::{bail, Context};

use crate::manifest::Compiler;

#[derive(Debug, Clone)]
pub struct CompilerInfo {
    /// The command (`gcc`, `clang`, or `$CC`).
    pub cc: String,
    /// First line of `cc --version`.
    pub version: String,
    pub trace_pc: bool,
    pub trace_cmp: bool,
    /// Extra `make` arguments: `CC=…` or `LLVM=1`.
    pub make_args: Vec<String>,
}

/// The compiler the build will use: `$CC` if set, else the manifest's choice.
pub fn detect(choice: Compiler) -> anyhow::Result<CompilerInfo> {
    let env_cc = std::env::var("CC").ok().filter(|s| !s.trim().is_empty());
    let llvm = std::env::var("LLVM")
        .ok()
        .filter(|s| !s.is_empty() && s != "0");
    let (cc, make_args) = match (&env_cc, choice, &llvm) {
        (Some(cc), _, _) => (cc.clone(), vec![format!("CC={cc}")]),
        (None, Compiler::Clang, _) | (None, _, Some(_)) => {
            ("clang".to_string(), vec!["LLVM=1".to_string()])
        }
        (None, Compiler::Gcc, None) => ("gcc".to_string(), Vec::new()),
    };
    let program = cc.split_whitespace().next().unwrap_or("gcc").to_string();
    let path = which::which(&program).with_context(|| {
        let pkg = if program.contains("clang") {
            "clang lld llvm"
        } else {
            "gcc"
        };
        format!("compiler `{program}` not found in PATH (Debian: apt-get install {pkg})")
    })?;
    let version = duct::cmd!(&path, "--version")
        .stderr_null()
        .read()
        .with_context(|| format!("cannot run `{program} --version`"))?
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let src = dir.path().join("probe.c");
    std::fs::write(&src, "int probe(int a, int b) { return a < b ? a : b; }\n")
        .context("cannot write the compiler probe")?;
    let trace_pc = accepts(&path, &src, "-fsanitize-coverage=trace-pc");
    let trace_cmp = accepts(&path, &src, "-fsanitize-coverage=trace-cmp");
    let info = CompilerInfo {
        cc,
        version,
        trace_pc,
        trace_cmp,
        make_args,
    };
    if !info.trace_pc {
        bail!(
            "{} ({}) does not accept -fsanitize-coverage=trace-pc, which KCOV needs; \
             use gcc >= 6 or clang (compiler = \"clang\" in kfuzz.toml, or CC=…)",
            info.cc,
            info.version
        );
    }
    Ok(info)
}

fn accepts(cc: &Path, src: &Path, flag: &str) -> bool {
    let out = src.with_extension("o");
    duct::cmd!(cc, flag, "-Werror", "-c", src, "-o", &out)
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
