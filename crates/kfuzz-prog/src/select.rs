//! Choosing the calls to fuzz: globs over call names (`shm*`, `msgsnd`; a bare name matches its
//! `name$variant`s too), `--disable` globs, and the producers of every resource the chosen calls
//! need, added automatically.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::target::{produced_resources, required_resources, Target};
use crate::types::{ResourceId, SyscallId};

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub enabled: Vec<SyscallId>,
    /// Calls enabled only because a selected call needs what they create: name → the resource.
    pub added_for: BTreeMap<String, String>,
    /// Enabled calls left out, with why.
    pub left_out: BTreeMap<String, String>,
}

/// `*` matches any run of characters, `?` one character.
///
/// Iterative, backtracking only to the last `*` seen: O(pattern × name) at worst, never
/// exponential and never recursive (`**************x` once took 38 s).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Each literal and `?` takes a character: more of them than the name has never match.
    let needed = p.iter().filter(|&&c| c != b'*').take(n.len() + 1).count();
    if needed > n.len() {
        return false;
    }
    let (mut pi, mut ni) = (0, 0);
    // The last `*` and the name position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last star swallow one more character and retry from there.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn matches_any(globs: &[String], name: &str) -> bool {
    let base = name.split('$').next().unwrap_or(name);
    globs
        .iter()
        .any(|g| glob_match(g, name) || (!g.contains('$') && glob_match(g, base)))
}

/// Splits `shm*,msgsnd` lists (commas or whitespace); a run of `*` is one `*`.
pub fn split_globs(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|s| {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(|g| {
                    let mut out = String::with_capacity(g.len());
                    for c in g.chars() {
                        if !(c == '*' && out.ends_with('*')) {
                            out.push(c);
                        }
                    }
                    out
                })
        })
        .collect()
}

/// Calls that crash the kernel on purpose (LKDTM's provoke-crash entries): enabled only by a
/// glob that names them (`*lkdtm*`, `write$lkdtm`), never by `*` or a base name like `write`,
/// nor added as a producer for another call.
const ON_PURPOSE: &[&str] = &["lkdtm"];

fn enabled_by(globs: &[String], name: &str) -> bool {
    match ON_PURPOSE.iter().find(|w| name.contains(**w)) {
        Some(w) => globs.iter().any(|g| g.contains(w) && glob_match(g, name)),
        None => matches_any(globs, name),
    }
}

/// The calls `globs` select (each glob must select at least one: see [`check_globs`]), minus
/// those `disable` names, plus the producers of the resources they need.
pub fn select(
    target: &Target,
    globs: &[String],
    disable: &[String],
) -> Result<Selection, UnmatchedGlobs> {
    check_globs(target, globs)?;
    let globs = split_globs(globs);
    let disable = split_globs(disable);
    let mut sel = Selection::default();
    for s in &target.syscalls {
        if matches_any(&disable, &s.name) {
            sel.left_out
                .insert(s.name.clone(), "matches --disable".into());
        } else if enabled_by(&globs, &s.name) {
            sel.enabled.push(s.id);
        }
    }
    // Add producers until every needed resource can be made. What each call makes is worked
    // out once: syzkaller's descriptions enable thousands of calls.
    let makes: Vec<HashSet<ResourceId>> = target
        .syscalls
        .iter()
        .map(|s| produced_resources(target, s))
        .collect();
    let mut needs: HashMap<SyscallId, Vec<ResourceId>> = HashMap::new();
    let mut made: HashSet<ResourceId> = HashSet::new();
    for id in &sel.enabled {
        made.extend(&makes[*id]);
    }
    let can_make = |made: &HashSet<ResourceId>, need: ResourceId| {
        made.iter()
            .any(|r| target.resources[need].accepts(&target.resources[*r]))
    };
    let mut todo: Vec<SyscallId> = sel.enabled.clone();
    while let Some(id) = todo.pop() {
        let call_needs = needs
            .entry(id)
            .or_insert_with(|| required_resources(target, &target.syscalls[id]))
            .clone();
        for need in call_needs {
            if can_make(&made, need) {
                continue;
            }
            let producer = target.syscalls.iter().find(|s| {
                !sel.enabled.contains(&s.id)
                    && !matches_any(&disable, &s.name)
                    && (!ON_PURPOSE.iter().any(|w| s.name.contains(w))
                        || ON_PURPOSE.iter().any(|w| target.syscalls[id].name.contains(w)))
                    && makes[s.id]
                        .iter()
                        .any(|r| target.resources[need].accepts(&target.resources[*r]))
                    // Prefer plain constructors: they need nothing themselves.
                    && required_resources(target, s).is_empty()
            });
            if let Some(p) = producer {
                sel.enabled.push(p.id);
                made.extend(&makes[p.id]);
                sel.added_for
                    .insert(p.name.clone(), target.resources[need].name.clone());
                todo.push(p.id);
            }
        }
    }
    sel.enabled.sort();
    let chosen: HashSet<SyscallId> = sel.enabled.iter().copied().collect();
    for s in &target.syscalls {
        if !chosen.contains(&s.id) && !sel.left_out.contains_key(&s.name) {
            sel.left_out
                .insert(s.name.clone(), "not matched by --syscalls".into());
        }
    }
    Ok(sel)
}

