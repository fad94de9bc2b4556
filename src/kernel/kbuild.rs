//! Reading the conditions under which kbuild compiles a piece of code: the assignments of a
//! `Makefile`/`Kbuild` (`obj-$(CONFIG_X) += foo.o`, composite `foo-y`, `ifdef CONFIG_X` blocks)
//! and the `#ifdef CONFIG_X` / `#if IS_ENABLED(CONFIG_X)` lines of a C file. Pure text in, pure
//! data out; only the simple forms are understood, anything else is "no known condition".

use serde::{Deserialize, Serialize};

use super::kconfig::DotConfig;

/// One requirement on a Kconfig symbol: it must be on (`want`) or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cond {
    /// Without the `CONFIG_` prefix.
    pub symbol: String,
    pub want: bool,
    /// `=m` counts as on (`ifdef`, `IS_ENABLED`); otherwise only built-in (`=y`) does.
    pub module_ok: bool,
}

impl Cond {
    fn new(symbol: &str, want: bool, module_ok: bool) -> Option<Cond> {
        let s = symbol.trim().strip_prefix("CONFIG_")?;
        let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| Cond {
            symbol: s.to_string(),
            want,
            module_ok,
        })
    }

    fn negated(&self) -> Cond {
        Cond {
            want: !self.want,
            ..self.clone()
        }
    }

    /// None when `config` satisfies it; otherwise why not (`CONFIG_X is not set`).
    pub fn unmet(&self, config: &DotConfig) -> Option<String> {
        let value = config.get(&self.symbol).unwrap_or("n");
        let on = match value {
            "n" => false,
            "m" => self.module_ok,
            _ => true,
        };
        if on == self.want {
            return None;
        }
        let s = &self.symbol;
        Some(match (self.want, value) {
            (true, "m") => format!("CONFIG_{s}=m, not built in"),
            (true, _) => format!("CONFIG_{s} is not set"),
            (false, _) => format!("CONFIG_{s} is set"),
        })
    }
}

/// `LHS op RHS` in a Makefile, with the conditions of the `ifdef`/`ifeq` blocks around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub lhs: String,
    pub rhs: Vec<String>,
    pub block: Vec<Cond>,
}

/// The assignments of a Makefile, continuation lines joined, comments dropped.
pub fn parse_makefile(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    // One entry per open block: its condition when understood.
    let mut blocks: Vec<Option<Cond>> = Vec::new();
    for line in logical_lines(text) {
        let line = line.split('#').next().unwrap_or("").trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match word {
            "ifdef" | "ifndef" => {
                blocks.push(Cond::new(rest, word == "ifdef", true));
                continue;
            }
            "ifeq" | "ifneq" => {
                blocks.push(make_compare(rest, word == "ifeq"));
                continue;
            }
            "else" => {
                if let Some(top) = blocks.last_mut() {
                    *top = top.as_ref().map(Cond::negated).filter(|_| rest.is_empty());
                }
                continue;
            }
            "endif" => {
                blocks.pop();
                continue;
            }
            _ => {}
        }
        let Some((lhs, rhs)) = split_assignment(line) else {
            continue;
        };
        out.push(Assignment {
            lhs: lhs.to_string(),
            rhs: rhs.split_whitespace().map(normalize_token).collect(),
            block: blocks.iter().rev().flatten().cloned().collect(),
        });
    }
    out
}

/// `($(CONFIG_X),y)`, `($(CONFIG_X),)` and the like; `eq`: `ifeq`, else `ifneq`.
fn make_compare(args: &str, eq: bool) -> Option<Cond> {
    let inner = args.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (a, b) = inner.split_once(',')?;
    let (a, b) = (a.trim(), b.trim());
    let (var, value) = if a.starts_with("$(") { (a, b) } else { (b, a) };
    let sym = var.strip_prefix("$(")?.strip_suffix(')')?;
    match value {
        "y" => Cond::new(sym, eq, false),
        "" => Cond::new(sym, !eq, true),
        _ => None,
    }
}

fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in text.lines() {
        match l.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(l);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `obj-$(CONFIG_X) += a.o b.o` → (`obj-$(CONFIG_X)`, `a.o b.o`).
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let eq = line.find('=')?;
    let (mut lhs, rhs) = (&line[..eq], &line[eq + 1..]);
    if let Some(l) = lhs.strip_suffix([':', '+', '?']) {
        lhs = l;
    }
    let lhs = lhs.trim();
    let ok = !lhs.is_empty()
        && lhs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-$().".contains(&b));
    ok.then_some((lhs, rhs))
}

/// `arch/$(SRCARCH)/` → `arch/x86/`, `process_$(BITS).o` → `process_64.o` (x86-64's values);
/// `./foo.o` → `foo.o`.
fn normalize_token(t: &str) -> String {
    let t = t.replace("$(SRCARCH)", "x86").replace("$(BITS)", "64");
    t.strip_prefix("./").unwrap_or(&t).to_string()
}

/// How an assignment's left side puts its objects into the build.
#[derive(Debug, PartialEq, Eq)]
pub enum Lhs {
    /// `obj-…`/`lib-…`: into this directory's build, under the condition if any.
    Built(Option<Cond>),
    /// `foo-…`/`foo-objs`/a plain variable: parts of something else, named by these tokens.
    PartOf(Vec<String>, Option<Cond>),
}

