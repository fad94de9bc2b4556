//! Descriptions at and past kfuzz's limits: empty ranges, lengths of nothing, types that expand
//! forever, structs that hold themselves, values too big for a program's data. Each disables its
//! call with file:line:col and what was expected (or fails the parse with its place), never a
//! stack overflow; generation from what stays enabled keeps within `MAX_DATA` and `MAX_DEPTH`.
//! The big descriptions are made here, not stored.

use std::collections::HashMap;

use kfuzz_prog::gen::{generate, ChoiceTable};
use kfuzz_prog::prog::{arg_depth, data_size, MAX_DATA, MAX_DEPTH};
use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_prog::{mutate, text, validate};
use rand::SeedableRng;

/// Every call is `read$…`/`write$…` (numbers 0 and 1).
fn target_of(text: &str) -> Target {
    let files = [DescriptionFile {
        name: "t.txt".into(),
        text: text.into(),
    }];
    let nodes = parse_files(&files).expect("parses");
    let numbers: HashMap<String, u64> = [("read".to_string(), 0), ("write".to_string(), 1)].into();
    compile(&nodes, &HashMap::new(), &numbers)
}

fn reason(t: &Target, call: &str) -> String {
    t.disabled
        .iter()
        .find(|d| d.name == call)
        .map(|d| d.reason.clone())
        .unwrap_or_else(|| panic!("{call} is not disabled: {:?}", t.disabled))
}

