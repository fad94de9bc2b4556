//! Mutating programs: insert a call, remove a call, change one argument (at any depth; the
//! data mutators are in `mutate_data`), splice two programs.

use rand::Rng;

use crate::gen::{self, Builder, ChoiceTable, MAX_CALLS, RECOMMENDED_CALLS};
use crate::mutate_data::{self as data, ValuePool};
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
    mutate_with(target, ct, rng, p, corpus, &ValuePool::default())
}

/// The same, integers and buffer words drawing now and then on `pool` (operands the kernel
/// was seen comparing with).
pub fn mutate_with(
    target: &Target,
    ct: &ChoiceTable,
    rng: &mut impl Rng,
    p: &Prog,
    corpus: &[Prog],
    pool: &ValuePool,
) -> Prog {
    let mut p = p.clone();
    let mut changed = grow(target, ct, rng, &mut p);
    for _ in 0..20 {
        // Programs grow towards `RECOMMENDED_CALLS` (see there): calls are inserted more often
        // while a program is shorter, removed more often once it is longer. About three
        // changes per mutant, as syzkaller makes.
        let short = p.calls.len() < RECOMMENDED_CALLS;
        changed |= match rng.gen_range(0..100) {
            0..=4 if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                splice(target, rng, &mut p, other)
            }
            0..=59 if short => insert_call(target, ct, rng, &mut p),
            0..=19 => insert_call(target, ct, rng, &mut p),
            60..=64 => remove_random_call(target, rng, &mut p),
            20..=39 if !short => remove_random_call(target, rng, &mut p),
            _ => mutate_arg_with(target, ct, rng, &mut p, pool),
        };
        if changed && rng.gen_ratio(1, 3) {
            break;
        }
    }
    if p.calls.is_empty() {
        p = gen::generate(target, ct, rng, 3);
    }
    p
}

