//! The syzlang parser: description text → `ast::Node`s. Errors carry `file:line:col` and say what
//! was expected. Never panics on any input.

use crate::ast::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i128),
    Str(String),
    /// `<path>` after include/incdir.
    Path(String),
    Punct(char),
    Newline,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Path(p) => format!("<{p}>"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

fn lex(file: &str, text: &str) -> Result<Vec<(Tok, Pos)>, ParseError> {
    let mut out = Vec::new();
    for (li, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        let mut i = 0;
        let pos = |i: usize| Pos {
            file: file.to_string(),
            line: li + 1,
            col: i + 1,
        };
        let include_line = {
            let t = line.trim_start();
            t.starts_with("include ")
                || t.starts_with("incdir ")
                || t.starts_with("include\t")
                || t.starts_with("incdir\t")
        };
        while i < b.len() {
            let c = b[i] as char;
            if c == ' ' || c == '\t' || c == '\r' {
                i += 1;
            } else if c == '#' {
                break;
            } else if c == '<' && include_line {
                let end = line[i..].find('>').ok_or_else(|| ParseError {
                    pos: pos(i),
                    message: "expected `>` closing the include path".into(),
                })?;
                out.push((Tok::Path(line[i + 1..i + end].to_string()), pos(i)));
                i += end + 1;
            } else if c.is_ascii_alphabetic() || c == '_' {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                out.push((Tok::Ident(line[s..i].to_string()), pos(s)));
            } else if c.is_ascii_digit()
                || (c == '-' && i + 1 < b.len() && b[i + 1].is_ascii_digit())
            {
                let s = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let lit = &line[s..i];
                let (neg, digits) = match lit.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, lit),
                };
                let v = if let Some(h) = digits
                    .strip_prefix("0x")
                    .or_else(|| digits.strip_prefix("0X"))
                {
                    i128::from_str_radix(h, 16)
                } else {
                    digits.parse::<i128>()
                }
                .map_err(|_| ParseError {
                    pos: pos(s),
                    message: format!("bad number `{lit}`"),
                })?;
                out.push((Tok::Int(if neg { -v } else { v }), pos(s)));
            } else if c == '\'' {
                // A character literal: 'a'.
                if i + 2 < b.len() && b[i + 2] == b'\'' {
                    out.push((Tok::Int(b[i + 1] as i128), pos(i)));
                    i += 3;
                } else {
                    return Err(ParseError {
                        pos: pos(i),
                        message: "expected a character literal like 'a'".into(),
                    });
                }
            } else if c == '"' || c == '`' {
                let end = line[i + 1..].find(c).ok_or_else(|| ParseError {
                    pos: pos(i),
                    message: format!("unterminated string: expected a closing {c}"),
                })?;
                let raw = &line[i + 1..i + 1 + end];
                let s = if c == '`' {
                    // A hex blob.
                    let bytes: Option<Vec<u8>> = (0..raw.len())
                        .step_by(2)
                        .map(|k| {
                            raw.get(k..k + 2)
                                .and_then(|h| u8::from_str_radix(h, 16).ok())
                        })
                        .collect();
                    let bytes = bytes.ok_or_else(|| ParseError {
                        pos: pos(i),
                        message: "expected hex digits in a `...` blob".into(),
                    })?;
                    bytes.into_iter().map(|b| b as char).collect()
                } else {
                    raw.to_string()
                };
                out.push((Tok::Str(s), pos(i)));
                i += end + 2;
            } else if "[](){},:=<>@".contains(c) {
                out.push((Tok::Punct(c), pos(i)));
                i += 1;
            } else {
                return Err(ParseError {
                    pos: pos(i),
                    message: format!("unexpected character {c:?}"),
                });
            }
        }
        out.push((Tok::Newline, pos(line.len())));
    }
    let last = text.lines().count();
    out.push((
        Tok::Eof,
        Pos {
            file: file.to_string(),
            line: last + 1,
            col: 1,
        },
    ));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
}

