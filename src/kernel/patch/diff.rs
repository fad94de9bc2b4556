//! The unified diff format as `git diff`, `git format-patch` and `diff -u` write it, read one
//! line at a time: a diff is never held whole in memory, and a line longer than 1 MiB is an
//! error rather than an allocation.
//!
//! Text outside files (a commit message, a diffstat, a mail signature) is skipped; inside a file,
//! every hunk must hold exactly the lines its `@@ -a,b +c,d @@` header announces.

use std::io::BufRead;

use super::{FileBuilder, Patch};

/// A diff that cannot be read: where, and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}: {message}")]
pub struct DiffError {
    pub origin: String,
    /// 1-based; the last line when the diff ended too early.
    pub line: usize,
    pub message: String,
}

const MAX_LINE: usize = 1 << 20;

pub(super) fn parse(mut input: impl BufRead, origin: &str) -> Result<Patch, DiffError> {
    let mut p = Parser {
        origin,
        lineno: 0,
        patch: Patch {
            origin: origin.to_string(),
            ..Patch::default()
        },
        file: None,
        hunk: None,
        ended_hunk: None,
        minus: None,
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| p.error_at(p.lineno + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        if n > MAX_LINE {
            return Err(p.error_at(p.lineno + 1, "line longer than 1 MiB".into()));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        p.line(&buf)?;
    }
    p.finish()
}

struct Parser<'a> {
    origin: &'a str,
    lineno: usize,
    patch: Patch,
    file: Option<FileState>,
    hunk: Option<HunkLeft>,
    /// The header line of the hunk the previous line completed.
    ended_hunk: Option<usize>,
    /// A `--- path` line waiting for its `+++ path`: (line number, path).
    minus: Option<(usize, Option<String>)>,
}

struct FileState {
    b: FileBuilder,
    /// Started by `diff --git`: its extended header lines (`new file mode`, `rename from`, …)
    /// belong to it until the `---`/`+++` pair.
    git: bool,
    /// Its `---`/`+++` pair was read.
    has_pair: bool,
    hunks: usize,
    /// Inside a `GIT binary patch` block: base85 lines up to the next file.
    binary_data: bool,
}

/// Lines a hunk still has to show, by its header.
struct HunkLeft {
    old: u32,
    new: u32,
    header_line: usize,
}

impl Parser<'_> {
    fn error_at(&self, line: usize, message: String) -> DiffError {
        DiffError {
            origin: self.origin.to_string(),
            line,
            message,
        }
    }

    fn line(&mut self, raw: &[u8]) -> Result<(), DiffError> {
        self.lineno += 1;
        if self.hunk.is_some() {
            return self.hunk_line(raw);
        }
        if let Some(header_line) = self.ended_hunk.take() {
            let trimmed = raw.strip_suffix(b"\r").unwrap_or(raw);
            if matches!(raw.first(), Some(b'+' | b'-'))
                && !raw.starts_with(b"--- ")
                && !raw.starts_with(b"+++ ")
                && trimmed != b"-- "
            {
                return Err(self.error_at(
                    self.lineno,
                    format!(
                        "a `{}` line after the hunk at line {header_line} ended: its header \
                         counts fewer lines than it has",
                        char::from(raw[0])
                    ),
                ));
            }
        }
        if self.file.as_ref().is_some_and(|f| f.binary_data) && !raw.starts_with(b"diff --git ") {
            return Ok(());
        }
        let text = String::from_utf8_lossy(raw);
        let s = text.trim_end_matches('\r');
        if let Some((minus_line, old)) = self.minus.take() {
            if let Some(rest) = s.strip_prefix("+++ ") {
                let new = header_path(rest);
                match &mut self.file {
                    Some(f) if f.git && !f.has_pair && f.hunks == 0 => {
                        let renamed = f.b.renamed;
                        f.b.set_paths(old, new);
                        f.b.renamed = renamed;
                        f.has_pair = true;
                    }
                    _ => {
                        self.finish_file();
                        self.file = Some(FileState {
                            b: FileBuilder::new(old, new),
                            git: false,
                            has_pair: true,
                            hunks: 0,
                            binary_data: false,
                        });
                    }
                }
                return Ok(());
            }
            if self.in_git_header() {
                return Err(self.error_at(
                    minus_line,
                    "a `--- ` line must be followed by a `+++ ` line".into(),
                ));
            }
            // Prose that happened to start with `--- `.
        }
        if let Some(rest) = s.strip_prefix("diff --git ") {
            self.finish_file();
            let (old, new) = git_header_paths(rest);
            self.file = Some(FileState {
                b: FileBuilder::new(old, new),
                git: true,
                has_pair: false,
                hunks: 0,
                binary_data: false,
            });
            return Ok(());
        }
        if let Some(rest) = s.strip_prefix("--- ") {
            self.minus = Some((self.lineno, header_path(rest)));
            return Ok(());
        }
        if s.starts_with("@@") {
            return self.hunk_header(s);
        }
        if self.in_git_header() {
            self.extended_header(s);
        }
        Ok(())
    }

    fn in_git_header(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| f.git && !f.has_pair && f.hunks == 0)
    }

    /// `new file mode`, `rename from`, `Binary files … differ`, … after `diff --git`.
    fn extended_header(&mut self, s: &str) {
        let Some(f) = self.file.as_mut() else { return };
        let b = &mut f.b;
        if s.starts_with("new file mode ") {
            let new = b.new_path.take();
            b.set_paths(None, new);
        } else if s.starts_with("deleted file mode ") {
            let old = b.old_path.take();
            b.set_paths(old, None);
        } else if let Some(p) = s
            .strip_prefix("rename from ")
            .or_else(|| s.strip_prefix("copy from "))
        {
            let new = b.new_path.take();
            b.set_paths(Some(unquote(p)), new);
            b.renamed = true;
        } else if let Some(p) = s
            .strip_prefix("rename to ")
            .or_else(|| s.strip_prefix("copy to "))
        {
            let old = b.old_path.take();
            b.set_paths(old, Some(unquote(p)));
            b.renamed = true;
        } else if s.starts_with("Binary files ") {
            b.binary = true;
        } else if s == "GIT binary patch" {
            b.binary = true;
            f.binary_data = true;
        }
    }

    fn hunk_header(&mut self, s: &str) -> Result<(), DiffError> {
        let lineno = self.lineno;
        let Some((old_start, new_start, old, new)) = parse_hunk_header(s) else {
            return Err(self.error_at(
                lineno,
                format!("malformed hunk header `{s}`: expected `@@ -a,b +c,d @@`"),
            ));
        };
        let Some(f) = self.file.as_mut().filter(|f| f.has_pair) else {
            return Err(self.error_at(
                lineno,
                "hunk header outside a file: no `--- `/`+++ ` lines before it".into(),
            ));
        };
        f.b.hunk(old_start, old, new_start, new);
        f.hunks += 1;
        if old > 0 || new > 0 {
            self.hunk = Some(HunkLeft {
                old,
                new,
                header_line: lineno,
            });
        }
        Ok(())
    }

    fn hunk_line(&mut self, raw: &[u8]) -> Result<(), DiffError> {
        let lineno = self.lineno;
        let (Some(h), Some(f)) = (self.hunk.as_mut(), self.file.as_mut()) else {
            return Ok(());
        };
        let (tag, text) = match raw.split_first() {
            Some((t, rest)) => (*t, rest),
            // Mailers strip the space of an empty context line; git apply takes it too.
            None => (b' ', raw),
        };
        let (old, new) = match tag {
            b' ' => (1, 1),
            b'-' => (1, 0),
            b'+' => (0, 1),
            b'\\' => return Ok(()), // `\ No newline at end of file`
            _ => (u32::MAX, u32::MAX),
        };
        if old > h.old || new > h.new {
            let (hl, ho, hn) = (h.header_line, h.old, h.new);
            let what = match tag {
                b' ' | b'-' | b'+' => format!("a `{}` line", tag as char),
                _ => "this line".to_string(),
            };
            return Err(self.error_at(
                lineno,
                format!(
                    "{what} does not fit the hunk at line {hl}: it has {ho} old and {hn} new \
                     lines left"
                ),
            ));
        }
        match tag {
            b' ' => f.b.context(text),
            b'-' => f.b.removed(text),
            _ => f.b.added(text),
        }
        h.old -= old;
        h.new -= new;
        if h.old == 0 && h.new == 0 {
            self.ended_hunk = Some(h.header_line);
            self.hunk = None;
        }
        Ok(())
    }

    fn finish_file(&mut self) {
        if let Some(f) = self.file.take() {
            f.b.finish(&mut self.patch);
        }
    }

    fn finish(mut self) -> Result<Patch, DiffError> {
        if let Some(h) = &self.hunk {
            return Err(self.error_at(
                self.lineno,
                format!(
                    "the diff ends inside the hunk at line {}: {} old and {} new lines missing",
                    h.header_line, h.old, h.new
                ),
            ));
        }
        if let Some((line, _)) = self.minus {
            if self.in_git_header() {
                return Err(self.error_at(
                    line,
                    "a `--- ` line must be followed by a `+++ ` line".into(),
                ));
            }
        }
        self.finish_file();
        if self.patch.files.is_empty() {
            return Err(self.error_at(
                self.lineno,
                "not a diff: no `diff --git` or `--- `/`+++ ` file headers".into(),
            ));
        }
        Ok(self.patch)
    }
}

