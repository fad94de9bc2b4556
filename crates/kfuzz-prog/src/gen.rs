//! Generating programs: default values, random values that respect types, resources taken from
//! earlier calls or made by inserting a producer, and the choice table that picks the next call.

use rand::Rng;

use crate::bounds;
use crate::prog::*;
use crate::target::Target;
use crate::types::*;

/// Programs grow to at most this many calls (the executor runs up to `kfuzz_wire::MAX_CALLS`).
pub const MAX_CALLS: usize = 40;
const _: () = assert!(MAX_CALLS <= kfuzz_wire::MAX_CALLS);
/// The length generation aims at, and mutation grows programs towards. A program costs a few
/// milliseconds of the executor's own work whatever its length (under TCG, about what ten calls
/// cost), so long programs spend more of the machine in the kernel; and the calls of a long
/// program act on each other's objects, which is where much of the kernel's state lies.
/// Minimization cuts what a new input does not need.
pub const RECOMMENDED_CALLS: usize = 30;

/// Bytes of data one generated call may grow to by choice (longer arrays, bigger blobs, more
/// optional pointees); its smallest value is always made, however big.
pub const CALL_DATA: u64 = 64 << 10;

/// Room a struct, union or array takes from `CALL_DATA` beside its data.
const GROUP_COST: u64 = 32;

/// Past this level optional pointers are null: a list through `ptr[in, node, opt]` stays short.
const OPT_PTR_DEPTH: usize = MAX_DEPTH / 4;

/// The simplest valid value of a type: zeroes, null pointers, empty arrays, first options.
pub fn default_arg(target: &Target, t: &Type) -> Arg {
    match &t.kind {
        TypeKind::Int {
            range: Some((lo, _)),
            ..
        } => Arg::Int(*lo),
        TypeKind::Int { .. }
        | TypeKind::Flags { .. }
        | TypeKind::Len { .. }
        | TypeKind::Proc { .. }
        | TypeKind::Void => Arg::Int(0),
        TypeKind::Const { val, .. } => Arg::Int(*val),
        TypeKind::Resource(r) => Arg::Res(ResArg {
            def: None,
            src: None,
            val: target.resources[*r].special.first().copied().unwrap_or(0),
        }),
        TypeKind::Ptr { .. } => Arg::Ptr {
            addr: 0,
            pointee: None,
        },
        TypeKind::Vma { .. } => Arg::Vma { addr: 0, size: 0 },
        TypeKind::Buffer { kind, .. } => Arg::Data(match kind {
            BufferKind::String { values, noz } => {
                let mut v = values.first().cloned().unwrap_or_default();
                if !noz {
                    v.push(0);
                }
                v
            }
            BufferKind::Filename { .. } => b"./file0\0".to_vec(),
            BufferKind::Blob {
                range: Some((lo, _)),
            } => vec![0; *lo as usize],
            BufferKind::Blob { range: None } => Vec::new(),
            // An empty image: mounting needs no device.
            BufferKind::Compressed => Vec::new(),
        }),
        TypeKind::Array { elem, len } => {
            let n = match len {
                ArrayLen::Range(lo, _) => *lo,
                ArrayLen::Var => 0,
            };
            Arg::Group((0..n).map(|_| default_arg(target, elem)).collect())
        }
        TypeKind::Struct(id) => {
            let st = &target.structs[*id];
            if st.is_union {
                Arg::Union {
                    field: 0,
                    arg: Box::new(default_arg(target, &st.fields[0].ty)),
                }
            } else {
                Arg::Group(
                    st.fields
                        .iter()
                        .map(|f| default_arg(target, &f.ty))
                        .collect(),
                )
            }
        }
    }
}

/// Which calls are enabled, and how likely each call is to follow another.
#[derive(Debug, Clone)]
pub struct ChoiceTable {
    pub enabled: Vec<SyscallId>,
    /// `prio[i][j]`: weight of enabled[j] after enabled[i].
    prio: Vec<Vec<u32>>,
    /// Enabled calls that produce each resource.
    pub producers: Vec<Vec<SyscallId>>,
}

