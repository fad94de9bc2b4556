//! The target the program fuzz target (and the seed generator) parse against: kfuzz's own
//! `descriptions/linux/*.txt`, compiled with made-up constants and syscall numbers, so programs
//! meet every kind of type the real descriptions use. Never reads a kernel tree.

use std::collections::HashMap;
use std::path::Path;

use kfuzz_prog::ast::Node;
use kfuzz_prog::target::{compile, const_requirements, parse_files, DescriptionFile, Target};

/// A stable made-up value for a constant name: small, varied, the same on every run.
fn made_up_const(name: &str) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % 0x1000
}

/// Parses and compiles the descriptions in `dir` (`*.txt`, in name order).
pub fn load(dir: &Path) -> Target {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    let files: Vec<DescriptionFile> = paths
        .iter()
        .map(|p| DescriptionFile {
            name: p.display().to_string(),
            text: std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    let nodes = parse_files(&files).unwrap_or_else(|e| panic!("descriptions: {e}"));
    compile_made_up(&nodes)
}

/// Compiles parsed descriptions with a made-up value for every constant they use and a number
/// for every call they declare, as a tree whose headers define everything would.
pub fn compile_made_up(nodes: &[Node]) -> Target {
    let consts: HashMap<String, u64> = const_requirements(nodes)
        .into_iter()
        .flat_map(|f| f.names)
        .map(|n| {
            let v = made_up_const(&n);
            (n, v)
        })
        .collect();
    let mut numbers: HashMap<String, u64> = HashMap::new();
    for n in nodes {
        if let Node::Call { name, .. } = n {
            let base = name.split('$').next().unwrap_or(name).to_string();
            let next = numbers.len() as u64;
            numbers.entry(base).or_insert(next);
        }
    }
    compile(nodes, &consts, &numbers)
}

/// The repository's `descriptions/linux`: the first one above the crate being built.
pub fn default_dir() -> std::path::PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("descriptions/linux"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("no descriptions/linux above {}", here.display()))
}