fn enabled(t: &Target) -> Vec<&str> {
    t.syscalls.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn an_empty_int_range_disables_its_call_at_the_range() {
    let t = target_of(
        "write$a(x int32[100:1])\n\
         write$b(x int32[-1:1])\n\
         write$c(x vma[3:2])\n",
    );
    assert_eq!(
        reason(&t, "write$a"),
        "t.txt:1:17: empty range 100:1: expected min:max with min <= max"
    );
    assert_eq!(
        reason(&t, "write$c"),
        "t.txt:3:15: empty range 3:2 of pages: expected min:max with min <= max"
    );
    // A signed range is not empty.
    assert_eq!(enabled(&t), ["write$b"]);
}

#[test]
fn a_length_of_nothing_disables_its_call_at_the_length() {
    let t = target_of(
        "write$arg(buf ptr[in, array[int8]], n len[nosuchfield])\n\
         write$field(p ptr[in, s])\n\
         write$deep(p ptr[in, s], n len[p:nosuch])\n\
         write$ok(p ptr[in, s], n len[p:buf], m len[s], k bytesize[parent])\n\
         s {\n\
         \tbuf\tarray[int8]\n\
         \tn\tlen[buf, int32]\n\
         }\n\
         bad {\n\
         \tn\tlen[nosuchfield, int32]\n\
         }\n\
         write$bad(p ptr[in, bad])\n",
    );
    assert_eq!(
        reason(&t, "write$arg"),
        "t.txt:1:39: length target `nosuchfield` names nothing: expected a field here (buf, n), `parent`, `syscall` or a struct's name"
    );
    assert_eq!(
        reason(&t, "write$deep"),
        "t.txt:3:28: length target `p:nosuch`: `s` has no field `nosuch`"
    );
    assert_eq!(
        reason(&t, "write$bad"),
        "t.txt:10:4: length target `nosuchfield` names nothing: expected a field here (n), `parent`, `syscall` or a struct's name"
    );
    assert_eq!(enabled(&t), ["write$field", "write$ok"]);
}

#[test]
fn ten_thousand_nested_pointers_fail_the_parse_at_their_place() {
    let ty = format!("{}int8{}", "ptr[in, ".repeat(10_000), "]".repeat(10_000));
    let files = [DescriptionFile {
        name: "t.txt".into(),
        text: format!("write$p(p {ty})\n"),
    }];
    let err = parse_files(&files).expect_err("too deep").to_string();
    assert!(
        err.starts_with("t.txt:1:") && err.contains("nest deeper than"),
        "{err}"
    );
}

#[test]
fn ten_thousand_structs_nested_by_value_disable_the_call() {
    let mut text = String::from("write$s(p ptr[in, s0])\n");
    for i in 0..10_000 {
        text.push_str(&format!("s{i} {{\n\ta\ts{}\n}}\n", i + 1));
    }
    text.push_str("s10000 {\n\ta\tint8\n}\n");
    let t = target_of(&text);
    let r = reason(&t, "write$s");
    assert!(
        r.starts_with("t.txt:") && r.contains("deeper than 64 levels"),
        "{r}"
    );
}

#[test]
fn self_referring_types_and_resources_disable_their_calls() {
    let t = target_of(
        "type tt[X] tt[X]\n\
         resource ra[ra]\n\
         resource rb[rc]\n\
         resource rc[rb]\n\
         write$tt(x tt[int8])\n\
         write$ra(fd ra)\n\
         write$rb(fd rb)\n",
    );
    assert!(
        reason(&t, "write$tt").starts_with("t.txt:1:12: `tt` expands deeper than 64 levels"),
        "{}",
        reason(&t, "write$tt")
    );
    assert!(reason(&t, "write$ra").contains("is its own base"));
    assert!(reason(&t, "write$rb").contains("is its own base"));
}

#[test]
fn a_struct_holding_itself_through_a_pointer_that_is_not_opt_disables_its_call() {
    let t = target_of(
        "s {\n\ta\tptr[in, s]\n}\n\
         write$s(p ptr[in, s])\n\
         write$s_opt(p ptr[in, s, opt])\n\
         u [\n\tself\tptr[in, u]\n\tleaf\tint8\n]\n\
         write$u(p ptr[in, u])\n\
         v {\n\ta\tv\n}\n\
         write$v(p ptr[in, v])\n\
         w {\n\ta\tarray[w]\n}\n\
         write$w(p ptr[in, w])\n",
    );
    assert_eq!(
        reason(&t, "write$s"),
        "t.txt:4:1: `s` has no finite value: it holds itself through pointers that are not opt"
    );
    assert!(
        reason(&t, "write$v").contains("holds itself by value"),
        "{}",
        reason(&t, "write$v")
    );
    // The optional way in, the union with a way out and the array that may be empty (a tree,
    // as netlink's nested attributes are) can be generated.
    assert_eq!(enabled(&t), ["write$s_opt", "write$u", "write$w"]);
    generate_and_check(&t, 200);
}

#[test]
fn arrays_too_big_for_a_program_disable_their_call_and_generation_stays_small() {
    let t = target_of(
        "write$huge(p ptr[in, array[array[array[array[int64, 1000], 1000], 1000], 1000]])\n\
         write$three(a ptr[in, big], b ptr[in, big], c ptr[in, big])\n\
         write$one(a ptr[in, big])\n\
         write$var(a ptr[in, array[array[array[int64]]]])\n\
         write$range(a ptr[in, array[array[int64, 0:4096], 0:4096]])\n\
         big {\n\tx\tarray[int64, 65536]\n\ty\tarray[int64, 65536]\n\tz\tarray[int64, 65536]\n\tw\tarray[int64, 65536]\n\tv\tarray[int64, 65536]\n\tu\tarray[int64, 65536]\n\tt\tarray[int64, 65536]\n\ts\tarray[int64, 65536]\n}\n",
    );
    assert_eq!(
        reason(&t, "write$huge"),
        format!("t.txt:1:1: its smallest value needs 8000000000000 bytes of data, more than the {MAX_DATA} a program may use")
    );
    assert!(
        reason(&t, "write$three").contains("needs 12582912 bytes"),
        "{}",
        reason(&t, "write$three")
    );
    assert_eq!(enabled(&t), ["write$one", "write$var", "write$range"]);
    generate_and_check(&t, 4);
}

#[test]
fn trees_through_optional_pointers_stay_within_the_limits() {
    let t = target_of(
        "node {\n\tl\tptr[in, node, opt]\n\tr\tptr[in, node, opt]\n\tv\tarray[int64]\n}\n\
         write$tree(p ptr[in, node])\n\
         list {\n\tnext\tptr[in, list, opt]\n\tpad\tarray[int8, 0:4096]\n}\n\
         write$list(p ptr[in, list])\n",
    );
    assert_eq!(enabled(&t), ["write$tree", "write$list"]);
    generate_and_check(&t, 40);
}

/// Programs generated and mutated from every enabled call are valid, within `MAX_DEPTH` and
/// `MAX_DATA`, and read back as printed.
fn generate_and_check(t: &Target, rounds: u64) {
    let ct = ChoiceTable::new(t, &(0..t.syscalls.len()).collect::<Vec<_>>());
    let mut corpus = Vec::new();
    for seed in 0..rounds {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let p = generate(t, &ct, &mut rng, 4);
        let m = mutate::mutate(t, &ct, &mut rng, &p, &corpus);
        for prog in [&p, &m] {
            validate::validate(t, prog).expect("valid");
            assert!(data_size(t, prog) <= MAX_DATA);
            for c in &prog.calls {
                for a in &c.args {
                    assert!(arg_depth(a) <= MAX_DEPTH);
                }
            }
            let s = text::format(t, prog);
            let back = text::parse(t, &s).unwrap_or_else(|e| panic!("{e}\n{s}"));
            assert_eq!(text::format(t, &back), s);
        }
        corpus.push(m);
        if corpus.len() > 8 {
            corpus.remove(0);
        }
    }
}
