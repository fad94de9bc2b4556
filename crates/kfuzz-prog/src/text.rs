//! syzkaller's program text format: `r0 = shmget(0x5, 0x2000, 0x200, &(0x20000000/0x2000)=nil)`.
//! Printing is canonical; parsing a canonical text and printing it gives the same text.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::prog::*;
use crate::target::Target;
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ProgError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ProgError {
    /// The program names a call the descriptions do not have (or that is disabled).
    pub fn is_unknown_call(&self) -> bool {
        self.message.starts_with(UNKNOWN_CALL)
    }
}

const UNKNOWN_CALL: &str = "unknown or disabled call";

/// The canonical text of a program, one call per line.
pub fn format(target: &Target, p: &Prog) -> String {
    let used: HashSet<VarId> = p.calls.iter().flat_map(used_vars).collect();
    let mut names: HashMap<VarId, usize> = HashMap::new();
    let mut out = String::new();
    for c in &p.calls {
        let meta = &target.syscalls[c.meta];
        if let Some(v) = c.ret.filter(|v| used.contains(v)) {
            let n = names.len();
            names.insert(v, n);
            let _ = write!(out, "r{n} = ");
        }
        out.push_str(&meta.name);
        out.push('(');
        for (i, (fd, a)) in meta.args.iter().zip(&c.args).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            fmt_arg(target, &fd.ty, Dir::In, a, &used, &mut names, &mut out);
        }
        out.push_str(")\n");
    }
    out
}

fn fmt_arg(
    target: &Target,
    t: &Type,
    dir: Dir,
    a: &Arg,
    used: &HashSet<VarId>,
    names: &mut HashMap<VarId, usize>,
    out: &mut String,
) {
    match a {
        Arg::Int(v) => {
            let _ = write!(out, "{v:#x}");
        }
        Arg::Res(r) => {
            if let Some(d) = r.def.filter(|d| used.contains(d)) {
                let n = names.len();
                names.insert(d, n);
                let _ = write!(out, "<r{n}=>");
            }
            match r.src.and_then(|s| names.get(&s)) {
                Some(n) => {
                    let _ = write!(out, "r{n}");
                }
                None => {
                    let _ = write!(out, "{:#x}", r.val);
                }
            }
        }
        Arg::Ptr { addr, pointee } => match (pointee, &t.kind) {
            (None, _) if *addr == 0 => out.push_str("0x0"),
            (None, _) => {
                let _ = write!(out, "&({addr:#x})=nil");
            }
            (Some(p), TypeKind::Ptr { dir, elem }) => {
                let _ = write!(out, "&({addr:#x})=");
                fmt_arg(target, elem, *dir, p, used, names, out);
            }
            (Some(_), _) => out.push_str("0x0"),
        },
        Arg::Vma { addr, size } => {
            if *size == 0 && *addr == 0 {
                out.push_str("0x0");
            } else {
                let _ = write!(out, "&({addr:#x}/{size:#x})=nil");
            }
        }
        Arg::Data(d) => {
            let dir = match &t.kind {
                TypeKind::Buffer { dir: bd, .. } if *bd == Dir::Out => Dir::Out,
                _ => dir,
            };
            let compressed = matches!(
                t.kind,
                TypeKind::Buffer {
                    kind: BufferKind::Compressed,
                    ..
                }
            );
            if dir == Dir::Out {
                let _ = write!(out, "\"\"/{}", d.len());
            } else if compressed {
                let _ = write!(out, "\"${}\"", crate::image::encode_base64(d));
            } else if readable(d) {
                out.push('\'');
                for &b in d {
                    match b {
                        b'\\' => out.push_str("\\\\"),
                        b'\'' => out.push_str("\\'"),
                        b'\n' => out.push_str("\\n"),
                        b'\t' => out.push_str("\\t"),
                        0x20..=0x7e => out.push(b as char),
                        _ => {
                            let _ = write!(out, "\\x{b:02x}");
                        }
                    }
                }
                out.push('\'');
            } else {
                out.push('"');
                for b in d {
                    let _ = write!(out, "{b:02x}");
                }
                out.push('"');
            }
        }
        Arg::Group(items) => {
            let (open, close) = if matches!(t.kind, TypeKind::Array { .. }) {
                ('[', ']')
            } else {
                ('{', '}')
            };
            out.push(open);
            let mut first = true;
            for (i, item) in items.iter().enumerate() {
                // A void struct field (a marker for `offsetof`) has no value to write.
                if let TypeKind::Struct(id) = &t.kind {
                    if target.structs[*id]
                        .fields
                        .get(i)
                        .is_some_and(|f| f.ty.kind == TypeKind::Void)
                    {
                        continue;
                    }
                }
                if !first {
                    out.push_str(", ");
                }
                first = false;
                match &t.kind {
                    TypeKind::Array { elem, .. } => {
                        fmt_arg(target, elem, dir, item, used, names, out)
                    }
                    TypeKind::Struct(id) => {
                        let f = &target.structs[*id].fields[i];
                        fmt_arg(target, &f.ty, f.dir.unwrap_or(dir), item, used, names, out)
                    }
                    _ => {}
                }
            }
            out.push(close);
        }
        Arg::Union { field, arg } => {
            if let TypeKind::Struct(id) = &t.kind {
                let f = &target.structs[*id].fields[*field];
                let _ = write!(out, "@{}", f.name);
                // A void option has no value: `@void`, as syzkaller writes it.
                if f.ty.kind != TypeKind::Void {
                    out.push('=');
                    fmt_arg(target, &f.ty, f.dir.unwrap_or(dir), arg, used, names, out);
                }
            }
        }
    }
}

