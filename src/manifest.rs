//! `kfuzz.toml`: the manifest a user edits. Parsing, defaults, and validation with `file:line:col`
//! errors. It never reads anything but the manifest itself.

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
}

/// What goes into the guest besides kfuzz's own executor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestConfig {
    pub files: Vec<GuestFile>,
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

impl Manifest {
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (run `kfuzz init` in the kernel tree first)",
                path.display()
            )
        })?;
        Ok(Manifest::parse(&text, path)?)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ManifestError {
                file: path.display().to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
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
        if raw.vm.count == 0 {
            return Err(at(
                find_key(text, "count"),
                "vm.count must be at least 1".into(),
            ));
        }
        if raw.vm.cpus == 0 {
            return Err(at(
                find_key(text, "cpus"),
                "vm.cpus must be at least 1".into(),
            ));
        }
        if raw.vm.memory_mb < 128 {
            return Err(at(
                find_key(text, "memory_mb"),
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
        })
    }
}

fn find_key(text: &str, key: &str) -> Option<Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            let start = offset + (line.len() - t.len());
            return Some(start..start + key.len());
        }
        offset += line.len();
    }
    None
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

[guest]
# Host files copied into the guest's initramfs (host paths relative to the tree root):
# files = [{{ host = "tools/testing/selftests/x/prog", guest = "/usr/bin/prog" }}]
files = []

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
    fn a_missing_field_names_it_with_a_position() {
        let err = parse("[kernel]\nfragments = []\n").unwrap_err();
        assert!(err.message.contains("missing field `base`"), "{err}");
        assert_eq!((err.line, err.column), (1, 1), "{err}");
        assert!(err.to_string().starts_with("kfuzz.toml:1:1: "), "{err}");
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
        assert_eq!((err.line, err.column), (4, 1), "{err}");
    }
}
