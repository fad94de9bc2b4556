//! Kconfig fragments and `.config` files: parsing, merging in order (later wins, the semantics of
//! `scripts/kconfig/merge_config.sh`), and verifying that what was asked for is what `make
//! olddefconfig` kept. Pure: the callers read and write the files.

use std::collections::HashMap;
use std::fmt;

use anyhow::bail;

/// `CONFIG_X=v` → `("X", "v")`; `# CONFIG_X is not set` → `("X", "n")`; anything else → None.
pub fn parse_assignment(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('#') {
        let sym = rest
            .trim()
            .strip_prefix("CONFIG_")?
            .strip_suffix(" is not set")?;
        return valid_symbol(sym).then(|| (sym.to_string(), "n".to_string()));
    }
    let (lhs, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
    (valid_symbol(lhs) && !value.is_empty()).then(|| (lhs.to_string(), value.to_string()))
}

fn valid_symbol(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn render(symbol: &str, value: &str) -> String {
    if value == "n" {
        format!("# CONFIG_{symbol} is not set")
    } else {
        format!("CONFIG_{symbol}={value}")
    }
}

/// One requested value and where it was asked for (`kcov.config:4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub symbol: String,
    pub value: String,
    pub origin: String,
}

/// A parsed fragment: its requests in file order.
#[derive(Debug, Clone)]
pub struct KconfigFragment {
    pub name: String,
    pub requests: Vec<Request>,
}

impl KconfigFragment {
    /// Parses fragment text. `name` is used in errors and origins (`kcov.config`).
    pub fn parse(name: &str, text: &str) -> anyhow::Result<KconfigFragment> {
        let mut requests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if let Some((symbol, value)) = parse_assignment(trimmed) {
                requests.push(Request {
                    symbol,
                    value,
                    origin: format!("{name}:{}", i + 1),
                });
            } else if !(trimmed.is_empty() || trimmed.starts_with('#')) {
                bail!(
                    "{name}:{}: expected `CONFIG_NAME=value`, `# CONFIG_NAME is not set` or a \
                     comment, found {trimmed:?}",
                    i + 1
                );
            }
        }
        Ok(KconfigFragment {
            name: name.to_string(),
            requests,
        })
    }
}

/// A `.config`: symbols in file order with their values (`n` for "is not set").
#[derive(Debug, Clone, Default)]
pub struct DotConfig {
    order: Vec<String>,
    values: HashMap<String, String>,
}

impl DotConfig {
    pub fn parse(text: &str) -> DotConfig {
        let mut c = DotConfig::default();
        for line in text.lines() {
            if let Some((s, v)) = parse_assignment(line) {
                c.set(&s, &v);
            }
        }
        c
    }

    pub fn get(&self, symbol: &str) -> Option<&str> {
        self.values.get(symbol).map(String::as_str)
    }

    pub fn set(&mut self, symbol: &str, value: &str) {
        if self
            .values
            .insert(symbol.to_string(), value.to_string())
            .is_none()
        {
            self.order.push(symbol.to_string());
        }
    }

    /// Applies the fragments in order; a later fragment overrides an earlier one. Like
    /// merge_config.sh, an overridden symbol moves to the end of the file: for a `choice`, the
    /// member set last is the one Kconfig keeps (`KERNEL_GZIP=y` over a base's `KERNEL_XZ=y`).
    pub fn merge<'a>(&mut self, requests: impl IntoIterator<Item = &'a Request>) {
        for r in requests {
            self.order.retain(|s| *s != r.symbol);
            self.values.remove(&r.symbol);
            self.set(&r.symbol, &r.value);
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.order {
            out.push_str(&render(s, &self.values[s]));
            out.push('\n');
        }
        out
    }
}

/// The effective requests after later-wins: one per symbol, the last one asked for.
pub fn effective_requests(requests: &[Request]) -> Vec<Request> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        last.insert(&r.symbol, i);
    }
    requests
        .iter()
        .enumerate()
        .filter(|(i, r)| last[r.symbol.as_str()] == *i)
        .map(|(_, r)| r.clone())
        .collect()
}

