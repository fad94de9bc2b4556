//! Conditional fields and union options (`(if[value[flags] & F != 0])`): after a call is
//! generated or changed, every union whose chosen option's condition no longer holds is
//! switched to the first option whose condition does. Paths resolve as syzkaller's do:
//! `parent` is the field's container (then its container), a struct's name is the nearest
//! enclosing struct of that name, `syscall` is the call's arguments, other names are fields.

use crate::prog::{Arg, Call};
use crate::target::Target;
use crate::types::*;

/// One enclosing struct (or union, or the call's arguments) on the way down.
struct Frame<'a> {
    name: &'a str,
    fields: &'a [FieldDesc],
    args: &'a [Arg],
}

/// Where an argument sits in the call: the index of the argument, then the steps down.
#[derive(Debug, Clone, Copy)]
enum Step {
    Item(usize),
    Pointee,
    Option,
}

/// Re-chooses the options of `call`'s unions whose conditions do not hold. Returns whether
/// anything changed.
pub fn fix_conditions(target: &Target, call: &mut Call) -> bool {
    let mut changed = false;
    // Switching one union can change what another's condition reads: a few rounds at most.
    for _ in 0..4 {
        let meta = &target.syscalls[call.meta];
        let mut fixes = Vec::new();
        let mut frames = vec![Frame {
            name: "syscall",
            fields: &meta.args,
            args: &call.args,
        }];
        for (i, (f, a)) in meta.args.iter().zip(&call.args).enumerate() {
            let mut path = vec![Step::Item(i)];
            collect(target, &f.ty, a, &mut frames, &mut path, &mut fixes);
        }
        if fixes.is_empty() {
            break;
        }
        for (path, option, ty) in fixes {
            if let Some(arg) = at_path(&mut call.args, &path) {
                *arg = Arg::Union {
                    field: option,
                    arg: Box::new(crate::gen::default_arg(target, &ty)),
                };
                changed = true;
            }
        }
    }
    changed
}

fn collect<'a>(
    target: &'a Target,
    t: &'a Type,
    a: &'a Arg,
    frames: &mut Vec<Frame<'a>>,
    path: &mut Vec<Step>,
    fixes: &mut Vec<(Vec<Step>, usize, Type)>,
) {
    match (&t.kind, a) {
        (
            TypeKind::Ptr { elem, .. },
            Arg::Ptr {
                pointee: Some(p), ..
            },
        ) => {
            path.push(Step::Pointee);
            collect(target, elem, p, frames, path, fixes);
            path.pop();
        }
        (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Item(i));
                collect(target, elem, item, frames, path, fixes);
                path.pop();
            }
        }
        (TypeKind::Struct(id), Arg::Group(items)) => {
            let st = &target.structs[*id];
            frames.push(Frame {
                name: &st.name,
                fields: &st.fields,
                args: items,
            });
            for (i, (f, item)) in st.fields.iter().zip(items).enumerate() {
                path.push(Step::Item(i));
                collect(target, &f.ty, item, frames, path, fixes);
                path.pop();
            }
            frames.pop();
        }
        (TypeKind::Struct(id), Arg::Union { field, arg }) => {
            let st = &target.structs[*id];
            let Some(chosen) = st.fields.get(*field) else {
                return;
            };
            // A user union's conditions see the union as `parent`; a conditional field's
            // see the struct the field is in.
            let pushed = !st.conditional;
            if pushed {
                frames.push(Frame {
                    name: &st.name,
                    fields: std::slice::from_ref(chosen),
                    args: std::slice::from_ref(arg.as_ref()),
                });
            }
            let holds = |f: &FieldDesc, frames: &[Frame]| {
                f.cond
                    .as_ref()
                    .is_none_or(|c| eval(target, c, frames).unwrap_or(0) != 0)
            };
            if holds(chosen, frames) {
                path.push(Step::Option);
                collect(target, &chosen.ty, arg, frames, path, fixes);
                path.pop();
            } else if let Some(k) = st.fields.iter().position(|f| holds(f, frames)) {
                fixes.push((path.clone(), k, st.fields[k].ty.clone()));
            }
            if pushed {
                frames.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(args: &'a mut [Arg], path: &[Step]) -> Option<&'a mut Arg> {
    let (Step::Item(first), rest) = path.split_first()? else {
        return None;
    };
    let mut cur = args.get_mut(*first)?;
    for step in rest {
        cur = match (step, cur) {
            (Step::Item(i), Arg::Group(items)) => items.get_mut(*i)?,
            (
                Step::Pointee,
                Arg::Ptr {
                    pointee: Some(p), ..
                },
            ) => p.as_mut(),
            (Step::Option, Arg::Union { arg, .. }) => arg.as_mut(),
            _ => return None,
        };
    }
    Some(cur)
}

fn eval(target: &Target, c: &Cond, frames: &[Frame]) -> Option<u64> {
    Some(match c {
        Cond::Const(v) => *v,
        Cond::Binary(op, a, b) => op.apply(eval(target, a, frames)?, eval(target, b, frames)?),
        Cond::Value(path) => lookup(target, path, frames)?,
    })
}

/// The integer value at `path`, seen from the innermost frame.
fn lookup(target: &Target, path: &[String], frames: &[Frame]) -> Option<u64> {
    let mut idx = frames.len().checked_sub(1)?;
    let (first, mut rest) = path.split_first()?;
    match first.as_str() {
        "parent" => {}
        "syscall" => idx = 0,
        name => {
            let named = frames.iter().rposition(|f| {
                f.name == name
                    || f.name
                        .strip_prefix(name)
                        .is_some_and(|r| r.starts_with('['))
            });
            match named {
                Some(i) if !frames[idx].fields.iter().any(|f| f.name == name) => idx = i,
                _ => rest = path,
            }
        }
    }
    while let Some((p, r)) = rest.split_first() {
        if p != "parent" {
            break;
        }
        idx = idx.checked_sub(1)?;
        rest = r;
    }
    let frame = &frames[idx];
    let (mut fields, mut args) = (frame.fields, frame.args);
    let mut value = None;
    for (k, name) in rest.iter().enumerate() {
        let j = fields.iter().position(|f| &f.name == name)?;
        let (ty, mut arg) = (&fields[j].ty, args.get(j)?);
        let mut ty = ty;
        // Through a conditional field's union to its value.
        while let (TypeKind::Struct(id), Arg::Union { field, arg: inner }) = (&ty.kind, arg) {
            ty = &target.structs[*id].fields.get(*field)?.ty;
            arg = inner;
        }
        if k + 1 == rest.len() {
            value = match arg {
                Arg::Int(v) => Some(*v),
                Arg::Res(r) => Some(r.val),
                _ => None,
            };
        } else if let (TypeKind::Struct(id), Arg::Group(items)) = (&ty.kind, arg) {
            fields = &target.structs[*id].fields;
            args = items;
        } else {
            return None;
        }
    }
    value
}
