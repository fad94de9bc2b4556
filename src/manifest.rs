//! `kfuzz.toml`: the manifest a user edits. Parsing, defaults, and validation with `file:line:col`
//! errors. It reads the manifest and checks that the files it names exist; nothing else.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub const MANIFEST_NAME: &str = "kfuzz.toml";

/// The fragments `kfuzz init` enables, in merge order (later wins).
pub const DEFAULT_FRAGMENTS: &[&str] = &[
    "fuzz-base",
    "qemu-guest",
    "kcov",
    "kasan",
    "lockdep",
    "debug",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    kernel: RawKernel,
    #[serde(default)]
    vm: VmConfig,
    #[serde(default)]
    fuzz: FuzzConfig,
    #[serde(default)]
    guest: GuestConfig,
    #[serde(default)]
    regress: RegressConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressConfig {
    /// `kfuzz regress` exits 2 when more than this percentage of the corpus's recorded signal
    /// is no longer reached.
    pub lost_coverage_percent: f64,
    /// Corpus folders replayed besides the work dir's (relative to the tree root), e.g. a
    /// regression corpus committed next to a subsystem.
    pub corpus: Vec<PathBuf>,
    /// Where `kfuzz corpus export` writes when given no folder (relative to the tree root).
    pub export: Option<PathBuf>,
}

impl Default for RegressConfig {
    fn default() -> Self {
        RegressConfig {
            lost_coverage_percent: 5.0,
            corpus: Vec::new(),
            export: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    #[serde(default = "default_base")]
    base: Spanned<String>,
    #[serde(default = "default_fragments")]
    fragments: Vec<Spanned<String>>,
    #[serde(default)]
    config: Vec<Spanned<String>>,
    #[serde(default)]
    compiler: Compiler,
    #[serde(default)]
    jobs: u32,
}

impl Default for RawKernel {
    fn default() -> Self {
        RawKernel {
            base: default_base(),
            fragments: default_fragments(),
            config: Vec::new(),
            compiler: Compiler::default(),
            jobs: 0,
        }
    }
}

fn default_base() -> Spanned<String> {
    Spanned::new(0..0, "minimal".to_string())
}

fn default_fragments() -> Vec<Spanned<String>> {
    DEFAULT_FRAGMENTS
        .iter()
        .map(|f| Spanned::new(0..0, f.to_string()))
        .collect()
}

/// Where the kernel's starting `.config` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigBase {
    /// `tinyconfig` + 64-bit + what the kfuzz guest and the fuzzed subsystems need.
    Minimal,
    /// `x86_64_defconfig` + `kvm_guest.config`.
    Defconfig,
    /// The user's own `.config` (relative paths are relative to the kernel tree).
    File(PathBuf),
}

impl fmt::Display for ConfigBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigBase::Minimal => f.write_str("minimal"),
            ConfigBase::Defconfig => f.write_str("defconfig"),
            ConfigBase::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compiler {
    #[default]
    Gcc,
    /// clang with the whole LLVM toolchain (`LLVM=1`).
    Clang,
}

/// One `CONFIG_X=value` item from `[kernel] config`, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigItem {
    pub symbol: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub base: ConfigBase,
    pub fragments: Vec<String>,
    pub config: Vec<ConfigItem>,
    pub compiler: Compiler,
    /// 0 = one job per CPU.
    pub jobs: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmConfig {
    pub count: u32,
    pub cpus: u32,
    pub memory_mb: u32,
    pub qemu_args: Vec<String>,
    /// Appended to the kernel command line kfuzz builds.
    pub cmdline: String,
    /// Start VMs from a snapshot of a ready VM (saved after the first boot, in
    /// `.kfuzz/snapshots`) instead of booting each; false: every VM boots.
    pub snapshots: bool,
}

/// What goes into the guest besides kfuzz's own executor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestConfig {
    pub files: Vec<GuestFile>,
    /// A disk image to boot into instead of the initramfs: a path (relative to the tree) to a
    /// raw ext4 image, a name in kfuzz's image cache, or "debian" (built with `packages`).
    pub image: Option<String>,
    /// Debian packages of the "debian" image (`kfuzz image build`'s defaults when empty).
    pub packages: Vec<String>,
    /// Commands run in each guest (`/bin/sh -c`) once it is up, before any program.
    pub setup: Vec<String>,
}

/// A host file copied into the initramfs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GuestFile {
    /// Path on the host, relative to the tree root.
    pub host: PathBuf,
    /// Absolute path in the guest.
    pub guest: String,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            count: 2,
            cpus: 1,
            memory_mb: 1024,
            qemu_args: Vec::new(),
            cmdline: String::new(),
            snapshots: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FuzzConfig {
    pub syscalls: Vec<String>,
    /// Globs of calls never to fuzz.
    pub disable: Vec<String>,
    /// Extra description folders (relative to the tree root).
    pub descriptions: Vec<PathBuf>,
    pub workdir: PathBuf,
    /// Programs run concurrently in each VM.
    pub procs: u32,
    /// Each call in a thread of its own.
    pub threaded: bool,
    /// Some programs run again with pairs of calls racing.
    pub collide: bool,
    /// Reproduce each new crash while fuzzing, on a VM of its own.
    pub reproduce: bool,
    /// Serve the dashboard of `kfuzz run` at this address (`127.0.0.1:8080`); off when unset.
    pub http: Option<String>,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig {
            syscalls: vec!["shm*".into(), "msg*".into(), "sem*".into()],
            disable: Vec::new(),
            descriptions: Vec::new(),
            workdir: PathBuf::from(".kfuzz/work"),
            procs: 2,
            threaded: false,
            collide: false,
            reproduce: true,
            http: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub kernel: KernelConfig,
    pub vm: VmConfig,
    pub fuzz: FuzzConfig,
    pub guest: GuestConfig,
    pub regress: RegressConfig,
    /// Where some values are written, for errors found after parsing.
    pub origins: Origins,
}

/// A 1-based line and column in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where values checked after parsing are written (`None` or empty: not written, the default).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub base: Option<Position>,
    /// One per `[kernel] fragments` entry when the key is written.
    pub fragments: Vec<Position>,
    /// One per `[fuzz] syscalls` entry when the key is written.
    pub syscalls: Vec<Position>,
    /// One per `[fuzz] disable` entry.
    pub disable: Vec<Position>,
}

/// The `[fuzz]` glob lists, for [`Manifest::glob_origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobKey {
    Syscalls,
    Disable,
}

