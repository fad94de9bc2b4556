//! Programs against a small target: text round trips, generated and mutated programs stay
//! valid, and their execution encoding is deterministic (property tests).

use std::collections::HashMap;

use kfuzz_prog::gen::{generate, ChoiceTable};
use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_prog::{exec, hints, mutate, text, validate};
use proptest::prelude::*;
use rand::SeedableRng;

const DESCRIPTIONS: &str = r#"
resource fd[int32]: 0xffffffffffffffff, 0xffffffffffffff9c
resource fd_pipe[fd]
resource ipc_shm[int32]: 0xffffffffffffffff
open(file ptr[in, filename], flags flags[open_flags], mode const[0]) fd
close(fd fd)
read(fd fd, buf buffer[out], count len[buf])
write(fd fd, buf buffer[in], count len[buf])
pipe(fds ptr[out, pipefds])
pipefds {
	r	fd_pipe
	w	fd_pipe
}
open_flags = 0x0, 0x1, 0x2, 0x40, 0x200
writev(fd fd, vec ptr[in, array[iovec]], n len[vec])
iovec {
	base	buffer[in]
	len	len[base, intptr]
}
mmap(addr vma, len len[addr], prot flags[prot], flags flags[mflags], fd fd, off intptr[0:0xffffffff, 0x1000])
prot = 0x0, 0x1, 0x2, 0x4
mflags = 0x1, 0x2, 0x10, 0x20
shmget(key intptr[0:31], size len[unused], flags flags[shmflags], unused vma) ipc_shm
shmflags = 0x200, 0x400, 0x800
shmat(id ipc_shm, addr vma, flags flags[shmat_flags])
shmat_flags = 0x1000, 0x2000, 0x4000
remap_file_pages(addr vma, size len[addr], prot flags[prot], pgoff intptr, flags flags[mflags])
sendmsg(fd fd, msg ptr[in, msg], f int32)
msg {
	name	ptr[in, addr, opt]
	u	addrs
	data	array[int8, 0:8]
	tail	stringnoz["x"]
} [align[8]]
addr {
	family	const[1, int16]
	path	string
}
addrs [
	small	int8
	big	int64
	name	array[int16, 2]
] [varlen]
"#;