impl ChoiceTable {
    /// Weights grow with the resources two calls share (one makes what the other takes).
    pub fn new(target: &Target, enabled: &[SyscallId]) -> ChoiceTable {
        // `no_generate` calls (those taking filesystem images) are only run from program text.
        let enabled: Vec<SyscallId> = enabled
            .iter()
            .copied()
            .filter(|id| !target.syscalls[*id].no_generate)
            .collect();
        let enabled = &enabled[..];
        let uses: Vec<Vec<ResourceId>> = enabled
            .iter()
            .map(|id| {
                let s = &target.syscalls[*id];
                let mut r = Vec::new();
                crate::target::walk_call_types(target, s, &mut |t, _, _| {
                    if let TypeKind::Resource(x) = t.kind {
                        r.push(x);
                    }
                });
                r.extend(s.ret);
                r
            })
            .collect();
        let related = |a: ResourceId, b: ResourceId| {
            let (ra, rb) = (&target.resources[a], &target.resources[b]);
            ra.accepts(rb) || rb.accepts(ra)
        };
        let mut prio = vec![vec![1u32; enabled.len()]; enabled.len()];
        for i in 0..enabled.len() {
            for j in 0..enabled.len() {
                let shared = uses[i]
                    .iter()
                    .filter(|a| uses[j].iter().any(|b| related(**a, *b)))
                    .count() as u32;
                prio[i][j] += 10 * shared.min(5);
            }
        }
        let producers = (0..target.resources.len())
            .map(|r| {
                enabled
                    .iter()
                    .copied()
                    .filter(|id| crate::target::produces(target, &target.syscalls[*id], r))
                    .collect()
            })
            .collect();
        ChoiceTable {
            enabled: enabled.to_vec(),
            prio,
            producers,
        }
    }

    pub fn is_enabled(&self, id: SyscallId) -> bool {
        self.enabled.contains(&id)
    }

    /// The next call, weighted by its relation to `prev` (a call already in the program).
    pub fn choose(&self, rng: &mut impl Rng, prev: Option<SyscallId>) -> Option<SyscallId> {
        if self.enabled.is_empty() {
            return None;
        }
        let Some(row) = prev.and_then(|p| self.enabled.iter().position(|e| *e == p)) else {
            return Some(self.enabled[rng.gen_range(0..self.enabled.len())]);
        };
        let total: u64 = self.prio[row].iter().map(|w| *w as u64).sum();
        let mut x = rng.gen_range(0..total.max(1));
        for (j, w) in self.prio[row].iter().enumerate() {
            if x < *w as u64 {
                return Some(self.enabled[j]);
            }
            x -= *w as u64;
        }
        self.enabled.last().copied()
    }
}

/// State while building calls: the program so far and where the next pointer goes.
pub struct Builder<'a, R: Rng> {
    pub target: &'a Target,
    pub ct: &'a ChoiceTable,
    pub rng: &'a mut R,
    pub prog: Prog,
    next_addr: u64,
    depth: usize,
    /// The level of the value being generated (a call's argument is 1).
    nest: usize,
    /// Bytes the call being generated may still grow by choice.
    room: u64,
    /// Never insert producer calls (used for values generated outside a program).
    pub no_producers: bool,
    /// The variables the first `.0` calls define (`.1`: the variable counter then), so that
    /// each resource argument does not walk every earlier call again. Reset by `insert_call`.
    vars_cache: (usize, VarId, Vec<(VarId, ResourceId)>),
    /// Producer calls still allowed for the call being inserted: an array of 255 resources
    /// whose producer does not always make one must not insert 255 producers, each with
    /// arrays of their own.
    producers_left: usize,
}

/// Producer calls one inserted call may bring with it.
const MAX_PRODUCERS: usize = 8;

impl<'a, R: Rng> Builder<'a, R> {
    pub fn new(target: &'a Target, ct: &'a ChoiceTable, rng: &'a mut R, prog: Prog) -> Self {
        let next_addr = prog_data_end(&prog);
        Builder {
            target,
            ct,
            rng,
            prog,
            next_addr,
            depth: 0,
            nest: 0,
            room: CALL_DATA,
            no_producers: false,
            vars_cache: (0, 0, Vec::new()),
            producers_left: MAX_PRODUCERS,
        }
    }

    fn alloc(&mut self, size: u64, align: u64) -> u64 {
        let align = align.clamp(1, PAGE);
        let mut addr = self.next_addr.next_multiple_of(align);
        if addr + size > DATA_BASE + DATA_SIZE / 2 {
            addr = DATA_BASE;
        }
        self.next_addr = addr + size.max(1);
        addr
    }

