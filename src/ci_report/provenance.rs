//! What kernel a regress run tested, for the reports that say so (KCIDB's checkout and build):
//! the tree's git commit, branch and https remote, and the compiler and config hash from the
//! build's `.config`. Reads only; anything it cannot learn is left unknown, never an error.

use std::path::Path;

use sha2::{Digest, Sha256};

/// The kernel under test, as far as kfuzz knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestedKernel {
    /// The full commit hash checked out in the tree.
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The `origin` remote's URL, when it is an https:// one.
    pub repository_url: Option<String>,
    /// `CONFIG_CC_VERSION_TEXT` of the build, e.g. `gcc (Debian 12.2.0-14) 12.2.0`.
    pub compiler: Option<String>,
    /// A name for the configuration (kfuzz.toml's base and fragments); the caller's to give.
    pub config_name: Option<String>,
    /// SHA-256 of the build's `.config`.
    pub config_sha256: Option<String>,
    /// The kernel architecture (`x86_64`).
    pub architecture: String,
}

impl TestedKernel {
    /// What `tree` (any folder inside a git work tree) and the build's `.config` (when there is
    /// one) say.
    pub fn of_tree(tree: &Path, config: Option<&Path>) -> TestedKernel {
        let mut k = TestedKernel {
            architecture: "x86_64".to_string(),
            ..TestedKernel::default()
        };
        if let Ok(repo) = git2::Repository::discover(tree) {
            if let Ok(head) = repo.head() {
                k.commit = head.peel_to_commit().ok().map(|c| c.id().to_string());
                if head.is_branch() {
                    k.branch = head.shorthand().map(String::from);
                }
            }
            k.repository_url = repo
                .find_remote("origin")
                .ok()
                .and_then(|r| r.url().map(String::from))
                .filter(|u| u.starts_with("https://"));
        }
        if let Some(text) = config.and_then(|c| std::fs::read_to_string(c).ok()) {
            k.compiler = compiler_of_config(&text);
            k.config_sha256 = Some(hex::encode(Sha256::digest(text.as_bytes())));
        }
        k
    }
}

/// `CONFIG_CC_VERSION_TEXT`'s value in a `.config`.
pub fn compiler_of_config(config: &str) -> Option<String> {
    config.lines().find_map(|l| {
        let v = l.strip_prefix("CONFIG_CC_VERSION_TEXT=")?;
        let v = v.trim().trim_matches('"').trim();
        (!v.is_empty()).then(|| v.replace("\\\"", "\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiler_comes_from_the_config() {
        let config = "#\n# comment\nCONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\nCONFIG_CC_IS_GCC=y\n";
        assert_eq!(
            compiler_of_config(config).as_deref(),
            Some("gcc (Debian 12.2.0-14) 12.2.0")
        );
        assert_eq!(compiler_of_config("CONFIG_X=y\n"), None);
    }

    #[test]
    fn compiler_and_config_hash_come_from_the_build_config() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(".config"),
            "CONFIG_CC_VERSION_TEXT=\"clang version 16\"\n",
        )
        .unwrap();
        let k = TestedKernel::of_tree(tmp.path(), Some(&tmp.path().join(".config")));
        // /tmp may sit inside some repository on a developer's machine; only check what the
        // config gives.
        assert_eq!(k.compiler.as_deref(), Some("clang version 16"));
        assert_eq!(k.config_sha256.as_ref().map(String::len), Some(64));
        assert_eq!(k.architecture, "x86_64");
    }
}
