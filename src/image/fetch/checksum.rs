//! The checksums publishers give for their images (`SHA512SUMS`, `SHA256SUMS`, BSD-style lines)
//! and checking a file against one. Pure but for reading the file it checks.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// A digest algorithm a publisher's checksum file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        })
    }
}

/// The digest a download must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub hex: String,
}

impl Checksum {
    /// A checksum of `algorithm` from its hex digits (either case).
    pub fn new(algorithm: Algorithm, hex: &str) -> anyhow::Result<Checksum> {
        let hex = hex.trim().to_ascii_lowercase();
        anyhow::ensure!(
            hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "'{hex}' is not a {algorithm} checksum: expected {} hex digits",
            algorithm.hex_len()
        );
        Ok(Checksum { algorithm, hex })
    }

    /// A checksum whose algorithm its length tells (64 hex digits: sha256, 128: sha512).
    pub fn parse_hex(hex: &str) -> anyhow::Result<Checksum> {
        match hex.trim().len() {
            64 => Checksum::new(Algorithm::Sha256, hex),
            128 => Checksum::new(Algorithm::Sha512, hex),
            n => bail!("'{hex}' is not a sha256 or sha512 checksum ({n} characters)"),
        }
    }

    /// The checksum of the file at `path`, with this checksum's algorithm.
    pub fn of_file(&self, path: &Path) -> anyhow::Result<Checksum> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let hex = match self.algorithm {
            Algorithm::Sha256 => hash_reader(&mut file, sha2::Sha256::new()),
            Algorithm::Sha512 => hash_reader(&mut file, sha2::Sha512::new()),
        }
        .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Checksum {
            algorithm: self.algorithm,
            hex,
        })
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.algorithm, self.hex)
    }
}

fn hash_reader<D: Digest>(reader: &mut impl Read, mut digest: D) -> std::io::Result<String> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(digest.finalize())),
            Ok(n) => digest.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The checksum `list` (a `SHA512SUMS`-style file: `<hex>  <file>` or `<hex> *<file>` lines, or
/// BSD-style `SHA512 (<file>) = <hex>`) gives for `file`.
pub fn checksum_in_list(list: &str, file: &str) -> Option<Checksum> {
    list.lines().find_map(|line| {
        let line = line.trim();
        let (hex, name) = if let Some(rest) = line
            .strip_prefix("SHA512 (")
            .or_else(|| line.strip_prefix("SHA256 ("))
        {
            let (name, hex) = rest.split_once(") = ")?;
            (hex.trim(), name)
        } else {
            let (hex, name) = line.split_once(char::is_whitespace)?;
            let name = name.trim_start();
            (hex, name.strip_prefix('*').unwrap_or(name))
        };
        let name = name.strip_prefix("./").unwrap_or(name);
        (name == file).then(|| Checksum::parse_hex(hex).ok())?
    })
}

impl Checksum {
    /// A short, file-name-safe tag of this checksum, so that a `.part` of an older image is never
    /// resumed into a newer one.
    pub fn tag(&self) -> &str {
        &self.hex[..12]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A512: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

    #[test]
    fn debian_sha512sums_lines_give_the_checksum_of_the_named_file() {
        let list = format!(
            "{}  debian-12-generic-amd64.raw\n{A512}  debian-12-nocloud-amd64.raw\n{}  \
             debian-12-nocloud-amd64.qcow2\n",
            "1".repeat(128),
            "2".repeat(128)
        );
        let c = checksum_in_list(&list, "debian-12-nocloud-amd64.raw").unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha512);
        assert_eq!(c.hex, A512);
        assert_eq!(
            checksum_in_list(&list, "debian-12-nocloud-amd64.qcow2")
                .unwrap()
                .hex,
            "2".repeat(128)
        );
        assert!(checksum_in_list(&list, "debian-12-nocloud-amd64").is_none());
    }

    #[test]
    fn binary_mode_bsd_style_and_sha256_lines_are_read() {
        let h = "ab".repeat(32);
        assert_eq!(
            checksum_in_list(&format!("{h} *./disk.raw\n"), "disk.raw"),
            Some(Checksum::new(Algorithm::Sha256, &h).unwrap())
        );
        assert_eq!(
            checksum_in_list(&format!("SHA512 (disk.raw) = {A512}\n"), "disk.raw")
                .unwrap()
                .algorithm,
            Algorithm::Sha512
        );
        assert!(checksum_in_list("nothex  disk.raw\n", "disk.raw").is_none());
    }

    #[test]
    fn checksums_are_checked_for_length_and_digits() {
        assert!(Checksum::new(Algorithm::Sha512, A512).is_ok());
        assert_eq!(
            Checksum::new(Algorithm::Sha512, &A512.to_uppercase())
                .unwrap()
                .hex,
            A512
        );
        assert!(Checksum::new(Algorithm::Sha256, A512).is_err());
        assert!(Checksum::new(Algorithm::Sha256, &"g".repeat(64)).is_err());
        assert!(Checksum::parse_hex("abc").is_err());
    }
}
