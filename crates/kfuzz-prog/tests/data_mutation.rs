//! Argument mutation keeps programs valid and values inside their types' bounds: for every call
//! of `descriptions/linux` (constants made up as 1), with several seeds and a pool of compared
//! operands, each mutant validates, prints, parses back to the same program and encodes; every
//! int stays in its width, range and alignment, every buffer within its size bounds, every
//! string keeps its terminator, every output buffer stays zero, every array within its length.

use std::path::Path;

use kfuzz_prog::gen::{Builder, ChoiceTable};
use kfuzz_prog::mutate_data::ValuePool;
use kfuzz_prog::prog::{Arg, Call, Prog};
use kfuzz_prog::target::Target;
use kfuzz_prog::types::{ArrayLen, BufferKind, Dir, Type, TypeKind};
use kfuzz_prog::{exec, mutate, text, validate};
use rand::SeedableRng;

mod common;

fn linux_target() -> Target {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../descriptions/linux");
    common::target_of(&[&dir])
}

fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// Every value of `a` within the bounds its type `t` sets; `dir` is the direction its data
/// flows in (output data is printed as a length only, so it must be zero).
fn check_bounds(t: &Target, ty: &Type, a: &Arg, dir: Dir, what: &str) {
    match (&ty.kind, a) {
        (
            TypeKind::Int {
                size, range, align, ..
            },
            Arg::Int(v),
        ) => {
            assert!(
                *v <= width_mask(*size),
                "{what}: {v:#x} wider than {size} bytes"
            );
            if let Some((lo, hi)) = range.filter(|(lo, hi)| lo <= hi) {
                assert!(
                    (lo..=hi).contains(v),
                    "{what}: {v:#x} outside {lo:#x}:{hi:#x}"
                );
                if *align > 1 {
                    assert_eq!((v - lo) % align, 0, "{what}: {v:#x} not aligned to {align}");
                }
            }
        }
        (TypeKind::Flags { size, .. }, Arg::Int(v)) => {
            assert!(
                *v <= width_mask(*size),
                "{what}: {v:#x} wider than {size} bytes"
            );
        }
        (TypeKind::Proc { per_proc, .. }, Arg::Int(v)) => {
            assert!(
                *v < (*per_proc).max(1),
                "{what}: proc value {v} of {per_proc}"
            );
        }
        (TypeKind::Buffer { kind, dir: bd }, Arg::Data(d)) => {
            let out = *bd == Dir::Out || dir == Dir::Out;
            if out {
                assert!(d.iter().all(|b| *b == 0), "{what}: output data not zero");
            }
            match kind {
                BufferKind::Blob {
                    range: Some((lo, hi)),
                } => assert!(
                    (*lo as usize..=*hi as usize).contains(&d.len()),
                    "{what}: blob of {} bytes outside {lo}:{hi}",
                    d.len()
                ),
                BufferKind::String { values, noz } if !out => {
                    if !noz {
                        assert_eq!(d.last(), Some(&0), "{what}: string lost its terminator");
                    }
                    // (A fixed-size string's size is not checked: generation makes up a
                    // string of its own now and then, as syzkaller does.)
                    let _ = values;
                }
                BufferKind::Filename { noz: false } if !out => {
                    assert_eq!(d.last(), Some(&0), "{what}: filename lost its terminator");
                }
                _ => {}
            }
        }
        (TypeKind::Array { elem, len }, Arg::Group(items)) => {
            if let ArrayLen::Range(lo, hi) = len {
                assert!(
                    (*lo as usize..=*hi as usize).contains(&items.len()),
                    "{what}: array of {} outside {lo}:{hi}",
                    items.len()
                );
            }
            for i in items {
                check_bounds(t, elem, i, dir, what);
            }
        }
        (
            TypeKind::Ptr { elem, dir: d },
            Arg::Ptr {
                pointee: Some(p), ..
            },
        ) => check_bounds(t, elem, p, *d, what),
        (TypeKind::Struct(id), Arg::Group(items)) => {
            for (f, i) in t.structs[*id].fields.iter().zip(items) {
                check_bounds(t, &f.ty, i, f.dir.unwrap_or(dir), what);
            }
        }
        (TypeKind::Struct(id), Arg::Union { field, arg }) => {
            if let Some(f) = t.structs[*id].fields.get(*field) {
                check_bounds(t, &f.ty, arg, f.dir.unwrap_or(dir), what);
            }
        }
        _ => {}
    }
}

fn check_call_bounds(t: &Target, c: &Call, what: &str) {
    let meta = &t.syscalls[c.meta];
    for (f, a) in meta.args.iter().zip(&c.args) {
        check_bounds(t, &f.ty, a, Dir::In, &format!("{what} arg {}", f.name));
    }
}

fn check_valid(t: &Target, p: &Prog, what: &str) {
    validate::validate(t, p).unwrap_or_else(|e| panic!("{what}: invalid: {e}"));
    let printed = text::format(t, p);
    let back = text::parse(t, &printed).unwrap_or_else(|e| panic!("{what}: {e}\n{printed}"));
    assert_eq!(
        text::format(t, &back),
        printed,
        "{what}: printed differently"
    );
    assert_eq!(
        exec::encode(t, &back),
        exec::encode(t, p),
        "{what}: reads back as another program\n{printed}"
    );
    for c in &p.calls {
        check_call_bounds(t, c, &format!("{what}: {}", t.syscalls[c.meta].name));
    }
}

