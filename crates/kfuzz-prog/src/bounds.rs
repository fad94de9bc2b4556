//! What the smallest value of each type costs: bytes of data (its own and what its non-optional
//! pointers point to) and levels of nesting by value. Worked out once per target, so that calls
//! whose smallest value cannot exist (a struct holding itself through pointers that are not
//! `opt`, or by value), nests too deep or cannot fit in a program's data are disabled with the
//! reason, and so that generation stays within `MAX_DATA` and `MAX_DEPTH`.
//! Never recursive over structs (only over one type expression, which the compiler bounds): no
//! description can exhaust the stack here.

use crate::prog::{MAX_DATA, MAX_DEPTH};
use crate::target::Target;
use crate::types::*;

/// The smallest value is infinite: the type holds itself with no way out.
pub const INFINITE: u64 = u64::MAX;

/// How deep a struct's values may nest by value: the other half of `MAX_DEPTH` is left for the
/// pointers leading to it.
pub const MAX_VALUE_DEPTH: usize = MAX_DEPTH / 2;

/// Per struct (by `StructId`), the figures generation and the call checks read.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// A lower bound of the bytes a smallest value takes, pointees of non-optional pointers
    /// included (padding left out); `INFINITE` when there is no finite value.
    pub min_data: Vec<u64>,
    /// How deeply the shallowest value nests by value (pointers not followed; a union takes
    /// its shallowest option, an array that may be empty is empty), capped at `MAX_DEPTH + 1`:
    /// a struct that holds itself by value with no way out (no other option, no empty array)
    /// stays at the cap.
    pub depth: Vec<usize>,
}

