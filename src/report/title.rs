//! A report's text → its title, alternative titles and whether it is corrupted: the earliest
//! matching format wins, its template is filled with the format's captures and picked frames,
//! and the result is scrubbed of what differs between runs of one bug (addresses, numbers,
//! line numbers, pids).

use std::sync::LazyLock;

use regex::Regex;

use super::formats::{CompiledOops, Format};
use super::frames::{self, PREFIX_COUNT};
use super::stack::{self, PickedFrame};

/// What the formats make of one report.
pub struct Description {
    pub title: String,
    pub alt_titles: Vec<String>,
    /// Why the report is corrupted, if it is.
    pub corrupted: Option<&'static str>,
    /// The format that named it (`None`: only the oops header matched).
    pub format: Option<&'static Format>,
}

/// `{1}`, `{2}`, … → `values[0]`, `values[1]`, …
fn render(template: &str, values: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.find('}').map(|close| &after[..close]);
        match digits.and_then(|d| d.parse::<usize>().ok()) {
            Some(n) if n >= 1 => {
                out.push_str(values.get(n - 1).map_or("", String::as_str));
                rest = &after[digits.map_or(0, str::len) + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Title and alternatives from `text` (the report, first line first) by `oops`'s formats.
pub fn describe(text: &str, oops: &CompiledOops) -> Description {
    let mut best = usize::MAX;
    let mut title: Option<String> = None;
    let mut alt_titles: Vec<String> = Vec::new();
    let mut corrupted = None;
    let mut format = None;
    let mut title_matched = false;
    for f in &oops.formats {
        let Some(m) = f.title.captures(text) else {
            continue;
        };
        let at = m.get(0).map_or(0, |m| m.start());
        if at > best || (at == best && title.is_some()) {
            continue;
        }
        if at < best {
            title = None;
            format = None;
            alt_titles.clear();
            best = at;
        }
        title_matched = true;
        let caps = match &f.detail {
            None => m,
            Some(detail) => match detail.captures(text) {
                Some(c) => c,
                None => continue,
            },
        };
        let values: Vec<String> = caps
            .iter()
            .skip(1)
            .map(|c| c.map_or(String::new(), |c| c.as_str().to_string()))
            .collect();
        corrupted = None;
        let mut picked: Vec<PickedFrame> = Vec::new();
        if let Some(stack) = &f.stack {
            let start = caps.get(0).map_or(0, |m| m.start());
            let (frames, ok) = stack::pick_frames(stack, &text[start..]);
            picked = frames;
            if !ok {
                corrupted = Some("no frames found");
            }
        }
        let mut args = values.clone();
        args.extend(picked.iter().map(|p| p.canonical.clone()));
        let main = render(f.format.template, &args);
        alt_titles.extend(f.format.alt.iter().map(|a| render(a, &args)));
        // The frames as printed, and with each one syscall prefix off, give more titles
        // the same bug may have been filed under.
        for variant in 0..=PREFIX_COUNT {
            let mut changed = variant == 0;
            let mut args = values.clone();
            for p in &picked {
                let v = match variant {
                    0 => p.raw.as_str(),
                    n => frames::prefix_variants(&p.raw)
                        .nth(n - 1)
                        .map_or(p.raw.as_str(), |(_, f)| f),
                };
                changed |= v != p.raw;
                args.push(v.to_string());
            }
            if !changed {
                continue;
            }
            let t = render(f.format.template, &args);
            if t != main {
                alt_titles.push(t);
            }
            alt_titles.extend(f.format.alt.iter().map(|a| render(a, &args)));
        }
        title = Some(main);
        format = Some(f.format);
    }
    let mut seen = std::collections::HashSet::new();
    alt_titles.retain(|t| seen.insert(t.clone()));
    let title = match title {
        Some(t) => t,
        None => {
            if title_matched {
                corrupted = Some("the report's details do not match its format");
            }
            // The header line itself, from the header on.
            let from = text.find(oops.header).unwrap_or(0);
            text[from..].lines().next().unwrap_or("").to_string()
        }
    };
    if corrupted.is_none() && format.is_some_and(|f| f.corrupted) {
        corrupted = Some("only damaged reports have this format");
    }
    Description {
        title,
        alt_titles,
        corrupted,
        format,
    }
}

/// A printk timestamp inside a title: two lines were interleaved.
static TIMESTAMP_IN_TITLE: LazyLock<Regex> =
    LazyLock::new(|| frames::pattern(r"\[ *[0-9]+\.[0-9]+\]"));

/// Why a described report is corrupted although its format matched cleanly.
pub fn damage(title: &str, report: &str, format: Option<&Format>) -> Option<&'static str> {
    if TIMESTAMP_IN_TITLE.is_match(title) {
        return Some("two lines interleaved in the title");
    }
    match format {
        Some(f) if !f.no_stack => stack::stack_damage(report),
        _ => None,
    }
}

/// What differs between runs of one bug, and what it becomes in a title.
static RUN_SPECIFIC: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"syz-executor\.?[0-9]+((/|:)[0-9]+)?", "syz-executor"),
        (r"syzkaller[0-9]+((/|:)[0-9]+)?", "syzkaller"),
        (r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}", "${1}ADDR"),
        (r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", "IP"),
        (r"(\.\w+)(:[0-9]+)+", "${1}:LINE"),
        (r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+", "${1}"),
        (r"CPU#[0-9]+", "CPU"),
        // Numbers not part of a name (`cfg80211` keeps its digits, unless there are many).
        (r"(\W)(\d+)(\W|$)", "${1}NUM${3}"),
        (r"(\d+){7,}", "NUM"),
    ]
    .into_iter()
    .map(|(re, with)| (frames::pattern(re), with))
    .collect()
});

/// The longest title kept: interleaved lines can make them very long.
const MAX_TITLE: usize = 120;

/// A title as stored: run-specific parts replaced, control characters dropped, spaces
/// collapsed, at most `MAX_TITLE` bytes.
pub fn scrub(title: &str) -> String {
    let mut t = title.to_string();
    for (re, with) in RUN_SPECIFIC.iter() {
        // Matches may overlap (`0,1,2`): repeat until nothing changes (a few rounds at most).
        for _ in 0..16 {
            let next = re.replace_all(&t, *with).into_owned();
            if next == t {
                break;
            }
            t = next;
        }
    }
    let mut out = String::with_capacity(t.len().min(MAX_TITLE));
    let mut prev = ' ';
    for (i, mut c) in t.char_indices() {
        if i >= MAX_TITLE {
            break;
        }
        if c == '\t' {
            c = ' ';
        }
        if (c as u32) < 0x20 || (c as u32) >= 0x7f {
            continue;
        }
        if c == ' ' && prev == ' ' {
            continue;
        }
        out.push(c);
        prev = c;
    }
    out.trim().to_string()
}

/// The function a title names (`KASAN: … in shm_lock` → `shm_lock`).
pub fn frame_of(title: &str) -> Option<String> {
    static NAMED: LazyLock<Regex> =
        LazyLock::new(|| frames::pattern(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)"));
    NAMED
        .captures(title)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_values_by_number() {
        let v = ["a".to_string(), "b".to_string()];
        assert_eq!(render("x {2} in {1}", &v), "x b in a");
        assert_eq!(render("{1}() {x}", &v), "a() {x}");
        assert_eq!(render("none {3}", &v), "none ");
    }

    #[test]
    fn run_specific_parts_are_scrubbed() {
        assert_eq!(
            scrub("kernel panic: Out of memory at ffff88801234abcd from syz-executor.3"),
            "kernel panic: Out of memory at ADDR from syz-executor"
        );
        assert_eq!(
            scrub("WARNING in f at net/x.c:123"),
            "WARNING in f at net/x.c:LINE"
        );
        assert_eq!(scrub("BUG: 3 locks, 4 held"), "BUG: NUM locks, NUM held");
        assert_eq!(scrub("WARNING in cfg80211_x"), "WARNING in cfg80211_x");
        assert_eq!(scrub("a  \tb\u{1}"), "a b");
        assert!(scrub(&"x".repeat(500)).len() <= MAX_TITLE);
    }

    #[test]
    fn the_named_function_is_read_off_the_title() {
        assert_eq!(
            frame_of("KASAN: use-after-free Read in shm_lock").as_deref(),
            Some("shm_lock")
        );
        assert_eq!(frame_of("kernel panic: Fatal exception"), None);
    }
}
