//! `kfuzz build`: the kernel's `.config` (base + fragments, verified) and the out-of-tree build in
//! `.kfuzz/build`. Knows nothing of clap; reports through `Shell`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::compiler::{self, CompilerInfo};
use super::fragments;
use super::kconfig::{self, DotConfig, Mismatch, Request};
use super::tree::KernelTree;
use crate::fsutil;
use crate::manifest::{ConfigBase, Manifest};
use crate::shell::Shell;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub config_only: bool,
    pub jobs: Option<u32>,
}

/// A kernel that a build produced (or found fresh): the only way to get one.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltKernel {
    pub release: String,
    pub bzimage: PathBuf,
    pub vmlinux: PathBuf,
    pub config: PathBuf,
    /// Nothing had changed: make was not run.
    pub fresh: bool,
}

#[derive(Debug)]
pub enum BuildOutcome {
    ConfigOnly { config: PathBuf, fresh: bool },
    Kernel(BuiltKernel),
}

/// What the last successful build recorded, to tell a no-op rebuild without running make.
#[derive(Debug, Serialize, Deserialize)]
struct BuildStamp {
    config_sha256: String,
    make_args: Vec<String>,
    /// When that build started (seconds since the epoch); sources newer than this are changes.
    started: u64,
    /// How many make steps (CC, LD, …) it printed: the length of the next progress bar.
    steps: u64,
}

const CONFIG_STAMP: &str = "kfuzz-config.stamp";
const BUILD_STAMP: &str = "kfuzz-build.json";

