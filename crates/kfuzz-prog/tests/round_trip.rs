//! Everything kfuzz prints as a program reads back as the same program: for every call of our
//! own descriptions (`descriptions/linux`) and of the description fixtures
//! (`tests/fixtures/descriptions`), compiled with made-up constants (each 1) so that no call is
//! lost to a missing header, generated and mutated programs print, parse back to a program that
//! encodes the same, and print again to the same text.

use std::path::{Path, PathBuf};

use kfuzz_prog::gen::{Builder, ChoiceTable};
use kfuzz_prog::prog::Prog;
use kfuzz_prog::target::Target;
use kfuzz_prog::{exec, mutate, text, validate};
use rand::SeedableRng;

mod common;
use common::target_of;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `p` prints, parses back to a valid program that encodes the same, and prints the same.
fn check_round_trip(t: &Target, p: &Prog, what: &str) {
    validate::validate(t, p).unwrap_or_else(|e| panic!("{what}: invalid: {e}"));
    let printed = text::format(t, p);
    let back = text::parse(t, &printed).unwrap_or_else(|e| panic!("{what}: {e}\n{printed}"));
    validate::validate(t, &back).unwrap_or_else(|e| panic!("{what}: read back invalid: {e}"));
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
}

/// Programs made from each call (with the producers it brings), then mutated; returns how
/// many calls were covered.
fn round_trip_every_call(t: &Target, seeds: u64) -> usize {
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = ChoiceTable::new(t, &all);
    let mut corpus: Vec<Prog> = Vec::new();
    for s in &t.syscalls {
        for seed in 0..seeds {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut b = Builder::new(t, &ct, &mut rng, Prog::default());
            b.insert_call(0, s.id);
            let p = b.prog;
            check_round_trip(t, &p, &format!("{} (seed {seed})", s.name));
            let mut m = p.clone();
            for round in 0..4 {
                m = mutate::mutate(t, &ct, &mut rng, &m, &corpus);
                check_round_trip(
                    t,
                    &m,
                    &format!("{} (seed {seed}, mutation {round})", s.name),
                );
            }
            corpus.push(m);
            if corpus.len() > 32 {
                corpus.remove(0);
            }
        }
    }
    t.syscalls.len()
}

#[test]
fn every_call_of_our_descriptions_round_trips_through_text() {
    let t = target_of(&[&repo().join("descriptions/linux")]);
    assert!(t.syscalls.len() > 50, "{} calls", t.syscalls.len());
    let n = round_trip_every_call(&t, 8);
    eprintln!(
        "descriptions/linux: {n} calls round-tripped, {} disabled",
        t.disabled.len()
    );
    for d in &t.disabled {
        eprintln!("  disabled {}: {}", d.name, d.reason);
    }
}

/// The fixtures use our descriptions' resources (`fd`): loaded beside them, as the CLI does.
fn fixtures_target() -> Target {
    target_of(&[
        &repo().join("descriptions/linux"),
        &repo().join("tests/fixtures/descriptions"),
    ])
}

#[test]
fn every_call_of_the_description_fixtures_round_trips_through_text() {
    let t = fixtures_target();
    let fixture_calls = t
        .syscalls
        .iter()
        .filter(|s| s.pos.starts_with("constructs.txt") || s.pos.starts_with("layout.txt"))
        .count();
    assert!(
        fixture_calls > 10,
        "{fixture_calls} calls: {:#?}",
        t.disabled
    );
    let n = round_trip_every_call(&t, 8);
    eprintln!(
        "tests/fixtures/descriptions (beside descriptions/linux): {n} calls round-tripped, {fixture_calls} of them the fixtures', {} disabled",
        t.disabled.len()
    );
    for d in &t.disabled {
        eprintln!("  disabled {}: {}", d.name, d.reason);
    }
}

#[test]
fn void_and_conditional_options_print_as_they_parse() {
    let t = fixtures_target();
    // Every union option of every struct reachable from a call, chosen in turn.
    let mut covered = 0;
    for s in &t.syscalls {
        let all: Vec<usize> = (0..t.syscalls.len()).collect();
        let ct = ChoiceTable::new(&t, &all);
        for seed in 0..64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(1000 + seed);
            let mut b = Builder::new(&t, &ct, &mut rng, Prog::default());
            b.insert_call(0, s.id);
            let printed = text::format(&t, &b.prog);
            if printed.contains("@void") || printed.contains('@') {
                covered += 1;
            }
            check_round_trip(&t, &b.prog, &format!("{} (seed {seed})", s.name));
        }
    }
    assert!(covered > 0, "no union in the fixtures' programs");
}
