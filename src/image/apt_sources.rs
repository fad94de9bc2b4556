//! The Debian mirror this host's apt already uses, read from `/etc/apt/sources.list` and
//! `/etc/apt/sources.list.d/` (one-line `.list` and deb822 `.sources` files). Reads, never writes.

use std::path::PathBuf;

use super::build::FALLBACK_MIRROR;

/// The Debian mirror this host's apt uses for `suite`, else [`FALLBACK_MIRROR`]. Reads
/// `/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.list` and `*.sources` (deb822).
pub fn host_mirror(suite: &str) -> String {
    let mut files: Vec<PathBuf> = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut sources = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if f.extension().is_some_and(|e| e == "sources") {
            sources.extend(parse_deb822(&text));
        } else {
            sources.extend(parse_one_line(&text));
        }
    }
    pick_mirror(&sources, suite).unwrap_or_else(|| FALLBACK_MIRROR.to_string())
}

/// One `deb` source of apt: its archive URIs and suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
}

/// `deb [options] URI SUITE COMPONENT…` lines (`deb-src` and comments skipped).
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let rest = rest.trim_start();
        // `[arch=amd64 signed-by=…]`
        let rest = match rest.strip_prefix('[') {
            Some(r) => match r.split_once(']') {
                Some((_, after)) => after,
                None => continue,
            },
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(AptSource {
                uris: vec![uri.to_string()],
                suites: vec![suite.to_string()],
            });
        }
    }
    out
}

/// deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Enabled: no` honoured).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line.
                if let Some(last) = fields.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let words = |k: &str| -> Vec<String> {
            get(k)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        if !words("types").iter().any(|t| t == "deb") {
            continue;
        }
        if get("enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")) {
            continue;
        }
        out.push(AptSource {
            uris: words("uris"),
            suites: words("suites"),
        });
    }
    out
}

/// The first Debian archive (a URI whose path ends in `/debian`, so not `debian-security`) that
/// serves `suite`, else the first Debian archive at all.
pub fn pick_mirror(sources: &[AptSource], suite: &str) -> Option<String> {
    let is_debian = |u: &str| {
        (u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:/"))
            && u.trim_end_matches('/').ends_with("/debian")
    };
    let debian: Vec<(&AptSource, &String)> = sources
        .iter()
        .flat_map(|s| s.uris.iter().filter(|u| is_debian(u)).map(move |u| (s, u)))
        .collect();
    debian
        .iter()
        .find(|(s, _)| s.suites.iter().any(|x| x == suite))
        .or_else(|| debian.first())
        .map(|(_, u)| u.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_the_hosts_debian_archive() {
        let deb822 = "Types: deb\n\
                      URIs: http://mirror.example/debian\n\
                      Suites: bookworm bookworm-updates\n\
                      Components: main\n\n\
                      Types: deb\n\
                      URIs: http://deb.debian.org/debian-security\n\
                      Suites: bookworm-security\n\n\
                      Types: deb\n\
                      Enabled: no\n\
                      URIs: http://off.example/debian\n\
                      Suites: trixie\n";
        let s = parse_deb822(deb822);
        assert_eq!(s.len(), 2);
        assert_eq!(
            pick_mirror(&s, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        // Another suite from the same archive.
        assert_eq!(
            pick_mirror(&s, "trixie").as_deref(),
            Some("http://mirror.example/debian")
        );

        let list = "# comment\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://a.example/ubuntu noble main\n\
                    deb http://ftp.de.debian.org/debian/ bookworm main\n\
                    deb http://ftp.fr.debian.org/debian trixie main # the next one\n";
        let s = parse_one_line(list);
        assert_eq!(s.len(), 3);
        assert_eq!(
            pick_mirror(&s, "trixie").as_deref(),
            Some("http://ftp.fr.debian.org/debian")
        );
        assert_eq!(
            pick_mirror(&s, "bookworm").as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(
            pick_mirror(&s, "sid").as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        // An Ubuntu host names no Debian archive.
        assert_eq!(pick_mirror(&s[..1], "bookworm"), None);
        assert_eq!(pick_mirror(&[], "bookworm"), None);
    }
}
