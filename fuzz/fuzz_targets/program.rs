//! The program text parser never panics, and what it accepts prints back to text that parses to
//! the same program.
#![no_main]
use std::collections::HashMap;
use std::sync::OnceLock;

use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_prog::text;
use libfuzzer_sys::fuzz_target;

const DESCRIPTIONS: &str = "resource fd[int32]: 0xffffffffffffffff\n\
open(file ptr[in, filename], flags flags[oflags], mode const[0]) fd\n\
oflags = 0x0, 0x1, 0x40\n\
read(fd fd, buf buffer[out], n len[buf])\n\
write(fd fd, buf ptr[in, s], n len[buf])\n\
s {\n\ta int32\n\tb array[int16, 0:4]\n\tu u\n}\n\
u [\n\tx int8\n\ty string\n] [varlen]\n\
mmap(addr vma, len len[addr], fd fd)\n";

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let files = [DescriptionFile { name: "t.txt".into(), text: DESCRIPTIONS.into() }];
        let nodes = parse_files(&files).expect("fuzz target descriptions parse");
        let numbers: HashMap<String, u64> = [("read", 0), ("write", 1), ("open", 2), ("mmap", 9)].iter().map(|(k, v)| (k.to_string(), *v)).collect();
        compile(&nodes, &HashMap::new(), &numbers)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let t = target();
    if let Ok(p) = text::parse(t, src) {
        let printed = text::format(t, &p);
        let again = text::parse(t, &printed).expect("printed programs parse");
        assert_eq!(text::format(t, &again), printed);
    }
});