impl Bounds {
    pub fn compute(structs: &[StructDesc], resources: &[ResourceDesc]) -> Bounds {
        let mut b = Bounds {
            min_data: vec![INFINITE; structs.len()],
            depth: vec![MAX_DEPTH + 1; structs.len()],
        };
        // Smallest values: start from "none known" and lower each struct's figure from its
        // fields' until nothing changes (each round settles at least one more level).
        for _ in 0..=structs.len() {
            let mut changed = false;
            for (id, st) in structs.iter().enumerate() {
                let v = struct_min(st, &b.min_data, resources);
                if v < b.min_data[id] {
                    b.min_data[id] = v;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Shallowest depths, lowered from the cap round by round like the sizes: a cycle by
        // value with no way out never comes down.
        for _ in 0..=structs.len() {
            let mut changed = false;
            for (id, st) in structs.iter().enumerate() {
                let depths = st.fields.iter().map(|f| type_depth(&f.ty, &b.depth));
                let d = if st.is_union {
                    depths.min().unwrap_or(0)
                } else {
                    depths.max().unwrap_or(0)
                };
                let d = (d + 1).min(MAX_DEPTH + 1);
                if d < b.depth[id] {
                    b.depth[id] = d;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        b
    }
}

fn struct_min(st: &StructDesc, table: &[u64], resources: &[ResourceDesc]) -> u64 {
    let fields = st.fields.iter().map(|f| type_min(&f.ty, table, resources));
    let v = if st.is_union {
        fields.min().unwrap_or(0)
    } else {
        fields.fold(0, u64::saturating_add)
    };
    match st.size {
        Some(s) if v != INFINITE => v.max(s),
        _ => v,
    }
}

fn type_min(t: &Type, table: &[u64], resources: &[ResourceDesc]) -> u64 {
    if let Some(size) = int_size(&t.kind, resources) {
        let own = match t.bitfield {
            Some(b) if !b.last => 0,
            _ => u64::from(size),
        };
        return match &t.kind {
            TypeKind::Ptr { elem, .. } if !t.opt => {
                own.saturating_add(type_min(elem, table, resources))
            }
            _ => own,
        };
    }
    match &t.kind {
        TypeKind::Buffer { kind, .. } => match kind {
            BufferKind::Blob { range } => range.map_or(0, |(lo, _)| lo),
            BufferKind::String { values, noz } => {
                let shortest = values.iter().map(|v| v.len() as u64).min().unwrap_or(0);
                shortest + u64::from(!noz)
            }
            BufferKind::Filename { .. } | BufferKind::Compressed => 0,
        },
        TypeKind::Array { elem, len } => match len {
            ArrayLen::Var | ArrayLen::Range(0, _) => 0,
            ArrayLen::Range(lo, _) => lo.saturating_mul(type_min(elem, table, resources)),
        },
        TypeKind::Struct(id) => table.get(*id).copied().unwrap_or(0),
        _ => 0,
    }
}

fn type_depth(t: &Type, table: &[usize]) -> usize {
    match &t.kind {
        TypeKind::Array {
            len: ArrayLen::Var | ArrayLen::Range(0, _),
            ..
        } => 1,
        TypeKind::Array { elem, .. } => 1 + type_depth(elem, table),
        TypeKind::Struct(id) => table.get(*id).copied().unwrap_or(1).max(1),
        _ => 1,
    }
}

/// A lower bound of the bytes the smallest value of `t` takes (`INFINITE`: none is finite).
pub fn min_data(target: &Target, t: &Type) -> u64 {
    type_min(t, &target.bounds.min_data, &target.resources)
}

/// How deeply the shallowest value of `t` nests by value, pointers not followed.
pub fn depth(target: &Target, t: &Type) -> usize {
    type_depth(t, &target.bounds.depth)
}

/// Why a call cannot be generated within the limits, if it cannot: the first struct (reached
/// from its arguments through any pointer) that nests too deep or holds itself by value, a
/// smallest value that is infinite or bigger than `MAX_DATA`.
pub fn unbounded_reason(target: &Target, call: &Syscall) -> Option<String> {
    // Every struct reachable from the arguments, found with a worklist (not recursion).
    let mut seen = vec![false; target.structs.len()];
    let mut work: Vec<StructId> = Vec::new();
    let mut reach = |t: &Type, work: &mut Vec<StructId>| {
        let mut found = Vec::new();
        structs_in(t, &mut found);
        for id in found {
            if seen.get(id) == Some(&false) {
                seen[id] = true;
                work.push(id);
            }
        }
    };
    for a in &call.args {
        reach(&a.ty, &mut work);
    }
    let mut infinite = None;
    while let Some(id) = work.pop() {
        let st = &target.structs[id];
        if target
            .bounds
            .depth
            .get(id)
            .is_some_and(|d| *d > MAX_VALUE_DEPTH)
        {
            return Some(format!(
                "`{}` nests more than {MAX_VALUE_DEPTH} levels deep by value, or holds itself by value (only a pointer may lead back to it)",
                st.name
            ));
        }
        if infinite.is_none() && target.bounds.min_data.get(id) == Some(&INFINITE) {
            infinite = Some(st.name.clone());
        }
        for f in &st.fields {
            reach(&f.ty, &mut work);
        }
    }
    let total = call
        .args
        .iter()
        .map(|a| match &a.ty.kind {
            TypeKind::Ptr { elem, .. } if !a.ty.opt => min_data(target, elem),
            _ => 0,
        })
        .fold(0, u64::saturating_add);
    if total == INFINITE {
        let name = infinite.unwrap_or_else(|| "an argument".into());
        return Some(format!(
            "`{name}` has no finite value: it holds itself through pointers that are not opt"
        ));
    }
    if total > MAX_DATA {
        return Some(format!(
            "its smallest value needs {total} bytes of data, more than the {MAX_DATA} a program may use"
        ));
    }
    None
}

/// The structs a type names directly (through pointers and arrays, not into other structs).
fn structs_in(t: &Type, out: &mut Vec<StructId>) {
    match &t.kind {
        TypeKind::Ptr { elem, .. } | TypeKind::Array { elem, .. } => structs_in(elem, out),
        TypeKind::Struct(id) => out.push(*id),
        _ => {}
    }
}
