//! Struct layouts as the C compiler makes them: the structs of
//! `tests/fixtures/descriptions/layout.txt`, filled with distinct values, are encoded by kfuzz
//! and built by gcc from the kernel's uapi headers (or plain C twins); the bytes and sizes
//! must be the same. Skipped with a line saying so when gcc is missing.

use std::collections::HashMap;
use std::path::Path;

use kfuzz_prog::prog::Arg;
use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_wire::{CopyValue, ExecArg};
use rand::SeedableRng;

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/ip.h>
#include <linux/eventpoll.h>
#include <linux/sem.h>

struct bits { uint16_t a:3, b:7, c:6; uint32_t d:20, e:12; uint8_t f; };
struct mix_inner { uint32_t p; uint8_t q; };
union mix_union { uint32_t x; uint64_t y; };
struct mix {
	uint8_t a; uint16_t b; struct mix_inner c; uint8_t d[3]; union mix_union e;
	uint8_t f; uint16_t g; uint32_t h;
} __attribute__((aligned(16)));
struct sized { uint8_t a; uint32_t b; uint8_t pad[7]; } __attribute__((packed));

static void dump(const char *name, const void *p, size_t n) {
	printf("%s", name);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", ((const unsigned char *)p)[i]);
	printf("\n");
}

int main(void) {
	struct iphdr ip;
	memset(&ip, 0, sizeof(ip));
	ip.ihl = 5; ip.version = 4; ip.tos = 0x11; ip.tot_len = htons(0x2233);
	ip.id = htons(0x4455); ip.frag_off = htons(0x6677); ip.ttl = 0x88; ip.protocol = 0x99;
	ip.check = 0xaabb; ip.saddr = htonl(0x01020304); ip.daddr = htonl(0x05060708);
	dump("iphdr_fx", &ip, sizeof(ip));

	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = 0x11223344; ev.data = 0x5566778899aabbccull;
	dump("epoll_event_fx", &ev, sizeof(ev));

	struct sembuf sb = {0x102, 0x304, 0x506};
	dump("sembuf_fx", &sb, sizeof(sb));

	struct bits b;
	memset(&b, 0, sizeof(b));
	b.a = 5; b.b = 0x55; b.c = 0x2a; b.d = 0xabcde; b.e = 0x123; b.f = 0x7f;
	dump("bits_fx", &b, sizeof(b));

	struct mix m;
	memset(&m, 0, sizeof(m));
	m.a = 0x11; m.b = 0x2233; m.c.p = 0x11223344; m.c.q = 0x55;
	memset(m.d, 0x44, 3); m.e.x = 0x66;
	m.f = offsetof(struct mix, e); m.g = 3; m.h = sizeof(m);
	dump("mix_fx", &m, sizeof(m));

	struct sized s;
	memset(&s, 0, sizeof(s));
	s.a = 1; s.b = 2;
	dump("sized_fx", &s, sizeof(s));
	return 0;
}
"#;

fn target() -> Target {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/descriptions/layout.txt");
    let text = std::fs::read_to_string(&path).expect("read layout.txt");
    let nodes = parse_files(&[DescriptionFile {
        name: "layout.txt".into(),
        text,
    }])
    .expect("layout.txt parses");
    let numbers: HashMap<String, u64> = [("write".to_string(), 1)].into();
    let t = compile(&nodes, &HashMap::new(), &numbers);
    assert!(t.disabled.is_empty(), "{:?}", t.disabled);
    t
}

/// gcc's bytes for each struct, by name.
fn c_bytes() -> Option<HashMap<String, Vec<u8>>> {
    let dir = tempfile::tempdir().ok()?;
    let src = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&src, C_PROGRAM).ok()?;
    let ok = std::process::Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .ok()?
        .success();
    assert!(ok, "gcc failed on the layout program");
    let out = std::process::Command::new(&exe).output().expect("run it");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?.to_string();
                let bytes = w.map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
                Some((name, bytes))
            })
            .collect(),
    )
}

/// kfuzz's bytes for the struct behind `write$NAME`'s pointer, and the length argument.
fn kfuzz_bytes(t: &Target, name: &str) -> (Vec<u8>, u64) {
    let call = format!("write${name}");
    let id = t.syscall(&call).expect("the call").id;
    let ct = kfuzz_prog::gen::ChoiceTable::new(t, &[id]);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let p = kfuzz_prog::gen::generate(t, &ct, &mut rng, 1);
    let c = &p.calls[0];
    let Arg::Int(n) = c.args[2] else {
        panic!("{call}: no length")
    };
    let enc = kfuzz_prog::exec::encode(t, &p);
    let ExecArg::Const(base) = enc.calls[0].args[1] else {
        panic!("{call}: no pointer")
    };
    let mut out = vec![0u8; n as usize];
    for ci in &enc.calls[0].copyin {
        let off = (ci.addr - base) as usize;
        match &ci.value {
            CopyValue::Int {
                size,
                big_endian,
                val,
            } => {
                let bytes = val.to_le_bytes();
                let mut v: Vec<u8> = bytes[..*size as usize].to_vec();
                if *big_endian {
                    v.reverse();
                }
                out[off..off + v.len()].copy_from_slice(&v);
            }
            CopyValue::Bytes(b) => out[off..off + b.len()].copy_from_slice(b),
            CopyValue::Var { .. } => panic!("{call}: no resources here"),
        }
    }
    (out, n)
}

#[test]
fn structs_are_laid_out_as_gcc_lays_out_the_same_types() {
    let t = target();
    let Some(c) = c_bytes() else {
        eprintln!("gcc is not available: skipping the layout comparison");
        return;
    };
    for name in [
        "iphdr_fx",
        "epoll_event_fx",
        "sembuf_fx",
        "bits_fx",
        "mix_fx",
        "sized_fx",
    ] {
        let want = &c[name];
        let (got, len) = kfuzz_bytes(&t, name);
        assert_eq!(len, want.len() as u64, "{name}: size");
        assert_eq!(&got, want, "{name}: bytes");
    }
}
