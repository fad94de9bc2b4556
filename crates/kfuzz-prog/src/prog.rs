//! The program model: calls with typed argument values, pointers into the data area, and
//! resources flowing from one call's result to later arguments.

use crate::target::Target;
use crate::types::*;

/// Where pointer arguments point: a fixed mapping the executor creates in every program.
pub use kfuzz_wire::{data_room, in_data, DATA_AREAS, DATA_BASE, DATA_SIZE};
pub const PAGE: u64 = 4096;

/// How deeply argument values may nest (each pointer, struct, array and union is a level; a
/// call's argument is level 1). Program text nesting deeper is refused, generation never goes
/// deeper, and descriptions whose values must go deeper disable their calls: every walk over a
/// program stays within a small, fixed stack.
pub const MAX_DEPTH: usize = 128;

/// The most data a program's pointers may point to, all pointees together: the half of the data
/// area where generation places them (the other half holds `vma` ranges). Program text asking
/// for more is refused; calls whose smallest value needs more are disabled.
pub const MAX_DATA: u64 = DATA_SIZE / 2;

/// A resource variable: defined by a call's return or an output field, used by later args.
pub type VarId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResArg {
    /// This place defines a variable (a call's output resource).
    pub def: Option<VarId>,
    /// This place uses an earlier variable.
    pub src: Option<VarId>,
    /// The value used when there is no variable, or when its call failed.
    pub val: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Ints, consts, flags, lens, procs.
    Int(u64),
    Res(ResArg),
    /// A pointer: `addr` 0 and no pointee is a null pointer.
    Ptr {
        addr: u64,
        pointee: Option<Box<Arg>>,
    },
    /// A range of pages; `size` 0 is a null pointer.
    Vma {
        addr: u64,
        size: u64,
    },
    /// Bytes of a buffer; for output buffers only the length matters.
    Data(Vec<u8>),
    /// A struct's fields or an array's elements.
    Group(Vec<Arg>),
    Union {
        field: usize,
        arg: Box<Arg>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub meta: SyscallId,
    pub args: Vec<Arg>,
    /// The variable holding the return value, for calls returning a resource.
    pub ret: Option<VarId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prog {
    pub calls: Vec<Call>,
    /// The next free variable id.
    pub next_var: VarId,
}

impl Prog {
    pub fn new_var(&mut self) -> VarId {
        let v = self.next_var;
        self.next_var += 1;
        v
    }
}

/// Visits every argument with its type, depth first, in order.
pub fn visit_args<'a>(target: &'a Target, call: &'a Call, f: &mut dyn FnMut(&'a Type, &'a Arg)) {
    fn go<'a>(target: &'a Target, t: &'a Type, a: &'a Arg, f: &mut dyn FnMut(&'a Type, &'a Arg)) {
        f(t, a);
        match (&t.kind, a) {
            (
                TypeKind::Ptr { elem, .. },
                Arg::Ptr {
                    pointee: Some(p), ..
                },
            ) => go(target, elem, p, f),
            (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
                for i in items {
                    go(target, elem, i, f);
                }
            }
            (TypeKind::Struct(id), Arg::Group(items)) => {
                for (fd, i) in target.structs[*id].fields.iter().zip(items) {
                    go(target, &fd.ty, i, f);
                }
            }
            (TypeKind::Struct(id), Arg::Union { field, arg }) => {
                if let Some(fd) = target.structs[*id].fields.get(*field) {
                    go(target, &fd.ty, arg, f);
                }
            }
            _ => {}
        }
    }
    let meta = &target.syscalls[call.meta];
    for (fd, a) in meta.args.iter().zip(&call.args) {
        go(target, &fd.ty, a, f);
    }
}

