//! Checks that a program fits its target: every value has the shape of its type, every variable
//! is defined before it is used. Property tests and the corpus loader rely on it.

use std::collections::HashSet;

use crate::prog::*;
use crate::target::Target;
use crate::types::*;

pub fn validate(target: &Target, p: &Prog) -> Result<(), String> {
    let mut defined: HashSet<VarId> = HashSet::new();
    for (ci, c) in p.calls.iter().enumerate() {
        let Some(meta) = target.syscalls.get(c.meta) else {
            return Err(format!("call {ci}: unknown syscall id {}", c.meta));
        };
        if c.args.len() != meta.args.len() {
            return Err(format!(
                "call {ci} ({}): {} args, want {}",
                meta.name,
                c.args.len(),
                meta.args.len()
            ));
        }
        for v in used_vars(c) {
            if !defined.contains(&v) {
                return Err(format!(
                    "call {ci} ({}): variable {v} used before it is defined",
                    meta.name
                ));
            }
        }
        for (f, a) in meta.args.iter().zip(&c.args) {
            check(target, &f.ty, a)
                .map_err(|e| format!("call {ci} ({}) arg {}: {e}", meta.name, f.name))?;
        }
        for (v, _) in defined_vars(target, c) {
            if !defined.insert(v) {
                return Err(format!(
                    "call {ci} ({}): variable {v} defined twice",
                    meta.name
                ));
            }
        }
    }
    Ok(())
}

fn check(target: &Target, t: &Type, a: &Arg) -> Result<(), String> {
    let ok = match (&t.kind, a) {
        (
            TypeKind::Int { .. }
            | TypeKind::Const { .. }
            | TypeKind::Flags { .. }
            | TypeKind::Len { .. }
            | TypeKind::Proc { .. }
            | TypeKind::Void,
            Arg::Int(_),
        ) => true,
        (TypeKind::Resource(_), Arg::Res(_)) => true,
        (TypeKind::Ptr { elem, .. }, Arg::Ptr { pointee, .. }) => {
            if let Some(p) = pointee {
                check(target, elem, p)?;
            }
            true
        }
        (TypeKind::Vma { .. }, Arg::Vma { .. }) => true,
        (TypeKind::Buffer { .. }, Arg::Data(_)) => true,
        (TypeKind::Array { elem, len }, Arg::Group(items)) => {
            if let ArrayLen::Range(lo, hi) = len {
                if (items.len() as u64) < *lo || (items.len() as u64) > *hi {
                    return Err(format!("array of {} items, want {lo}..={hi}", items.len()));
                }
            }
            for i in items {
                check(target, elem, i)?;
            }
            true
        }
        (TypeKind::Struct(id), Arg::Group(items)) if !target.structs[*id].is_union => {
            let st = &target.structs[*id];
            if items.len() != st.fields.len() {
                return Err(format!(
                    "{}: {} fields, want {}",
                    st.name,
                    items.len(),
                    st.fields.len()
                ));
            }
            for (f, i) in st.fields.iter().zip(items) {
                check(target, &f.ty, i)?;
            }
            true
        }
        (TypeKind::Struct(id), Arg::Union { field, arg }) if target.structs[*id].is_union => {
            let st = &target.structs[*id];
            let Some(f) = st.fields.get(*field) else {
                return Err(format!("{}: no option {field}", st.name));
            };
            check(target, &f.ty, arg)?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("value {a:?} does not fit {:?}", t.kind))
    }
}