/// `@@ -a[,b] +c[,d] @@ …` → (a, c, b, d).
fn parse_hunk_header(s: &str) -> Option<(u32, u32, u32, u32)> {
    let rest = s.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_count) = range(old)?;
    let (new_start, new_count) = range(new)?;
    Some((old_start, new_start, old_count, new_count))
}

/// A `---`/`+++` path: quoted or up to a tab (a timestamp follows in `diff -u`), `/dev/null` as
/// none, and without its first component (`a/`, `b/`, `linux.orig/`), as `patch -p1` reads it.
fn header_path(rest: &str) -> Option<String> {
    let path = if rest.starts_with('"') {
        unquote(rest)
    } else {
        rest.split('\t')
            .next()
            .unwrap_or(rest)
            .trim_end()
            .to_string()
    };
    if path == "/dev/null" {
        return None;
    }
    Some(strip_first_component(&path))
}

fn strip_first_component(p: &str) -> String {
    match p.split_once('/') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => p.to_string(),
    }
}

/// `a/x b/y` after `diff --git`: the only names a binary or mode-only change gets.
fn git_header_paths(rest: &str) -> (Option<String>, Option<String>) {
    let rest = rest.trim_end_matches('\r');
    if rest.starts_with('"') {
        let (first, len) = unquote_prefix(rest);
        let second = rest[len..].trim_start();
        let second = if second.starts_with('"') {
            unquote(second)
        } else {
            second.to_string()
        };
        return (
            Some(strip_first_component(&first)),
            Some(strip_first_component(&second)),
        );
    }
    // `a/P b/P`, the usual case, even when P has spaces.
    let half = rest.len().saturating_sub(1) / 2;
    if rest.len() % 2 == 1
        && rest.is_char_boundary(half)
        && rest.get(half..half + 1) == Some(" ")
        && rest.get(2..half) == rest.get(half + 3..)
    {
        let p = rest[..half].to_string();
        return (
            Some(strip_first_component(&p)),
            Some(strip_first_component(&rest[half + 1..])),
        );
    }
    match rest.split_once(" b/") {
        Some((a, b)) => (Some(strip_first_component(a)), Some(b.to_string())),
        None => (None, None),
    }
}

/// A C-quoted name as git writes it (`"a/t\303\251st"`), or the text itself when not quoted.
fn unquote(s: &str) -> String {
    if s.starts_with('"') {
        unquote_prefix(s).0
    } else {
        s.trim_end_matches('\r').to_string()
    }
}

/// The quoted string at the start of `s` and how many bytes it took.
fn unquote_prefix(s: &str) -> (String, usize) {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let digits: Vec<u8> = b[i..]
                            .iter()
                            .take(3)
                            .take_while(|c| (b'0'..=b'7').contains(c))
                            .copied()
                            .collect();
                        let v = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                        out.push(u8::try_from(v).unwrap_or(b'?'));
                        i += digits.len() - 1;
                    }
                    c => out.push(c),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), b.len())
}
