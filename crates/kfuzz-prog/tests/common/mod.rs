//! What more than one test of kfuzz-prog needs: a target compiled from description folders.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use kfuzz_prog::target::{compile, const_requirements, parse_files, DescriptionFile, Target};

/// The `*.txt` files of folders (each sorted, in the order given, as `--descriptions` adds
/// folders after ours), compiled with every constant they need set to 1 and every call given a
/// number.
pub fn target_of(dirs: &[&Path]) -> Target {
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        in_dir.sort();
        paths.extend(in_dir);
    }
    let files: Vec<DescriptionFile> = paths
        .iter()
        .map(|p| DescriptionFile {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            text: std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    let nodes = parse_files(&files).unwrap_or_else(|e| panic!("{e}"));
    let consts: HashMap<String, u64> = const_requirements(&nodes)
        .into_iter()
        .flat_map(|f| f.names)
        .map(|n| (n, 1))
        .collect();
    let calls: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| match n {
            kfuzz_prog::ast::Node::Call { name, .. } => {
                Some(name.split('$').next().unwrap_or(name).to_string())
            }
            _ => None,
        })
        .collect();
    let numbers: HashMap<String, u64> = calls
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i as u64))
        .collect();
    compile(&nodes, &consts, &numbers)
}