/// A program under half of `RECOMMENDED_CALLS` (a freshly minimized corpus program, mostly)
/// first grows to a random length between its own and `RECOMMENDED_CALLS`: one or two inserts
/// per mutant would keep the mutants of a minimized corpus short, and a short program spends
/// most of its execution in the executor's own work rather than in the kernel. The corpus
/// program itself stays as minimization left it.
fn grow(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, p: &mut Prog) -> bool {
    if p.calls.len() >= RECOMMENDED_CALLS / 2 {
        return false;
    }
    // An inserted call brings the producers of its resources along: count calls, not inserts.
    let to = rng.gen_range(p.calls.len()..=RECOMMENDED_CALLS);
    let mut changed = false;
    for _ in 0..RECOMMENDED_CALLS {
        if p.calls.len() >= to {
            break;
        }
        changed |= insert_call(target, ct, rng, p);
    }
    changed
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

/// Changes one argument somewhere in one call (without comparison operands to draw from).
pub fn mutate_arg(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, p: &mut Prog) -> bool {
    mutate_arg_with(target, ct, rng, p, &ValuePool::default())
}

/// Changes one argument somewhere in one call, at any depth (a struct's field, an array's
/// element); integers and buffer words may take operands from `pool`.
pub fn mutate_arg_with(
    target: &Target,
    ct: &ChoiceTable,
    rng: &mut impl Rng,
    p: &mut Prog,
    pool: &ValuePool,
) -> bool {
    if p.calls.is_empty() {
        return false;
    }
    let idx = rng.gen_range(0..p.calls.len());
    let places = mutable_places(target, &p.calls[idx]);
    if places.is_empty() {
        return false;
    }
    let (path, dir) = places[rng.gen_range(0..places.len())].clone();
    // Variables defined before this call, by resource kind.
    let earlier: Vec<(VarId, ResourceId)> = p.calls[..idx]
        .iter()
        .flat_map(|c| defined_vars(target, c))
        .collect();
    let mut prog = std::mem::take(p);
    let original = prog.calls[idx].clone();
    let level = path.len();
    let mut changed = match arg_at_mut(target, &mut prog.calls[idx], &path) {
        Some((ty, arg)) => {
            let mut m = ValueMutator {
                target,
                ct,
                rng,
                earlier: &earlier,
                pool,
            };
            m.mutate(ty, arg, dir, level)
        }
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

/// The places in a call a mutation can change (not consts, lengths, output resources or
/// plain pointers), as paths for `arg_at_mut`, each with the direction its data flows in.
pub fn mutable_places(target: &Target, call: &Call) -> Vec<(Vec<usize>, Dir)> {
    fn go(
        target: &Target,
        t: &Type,
        a: &Arg,
        dir: Dir,
        path: &mut Vec<usize>,
        out: &mut Vec<(Vec<usize>, Dir)>,
    ) {
        let mutable = match (&t.kind, a) {
            (TypeKind::Int { .. } | TypeKind::Flags { .. } | TypeKind::Proc { .. }, _) => true,
            (TypeKind::Resource(_), Arg::Res(r)) => r.def.is_none(),
            (
                TypeKind::Buffer {
                    kind: BufferKind::Compressed,
                    ..
                },
                _,
            ) => false,
            (TypeKind::Buffer { .. } | TypeKind::Array { .. } | TypeKind::Vma { .. }, _) => true,
            (TypeKind::Struct(id), Arg::Union { .. }) => {
                let st = &target.structs[*id];
                // A conditional field's option follows its condition (`fix_lens` sets it).
                st.fields.len() > 1 && !st.conditional
            }
            (TypeKind::Ptr { .. }, _) => t.opt,
            _ => false,
        };
        if mutable {
            out.push((path.clone(), dir));
        }
        let children: Vec<(&Type, &Arg, Dir)> = match (&t.kind, a) {
            (
                TypeKind::Ptr { elem, dir: d },
                Arg::Ptr {
                    pointee: Some(p), ..
                },
            ) => vec![(&**elem, &**p, *d)],
            (TypeKind::Array { elem, .. }, Arg::Group(items)) => {
                items.iter().map(|i| (&**elem, i, dir)).collect()
            }
            (TypeKind::Struct(id), Arg::Group(items)) => target.structs[*id]
                .fields
                .iter()
                .zip(items)
                .map(|(f, i)| (&f.ty, i, f.dir.unwrap_or(dir)))
                .collect(),
            (TypeKind::Struct(id), Arg::Union { field, arg }) => target.structs[*id]
                .fields
                .get(*field)
                .map(|f| vec![(&f.ty, &**arg, f.dir.unwrap_or(dir))])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for (i, (ct, ca, cd)) in children.into_iter().enumerate() {
            path.push(i);
            go(target, ct, ca, cd, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    let meta = &target.syscalls[call.meta];
    for (i, (f, a)) in meta.args.iter().zip(&call.args).enumerate() {
        let mut path = vec![i];
        go(target, &f.ty, a, Dir::In, &mut path, &mut out);
    }
    out
}

/// What changing one value needs besides the value.
struct ValueMutator<'a, R: Rng> {
    target: &'a Target,
    ct: &'a ChoiceTable,
    rng: &'a mut R,
    /// Variables defined by earlier calls, with their resource kinds.
    earlier: &'a [(VarId, ResourceId)],
    pool: &'a ValuePool,
}

/// Bytes a blob without a size range may grow to by mutation (the program's data limit
/// still applies).
const BLOB_MAX: usize = 4096;
/// Elements a variable-length array may grow to by mutation.
const ARRAY_MAX: usize = 10;

impl<R: Rng> ValueMutator<'_, R> {
    /// Changes `a` (of type `t`, its data flowing in `dir`); true when it changed.
    fn mutate(&mut self, t: &Type, a: &mut Arg, dir: Dir, level: usize) -> bool {
        let (target, ct, pool) = (self.target, self.ct, self.pool);
        let rng = &mut *self.rng;
        let before = a.clone();
        match (&t.kind, &mut *a) {
            (
                TypeKind::Int {
                    size, range, align, ..
                },
                Arg::Int(v),
            ) => {
                *v = data::mutate_int(rng, *v, *size, *range, *align, pool);
                if let Some(b) = t.bitfield.filter(|b| b.len < 64) {
                    *v &= (1u64 << b.len) - 1;
                }
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
                *v = data::mutate_flags(rng, *v, vals, *bitmask, *size, pool);
                if let Some(b) = t.bitfield.filter(|b| b.len < 64) {
                    *v &= (1u64 << b.len) - 1;
                }
            }
            (TypeKind::Proc { per_proc, .. }, Arg::Int(v)) => {
                *v = rng.gen_range(0..(*per_proc).max(1))
            }
            (TypeKind::Resource(want), Arg::Res(r)) if r.def.is_none() => {
                let fits: Vec<VarId> = self
                    .earlier
                    .iter()
                    .filter(|(_, k)| target.resources[*want].accepts(&target.resources[*k]))
                    .map(|(v, _)| *v)
                    .collect();
                if !fits.is_empty() && rng.gen_ratio(4, 5) {
                    r.src = Some(fits[rng.gen_range(0..fits.len())]);
                    // The fallback value of a used variable is not in the text: keep it
                    // canonical.
                    r.val = target.resources[*want]
                        .special
                        .first()
                        .copied()
                        .unwrap_or(0);
                } else {
                    let special = &target.resources[*want].special;
                    r.src = None;
                    r.val = if special.is_empty() || rng.gen_ratio(1, 4) {
                        data::mutate_int(
                            rng,
                            r.val,
                            target.resources[*want].size,
                            Some((0, 16)),
                            1,
                            pool,
                        )
                    } else {
                        special[rng.gen_range(0..special.len())]
                    };
                }
            }
            (
                TypeKind::Buffer {
                    kind: BufferKind::Blob { range },
                    dir: bd,
                },
                Arg::Data(d),
            ) => {
                let (lo, hi) = match range {
                    Some((lo, hi)) => (*lo as usize, (*hi as usize).max(*lo as usize)),
                    // Never shrunk below what it has by a mutation that only grows it.
                    None => (0, BLOB_MAX.max(d.len())),
                };
                let dir = if *bd == Dir::Out { Dir::Out } else { dir };
                data::mutate_bytes(rng, d, lo, hi, dir, pool);
            }
            (
                TypeKind::Buffer {
                    kind: BufferKind::String { values, noz },
                    dir: bd,
                },
                Arg::Data(d),
            ) => {
                if *bd == Dir::Out || dir == Dir::Out {
                    // Only its length is in the program.
                    let n = data::pick_len(rng, d.len(), 0, BLOB_MAX);
                    d.resize(n, 0);
                } else {
                    mutate_string(rng, d, values, *noz, pool);
                }
            }
            (
                TypeKind::Buffer {
                    kind: BufferKind::Filename { noz },
                    ..
                },
                Arg::Data(d),
            ) => {
                let mut name = data::FILENAMES[rng.gen_range(0..data::FILENAMES.len())]
                    .as_bytes()
                    .to_vec();
                if rng.gen_ratio(1, 10) {
                    data::mutate_text(rng, &mut name, 32, pool);
                    // A NUL inside would cut the name short anyway: keep it one string.
                    name.retain(|b| *b != 0);
                }
                if !noz {
                    name.push(0);
                }
                *d = name;
            }
            (TypeKind::Buffer { .. }, Arg::Data(_)) => return false,
            (TypeKind::Array { elem, len }, Arg::Group(items)) => {
                let (lo, hi) = match len {
                    ArrayLen::Range(lo, hi) => (*lo as usize, (*hi as usize).max(*lo as usize)),
                    ArrayLen::Var => (0, ARRAY_MAX.max(items.len())),
                };
                match rng.gen_range(0..8) {
                    // An element more, anywhere.
                    0..=2 if items.len() < hi => {
                        let at = rng.gen_range(0..=items.len());
                        items.insert(at, fresh(target, ct, rng, elem, level + 1));
                    }
                    // An element fewer, anywhere.
                    3..=4 if items.len() > lo => {
                        let at = rng.gen_range(0..items.len());
                        items.remove(at);
                    }
                    // Two elements swapped.
                    5 if items.len() >= 2 => {
                        let i = rng.gen_range(0..items.len());
                        let j = rng.gen_range(0..items.len());
                        items.swap(i, j);
                    }
                    // A length near a boundary, small growth at a time (each element is a
                    // generated value).
                    _ => {
                        let n = data::pick_len(rng, items.len(), lo, hi.min(items.len() + 8));
                        while items.len() > n {
                            items.pop();
                        }
                        while items.len() < n {
                            items.push(fresh(target, ct, rng, elem, level + 1));
                        }
                    }
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
}

/// A string's new text: another of its values mostly (a fixed-size string keeps its size),
/// its text edited now and then; the terminator stays unless `noz`.
fn mutate_string(
    rng: &mut impl Rng,
    d: &mut Vec<u8>,
    values: &[Vec<u8>],
    noz: bool,
    pool: &ValuePool,
) {
    let fixed = noz && !values.is_empty() && values.iter().all(|v| v.len() == values[0].len());
    if !values.is_empty() && !rng.gen_ratio(1, 10) {
        let mut v = values[rng.gen_range(0..values.len())].clone();
        if !noz {
            v.push(0);
        }
        *d = v;
        return;
    }
    if fixed {
        // The same length, edited in place.
        let n = d.len();
        data::mutate_bytes(rng, d, n, n, Dir::In, pool);
        return;
    }
    let mut body = d.clone();
    if !noz && body.last() == Some(&0) {
        body.pop();
    }
    let longest = values.iter().map(Vec::len).max().unwrap_or(0);
    data::mutate_text(rng, &mut body, (longest + 16).clamp(16, 256), pool);
    if !noz {
        body.push(0);
    }
    *d = body;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn strings_keep_their_terminator_and_fixed_ones_their_size() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        let pool = ValuePool::default();
        let values = vec![b"ext4".to_vec(), b"vfat".to_vec()];
        let mut d = b"ext4\0".to_vec();
        let mut other = 0;
        for _ in 0..500 {
            mutate_string(&mut rng, &mut d, &values, false, &pool);
            assert_eq!(d.last(), Some(&0));
            other += usize::from(!values.iter().any(|v| d[..d.len() - 1] == v[..]));
        }
        assert!(
            other > 10 && other < 150,
            "{other} of 500 not among the values"
        );
        let fixed = vec![vec![b'a'; 16], vec![b'b'; 16]];
        let mut d = vec![b'a'; 16];
        for _ in 0..500 {
            mutate_string(&mut rng, &mut d, &fixed, true, &pool);
            assert_eq!(d.len(), 16);
        }
        let mut d = b"x\0".to_vec();
        for _ in 0..500 {
            mutate_string(&mut rng, &mut d, &[], false, &pool);
            assert_eq!(d.last(), Some(&0));
            assert!(d.len() <= 257);
        }
    }
}