fn target() -> Target {
    let files = [DescriptionFile {
        name: "test.txt".into(),
        text: DESCRIPTIONS.into(),
    }];
    let nodes = parse_files(&files).unwrap();
    let numbers: HashMap<String, u64> = [
        ("open", 2),
        ("close", 3),
        ("read", 0),
        ("write", 1),
        ("pipe", 22),
        ("writev", 20),
        ("mmap", 9),
        ("shmget", 29),
        ("shmat", 30),
        ("remap_file_pages", 216),
        ("sendmsg", 46),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    let t = compile(&nodes, &HashMap::new(), &numbers);
    assert!(t.disabled.is_empty(), "{:?}", t.disabled);
    t
}

#[test]
fn comparison_hints_replace_ints_and_flags_but_not_lengths_or_resources() {
    let t = target();
    let p = text::parse(
        &t,
        "mmap(&(0x20000000/0x1000)=nil, 0x1000, 0x3, 0x32, 0xffffffffffffffff, 0x1234)\n",
    )
    .unwrap();
    let mut comps = hints::CompMap::default();
    comps.add(0x1234, 0xdead);
    // Compared as a truncated 8-bit value: the upper bits stay.
    comps.add(0x34, 0x99);
    // The length (0x1000) and the fd resource are never touched, even when compared.
    comps.add(0x1000, 0x2000);
    comps.add(0xffffffffffffffff, 0x5);
    // prot is a flags argument.
    comps.add(0x3, 0x1);
    let texts: Vec<String> = hints::mutants(&t, &p, 0, &comps, 100)
        .iter()
        .map(|m| text::format(&t, m))
        .collect();
    assert_eq!(
        texts,
        vec![
            "mmap(&(0x20000000/0x1000)=nil, 0x1000, 0x1, 0x32, 0xffffffffffffffff, 0x1234)\n",
            "mmap(&(0x20000000/0x1000)=nil, 0x1000, 0x3, 0x32, 0xffffffffffffffff, 0x1299)\n",
            "mmap(&(0x20000000/0x1000)=nil, 0x1000, 0x3, 0x32, 0xffffffffffffffff, 0xdead)\n",
        ]
    );
    assert_eq!(hints::mutants(&t, &p, 0, &comps, 1).len(), 1);
    assert!(hints::mutants(&t, &p, 0, &hints::CompMap::default(), 100).is_empty());
    assert!(hints::mutants(&t, &p, 5, &comps, 100).is_empty());
}

#[test]
fn the_motivating_program_round_trips() {
    let t = target();
    let src = "mmap(&(0x7f0000000000/0x2000)=nil, 0x2000, 0x3, 0x32, 0xffffffffffffffff, 0x0)\n\
               r0 = shmget(0x5, 0x2000, 0x200, &(0x7f0000b03000/0x2000)=nil)\n\
               shmat(r0, &(0x7f0000b03000/0x2000)=nil, 0x6000)\n\
               remap_file_pages(&(0x7f0000b03000/0x2000)=nil, 0x2000, 0x0, 0x7, 0x21dd964cfba54855)\n";
    let p = text::parse(&t, src).unwrap();
    assert_eq!(text::format(&t, &p), src);
}

#[test]
fn every_argument_form_round_trips() {
    let t = target();
    let src = "r0 = open(&(0x20000000)='./file0\\x00', 0x42, 0x0)\n\
               pipe(&(0x20000040)={<r1=>0xffffffffffffffff, 0xffffffffffffffff})\n\
               write(r1, &(0x20000080)=\"00ff10\", 0x3)\n\
               read(r0, &(0x200000c0)=\"\"/16, 0x10)\n\
               writev(r0, &(0x20000100)=[{&(0x20000200)='hi', 0x2}, {0x0, 0x0}], 0x2)\n\
               sendmsg(0xffffffffffffff9c, &(0x20000300)={&(0x20000400)={0x1, 'a\\n\\t\\'\\\\\\x00'}, @name=[0x1, 0x2], \"0102\", 'x'}, 0x0)\n\
               close(r0)\n";
    let p = text::parse(&t, src).unwrap();
    validate::validate(&t, &p).unwrap();
    assert_eq!(text::format(&t, &p), src);
}

#[test]
fn program_errors_give_line_and_column() {
    let t = target();
    let cases = [
        ("close(r0)\n", "1:7: `r0` is not defined by an earlier call"),
        ("nosuch(0x1)\n", "1:1: unknown or disabled call `nosuch`"),
        (
            "close(0x1, 0x2)\n",
            "1:1: `close` takes 1 arguments, found 2",
        ),
        (
            "\nclose(0x1\n",
            "2:10: expected `,` or `)`, found end of line",
        ),
        (
            "r0 = pipe(0x0)\nclose(r0)\n",
            "2:7: `r0` is not defined by an earlier call",
        ),
        (
            "write(0x1, &(0x0)=\"0g\", 0x1)\n",
            "1:20: expected hex digits",
        ),
        (
            "sendmsg(0x0, &(0x0)={0x0, @nope=0x1}, 0x0)\n",
            "1:27: `addrs` has no option `nope`",
        ),
    ];
    for (src, want) in cases {
        let err = text::parse(&t, src).unwrap_err().to_string();
        assert!(err.starts_with(want), "{src:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn lengths_follow_what_they_measure() {
    let t = target();
    let ct = ChoiceTable::new(&t, &(0..t.syscalls.len()).collect::<Vec<_>>());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for _ in 0..200 {
        let p = generate(&t, &ct, &mut rng, 6);
        for c in &p.calls {
            let meta = &t.syscalls[c.meta];
            if meta.name == "write" {
                let (
                    kfuzz_prog::prog::Arg::Ptr {
                        pointee: Some(d), ..
                    },
                    kfuzz_prog::prog::Arg::Int(n),
                ) = (&c.args[1], &c.args[2])
                else {
                    continue;
                };
                let kfuzz_prog::prog::Arg::Data(d) = &**d else {
                    panic!()
                };
                assert_eq!(*n, d.len() as u64);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_and_mutated_programs_are_valid_round_trip_and_encode_deterministically(seed in any::<u64>(), ncalls in 1usize..12) {
        let t = target();
        let ct = ChoiceTable::new(&t, &(0..t.syscalls.len()).collect::<Vec<_>>());
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let p = generate(&t, &ct, &mut rng, ncalls);
        let corpus = vec![generate(&t, &ct, &mut rng, 4)];
        let m = mutate::mutate(&t, &ct, &mut rng, &p, &corpus);
        for prog in [&p, &m] {
            prop_assert!(validate::validate(&t, prog).is_ok(), "{:?}", validate::validate(&t, prog));
            let s = text::format(&t, prog);
            let back = text::parse(&t, &s).map_err(|e| TestCaseError::fail(format!("{e}\n{s}")))?;
            prop_assert_eq!(text::format(&t, &back), s.clone());
            prop_assert_eq!(exec::encode(&t, prog), exec::encode(&t, &back));
            let a = postcard_bytes(&exec::encode(&t, prog));
            let b = postcard_bytes(&exec::encode(&t, prog));
            prop_assert_eq!(a, b);
        }
    }
}

fn postcard_bytes(p: &kfuzz_wire::ExecProg) -> Vec<u8> {
    let mut v = Vec::new();
    kfuzz_wire::write_msg(&mut v, p).unwrap();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Damaged program text gives an error, never a panic; what parses prints back stably.
    #[test]
    fn damaged_program_text_never_panics(cut in 0usize..400, insert in "[ -~]{0,6}") {
        let t = target();
        let src = "r0 = open(&(0x20000000)='./file0\\x00', 0x42, 0x0)\npipe(&(0x20000040)={<r1=>0xffffffffffffffff, 0x0})\n\
                   writev(r0, &(0x20000100)=[{&(0x20000200)='hi', 0x2}], 0x1)\n\
                   sendmsg(r1, &(0x20000300)={0x0, @big=0x5, \"0102\", 'x'}, 0x0)\n";
        let cut = cut.min(src.len());
        let cut = (0..=cut).rev().find(|i| src.is_char_boundary(*i)).unwrap_or(0);
        let damaged = format!("{}{}{}", &src[..cut], insert, &src[cut..]);
        if let Ok(p) = text::parse(&t, &damaged) {
            let printed = text::format(&t, &p);
            let again = text::parse(&t, &printed).map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
            prop_assert_eq!(text::format(&t, &again), printed);
        }
    }

    /// Damaged description text gives an error or a target, never a panic.
    #[test]
    fn damaged_descriptions_never_panic(cut in 0usize..1500, insert in "[ -~\n\t]{0,6}") {
        let cut = cut.min(DESCRIPTIONS.len());
        let damaged = format!("{}{}{}", &DESCRIPTIONS[..cut], insert, &DESCRIPTIONS[cut..]);
        let files = [DescriptionFile { name: "d.txt".into(), text: damaged }];
        if let Ok(nodes) = parse_files(&files) {
            let _ = compile(&nodes, &HashMap::new(), &HashMap::new());
        }
    }
}

#[test]
fn minimization_tries_unrelated_calls_at_once_then_producers_one_by_one_halving_what_fails() {
    use kfuzz_prog::minimize::{needed_calls, removal_chunks, remove_calls};
    let t = target();
    let src = "r0 = open(&(0x20000000)='./file0\\x00', 0x42, 0x0)\n\
               pipe(&(0x20000040)={<r1=>0xffffffffffffffff, 0xffffffffffffffff})\n\
               r2 = shmget(0x5, 0x2000, 0x200, &(0x20001000/0x2000)=nil)\n\
               write(r1, &(0x20000080)=\"00ff10\", 0x3)\n\
               close(r0)\n\
               shmat(r2, &(0x20001000/0x2000)=nil, 0x1000)\n";
    let p = text::parse(&t, src).unwrap();
    // Keeping the write needs the pipe that made its fd, and nothing else.
    assert_eq!(needed_calls(&t, &p, &[3]), vec![1, 3]);
    // Keeping shmat needs shmget.
    assert_eq!(needed_calls(&t, &p, &[5]), vec![2, 5]);
    assert_eq!(needed_calls(&t, &p, &[3, 5]), vec![1, 2, 3, 5]);

    let mut c = removal_chunks(&t, &p, &[3]);
    // First every call the write does not need, latest first, in one go; then the pipe.
    assert_eq!(c.next_chunk(), Some(vec![5, 4, 2, 0]));
    // Cannot go as a whole: its halves, then the pipe.
    c.failed(vec![5, 4, 2, 0]);
    assert_eq!(c.next_chunk(), Some(vec![5, 4]));
    assert_eq!(c.next_chunk(), Some(vec![2, 0]));
    c.failed(vec![2, 0]);
    assert_eq!(c.next_chunk(), Some(vec![2]));
    c.failed(vec![2]);
    assert_eq!(c.next_chunk(), Some(vec![0]));
    assert_eq!(c.next_chunk(), Some(vec![1]));
    assert!(c.is_empty());
    assert_eq!(c.next_chunk(), None);

    // Removing a group at once leaves a valid program; uses of what it made fall back to
    // plain values.
    let mut q = p.clone();
    remove_calls(&t, &mut q, &[2, 0]);
    validate::validate(&t, &q).unwrap();
    assert_eq!(
        text::format(&t, &q),
        "pipe(&(0x20000040)={<r0=>0xffffffffffffffff, 0xffffffffffffffff})\n\
         write(r0, &(0x20000080)=\"00ff10\", 0x3)\n\
         close(0xffffffffffffffff)\n\
         shmat(0xffffffffffffffff, &(0x20001000/0x2000)=nil, 0x1000)\n"
    );
    // Nothing to drop when every call is kept.
    assert!(removal_chunks(&t, &p, &[0, 1, 2, 3, 4, 5]).is_empty());
}
