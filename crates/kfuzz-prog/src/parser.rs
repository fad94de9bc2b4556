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
    /// `==`, `!=`, `||`, `&`.
    Op(BinOp),
    /// The rest of a `define` line, as C text.
    Raw(String),
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
            Tok::Op(o) => format!("`{}`", o.symbol()),
            Tok::Raw(r) => format!("`{r}`"),
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
        let trimmed = line.trim_start();
        let starts =
            |kw: &str| trimmed.starts_with(kw) && trimmed[kw.len()..].starts_with([' ', '\t']);
        let include_line = starts("include") || starts("incdir");
        if starts("define") {
            // `define NAME <C expression>`: the value is C text, kept raw for the compiler.
            let s = line.len() - trimmed.len();
            out.push((Tok::Ident("define".into()), pos(s)));
            let rest = trimmed["define".len()..].trim_start();
            let ns = line.len() - rest.len();
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_len == 0 {
                return Err(ParseError {
                    pos: pos(ns),
                    message: "expected a constant name after `define`".into(),
                });
            }
            out.push((Tok::Ident(rest[..name_len].to_string()), pos(ns)));
            let value = rest[name_len..].split('#').next().unwrap_or("").trim();
            out.push((Tok::Raw(value.to_string()), pos(ns + name_len)));
            out.push((Tok::Newline, pos(line.len())));
            continue;
        }
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
                let s = if c == '"' && raw.contains('\\') {
                    unescape(raw).ok_or_else(|| ParseError {
                        pos: pos(i),
                        message: "bad escape in a string (expected \\n, \\t, \\\\, \\0 or \\xHH)"
                            .into(),
                    })?
                } else if c == '`' {
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
            } else if let Some((op, n)) = match (c, b.get(i + 1).map(|x| *x as char)) {
                ('=', Some('=')) => Some((BinOp::Eq, 2)),
                ('!', Some('=')) => Some((BinOp::Ne, 2)),
                ('|', Some('|')) => Some((BinOp::Or, 2)),
                ('&', _) => Some((BinOp::And, 1)),
                _ => None,
            } {
                out.push((Tok::Op(op), pos(i)));
                i += n;
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

/// Resolves `\n`, `\t`, `\\`, `\"`, `\0`, `\xHH` in a "..." string.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' => {
                let h: String = [it.next()?, it.next()?].iter().collect();
                char::from(u8::from_str_radix(&h, 16).ok()?)
            }
            _ => return None,
        });
    }
    Some(out)
}

/// How deep types, expressions and template arguments may nest: far beyond any real
/// description, and far below what would overflow the stack.
pub const MAX_DEPTH: usize = 48;

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
    depth: usize,
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
                let value = match self.next() {
                    (Tok::Raw(v), _) if !v.is_empty() => v,
                    _ => {
                        self.i -= 1;
                        return self.err("a value after the constant's name");
                    }
                };
                self.end_of_line()?;
                return Ok(Node::Define {
                    name: n,
                    value,
                    pos,
                });
            }
            "meta" if matches!(self.peek(), Tok::Ident(_)) => {
                let what = self.type_expr()?;
                self.end_of_line()?;
                return Ok(Node::Meta { what, pos });
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
                    bits: None,
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
            let mut ty = self.type_expr()?;
            let bits = if self.is_punct(':') {
                self.i += 1;
                let b = self.simple_arg()?;
                // `int8:3[FLAGS]`: a bitfield's type arguments follow its width.
                if ty.args.is_empty() && self.is_punct('[') {
                    let name = std::mem::take(&mut ty.name);
                    let mut with_args = self.type_expr_args(name, ty.pos.clone())?;
                    std::mem::swap(&mut ty, &mut with_args);
                }
                Some(b)
            } else {
                None
            };
            let attrs = if self.is_punct('(') {
                self.paren_attrs()?
            } else {
                Vec::new()
            };
            self.end_of_line()?;
            fields.push(Field {
                name: fname,
                ty,
                bits,
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

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                pos: self.pos(),
                message: format!("types or expressions nest deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(())
    }

    fn type_expr(&mut self) -> R<TypeExpr> {
        self.enter()?;
        let r = self.type_expr_inner();
        self.depth -= 1;
        r
    }

    fn type_expr_inner(&mut self) -> R<TypeExpr> {
        let (name, pos) = self.ident("a type")?;
        self.type_expr_args(name, pos)
    }

    /// The optional `[args]` after a type's name.
    fn type_expr_args(&mut self, name: String, pos: Pos) -> R<TypeExpr> {
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

    /// A type argument: an expression of `||`, `==`/`!=` and `&` (loosest first) over
    /// colon chains (`0:10`, `parent:field`), parenthesized as needed.
    fn type_arg(&mut self) -> R<TypeArg> {
        self.enter()?;
        let r = self.binary(0);
        self.depth -= 1;
        r
    }

    fn binary(&mut self, level: u8) -> R<TypeArg> {
        const LEVELS: [&[BinOp]; 3] = [&[BinOp::Or], &[BinOp::Eq, BinOp::Ne], &[BinOp::And]];
        let Some(ops) = LEVELS.get(usize::from(level)) else {
            return self.factor();
        };
        let mut left = self.binary(level + 1)?;
        while let Tok::Op(op) = *self.peek() {
            if !ops.contains(&op) {
                break;
            }
            self.i += 1;
            let right = self.binary(level + 1)?;
            left = TypeArg::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self) -> R<TypeArg> {
        if self.is_punct('(') {
            self.i += 1;
            let inner = self.type_arg()?;
            self.punct(')', "`)` closing the expression")?;
            return Ok(inner);
        }
        let mut first = self.simple_arg()?;
        if self.is_punct(':') && !matches!(first, TypeArg::Str(..)) {
            self.i += 1;
            if let (TypeArg::Type(t), Tok::Int(_), Tok::Punct('[')) =
                (&mut first, self.peek().clone(), self.peek_at(1).clone())
            {
                if t.args.is_empty() {
                    // A bitfield type as an argument: `int16:14[0:MAX]`.
                    let width = self.simple_arg()?;
                    let name = std::mem::take(&mut t.name);
                    *t = self.type_expr_args(name, t.pos.clone())?;
                    return Ok(TypeArg::Colon(Box::new(first), Box::new(width)));
                }
            }
            let second = self.factor()?;
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
    Parser {
        toks,
        i: 0,
        depth: 0,
    }
    .file()
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