type R<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].0
    }
    fn pos(&self) -> Pos {
        self.toks[self.i.min(self.toks.len() - 1)].1.clone()
    }
    fn next(&mut self) -> (Tok, Pos) {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn err<T>(&self, expected: &str) -> R<T> {
        Err(ParseError {
            pos: self.pos(),
            message: format!("expected {expected}, found {}", self.peek().describe()),
        })
    }
    fn punct(&mut self, c: char, expected: &str) -> R<()> {
        if *self.peek() == Tok::Punct(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(expected)
        }
    }
    fn is_punct(&self, c: char) -> bool {
        *self.peek() == Tok::Punct(c)
    }
    fn ident(&mut self, expected: &str) -> R<(String, Pos)> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                let p = self.pos();
                self.i += 1;
                Ok((s, p))
            }
            _ => self.err(expected),
        }
    }
    fn end_of_line(&mut self) -> R<()> {
        match self.peek() {
            Tok::Newline => {
                self.i += 1;
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => self.err("end of line"),
        }
    }
    fn skip_newlines(&mut self) {
        while *self.peek() == Tok::Newline {
            self.i += 1;
        }
    }

    fn file(&mut self) -> R<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            self.skip_newlines();
            if *self.peek() == Tok::Eof {
                return Ok(nodes);
            }
            nodes.push(self.node()?);
        }
    }

    fn node(&mut self) -> R<Node> {
        let (name, pos) =
            self.ident("a declaration (include, resource, type, a call, a struct, or flags)")?;
        match name.as_str() {
            "include" | "incdir" => {
                let path = match self.next() {
                    (Tok::Path(p), _) => p,
                    (Tok::Str(s), _) => s,
                    _ => {
                        self.i -= 1;
                        return self.err("a path in <...>");
                    }
                };
                self.end_of_line()?;
                return Ok(if name == "include" {
                    Node::Include { path, pos }
                } else {
                    Node::Incdir { path, pos }
                });
            }
            "define" => {
                let (n, _) = self.ident("a constant name after `define`")?;
                let mut value = String::new();
                while !matches!(self.peek(), Tok::Newline | Tok::Eof) {
                    let (t, _) = self.next();
                    value.push_str(&match t {
                        Tok::Ident(s) | Tok::Str(s) => s,
                        Tok::Int(i) => i.to_string(),
                        Tok::Punct(c) => c.to_string(),
                        _ => String::new(),
                    });
                }
                self.end_of_line()?;
                return Ok(Node::Define {
                    name: n,
                    value,
                    pos,
                });
            }
            "resource" if matches!(self.peek(), Tok::Ident(_)) => {
                let (n, _) = self.ident("a resource name")?;
                self.punct('[', "`[` and the resource's base type")?;
                let base = self.type_expr()?;
                self.punct(']', "`]` after the resource's base type")?;
                let mut values = Vec::new();
                if self.is_punct(':') {
                    self.i += 1;
                    values = self.value_list()?;
                }
                self.end_of_line()?;
                return Ok(Node::Resource {
                    name: n,
                    base,
                    values,
                    pos,
                });
            }
            "type" if matches!(self.peek(), Tok::Ident(_)) => {
                let (n, _) = self.ident("a type name")?;
                let mut params = Vec::new();
                if self.is_punct('[') && !matches!(self.peek_at(1), Tok::Newline) {
                    self.i += 1;
                    loop {
                        params.push(self.ident("a template parameter name")?.0);
                        if self.is_punct(',') {
                            self.i += 1;
                            continue;
                        }
                        self.punct(']', "`,` or `]` in the template parameters")?;
                        break;
                    }
                }
                let body = if self.is_punct('{')
                    || (self.is_punct('[') && *self.peek_at(1) == Tok::Newline)
                {
                    TypeDefBody::Struct(self.struct_body(n.clone(), pos.clone())?)
                } else {
                    let t = self.type_expr()?;
                    self.end_of_line()?;
                    TypeDefBody::Type(t)
                };
                return Ok(Node::TypeDef {
                    name: n,
                    params,
                    body,
                    pos,
                });
            }
            _ => {}
        }
        match self.peek() {
            Tok::Punct('=') => {
                self.i += 1;
                let values = self.value_list()?;
                self.end_of_line()?;
                Ok(Node::Flags { name, values, pos })
            }
            Tok::Punct('(') => self.call(name, pos),
            Tok::Punct('{') => Ok(Node::Struct(self.struct_body(name, pos)?)),
            Tok::Punct('[') if *self.peek_at(1) == Tok::Newline => {
                Ok(Node::Struct(self.struct_body(name, pos)?))
            }
            _ => self
                .err("`(` (a call), `{` (a struct), `[` and a new line (a union) or `=` (flags)"),
        }
    }

    fn value_list(&mut self) -> R<Vec<(Value, Pos)>> {
        let mut values = Vec::new();
        loop {
            let (t, p) = self.next();
            let v = match t {
                Tok::Int(i) => Value::Int(i),
                Tok::Ident(s) => Value::Ident(s),
                Tok::Str(s) => Value::Str(s),
                _ => {
                    self.i -= 1;
                    return self.err("a value (number, constant name or string)");
                }
            };
            values.push((v, p));
            if self.is_punct(',') {
                self.i += 1;
                continue;
            }
            return Ok(values);
        }
    }

    fn call(&mut self, name: String, pos: Pos) -> R<Node> {
        self.punct('(', "`(`")?;
        let mut args = Vec::new();
        if !self.is_punct(')') {
            loop {
                let (an, ap) = self.ident("an argument name")?;
                let ty = self.type_expr()?;
                args.push(Field {
                    name: an,
                    ty,
                    attrs: Vec::new(),
                    pos: ap,
                });
                if self.is_punct(',') {
                    self.i += 1;
                    continue;
                }
                break;
            }
        }
        self.punct(')', "`,` or `)` in the argument list")?;
        let mut ret = None;
        if matches!(self.peek(), Tok::Ident(_)) {
            ret = Some(self.type_expr()?);
        }
        let attrs = if self.is_punct('(') {
            self.paren_attrs()?
        } else {
            Vec::new()
        };
        self.end_of_line()?;
        Ok(Node::Call {
            name,
            args,
            ret,
            attrs,
            pos,
        })
    }

    fn paren_attrs(&mut self) -> R<Vec<TypeExpr>> {
        self.punct('(', "`(`")?;
        let mut attrs = Vec::new();
        loop {
            attrs.push(self.type_expr()?);
            if self.is_punct(',') {
                self.i += 1;
                continue;
            }
            break;
        }
        self.punct(')', "`,` or `)` in the attribute list")?;
        Ok(attrs)
    }

    fn struct_body(&mut self, name: String, pos: Pos) -> R<StructDef> {
        let is_union = self.is_punct('[');
        let close = if is_union { ']' } else { '}' };
        self.i += 1;
        let mut fields = Vec::new();
        loop {
            self.skip_newlines();
            if self.is_punct(close) {
                self.i += 1;
                break;
            }
            if *self.peek() == Tok::Eof {
                return self.err(&format!("`{close}` closing `{name}`"));
            }
            let (fname, fpos) = self.ident(&format!("a field name or `{close}`"))?;
            let ty = self.type_expr()?;
            let attrs = if self.is_punct('(') {
                self.paren_attrs()?
            } else {
                Vec::new()
            };
            self.end_of_line()?;
            fields.push(Field {
                name: fname,
                ty,
                attrs,
                pos: fpos,
            });
        }
        let mut attrs = Vec::new();
        if self.is_punct('[') {
            self.i += 1;
            loop {
                attrs.push(self.type_expr()?);
                if self.is_punct(',') {
                    self.i += 1;
                    continue;
                }
                break;
            }
            self.punct(']', "`,` or `]` in the attribute list")?;
        }
        self.end_of_line()?;
        Ok(StructDef {
            name,
            is_union,
            fields,
            attrs,
            pos,
        })
    }

    fn type_expr(&mut self) -> R<TypeExpr> {
        let (name, pos) = self.ident("a type")?;
        let mut args = Vec::new();
        if self.is_punct('[') {
            self.i += 1;
            loop {
                args.push(self.type_arg()?);
                if self.is_punct(',') {
                    self.i += 1;
                    continue;
                }
                break;
            }
            self.punct(']', "`,` or `]` in the type arguments")?;
        }
        Ok(TypeExpr { name, args, pos })
    }

    fn type_arg(&mut self) -> R<TypeArg> {
        let first = self.simple_arg()?;
        if self.is_punct(':') {
            self.i += 1;
            let second = self.type_arg()?;
            return Ok(TypeArg::Colon(Box::new(first), Box::new(second)));
        }
        Ok(first)
    }

    fn simple_arg(&mut self) -> R<TypeArg> {
        match self.peek().clone() {
            Tok::Int(i) => {
                let p = self.pos();
                self.i += 1;
                Ok(TypeArg::Int(i, p))
            }
            Tok::Str(s) => {
                let p = self.pos();
                self.i += 1;
                Ok(TypeArg::Str(s, p))
            }
            Tok::Ident(_) => Ok(TypeArg::Type(self.type_expr()?)),
            _ => self.err("a type, a number or a string"),
        }
    }
}

