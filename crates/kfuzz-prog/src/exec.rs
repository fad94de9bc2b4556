//! Encoding a program for the executor: syscall numbers, argument values, the memory writes
//! that build pointer arguments, and where output resources are read back. Deterministic: the
//! same program always encodes to the same bytes.

use std::collections::{HashMap, HashSet};

use kfuzz_wire::{CopyValue, Copyin, Copyout, ExecArg, ExecCall, ExecProg};

use crate::prog::*;
use crate::target::Target;
use crate::types::*;

pub fn encode(target: &Target, p: &Prog) -> ExecProg {
    // Variables are renumbered densely in order of definition, so that two programs with the
    // same text encode the same whatever their internal ids.
    let used: HashSet<VarId> = p.calls.iter().flat_map(used_vars).collect();
    let mut dense: HashMap<VarId, VarId> = HashMap::new();
    for c in &p.calls {
        for (v, _) in defined_vars(target, c) {
            if used.contains(&v) {
                let n = dense.len() as VarId;
                dense.insert(v, n);
            }
        }
    }
    let mut p = p.clone();
    for c in &mut p.calls {
        for_each_res_mut(c, &mut |r| {
            r.def = r.def.and_then(|v| dense.get(&v).copied());
            r.src = r.src.and_then(|v| dense.get(&v).copied());
        });
        c.ret = c.ret.and_then(|v| dense.get(&v).copied());
    }
    let used: HashSet<VarId> = p.calls.iter().flat_map(used_vars).collect();
    let calls = p
        .calls
        .iter()
        .map(|c| {
            let meta = &target.syscalls[c.meta];
            let mut copyin = Vec::new();
            let mut copyout = Vec::new();
            let args = meta
                .args
                .iter()
                .zip(&c.args)
                .map(|(f, a)| scalar(target, &f.ty, a, &mut copyin, &mut copyout, &used))
                .collect();
            ExecCall {
                nr: meta.nr,
                copyin,
                args,
                copyout,
                ret_var: c.ret.filter(|v| used.contains(v)),
            }
        })
        .collect();
    ExecProg { calls }
}

fn low_bits(n: u8) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn proc_value(t: &Type, v: u64) -> u64 {
    match t.kind {
        TypeKind::Proc { start, .. } => start.wrapping_add(v),
        _ => v,
    }
}

/// The register value of a top-level argument; pointees become copyins.
fn scalar(
    target: &Target,
    t: &Type,
    a: &Arg,
    copyin: &mut Vec<Copyin>,
    copyout: &mut Vec<Copyout>,
    used: &HashSet<VarId>,
) -> ExecArg {
    match a {
        Arg::Int(v) => ExecArg::Const(proc_value(t, *v)),
        Arg::Res(r) => match r.src {
            Some(var) => ExecArg::Var {
                var,
                default: r.val,
            },
            None => ExecArg::Const(r.val),
        },
        Arg::Ptr { addr, pointee } => {
            if let (Some(p), TypeKind::Ptr { dir, elem }) = (pointee, &t.kind) {
                write_mem(target, elem, *dir, p, *addr, copyin, copyout, used);
            }
            ExecArg::Const(*addr)
        }
        Arg::Vma { addr, .. } => ExecArg::Const(*addr),
        _ => ExecArg::Const(0),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_mem(
    target: &Target,
    t: &Type,
    dir: Dir,
    a: &Arg,
    addr: u64,
    copyin: &mut Vec<Copyin>,
    copyout: &mut Vec<Copyout>,
    used: &HashSet<VarId>,
) {
    let size = int_size(&t.kind, &target.resources);
    let be = matches!(
        t.kind,
        TypeKind::Int { be: true, .. } | TypeKind::Const { be: true, .. }
    );
    match a {
        Arg::Int(v) => {
            if dir.reads() {
                copyin.push(Copyin {
                    addr,
                    value: CopyValue::Int {
                        size: size.unwrap_or(8),
                        big_endian: be,
                        val: proc_value(t, *v),
                    },
                });
            }
        }
        Arg::Res(r) => {
            let size = size.unwrap_or(4);
            if dir.reads() {
                let value = match r.src {
                    Some(var) => CopyValue::Var {
                        size,
                        var,
                        default: r.val,
                    },
                    None => CopyValue::Int {
                        size,
                        big_endian: false,
                        val: r.val,
                    },
                };
                copyin.push(Copyin { addr, value });
            }
            if let Some(var) = r.def.filter(|v| used.contains(v)) {
                if dir.writes() {
                    copyout.push(Copyout { addr, size, var });
                }
            }
        }
        Arg::Ptr { .. } | Arg::Vma { .. } => {
            let v = scalar(target, t, a, copyin, copyout, used);
            let value = match v {
                ExecArg::Const(val) => CopyValue::Int {
                    size: 8,
                    big_endian: false,
                    val,
                },
                ExecArg::Var { var, default } => CopyValue::Var {
                    size: 8,
                    var,
                    default,
                },
            };
            copyin.push(Copyin { addr, value });
        }
        Arg::Data(d) => {
            let out = matches!(t.kind, TypeKind::Buffer { dir: Dir::Out, .. }) || dir == Dir::Out;
            if !out && !d.is_empty() {
                copyin.push(Copyin {
                    addr,
                    value: CopyValue::Bytes(d.clone()),
                });
            }
        }
        Arg::Group(items) => match &t.kind {
            TypeKind::Array { elem, .. } => {
                let mut off = 0;
                for i in items {
                    let (s, al) = layout(target, elem, i);
                    off = u64::next_multiple_of(off, al);
                    write_mem(target, elem, dir, i, addr + off, copyin, copyout, used);
                    off += s;
                }
            }
            TypeKind::Struct(id) => {
                let st = &target.structs[*id];
                let mut off = 0;
                // The unit being filled by consecutive bitfields.
                let mut unit: u64 = 0;
                for (f, i) in st.fields.iter().zip(items) {
                    let (s, al) = layout(target, &f.ty, i);
                    if !st.packed {
                        off = u64::next_multiple_of(off, al);
                    }
                    if let (Some(b), Arg::Int(v)) = (f.ty.bitfield, i) {
                        let bits = proc_value(&f.ty, *v) & low_bits(b.len);
                        unit |= bits.checked_shl(u32::from(b.offset)).unwrap_or(0);
                        if b.last {
                            if f.dir.unwrap_or(dir).reads() {
                                copyin.push(Copyin {
                                    addr: addr + off,
                                    value: CopyValue::Int {
                                        size: int_size(&f.ty.kind, &target.resources).unwrap_or(8),
                                        big_endian: false,
                                        val: unit,
                                    },
                                });
                            }
                            unit = 0;
                        }
                        off += s;
                        continue;
                    }
                    write_mem(
                        target,
                        &f.ty,
                        f.dir.unwrap_or(dir),
                        i,
                        addr + off,
                        copyin,
                        copyout,
                        used,
                    );
                    off += s;
                }
            }
            _ => {}
        },
        Arg::Union { field, arg } => {
            if let TypeKind::Struct(id) = &t.kind {
                if let Some(f) = target.structs[*id].fields.get(*field) {
                    write_mem(
                        target,
                        &f.ty,
                        f.dir.unwrap_or(dir),
                        arg,
                        addr,
                        copyin,
                        copyout,
                        used,
                    );
                }
            }
        }
    }
}
