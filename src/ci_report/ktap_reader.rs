//! A reader of KTAP version 1 (Documentation/dev-tools/ktap.rst): version line, plan, result
//! lines with their directives, `# ` diagnostics, and subtests nested by indentation. It
//! checks what our own `--ktap` output must get right (numbering, plans, closed subtests) and
//! reads kselftest and KUnit output too (KUnit's `# Subtest: NAME` names a subtest). Lines
//! that are none of the four kinds are "unknown lines" and are counted, never an error.

use std::fmt;

/// A directive after `#` on a result line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Skip,
    Todo,
    Xfail,
    Timeout,
    Error,
}

impl Directive {
    fn from_word(w: &str) -> Option<Directive> {
        Some(match w.to_ascii_uppercase().as_str() {
            "SKIP" => Directive::Skip,
            "TODO" => Directive::Todo,
            "XFAIL" => Directive::Xfail,
            "TIMEOUT" => Directive::Timeout,
            "ERROR" => Directive::Error,
            _ => return None,
        })
    }
}

/// One test's result line, with what came before it at its level.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub number: usize,
    pub ok: bool,
    /// The description (test name); empty when the line has none.
    pub name: String,
    pub directive: Option<Directive>,
    /// The text after `#` (and after the directive, if any); empty when none.
    pub data: String,
    /// The `# ` diagnostic lines between the previous result line and this one.
    pub diagnostics: Vec<String>,
    /// The nested KTAP document of this test's subtests.
    pub subtests: Option<Document>,
    /// 1-based line of the result line.
    pub line: usize,
}

impl TestResult {
    /// True for a test skipped (`# SKIP`, whatever its ok / not ok).
    pub fn skipped(&self) -> bool {
        self.directive == Some(Directive::Skip)
    }
}

/// One level of KTAP: the top-level output, or a test's subtests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// `KTAP version 1`, `TAP version 13`, …: the version line's text.
    pub version: String,
    /// The `N` of `1..N`, when there is a plan.
    pub plan: Option<usize>,
    /// From KUnit's `# Subtest: NAME` line.
    pub name: Option<String>,
    pub tests: Vec<TestResult>,
    /// Diagnostics after the last result line of this level.
    pub trailing: Vec<String>,
    /// Lines that were neither version, plan, result nor diagnostic.
    pub unknown_lines: usize,
}

/// Counts of one level's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Document {
    /// This level's results: skipped tests count as skipped, whatever their `ok`.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for t in &self.tests {
            if t.skipped() {
                c.skip += 1;
            } else if t.ok {
                c.pass += 1;
            } else {
                c.fail += 1;
            }
        }
        c
    }

    /// The test named `name` at this level.
    pub fn test(&self, name: &str) -> Option<&TestResult> {
        self.tests.iter().find(|t| t.name == name)
    }
}

/// What is wrong, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

struct Level {
    indent: usize,
    doc: Document,
    /// Diagnostics waiting for this level's next result line.
    pending: Vec<String>,
    /// A finished subtest document waiting for this level's next result line.
    child: Option<(Document, usize)>,
    /// Line of the version line.
    opened: usize,
}

impl Level {
    fn new(indent: usize, version: &str, line: usize) -> Level {
        Level {
            indent,
            doc: Document {
                version: version.to_string(),
                ..Document::default()
            },
            pending: Vec::new(),
            child: None,
            opened: line,
        }
    }
}

fn version_line(body: &str) -> Option<&str> {
    let rest = body
        .strip_prefix("KTAP version ")
        .or_else(|| body.strip_prefix("TAP version "))?;
    (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())).then_some(body)
}

fn plan_line(body: &str) -> Option<Option<usize>> {
    let n = body.strip_prefix("1..")?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(n.parse().ok())
}

struct ResultLine {
    ok: bool,
    number: Option<usize>,
    name: String,
    directive: Option<Directive>,
    data: String,
}

