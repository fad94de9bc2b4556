//! Descriptions + the tree's constants and syscall numbers → a `Target`: every call with its
//! typed arguments. A call whose types use something unknown or unsupported is disabled with the
//! reason, never the whole load.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::ast::*;
use crate::types::*;

/// One description file's name (for positions) and text.
#[derive(Debug, Clone)]
pub struct DescriptionFile {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DisabledCall {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Target {
    pub syscalls: Vec<Syscall>,
    pub resources: Vec<ResourceDesc>,
    pub structs: Vec<StructDesc>,
    pub disabled: Vec<DisabledCall>,
    /// Problems that disable nothing (a resource nobody consumes).
    pub warnings: Vec<String>,
    /// Declarations made again by a later file (the first one is used): expected when
    /// syzkaller's descriptions are loaded beside ours.
    pub shadowed: Vec<String>,
    /// What each struct's smallest value costs (data, nesting), for generation's limits.
    #[serde(skip)]
    pub bounds: crate::bounds::Bounds,
}

impl Target {
    pub fn syscall(&self, name: &str) -> Option<&Syscall> {
        self.syscalls.iter().find(|s| s.name == name)
    }
    pub fn resource(&self, name: &str) -> Option<ResourceId> {
        self.resources.iter().position(|r| r.name == name)
    }
}

#[derive(Debug, Clone)]
struct CompileError {
    pos: Pos,
    msg: String,
}

type R<T> = Result<T, CompileError>;

fn err<T>(pos: &Pos, msg: impl Into<String>) -> R<T> {
    Err(CompileError {
        pos: pos.clone(),
        msg: msg.into(),
    })
}

/// The architecture kfuzz fuzzes, as syzkaller's `meta arches[...]` names it.
pub const ARCH: &str = "amd64";

/// Parses every file; the first syntax error fails the load (it names file:line:col). A file
/// whose `meta arches[...]` leaves out amd64 contributes nothing.
pub fn parse_files(files: &[DescriptionFile]) -> Result<Vec<Node>, crate::parser::ParseError> {
    let mut nodes = Vec::new();
    for f in files {
        let parsed = crate::parser::parse(&f.name, &f.text)?;
        let other_arch = parsed.iter().any(|n| match n {
            Node::Meta { what, .. } if what.name == "arches" => !what
                .args
                .iter()
                .any(|a| matches!(a, TypeArg::Str(s, _) if s == ARCH)),
            _ => false,
        });
        if !other_arch {
            nodes.extend(parsed);
        }
    }
    Ok(nodes)
}

/// What one description file needs from the tree's headers: its includes, include dirs and
/// defines, and the constant names it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConsts {
    pub file: String,
    pub includes: Vec<String>,
    pub incdirs: Vec<String>,
    pub defines: Vec<(String, String)>,
    pub names: BTreeSet<String>,
}

const BUILTINS: &[&str] = &[
    "int8",
    "int16",
    "int32",
    "int64",
    "intptr",
    "int16be",
    "int32be",
    "int64be",
    "bool8",
    "bool16",
    "bool32",
    "bool64",
    "const",
    "flags",
    "len",
    "bytesize",
    "bytesize2",
    "bytesize4",
    "bytesize8",
    "bitsize",
    "proc",
    "ptr",
    "ptr64",
    "vma",
    "vma64",
    "buffer",
    "string",
    "stringnoz",
    "filename",
    "array",
    "void",
    "in",
    "out",
    "inout",
    "opt",
    "parent",
    "packed",
    "varlen",
    "align",
    "size",
    "timeout",
    "disabled",
    "boolptr",
    "fileoff",
    "optional",
    "stringnoz",
    "glob",
    "fmt",
    "csum",
    "text",
    "compressed_image",
    "offsetof",
    "value",
    "if",
    "out_overlay",
    "syscall",
    "dec",
    "hex",
    "oct",
    "inet",
    "pseudo",
    "x86_real",
    "x86_16",
    "x86_32",
    "x86_64",
    "arm64",
    "prog_timeout",
    "ignore_return",
    "breaks_returns",
    "no_generate",
    "no_minimize",
    "no_squash",
    "fsck",
    "remote_cover",
    "snapshot",
    "automatic_helper",
    "kfuzz_test",
];

/// Per description file (in order of appearance): the includes, defines and constant names it
/// uses, that is what the tree must define for it.
pub fn const_requirements(nodes: &[Node]) -> Vec<FileConsts> {
    let mut declared: HashSet<&str> = BUILTINS.iter().copied().collect();
    let mut files: Vec<FileConsts> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for n in nodes {
        let file = n.pos().file.as_str();
        let i = *index.entry(file).or_insert_with(|| {
            files.push(FileConsts {
                file: file.to_string(),
                ..FileConsts::default()
            });
            files.len() - 1
        });
        match n {
            Node::Include { path, .. } => files[i].includes.push(path.clone()),
            Node::Incdir { path, .. } => files[i].incdirs.push(path.clone()),
            Node::Define { name, value, .. } => {
                files[i].defines.push((name.clone(), value.clone()));
            }
            Node::Resource { name, .. } | Node::Flags { name, .. } => {
                declared.insert(name);
            }
            Node::TypeDef { name, .. } => {
                declared.insert(name);
            }
            Node::Struct(s) => {
                declared.insert(&s.name);
            }
            _ => {}
        }
    }
    let defined: HashSet<String> = files
        .iter()
        .flat_map(|f| f.defines.iter().map(|(n, _)| n.clone()))
        .collect();
    fn walk_arg(a: &TypeArg, add: &mut dyn FnMut(&str)) {
        match a {
            TypeArg::Type(t) => walk_expr(t, add),
            TypeArg::Colon(x, y) | TypeArg::Binary(_, x, y) => {
                walk_arg(x, add);
                walk_arg(y, add);
            }
            _ => {}
        }
    }
    fn walk_expr(t: &TypeExpr, add: &mut dyn FnMut(&str)) {
        if t.args.is_empty() {
            add(&t.name);
        }
        // The first argument of a length, an offset or a value is a path of field names.
        let paths = matches!(
            t.name.as_str(),
            "len"
                | "bytesize"
                | "bytesize2"
                | "bytesize4"
                | "bytesize8"
                | "bitsize"
                | "offsetof"
                | "value"
        );
        for a in t.args.iter().skip(usize::from(paths)) {
            walk_arg(a, add);
        }
    }
    for n in nodes {
        let Some(&fi) = index.get(n.pos().file.as_str()) else {
            continue;
        };
        let names = &mut files[fi].names;
        // A template's parameters stand for its arguments, not for constants.
        let params: &[String] = match n {
            Node::TypeDef { params, .. } => params,
            _ => &[],
        };
        let mut add = |s: &str| {
            if !declared.contains(s) && !params.iter().any(|p| p == s) {
                names.insert(s.to_string());
            }
        };
        match n {
            Node::Resource { values, base, .. } => {
                walk_expr(base, &mut add);
                for (v, _) in values {
                    if let Value::Ident(s) = v {
                        add(s);
                    }
                }
            }
            Node::Flags { values, .. } => {
                for (v, _) in values {
                    if let Value::Ident(s) = v {
                        add(s);
                    }
                }
            }
            Node::TypeDef {
                body: TypeDefBody::Type(t),
                ..
            } => walk_expr(t, &mut add),
            Node::TypeDef {
                body: TypeDefBody::Struct(s),
                ..
            }
            | Node::Struct(s) => {
                for f in &s.fields {
                    walk_expr(&f.ty, &mut add);
                    if let Some(b) = &f.bits {
                        walk_arg(b, &mut add);
                    }
                    for a in &f.attrs {
                        walk_expr(a, &mut add);
                    }
                }
                for a in &s.attrs {
                    walk_expr(a, &mut add);
                }
            }
            Node::Call {
                args, ret, attrs, ..
            } => {
                for a in args.iter().map(|a| &a.ty).chain(attrs) {
                    walk_expr(a, &mut add);
                }
                if let Some(r) = ret {
                    walk_expr(r, &mut add);
                }
            }
            _ => {}
        }
    }
    for f in &mut files {
        f.names.retain(|n| !defined.contains(n));
        f.names.extend(f.defines.iter().map(|(n, _)| n.clone()));
    }
    files
}

type FlagValues = (Vec<u64>, Vec<(String, u64)>);

/// A declaration's values with their positions (`= A, B` of flags, `: -1` of a resource).
type Values<'a> = &'a [(Value, Pos)];

struct Builder<'a> {
    consts: &'a HashMap<String, u64>,
    resource_nodes: HashMap<&'a str, (&'a TypeExpr, Values<'a>, &'a Pos)>,
    flag_nodes: HashMap<&'a str, (Values<'a>, &'a Pos)>,
    typedefs: HashMap<&'a str, (&'a [String], &'a TypeDefBody, &'a Pos)>,
    struct_nodes: HashMap<&'a str, &'a StructDef>,
    resources: Vec<ResourceDesc>,
    resource_ids: HashMap<String, ResourceId>,
    structs: Vec<StructDesc>,
    struct_ids: HashMap<String, StructId>,
    warnings: Vec<String>,
    depth: usize,
}