/// Why a glob selects no call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobProblem {
    /// No call has a matching name; the nearest names, best first (at most 3).
    NoMatch { suggestions: Vec<String> },
    /// Only calls the descriptions disable match: (name, why), at most 3.
    OnlyDisabled { calls: Vec<(String, String)> },
    /// Only calls that crash the kernel on purpose match, and the glob does not name them.
    OnlyOnPurpose { calls: Vec<String> },
}

/// A glob from `--syscalls` (or kfuzz.toml's `syscalls`) that selects nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedGlob {
    pub glob: String,
    pub problem: GlobProblem,
}

impl std::fmt::Display for UnmatchedGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.glob;
        match &self.problem {
            GlobProblem::NoMatch { suggestions } if suggestions.is_empty() => {
                write!(f, "`{g}` matches no call")
            }
            GlobProblem::NoMatch { suggestions } => {
                let quoted: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
                let list = match quoted.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => quoted.join(""),
                };
                write!(f, "`{g}` matches no call; did you mean {list}?")
            }
            GlobProblem::OnlyDisabled { calls } => {
                write!(f, "`{g}` matches only disabled calls")?;
                for (name, why) in calls {
                    write!(f, "\n  {name}: {why}")?;
                }
                Ok(())
            }
            GlobProblem::OnlyOnPurpose { calls } => {
                let names: Vec<&str> = calls.iter().map(String::as_str).collect();
                write!(
                    f,
                    "`{g}` matches only calls that crash the kernel on purpose ({}); \
                     a glob containing `{}` enables them",
                    names.join(", "),
                    ON_PURPOSE.join("`/`")
                )
            }
        }
    }
}

/// Every glob that selects nothing, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnmatchedGlobs(pub Vec<UnmatchedGlob>);

impl std::fmt::Display for UnmatchedGlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

/// Each glob must enable at least one call: a typo (`msgsnnd`) fails with the nearest names
/// instead of silently fuzzing less. `--disable` globs are not checked.
pub fn check_globs(target: &Target, globs: &[String]) -> Result<(), UnmatchedGlobs> {
    let mut bad = Vec::new();
    for g in split_globs(globs) {
        let one = std::slice::from_ref(&g);
        if target.syscalls.iter().any(|s| enabled_by(one, &s.name)) {
            continue;
        }
        let on_purpose: Vec<String> = target
            .syscalls
            .iter()
            .filter(|s| matches_any(one, &s.name))
            .map(|s| s.name.clone())
            .take(3)
            .collect();
        let disabled: Vec<(String, String)> = target
            .disabled
            .iter()
            .filter(|d| matches_any(one, &d.name))
            .map(|d| (d.name.clone(), d.reason.clone()))
            .take(3)
            .collect();
        let problem = if !on_purpose.is_empty() {
            GlobProblem::OnlyOnPurpose { calls: on_purpose }
        } else if !disabled.is_empty() {
            GlobProblem::OnlyDisabled { calls: disabled }
        } else {
            let names = target
                .syscalls
                .iter()
                .map(|s| s.name.as_str())
                .chain(target.disabled.iter().map(|d| d.name.as_str()));
            GlobProblem::NoMatch {
                suggestions: nearest(&g, names),
            }
        };
        bad.push(UnmatchedGlob { glob: g, problem });
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(UnmatchedGlobs(bad))
    }
}