fn result_line(body: &str) -> Option<ResultLine> {
    let (ok, rest) = if let Some(r) = body.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = body.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].parse().ok();
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let (desc, after) = match rest.split_once('#') {
        Some((d, a)) => (d, Some(a)),
        None => (rest, None),
    };
    let desc = desc.trim();
    let name = desc.strip_prefix("- ").unwrap_or(desc).trim().to_string();
    let (directive, data) = match after.map(str::trim) {
        None => (None, String::new()),
        Some(a) => {
            let (word, tail) = a.split_once(char::is_whitespace).unwrap_or((a, ""));
            match Directive::from_word(word) {
                Some(d) => (Some(d), tail.trim().to_string()),
                None => (None, a.to_string()),
            }
        }
    };
    Some(ResultLine {
        ok,
        number,
        name,
        directive,
        data,
    })
}

/// Closes the innermost level: checks its plan and hands it to its parent, which must give it
/// a result line next.
fn close(stack: &mut Vec<Level>, line: usize) -> Result<(), ParseError> {
    let Some(mut done) = stack.pop() else {
        return Ok(());
    };
    check_plan(&done.doc, done.opened)?;
    if let Some((_, at)) = done.child {
        return Err(ParseError {
            line: at,
            message: "a subtest ends without the result line of the test it belongs to".into(),
        });
    }
    done.doc.trailing.append(&mut done.pending);
    let Some(parent) = stack.last_mut() else {
        return Ok(());
    };
    if parent.child.is_some() {
        return Err(ParseError {
            line,
            message: "two subtest blocks for one result line".into(),
        });
    }
    parent.child = Some((done.doc, done.opened));
    Ok(())
}

fn check_plan(doc: &Document, opened: usize) -> Result<(), ParseError> {
    match doc.plan {
        Some(n) if n != doc.tests.len() => Err(ParseError {
            line: opened,
            message: format!(
                "the plan says 1..{n} but {} result line(s) follow",
                doc.tests.len()
            ),
        }),
        _ => Ok(()),
    }
}

