//! The syzlang parser, the constant-requirement scan and the target compiler never panic,
//! whatever the description text; errors point inside the text.
#![no_main]
use kfuzz_prog::target::{const_requirements, parse_files, DescriptionFile};
use libfuzzer_sys::fuzz_target;

#[path = "../common/linux_target.rs"]
#[allow(dead_code)]
mod linux_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = [DescriptionFile {
        name: "fuzz.txt".into(),
        text: text.into(),
    }];
    match parse_files(&files) {
        Ok(nodes) => {
            let _ = const_requirements(&nodes);
            let _ = linux_target::compile_made_up(&nodes);
        }
        Err(e) => {
            let lines = text.lines().count().max(1) + 1;
            assert!(
                e.pos.line >= 1 && e.pos.line <= lines,
                "error outside the text: {e}"
            );
        }
    }
});