    /// Values generated from here on are at level `level` (a call's argument is 1), as when
    /// one argument deep in a call is made anew.
    pub fn at_level(mut self, level: usize) -> Self {
        self.nest = level.saturating_sub(1);
        self
    }

    /// Appends a generated call (and any producers it needs) at position `at`. Nothing is
    /// added (0) when the program's data would pass `MAX_DATA`.
    pub fn insert_call(&mut self, at: usize, id: SyscallId) -> usize {
        self.vars_cache = (0, 0, Vec::new());
        self.producers_left = MAX_PRODUCERS;
        let before = data_size(self.target, &self.prog);
        self.room = CALL_DATA.min(MAX_DATA.saturating_sub(before));
        let mut calls_before = self.prog.calls.split_off(at);
        std::mem::swap(&mut calls_before, &mut self.prog.calls);
        // self.prog.calls now holds the prefix; `calls_before` the suffix.
        let suffix = calls_before;
        let start = self.prog.calls.len();
        self.gen_call(id);
        let added = &self.prog.calls[start..];
        let grown = added
            .iter()
            .map(|c| call_data_size(self.target, c))
            .fold(before, u64::saturating_add);
        let added = if grown > MAX_DATA {
            self.prog.calls.truncate(start);
            0
        } else {
            added.len()
        };
        self.prog.calls.extend(suffix);
        self.vars_cache = (0, 0, Vec::new());
        added
    }

    /// Takes `n` bytes from the call's room.
    fn spend(&mut self, n: u64) {
        self.room = self.room.saturating_sub(n);
    }

    fn gen_call(&mut self, id: SyscallId) {
        let target = self.target;
        let meta = &target.syscalls[id];
        // A producer made while an argument is half built starts at level 1 of its own.
        let nest = std::mem::take(&mut self.nest);
        let mut args = Vec::new();
        for f in &meta.args {
            args.push(self.gen_arg(&f.ty, Dir::In));
        }
        self.nest = nest;
        let ret = meta.ret.map(|_| self.prog.new_var());
        let mut call = Call {
            meta: id,
            args,
            ret,
        };
        fix_lens(target, &mut call);
        self.prog.calls.push(call);
    }

    fn vars_of(&mut self, want: ResourceId) -> Vec<VarId> {
        let target = self.target;
        let len = self.prog.calls.len();
        // Calls only appended since: extend the cache; fewer calls: start again.
        if len < self.vars_cache.0 {
            self.vars_cache = (0, 0, Vec::new());
        }
        let from = self.vars_cache.0;
        for c in &self.prog.calls[from..] {
            self.vars_cache.2.extend(defined_vars(target, c));
        }
        self.vars_cache.0 = len;
        self.vars_cache.1 = self.prog.next_var;
        self.vars_cache
            .2
            .iter()
            .filter(|(_, r)| target.resources[want].accepts(&target.resources[*r]))
            .map(|(v, _)| *v)
            .collect()
    }

    /// A random value of `t`, within the call's room (beyond its smallest value) and
    /// `MAX_DEPTH`.
    pub fn gen_arg(&mut self, t: &Type, dir: Dir) -> Arg {
        self.nest += 1;
        let a = self.gen_value(t, dir);
        self.nest -= 1;
        if let Some(size) = int_size(&t.kind, &self.target.resources) {
            self.spend(u64::from(size));
        }
        match &a {
            Arg::Data(d) => self.spend(d.len() as u64),
            // Every struct and array costs room too: a tree of empty structs (a struct holding
            // an array of itself) would otherwise grow to a node per byte of room (64Ki nodes,
            // a megabyte of text and a second per program); at GROUP_COST a call holds at
            // most 2Ki of them.
            Arg::Group(_) | Arg::Union { .. } => self.spend(GROUP_COST),
            _ => {}
        }
        a
    }

