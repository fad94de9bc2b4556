//! Which disk image a name means (`--image`, `[guest] image`): "debian" (the cached build for
//! the manifest's packages), a name in the image cache, or a path.

use std::path::{Path, PathBuf};

use super::build::{self, Recipe};

/// The raw image `name` stands for. A path is taken relative to `root` (the kernel tree).
pub fn resolve(name: &str, root: &Path, packages: &[String]) -> anyhow::Result<PathBuf> {
    let dir = super::cache_dir();
    if name == "debian" {
        let packages: Vec<String> = if packages.is_empty() {
            build::DEFAULT_PACKAGES
                .iter()
                .map(|p| p.to_string())
                .collect()
        } else {
            packages.to_vec()
        };
        let suite = build::DEFAULT_SUITE;
        let recipe = Recipe::new(
            suite,
            &packages,
            &build::host_mirror(suite),
            build::DEFAULT_SIZE,
        )?;
        return match build::cached(&dir, &recipe) {
            Some(img) => Ok(img.path),
            None => anyhow::bail!(
                "the Debian image ({suite}, packages {}) is not built yet: run `kfuzz image build \
                 --packages {}` (a few minutes, once)",
                packages.join(","),
                packages.join(",")
            ),
        };
    }
    if super::check_name(name).is_ok() {
        let cached = super::image_path(&dir, name);
        if cached.is_file() {
            return Ok(cached);
        }
    }
    let path = root.join(name);
    if path.is_file() {
        return Ok(std::path::absolute(&path)?);
    }
    anyhow::bail!(
        "no disk image '{name}': not \"debian\", not an image in {} (`kfuzz image list`), and \
         not a file ({})",
        dir.display(),
        path.display()
    )
}