/// `--disable` globs that name no call at all, enabled or disabled: a typo would otherwise
/// leave on what was meant to be off.
pub fn check_disable_globs(target: &Target, globs: &[String]) -> Result<(), UnmatchedGlobs> {
    let names = || {
        (target.syscalls.iter().map(|s| s.name.as_str()))
            .chain(target.disabled.iter().map(|d| d.name.as_str()))
    };
    let bad: Vec<UnmatchedGlob> = split_globs(globs)
        .into_iter()
        .filter(|g| {
            let one = std::slice::from_ref(g);
            !names().any(|n| matches_any(one, n))
        })
        .map(|g| UnmatchedGlob {
            problem: GlobProblem::NoMatch {
                suggestions: nearest(&g, names()),
            },
            glob: g,
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(UnmatchedGlobs(bad))
    }
}

/// The names closest to `glob` by edit distance (wildcards match for free), best first: only
/// the best distance, at most 3, and only when close enough to be a typo. A glob without `$`
/// is compared with base names (`msgctl`, not `msgctl$IPC_STAT`).
fn nearest<'a>(glob: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let literal = glob.bytes().filter(|c| *c != b'*' && *c != b'?').count();
    let limit = (literal / 3).clamp(1, 3);
    let mut candidates: Vec<&str> = names
        .map(|n| {
            if glob.contains('$') {
                n
            } else {
                n.split('$').next().unwrap_or(n)
            }
        })
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let scored: Vec<(usize, &str)> = candidates
        .into_iter()
        // Each literal beyond the name's length costs an edit: skip the hopeless at once.
        .filter(|n| literal <= n.len() + limit)
        .map(|n| (glob_distance(glob, n), n))
        .filter(|(d, _)| *d <= limit)
        .collect();
    let Some(best) = scored.iter().map(|(d, _)| *d).min() else {
        return Vec::new();
    };
    scored
        .into_iter()
        .filter(|(d, _)| *d == best)
        .map(|(_, n)| n.to_string())
        .take(3)
        .collect()
}