pub fn build(
    tree: &KernelTree,
    manifest: &Manifest,
    opts: &BuildOptions,
    shell: &Shell,
) -> anyhow::Result<BuildOutcome> {
    let _lock = tree.lock()?;
    let cc = compiler::detect(manifest.kernel.compiler)?;
    shell.verbose(
        "Compiler",
        format!(
            "{} ({}), trace-pc: yes, trace-cmp: {}",
            cc.cc,
            cc.version,
            if cc.trace_cmp { "yes" } else { "no" }
        ),
    );
    let build_dir = tree.build_dir();
    std::fs::create_dir_all(&build_dir)
        .with_context(|| format!("cannot create {}", build_dir.display()))?;
    let log_path = tree.work_dir().join("build.log");
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let jobs = opts
        .jobs
        .filter(|j| *j > 0)
        .or(Some(manifest.kernel.jobs).filter(|j| *j > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let make = Make {
        tree,
        build_dir: &build_dir,
        cc: &cc,
        jobs,
        log_path: &log_path,
    };

    let started = Instant::now();
    let config_fresh = configure(&make, manifest, &mut log, shell)?;
    let config_path = build_dir.join(".config");
    if opts.config_only {
        shell.status(
            "Finished",
            format!(
                "{} ({:.1}s)",
                config_path.display(),
                started.elapsed().as_secs_f64()
            ),
        );
        return Ok(BuildOutcome::ConfigOnly {
            config: config_path,
            fresh: config_fresh,
        });
    }

    let config_sha = sha256_file(&config_path)?;
    let bzimage = build_dir.join("arch/x86/boot/bzImage");
    let vmlinux = build_dir.join("vmlinux");
    let stamp_path = build_dir.join(BUILD_STAMP);
    let stamp: Option<BuildStamp> = std::fs::read(&stamp_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let release = || -> anyhow::Result<String> {
        let p = build_dir.join("include/config/kernel.release");
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .trim()
            .to_string())
    };
    if let Some(s) = &stamp {
        if s.config_sha256 == config_sha
            && s.make_args == make.args()
            && bzimage.is_file()
            && vmlinux.is_file()
            && !sources_newer_than(&tree.root, s.started)
        {
            let kernel = BuiltKernel {
                release: release()?,
                bzimage,
                vmlinux,
                config: config_path,
                fresh: true,
            };
            shell.status(
                "Fresh",
                format!(
                    "linux {} (nothing changed since the last build)",
                    kernel.release
                ),
            );
            finished(shell, &kernel, started.elapsed());
            return Ok(BuildOutcome::Kernel(kernel));
        }
    }
    let _ = std::fs::remove_file(&stamp_path);

    let build_started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    shell.status(
        "Compiling",
        format!(
            "linux {} ({} base, -j{jobs}, log: {})",
            tree.version,
            manifest.kernel.base,
            log_path.display()
        ),
    );
    let expected = stamp.as_ref().map(|s| s.steps).unwrap_or(0);
    let steps = make.run_with_progress(&["bzImage"], expected, &mut log, shell)?;
    let kernel = BuiltKernel {
        release: release()?,
        bzimage,
        vmlinux,
        config: config_path,
        fresh: false,
    };
    for p in [&kernel.bzimage, &kernel.vmlinux] {
        if !p.is_file() {
            bail!(
                "make succeeded but {} is missing (see {})",
                p.display(),
                log_path.display()
            );
        }
    }
    let stamp = BuildStamp {
        config_sha256: config_sha,
        make_args: make.args(),
        started: build_started,
        steps,
    };
    fsutil::write_atomic(&stamp_path, &serde_json::to_vec_pretty(&stamp)?)?;
    finished(shell, &kernel, started.elapsed());
    Ok(BuildOutcome::Kernel(kernel))
}

fn finished(shell: &Shell, kernel: &BuiltKernel, elapsed: Duration) {
    shell.status(
        "Finished",
        format!("linux {} in {}", kernel.release, human_duration(elapsed)),
    );
    shell.println(format!("bzImage: {}", kernel.bzimage.display()));
    shell.println(format!("vmlinux: {}", kernel.vmlinux.display()));
    #[derive(Serialize)]
    struct Msg<'a> {
        reason: &'static str,
        #[serde(flatten)]
        kernel: &'a BuiltKernel,
        elapsed_secs: f64,
    }
    shell.json(&Msg {
        reason: "build-finished",
        kernel,
        elapsed_secs: elapsed.as_secs_f64(),
    });
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Generates `.config` unless its inputs are unchanged; returns true when it was fresh.
fn configure(
    make: &Make<'_>,
    manifest: &Manifest,
    log: &mut std::fs::File,
    shell: &Shell,
) -> anyhow::Result<bool> {
    let tree = make.tree;
    let k = &manifest.kernel;
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(format!("{:?}\0{:?}\0{:?}\0", k.base, k.config, make.args()));
    hasher.update(&make.cc.version);

    // Requests, in merge order. The tree's kvm_guest.config is merged but not verified: it is
    // the tree's, and some of its lines do not apply to a tiny base.
    let mut unverified: Vec<Request> = Vec::new();
    let mut requests: Vec<Request> = Vec::new();
    if !matches!(k.base, ConfigBase::File(_)) {
        let p = tree.root.join("kernel/configs/kvm_guest.config");
        if let Ok(text) = std::fs::read_to_string(&p) {
            hasher.update(&text);
            unverified =
                kconfig::KconfigFragment::parse("kernel/configs/kvm_guest.config", &text)?.requests;
        }
    }
    let mut names: Vec<String> = Vec::new();
    if k.base == ConfigBase::Minimal {
        names.push("minimal".into());
    }
    names.extend(k.fragments.iter().cloned());
    for name in &names {
        let frag = fragments::resolve(name, &tree.root)?;
        hasher.update(format!("{name}\0{:?}\0", frag.requests));
        requests.extend(frag.requests);
    }
    requests.extend(k.config.iter().map(|c| Request {
        symbol: c.symbol.clone(),
        value: c.value.clone(),
        origin: format!("{}: [kernel] config", manifest.path.display()),
    }));
    let base_text = match &k.base {
        ConfigBase::File(p) => {
            let path = tree.root.join(p);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read the base config {} named in kfuzz.toml",
                    path.display()
                )
            })?;
            hasher.update(&text);
            Some(text)
        }
        _ => None,
    };
    let inputs = hex::encode(hasher.finalize());

    let config_path = make.build_dir.join(".config");
    let stamp_path = make.build_dir.join(CONFIG_STAMP);
    if let (Ok(stamp), Ok(current)) = (
        std::fs::read_to_string(&stamp_path),
        sha256_file(&config_path),
    ) {
        if stamp.trim() == format!("{inputs} {current}") {
            shell.verbose(
                "Fresh",
                format!("{} (inputs unchanged)", config_path.display()),
            );
            return Ok(true);
        }
    }
    let _ = std::fs::remove_file(&stamp_path);

    let frag_list = if k.fragments.is_empty() {
        String::new()
    } else {
        format!(" + {}", k.fragments.join(", "))
    };
    shell.status(
        "Configuring",
        format!("linux {} ({}{frag_list})", tree.version, k.base),
    );
    match &k.base {
        ConfigBase::Minimal => make.run_quiet(&["tinyconfig"], log)?,
        ConfigBase::Defconfig => make.run_quiet(&["x86_64_defconfig"], log)?,
        ConfigBase::File(_) => {
            fsutil::write_atomic(&config_path, base_text.unwrap_or_default().as_bytes())?;
        }
    }
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let mut config = DotConfig::parse(&text);
    config.merge(&unverified);
    config.merge(&requests);
    fsutil::write_atomic(&config_path, config.to_text().as_bytes())?;
    make.run_quiet(&["olddefconfig"], log)?;

    let final_text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let final_config = DotConfig::parse(&final_text);
    let mismatches = kconfig::verify(&requests, &final_config);
    if !mismatches.is_empty() {
        let mut msg = format!(
            "{} requested config option{} did not stick after `make olddefconfig` ({}):",
            mismatches.len(),
            if mismatches.len() == 1 { "" } else { "s" },
            config_path.display()
        );
        for m in &mismatches {
            msg.push_str(&format!("\n  {m}"));
            for line in explain(&tree.root, m, &final_config) {
                msg.push_str(&format!("\n      {line}"));
            }
        }
        #[derive(Serialize)]
        struct Msg<'a> {
            reason: &'static str,
            symbol: &'a str,
            requested: &'a str,
            got: Option<&'a str>,
            origin: &'a str,
        }
        for m in &mismatches {
            shell.json(&Msg {
                reason: "config-mismatch",
                symbol: &m.request.symbol,
                requested: &m.request.value,
                got: m.got.as_deref(),
                origin: &m.request.origin,
            });
        }
        bail!(msg);
    }
    shell.status(
        "Verified",
        format!(
            "{} requested options in {}",
            kconfig::effective_requests(&requests).len(),
            config_path.display()
        ),
    );
    fsutil::write_atomic(
        &stamp_path,
        format!("{inputs} {}\n", sha256_file(&config_path)?).as_bytes(),
    )?;
    Ok(false)
}

