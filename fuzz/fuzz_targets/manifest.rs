//! kfuzz.toml parsing (`Manifest::parse`, what `Manifest::load` runs on the file) never panics, and
//! errors always point inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = kfuzz::manifest::Manifest::parse(text, std::path::Path::new("kfuzz.toml")) {
        assert!(
            e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
            "error at line {}",
            e.line
        );
        assert!(e.column >= 1, "error at column {}", e.column);
    }
});