    fn gen_value(&mut self, t: &Type, dir: Dir) -> Arg {
        let target = self.target;
        if t.opt && self.rng.gen_ratio(1, 10) {
            return default_arg(target, t);
        }
        match &t.kind {
            TypeKind::Int {
                size, range, align, ..
            } => Arg::Int(rand_int(self.rng, *size, *range, *align)),
            TypeKind::Const { val, .. } => Arg::Int(*val),
            TypeKind::Flags {
                vals,
                bitmask,
                size,
                ..
            } => Arg::Int(rand_flags(self.rng, vals, *bitmask, *size)),
            TypeKind::Len { .. } => Arg::Int(0),
            TypeKind::Proc { per_proc, .. } => Arg::Int(self.rng.gen_range(0..*per_proc)),
            TypeKind::Void => Arg::Int(0),
            TypeKind::Resource(r) => {
                if dir == Dir::Out {
                    return Arg::Res(ResArg {
                        def: Some(self.prog.new_var()),
                        src: None,
                        val: 0,
                    });
                }
                let mut vars = self.vars_of(*r);
                if vars.is_empty()
                    && !self.no_producers
                    && self.producers_left > 0
                    && self.depth < 3
                    && !self.rng.gen_ratio(1, 20)
                {
                    let producers = self.ct.producers.get(*r).cloned().unwrap_or_default();
                    let compatible: Vec<SyscallId> = self
                        .ct
                        .enabled
                        .iter()
                        .copied()
                        .filter(|id| {
                            let s = &target.syscalls[*id];
                            producers.contains(id)
                                || s.ret.is_some_and(|x| {
                                    target.resources[*r].accepts(&target.resources[x])
                                })
                        })
                        .collect();
                    if !compatible.is_empty() {
                        let p = compatible[self.rng.gen_range(0..compatible.len())];
                        self.producers_left -= 1;
                        self.depth += 1;
                        self.gen_call(p);
                        self.depth -= 1;
                        vars = self.vars_of(*r);
                    }
                }
                let special = &target.resources[*r].special;
                if !vars.is_empty() && !self.rng.gen_ratio(1, 20) {
                    let v = vars[self.rng.gen_range(0..vars.len())];
                    Arg::Res(ResArg {
                        def: None,
                        src: Some(v),
                        val: special.first().copied().unwrap_or(0),
                    })
                } else {
                    let val = if special.is_empty() {
                        self.rng.gen_range(0..4)
                    } else {
                        special[self.rng.gen_range(0..special.len())]
                    };
                    Arg::Res(ResArg {
                        def: None,
                        src: None,
                        val,
                    })
                }
            }
            TypeKind::Ptr { dir: d, elem } => {
                // The pointee and all it holds by value must stay within MAX_DEPTH; an optional
                // one is left out past OPT_PTR_DEPTH or when it does not fit the room.
                let too_deep = self.nest + bounds::depth(target, elem) > MAX_DEPTH;
                let skip_opt = t.opt
                    && (self.nest > OPT_PTR_DEPTH
                        || bounds::min_data(target, elem) > self.room
                        || (self.nest > 8 && self.rng.gen_ratio(1, 3)));
                if too_deep || skip_opt {
                    return Arg::Ptr {
                        addr: 0,
                        pointee: None,
                    };
                }
                let pointee = self.gen_arg(elem, *d);
                let (size, align) = layout(target, elem, &pointee);
                let addr = self.alloc(size, align);
                Arg::Ptr {
                    addr,
                    pointee: Some(Box::new(pointee)),
                }
            }
            TypeKind::Vma { pages } => {
                let (lo, hi) = pages.unwrap_or((1, 4));
                let n = self.rng.gen_range(lo.max(1)..=hi.max(lo.max(1)));
                let total = DATA_SIZE / PAGE;
                let page = self
                    .rng
                    .gen_range(total / 2..total.saturating_sub(n).max(total / 2 + 1));
                Arg::Vma {
                    addr: DATA_BASE + page * PAGE,
                    size: n * PAGE,
                }
            }
            TypeKind::Buffer { kind, dir: bd } => Arg::Data(match kind {
                BufferKind::String { values, noz } => {
                    let mut v = if values.is_empty() || self.rng.gen_ratio(1, 20) {
                        (0..self.rng.gen_range(0..16))
                            .map(|_| self.rng.gen_range(0x20..0x7f))
                            .collect()
                    } else {
                        values[self.rng.gen_range(0..values.len())].clone()
                    };
                    if !noz {
                        v.push(0);
                    }
                    v
                }
                BufferKind::Filename { noz } => {
                    let mut v = format!("./file{}", self.rng.gen_range(0..4)).into_bytes();
                    if !noz {
                        v.push(0);
                    }
                    v
                }
                // Calls taking images are `no_generate`; an image is never made up.
                BufferKind::Compressed => Vec::new(),
                BufferKind::Blob { range } => {
                    let (lo, hi) = range.unwrap_or((0, 64));
                    let n = self.rng.gen_range(lo..=hi.max(lo)).min(lo.max(self.room));
                    if *bd == Dir::Out || dir == Dir::Out {
                        vec![0; n as usize]
                    } else {
                        (0..n).map(|_| self.rng.gen()).collect()
                    }
                }
            }),
            TypeKind::Array { elem, len } => {
                let (lo, n) = match len {
                    ArrayLen::Range(lo, hi) => (*lo, self.rng.gen_range(*lo..=*hi)),
                    ArrayLen::Var => (0, self.rng.gen_range(0..4)),
                };
                // Elements past the minimum only while the room (and the depth) lasts.
                let elem_min = bounds::min_data(target, elem).max(1);
                let deep = self.nest + bounds::depth(target, elem) >= MAX_DEPTH;
                let mut items = Vec::new();
                while (items.len() as u64) < n {
                    if items.len() as u64 >= lo && (deep || self.room < elem_min) {
                        break;
                    }
                    items.push(self.gen_arg(elem, dir));
                }
                Arg::Group(items)
            }
            TypeKind::Struct(id) => {
                let st = &target.structs[*id];
                if st.is_union {
                    let mut field = self.rng.gen_range(0..st.fields.len());
                    // An option too big for the room gives way to the smallest one.
                    let min = |i: usize| bounds::min_data(target, &st.fields[i].ty);
                    if min(field) > self.room {
                        field = (0..st.fields.len()).min_by_key(|i| min(*i)).unwrap_or(0);
                    }
                    // Near the depth limit the shallowest option (a union that holds itself
                    // through an option is a tree: this is where it ends).
                    let depth = |i: usize| bounds::depth(target, &st.fields[i].ty);
                    if self.nest + depth(field) >= MAX_DEPTH {
                        field = (0..st.fields.len()).min_by_key(|i| depth(*i)).unwrap_or(0);
                    }
                    let f = &st.fields[field];
                    Arg::Union {
                        field,
                        arg: Box::new(self.gen_arg(&f.ty, f.dir.unwrap_or(dir))),
                    }
                } else {
                    let items = st
                        .fields
                        .iter()
                        .map(|f| self.gen_arg(&f.ty, f.dir.unwrap_or(dir)))
                        .collect();
                    Arg::Group(items)
                }
            }
        }
    }
}