/// Text that reads well as a quoted string: printable ASCII, tabs and newlines, NULs only at
/// the end.
fn readable(d: &[u8]) -> bool {
    if d.is_empty() {
        return false;
    }
    let body = match d.iter().rposition(|b| *b != 0) {
        Some(last) => &d[..=last],
        None => return false,
    };
    body.iter()
        .all(|b| (0x20..=0x7e).contains(b) || *b == b'\n' || *b == b'\t')
}

// ---------------------------------------------------------------------------------------------
// Parsing.

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    /// Nesting level of the value being read (a call's argument is 1).
    depth: usize,
}

type PR<T> = Result<T, ProgError>;

impl<'a> Cursor<'a> {
    fn err<T>(&self, message: impl Into<String>) -> PR<T> {
        Err(ProgError {
            line: self.line,
            col: self.i - self.line_start + 1,
            message: message.into(),
        })
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == c {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8, what: &str) -> PR<()> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self.found();
            self.err(format!("expected {what}, found {found}"))
        }
    }
    fn found(&self) -> String {
        match self.s.get(self.i) {
            None | Some(b'\n') => "end of line".into(),
            Some(c) => format!("{:?}", *c as char),
        }
    }
    fn ident(&mut self) -> String {
        self.ws();
        let s = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_$".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[s..self.i]).into_owned()
    }
    /// A number: decimal or `0x` hex, 64 bits; a leading `-` for the two's complement of at
    /// most 2^63. Anything outside is an error, never a wrapped value.
    fn number(&mut self) -> PR<u64> {
        self.ws();
        let s = self.i;
        let neg = self.peek() == b'-';
        if neg {
            self.i += 1;
        }
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        let lit = std::str::from_utf8(&self.s[s..self.i]).unwrap_or("");
        let digits = if neg { &lit[1..] } else { lit };
        let (digits, radix) = match digits.strip_prefix("0x") {
            Some(h) => (h, 16),
            None => (digits, 10),
        };
        let well_formed = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        if !well_formed {
            self.i = s;
            return self.err(format!("expected a number, found {}", self.found()));
        }
        let v = u64::from_str_radix(digits, radix)
            .ok()
            .filter(|v| !neg || *v <= 1 << 63);
        match v {
            Some(v) => Ok(if neg { v.wrapping_neg() } else { v }),
            None => {
                self.i = s;
                self.err(format!(
                    "number `{lit}` is out of range: expected -0x8000000000000000 to 0xffffffffffffffff"
                ))
            }
        }
    }
}

/// A parsed argument before its type is applied.
#[derive(Debug)]
enum Raw {
    Num(u64, usize),
    Var {
        name: String,
        div: u64,
        add: u64,
        col: usize,
    },
    Def {
        name: String,
        val: u64,
        col: usize,
    },
    Ptr {
        addr: u64,
        vma: Option<u64>,
        pointee: Option<Box<Raw>>,
        col: usize,
    },
    Data {
        bytes: Vec<u8>,
        out_len: Option<u64>,
        col: usize,
    },
    Group(Vec<Raw>, usize),
    Array(Vec<Raw>, usize),
    Union {
        name: String,
        arg: Option<Box<Raw>>,
        col: usize,
    },
    Auto,
}

