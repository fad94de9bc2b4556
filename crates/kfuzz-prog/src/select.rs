//! Choosing the calls to fuzz: globs over call names (`shm*`, `msgsnd`; a bare name matches its
//! `name$variant`s too), `--disable` globs, and the producers of every resource the chosen calls
//! need, added automatically.

use std::collections::BTreeMap;

use crate::target::{produces, required_resources, Target};
use crate::types::SyscallId;

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub enabled: Vec<SyscallId>,
    /// Calls enabled only because a selected call needs what they create: name → the resource.
    pub added_for: BTreeMap<String, String>,
    /// Enabled calls left out, with why.
    pub left_out: BTreeMap<String, String>,
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn matches_any(globs: &[String], name: &str) -> bool {
    let base = name.split('$').next().unwrap_or(name);
    globs
        .iter()
        .any(|g| glob_match(g, name) || (!g.contains('$') && glob_match(g, base)))
}

/// Splits `shm*,msgsnd` lists (commas or whitespace).
pub fn split_globs(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|s| {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
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

pub fn select(target: &Target, globs: &[String], disable: &[String]) -> Selection {
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
    // Add producers until every needed resource can be made.
    loop {
        let mut added = false;
        let enabled = sel.enabled.clone();
        for id in enabled {
            for need in required_resources(target, &target.syscalls[id]) {
                let have = sel.enabled.iter().any(|e| {
                    let s = &target.syscalls[*e];
                    (0..target.resources.len()).any(|r| {
                        target.resources[need].accepts(&target.resources[r])
                            && produces(target, s, r)
                    })
                });
                if have {
                    continue;
                }
                let producer = target.syscalls.iter().find(|s| {
                    !sel.enabled.contains(&s.id)
                        && !matches_any(&disable, &s.name)
                        && (!ON_PURPOSE.iter().any(|w| s.name.contains(w))
                            || ON_PURPOSE.iter().any(|w| target.syscalls[id].name.contains(w)))
                        && (0..target.resources.len()).any(|r| target.resources[need].accepts(&target.resources[r]) && produces(target, s, r))
                        // Prefer plain constructors: they need nothing themselves.
                        && required_resources(target, s).is_empty()
                });
                if let Some(p) = producer {
                    sel.enabled.push(p.id);
                    sel.added_for
                        .insert(p.name.clone(), target.resources[need].name.clone());
                    added = true;
                }
            }
        }
        if !added {
            break;
        }
    }
    sel.enabled.sort();
    for s in &target.syscalls {
        if !sel.enabled.contains(&s.id) && !sel.left_out.contains_key(&s.name) {
            sel.left_out
                .insert(s.name.clone(), "not matched by --syscalls".into());
        }
    }
    sel
}