/// A manifest error that points at the offending place.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Where some values are written, read in a second, lenient pass once the first has checked
/// every type.
#[derive(Debug, Default, Deserialize)]
struct RawPositions {
    #[serde(default)]
    vm: VmPositions,
    #[serde(default)]
    fuzz: FuzzPositions,
}

#[derive(Debug, Default, Deserialize)]
struct VmPositions {
    count: Option<Spanned<u32>>,
    cpus: Option<Spanned<u32>>,
    memory_mb: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
struct FuzzPositions {
    syscalls: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    disable: Vec<Spanned<String>>,
}

/// The top-level tables: an unknown key by one of these names inside another table is a dotted
/// key written under the wrong header.
const TABLES: &[&str] = &["kernel", "vm", "fuzz", "guest", "regress"];

impl Manifest {
    /// Reads and parses `path`, then checks that the base config and fragment files it names
    /// exist (relative to the tree root, the manifest's folder).
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "cannot read {}: {e} (run `kfuzz init` in the kernel tree first)",
                path.display()
            ),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let valid = String::from_utf8_lossy(&bytes[..at]);
                let (line, column) = line_col(&valid, valid.len());
                return Err(ManifestError {
                    file: path.display().to_string(),
                    line,
                    column,
                    message: format!(
                        "the file is not UTF-8: byte {at} (0x{:02x}) starts no UTF-8 character; \
                         TOML files must be UTF-8",
                        bytes.get(at).copied().unwrap_or(0)
                    ),
                }
                .into());
            }
        };
        let manifest = Manifest::parse(&text, path)?;
        manifest.check_files()?;
        Ok(manifest)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let position = |span: Option<Range<usize>>| {
            let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            Position { line, column }
        };
        let at = |span: Option<Range<usize>>, message: String| {
            let Position { line, column } = position(span);
            ManifestError {
                file: path.display().to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let message = explain(text, e.span(), e.message());
            at(e.span(), message)
        })?;
        let spans: RawPositions = toml::from_str(text).unwrap_or_default();
        let written = |s: &Spanned<String>| (s.span() != (0..0)).then(|| position(Some(s.span())));
        let mut origins = Origins {
            base: written(&raw.kernel.base),
            fragments: raw.kernel.fragments.iter().filter_map(written).collect(),
            syscalls: (spans.fuzz.syscalls.iter().flatten())
                .map(|s| position(Some(s.span())))
                .collect(),
            disable: (spans.fuzz.disable.iter())
                .map(|s| position(Some(s.span())))
                .collect(),
        };
        if origins.syscalls.len() != raw.fuzz.syscalls.len() {
            origins.syscalls.clear();
        }
        if origins.disable.len() != raw.fuzz.disable.len() {
            origins.disable.clear();
        }
        let base = match raw.kernel.base.get_ref().as_str() {
            "minimal" => ConfigBase::Minimal,
            "defconfig" => ConfigBase::Defconfig,
            "" => {
                return Err(at(
                    Some(raw.kernel.base.span()),
                    "expected \"minimal\", \"defconfig\" or a path to a .config".into(),
                ))
            }
            other => ConfigBase::File(PathBuf::from(other)),
        };
        let mut fragments = Vec::new();
        for f in raw.kernel.fragments {
            if f.get_ref().trim().is_empty() {
                return Err(at(
                    Some(f.span()),
                    "expected a fragment name or path, found an empty string".into(),
                ));
            }
            crate::kernel::fragments::check_name(f.get_ref())
                .map_err(|message| at(Some(f.span()), message))?;
            fragments.push(f.into_inner());
        }
        let mut config = Vec::new();
        for item in raw.kernel.config {
            let parsed =
                crate::kernel::kconfig::parse_assignment(item.get_ref()).ok_or_else(|| {
                    at(
                        Some(item.span()),
                        format!(
                    "expected `CONFIG_NAME=value` or `# CONFIG_NAME is not set`, found {:?}",
                    item.get_ref()
                ),
                    )
                })?;
            config.push(ConfigItem {
                symbol: parsed.0,
                value: parsed.1,
            });
        }
        let span_of = |s: &Option<Spanned<u32>>| s.as_ref().map(Spanned::span);
        if raw.vm.count == 0 {
            return Err(at(
                span_of(&spans.vm.count),
                "vm.count must be at least 1".into(),
            ));
        }
        if raw.vm.cpus == 0 {
            return Err(at(
                span_of(&spans.vm.cpus),
                "vm.cpus must be at least 1".into(),
            ));
        }
        if raw.vm.memory_mb < 128 {
            return Err(at(
                span_of(&spans.vm.memory_mb),
                "vm.memory_mb must be at least 128".into(),
            ));
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            kernel: KernelConfig {
                base,
                fragments,
                config,
                compiler: raw.kernel.compiler,
                jobs: raw.kernel.jobs,
            },
            vm: raw.vm,
            fuzz: raw.fuzz,
            guest: raw.guest,
            regress: raw.regress,
            origins,
        })
    }

    /// The tree root: the manifest's folder, against which its paths are resolved.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The base `.config` and fragment files named must exist, relative to the tree root.
    fn check_files(&self) -> Result<(), ManifestError> {
        let root = self.root();
        let error = |pos: Option<Position>, message: String| {
            let pos = pos.unwrap_or(Position { line: 1, column: 1 });
            ManifestError {
                file: self.path.display().to_string(),
                line: pos.line,
                column: pos.column,
                message,
            }
        };
        if let ConfigBase::File(p) = &self.kernel.base {
            if let Some(why) = not_a_file(&root.join(p)) {
                return Err(error(
                    self.origins.base,
                    format!(
                        "base `{}` {why}: expected \"minimal\", \"defconfig\" or a .config \
                         file (a path is relative to the tree root, {})",
                        p.display(),
                        root.display()
                    ),
                ));
            }
        }
        for (i, f) in self.kernel.fragments.iter().enumerate() {
            if !crate::kernel::fragments::is_path(f) {
                continue;
            }
            if let Some(why) = not_a_file(&root.join(f)) {
                return Err(error(
                    self.origins.fragments.get(i).copied(),
                    format!(
                        "config fragment `{f}` {why} (a fragment path is relative to the tree \
                         root, {})",
                        root.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Where the `[fuzz] key` entry holding `glob` is written (an entry may hold several,
    /// comma separated): `kfuzz.toml:14:13: [fuzz] syscalls`, or without a position when the
    /// key is not written (its default).
    pub fn glob_origin(&self, key: GlobKey, glob: &str) -> String {
        let (name, entries, positions) = match key {
            GlobKey::Syscalls => ("syscalls", &self.fuzz.syscalls, &self.origins.syscalls),
            GlobKey::Disable => ("disable", &self.fuzz.disable, &self.origins.disable),
        };
        let at = entries
            .iter()
            .position(|e| {
                kfuzz_prog::select::split_globs(std::slice::from_ref(e))
                    .iter()
                    .any(|g| g == glob)
            })
            .and_then(|i| positions.get(i));
        match at {
            Some(p) => format!(
                "{}:{}:{}: [fuzz] {name}",
                self.path.display(),
                p.line,
                p.column
            ),
            None => format!("{}: [fuzz] {name} (default)", self.path.display()),
        }
    }
}

/// Why `path` cannot be read as a file, or `None` when it can.
fn not_a_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(_) => Some(format!("is not a file ({} is a directory)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("does not exist ({} not found)", path.display()))
        }
        Err(e) => Some(format!("cannot be read ({}: {e})", path.display())),
    }
}

/// The keys whose values are `u32`.
const U32_KEYS: &[&str] = &["jobs", "count", "cpus", "memory_mb", "procs"];

/// A clearer message for the toml errors users meet most: numbers out of range and dotted keys
/// under the wrong table.
fn explain(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    let Some(span) = span else {
        return message.to_string();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[line_start..line_end];
    let key = line.split('=').next().unwrap_or("").trim();
    let out_of_range = message.contains("number too large")
        || (message.starts_with("invalid value: integer `")
            && (message.ends_with("expected u32") || message.ends_with("expected u64")));
    if out_of_range && line.contains('=') {
        let literal: String = text[start..line_end]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
            .collect();
        let leaf = key.rsplit('.').next().unwrap_or(key);
        let range = if U32_KEYS.contains(&leaf) {
            format!("expected a whole number from 0 to {}", u32::MAX)
        } else {
            format!("TOML integers go from {} to {}", i64::MIN, i64::MAX)
        };
        return format!("`{key} = {literal}`: the number is out of range ({range})");
    }
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    {
        let table = text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
        if let (true, Some(table)) = (TABLES.contains(&field), table) {
            return format!(
                "{message}\n`{key}` under [{table}] is `{table}.{key}`: write it in the [{field}] \
                 table, or above the first table"
            );
        }
    }
    message.to_string()
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

/// The commented manifest `kfuzz init` writes.
pub fn template(cpus: usize) -> String {
    let fragments = DEFAULT_FRAGMENTS
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let vm = VmConfig::default();
    let vms = (cpus / vm.cpus.max(1) as usize).clamp(1, 8);
    format!(
        r##"# kfuzz manifest: how this kernel tree is built, booted and fuzzed.
# Every key has a default; edit what you need. Docs: `kfuzz help`.

[kernel]
# The starting .config:
#   "minimal"   - tinyconfig + 64-bit + what the kfuzz guest and fuzzed subsystems need
#                 (small, builds and boots fast; the right choice for most subsystem work)
#   "defconfig" - x86_64_defconfig + kvm_guest.config (bigger and slower, more drivers)
#   a path      - your own .config, relative to the tree root
base = "minimal"

# Config fragments merged on top of the base, in order (later wins, like
# scripts/kconfig/merge_config.sh). A name is one of kfuzz's own fragments
# (fuzz-base, qemu-guest, kcov, kasan, lockdep, debug); anything with a '/'
# or ending in .config is a file, relative to the tree root.
fragments = [{fragments}]

# Extra options applied last, one per item. Every one is verified after
# `make olddefconfig`: a value that does not stick fails the build.
config = [
    # "CONFIG_SYSVIPC=y",
    # "# CONFIG_MODULES is not set",
]

# "gcc" or "clang" (builds with LLVM=1). The CC environment variable overrides it.
compiler = "gcc"

# Parallel make jobs; 0 means one per CPU.
jobs = 0

[vm]
# QEMU VMs used by `kfuzz run` and `kfuzz boot`.
count = {vms}
cpus = {vcpus}
memory_mb = {mem}
# Extra arguments appended to every qemu-system-x86_64 command line.
qemu_args = []
# Extra kernel command line arguments.
cmdline = ""
# Start VMs (new ones, and ones replacing a crashed VM) from a snapshot of a ready VM, saved
# after the first boot in .kfuzz/snapshots: under a second instead of a boot. Initramfs guests.
snapshots = true

[guest]
# Host files copied into the guest's initramfs (host paths relative to the tree root):
# files = [{{ host = "tools/testing/selftests/x/prog", guest = "/usr/bin/prog" }}]
files = []
# Boot into a Debian disk image instead (`kfuzz image build` makes it; a path or a cache
# name works too) when the code under test needs real userspace:
# image = "debian"
# packages = ["iproute2", "nftables"]
# Commands run in each guest before fuzzing, e.g. ["ip link add dummy0 type dummy"].
setup = []

[fuzz]
# Syscalls fuzzed by default (globs over description names; `kfuzz run --syscalls` overrides).
syscalls = ["shm*", "msg*", "sem*"]
# Calls never fuzzed (globs).
disable = []
# Extra syzlang description folders, relative to the tree (a syzkaller checkout's
# sys/linux works too). "syzkaller" means syzkaller's own descriptions at the commit kfuzz
# pins ("syzkaller@REV" for another), fetched once with `kfuzz descriptions fetch`.
descriptions = []
# Where the corpus and crashes live, relative to the tree root.
workdir = ".kfuzz/work"
# Programs run at once in each VM (each in its own fork server).
procs = 2
# Run each call in a thread of its own, so a call that blocks is left behind
# (otherwise a blocking call is interrupted with SIGALRM).
threaded = false
# Run a quarter of the programs a second time with pairs of calls racing.
collide = false
# Reproduce each new crash title (repro.syz, repro.c) on a VM of its own while
# fuzzing goes on; `kfuzz repro` does the same by hand.
reproduce = true
# Serve a live dashboard of `kfuzz run` (plots, crashes, corpus, coverage by source)
# at this address, as `kfuzz run --http ADDR` does. Loopback unless you mean otherwise.
# http = "127.0.0.1:8080"

[regress]
# `kfuzz regress` exits 2 when more than this share of the corpus's recorded
# coverage is no longer reached by the new build.
lost_coverage_percent = 5.0
# Corpus folders replayed besides the work dir's, e.g. a regression corpus
# committed next to the subsystem (`kfuzz regress --corpus` adds more).
corpus = []
# Where `kfuzz corpus export` writes a small, minimized corpus to commit, e.g.
# "ipc/kfuzz-corpus" (then list it in `corpus` above for CI).
# export = "ipc/kfuzz-corpus"
"##,
        vcpus = vm.cpus,
        mem = vm.memory_mb,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("kfuzz.toml"))
    }

    #[test]
    fn the_template_parses_to_the_defaults() {
        let m = parse(&template(2)).expect("template must parse");
        assert_eq!(m.kernel.base, ConfigBase::Minimal);
        assert_eq!(m.kernel.fragments, DEFAULT_FRAGMENTS);
        assert!(m.kernel.config.is_empty());
        assert_eq!(m.kernel.compiler, Compiler::Gcc);
        assert_eq!(m.vm.count, 2);
        assert_eq!(m.fuzz.syscalls, ["shm*", "msg*", "sem*"]);
        assert_eq!(m.fuzz.workdir, PathBuf::from(".kfuzz/work"));
    }

    #[test]
    fn a_good_manifest_with_every_field() {
        let m = parse(
            "[kernel]\nbase = \"configs/my.config\"\nfragments = [\"kcov\", \"extra/x.config\"]\n\
             config = [\"CONFIG_LKDTM=y\", \"# CONFIG_MODULES is not set\", \"CONFIG_LOG_BUF_SHIFT=18\"]\n\
             compiler = \"clang\"\njobs = 3\n[vm]\ncount = 4\ncpus = 2\nmemory_mb = 4096\n\
             qemu_args = [\"-smp\", \"2\"]\n[fuzz]\nsyscalls = [\"mmap\"]\nworkdir = \"w\"\n\
             [[guest.files]]\nhost = \"a/b\"\nguest = \"/usr/bin/b\"\n",
        )
        .expect("valid");
        assert_eq!(m.kernel.base, ConfigBase::File("configs/my.config".into()));
        assert_eq!(m.kernel.fragments, ["kcov", "extra/x.config"]);
        assert_eq!(
            m.kernel.config,
            [
                ConfigItem {
                    symbol: "LKDTM".into(),
                    value: "y".into()
                },
                ConfigItem {
                    symbol: "MODULES".into(),
                    value: "n".into()
                },
                ConfigItem {
                    symbol: "LOG_BUF_SHIFT".into(),
                    value: "18".into()
                },
            ]
        );
        assert_eq!(m.kernel.compiler, Compiler::Clang);
        assert_eq!(m.kernel.jobs, 3);
        assert_eq!(m.vm.count, 4);
        assert_eq!(m.vm.qemu_args, ["-smp", "2"]);
        assert_eq!(
            m.guest.files,
            [GuestFile {
                host: "a/b".into(),
                guest: "/usr/bin/b".into()
            }]
        );
    }

    #[test]
    fn a_guest_file_without_its_guest_path_is_a_missing_field() {
        let err =
            parse("[kernel]\nbase = \"minimal\"\n[[guest.files]]\nhost = \"x\"\n").unwrap_err();
        assert!(err.message.contains("missing field `guest`"), "{err}");
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn an_empty_manifest_and_missing_tables_take_the_defaults() {
        for text in ["", "# only a comment\n", "[kernel]\n", "[vm]\ncount = 3\n"] {
            let m = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(m.kernel.base, ConfigBase::Minimal);
            assert_eq!(m.kernel.fragments, DEFAULT_FRAGMENTS);
            assert_eq!(m.fuzz.syscalls, ["shm*", "msg*", "sem*"]);
            assert!(m.origins.syscalls.is_empty() && m.origins.base.is_none());
        }
        assert_eq!(parse("[vm]\ncount = 3\n").unwrap().vm.count, 3);
        let m = parse("[kernel]\nfragments = []\n").unwrap();
        assert!(m.kernel.fragments.is_empty());
    }

    #[test]
    fn a_dotted_key_at_the_top_is_its_table_and_its_value_is_checked() {
        let m = parse("vm.count = 3\nfuzz.syscalls = [\"shm*\"]\n").unwrap();
        assert_eq!(m.vm.count, 3);
        assert_eq!(
            m.origins.syscalls,
            [Position {
                line: 2,
                column: 18
            }]
        );
        let err = parse("vm.count = 0\n[kernel]\nbase = \"minimal\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "kfuzz.toml:1:12: vm.count must be at least 1"
        );
    }

    #[test]
    fn a_dotted_key_under_another_table_says_where_it_landed() {
        let err = parse("[kernel]\nbase = \"minimal\"\nvm.count = 0\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("unknown field `vm`"), "{err}");
        assert!(
            err.message.contains(
                "`vm.count` under [kernel] is `kernel.vm.count`: write it in the [vm] table"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_number_out_of_range_says_so_on_its_line() {
        for (value, column) in [("99999999999999999999", 9), ("5000000000", 9), ("-1", 9)] {
            let err = parse(&format!(
                "[kernel]\nbase = \"minimal\"\n[vm]\ncount = {value}\n"
            ))
            .unwrap_err();
            assert_eq!((err.line, err.column), (4, column), "{err}");
            assert_eq!(
                err.message,
                format!(
                    "`count = {value}`: the number is out of range (expected a whole number \
                     from 0 to 4294967295)"
                )
            );
        }
        let err = parse("[regress]\nlost_coverage_percent = 99999999999999999999\n").unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn huge_values_neither_overflow_the_stack_nor_crawl() {
        let start = std::time::Instant::now();
        let stars = "*".repeat(1_000_000);
        let m = parse(&format!("[fuzz]\nsyscalls = [\"{stars}\"]\n")).expect("parses");
        assert_eq!(m.fuzz.syscalls[0].len(), 1_000_000);
        let deep = format!(
            "[fuzz]\nsyscalls = {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = parse(&deep).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn an_unknown_fragment_name_is_an_error_at_parse_time_with_a_suggestion() {
        let err = parse("[kernel]\nfragments = [\"kcov\", \"kasna\"]\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 22), "{err}");
        assert!(err.message.starts_with("unknown config fragment `kasna`: expected one of fuzz-base, qemu-guest, kcov, kasan, lockdep, debug"), "{err}");
        assert!(err.message.ends_with("did you mean `kasan`?"), "{err}");
    }

    #[test]
    fn files_named_are_checked_relative_to_the_tree_root() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(MANIFEST_NAME);
        std::fs::write(&path, "[kernel]\nbase = \"my.config\"\n").unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}:2:8: base `my.config` does not exist",
                path.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&tmp.path().join("my.config").display().to_string()),
            "{err}"
        );
        std::fs::create_dir(tmp.path().join("my.config")).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        std::fs::remove_dir(tmp.path().join("my.config")).unwrap();
        std::fs::write(tmp.path().join("my.config"), "CONFIG_X=y\n").unwrap();
        Manifest::load(&path).expect("the base exists");
        std::fs::write(
            &path,
            "[kernel]\nfragments = [\"kcov\",\n  \"extra/x.config\"]\n",
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3:3: config fragment `extra/x.config` does not exist",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_says_so_with_the_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(MANIFEST_NAME);
        std::fs::write(&path, b"[kernel]\nbase = \"mini\xffmal\"\n").unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2:13: the file is not UTF-8: byte 21 (0xff) starts no UTF-8 character; TOML files must be UTF-8",
                path.display()
            )
        );
        let missing = Manifest::load(&tmp.path().join("nope.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("kfuzz init"), "{missing}");
    }

    #[test]
    fn a_glob_is_traced_to_its_entry() {
        let m = parse("[fuzz]\nsyscalls = [\"shm*\",\n  \"msgget, msgsnnd\"]\ndisable = [\"x\"]\n")
            .unwrap();
        assert_eq!(
            m.glob_origin(GlobKey::Syscalls, "msgsnnd"),
            "kfuzz.toml:3:3: [fuzz] syscalls"
        );
        assert_eq!(
            m.glob_origin(GlobKey::Disable, "x"),
            "kfuzz.toml:4:12: [fuzz] disable"
        );
        let m = parse("").unwrap();
        assert_eq!(
            m.glob_origin(GlobKey::Syscalls, "shm*"),
            "kfuzz.toml: [fuzz] syscalls (default)"
        );
    }

    #[test]
    fn a_bad_type_gives_line_and_column() {
        let err = parse("[kernel]\nbase = \"minimal\"\njobs = \"many\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 8), "{err}");
        assert!(err.message.contains("invalid type"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_an_error_not_ignored() {
        let err = parse("[kernel]\nbase = \"minimal\"\nfragmnets = []\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("unknown field `fragmnets`"), "{err}");
    }

    #[test]
    fn a_bad_config_item_points_at_it() {
        let err = parse("[kernel]\nbase = \"minimal\"\nconfig = [\"KCOV=y\"]\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 11), "{err}");
        assert!(err.message.contains("CONFIG_NAME=value"), "{err}");
    }

    #[test]
    fn zero_vms_is_rejected_where_it_is_written() {
        let err = parse("[kernel]\nbase = \"minimal\"\n[vm]\ncount = 0\n").unwrap_err();
        assert_eq!((err.line, err.column), (4, 9), "{err}");
    }
}