pub fn classify(lhs: &str) -> Lhs {
    let dash = if lhs.ends_with(')') {
        lhs.rfind("-$(")
    } else {
        lhs.rfind('-')
    };
    let (name, suffix) = match dash {
        Some(i) => (&lhs[..i], &lhs[i + 1..]),
        None => return Lhs::PartOf(vec![format!("$({lhs})")], None),
    };
    let cond = suffix
        .strip_prefix("$(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| Cond::new(s, true, false));
    if matches!(name, "obj" | "lib") {
        return Lhs::Built(cond);
    }
    let names = vec![
        format!("{name}.o"),
        format!("$({name}-y)"),
        format!("$({name}-objs)"),
    ];
    Lhs::PartOf(names, cond)
}

/// Calls `f(line number, line, conditions)` for each line of a C file but the conditional
/// directives themselves (`#if`, `#else`, …), with the `CONFIG_` conditions of the `#if` blocks around it,
/// innermost first (blocks whose condition is not understood add none).
pub fn walk_c_conditions(text: &str, mut f: impl FnMut(usize, &str, Vec<Cond>)) {
    let mut stack: Vec<Option<Vec<Cond>>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(d) = t.strip_prefix('#') {
            let d = strip_c_comment(d.trim_start());
            let (word, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
            match word {
                "ifdef" => stack.push(Cond::new(rest, true, false).map(|c| vec![c])),
                "ifndef" => stack.push(Cond::new(rest, false, false).map(|c| vec![c])),
                "if" => stack.push(c_if_expr(rest)),
                "elif" => {
                    if let Some(top) = stack.last_mut() {
                        *top = None;
                    }
                }
                "else" => {
                    if let Some(top) = stack.last_mut() {
                        *top = match top.take() {
                            Some(v) if v.len() == 1 => Some(vec![v[0].negated()]),
                            _ => None,
                        };
                    }
                }
                "endif" => {
                    stack.pop();
                }
                _ => {
                    let conds = stack.iter().rev().flatten().flatten().cloned().collect();
                    f(i + 1, line, conds);
                }
            }
            continue;
        }
        let conds: Vec<Cond> = stack.iter().rev().flatten().flatten().cloned().collect();
        f(i + 1, line, conds);
    }
}

fn strip_c_comment(s: &str) -> &str {
    let end = [s.find("/*"), s.find("//")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(s.len());
    s[..end].trim()
}

/// `defined(CONFIG_X) && IS_ENABLED(CONFIG_Y)`, `!IS_ENABLED(CONFIG_X)`, `CONFIG_X`; no `||`.
fn c_if_expr(expr: &str) -> Option<Vec<Cond>> {
    if expr.contains("||") {
        return None;
    }
    let mut out = Vec::new();
    for term in expr.split("&&") {
        let mut t = term.trim();
        let mut want = true;
        while let Some(r) = t.strip_prefix('!') {
            want = !want;
            t = r.trim_start();
        }
        let t = t.trim_start_matches('(').trim_end_matches(')');
        let (func, arg) = match t.split_once(['(', ' ']) {
            Some((f, a)) => (f.trim(), a.trim().trim_start_matches('(')),
            None => ("", t),
        };
        let module_ok = match func {
            "defined" | "IS_BUILTIN" => false,
            "IS_ENABLED" | "IS_REACHABLE" => true,
            "" => false,
            _ => return None,
        };
        out.push(Cond::new(arg, want, module_ok)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(s: &str, want: bool, module_ok: bool) -> Cond {
        Cond::new(&format!("CONFIG_{s}"), want, module_ok).unwrap()
    }

    #[test]
    fn makefile_assignments_carry_their_blocks() {
        let mk = "mmu-y := nommu.o\nmmu-$(CONFIG_MMU) := memory.o \\\n\t mmap.o\n\
                  obj-y := filemap.o $(mmu-y) # comment\n\
                  ifdef CONFIG_MMU\n\tobj-$(CONFIG_ADVISE_SYSCALLS) += madvise.o\nendif\n\
                  ifneq ($(CONFIG_NUMA),y)\nobj-y += x.o\nelse\nobj-y += y.o\nendif\n\
                  obj-y += arch/$(SRCARCH)/\n";
        let a = parse_makefile(mk);
        assert_eq!(a[1].lhs, "mmu-$(CONFIG_MMU)");
        assert_eq!(a[1].rhs, ["memory.o", "mmap.o"]);
        assert_eq!(a[2].rhs, ["filemap.o", "$(mmu-y)"]);
        assert_eq!(a[3].rhs, ["madvise.o"]);
        assert_eq!(a[3].block, [cond("MMU", true, true)]);
        assert_eq!(a[4].block, [cond("NUMA", false, false)]);
        assert_eq!(a[5].block, [cond("NUMA", true, false)]);
        assert_eq!(a[6].rhs, ["arch/x86/"]);
        assert_eq!(
            classify(&a[3].lhs),
            Lhs::Built(Some(cond("ADVISE_SYSCALLS", true, false)))
        );
        assert!(matches!(classify(&a[1].lhs), Lhs::PartOf(n, Some(_)) if n[0] == "mmu.o"));
        assert!(matches!(classify("page-alloc-y"), Lhs::PartOf(n, None) if n[0] == "page-alloc.o"));
    }

    #[test]
    fn c_conditions_nest_and_flip_on_else() {
        let c = "#ifdef CONFIG_A\n#if IS_ENABLED(CONFIG_B) && !defined(CONFIG_C)\nx1\n#else\n\
                 x2\n#endif\n#ifdef __ARCH_WANT_X\nx3\n#endif\n#endif /* CONFIG_A */\nx4\n";
        let mut seen = Vec::new();
        walk_c_conditions(c, |_, l, conds| seen.push((l.to_string(), conds)));
        assert_eq!(
            seen[0].1,
            [
                cond("B", true, true),
                cond("C", false, false),
                cond("A", true, false)
            ]
        );
        assert_eq!(seen[1].1, [cond("A", true, false)]);
        assert_eq!(seen[2].1, [cond("A", true, false)]);
        assert!(seen[3].1.is_empty());
    }

    #[test]
    fn unmet_conditions_say_what_the_config_has() {
        let cfg = DotConfig::parse("CONFIG_A=y\nCONFIG_M=m\n# CONFIG_N is not set\n");
        assert_eq!(cond("A", true, false).unmet(&cfg), None);
        assert_eq!(
            cond("N", true, false).unmet(&cfg).as_deref(),
            Some("CONFIG_N is not set")
        );
        assert_eq!(
            cond("ABSENT", true, true).unmet(&cfg).as_deref(),
            Some("CONFIG_ABSENT is not set")
        );
        assert_eq!(
            cond("M", true, false).unmet(&cfg).as_deref(),
            Some("CONFIG_M=m, not built in")
        );
        assert_eq!(cond("M", true, true).unmet(&cfg), None);
        assert_eq!(
            cond("A", false, false).unmet(&cfg).as_deref(),
            Some("CONFIG_A is set")
        );
    }
}