/// The first free address after every pointer the program uses.
pub fn prog_data_end(p: &Prog) -> u64 {
    fn go(a: &Arg, end: &mut u64) {
        match a {
            Arg::Ptr { addr, pointee } => {
                if *addr >= DATA_BASE && *addr < DATA_BASE + DATA_SIZE / 2 {
                    *end = (*end).max(addr + 64);
                }
                if let Some(p) = pointee {
                    go(p, end);
                }
            }
            Arg::Group(items) => items.iter().for_each(|i| go(i, end)),
            Arg::Union { arg, .. } => go(arg, end),
            _ => {}
        }
    }
    let mut end = DATA_BASE;
    for c in &p.calls {
        c.args.iter().for_each(|a| go(a, &mut end));
    }
    end
}

pub fn rand_int(rng: &mut impl Rng, size: u8, range: Option<(u64, u64)>, align: u64) -> u64 {
    let mask = if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    };
    let v = match range {
        Some((lo, hi)) if lo <= hi => {
            let v = rng.gen_range(lo..=hi);
            if align > 1 {
                (lo + (v - lo) / align * align).min(hi)
            } else {
                v
            }
        }
        _ => match rng.gen_range(0..10) {
            0..=5 => SPECIAL_INTS[rng.gen_range(0..SPECIAL_INTS.len())],
            6..=7 => rng.gen_range(0..256),
            _ => rng.gen(),
        },
    };
    v & mask
}

pub fn rand_flags(rng: &mut impl Rng, vals: &[u64], bitmask: bool, size: u8) -> u64 {
    let mask = if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    };
    if vals.is_empty() {
        return rng.gen::<u64>() & mask;
    }
    if !bitmask || rng.gen_ratio(1, 4) {
        if rng.gen_ratio(1, 50) {
            return rng.gen::<u64>() & mask;
        }
        return vals[rng.gen_range(0..vals.len())];
    }
    let mut v = 0;
    for _ in 0..rng.gen_range(1..=3) {
        v |= vals[rng.gen_range(0..vals.len())];
    }
    v
}