/// One argument value; nesting is bounded so that no text can exhaust the stack.
fn raw(c: &mut Cursor) -> PR<Raw> {
    c.ws();
    if c.depth >= MAX_DEPTH {
        return c.err(format!(
            "nesting deeper than {MAX_DEPTH} levels (pointers, structs, arrays, unions)"
        ));
    }
    c.depth += 1;
    let r = raw_value(c);
    c.depth -= 1;
    r
}

fn raw_value(c: &mut Cursor) -> PR<Raw> {
    let col = c.i;
    match c.peek() {
        b'0'..=b'9' | b'-' => Ok(Raw::Num(c.number()?, col)),
        b'r' => {
            let name = c.ident();
            let (mut div, mut add) = (1, 0);
            if c.eat(b'/') {
                div = c.number()?;
            }
            if c.eat(b'+') {
                add = c.number()?;
            }
            Ok(Raw::Var {
                name,
                div,
                add,
                col,
            })
        }
        b'<' => {
            c.i += 1;
            let name = c.ident();
            c.expect(b'=', "`=` in `<rN=>`")?;
            c.expect(b'>', "`>` in `<rN=>`")?;
            c.ws();
            let col = c.i;
            Ok(Raw::Def {
                name,
                val: c.number()?,
                col,
            })
        }
        b'&' => {
            c.i += 1;
            let (addr, vma) = if c.eat(b'(') {
                let a = c.number()?;
                let v = if c.eat(b'/') { Some(c.number()?) } else { None };
                c.expect(b')', "`)` after the address")?;
                (a, v)
            } else {
                let w = c.ident();
                if w != "AUTO" {
                    return c.err("expected `(address)` or AUTO after `&`");
                }
                (u64::MAX, None)
            };
            c.expect(b'=', "`=` after the pointer address")?;
            c.ws();
            let pointee = if c.s[c.i..].starts_with(b"nil") {
                c.i += 3;
                None
            } else {
                Some(Box::new(raw(c)?))
            };
            Ok(Raw::Ptr {
                addr,
                vma,
                pointee,
                col,
            })
        }
        // A compressed image: `"$<base64>"`.
        b'"' if c.s.get(c.i + 1) == Some(&b'$') => {
            c.i += 2;
            let s = c.i;
            while c.i < c.s.len() && c.s[c.i] != b'"' && c.s[c.i] != b'\n' {
                c.i += 1;
            }
            if c.peek() != b'"' {
                return c.err("unterminated image data: expected `\"`");
            }
            let bytes = match crate::image::decode_base64(&c.s[s..c.i]) {
                Ok(b) => b,
                Err(at) => {
                    c.i = s + at;
                    return c.err("expected base64 in \"$...\" image data");
                }
            };
            c.i += 1;
            Ok(Raw::Data {
                bytes,
                out_len: None,
                col,
            })
        }
        b'"' => {
            c.i += 1;
            let s = c.i;
            while c.i < c.s.len() && c.s[c.i] != b'"' && c.s[c.i] != b'\n' {
                c.i += 1;
            }
            if c.peek() != b'"' {
                return c.err("unterminated hex data: expected `\"`");
            }
            let hex = &c.s[s..c.i];
            c.i += 1;
            let mut bytes = Vec::new();
            for pair in hex.chunks(2) {
                match std::str::from_utf8(pair)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) if pair.len() == 2 => bytes.push(b),
                    _ => {
                        c.i = s;
                        return c.err("expected hex digits in \"...\" data");
                    }
                }
            }
            let out_len = if c.peek() == b'/' {
                c.i += 1;
                Some(c.number()?)
            } else {
                None
            };
            Ok(Raw::Data {
                bytes,
                out_len,
                col,
            })
        }
        b'\'' => {
            c.i += 1;
            let mut bytes = Vec::new();
            loop {
                match c.peek() {
                    b'\'' => {
                        c.i += 1;
                        break;
                    }
                    0 | b'\n' => return c.err("unterminated string: expected `'`"),
                    b'\\' => {
                        c.i += 1;
                        let e = c.peek();
                        c.i += 1;
                        bytes.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            b'\\' => b'\\',
                            b'\'' => b'\'',
                            b'x' => {
                                let h =
                                    c.s.get(c.i..c.i + 2)
                                        .and_then(|h| std::str::from_utf8(h).ok())
                                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                                match h {
                                    Some(b) => {
                                        c.i += 2;
                                        b
                                    }
                                    None => return c.err("expected two hex digits after \\x"),
                                }
                            }
                            _ => return c.err("unknown escape in string"),
                        });
                    }
                    b => {
                        bytes.push(b);
                        c.i += 1;
                    }
                }
            }
            let out_len = if c.peek() == b'/' {
                c.i += 1;
                Some(c.number()?)
            } else {
                None
            };
            Ok(Raw::Data {
                bytes,
                out_len,
                col,
            })
        }
        b'{' | b'[' => {
            let close = if c.peek() == b'{' { b'}' } else { b']' };
            let is_array = close == b']';
            c.i += 1;
            let mut items = Vec::new();
            if !c.eat(close) {
                loop {
                    items.push(raw(c)?);
                    if c.eat(b',') {
                        continue;
                    }
                    c.expect(close, if is_array { "`,` or `]`" } else { "`,` or `}`" })?;
                    break;
                }
            }
            Ok(if is_array {
                Raw::Array(items, col)
            } else {
                Raw::Group(items, col)
            })
        }
        b'@' => {
            c.i += 1;
            let name = c.ident();
            let arg = if c.eat(b'=') {
                Some(Box::new(raw(c)?))
            } else {
                None
            };
            Ok(Raw::Union { name, arg, col })
        }
        b'A' => {
            let w = c.ident();
            if w == "AUTO" {
                Ok(Raw::Auto)
            } else {
                c.i = col;
                c.err(format!("expected an argument, found `{w}`"))
            }
        }
        _ => {
            let f = c.found();
            c.err(format!("expected an argument, found {f}"))
        }
    }
}