#[test]
fn every_argument_mutant_of_every_linux_call_stays_valid_and_in_bounds() {
    let t = linux_target();
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(&t, &all);
    let mut pool = ValuePool::default();
    for v in [
        0x1000u64,
        0xdead_beef,
        0x7fff_ffff,
        0x4000_0000_0000,
        0x8001,
        0x1_0000,
    ] {
        pool.add(v);
    }
    let mut changed = 0;
    let mut tried = 0;
    for s in &t.syscalls {
        for seed in 0..4u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut b = Builder::new(&t, &ct, &mut rng, Prog::default());
            b.insert_call(0, s.id);
            let mut p = b.prog;
            for round in 0..24 {
                tried += 1;
                if mutate::mutate_arg_with(&t, &ct, &mut rng, &mut p, &pool) {
                    changed += 1;
                }
                check_valid(&t, &p, &format!("{} (seed {seed}, round {round})", s.name));
            }
        }
    }
    // Most attempts change something: places that cannot change are not picked.
    assert!(
        changed * 10 > tried * 7,
        "{changed} of {tried} mutations changed the program"
    );
}

#[test]
fn whole_program_mutants_with_operands_stay_valid() {
    let t = linux_target();
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(&t, &all);
    let mut pool = ValuePool::default();
    for v in 0..64u64 {
        pool.add(0x1000 + v * 0x111);
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let mut corpus: Vec<Prog> = Vec::new();
    for s in t.syscalls.iter().step_by(3) {
        let mut b = Builder::new(&t, &ct, &mut rng, Prog::default());
        b.insert_call(0, s.id);
        let mut p = b.prog;
        for round in 0..6 {
            p = mutate::mutate_with(&t, &ct, &mut rng, &p, &corpus, &pool);
            check_valid(&t, &p, &format!("{} (round {round})", s.name));
        }
        corpus.push(p);
        if corpus.len() > 16 {
            corpus.remove(0);
        }
    }
}

#[test]
fn mutable_places_reach_into_structs_and_arrays() {
    let t = linux_target();
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(&t, &all);
    let mut deep = 0;
    for s in &t.syscalls {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut b = Builder::new(&t, &ct, &mut rng, Prog::default());
        b.insert_call(0, s.id);
        let p = b.prog;
        let Some(c) = p.calls.iter().find(|c| c.meta == s.id) else {
            continue;
        };
        deep += mutate::mutable_places(&t, c)
            .iter()
            .filter(|(path, _)| path.len() > 2)
            .count();
    }
    assert!(deep > 100, "only {deep} places below a pointee's top level");
}

/// Mutation grows short programs towards `RECOMMENDED_CALLS` and never past `MAX_CALLS`, and
/// generation makes programs of the length asked for, within `MAX_CALLS`.
#[test]
fn programs_grow_towards_the_recommended_length_and_stay_within_the_limit() {
    use kfuzz_prog::gen::{generate, MAX_CALLS, RECOMMENDED_CALLS};
    let t = linux_target();
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(&t, &all);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
    for n in [1, RECOMMENDED_CALLS, MAX_CALLS + 10] {
        let p = generate(&t, &ct, &mut rng, n);
        assert!(
            p.calls.len() <= MAX_CALLS,
            "{} calls for {n}",
            p.calls.len()
        );
        check_valid(&t, &p, &format!("generated, {n} calls asked"));
    }
    let mut grown = Vec::new();
    for seed in 0..8 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut p = generate(&t, &ct, &mut rng, 1);
        let mut longest = p.calls.len();
        for round in 0..60 {
            p = mutate::mutate(&t, &ct, &mut rng, &p, &[]);
            assert!(
                p.calls.len() <= MAX_CALLS,
                "round {round}: {} calls",
                p.calls.len()
            );
            longest = longest.max(p.calls.len());
        }
        check_valid(&t, &p, &format!("seed {seed} after 60 mutations"));
        grown.push(longest);
    }
    // Each mutant of a short program inserts about one call on average; after 60 rounds every
    // chain has been near the recommended length (a chain that never grew fails).
    let reached = grown
        .iter()
        .filter(|&&l| l >= RECOMMENDED_CALLS / 2)
        .count();
    assert!(reached >= 6, "longest program per chain: {grown:?}");
}

/// A mutant of a program under half of `RECOMMENDED_CALLS` (a minimized corpus program) gets a
/// random share of the calls it lacks of `RECOMMENDED_CALLS`; a program already past half grows
/// or shrinks by about one call at a time, as before.
#[test]
fn mutants_of_short_programs_grow_towards_the_recommended_length_at_once() {
    use kfuzz_prog::gen::{generate, RECOMMENDED_CALLS};
    let t = linux_target();
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(&t, &all);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let mean_mutant = |rng: &mut rand::rngs::SmallRng, p: &kfuzz_prog::prog::Prog| {
        let n = 300;
        let mut total = 0;
        for i in 0..n {
            let m = mutate::mutate(&t, &ct, rng, p, &[]);
            check_valid(&t, &m, &format!("mutant {i}"));
            total += m.calls.len();
        }
        total as f64 / n as f64
    };
    let short = generate(&t, &ct, &mut rng, 2);
    let len = short.calls.len() as f64;
    let grown = mean_mutant(&mut rng, &short);
    // Half the gap on average from growing, about one more from the mutation itself.
    let expected = len + (RECOMMENDED_CALLS as f64 - len) / 2.0;
    assert!(
        grown > expected - 1.5 && grown < expected + 4.0,
        "{len} calls grew to {grown:.1} on average, expected about {expected:.1}"
    );
    let long = generate(&t, &ct, &mut rng, RECOMMENDED_CALLS);
    let len = long.calls.len() as f64;
    let mean = mean_mutant(&mut rng, &long);
    assert!(
        (mean - len).abs() < 3.0,
        "{len} calls became {mean:.1} on average"
    );
}
