//! Program text at and past kfuzz's limits (nesting depth, number range, integer width, data
//! size): each refused with an error naming line:column and the limit, never a stack overflow,
//! a wrapped value or a huge allocation. The big inputs are made here, not stored.

use std::collections::HashMap;

use kfuzz_prog::prog::{arg_depth, data_size, MAX_DATA, MAX_DEPTH};
use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_prog::{text, validate};

const DESCRIPTIONS: &str = r#"
resource fd[int32]: 0xffffffffffffffff
open(file ptr[in, filename]) fd
read(fd fd, buf buffer[out], count len[buf])
write(fd fd, buf buffer[in], count len[buf])
mmap(addr vma, len len[addr], prot int32, flags int8, fd fd, off intptr)
chain(p ptr[in, node])
node {
	v	int8
	next	ptr[in, node, opt]
}
"#;

fn target() -> Target {
    let files = [DescriptionFile {
        name: "limits.txt".into(),
        text: DESCRIPTIONS.into(),
    }];
    let nodes = parse_files(&files).expect("the descriptions parse");
    let numbers: HashMap<String, u64> = [("open", 2), ("read", 0), ("write", 1), ("mmap", 9)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .chain([("chain".to_string(), 500)])
        .collect();
    let t = compile(&nodes, &HashMap::new(), &numbers);
    assert!(t.disabled.is_empty(), "{:?}", t.disabled);
    t
}

fn error_of(t: &Target, src: &str) -> String {
    match text::parse(t, src) {
        Ok(p) => panic!("parsed: {}", text::format(t, &p)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn twenty_thousand_nested_braces_are_refused_at_the_level_past_the_limit() {
    let t = target();
    let src = format!("mmap({}\n", "{".repeat(20_000));
    let err = error_of(&t, &src);
    let col = "mmap(".len() + MAX_DEPTH + 1;
    assert_eq!(
        err,
        format!(
            "1:{col}: nesting deeper than {MAX_DEPTH} levels (pointers, structs, arrays, unions)"
        )
    );
}

#[test]
fn a_hundred_thousand_chained_pointers_or_brackets_or_options_are_refused() {
    let t = target();
    for unit in ["&(0x0)=", "[", "@a=", "&AUTO="] {
        let src = format!("mmap({}0x0)\n", unit.repeat(100_000));
        let err = error_of(&t, &src);
        assert!(
            err.starts_with("1:") && err.contains(&format!("nesting deeper than {MAX_DEPTH}")),
            "{unit}: {err}"
        );
    }
}

#[test]
fn chained_resource_definitions_are_not_nesting_and_need_a_number() {
    let t = target();
    let src = format!("read({}0x0, 0x0, 0x0)\n", "<r0=>".repeat(100_000));
    assert_eq!(error_of(&t, &src), "1:11: expected a number, found '<'");
}

/// A linked list through an optional pointer: `chain(&(…)={0x0, &(…)={0x0, …}})`, `levels`
/// values deep.
fn list(levels: usize) -> String {
    let pairs = (levels - 1) / 2;
    let mut s = String::from("chain(");
    for i in 0..pairs {
        s.push_str(&format!("&(0x{:x})={{0x0, ", 0x2000_0000 + i * 0x10));
    }
    s.push_str("0x0");
    s.push_str(&"}".repeat(pairs));
    s.push_str(")\n");
    s
}

#[test]
fn values_exactly_as_deep_as_the_limit_parse_and_print_back() {
    let t = target();
    // chain's argument (1) + a pointer and a struct per list node, ending in a null `next`.
    let deepest = if MAX_DEPTH % 2 == 1 {
        MAX_DEPTH
    } else {
        MAX_DEPTH - 1
    };
    let src = list(deepest);
    let p = text::parse(&t, &src).expect("the deepest list parses");
    validate::validate(&t, &p).expect("valid");
    assert_eq!(arg_depth(&p.calls[0].args[0]), deepest);
    assert_eq!(text::format(&t, &p), src);
    let err = error_of(&t, &list(deepest + 2));
    assert!(err.contains("nesting deeper than"), "{err}");
}

#[test]
fn numbers_out_of_64_bits_are_errors_not_wrapped_values() {
    let t = target();
    let ok = [
        ("-0x8000000000000000", 0x8000_0000_0000_0000u64),
        ("-1", u64::MAX),
        ("0xffffffffffffffff", u64::MAX),
        ("18446744073709551615", u64::MAX),
        ("-9223372036854775808", 0x8000_0000_0000_0000),
    ];
    for (lit, want) in ok {
        let p = text::parse(&t, &format!("mmap(0x0, 0x0, 0x0, 0x0, 0x0, {lit})\n"))
            .unwrap_or_else(|e| panic!("{lit}: {e}"));
        assert_eq!(
            p.calls[0].args[5],
            kfuzz_prog::prog::Arg::Int(want),
            "{lit}"
        );
    }
    for lit in [
        "-0x8000000000000001",
        "0x10000000000000000",
        "18446744073709551616",
        "-9223372036854775809",
        "-0xffffffffffffffff",
    ] {
        let err = error_of(&t, &format!("mmap(0x0, 0x0, 0x0, 0x0, 0x0, {lit})\n"));
        assert_eq!(
            err,
            format!("1:31: number `{lit}` is out of range: expected -0x8000000000000000 to 0xffffffffffffffff"),
        );
    }
    for lit in ["0x", "-", "0x1g", "12ab", "--1"] {
        let err = error_of(&t, &format!("mmap(0x0, 0x0, 0x0, 0x0, 0x0, {lit})\n"));
        assert!(err.starts_with("1:31: expected a number"), "{lit}: {err}");
    }
}

#[test]
fn integers_wider_than_their_type_are_errors_negative_ones_sign_extend() {
    let t = target();
    // prot is an int32, flags an int8.
    let p = text::parse(&t, "mmap(0x0, 0x0, 0xffffffff, -0x80, 0x0, 0x0)\n").expect("fits");
    assert_eq!(p.calls[0].args[2], kfuzz_prog::prog::Arg::Int(0xffff_ffff));
    assert_eq!(p.calls[0].args[3], kfuzz_prog::prog::Arg::Int(0x80));
    let p = text::parse(&t, "mmap(0x0, 0x0, 0xffffffffffffffff, 0x0, 0x0, 0x0)\n").expect("-1");
    assert_eq!(p.calls[0].args[2], kfuzz_prog::prog::Arg::Int(0xffff_ffff));
    assert_eq!(
        error_of(&t, "mmap(0x0, 0x0, 0x100000000, 0x0, 0x0, 0x0)\n"),
        "1:16: 0x100000000 does not fit an integer (4 bytes)"
    );
    assert_eq!(
        error_of(&t, "mmap(0x0, 0x0, 0x0, -0x81, 0x0, 0x0)\n"),
        "1:21: 0xffffffffffffff7f does not fit an integer (1 bytes)"
    );
}

#[test]
fn an_output_buffer_of_four_gigabytes_is_refused_before_it_is_allocated() {
    let t = target();
    assert_eq!(
        error_of(&t, "read(0x0, &(0x20000000)=\"\"/4294967295, 0x0)\n"),
        format!("1:25: 4294967295 bytes of data: a program's data may not pass {MAX_DATA} bytes")
    );
    // Right at the limit it is read, and counted.
    let src = format!("read(0x0, &(0x20000000)=\"\"/{MAX_DATA}, 0x0)\n");
    let p = text::parse(&t, &src).expect("fits");
    assert_eq!(data_size(&t, &p), MAX_DATA);
    assert_eq!(text::format(&t, &p), src);
    // Two buffers that fit alone do not fit together.
    let half = MAX_DATA / 2 + 1;
    let err = error_of(
        &t,
        &format!(
            "read(0x0, &(0x20000000)=\"\"/{half}, 0x0)\nread(0x0, &(0x20000000)=\"\"/{half}, 0x0)\n"
        ),
    );
    assert!(
        err.starts_with("2:25: ") && err.contains("data may not pass"),
        "{err}"
    );
}

#[test]
fn many_small_values_past_the_data_limit_are_refused_at_their_call() {
    let t = target();
    // Strings of 4 KiB text each: 2 KiB of data; enough calls to pass the limit.
    let one = format!("write(0x0, &(0x20000000)=\"{}\", 0x0)\n", "00".repeat(2048));
    let calls = (MAX_DATA / 2048) as usize + 1;
    let err = error_of(&t, &one.repeat(calls));
    assert!(
        err.starts_with(&format!("{calls}:")) && err.contains(&MAX_DATA.to_string()),
        "{err}"
    );
}

#[test]
fn comparison_hints_are_cut_to_the_argument_size_so_they_print_as_they_parse() {
    let t = target();
    let p = text::parse(&t, "mmap(0x0, 0x0, 0x5, 0x0, 0x0, 0x0)\n").expect("parses");
    let mut comps = kfuzz_prog::hints::CompMap::default();
    comps.add(0x5, 0xdead_beef_1234_5678);
    let texts: Vec<String> = kfuzz_prog::hints::mutants(&t, &p, 0, &comps, 10)
        .iter()
        .map(|m| text::format(&t, m))
        .collect();
    // Also as the low 8 and 16 bits the kernel may have compared.
    assert_eq!(
        texts,
        [
            "mmap(0x0, 0x0, 0x78, 0x0, 0x0, 0x0)\n",
            "mmap(0x0, 0x0, 0x5678, 0x0, 0x0, 0x0)\n",
            "mmap(0x0, 0x0, 0x12345678, 0x0, 0x0, 0x0)\n",
        ]
    );
    for s in &texts {
        let back = text::parse(&t, s).expect("reads back");
        assert_eq!(&text::format(&t, &back), s);
    }
}