/// A requested value that did not survive `make olddefconfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub request: Request,
    /// The final value; None when the symbol is absent from `.config` (not visible).
    pub got: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let got = match self.got.as_deref() {
            None => "absent (not visible with this configuration)".to_string(),
            Some("n") => "not set".to_string(),
            Some(v) => format!("={v}"),
        };
        let wanted = if self.request.value == "n" {
            " is not set".to_string()
        } else {
            format!("={}", self.request.value)
        };
        write!(
            f,
            "CONFIG_{}{wanted} requested ({}), but the final .config has it {got}",
            self.request.symbol, self.request.origin
        )
    }
}

/// Every effective request whose value is not the final one.
pub fn verify(requests: &[Request], config: &DotConfig) -> Vec<Mismatch> {
    effective_requests(requests)
        .into_iter()
        .filter_map(|request| {
            let got = config.get(&request.symbol);
            let ok = match got {
                Some(v) => v == request.value,
                None => request.value == "n",
            };
            (!ok).then(|| Mismatch {
                got: got.map(str::to_string),
                request,
            })
        })
        .collect()
}

/// What a tree's Kconfig says about a symbol: where it is defined, its `depends on` lines,
/// and whether the user can set it at all (it has a prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolDefinition {
    pub file: String,
    pub line: usize,
    pub depends_on: Vec<String>,
    pub has_prompt: bool,
}

const BLOCK_ENDS: &[&str] = &[
    "config",
    "menuconfig",
    "choice",
    "endchoice",
    "menu",
    "endmenu",
    "if",
    "endif",
    "source",
    "comment",
    "mainmenu",
];

/// Finds `config SYMBOL` blocks in one Kconfig file's text.
pub fn find_definitions(file: &str, text: &str, symbol: &str) -> Vec<SymbolDefinition> {
    let lines: Vec<&str> = text.lines().collect();
    let mut defs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(kw), Some(name), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !(kw == "config" || kw == "menuconfig") || name != symbol {
            continue;
        }
        let mut def = SymbolDefinition {
            file: file.to_string(),
            line: i + 1,
            depends_on: Vec::new(),
            has_prompt: false,
        };
        let mut j = i + 1;
        while j < lines.len() {
            // Join backslash continuations.
            let mut l = lines[j].trim().to_string();
            while l.ends_with('\\') && j + 1 < lines.len() {
                l.pop();
                j += 1;
                l.push(' ');
                l.push_str(lines[j].trim());
            }
            j += 1;
            let first = l.split_whitespace().next().unwrap_or("");
            if BLOCK_ENDS.contains(&first) {
                break;
            }
            if first == "help" || first == "---help---" {
                break;
            }
            if let Some(dep) = l.strip_prefix("depends on") {
                def.depends_on
                    .push(dep.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            let typed = ["bool", "tristate", "string", "int", "hex", "prompt"];
            if typed.contains(&first) && l[first.len()..].trim_start().starts_with('"') {
                def.has_prompt = true;
            }
        }
        defs.push(def);
    }
    defs
}

/// The symbols named in a `depends on` expression, with their value in `config`:
/// `SYSFS && !SLUB_TINY` → `[("SYSFS", "y"), ("SLUB_TINY", "y")]`.
pub fn dependency_values(expr: &str, config: &DotConfig) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.is_empty()
            || word.chars().all(|c| c.is_ascii_digit())
            || matches!(word, "y" | "n" | "m")
            || out.iter().any(|(s, _)| s == word)
        {
            continue;
        }
        let v = config.get(word).unwrap_or("n").to_string();
        out.push((word.to_string(), v));
    }
    out
}

/// Evaluates a Kconfig `depends on` expression against a `.config` (tristate logic: `n` < `m` <
/// `y`, absent symbols are `n`). None when the expression is not understood.
pub fn eval_expr(expr: &str, config: &DotConfig) -> Option<bool> {
    let tokens = tokenize(expr)?;
    let mut p = ExprParser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
        config,
    };
    let v = p.or()?;
    (p.pos == tokens.len()).then_some(v > 0)
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Op(&'static str),
}

