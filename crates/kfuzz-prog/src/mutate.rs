//! Mutating programs: insert a call, remove a call, change one argument, splice two programs.

use rand::Rng;

use crate::gen::{self, Builder, ChoiceTable, MAX_CALLS};
use crate::prog::*;
use crate::target::Target;
use crate::types::*;

/// One or more random mutations of `p`; `corpus` supplies programs to splice with.
pub fn mutate(
    target: &Target,
    ct: &ChoiceTable,
    rng: &mut impl Rng,
    p: &Prog,
    corpus: &[Prog],
) -> Prog {
    let mut p = p.clone();
    let mut changed = false;
    for _ in 0..20 {
        changed |= match rng.gen_range(0..100) {
            0..=9 if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                splice(target, rng, &mut p, other)
            }
            0..=29 => insert_call(target, ct, rng, &mut p),
            30..=39 => remove_random_call(target, rng, &mut p),
            _ => mutate_arg(target, ct, rng, &mut p),
        };
        if changed && rng.gen_ratio(2, 3) {
            break;
        }
    }
    if p.calls.is_empty() {
        p = gen::generate(target, ct, rng, 3);
    }
    p
}

pub fn insert_call(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, p: &mut Prog) -> bool {
    if p.calls.len() >= MAX_CALLS {
        return false;
    }
    // Biased towards the end, where the newest resources are.
    let at = if p.calls.is_empty() || rng.gen_ratio(1, 2) {
        p.calls.len()
    } else {
        rng.gen_range(0..=p.calls.len())
    };
    let prev = if at > 0 {
        Some(p.calls[rng.gen_range(0..at)].meta)
    } else {
        None
    };
    let Some(id) = ct.choose(rng, prev) else {
        return false;
    };
    let mut b = Builder::new(target, ct, rng, std::mem::take(p));
    b.insert_call(at, id);
    *p = b.prog;
    p.calls.truncate(MAX_CALLS);
    crate::minimize::drop_dangling(target, p);
    true
}

pub fn remove_random_call(target: &Target, rng: &mut impl Rng, p: &mut Prog) -> bool {
    if p.calls.len() <= 1 {
        return false;
    }
    let i = rng.gen_range(0..p.calls.len());
    crate::minimize::remove_call(target, p, i);
    true
}

/// Prefix of `p` + suffix of `other`, with `other`'s variables renumbered.
pub fn splice(target: &Target, rng: &mut impl Rng, p: &mut Prog, other: &Prog) -> bool {
    if other.calls.is_empty() {
        return false;
    }
    let cut = rng.gen_range(0..=p.calls.len());
    let from = rng.gen_range(0..other.calls.len());
    let base = p.next_var;
    let mut tail: Vec<Call> = other.calls[from..].to_vec();
    for c in &mut tail {
        for_each_res_mut(c, &mut |r| {
            r.def = r.def.map(|v| v + base);
            r.src = r.src.map(|v| v + base);
        });
        c.ret = c.ret.map(|v| v + base);
    }
    p.calls.truncate(cut);
    p.calls.extend(tail);
    p.calls.truncate(MAX_CALLS);
    // Two programs within MAX_DATA may pass it together: the tail gives way.
    while p.calls.len() > 1 && data_size(target, p) > MAX_DATA {
        p.calls.pop();
    }
    p.next_var = base + other.next_var;
    crate::minimize::drop_dangling(target, p);
    true
}

/// Changes one argument somewhere in one call.
pub fn mutate_arg(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, p: &mut Prog) -> bool {
    if p.calls.is_empty() {
        return false;
    }
    let idx = rng.gen_range(0..p.calls.len());
    let paths = crate::minimize::arg_paths(&p.calls[idx]);
    if paths.is_empty() {
        return false;
    }
    let path = paths[rng.gen_range(0..paths.len())].clone();
    // Variables defined before this call, by resource kind.
    let earlier: Vec<(VarId, ResourceId)> = p.calls[..idx]
        .iter()
        .flat_map(|c| defined_vars(target, c))
        .collect();
    let mut prog = std::mem::take(p);
    let original = prog.calls[idx].clone();
    let level = path.len();
    let mut changed = match arg_at_mut(target, &mut prog.calls[idx], &path) {
        Some((ty, arg)) => mutate_value(target, ct, rng, ty, arg, &earlier, level),
        None => false,
    };
    if changed {
        gen::fix_lens(target, &mut prog.calls[idx]);
        // A value grown past the program's data limit, or nesting too deep (an element added
        // to a tree's deepest array), is not kept.
        let too_deep = prog.calls[idx]
            .args
            .iter()
            .any(|a| crate::prog::arg_depth(a) > crate::prog::MAX_DEPTH);
        if too_deep || data_size(target, &prog) > MAX_DATA {
            prog.calls[idx] = original;
            changed = false;
        }
    }
    *p = prog;
    crate::minimize::drop_dangling(target, p);
    changed
}