/// Parses a KTAP document. Everything before the first version line is ignored (a console's
/// earlier output).
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let mut stack: Vec<Level> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let body = raw.trim_start_matches(' ');
        let indent = raw.len() - body.len();
        let body = body.trim_end();
        if body.is_empty() {
            continue;
        }
        if let Some(version) = version_line(body) {
            match stack.last() {
                None => stack.push(Level::new(indent, version, line)),
                Some(top) if indent > top.indent => {
                    stack.push(Level::new(indent, version, line));
                }
                Some(top) => {
                    return Err(ParseError {
                        line,
                        message: format!(
                            "a version line indented {indent} inside a test indented {}: \
                             subtests are indented deeper than their parent",
                            top.indent
                        ),
                    })
                }
            }
            continue;
        }
        if stack.is_empty() {
            continue;
        }
        let plan = plan_line(body);
        let result = result_line(body);
        let diagnostic = body.strip_prefix('#');
        if plan.is_none() && result.is_none() && diagnostic.is_none() {
            if let Some(top) = stack.last_mut() {
                top.doc.unknown_lines += 1;
            }
            continue;
        }
        // A line less indented than the innermost level ends that level.
        while stack.len() > 1 && stack.last().is_some_and(|l| indent < l.indent) {
            close(&mut stack, line)?;
        }
        let Some(top) = stack.last_mut() else {
            continue;
        };
        if let Some(plan) = plan {
            let Some(n) = plan else {
                return Err(ParseError {
                    line,
                    message: format!("`{body}`: the plan's count does not fit a number"),
                });
            };
            if top.doc.plan.is_some() || !top.doc.tests.is_empty() {
                return Err(ParseError {
                    line,
                    message: "a plan after this level's plan or results".into(),
                });
            }
            top.doc.plan = Some(n);
        } else if let Some(r) = result {
            let expected = top.doc.tests.len() + 1;
            if r.number != Some(expected) {
                return Err(ParseError {
                    line,
                    message: format!(
                        "test number {} where {expected} was expected (numbers start at 1 \
                         and grow by 1 at each level)",
                        body.split_whitespace()
                            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
                            .unwrap_or("?")
                    ),
                });
            }
            let subtests = top.child.take().map(|(d, _)| d);
            let diagnostics = std::mem::take(&mut top.pending);
            top.doc.tests.push(TestResult {
                number: expected,
                ok: r.ok,
                name: r.name,
                directive: r.directive,
                data: r.data,
                diagnostics,
                subtests,
                line,
            });
        } else if let Some(d) = diagnostic {
            let d = d.strip_prefix(' ').unwrap_or(d);
            match d.strip_prefix("Subtest: ") {
                Some(name) if top.doc.tests.is_empty() && top.doc.name.is_none() => {
                    top.doc.name = Some(name.trim().to_string());
                }
                _ => top.pending.push(d.to_string()),
            }
        }
    }
    let end = text.lines().count();
    while stack.len() > 1 {
        close(&mut stack, end)?;
    }
    let Some(mut top) = stack.pop() else {
        return Err(ParseError {
            line: 1,
            message: "no version line (`KTAP version 1`)".into(),
        });
    };
    if let Some((_, at)) = top.child {
        return Err(ParseError {
            line: at,
            message: "a subtest ends without the result line of the test it belongs to".into(),
        });
    }
    check_plan(&top.doc, top.opened)?;
    top.doc.trailing.append(&mut top.pending);
    Ok(top.doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_results_with_directives_and_diagnostics() {
        let doc = parse(
            "KTAP version 1\n\
             1..5\n\
             # checking the first thing\n\
             ok 1 first\n\
             not ok 2 - second # exit=1\n\
             ok 3 third # SKIP needs a device\n\
             not ok 4 fourth # TODO not written yet\n\
             not ok 5 fifth # TIMEOUT 30 seconds\n\
             # all done\n",
        )
        .unwrap();
        assert_eq!(doc.version, "KTAP version 1");
        assert_eq!(doc.plan, Some(5));
        let names: Vec<_> = doc.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["first", "second", "third", "fourth", "fifth"]);
        assert_eq!(doc.tests[0].diagnostics, ["checking the first thing"]);
        assert_eq!(
            (
                doc.tests[1].ok,
                doc.tests[1].directive,
                doc.tests[1].data.as_str()
            ),
            (false, None, "exit=1")
        );
        assert!(doc.tests[2].skipped() && doc.tests[2].ok);
        assert_eq!(doc.tests[2].data, "needs a device");
        assert_eq!(doc.tests[3].directive, Some(Directive::Todo));
        assert_eq!(doc.tests[4].directive, Some(Directive::Timeout));
        assert_eq!(doc.trailing, ["all done"]);
        assert_eq!(
            doc.counts(),
            Counts {
                pass: 1,
                fail: 3,
                skip: 1
            }
        );
    }

    #[test]
    fn nested_subtests_by_indentation() {
        // Two levels of nesting, a diagnostic between a subtest block and its parent's
        // result, and the same names at different levels.
        let doc = parse(
            "KTAP version 1\n\
             1..2\n\
             \x20 KTAP version 1\n\
             \x20 1..2\n\
             \x20   KTAP version 1\n\
             \x20   1..2\n\
             \x20   ok 1 leaf\n\
             \x20   ok 2 other # SKIP not here\n\
             \x20 ok 1 middle\n\
             \x20 not ok 2 leaf\n\
             # group failed\n\
             not ok 1 group\n\
             ok 2 alone\n",
        )
        .unwrap();
        assert_eq!(doc.tests.len(), 2);
        let group = &doc.tests[0];
        assert_eq!((group.name.as_str(), group.ok), ("group", false));
        assert_eq!(group.diagnostics, ["group failed"]);
        let sub = group.subtests.as_ref().unwrap();
        assert_eq!(sub.plan, Some(2));
        assert_eq!(sub.tests[1].name, "leaf");
        let inner = sub.tests[0].subtests.as_ref().unwrap();
        assert_eq!(
            inner.counts(),
            Counts {
                pass: 1,
                fail: 0,
                skip: 1
            }
        );
        assert!(doc.tests[1].subtests.is_none());
    }

    #[test]
    fn kunit_style_suites_with_four_space_indentation() {
        // As KUnit prints a run: suites indented by four spaces and named by `# Subtest:`,
        // the suite's counts as a diagnostic at its own indentation, parameterised cases one
        // level deeper, and console noise before the version line.
        let doc = parse(
            "[    1.234] random console line\n\
             KTAP version 1\n\
             1..2\n\
             \x20   KTAP version 1\n\
             \x20   # Subtest: widget\n\
             \x20   # module: widget_test\n\
             \x20   1..3\n\
             \x20   ok 1 widget_init\n\
             \x20   # widget_resize: EXPECTATION FAILED at lib/widget_test.c:40\n\
             \x20   not ok 2 widget_resize\n\
             \x20       KTAP version 1\n\
             \x20       # Subtest: widget_params\n\
             \x20       ok 1 small\n\
             \x20       ok 2 large # SKIP too big for this machine\n\
             \x20   # widget_params: pass:1 fail:0 skip:1 total:2\n\
             \x20   ok 3 widget_params\n\
             \x20   # widget: pass:2 fail:1 skip:0 total:3\n\
             not ok 1 widget\n\
             \x20   KTAP version 1\n\
             \x20   # Subtest: gadget\n\
             \x20   1..1\n\
             \x20   ok 1 gadget_all # SKIP no gadget\n\
             ok 2 gadget # SKIP\n\
             # Totals: pass:1 fail:1 skip:1 total:3\n",
        )
        .unwrap();
        let widget = doc.test("widget").unwrap();
        let suite = widget.subtests.as_ref().unwrap();
        assert_eq!(suite.name.as_deref(), Some("widget"));
        assert_eq!(
            suite.counts(),
            Counts {
                pass: 2,
                fail: 1,
                skip: 0
            }
        );
        assert_eq!(
            suite.tests[1].diagnostics,
            ["widget_resize: EXPECTATION FAILED at lib/widget_test.c:40"]
        );
        let params = suite.tests[2].subtests.as_ref().unwrap();
        assert_eq!(params.name.as_deref(), Some("widget_params"));
        assert_eq!(params.plan, None);
        assert_eq!(params.tests[1].data, "too big for this machine");
        assert_eq!(suite.trailing, ["widget: pass:2 fail:1 skip:0 total:3"]);
        let gadget = doc.test("gadget").unwrap();
        assert!(gadget.skipped() && gadget.data.is_empty());
        assert_eq!(doc.trailing, ["Totals: pass:1 fail:1 skip:1 total:3"]);
    }

    #[test]
    fn unknown_lines_are_counted_not_errors() {
        let doc =
            parse("KTAP version 1\n1..1\nsome kernel message\n  indented noise\nok 1 t\n").unwrap();
        assert_eq!(doc.unknown_lines, 2);
        assert_eq!(doc.tests.len(), 1);
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(
            err("1..1\nok 1 a\n").message,
            "no version line (`KTAP version 1`)"
        );
        let e = err("KTAP version 1\n1..2\nok 1 a\nok 3 b\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("test number 3 where 2"), "{e}");
        let e = err("KTAP version 1\n1..3\nok 1 a\nok 2 b\n");
        assert!(e.message.contains("1..3 but 2"), "{e}");
        let e = err("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("without the result line"), "{e}");
        let e = err("KTAP version 1\n1..1\nok 1 a\n1..1\n");
        assert!(e.message.contains("plan after"), "{e}");
    }
}