/// Recomputes every `len`/`bytesize` in a call from what it measures.
pub fn fix_lens(target: &Target, call: &mut Call) {
    // Conditions first: the options they choose change sizes.
    crate::cond::fix_conditions(target, call);
    let meta = &target.syscalls[call.meta];
    let fields: Vec<&FieldDesc> = meta.args.iter().collect();
    // `len[syscall:x]` reads the call's arguments as they are before lengths are set (a
    // length never changes a size).
    let snapshot = call.args.clone();
    let mut ctx = LenCtx {
        call_fields: &meta.args,
        call_args: &snapshot,
        parents: Vec::new(),
    };
    fix_level(target, &fields, &mut call.args, false, &mut ctx);
}

/// What a length can refer to beyond its siblings: the call's arguments (`syscall:x`) and
/// the enclosing structs, innermost last, by name and size (`parent`, `parent:parent`, a
/// struct's name).
struct LenCtx<'a> {
    call_fields: &'a [FieldDesc],
    call_args: &'a [Arg],
    parents: Vec<(&'a str, u64)>,
}

/// The byte offset of field `j` in a struct laid out from `fields`/`args`.
fn field_offset(
    target: &Target,
    fields: &[&FieldDesc],
    args: &[Arg],
    j: usize,
    packed: bool,
) -> u64 {
    let mut off: u64 = 0;
    for (k, (f, a)) in fields.iter().zip(args).enumerate() {
        let (s, al) = layout(target, &f.ty, a);
        let al = if packed { 1 } else { al.max(1) };
        off = off.next_multiple_of(al);
        if k == j {
            break;
        }
        off += s;
    }
    off
}

/// The value at `path` below `fields`/`args`, measured in `unit`.
fn measure_path(
    target: &Target,
    fields: &[&FieldDesc],
    args: &[Arg],
    path: &[String],
    unit: &LenUnit,
) -> Option<u64> {
    let (name, rest) = path.split_first()?;
    let j = fields.iter().position(|f| &f.name == name)?;
    let (t, a) = (&fields[j].ty, args.get(j)?);
    if rest.is_empty() {
        return Some(measure(target, t, a, unit));
    }
    // Through pointers and conditional fields to the struct the rest of the path names.
    let mut t = t;
    let mut a = a;
    loop {
        match (&t.kind, a) {
            (
                TypeKind::Ptr { elem, .. },
                Arg::Ptr {
                    pointee: Some(p), ..
                },
            ) => {
                t = elem;
                a = p;
            }
            (TypeKind::Struct(id), Arg::Union { field, arg }) => {
                t = &target.structs[*id].fields.get(*field)?.ty;
                a = arg;
            }
            (TypeKind::Struct(id), Arg::Group(items)) => {
                let inner: Vec<&FieldDesc> = target.structs[*id].fields.iter().collect();
                return measure_path(target, &inner, items, rest, unit);
            }
            _ => return None,
        }
    }
}

fn fix_level<'a>(
    target: &'a Target,
    fields: &[&'a FieldDesc],
    args: &mut [Arg],
    packed: bool,
    ctx: &mut LenCtx<'a>,
) {
    // Inner structs first (their sizes may depend on their own lens).
    for (f, a) in fields.iter().zip(args.iter_mut()) {
        fix_inner(target, &f.ty, a, ctx);
    }
    for i in 0..fields.len().min(args.len()) {
        let TypeKind::Len { path, unit, size } = &fields[i].ty.kind else {
            continue;
        };
        let Some(first) = path.first() else { continue };
        let sibling = fields.iter().any(|f| &f.name == first);
        let v = if *unit == LenUnit::Offset {
            let name = path.last().map(String::as_str).unwrap_or("");
            fields
                .iter()
                .position(|f| f.name == name)
                .map(|j| field_offset(target, fields, args, j, packed))
        } else if first == "syscall" {
            let call: Vec<&FieldDesc> = ctx.call_fields.iter().collect();
            measure_path(target, &call, ctx.call_args, &path[1..], unit)
        } else if first == "parent" {
            // `parent`, `parent:parent`, …: the enclosing structs, innermost first.
            let ups = path.iter().take_while(|p| *p == "parent").count();
            if ups == path.len() {
                ctx.parents
                    .len()
                    .checked_sub(ups)
                    .and_then(|k| ctx.parents.get(k))
                    .map(|(_, s)| scale(*s, unit, None))
            } else if ups == 1 {
                measure_path(target, fields, args, &path[1..], unit)
            } else {
                None
            }
        } else if !sibling && path.len() == 1 {
            // A struct's name: the nearest enclosing struct of that name.
            ctx.parents
                .iter()
                .rev()
                .find(|(n, _)| {
                    *n == first
                        || n.strip_prefix(first.as_str())
                            .is_some_and(|r| r.starts_with('['))
                })
                .map(|(_, s)| scale(*s, unit, None))
        } else {
            measure_path(target, fields, args, path, unit)
        };
        if let Some(v) = v {
            let mask = if *size >= 8 {
                u64::MAX
            } else {
                (1u64 << (*size * 8)) - 1
            };
            args[i] = Arg::Int(v & mask);
        }
    }
}