/// The same, mutably (types are still shared).
pub fn visit_args_mut(target: &Target, call: &mut Call, f: &mut dyn FnMut(&Type, &mut Arg)) {
    fn go(target: &Target, t: &Type, a: &mut Arg, f: &mut dyn FnMut(&Type, &mut Arg)) {
        f(t, a);
        match (&t.kind, a) {
            (
                TypeKind::Ptr { elem, .. },
                Arg::Ptr {
                    pointee: Some(p), ..
                },
            ) => go(target, elem, p, f),
            (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
                for i in items {
                    go(target, elem, i, f);
                }
            }
            (TypeKind::Struct(id), Arg::Group(items)) => {
                for (fd, i) in target.structs[*id].fields.iter().zip(items.iter_mut()) {
                    go(target, &fd.ty, i, f);
                }
            }
            (TypeKind::Struct(id), Arg::Union { field, arg }) => {
                if let Some(fd) = target.structs[*id].fields.get(*field) {
                    go(target, &fd.ty, arg, f);
                }
            }
            _ => {}
        }
    }
    let meta = &target.syscalls[call.meta];
    for (fd, a) in meta.args.iter().zip(call.args.iter_mut()) {
        go(target, &fd.ty, a, f);
    }
}

/// The argument at `path` (argument index, then child indices) with its type.
pub fn arg_at_mut<'a>(
    target: &'a Target,
    call: &'a mut Call,
    path: &[usize],
) -> Option<(&'a Type, &'a mut Arg)> {
    fn down<'a>(
        target: &'a Target,
        t: &'a Type,
        a: &'a mut Arg,
        path: &[usize],
    ) -> Option<(&'a Type, &'a mut Arg)> {
        let Some((&i, rest)) = path.split_first() else {
            return Some((t, a));
        };
        match (&t.kind, a) {
            (
                TypeKind::Ptr { elem, .. },
                Arg::Ptr {
                    pointee: Some(x), ..
                },
            ) => down(target, elem, x, rest),
            (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
                down(target, elem, items.get_mut(i)?, rest)
            }
            (TypeKind::Struct(id), Arg::Group(items)) => down(
                target,
                &target.structs[*id].fields.get(i)?.ty,
                items.get_mut(i)?,
                rest,
            ),
            (TypeKind::Struct(id), Arg::Union { field, arg }) => down(
                target,
                &target.structs[*id].fields.get(*field)?.ty,
                arg,
                rest,
            ),
            _ => None,
        }
    }
    let (&first, rest) = path.split_first()?;
    let meta = target.syscalls.get(call.meta)?;
    down(
        target,
        &meta.args.get(first)?.ty,
        call.args.get_mut(first)?,
        rest,
    )
}

/// Variables a call defines (its return and output resources), with their resource kind.
pub fn defined_vars(target: &Target, call: &Call) -> Vec<(VarId, ResourceId)> {
    let mut out = Vec::new();
    if let (Some(v), Some(r)) = (call.ret, target.syscalls[call.meta].ret) {
        out.push((v, r));
    }
    visit_args(target, call, &mut |t, a| {
        if let (TypeKind::Resource(r), Arg::Res(ResArg { def: Some(v), .. })) = (&t.kind, a) {
            out.push((*v, *r));
        }
    });
    out
}

/// Calls `f` on every resource argument of a call, at any depth (the type-free walk used to
/// renumber, drop or strip variables).
pub fn for_each_res_mut(call: &mut Call, f: &mut dyn FnMut(&mut ResArg)) {
    fn go(a: &mut Arg, f: &mut dyn FnMut(&mut ResArg)) {
        match a {
            Arg::Res(r) => f(r),
            Arg::Ptr {
                pointee: Some(x), ..
            } => go(x, f),
            Arg::Group(items) => items.iter_mut().for_each(|i| go(i, f)),
            Arg::Union { arg, .. } => go(arg, f),
            _ => {}
        }
    }
    call.args.iter_mut().for_each(|a| go(a, f));
}

