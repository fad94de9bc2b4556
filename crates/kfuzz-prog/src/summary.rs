//! A target at a glance, for syzkaller's thousands of calls: per description file the calls
//! enabled, disabled and selected, and the disabled ones counted by reason class (the reason with
//! its position and names taken out). Counts only: never decides what is enabled.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::target::Target;
use crate::types::SyscallId;

/// One description file's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// The file as the descriptions name it (`descriptions/linux/ipc.txt`, a full path for others).
    pub file: String,
    pub enabled: usize,
    pub disabled: usize,
    /// Enabled calls the selection chose.
    pub selected: usize,
    /// Disabled calls by reason class ([`reason_class`]), most frequent first.
    pub disabled_by: Vec<(String, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// One entry per file with at least one call, in file name order.
    pub files: Vec<FileSummary>,
    /// Disabled calls of every file by reason class, most frequent first.
    pub reasons: Vec<(String, usize)>,
}

/// Counts `target`'s calls by file and its disabled calls by reason class; `selected` are the
/// enabled calls a selection chose.
pub fn summarize(target: &Target, selected: &[SyscallId]) -> Summary {
    let mut files: BTreeMap<String, (FileSummary, BTreeMap<String, usize>)> = BTreeMap::new();
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for s in &target.syscalls {
        let f = file_of(&s.pos).unwrap_or("(unknown file)");
        let e = files.entry(f.to_string()).or_default();
        e.0.file = f.to_string();
        e.0.enabled += 1;
        if selected.contains(&s.id) {
            e.0.selected += 1;
        }
    }
    for d in &target.disabled {
        let (file, msg) = split_position(&d.reason);
        let f = file.unwrap_or("(unknown file)");
        let class = reason_class(msg);
        let e = files.entry(f.to_string()).or_default();
        e.0.file = f.to_string();
        e.0.disabled += 1;
        *e.1.entry(class.clone()).or_default() += 1;
        *all.entry(class).or_default() += 1;
    }
    Summary {
        files: files
            .into_values()
            .map(|(mut s, by)| {
                s.disabled_by = by_count(by);
                s
            })
            .collect(),
        reasons: by_count(all),
    }
}

fn by_count(counts: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    // Most frequent first; equal counts stay in name order (the sort is stable).
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v
}

/// The file of a `file:line:col` position.
fn file_of(pos: &str) -> Option<&str> {
    match split_position(&format!("{pos}: ")) {
        (Some(f), _) => Some(&pos[..f.len()]),
        (None, _) => None,
    }
}

/// `path/file.txt:12:3: message` → (`Some("path/file.txt")`, `"message"`); a reason without a
/// leading position is all message.
pub fn split_position(reason: &str) -> (Option<&str>, &str) {
    for (i, _) in reason.match_indices(':') {
        if let Some(len) = position_suffix(&reason[i..]) {
            if i > 0 && reason[i + len..].starts_with(": ") {
                return (Some(&reason[..i]), &reason[i + len + 2..]);
            }
        }
    }
    (None, reason)
}

/// The length of a leading `:LINE:COL`.
fn position_suffix(s: &str) -> Option<usize> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    let rest = s.strip_prefix(':')?;
    let line = digits(rest);
    let rest = rest[line..].strip_prefix(':')?;
    let col = digits(rest);
    (line > 0 && col > 0).then_some(2 + line + col)
}

/// A reason's class: the message with the specifics replaced by `…` — names in backticks or
/// quotes, positions (`ipc.txt:3:1`) and numbers — so that `constant `FOO` is not defined by the
/// tree's headers` and `constant `BAR` …` count together.
pub fn reason_class(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if c == '`' || c == '"' {
            if let Some(end) = rest[1..].find(c) {
                out.push(c);
                out.push('…');
                out.push(c);
                rest = &rest[end + 2..];
                continue;
            }
        }
        let word_start =
            !matches!(c, '(' | '[' | ' ') && (out.is_empty() || out.ends_with([' ', '(', '[']));
        if word_start {
            let word_len = rest.find([' ', ')', ',', ']']).unwrap_or(rest.len());
            let word = rest[..word_len].trim_end_matches([':', ';', '.']);
            let is_position = split_position(&format!("{word}: ")).0.is_some();
            let is_number = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == 'x')
                && word.starts_with(|c: char| c.is_ascii_digit());
            if is_position || is_number {
                out.push('…');
                rest = &rest[word.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::DisabledCall;

    #[test]
    fn positions_split_off_even_with_colons_in_the_message() {
        assert_eq!(
            split_position("sys/linux/ipc.txt:12:3: constant `FOO` is not defined"),
            (Some("sys/linux/ipc.txt"), "constant `FOO` is not defined")
        );
        assert_eq!(
            split_position("a.txt:1:1: bad array length 1:5"),
            (Some("a.txt"), "bad array length 1:5")
        );
        assert_eq!(
            split_position("no position: here"),
            (None, "no position: here")
        );
    }

    #[test]
    fn reason_classes_drop_names_positions_and_numbers() {
        assert_eq!(
            reason_class("constant `MSG_STAT_ANY` is not defined by the tree's headers"),
            "constant `…` is not defined by the tree's headers"
        );
        assert_eq!(
            reason_class("type `fmt` is not supported by kfuzz yet"),
            "type `…` is not supported by kfuzz yet"
        );
        assert_eq!(
            reason_class("duplicate call name (first declared at /x/ipc.txt:3:1)"),
            "duplicate call name (first declared at …)"
        );
        assert_eq!(
            reason_class("7 arguments: a syscall takes at most 6"),
            "… arguments: a syscall takes at most …"
        );
        assert_eq!(
            reason_class("in resource `fd` (a.txt:2:1): constant `X` is not defined"),
            "in resource `…` (…): constant `…` is not defined"
        );
        assert_eq!(
            reason_class("`syz_open_dev` is not in the tree's syscall table (arch/x86/entry/syscalls/syscall_64.tbl)"),
            "`…` is not in the tree's syscall table (arch/x86/entry/syscalls/syscall_64.tbl)"
        );
    }

    #[test]
    fn summary_counts_by_file_and_by_reason_class() {
        let text = "resource r[int32]\n\
                    mk() r\n\
                    use(x r)\n\
                    bad1(x const[NOPE1])\n\
                    bad2(x const[NOPE2])\n";
        let files = [crate::target::DescriptionFile {
            name: "sys/a.txt".into(),
            text: text.into(),
        }];
        let nodes = crate::target::parse_files(&files).expect("parses");
        let numbers = ["mk", "use", "bad1", "bad2"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u64))
            .collect();
        let mut t = crate::target::compile(&nodes, &Default::default(), &numbers);
        t.disabled.push(DisabledCall {
            name: "other".into(),
            reason: "sys/b.txt:9:1: type `fmt` is not supported by kfuzz yet".into(),
        });
        let use_id = t.syscall("use").expect("use is enabled").id;
        let s = summarize(&t, &[use_id]);
        let a = &s.files[0];
        assert_eq!(
            (a.file.as_str(), a.enabled, a.disabled, a.selected),
            ("sys/a.txt", 2, 2, 1)
        );
        let undefined = a.disabled_by[0].0.clone();
        assert!(
            undefined.starts_with("constant `…` is not defined"),
            "{undefined}"
        );
        assert_eq!(a.disabled_by, [(undefined.clone(), 2)]);
        assert_eq!(s.files[1].file, "sys/b.txt");
        assert_eq!(
            s.reasons,
            [
                (undefined, 2),
                ("type `…` is not supported by kfuzz yet".to_string(), 1)
            ]
        );
    }
}