/// Lines explaining why a symbol did not stick: its unmet `depends on` from the tree's Kconfig.
fn explain(root: &Path, m: &Mismatch, config: &DotConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut defs = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| {
            e.depth() != 1 || !matches!(e.file_name().to_str(), Some(".kfuzz" | ".git"))
        })
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || !name.starts_with("Kconfig") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if !text.contains(m.request.symbol.as_str()) {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        defs.extend(kconfig::find_definitions(
            &rel.display().to_string(),
            &text,
            &m.request.symbol,
        ));
    }
    if defs.is_empty() {
        out.push(format!(
            "no `config {}` in this tree's Kconfig files: the symbol does not exist here",
            m.request.symbol
        ));
        return out;
    }
    for d in &defs {
        let unmet: Vec<&String> = d
            .depends_on
            .iter()
            .filter(|dep| kconfig::eval_expr(dep, config) == Some(false))
            .collect();
        for dep in &unmet {
            let values = kconfig::dependency_values(dep, config)
                .into_iter()
                .map(|(s, v)| format!("{s}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            out.push(format!(
                "{}:{}: unmet `depends on {dep}` [{values}]",
                d.file, d.line
            ));
        }
        if unmet.is_empty() && !d.has_prompt && m.request.value != "n" {
            out.push(format!(
                "{}:{}: CONFIG_{} has no prompt: it is set only when another option selects it",
                d.file, d.line, m.request.symbol
            ));
        }
    }
    out
}

struct Make<'a> {
    tree: &'a KernelTree,
    build_dir: &'a Path,
    cc: &'a CompilerInfo,
    jobs: u32,
    log_path: &'a Path,
}