/// How deep type expansion (aliases, templates, nested structs by value) may go.
const MAX_TYPE_DEPTH: usize = 64;

/// Compiles the parsed descriptions against the tree's constants and syscall numbers.
pub fn compile(
    nodes: &[Node],
    consts: &HashMap<String, u64>,
    numbers: &HashMap<String, u64>,
) -> Target {
    let mut b = Builder {
        consts,
        resource_nodes: HashMap::new(),
        flag_nodes: HashMap::new(),
        typedefs: HashMap::new(),
        struct_nodes: HashMap::new(),
        resources: Vec::new(),
        resource_ids: HashMap::new(),
        structs: Vec::new(),
        struct_ids: HashMap::new(),
        warnings: Vec::new(),
        depth: 0,
    };
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut shadowed = Vec::new();
    let mut dup = |name: &str, pos: &Pos, _: &mut Vec<String>| -> bool {
        if name == "_" {
            // `_ = A, B`: constants declared only to be extracted.
            return true;
        }
        if let Some(first) = seen.get(name) {
            shadowed.push(format!(
                "{pos}: `{name}` is declared again (first at {first}); the first one is used"
            ));
            true
        } else {
            seen.insert(name.to_string(), pos.clone());
            false
        }
    };
    for n in nodes {
        match n {
            Node::Resource {
                name,
                base,
                values,
                pos,
            } if !dup(name, pos, &mut b.warnings) => {
                b.resource_nodes.insert(name, (base, values, pos));
            }
            Node::Flags { name, values, pos } if !dup(name, pos, &mut b.warnings) => {
                b.flag_nodes.insert(name, (values, pos));
            }
            Node::TypeDef {
                name,
                params,
                body,
                pos,
            } if !dup(name, pos, &mut b.warnings) => {
                b.typedefs.insert(name, (params, body, pos));
            }
            Node::Struct(s) if !dup(&s.name, &s.pos, &mut b.warnings) => {
                b.struct_nodes.insert(&s.name, s);
            }
            _ => {}
        }
    }
    let mut target = Target::default();
    let mut call_seen: HashMap<&str, &Pos> = HashMap::new();
    for n in nodes {
        let Node::Call {
            name,
            args,
            ret,
            attrs,
            pos,
        } = n
        else {
            continue;
        };
        if let Some(first) = call_seen.get(name.as_str()) {
            target.disabled.push(DisabledCall {
                name: name.clone(),
                reason: format!("{pos}: duplicate call name (first declared at {first})"),
            });
            continue;
        }
        call_seen.insert(name, pos);
        match b.call(name, args, ret.as_ref(), attrs, pos, numbers) {
            Ok(mut sc) => {
                sc.id = target.syscalls.len();
                target.syscalls.push(sc);
            }
            Err(e) => target.disabled.push(DisabledCall {
                name: name.clone(),
                reason: format!("{}: {}", e.pos, e.msg),
            }),
        }
    }
    target.resources = b.resources;
    target.structs = b.structs;
    target.warnings = b.warnings;
    target.shadowed = shadowed;
    target.bounds = crate::bounds::Bounds::compute(&target.structs, &target.resources);
    disable_unbounded(&mut target);
    prune_unconstructible(&mut target);
    // Every resource kind some enabled call reads (as itself or as a descendant).
    let mut read: HashSet<ResourceId> = HashSet::new();
    for s in &target.syscalls {
        walk_call_types(&target, s, &mut |t, dir, _| {
            if let TypeKind::Resource(id) = t.kind {
                if dir.reads() {
                    read.insert(id);
                }
            }
        });
    }
    for r in &target.resources {
        let used = read.iter().any(|id| r.accepts(&target.resources[*id]));
        if !used {
            target.warnings.push(format!(
                "resource `{}` is never consumed by an enabled call",
                r.name
            ));
        }
    }
    target
}

/// Disables calls whose smallest value is infinite, too big for a program's data, or nests too
/// deep (see `bounds`).
fn disable_unbounded(target: &mut Target) {
    let reasons: Vec<Option<String>> = target
        .syscalls
        .iter()
        .map(|s| crate::bounds::unbounded_reason(target, s).map(|r| format!("{}: {r}", s.pos)))
        .collect();
    let mut keep = Vec::with_capacity(reasons.len());
    for (s, reason) in target.syscalls.iter().zip(reasons) {
        keep.push(reason.is_none());
        if let Some(reason) = reason {
            target.disabled.push(DisabledCall {
                name: s.name.clone(),
                reason,
            });
        }
    }
    let mut i = 0;
    target.syscalls.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    for (i, s) in target.syscalls.iter_mut().enumerate() {
        s.id = i;
    }
}