fn tokenize(expr: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = expr.get(i..i + 2);
        if let Some(op) = ["&&", "||", "!=", "<=", ">="]
            .into_iter()
            .find(|o| Some(*o) == two)
        {
            out.push(Token::Op(op));
            i += 2;
        } else if let Some(op) = ["!", "(", ")", "=", "<", ">"]
            .into_iter()
            .find(|o| o.as_bytes()[0] == c)
        {
            out.push(Token::Op(op));
            i += 1;
        } else if c == b'"' {
            let end = expr[i + 1..].find('"')? + i + 1;
            out.push(Token::Word(expr[i + 1..end].to_string()));
            i = end + 1;
        } else {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                i += 1;
            }
            if start == i {
                return None;
            }
            out.push(Token::Word(expr[start..i].to_string()));
        }
    }
    Some(out)
}

/// How deep `!` and parentheses may nest: real Kconfig goes a few levels deep; a line of
/// thousands of `(` must be a "not understood", not a stack overflow.
const MAX_EXPR_DEPTH: usize = 64;

struct ExprParser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// `!` and `(` being parsed around the current token.
    depth: usize,
    config: &'a DotConfig,
}

impl ExprParser<'_> {
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.tokens.get(self.pos), Some(Token::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<u8> {
        let mut v = self.and()?;
        while self.eat("||") {
            v = v.max(self.and()?);
        }
        Some(v)
    }

    fn and(&mut self) -> Option<u8> {
        let mut v = self.not()?;
        while self.eat("&&") {
            v = v.min(self.not()?);
        }
        Some(v)
    }

    fn not(&mut self) -> Option<u8> {
        if self.depth >= MAX_EXPR_DEPTH {
            return None;
        }
        self.depth += 1;
        let v = self.operand();
        self.depth -= 1;
        v
    }

    fn operand(&mut self) -> Option<u8> {
        if self.eat("!") {
            return Some(2 - self.not()?);
        }
        if self.eat("(") {
            let v = self.or()?;
            return self.eat(")").then_some(v);
        }
        let left = self.word()?;
        for op in ["=", "!=", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                let right = self.word()?;
                let (l, r) = (self.value(&left), self.value(&right));
                let ord = match (l.parse::<i64>(), r.parse::<i64>()) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => l.cmp(&r),
                };
                let t = match op {
                    "=" => ord.is_eq(),
                    "!=" => ord.is_ne(),
                    "<=" => ord.is_le(),
                    ">=" => ord.is_ge(),
                    "<" => ord.is_lt(),
                    _ => ord.is_gt(),
                };
                return Some(if t { 2 } else { 0 });
            }
        }
        Some(match self.value(&left).as_str() {
            "y" => 2,
            "m" => 1,
            _ => 0,
        })
    }

    fn word(&mut self) -> Option<String> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Some(w.clone())
            }
            _ => None,
        }
    }

    /// A symbol's value, or the word itself when it is a literal (`y`, `64`, `"x"`).
    fn value(&self, word: &str) -> String {
        if matches!(word, "y" | "m" | "n") || !word.bytes().any(|b| b.is_ascii_uppercase()) {
            return word.to_string();
        }
        self.config
            .get(word)
            .unwrap_or("n")
            .trim_matches('"')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse() {
        assert_eq!(
            parse_assignment("CONFIG_KCOV=y"),
            Some(("KCOV".into(), "y".into()))
        );
        assert_eq!(
            parse_assignment("# CONFIG_KASAN is not set"),
            Some(("KASAN".into(), "n".into()))
        );
        assert_eq!(
            parse_assignment("CONFIG_CMDLINE=\"console=ttyS0\""),
            Some(("CMDLINE".into(), "\"console=ttyS0\"".into()))
        );
        assert_eq!(parse_assignment("CONFIG_X="), None);
        assert_eq!(parse_assignment("KCOV=y"), None);
        assert_eq!(parse_assignment("# just a comment"), None);
    }

    #[test]
    fn fragments_merge_in_order_and_later_wins() {
        let a = KconfigFragment::parse("a.config", "CONFIG_A=y\nCONFIG_B=y\n# c\n").unwrap();
        let b = KconfigFragment::parse("b.config", "# CONFIG_A is not set\nCONFIG_C=5\n").unwrap();
        let mut config = DotConfig::parse("CONFIG_BASE=y\nCONFIG_B=m\n");
        let all: Vec<Request> = a.requests.iter().chain(&b.requests).cloned().collect();
        config.merge(&all);
        assert_eq!(
            config.to_text(),
            "CONFIG_BASE=y\nCONFIG_B=y\n# CONFIG_A is not set\nCONFIG_C=5\n"
        );
        let eff = effective_requests(&all);
        let a_req = eff.iter().find(|r| r.symbol == "A").unwrap();
        assert_eq!(a_req.value, "n");
        assert_eq!(a_req.origin, "b.config:1");
        assert_eq!(eff.len(), 3);
    }

    #[test]
    fn a_bad_fragment_line_names_file_and_line() {
        let err = KconfigFragment::parse("kcov.config", "CONFIG_KCOV=y\nKCOV_INSTRUMENT_ALL=y\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("kcov.config:2: expected"), "{err}");
    }

    #[test]
    fn verification_reports_what_did_not_stick() {
        let frag = KconfigFragment::parse(
            "kasan.config",
            "CONFIG_KASAN=y\nCONFIG_KCOV=y\n# CONFIG_RANDOMIZE_BASE is not set\nCONFIG_GONE=y\n",
        )
        .unwrap();
        let final_config =
            DotConfig::parse("# CONFIG_KASAN is not set\nCONFIG_KCOV=y\nCONFIG_SLUB_TINY=y\n");
        let mismatches = verify(&frag.requests, &final_config);
        assert_eq!(mismatches.len(), 2);
        assert_eq!(mismatches[0].request.symbol, "KASAN");
        assert_eq!(mismatches[0].got.as_deref(), Some("n"));
        assert_eq!(
            mismatches[0].to_string(),
            "CONFIG_KASAN=y requested (kasan.config:1), but the final .config has it not set"
        );
        assert_eq!(mismatches[1].request.symbol, "GONE");
        assert_eq!(mismatches[1].got, None);
    }

    #[test]
    fn kconfig_definitions_give_depends_and_prompt() {
        let text = "menuconfig KASAN\n\tbool \"KASAN: detector\"\n\tdepends on (HAVE_A && \\\n\
                    \t\t CC_B) || HAVE_C\n\tdepends on SYSFS && !SLUB_TINY\n\tselect X\n\thelp\n\
                    \t  depends on NOT_THIS\n\nconfig HIDDEN\n\tbool\n\tdepends on FOO\n";
        let defs = find_definitions("lib/Kconfig.kasan", text, "KASAN");
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].line, 1);
        assert!(defs[0].has_prompt);
        assert_eq!(
            defs[0].depends_on,
            ["(HAVE_A && CC_B) || HAVE_C", "SYSFS && !SLUB_TINY"]
        );
        let hidden = find_definitions("f", text, "HIDDEN");
        assert!(!hidden[0].has_prompt);
        assert_eq!(hidden[0].depends_on, ["FOO"]);

        let config = DotConfig::parse("CONFIG_SYSFS=y\nCONFIG_SLUB_TINY=y\nCONFIG_BITS=64\n");
        assert_eq!(eval_expr("SYSFS && !SLUB_TINY", &config), Some(false));
        assert_eq!(
            eval_expr("SYSFS && (!SLUB_TINY || COMPILE_TEST)", &config),
            Some(false)
        );
        assert_eq!(eval_expr("SYSFS && !MISSING", &config), Some(true));
        assert_eq!(
            eval_expr("BITS = 64 && !(MISSING || SLUB_TINY=n)", &config),
            Some(true)
        );
        assert_eq!(eval_expr("SYSFS &&", &config), None);
        assert_eq!(
            dependency_values("SYSFS && !SLUB_TINY", &config),
            [
                ("SYSFS".into(), "y".into()),
                ("SLUB_TINY".into(), "y".into())
            ]
        );
    }

    /// Found by `cargo fuzz run kconfig`: a line of 200 000 `(` overflowed the stack.
    #[test]
    fn deeply_nested_expressions_are_not_understood_instead_of_overflowing() {
        let config = DotConfig::parse("CONFIG_A=y\n");
        assert_eq!(eval_expr(&"(".repeat(200_000), &config), None);
        assert_eq!(
            eval_expr(&format!("{}A", "!".repeat(200_000)), &config),
            None
        );
        let nested = format!("{}A{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(eval_expr(&nested, &config), Some(true));
        assert_eq!(eval_expr(&format!("!!!!{nested}"), &config), Some(true));
    }
}