fn fix_inner<'a>(target: &'a Target, t: &'a Type, a: &mut Arg, ctx: &mut LenCtx<'a>) {
    match (&t.kind, a) {
        (
            TypeKind::Ptr { elem, .. },
            Arg::Ptr {
                pointee: Some(p), ..
            },
        ) => fix_inner(target, elem, p, ctx),
        (TypeKind::Array { elem, .. }, Arg::Group(items)) => items
            .iter_mut()
            .for_each(|i| fix_inner(target, elem, i, ctx)),
        (TypeKind::Struct(id), Arg::Group(items)) => {
            let st = &target.structs[*id];
            let fields: Vec<&FieldDesc> = st.fields.iter().collect();
            let size = {
                let whole = Arg::Group(items.clone());
                arg_size(target, t, &whole)
            };
            ctx.parents.push((&st.name, size));
            fix_level(target, &fields, items, st.packed, ctx);
            ctx.parents.pop();
        }
        (TypeKind::Struct(id), Arg::Union { field, arg }) => {
            let st = &target.structs[*id];
            if let Some(f) = st.fields.get(*field) {
                // A union is a parent too (`len[parent]` in an option is the union's size),
                // but a conditional field's stand-in union is not.
                let pushed = !st.conditional;
                if pushed {
                    let size = arg_size(
                        target,
                        t,
                        &Arg::Union {
                            field: *field,
                            arg: arg.clone(),
                        },
                    );
                    ctx.parents.push((&st.name, size));
                }
                fix_inner(target, &f.ty, arg, ctx);
                if pushed {
                    ctx.parents.pop();
                }
            }
        }
        _ => {}
    }
}

fn scale(bytes: u64, unit: &LenUnit, elems: Option<u64>) -> u64 {
    match unit {
        LenUnit::Elems => elems.unwrap_or(bytes),
        LenUnit::Bytes(n) => bytes / (*n).max(1),
        LenUnit::Bits => bytes * 8,
        LenUnit::Offset => bytes,
    }
}

fn measure(target: &Target, t: &Type, a: &Arg, unit: &LenUnit) -> u64 {
    match (&t.kind, a) {
        (
            TypeKind::Ptr { elem, .. },
            Arg::Ptr {
                pointee: Some(p), ..
            },
        ) => measure(target, elem, p, unit),
        (TypeKind::Ptr { .. }, _) => 0,
        (TypeKind::Vma { .. }, Arg::Vma { size, .. }) => scale(*size, unit, None),
        (TypeKind::Array { .. }, Arg::Group(items)) => {
            scale(arg_size(target, t, a), unit, Some(items.len() as u64))
        }
        (TypeKind::Buffer { .. }, Arg::Data(d)) => scale(d.len() as u64, unit, None),
        _ => scale(arg_size(target, t, a), unit, None),
    }
}

/// A fresh program of about `ncalls` calls from the enabled set.
pub fn generate(target: &Target, ct: &ChoiceTable, rng: &mut impl Rng, ncalls: usize) -> Prog {
    let mut b = Builder::new(target, ct, rng, Prog::default());
    // A call left out for its data does not stop the others; a bounded number of tries does.
    let mut tries = 4 * ncalls.min(MAX_CALLS);
    while b.prog.calls.len() < ncalls.min(MAX_CALLS) && tries > 0 {
        tries -= 1;
        let prev = if b.prog.calls.is_empty() {
            None
        } else {
            Some(b.prog.calls[b.rng.gen_range(0..b.prog.calls.len())].meta)
        };
        let Some(id) = ct.choose(b.rng, prev) else {
            break;
        };
        let at = b.prog.calls.len();
        b.insert_call(at, id);
    }
    b.prog.calls.truncate(MAX_CALLS.max(ncalls));
    crate::minimize::drop_dangling(target, &mut b.prog);
    b.prog
}