/// Disables calls that need a resource no enabled call can produce, until nothing changes.
fn prune_unconstructible(target: &mut Target) {
    // What each call makes and needs, computed once.
    let outputs: Vec<HashSet<ResourceId>> = target
        .syscalls
        .iter()
        .map(|s| produced_resources(target, s))
        .collect();
    let needs: Vec<Vec<ResourceId>> = target
        .syscalls
        .iter()
        .map(|s| required_resources(target, s))
        .collect();
    let mut alive = vec![true; target.syscalls.len()];
    let mut reasons: Vec<Option<String>> = vec![None; target.syscalls.len()];
    loop {
        let mut made: HashSet<ResourceId> = HashSet::new();
        for (i, o) in outputs.iter().enumerate() {
            if alive[i] {
                made.extend(o);
            }
        }
        // A needed kind is satisfied by any made kind that descends from it.
        let mut ok: HashMap<ResourceId, bool> = HashMap::new();
        let mut changed = false;
        for i in 0..needs.len() {
            if !alive[i] {
                continue;
            }
            for &need in &needs[i] {
                let sat = *ok.entry(need).or_insert_with(|| {
                    made.iter()
                        .any(|p| target.resources[need].accepts(&target.resources[*p]))
                });
                if !sat {
                    alive[i] = false;
                    changed = true;
                    reasons[i] = Some(format!(
                        "{}: no enabled call can create resource `{}`",
                        target.syscalls[i].pos, target.resources[need].name
                    ));
                    break;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (i, reason) in reasons.into_iter().enumerate() {
        if let Some(reason) = reason {
            let name = target.syscalls[i].name.clone();
            target.disabled.push(DisabledCall { name, reason });
        }
    }
    let mut i = 0;
    target.syscalls.retain(|_| {
        i += 1;
        alive[i - 1]
    });
    for (i, s) in target.syscalls.iter_mut().enumerate() {
        s.id = i;
    }
}

/// The resource kinds a call can create: its return value and what it writes.
pub fn produced_resources(target: &Target, call: &Syscall) -> HashSet<ResourceId> {
    let mut out: HashSet<ResourceId> = call.ret.into_iter().collect();
    walk_call_types(target, call, &mut |t, dir, _| {
        if let TypeKind::Resource(r) = t.kind {
            if dir.writes() {
                out.insert(r);
            }
        }
    });
    out
}

/// Walks every type reachable from a call's arguments with its effective direction.
pub fn walk_call_types(target: &Target, call: &Syscall, f: &mut dyn FnMut(&Type, Dir, bool)) {
    fn walk(
        target: &Target,
        t: &Type,
        dir: Dir,
        optional: bool,
        seen: &mut Vec<StructId>,
        f: &mut dyn FnMut(&Type, Dir, bool),
    ) {
        f(t, dir, optional || t.opt);
        let optional = optional || t.opt;
        match &t.kind {
            TypeKind::Ptr { dir: d, elem } => walk(target, elem, *d, optional, seen, f),
            TypeKind::Array { elem, len } => {
                let opt = optional || matches!(len, ArrayLen::Var | ArrayLen::Range(0, _));
                walk(target, elem, dir, opt, seen, f)
            }
            TypeKind::Struct(id) => {
                if seen.contains(id) {
                    return;
                }
                seen.push(*id);
                let st = &target.structs[*id];
                for fl in &st.fields {
                    walk(
                        target,
                        &fl.ty,
                        fl.dir.unwrap_or(dir),
                        optional || st.is_union,
                        seen,
                        f,
                    );
                }
                seen.pop();
            }
            _ => {}
        }
    }
    let mut seen = Vec::new();
    for a in &call.args {
        walk(target, &a.ty, Dir::In, false, &mut seen, f);
    }
}

pub fn produces(target: &Target, call: &Syscall, r: ResourceId) -> bool {
    if call.ret == Some(r) {
        return true;
    }
    let mut found = false;
    walk_call_types(target, call, &mut |t, dir, _| {
        if t.kind == TypeKind::Resource(r) && dir.writes() {
            found = true;
        }
    });
    found
}

/// Resources a call cannot do without (non-optional inputs).
pub fn required_resources(target: &Target, call: &Syscall) -> Vec<ResourceId> {
    let mut out = Vec::new();
    walk_call_types(target, call, &mut |t, dir, optional| {
        if let TypeKind::Resource(id) = t.kind {
            if dir == Dir::In && !optional && !out.contains(&id) {
                out.push(id);
            }
        }
    });
    out
}

fn subst_expr(e: &TypeExpr, map: &HashMap<String, TypeArg>) -> TypeArg {
    let mut name = e.name.clone();
    match map.get(&e.name) {
        Some(a) if e.args.is_empty() => return a.clone(),
        // `BASE[0:4]` with BASE = int32: the parameter names the type that takes the args.
        Some(TypeArg::Type(t)) if t.args.is_empty() => name = t.name.clone(),
        _ => {}
    }
    TypeArg::Type(TypeExpr {
        name,
        args: e.args.iter().map(|a| subst_arg(a, map)).collect(),
        pos: e.pos.clone(),
    })
}

fn subst_arg(a: &TypeArg, map: &HashMap<String, TypeArg>) -> TypeArg {
    match a {
        TypeArg::Type(t) => subst_expr(t, map),
        TypeArg::Colon(x, y) => {
            TypeArg::Colon(Box::new(subst_arg(x, map)), Box::new(subst_arg(y, map)))
        }
        TypeArg::Binary(op, x, y) => TypeArg::Binary(
            *op,
            Box::new(subst_arg(x, map)),
            Box::new(subst_arg(y, map)),
        ),
        other => other.clone(),
    }
}

fn int_base(name: &str) -> Option<(u8, bool)> {
    Some(match name {
        "int8" => (1, false),
        "int16" => (2, false),
        "int32" => (4, false),
        "int64" | "intptr" => (8, false),
        "int16be" => (2, true),
        "int32be" => (4, true),
        "int64be" => (8, true),
        _ => return None,
    })
}

fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

impl<'a> Builder<'a> {
    fn call(
        &mut self,
        name: &str,
        args: &[Field],
        ret: Option<&TypeExpr>,
        attrs: &[TypeExpr],
        pos: &Pos,
        numbers: &HashMap<String, u64>,
    ) -> R<Syscall> {
        let call_name = name.split('$').next().unwrap_or(name).to_string();
        // Pseudo-calls get numbers of their own, which the executor runs itself.
        let (nr, max_args) = if call_name.starts_with("syz_") {
            match kfuzz_wire::PseudoCall::from_name(&call_name) {
                Some(p) => (p.nr(), kfuzz_wire::PSEUDO_MAX_ARGS),
                None => {
                    return err(
                        pos,
                        format!(
                            "pseudo-syscall `{call_name}` is not implemented by kfuzz's executor"
                        ),
                    )
                }
            }
        } else {
            match numbers.get(&call_name) {
                Some(nr) => (*nr, 6),
                None => return err(pos, format!("`{call_name}` is not in the tree's syscall table (arch/x86/entry/syscalls/syscall_64.tbl)")),
            }
        };
        if args.len() > max_args {
            return err(
                pos,
                format!(
                    "{} arguments: `{call_name}` takes at most {max_args}",
                    args.len()
                ),
            );
        }
        let mut timeout_ms = None;
        let mut no_generate = false;
        for a in attrs {
            match a.name.as_str() {
                "disabled" => return err(&a.pos, "marked (disabled) in the descriptions"),
                "timeout" | "prog_timeout" => {
                    if let Some(arg) = a.args.first() {
                        timeout_ms = Some(self.value(arg)?);
                    }
                }
                "no_generate" => no_generate = true,
                "ignore_return" | "breaks_returns" | "no_minimize" | "fsck" | "remote_cover"
                | "snapshot" | "automatic_helper" | "kfuzz_test" | "no_squash" => {}
                other => return err(&a.pos, format!("unknown call attribute `{other}`")),
            }
        }
        let mut fields = Vec::new();
        for a in args {
            let ty = self.ty(&a.ty)?;
            if matches!(
                ty.kind,
                TypeKind::Struct(_)
                    | TypeKind::Array { .. }
                    | TypeKind::Buffer { .. }
                    | TypeKind::Void
            ) {
                return err(
                    &a.ty.pos,
                    format!(
                        "argument `{}` must be a scalar or a pointer, not `{}`",
                        a.name, a.ty.name
                    ),
                );
            }
            fields.push(FieldDesc {
                name: a.name.clone(),
                ty,
                dir: None,
                cond: None,
            });
        }
        self.check_lens(&fields, args)?;
        let ret = match ret {
            None => None,
            Some(r) => match self.ty(r)?.kind {
                TypeKind::Resource(id) => Some(id),
                _ => {
                    return err(
                        &r.pos,
                        format!("a call returns a resource, not `{}`", r.name),
                    )
                }
            },
        };
        Ok(Syscall {
            id: 0,
            name: name.to_string(),
            call_name,
            nr,
            args: fields,
            ret,
            timeout_ms,
            no_generate,
            pos: pos.to_string(),
        })
    }

    fn value(&self, a: &TypeArg) -> R<u64> {
        match a {
            TypeArg::Int(i, _) => Ok(*i as u64),
            TypeArg::Type(t) if t.args.is_empty() => self.const_value(&t.name, &t.pos),
            TypeArg::Binary(op, x, y) => Ok(op.apply(self.value(x)?, self.value(y)?)),
            other => err(other.pos(), "expected a number or a constant name"),
        }
    }

    fn const_value(&self, name: &str, pos: &Pos) -> R<u64> {
        match self.consts.get(name) {
            Some(v) => Ok(*v),
            None if name == "PTR_SIZE" => Ok(8),
            None => err(
                pos,
                format!("constant `{name}` is not defined by the tree's headers"),
            ),
        }
    }

    fn values(&self, vals: &[(Value, Pos)]) -> R<Vec<u64>> {
        Ok(self
            .named_values(vals, 0)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// A flag set's values with the constant names they came from; a value naming another
    /// flag set stands for all of that set's values.
    fn named_values(&self, vals: &[(Value, Pos)], depth: usize) -> R<Vec<(Option<String>, u64)>> {
        let mut out = Vec::new();
        for (v, p) in vals {
            match v {
                Value::Int(i) => out.push((None, *i as u64)),
                Value::Ident(s) => match self.flag_nodes.get(s.as_str()) {
                    Some((inner, _)) if !self.consts.contains_key(s) => {
                        if depth > 16 {
                            return err(p, format!("flag set `{s}` includes itself"));
                        }
                        out.extend(self.named_values(inner, depth + 1)?);
                    }
                    _ => out.push((Some(s.clone()), self.const_value(s, p)?)),
                },
                Value::Str(_) => return err(p, "a string in an integer flag set"),
            }
        }
        Ok(out)
    }

    /// The strings of string flag set `name`, nested sets expanded.
    fn string_values(&self, name: &str, pos: &Pos, depth: usize) -> R<Vec<Vec<u8>>> {
        let Some((vals, p)) = self.flag_nodes.get(name).copied() else {
            return err(pos, format!("unknown string flag set `{name}`"));
        };
        let mut out = Vec::new();
        for (v, vp) in vals {
            match v {
                Value::Str(s) => out.push(str_bytes(s)),
                Value::Ident(inner)
                    if self.flag_nodes.contains_key(inner.as_str()) && depth < 16 =>
                {
                    out.extend(self.string_values(inner, vp, depth + 1)?)
                }
                _ => {
                    return err(
                        vp,
                        format!("`{name}` ({p}) is used as a string set but holds a non-string"),
                    )
                }
            }
        }
        Ok(out)
    }

    fn range(&self, a: &TypeArg) -> R<(u64, u64)> {
        match a {
            TypeArg::Colon(x, y) => Ok((self.value(x)?, self.value(y)?)),
            other => {
                let v = self.value(other)?;
                Ok((v, v))
            }
        }
    }

    /// The optional trailing int type (`flags[f, int16]`), default intptr.
    fn size_arg(&self, a: Option<&TypeArg>) -> R<(u8, bool)> {
        match a {
            None => Ok((8, false)),
            Some(TypeArg::Type(t)) if t.args.is_empty() => match int_base(&t.name) {
                Some(s) => Ok(s),
                None => err(
                    &t.pos,
                    format!(
                        "expected an integer type (int8..int64, intptr), found `{}`",
                        t.name
                    ),
                ),
            },
            Some(other) => err(other.pos(), "expected an integer type"),
        }
    }

    fn resource(&mut self, name: &str, pos: &Pos) -> R<ResourceId> {
        if let Some(id) = self.resource_ids.get(name) {
            return Ok(*id);
        }
        let Some((base, values, rpos)) = self.resource_nodes.get(name).copied() else {
            return err(pos, format!("unknown resource `{name}`"));
        };
        let (kinds, size, mut special) = if let Some((size, _)) = int_base(&base.name) {
            (vec![name.to_string()], size, Vec::new())
        } else if self.resource_nodes.contains_key(base.name.as_str()) {
            // Walk the chain of bases first: a cycle (`resource ra[rb]`, `resource rb[ra]`)
            // is an error, not endless recursion.
            let mut seen = vec![name];
            let mut at = base.name.as_str();
            while let Some((b, _, _)) = self.resource_nodes.get(at) {
                if seen.contains(&at) {
                    return err(
                        &base.pos,
                        format!("resource `{name}` is its own base (through `{at}`)"),
                    );
                }
                seen.push(at);
                at = b.name.as_str();
            }
            let parent = self.resource(&base.name, &base.pos)?;
            let p = &self.resources[parent];
            let mut k = p.kinds.clone();
            k.push(name.to_string());
            (k, p.size, p.special.clone())
        } else {
            return err(
                &base.pos,
                format!(
                    "resource base must be an integer type or a resource, found `{}`",
                    base.name
                ),
            );
        };
        let own = self.values(values).map_err(|e| CompileError {
            pos: e.pos,
            msg: format!("in resource `{name}` ({rpos}): {}", e.msg),
        })?;
        // Kept 64 bits wide: -1 is 0xffffffffffffffff in a register, whatever the size.
        special = own.into_iter().chain(special).collect();
        special.dedup();
        let id = self.resources.len();
        self.resources.push(ResourceDesc {
            name: name.to_string(),
            kinds,
            size,
            special,
        });
        self.resource_ids.insert(name.to_string(), id);
        Ok(id)
    }

    fn ty(&mut self, e: &TypeExpr) -> R<Type> {
        self.ty_with_bits(e, None)
    }

    fn ty_with_bits(&mut self, e: &TypeExpr, bits: Option<u64>) -> R<Type> {
        self.depth += 1;
        let r = if self.depth > MAX_TYPE_DEPTH {
            err(
                &e.pos,
                format!(
                    "`{}` expands deeper than {MAX_TYPE_DEPTH} levels (a type alias or template that uses itself?)",
                    e.name
                ),
            )
        } else {
            self.ty_bits(e, bits)
        };
        self.depth -= 1;
        r
    }

    /// A type, `bits` wide when it is a bitfield (`int16:3`, or `const[X, int16:3]`).
    fn ty_bits(&mut self, e: &TypeExpr, mut bits: Option<u64>) -> R<Type> {
        // The underlying integer of const/flags/len/proc may carry a width: `int16:14`.
        let stripped;
        let mut args: Vec<&TypeArg> = e.args.iter().collect();
        if let Some(TypeArg::Colon(t, w)) = args.last() {
            if let (TypeArg::Type(t), false) = (
                t.as_ref(),
                matches!(
                    e.name.as_str(),
                    "len"
                        | "bytesize"
                        | "bytesize2"
                        | "bytesize4"
                        | "bytesize8"
                        | "bitsize"
                        | "offsetof"
                ) && args.len() == 1,
            ) {
                if int_base(&t.name).is_some() {
                    bits = Some(self.value(w)?);
                    stripped = TypeArg::Type(t.clone());
                    args.pop();
                    args.push(&stripped);
                }
            }
        }
        let mut opt = false;
        if let Some(TypeArg::Type(t)) = args.last() {
            if t.name == "opt" && t.args.is_empty() {
                opt = true;
                args.pop();
            }
        }
        let want = |n: usize, m: usize, what: &str| -> R<()> {
            if args.len() < n || args.len() > m {
                return err(
                    &e.pos,
                    format!(
                        "`{}` takes {what}, found {} argument(s)",
                        e.name,
                        args.len()
                    ),
                );
            }
            Ok(())
        };
        let kind = match e.name.as_str() {
            n if int_base(n).is_some()
                && matches!(args.first(), Some(TypeArg::Type(f)) if f.args.is_empty() && self.flag_nodes.contains_key(f.name.as_str())) =>
            {
                // `int32[flagname]`: any of the set's values, not combined.
                want(1, 1, "[flag set]")?;
                let (size, _) = int_base(n).unwrap_or((8, false));
                let Some(TypeArg::Type(f)) = args.first() else {
                    return err(&e.pos, "expected a flag set");
                };
                let (vals, names) = self.flag_values(&f.name, size, &f.pos)?;
                TypeKind::Flags {
                    size,
                    vals,
                    bitmask: false,
                    names,
                }
            }
            "boolptr" => TypeKind::Int {
                size: 8,
                range: Some((0, 1)),
                align: 0,
                be: false,
            },
            "fileoff" if !self.typedefs.contains_key("fileoff") => {
                want(0, 1, "[intN]")?;
                match args.first() {
                    Some(TypeArg::Type(t)) => {
                        let mut ty = self.ty(t)?;
                        ty.opt |= opt;
                        return Ok(ty);
                    }
                    _ => TypeKind::Int {
                        size: 8,
                        range: None,
                        align: 0,
                        be: false,
                    },
                }
            }
            "optional" if !self.typedefs.contains_key("optional") => {
                // The builtin `type optional[T] [ val T; void void ] [varlen]`.
                want(1, 1, "[type]")?;
                let TypeArg::Type(inner) = args[0] else {
                    return err(args[0].pos(), "expected a type");
                };
                let key = format!("optional[{}]", arg_key(args[0]));
                let field = |name: &str, ty: TypeExpr| Field {
                    name: name.into(),
                    ty,
                    bits: None,
                    attrs: Vec::new(),
                    pos: e.pos.clone(),
                };
                let def = StructDef {
                    name: key.clone(),
                    is_union: true,
                    fields: vec![
                        field("val", inner.clone()),
                        field(
                            "void",
                            TypeExpr {
                                name: "void".into(),
                                args: Vec::new(),
                                pos: e.pos.clone(),
                            },
                        ),
                    ],
                    attrs: vec![TypeExpr {
                        name: "varlen".into(),
                        args: Vec::new(),
                        pos: e.pos.clone(),
                    }],
                    pos: e.pos.clone(),
                };
                TypeKind::Struct(self.struct_def(&key, &def)?)
            }
            "text" => {
                // Machine code of a kind: fuzzed as bytes.
                want(1, 1, "[x86_real|x86_16|x86_32|x86_64|arm64]")?;
                TypeKind::Buffer {
                    dir: Dir::In,
                    kind: BufferKind::Blob { range: None },
                }
            }
            n if int_base(n).is_some() => {
                let (size, be) = int_base(n).unwrap_or((8, false));
                want(0, 2, "[range] or [range, align]")?;
                let range = match args.first() {
                    Some(a) => {
                        let (lo, hi) = self.range(a)?;
                        // `int32[-1:1]` is a signed range: empty only when empty either way.
                        if lo > hi && (lo as i64) > (hi as i64) {
                            return err(
                                a.pos(),
                                format!("empty range {lo}:{hi}: expected min:max with min <= max"),
                            );
                        }
                        Some((lo & mask(size), hi & mask(size)))
                    }
                    None => None,
                };
                let align = args.get(1).map(|a| self.value(a)).transpose()?.unwrap_or(0);
                TypeKind::Int {
                    size,
                    range,
                    align,
                    be,
                }
            }
            "bool8" | "bool16" | "bool32" | "bool64" => {
                let size = e.name[4..].parse::<u8>().unwrap_or(8) / 8;
                TypeKind::Int {
                    size,
                    range: Some((0, 1)),
                    align: 0,
                    be: false,
                }
            }
            "const" => {
                want(1, 2, "[value] or [value, intN]")?;
                let (size, be) = self.size_arg(args.get(1).copied())?;
                let name = match args[0] {
                    TypeArg::Type(t) if t.args.is_empty() => Some(t.name.clone()),
                    _ => None,
                };
                TypeKind::Const {
                    size,
                    val: self.value(args[0])? & mask(size),
                    be,
                    name,
                }
            }
            "flags" => {
                want(1, 2, "[flag set] or [flag set, intN]")?;
                let TypeArg::Type(f) = args[0] else {
                    return err(args[0].pos(), "expected a flag set name");
                };
                let (size, _) = self.size_arg(args.get(1).copied())?;
                let (vals, names) = self.flag_values(&f.name, size, &f.pos)?;
                let bitmask = vals.iter().all(|v| *v == 0 || v.is_power_of_two()) && vals.len() > 1;
                TypeKind::Flags {
                    size,
                    vals,
                    bitmask,
                    names,
                }
            }
            "len" | "bytesize" | "bytesize2" | "bytesize4" | "bytesize8" | "bitsize"
            | "offsetof" => {
                want(1, 2, "[target] or [target, intN]")?;
                let mut path = Vec::new();
                if !flatten(args[0], &mut path) {
                    return err(args[0].pos(), "expected the name of an argument or field");
                }
                let (size, _) = self.size_arg(args.get(1).copied())?;
                let unit = match e.name.as_str() {
                    "len" => LenUnit::Elems,
                    "bitsize" => LenUnit::Bits,
                    "offsetof" => LenUnit::Offset,
                    "bytesize" => LenUnit::Bytes(1),
                    n => LenUnit::Bytes(n[8..].parse().unwrap_or(1)),
                };
                TypeKind::Len { size, path, unit }
            }
            "proc" => {
                want(2, 3, "[start, per-process count] or [start, count, intN]")?;
                let (size, _) = self.size_arg(args.get(2).copied())?;
                TypeKind::Proc {
                    size,
                    start: self.value(args[0])?,
                    per_proc: self.value(args[1])?.max(1),
                }
            }
            "ptr" | "ptr64" => {
                want(2, 2, "[direction, type]")?;
                let dir = self.dir(args[0])?;
                let TypeArg::Type(inner) = args[1] else {
                    return err(args[1].pos(), "expected the pointed-to type");
                };
                let elem = self.ty(inner)?;
                TypeKind::Ptr {
                    dir,
                    elem: Box::new(elem),
                }
            }
            "vma" | "vma64" => {
                want(0, 1, "[pages] or [min:max pages]")?;
                let pages = args.first().map(|a| self.range(a)).transpose()?;
                if let (Some((lo, hi)), Some(a)) = (pages, args.first()) {
                    if lo > hi {
                        return err(
                            a.pos(),
                            format!(
                                "empty range {lo}:{hi} of pages: expected min:max with min <= max"
                            ),
                        );
                    }
                }
                TypeKind::Vma { pages }
            }
            "buffer" => {
                want(1, 1, "[direction]")?;
                let dir = self.dir(args[0])?;
                TypeKind::Ptr {
                    dir,
                    elem: Box::new(Type::new(TypeKind::Buffer {
                        dir,
                        kind: BufferKind::Blob { range: None },
                    })),
                }
            }
            "string" | "stringnoz" => {
                want(0, 2, "[literal or string flag set] or [.., size]")?;
                let noz = e.name == "stringnoz";
                if let Some(TypeArg::Type(t)) = args.first() {
                    if t.name == "filename" && !self.flag_nodes.contains_key("filename") {
                        let mut ty = Type::new(TypeKind::Buffer {
                            dir: Dir::In,
                            kind: BufferKind::Filename { noz },
                        });
                        ty.opt = opt;
                        return Ok(ty);
                    }
                }
                let values = match args.first() {
                    None => Vec::new(),
                    Some(TypeArg::Str(s, _)) => vec![str_bytes(s)],
                    Some(TypeArg::Type(t)) if t.args.is_empty() => {
                        self.string_values(&t.name, &t.pos, 0)?
                    }
                    Some(other) => {
                        return err(
                            other.pos(),
                            "expected a string literal or a string flag set",
                        )
                    }
                };
                match args.get(1) {
                    // `string["foo", 16]`: each value padded with zeros to exactly 16 bytes.
                    Some(a) => {
                        let n = self.value(a)?;
                        if n == 0 || n > 1 << 16 || values.is_empty() {
                            return err(
                                a.pos(),
                                format!("a fixed-size string takes values and a size of 1 to 65536 bytes, found {n}"),
                            );
                        }
                        let values = values
                            .into_iter()
                            .map(|mut v| {
                                v.resize(n as usize, 0);
                                v
                            })
                            .collect();
                        TypeKind::Buffer {
                            dir: Dir::In,
                            kind: BufferKind::String { values, noz: true },
                        }
                    }
                    None => TypeKind::Buffer {
                        dir: Dir::In,
                        kind: BufferKind::String { values, noz },
                    },
                }
            }
            "filename" => {
                want(0, 0, "no arguments")?;
                TypeKind::Buffer {
                    dir: Dir::In,
                    kind: BufferKind::Filename { noz: false },
                }
            }
            "array" => {
                want(1, 2, "[type], [type, N] or [type, min:max]")?;
                let TypeArg::Type(inner) = args[0] else {
                    return err(args[0].pos(), "expected the element type");
                };
                let elem = self.ty(inner)?;
                let len = match args.get(1) {
                    None => ArrayLen::Var,
                    Some(a) => {
                        let (lo, hi) = self.range(a)?;
                        if lo > hi || hi > 1 << 16 {
                            return err(a.pos(), format!("bad array length {lo}:{hi}"));
                        }
                        ArrayLen::Range(lo, hi)
                    }
                };
                if let (
                    TypeKind::Int {
                        size: 1,
                        range: None,
                        ..
                    },
                    ArrayLen::Var | ArrayLen::Range(..),
                ) = (&elem.kind, &len)
                {
                    // array[int8] is a byte buffer.
                    let range = match len {
                        ArrayLen::Var => None,
                        ArrayLen::Range(a, b) => Some((a, b)),
                    };
                    TypeKind::Buffer {
                        dir: Dir::In,
                        kind: BufferKind::Blob { range },
                    }
                } else {
                    TypeKind::Array {
                        elem: Box::new(elem),
                        len,
                    }
                }
            }
            "void" => TypeKind::Void,
            "compressed_image" => {
                want(0, 0, "no arguments")?;
                TypeKind::Buffer {
                    dir: Dir::In,
                    kind: BufferKind::Compressed,
                }
            }
            "fmt" | "glob" | "csum" => {
                return err(
                    &e.pos,
                    format!("type `{}` is not supported by kfuzz yet", e.name),
                );
            }
            name => {
                if self.resource_nodes.contains_key(name) {
                    want(0, 0, "no arguments (or [opt])")?;
                    TypeKind::Resource(self.resource(name, &e.pos)?)
                } else if let Some((params, body, tpos)) = self.typedefs.get(name).copied() {
                    if params.len() != args.len() {
                        return err(
                            &e.pos,
                            format!(
                                "type `{name}` ({tpos}) takes {} argument(s), found {}",
                                params.len(),
                                args.len()
                            ),
                        );
                    }
                    let map: HashMap<String, TypeArg> = params
                        .iter()
                        .cloned()
                        .zip(args.iter().map(|a| (*a).clone()))
                        .collect();
                    match body {
                        TypeDefBody::Type(t) => match subst_expr(t, &map) {
                            TypeArg::Type(t2) => {
                                let mut ty = self.ty(&t2)?;
                                ty.opt |= opt;
                                return Ok(ty);
                            }
                            other => return err(other.pos(), "a type alias must expand to a type"),
                        },
                        TypeDefBody::Struct(s) => {
                            let key = if args.is_empty() {
                                name.to_string()
                            } else {
                                format!(
                                    "{name}[{}]",
                                    args.iter()
                                        .map(|a| arg_key(a))
                                        .collect::<Vec<_>>()
                                        .join(",")
                                )
                            };
                            let fields = s
                                .fields
                                .iter()
                                .map(|f| {
                                    let mut bits = f.bits.as_ref().map(|b| subst_arg(b, &map));
                                    let ty = match subst_expr(&f.ty, &map) {
                                        TypeArg::Type(t) => t,
                                        // A bitfield passed as an argument: `T` = `int8:3`.
                                        TypeArg::Colon(t, b) => match *t {
                                            TypeArg::Type(t) => {
                                                bits = Some(*b);
                                                t
                                            }
                                            _ => f.ty.clone(),
                                        },
                                        _ => f.ty.clone(),
                                    };
                                    Field {
                                        name: f.name.clone(),
                                        ty,
                                        bits,
                                        attrs: f
                                            .attrs
                                            .iter()
                                            .map(|a| match subst_expr(a, &map) {
                                                TypeArg::Type(t) => t,
                                                _ => a.clone(),
                                            })
                                            .collect(),
                                        pos: f.pos.clone(),
                                    }
                                })
                                .collect();
                            let def = StructDef {
                                name: key.clone(),
                                is_union: s.is_union,
                                fields,
                                attrs: s.attrs.clone(),
                                pos: s.pos.clone(),
                            };
                            TypeKind::Struct(self.struct_def(&key, &def)?)
                        }
                    }
                } else if let Some(s) = self.struct_nodes.get(name).copied() {
                    want(0, 0, "no arguments (or [opt])")?;
                    TypeKind::Struct(self.struct_def(name, s)?)
                } else if self.flag_nodes.contains_key(name) {
                    return err(
                        &e.pos,
                        format!("`{name}` is a flag set: write flags[{name}]"),
                    );
                } else {
                    return err(&e.pos, format!("unknown type `{name}`"));
                }
            }
        };
        let mut ty = Type::new(kind);
        ty.opt = opt;
        if let Some(len) = bits {
            let Some(size) = int_size(&ty.kind, &self.resources) else {
                return err(&e.pos, format!("`{}` cannot be a bitfield", e.name));
            };
            if len == 0 || len > u64::from(size) * 8 {
                return err(
                    &e.pos,
                    format!("a bitfield of {len} bits does not fit in {size} bytes"),
                );
            }
            ty.bitfield = Some(Bitfield {
                offset: 0,
                len: len as u8,
                last: true,
            });
        }
        Ok(ty)
    }

    /// The values of flag set `name` (masked to `size` bytes) and its named values for C output.
    fn flag_values(&self, name: &str, size: u8, pos: &Pos) -> R<FlagValues> {
        let Some((nodes, _)) = self.flag_nodes.get(name).copied() else {
            return err(pos, format!("unknown flag set `{name}`"));
        };
        let named = self.named_values(nodes, 0)?;
        let vals: Vec<u64> = named.iter().map(|(_, v)| v & mask(size)).collect();
        let names = named
            .into_iter()
            .filter_map(|(n, v)| Some((n?, v & mask(size))))
            .collect();
        Ok((vals, names))
    }

    fn dir(&self, a: &TypeArg) -> R<Dir> {
        match a {
            TypeArg::Type(t) if t.name == "in" => Ok(Dir::In),
            TypeArg::Type(t) if t.name == "out" => Ok(Dir::Out),
            TypeArg::Type(t) if t.name == "inout" => Ok(Dir::InOut),
            other => err(other.pos(), "expected a direction: in, out or inout"),
        }
    }

    /// Every `len`/`bytesize`/`offsetof` among `fields` (the compiled `ast` fields) names what
    /// can exist: a sibling and fields below it, `parent`, `syscall` or a struct's name.
    fn check_lens(&self, fields: &[FieldDesc], ast: &[Field]) -> R<()> {
        for (f, a) in fields.iter().zip(ast) {
            let mut paths = Vec::new();
            self.lens_in(&f.ty, &mut paths);
            for path in paths {
                let Some(first) = path.first() else {
                    continue;
                };
                if first == "parent"
                    || first == "syscall"
                    || self.struct_nodes.contains_key(first.as_str())
                    || self.typedefs.contains_key(first.as_str())
                {
                    continue;
                }
                let Some(sibling) = fields.iter().find(|x| &x.name == first) else {
                    let names: Vec<&str> = fields.iter().map(|x| x.name.as_str()).collect();
                    return err(
                        &a.ty.pos,
                        format!(
                            "length target `{}` names nothing: expected a field here ({}), `parent`, `syscall` or a struct's name",
                            path.join(":"),
                            names.join(", ")
                        ),
                    );
                };
                let mut t = &sibling.ty;
                for name in &path[1..] {
                    // Through pointers and conditional fields to the struct holding `name`.
                    loop {
                        match &t.kind {
                            TypeKind::Ptr { elem, .. } => t = elem,
                            TypeKind::Struct(id) if self.structs[*id].conditional => {
                                t = &self.structs[*id].fields[0].ty;
                            }
                            _ => break,
                        }
                    }
                    let TypeKind::Struct(id) = &t.kind else {
                        break;
                    };
                    let st = &self.structs[*id];
                    // A union's options, or a struct still being compiled: not checked here.
                    if st.is_union || st.fields.is_empty() {
                        break;
                    }
                    match st.fields.iter().find(|x| &x.name == name) {
                        Some(x) => t = &x.ty,
                        None => {
                            return err(
                                &a.ty.pos,
                                format!(
                                    "length target `{}`: `{}` has no field `{name}`",
                                    path.join(":"),
                                    st.name
                                ),
                            )
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The paths of the lengths a field's type holds (through pointers, arrays and the stand-in
    /// union of a conditional field).
    fn lens_in(&self, t: &Type, out: &mut Vec<Vec<String>>) {
        match &t.kind {
            TypeKind::Len { path, .. } => out.push(path.clone()),
            TypeKind::Ptr { elem, .. } | TypeKind::Array { elem, .. } => self.lens_in(elem, out),
            TypeKind::Struct(id) if self.structs[*id].conditional => {
                if let Some(f) = self.structs[*id].fields.first() {
                    self.lens_in(&f.ty, out);
                }
            }
            _ => {}
        }
    }

    /// The union standing for conditional field `key` of type `ty`.
    fn conditional_field(&mut self, key: &str, ty: Type, cond: Cond) -> StructId {
        if let Some(id) = self.struct_ids.get(key) {
            return *id;
        }
        let not = Cond::Binary(BinOp::Eq, Box::new(cond.clone()), Box::new(Cond::Const(0)));
        let id = self.structs.len();
        self.structs.push(StructDesc {
            name: key.to_string(),
            is_union: true,
            fields: vec![
                FieldDesc {
                    name: "value".into(),
                    ty,
                    dir: None,
                    cond: Some(cond),
                },
                FieldDesc {
                    name: "void".into(),
                    ty: Type::new(TypeKind::Void),
                    dir: None,
                    cond: Some(not),
                },
            ],
            packed: false,
            align: None,
            size: None,
            varlen: true,
            conditional: true,
        });
        self.struct_ids.insert(key.to_string(), id);
        id
    }

    /// A field condition: `value[path]`, constants and `||`, `==`, `!=`, `&`.
    fn cond(&self, a: &TypeArg) -> R<Cond> {
        Ok(match a {
            TypeArg::Binary(op, x, y) => {
                Cond::Binary(*op, Box::new(self.cond(x)?), Box::new(self.cond(y)?))
            }
            TypeArg::Type(t) if t.name == "value" => {
                let [path] = t.args.as_slice() else {
                    return err(&t.pos, "expected value[path:to:field]");
                };
                let mut out = Vec::new();
                if !flatten(path, &mut out) {
                    return err(path.pos(), "expected a field path like parent:flags");
                }
                Cond::Value(out)
            }
            other => Cond::Const(self.value(other)?),
        })
    }

    fn struct_def(&mut self, key: &str, s: &StructDef) -> R<StructId> {
        if let Some(id) = self.struct_ids.get(key) {
            return Ok(*id);
        }
        let id = self.structs.len();
        self.structs.push(StructDesc {
            name: key.to_string(),
            is_union: s.is_union,
            fields: Vec::new(),
            packed: false,
            align: None,
            size: None,
            varlen: false,
            conditional: false,
        });
        self.struct_ids.insert(key.to_string(), id);
        let result = (|| {
            let mut fields = Vec::new();
            for f in &s.fields {
                let bits = f.bits.as_ref().map(|b| self.value(b)).transpose()?;
                let mut ty = self.ty_with_bits(&f.ty, bits)?;
                let mut dir = None;
                let mut cond = None;
                for a in &f.attrs {
                    dir = Some(match a.name.as_str() {
                        "in" => Dir::In,
                        "out" => Dir::Out,
                        "inout" => Dir::InOut,
                        "if" => {
                            let [c] = a.args.as_slice() else {
                                return err(&a.pos, "expected one condition: if[expression]");
                            };
                            cond = Some(self.cond(c)?);
                            continue;
                        }
                        "out_overlay" => {
                            return err(&a.pos, "`out_overlay` is not supported by kfuzz yet")
                        }
                        other => return err(&a.pos, format!("unknown field attribute `{other}`")),
                    });
                }
                if let (Some(c), false) = (&cond, s.is_union) {
                    if ty.bitfield.is_some() {
                        return err(&f.pos, "a bitfield cannot be conditional");
                    }
                    // A conditional struct field is a union of the value (while the condition
                    // holds) and nothing, as syzkaller's programs write it (`@value=…`/`@void`).
                    ty = Type::new(TypeKind::Struct(self.conditional_field(
                        &format!("{key}.{}", f.name),
                        ty,
                        c.clone(),
                    )));
                    cond = None;
                }
                fields.push(FieldDesc {
                    name: f.name.clone(),
                    ty,
                    dir,
                    cond,
                });
            }
            place_bitfields(&mut fields);
            let (mut packed, mut align, mut size, mut varlen) = (false, None, None, false);
            for a in &s.attrs {
                match (a.name.as_str(), a.args.first()) {
                    ("packed", None) => packed = true,
                    ("varlen", None) => varlen = true,
                    ("align", Some(v)) => align = Some(self.value(v)?),
                    ("size", Some(v)) => size = Some(self.value(v)?),
                    (other, _) => {
                        return err(&a.pos, format!("unknown struct attribute `{other}`"))
                    }
                }
            }
            if s.fields.is_empty() {
                return err(&s.pos, format!("`{}` has no fields", s.name));
            }
            self.check_lens(&fields, &s.fields)?;
            Ok((fields, packed, align, size, varlen))
        })();
        match result {
            Ok((fields, packed, align, size, varlen)) => {
                let st = &mut self.structs[id];
                st.fields = fields;
                st.packed = packed;
                st.align = align;
                st.size = size;
                st.varlen = varlen;
                Ok(id)
            }
            Err(e) => {
                // Leave the placeholder unreachable by name so the next user sees the same error.
                self.struct_ids.remove(key);
                Err(e)
            }
        }
    }
}

/// Gives consecutive bitfields their offsets in the units they share: a bitfield starts a new
/// unit when its size differs from the unit's or it does not fit in what is left; the last
/// bitfield of a unit is the one that takes up its bytes.
fn place_bitfields(fields: &mut [FieldDesc]) {
    let mut used: Option<(u8, u8)> = None; // (unit bits, bits used)
    for i in 0..fields.len() {
        let (len, unit) = match (fields[i].ty.bitfield, int_kind_size(&fields[i].ty.kind)) {
            (Some(b), Some(s)) => (b.len, s * 8),
            _ => {
                used = None;
                continue;
            }
        };
        let offset = match used {
            Some((u, n)) if u == unit && n + len <= u => n,
            _ => 0,
        };
        if offset > 0 {
            // The previous bitfield shares this unit: it no longer ends it.
            if let Some(prev) = fields[i - 1].ty.bitfield.as_mut() {
                prev.last = false;
            }
        }
        if let Some(b) = fields[i].ty.bitfield.as_mut() {
            b.offset = offset;
            b.last = true;
        }
        used = Some((unit, offset + len));
    }
}

/// The size of an integer kind that may be a bitfield (resources never are).
fn int_kind_size(kind: &TypeKind) -> Option<u8> {
    match kind {
        TypeKind::Int { size, .. }
        | TypeKind::Const { size, .. }
        | TypeKind::Flags { size, .. }
        | TypeKind::Len { size, .. }
        | TypeKind::Proc { size, .. } => Some(*size),
        _ => None,
    }
}

/// `a:b:c` as the names `[a, b, c]` (a `len`/`offsetof`/`value` path); false when a part is
/// not a plain name.
fn flatten(a: &TypeArg, out: &mut Vec<String>) -> bool {
    match a {
        TypeArg::Type(t) if t.args.is_empty() => {
            out.push(t.name.clone());
            true
        }
        TypeArg::Colon(x, y) => flatten(x, out) && flatten(y, out),
        _ => false,
    }
}

/// A string literal's bytes: the lexer keeps a `hex` blob's bytes as chars U+0000..U+00FF.
fn str_bytes(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn arg_key(a: &TypeArg) -> String {
    match a {
        TypeArg::Type(t) if t.args.is_empty() => t.name.clone(),
        TypeArg::Type(t) => format!(
            "{}[{}]",
            t.name,
            t.args.iter().map(arg_key).collect::<Vec<_>>().join(",")
        ),
        TypeArg::Int(i, _) => i.to_string(),
        TypeArg::Str(s, _) => format!("{s:?}"),
        TypeArg::Colon(x, y) => format!("{}:{}", arg_key(x), arg_key(y)),
        TypeArg::Binary(op, x, y) => format!("({}{}{})", arg_key(x), op.symbol(), arg_key(y)),
    }
}