/// Levenshtein distance from a glob to a name, where `*` matches any run and `?` any character
/// at no cost. One row at a time: O(pattern × name).
fn glob_distance(pattern: &str, name: &str) -> usize {
    let n = name.as_bytes();
    let mut prev: Vec<usize> = (0..=n.len()).collect();
    let mut cur = vec![0; n.len() + 1];
    for &c in pattern.as_bytes() {
        cur[0] = if c == b'*' { prev[0] } else { prev[0] + 1 };
        for j in 1..=n.len() {
            cur[j] = if c == b'*' {
                prev[j].min(cur[j - 1])
            } else {
                let sub = usize::from(c != b'?' && c != n[j - 1]);
                (prev[j - 1] + sub).min(prev[j] + 1).min(cur[j - 1] + 1)
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n.len()]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::target::{compile, parse_files, DescriptionFile};

    /// System V message queues, one call disabled for a constant the tree lacks, and LKDTM.
    fn target() -> Target {
        let text = "resource ipc_msq[int32]\n\
                    msgget(key int32, flags int32) ipc_msq\n\
                    msgsnd(msqid ipc_msq, msgp int64, sz int64, flags int32)\n\
                    msgrcv(msqid ipc_msq, msgp int64, sz int64, typ int64, flags int32)\n\
                    msgctl$IPC_RMID(msqid ipc_msq, cmd const[IPC_RMID])\n\
                    msgctl$MSG_STAT_ANY(msqid ipc_msq, cmd const[MSG_STAT_ANY])\n\
                    shmdt(addr int64)\n\
                    write$lkdtm(fd int32, buf int64, len int64)\n";
        let files = [DescriptionFile {
            name: "ipc.txt".into(),
            text: text.into(),
        }];
        let nodes = parse_files(&files).expect("parses");
        let consts: HashMap<String, u64> = [("IPC_RMID".to_string(), 0)].into();
        let numbers: HashMap<String, u64> = [
            ("msgget", 68),
            ("msgsnd", 69),
            ("msgrcv", 70),
            ("msgctl", 71),
            ("shmdt", 67),
            ("write", 1),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        compile(&nodes, &consts, &numbers)
    }

    fn globs(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    fn names(t: &Target, sel: &Selection) -> Vec<String> {
        sel.enabled
            .iter()
            .map(|id| t.syscalls[*id].name.clone())
            .collect()
    }

    #[test]
    fn glob_match_handles_stars_question_marks_and_literals() {
        assert!(glob_match("shm*", "shmget"));
        assert!(glob_match("*", ""));
        assert!(glob_match("msg???", "msgsnd"));
        assert!(!glob_match("msg??", "msgsnd"));
        assert!(glob_match("*ctl$*", "msgctl$IPC_RMID"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**x", "yyx"));
        assert!(!glob_match("shm", "shmget"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn pathological_globs_finish_at_once() {
        let start = std::time::Instant::now();
        let stars = "*".repeat(10_000);
        assert!(!glob_match(&format!("{stars}x"), &"a".repeat(200)));
        assert!(glob_match(
            &format!("{stars}x"),
            &format!("{}x", "a".repeat(200))
        ));
        assert!(!glob_match(
            &"a*".repeat(200),
            &format!("{}b", "a".repeat(150))
        ));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_million_character_glob_is_checked_at_once() {
        let t = target();
        let start = std::time::Instant::now();
        let stars = "*".repeat(1_000_000);
        let sel = select(&t, &globs(&stars), &[]).unwrap();
        assert_eq!(names(&t, &sel).len(), 5);
        let err = select(&t, &globs(&format!("{stars}qq")), &[]).unwrap_err();
        assert_eq!(err.0[0].glob, "*qq");
        let err = select(&t, &globs(&"a*".repeat(500_000)), &[]).unwrap_err();
        assert_eq!(
            err.0[0].problem,
            GlobProblem::NoMatch {
                suggestions: vec![]
            }
        );
        let err = select(&t, &globs(&"m".repeat(1_000_000)), &[]).unwrap_err();
        assert_eq!(
            err.0[0].problem,
            GlobProblem::NoMatch {
                suggestions: vec![]
            }
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn disable_globs_must_name_some_call_even_a_disabled_one() {
        let t = target();
        assert!(check_disable_globs(&t, &globs("msgctl$MSG_STAT_ANY, shm*")).is_ok());
        let err = check_disable_globs(&t, &globs("msgrvc,shm*")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`msgrvc` matches no call; did you mean `msgrcv`?"
        );
    }

    #[test]
    fn a_misspelt_name_fails_with_the_nearest_name() {
        let t = target();
        let err = select(&t, &globs("shm*,msgsnnd"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`msgsnnd` matches no call; did you mean `msgsnd`?"
        );
    }

    #[test]
    fn suggestions_are_the_best_few_base_names_or_none() {
        let t = target();
        let err = select(&t, &globs("mssg*"), &[]).unwrap_err();
        assert_eq!(
            err.0[0].problem,
            GlobProblem::NoMatch {
                suggestions: vec!["msgctl".into(), "msgget".into(), "msgrcv".into()]
            }
        );
        assert_eq!(
            err.to_string(),
            "`mssg*` matches no call; did you mean `msgctl`, `msgget` or `msgrcv`?"
        );
        let err = select(&t, &globs("msgctl$IPC_RMDI"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`msgctl$IPC_RMDI` matches no call; did you mean `msgctl$IPC_RMID`?"
        );
        let err = select(&t, &globs("io_uring_setup"), &[]).unwrap_err();
        assert_eq!(err.to_string(), "`io_uring_setup` matches no call");
    }

    #[test]
    fn every_bad_glob_is_reported_at_once() {
        let t = target();
        let err = select(&t, &globs("msgsnnd, shmdt ,zzz*"), &[]).unwrap_err();
        let bad: Vec<&str> = err.0.iter().map(|g| g.glob.as_str()).collect();
        assert_eq!(bad, ["msgsnnd", "zzz*"]);
        assert_eq!(err.to_string().lines().count(), 2);
    }

    #[test]
    fn a_glob_matching_only_disabled_calls_says_why() {
        let t = target();
        let err = select(&t, &globs("msgctl$MSG*"), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("`msgctl$MSG*` matches only disabled calls\n  msgctl$MSG_STAT_ANY: "),
            "{msg}"
        );
        assert!(msg.contains("MSG_STAT_ANY"), "{msg}");
    }

    #[test]
    fn on_purpose_crashers_need_their_name_and_the_error_says_so() {
        let t = target();
        let err = select(&t, &globs("write"), &[]);
        // `write` itself does not exist here; only write$lkdtm matches its base name.
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("crash the kernel on purpose (write$lkdtm)"),
            "{msg}"
        );
        let sel = select(&t, &globs("write$lkdtm"), &[]).unwrap();
        assert_eq!(names(&t, &sel), ["write$lkdtm"]);
    }

    #[test]
    fn good_globs_select_and_add_producers() {
        let t = target();
        let sel = select(&t, &globs("msgsnd,shm*"), &[]).unwrap();
        assert_eq!(names(&t, &sel), ["msgget", "msgsnd", "shmdt"]);
        assert_eq!(
            sel.added_for.get("msgget").map(String::as_str),
            Some("ipc_msq")
        );
        // Disable globs may name nothing; an empty list selects nothing and is no error.
        assert!(select(&t, &globs("msg*"), &globs("nothing*")).is_ok());
        assert!(select(&t, &[], &[]).unwrap().enabled.is_empty());
    }

    #[test]
    fn glob_distance_lets_wildcards_match_for_free() {
        assert_eq!(glob_distance("msgsnnd", "msgsnd"), 1);
        assert_eq!(glob_distance("msg*", "msgctl"), 0);
        assert_eq!(glob_distance("ms?snd", "msgsnd"), 0);
        assert_eq!(glob_distance("mssg*", "msgget"), 1);
        assert_eq!(glob_distance("", "abc"), 3);
        assert_eq!(glob_distance("abc", ""), 3);
    }
}