struct Typer<'a> {
    target: &'a Target,
    vars: HashMap<String, (VarId, ResourceId)>,
    prog: Prog,
    line: usize,
    line_start: usize,
    /// The call being read has a length written AUTO.
    auto_len: bool,
    /// Bytes of buffers read so far (bounded by `MAX_DATA` before anything is allocated).
    data: u64,
}

impl Typer<'_> {
    fn err<T>(&self, col: usize, msg: impl Into<String>) -> PR<T> {
        Err(ProgError {
            line: self.line,
            col: col.saturating_sub(self.line_start) + 1,
            message: msg.into(),
        })
    }

    fn arg(&mut self, t: &Type, dir: Dir, r: Raw) -> PR<Arg> {
        let target = self.target;
        // Resources stay 64 bits wide (-1 is 0xffffffffffffffff); other integers fit their size.
        let mask = |v: u64| match int_size(&t.kind, &target.resources) {
            Some(s) if s < 8 && !matches!(t.kind, TypeKind::Resource(_)) => {
                v & ((1u64 << (s * 8)) - 1)
            }
            _ => v,
        };
        Ok(match (&t.kind, r) {
            (TypeKind::Resource(_), Raw::Var { div, add, col, .. }) if div != 1 || add != 0 => {
                return self.err(col, "resource arithmetic (`rN/div+add`) is not supported");
            }
            (TypeKind::Resource(want), Raw::Var { name, col, .. }) => {
                let Some((v, have)) = self.vars.get(&name).copied() else {
                    return self.err(col, format!("`{name}` is not defined by an earlier call"));
                };
                if !target.resources[*want].accepts(&target.resources[have]) {
                    return self.err(
                        col,
                        format!(
                            "`{name}` is a {} but a {} is needed",
                            target.resources[have].name, target.resources[*want].name
                        ),
                    );
                }
                Arg::Res(ResArg {
                    def: None,
                    src: Some(v),
                    val: target.resources[*want]
                        .special
                        .first()
                        .copied()
                        .unwrap_or(0),
                })
            }
            (TypeKind::Resource(_), Raw::Num(v, _)) => Arg::Res(ResArg {
                def: None,
                src: None,
                val: mask(v),
            }),
            (TypeKind::Resource(id), Raw::Def { name, val: v, .. }) => {
                let var = self.prog.new_var();
                self.vars.insert(name, (var, *id));
                Arg::Res(ResArg {
                    def: Some(var),
                    src: None,
                    val: mask(v),
                })
            }
            // A void element (of an array of empty options) is written as 0.
            (TypeKind::Void, Raw::Num(..) | Raw::Auto) => Arg::Int(0),
            (TypeKind::Resource(id), Raw::Auto) => Arg::Res(ResArg {
                def: None,
                src: None,
                val: target.resources[*id].special.first().copied().unwrap_or(0),
            }),
            (k, Raw::Num(v, col))
                if int_size(k, &target.resources).is_some()
                    && !matches!(k, TypeKind::Ptr { .. } | TypeKind::Vma { .. }) =>
            {
                let size = int_size(k, &target.resources).unwrap_or(8);
                if !fits(v, size) {
                    return self.err(
                        col,
                        format!("{v:#x} does not fit {} ({size} bytes)", kind_name(k)),
                    );
                }
                Arg::Int(mask(v))
            }
            // AUTO: a constant's value; a length is computed once the call is read.
            (TypeKind::Const { val, .. }, Raw::Auto) => Arg::Int(*val),
            (TypeKind::Len { .. }, Raw::Auto) => {
                self.auto_len = true;
                Arg::Int(0)
            }
            (TypeKind::Int { .. } | TypeKind::Flags { .. } | TypeKind::Proc { .. }, Raw::Auto) => {
                Arg::Int(0)
            }
            (TypeKind::Ptr { .. }, Raw::Num(v, _)) => Arg::Ptr {
                addr: v,
                pointee: None,
            },
            (TypeKind::Vma { .. }, Raw::Num(v, _)) => Arg::Vma { addr: v, size: 0 },
            (
                TypeKind::Vma { .. },
                Raw::Ptr {
                    addr,
                    vma,
                    pointee: None,
                    ..
                },
            ) => Arg::Vma {
                addr,
                size: vma.unwrap_or(PAGE),
            },
            (
                TypeKind::Ptr { dir, elem },
                Raw::Ptr {
                    addr,
                    vma: None,
                    pointee,
                    ..
                },
            ) => {
                let addr = if addr == u64::MAX { DATA_BASE } else { addr };
                let pointee = match pointee {
                    None => None,
                    Some(p) => Some(Box::new(self.arg(elem, *dir, *p)?)),
                };
                Arg::Ptr { addr, pointee }
            }
            (
                TypeKind::Buffer { .. },
                Raw::Data {
                    bytes,
                    out_len,
                    col,
                },
            ) => {
                let n = out_len.unwrap_or(bytes.len() as u64);
                self.data = self.data.saturating_add(n);
                if self.data > MAX_DATA {
                    return self.err(
                        col,
                        format!(
                            "{} bytes of data: a program's data may not pass {MAX_DATA} bytes",
                            self.data
                        ),
                    );
                }
                match out_len {
                    Some(n) => Arg::Data(vec![0; n as usize]),
                    None => Arg::Data(bytes),
                }
            }
            (TypeKind::Array { elem, .. }, Raw::Array(items, _)) => {
                let mut out = Vec::new();
                for i in items {
                    out.push(self.arg(elem, dir, i)?);
                }
                Arg::Group(out)
            }
            (TypeKind::Struct(id), Raw::Group(items, col)) if !target.structs[*id].is_union => {
                let st = &target.structs[*id];
                let valued = st
                    .fields
                    .iter()
                    .filter(|f| f.ty.kind != TypeKind::Void)
                    .count();
                if items.len() > valued {
                    return self.err(
                        col,
                        format!("`{}` has {valued} fields, found {}", st.name, items.len()),
                    );
                }
                let mut out = Vec::new();
                let mut items = items.into_iter();
                for f in &st.fields {
                    if f.ty.kind == TypeKind::Void {
                        out.push(Arg::Int(0));
                        continue;
                    }
                    out.push(match items.next() {
                        Some(i) => self.arg(&f.ty, f.dir.unwrap_or(dir), i)?,
                        None => crate::gen::default_arg(target, &f.ty),
                    });
                }
                Arg::Group(out)
            }
            (TypeKind::Struct(id), Raw::Union { name, arg, col })
                if target.structs[*id].is_union =>
            {
                let st = &target.structs[*id];
                let Some(field) = st.fields.iter().position(|f| f.name == name) else {
                    return self.err(col, format!("`{}` has no option `{name}`", st.name));
                };
                let f = &st.fields[field];
                let arg = match arg {
                    Some(a) => self.arg(&f.ty, f.dir.unwrap_or(dir), *a)?,
                    None => crate::gen::default_arg(target, &f.ty),
                };
                Arg::Union {
                    field,
                    arg: Box::new(arg),
                }
            }
            (_, Raw::Auto) => crate::gen::default_arg(target, t),
            (k, r) => {
                let col = match &r {
                    Raw::Num(_, c)
                    | Raw::Def { col: c, .. }
                    | Raw::Data { col: c, .. }
                    | Raw::Var { col: c, .. }
                    | Raw::Ptr { col: c, .. }
                    | Raw::Group(_, c)
                    | Raw::Array(_, c)
                    | Raw::Union { col: c, .. } => *c,
                    _ => self.line_start,
                };
                return self.err(
                    col,
                    format!(
                        "this value does not fit the argument's type ({})",
                        kind_name(k)
                    ),
                );
            }
        })
    }
}