/// Parses one description file.
pub fn parse(file: &str, text: &str) -> Result<Vec<Node>, ParseError> {
    let toks = lex(file, text)?;
    Parser { toks, i: 0 }.file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_declaration() {
        let text = "# a comment\ninclude <linux/shm.h>\nresource fd[int32]: -1, AT_FDCWD\n\
                    shm_flags = IPC_CREAT, 0x200\nnames = \"a\", \"b\"\n\
                    type pair[A, B] {\n\tx A\n\ty B\n}\ntype small int32[0:10, 2]\n\
                    foo {\n\tf1 int8\n\tf2 len[parent:f1, int32] (in)\n} [packed, align[4]]\n\
                    bar [\n\ta int32\n\tb array[int8, 1:4]\n] [varlen]\n\
                    shmget$x(key intptr[0:31], size len[unused], flags flags[shm_flags], unused vma) fd (timeout[100])\n";
        let nodes = parse("t.txt", text).unwrap();
        assert_eq!(nodes.len(), 9);
        assert!(matches!(&nodes[0], Node::Include { path, .. } if path == "linux/shm.h"));
        assert!(
            matches!(&nodes[1], Node::Resource { name, values, .. } if name == "fd" && values.len() == 2)
        );
        assert!(
            matches!(&nodes[4], Node::TypeDef { params, body: TypeDefBody::Struct(_), .. } if params.len() == 2)
        );
        let Node::Struct(s) = &nodes[6] else { panic!() };
        assert_eq!(s.fields[1].attrs[0].name, "in");
        assert_eq!(s.attrs.len(), 2);
        let Node::Struct(u) = &nodes[7] else { panic!() };
        assert!(u.is_union);
        let Node::Call {
            name,
            args,
            ret,
            attrs,
            pos,
        } = &nodes[8]
        else {
            panic!()
        };
        assert_eq!(name, "shmget$x");
        assert_eq!(args.len(), 4);
        assert_eq!(ret.as_ref().unwrap().name, "fd");
        assert_eq!(attrs[0].name, "timeout");
        assert_eq!(pos.line, 19);
    }

    #[test]
    fn errors_point_at_the_place_and_say_what_was_expected() {
        let cases = [
            (
                "f(a int32\n",
                "t.txt:1:10: expected `,` or `)` in the argument list, found end of line",
            ),
            ("s {\n\tx int32\n", "t.txt:3:1: expected `}` closing `s`"),
            (
                "x = \n",
                "t.txt:1:5: expected a value (number, constant name or string), found end of line",
            ),
            (
                "f(a ptr[in, int32)\n",
                "t.txt:1:18: expected `,` or `]` in the type arguments, found `)`",
            ),
            (
                "include linux\n",
                "t.txt:1:9: expected a path in <...>, found `linux`",
            ),
            (
                "resource r[int32]: \"a\n",
                "t.txt:1:20: unterminated string: expected a closing \"",
            ),
            ("f() ~\n", "t.txt:1:5: unexpected character '~'"),
            ("42\n", "t.txt:1:1: expected a declaration"),
        ];
        for (text, want) in cases {
            let err = parse("t.txt", text).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{text:?}: got {err:?}, want {want:?}"
            );
        }
    }
}