/// Variables a call uses.
pub fn used_vars(call: &Call) -> Vec<VarId> {
    fn go(a: &Arg, out: &mut Vec<VarId>) {
        match a {
            Arg::Res(ResArg { src: Some(v), .. }) => out.push(*v),
            Arg::Ptr {
                pointee: Some(p), ..
            } => go(p, out),
            Arg::Group(items) => items.iter().for_each(|i| go(i, out)),
            Arg::Union { arg, .. } => go(arg, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    call.args.iter().for_each(|a| go(a, &mut out));
    out
}

/// Size in bytes of an argument value laid out in memory (struct padding included).
pub fn arg_size(target: &Target, t: &Type, a: &Arg) -> u64 {
    layout(target, t, a).0
}

/// Size and alignment of a value of type `t`.
pub fn layout(target: &Target, t: &Type, a: &Arg) -> (u64, u64) {
    if let Some(s) = int_size(&t.kind, &target.resources) {
        return match t.bitfield {
            Some(b) if !b.last => (0, s as u64),
            _ => (s as u64, s as u64),
        };
    }
    match (&t.kind, a) {
        (TypeKind::Buffer { .. }, Arg::Data(d)) => (d.len() as u64, 1),
        (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
            let mut size: u64 = 0;
            let mut align: u64 = 1;
            for i in items {
                let (s, al) = layout(target, elem, i);
                align = align.max(al);
                size = size.next_multiple_of(al) + s;
            }
            (size, align)
        }
        (TypeKind::Struct(id), _) => {
            let st = &target.structs[*id];
            let (mut size, mut align): (u64, u64) = (0, 1);
            match a {
                Arg::Union { field, arg } if st.varlen => {
                    // As big and as aligned as the chosen option, nothing more.
                    if let Some(f) = st.fields.get(*field) {
                        (size, align) = layout(target, &f.ty, arg);
                    }
                }
                Arg::Union { field, arg } => {
                    for (i, f) in st.fields.iter().enumerate() {
                        let (s, al) = if i == *field {
                            layout(target, &f.ty, arg)
                        } else {
                            default_layout(target, &f.ty)
                        };
                        align = align.max(al);
                        size = size.max(s);
                    }
                }
                Arg::Group(items) => {
                    for (f, i) in st.fields.iter().zip(items) {
                        let (s, al) = layout(target, &f.ty, i);
                        let al = if st.packed { 1 } else { al };
                        align = align.max(al);
                        size = size.next_multiple_of(al) + s;
                    }
                }
                _ => {}
            }
            if st.packed {
                align = 1;
            }
            if let Some(al) = st.align {
                align = align.max(al.max(1));
            }
            size = size.next_multiple_of(align);
            if let Some(s) = st.size {
                size = size.max(s);
            }
            (size, align)
        }
        _ => (0, 1),
    }
}

/// Bytes of memory a call's pointers point to: every pointee's size, nested pointees included.
pub fn call_data_size(target: &Target, call: &Call) -> u64 {
    let mut total: u64 = 0;
    visit_args(target, call, &mut |t, a| {
        if let (
            TypeKind::Ptr { elem, .. },
            Arg::Ptr {
                pointee: Some(p), ..
            },
        ) = (&t.kind, a)
        {
            total = total.saturating_add(arg_size(target, elem, p));
        }
    });
    total
}

/// The same for a whole program.
pub fn data_size(target: &Target, p: &Prog) -> u64 {
    p.calls
        .iter()
        .map(|c| call_data_size(target, c))
        .fold(0, u64::saturating_add)
}

/// How deeply an argument value nests: 1 for a scalar, one more per pointer, struct, array or
/// union around it.
pub fn arg_depth(a: &Arg) -> usize {
    // A loop over levels rather than recursion: the value may come from anywhere.
    let mut level: Vec<&Arg> = vec![a];
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        for a in level {
            match a {
                Arg::Ptr {
                    pointee: Some(p), ..
                } => next.push(&**p),
                Arg::Group(items) => next.extend(items.iter()),
                Arg::Union { arg, .. } => next.push(&**arg),
                _ => {}
            }
        }
        level = next;
    }
    depth
}

/// Layout of a type's default value (used for the options of a union not chosen).
fn default_layout(target: &Target, t: &Type) -> (u64, u64) {
    let a = crate::gen::default_arg(target, t);
    layout(target, t, &a)
}

/// `a`'s calls then `b`'s, `b`'s variables renumbered after `a`'s (a reproducer made of
/// several programs from a log).
pub fn concat(a: &Prog, b: &Prog) -> Prog {
    let mut out = a.clone();
    let shift = a.next_var;
    for c in &b.calls {
        let mut c = c.clone();
        for_each_res_mut(&mut c, &mut |r| {
            r.def = r.def.map(|v| v + shift);
            r.src = r.src.map(|v| v + shift);
        });
        c.ret = c.ret.map(|v| v + shift);
        out.calls.push(c);
    }
    out.next_var = shift + b.next_var;
    out
}
