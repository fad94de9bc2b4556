//! The syzlang parser and the target compiler never panic, whatever the description text.
#![no_main]
use std::collections::HashMap;

use kfuzz_prog::target::{compile, parse_files, DescriptionFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let files = [DescriptionFile { name: "fuzz.txt".into(), text: text.into() }];
    if let Ok(nodes) = parse_files(&files) {
        let numbers: HashMap<String, u64> = [("read", 0), ("write", 1), ("open", 2), ("close", 3)].iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let _ = compile(&nodes, &HashMap::new(), &numbers);
    }
});