/// `v` is a `size`-byte integer: unsigned, or negative and sign-extended (`-1` is
/// 0xffffffffffffffff whatever the size).
fn fits(v: u64, size: u8) -> bool {
    if size >= 8 {
        return true;
    }
    let bits = u32::from(size) * 8;
    let signed = v as i64;
    v >> bits == 0 || (signed < 0 && signed >= -(1i64 << (bits - 1)))
}

fn kind_name(k: &TypeKind) -> &'static str {
    match k {
        TypeKind::Int { .. } => "an integer",
        TypeKind::Const { .. } => "a constant",
        TypeKind::Flags { .. } => "flags",
        TypeKind::Len { .. } => "a length",
        TypeKind::Proc { .. } => "a per-process value",
        TypeKind::Resource(_) => "a resource",
        TypeKind::Ptr { .. } => "a pointer",
        TypeKind::Vma { .. } => "a memory range",
        TypeKind::Buffer { .. } => "a buffer",
        TypeKind::Array { .. } => "an array",
        TypeKind::Struct(_) => "a struct or union",
        TypeKind::Void => "void",
    }
}

/// Parses program text against the target. Blank lines and `#` comments are skipped.
pub fn parse(target: &Target, text: &str) -> Result<Prog, ProgError> {
    let mut ty = Typer {
        target,
        vars: HashMap::new(),
        prog: Prog::default(),
        line: 0,
        line_start: 0,
        auto_len: false,
        data: 0,
    };
    let mut data: u64 = 0;
    let bytes = text.as_bytes();
    let mut offset = 0;
    for (li, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        ty.line = li + 1;
        ty.line_start = start;
        let mut c = Cursor {
            s: &bytes[..start + line.trim_end_matches(['\n', '\r']).len()],
            i: start,
            line: li + 1,
            line_start: start,
            depth: 0,
        };
        c.ws();
        let mut ret_name = None;
        let first = c.ident();
        let name = if c.eat(b'=') {
            ret_name = Some(first);
            c.ident()
        } else {
            first
        };
        let name_col = c.i - name.len();
        let Some(meta) = target.syscall(&name) else {
            c.i = name_col;
            return c.err(if name.is_empty() {
                "expected a call name".to_string()
            } else {
                format!("{UNKNOWN_CALL} `{name}`")
            });
        };
        c.expect(b'(', "`(` after the call name")?;
        let mut raws = Vec::new();
        if !c.eat(b')') {
            loop {
                raws.push(raw(&mut c)?);
                if c.eat(b',') {
                    continue;
                }
                c.expect(b')', "`,` or `)`")?;
                break;
            }
        }
        c.ws();
        if c.i < c.s.len() {
            let f = c.found();
            return c.err(format!("expected the end of the line, found {f}"));
        }
        if raws.len() > meta.args.len() {
            c.i = name_col;
            return c.err(format!(
                "`{}` takes {} arguments, found {}",
                meta.name,
                meta.args.len(),
                raws.len()
            ));
        }
        let mut args = Vec::new();
        let mut raws = raws.into_iter();
        for fd in &meta.args {
            args.push(match raws.next() {
                Some(r) => ty.arg(&fd.ty, Dir::In, r)?,
                None => crate::gen::default_arg(target, &fd.ty),
            });
        }
        let ret = meta.ret.map(|_| ty.prog.new_var());
        if let (Some(n), Some(v), Some(r)) = (ret_name, ret, meta.ret) {
            ty.vars.insert(n, (v, r));
        }
        let mut call = Call {
            meta: meta.id,
            args,
            ret,
        };
        if std::mem::take(&mut ty.auto_len) {
            crate::gen::fix_lens(target, &mut call);
        }
        data = data.saturating_add(call_data_size(target, &call));
        if data > MAX_DATA {
            c.i = name_col;
            return c.err(format!(
                "the program's pointers reach {data} bytes of data by this call: at most {MAX_DATA} fit"
            ));
        }
        ty.prog.calls.push(call);
    }
    Ok(ty.prog)
}