fn mutate_value(
    target: &Target,
    ct: &ChoiceTable,
    rng: &mut impl Rng,
    t: &Type,
    a: &mut Arg,
    earlier: &[(VarId, ResourceId)],
    level: usize,
) -> bool {
    let before = a.clone();
    match (&t.kind, &mut *a) {
        (
            TypeKind::Int {
                size, range, align, ..
            },
            Arg::Int(v),
        ) => {
            *v = match rng.gen_range(0..4) {
                0 => v.wrapping_add(rng.gen_range(1..8)),
                1 => v.wrapping_sub(rng.gen_range(1..8)),
                2 => *v ^ (1u64 << rng.gen_range(0..(*size as u32 * 8).max(1))),
                _ => gen::rand_int(rng, *size, *range, *align),
            };
            if let Some((lo, hi)) = range {
                if *v < *lo || *v > *hi {
                    *v = gen::rand_int(rng, *size, *range, *align);
                }
            }
            let mask = if *size >= 8 {
                u64::MAX
            } else {
                (1u64 << (size * 8)) - 1
            };
            *v &= mask;
        }
        (
            TypeKind::Flags {
                vals,
                bitmask,
                size,
                ..
            },
            Arg::Int(v),
        ) => {
            *v = if *bitmask && !vals.is_empty() && rng.gen_ratio(1, 2) {
                *v ^ vals[rng.gen_range(0..vals.len())]
            } else {
                gen::rand_flags(rng, vals, *bitmask, *size)
            };
        }
        (TypeKind::Proc { per_proc, .. }, Arg::Int(v)) => *v = rng.gen_range(0..*per_proc),
        (TypeKind::Resource(want), Arg::Res(r)) if r.def.is_none() => {
            let fits: Vec<VarId> = earlier
                .iter()
                .filter(|(_, k)| target.resources[*want].accepts(&target.resources[*k]))
                .map(|(v, _)| *v)
                .collect();
            if !fits.is_empty() && rng.gen_ratio(4, 5) {
                r.src = Some(fits[rng.gen_range(0..fits.len())]);
                // The fallback value of a used variable is not in the text: keep it canonical.
                r.val = target.resources[*want]
                    .special
                    .first()
                    .copied()
                    .unwrap_or(0);
            } else {
                let special = &target.resources[*want].special;
                r.src = None;
                r.val = if special.is_empty() {
                    rng.gen_range(0..8)
                } else {
                    special[rng.gen_range(0..special.len())]
                };
            }
        }
        (
            TypeKind::Buffer {
                kind: BufferKind::Blob { range },
                dir,
            },
            Arg::Data(d),
        ) => {
            let (lo, hi) = range
                .map(|(a, b)| (a as usize, b as usize))
                .unwrap_or((0, 4096));
            match rng.gen_range(0..4) {
                0 if !d.is_empty() && *dir != Dir::Out => {
                    let i = rng.gen_range(0..d.len());
                    d[i] = rng.gen();
                }
                1 if d.len() < hi => d.push(if *dir == Dir::Out { 0 } else { rng.gen() }),
                2 if d.len() > lo => {
                    d.pop();
                }
                _ => {
                    let n = rng.gen_range(lo..=hi.min(lo + 256).max(lo));
                    d.resize(n, 0);
                }
            }
        }
        (TypeKind::Buffer { .. }, Arg::Data(_)) => {
            *a = fresh(target, ct, rng, t, level);
        }
        (TypeKind::Array { elem, len }, Arg::Group(items)) => {
            let (lo, hi) = match len {
                ArrayLen::Range(lo, hi) => (*lo as usize, *hi as usize),
                ArrayLen::Var => (0, 8),
            };
            if items.len() < hi && (items.len() <= lo || rng.gen_ratio(1, 2)) {
                items.push(fresh(target, ct, rng, elem, level + 1));
            } else if items.len() > lo {
                items.pop();
            }
        }
        (TypeKind::Struct(id), Arg::Union { field, arg }) => {
            let st = &target.structs[*id];
            *field = rng.gen_range(0..st.fields.len());
            **arg = fresh(target, ct, rng, &st.fields[*field].ty, level + 1);
        }
        (TypeKind::Ptr { .. }, Arg::Ptr { .. }) if t.opt => {
            *a = fresh(target, ct, rng, t, level);
        }
        (TypeKind::Vma { .. }, Arg::Vma { .. }) => {
            *a = fresh(target, ct, rng, t, level);
        }
        _ => return false,
    }
    *a != before
}

/// A generated value for `t` at nesting level `level`, with no variables: it is made in a
/// scratch program whose variables mean nothing in the program being mutated.
fn fresh(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, t: &Type, level: usize) -> Arg {
    fn strip(a: &mut Arg) {
        match a {
            Arg::Res(r) => {
                r.def = None;
                r.src = None;
            }
            Arg::Ptr {
                pointee: Some(x), ..
            } => strip(x),
            Arg::Group(items) => items.iter_mut().for_each(strip),
            Arg::Union { arg, .. } => strip(arg),
            _ => {}
        }
    }
    let mut b = Builder::new(target, ct, rng, Prog::default()).at_level(level);
    b.no_producers = true;
    let mut a = b.gen_arg(t, Dir::In);
    strip(&mut a);
    a
}