impl Make<'_> {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "-C".to_string(),
            self.tree.root.display().to_string(),
            format!("O={}", self.build_dir.display()),
        ];
        a.extend(self.cc.make_args.iter().cloned());
        a
    }

    fn command(&self, targets: &[&str]) -> duct::Expression {
        let mut args = self.args();
        args.push(format!("-j{}", self.jobs));
        args.extend(targets.iter().map(|t| t.to_string()));
        // make (and, through it, the compilers) stops when kfuzz dies, even by SIGTERM or
        // SIGKILL, instead of building on unseen. make is started from the thread that waits
        // for it, so the parent-death signal cannot fire early.
        duct::cmd("make", args)
            .stderr_to_stdout()
            .unchecked()
            .before_spawn(|cmd| {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                Ok(())
            })
    }

    /// Runs make, everything into the log; on failure the error names the first compiler error.
    fn run_quiet(&self, targets: &[&str], log: &mut std::fs::File) -> anyhow::Result<()> {
        self.run_with(targets, log, |_| {})?;
        Ok(())
    }

    /// Runs make with a progress bar (terminal) or a line every 30 s (otherwise); returns the
    /// number of build steps make printed.
    fn run_with_progress(
        &self,
        targets: &[&str],
        expected: u64,
        log: &mut std::fs::File,
        shell: &Shell,
    ) -> anyhow::Result<u64> {
        let bar = if shell.is_term() {
            let bar = if expected > 0 {
                indicatif::ProgressBar::new(expected)
            } else {
                indicatif::ProgressBar::new_spinner()
            };
            let template = if expected > 0 {
                "    Building [{bar:30}] {pos}/{len} {wide_msg}"
            } else {
                "    Building {spinner} {pos} steps {wide_msg}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            Some(bar)
        } else {
            None
        };
        let mut last_line = Instant::now();
        let started = Instant::now();
        let result = self.run_with(targets, log, |step| {
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(step.to_string());
            } else if last_line.elapsed() >= Duration::from_secs(30) {
                last_line = Instant::now();
                shell.status(
                    "Building",
                    format!(
                        "{} ({}, {step})",
                        human_duration(started.elapsed()),
                        progress_text(step, expected)
                    ),
                );
            }
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result
    }

    fn run_with(
        &self,
        targets: &[&str],
        log: &mut std::fs::File,
        mut on_step: impl FnMut(&str),
    ) -> anyhow::Result<u64> {
        let _ = writeln!(
            log,
            "$ make {} -j{} {}",
            self.args().join(" "),
            self.jobs,
            targets.join(" ")
        );
        let reader = self
            .command(targets)
            .reader()
            .context("cannot run make (Debian: apt-get install make)")?;
        let mut steps = 0u64;
        let mut first_error: Option<String> = None;
        let mut lines = BufReader::new(&reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = lines
                .read_until(b'\n', &mut buf)
                .context("reading make output")?;
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            let _ = log.write_all(line.as_bytes());
            let line = line.trim_end();
            if first_error.is_none() && is_error_line(line) {
                first_error = Some(line.to_string());
            }
            if let Some(step) = step_of(line) {
                steps += 1;
                on_step(step);
            }
        }
        let _ = log.flush();
        let status = reader
            .try_wait()
            .context("waiting for make")?
            .map(|o| o.status);
        match status {
            Some(s) if s.success() => Ok(steps),
            _ => bail!(
                "`make {}` failed{}\nfull log: {}",
                targets.join(" "),
                first_error.map(|e| format!(":\n  {e}")).unwrap_or_default(),
                self.log_path.display()
            ),
        }
    }
}

fn progress_text(_step: &str, expected: u64) -> String {
    if expected > 0 {
        format!("about {expected} steps in all")
    } else {
        "first build".to_string()
    }
}

/// `  CC      mm/shmem.o` → `mm/shmem.o`: a kbuild step line.
fn step_of(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("  ")?;
    let (verb, target) = rest.split_once(' ')?;
    let verb_ok = !verb.is_empty()
        && verb
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"_[]-".contains(&b));
    verb_ok.then(|| target.trim()).filter(|t| !t.is_empty())
}

fn is_error_line(line: &str) -> bool {
    line.contains(": error:")
        || line.contains(": fatal error:")
        || line.starts_with("make: ***")
        || line.contains("*** ")
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// True when any source file in the tree changed after `since` (seconds since the epoch).
/// Skips `.git`, `.kfuzz` and the manifest (its kernel part is hashed with the config).
fn sources_newer_than(root: &Path, since: u64) -> bool {
    let since = UNIX_EPOCH + Duration::from_secs(since);
    walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| {
            e.depth() != 1
                || !matches!(
                    e.file_name().to_str(),
                    Some(".kfuzz" | ".git" | "kfuzz.toml")
                )
        })
        .filter_map(Result::ok)
        .any(|e| {
            e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t > since)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbuild_step_lines() {
        assert_eq!(step_of("  CC      mm/shmem.o"), Some("mm/shmem.o"));
        assert_eq!(step_of("  LD [M]  fs/x.ko"), Some("[M]  fs/x.ko"));
        assert_eq!(
            step_of("  HOSTCC  scripts/basic/fixdep"),
            Some("scripts/basic/fixdep")
        );
        assert_eq!(step_of("make[1]: Entering directory"), None);
        assert_eq!(step_of("  cc1: warning"), None);
    }

    #[test]
    fn error_lines() {
        assert!(is_error_line(
            "mm/shmem.c:12:3: error: expected ';' before '}' token"
        ));
        assert!(!is_error_line("mm/shmem.c:12:3: warning: unused variable"));
    }
}
