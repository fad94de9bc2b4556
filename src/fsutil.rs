//! Files kfuzz writes for people: atomically (temp file, fsync, rename, fsync of the folder), with
//! the mode the user's umask gives, and the checks that keep an output from landing on an input.
//! Nothing here decides what may be replaced or removed; the callers know which files are theirs.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the new
/// one: a temporary file beside it, fsync, rename over `path`, fsync of the folder. The file gets
/// `0666 & !umask`, as `>` in a shell would give it, not a temporary file's `0600`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("cannot write {}: it names no file", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        // The kernel takes the umask off, as for any file a process creates.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename or removal in `dir` durable. Best effort: some file systems cannot fsync a
/// folder, and the data itself is already on disk.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// True when both paths exist and are the same file (the same inode, whatever the links,
/// hard or symbolic, that lead to it).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Fails when the output `flag` names (`-o FILE`, `--junit FILE`, …) is one of the inputs.
pub fn ensure_not_an_input<'a>(
    flag: &str,
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> anyhow::Result<()> {
    for input in inputs {
        if same_file(output, input) {
            anyhow::bail!(
                "`{flag} {}` names the input {}: kfuzz does not write over what it reads; \
                 give another file",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// `path` made absolute with every symbolic link resolved, as far as it exists; the part that
/// does not exist yet is appended as given (with `.` and `..` resolved by name).
pub fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut base) => {
                for c in rest.iter().rev() {
                    match c {
                        Component::ParentDir => {
                            base.pop();
                        }
                        Component::CurDir => {}
                        c => base.push(c),
                    }
                }
                return Ok(base);
            }
            Err(_) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(last)) => {
                    rest.push(last);
                    existing = parent;
                }
                _ => return Ok(abs.clone()),
            },
        }
    }
}

/// True when `path` is `dir` or lies somewhere beneath it, symbolic links resolved.
pub fn is_within(path: &Path, dir: &Path) -> anyhow::Result<bool> {
    Ok(canonical(path)?.starts_with(canonical(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn write_atomic_replaces_with_the_umask_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.syz");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["a.syz"]);
    }

    #[test]
    fn same_file_sees_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "x").unwrap();
        let sym = dir.path().join("sym");
        std::os::unix::fs::symlink(&a, &sym).unwrap();
        let hard = dir.path().join("hard");
        std::fs::hard_link(&a, &hard).unwrap();
        let b = dir.path().join("b");
        std::fs::write(&b, "x").unwrap();
        assert!(same_file(&a, &sym) && same_file(&a, &hard));
        assert!(!same_file(&a, &b));
        assert!(!same_file(&a, &dir.path().join("missing")));
        assert!(ensure_not_an_input("-o", &sym, [a.as_path()]).is_err());
        assert!(ensure_not_an_input("-o", &b, [a.as_path()]).is_ok());
    }

    #[test]
    fn is_within_resolves_links_and_paths_not_yet_made() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("corpus")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(work.join("corpus"), &link).unwrap();
        assert!(is_within(&link, &work).unwrap());
        assert!(is_within(&link.join("new/deeper"), &work).unwrap());
        assert!(is_within(&dir.path().join("x/../work/corpus"), &work).unwrap());
        assert!(!is_within(&dir.path().join("export"), &work).unwrap());
        assert!(!is_within(&dir.path().join("work2"), &work).unwrap());
    }
}
