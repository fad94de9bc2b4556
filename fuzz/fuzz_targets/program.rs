//! The program text parser never panics, and what it accepts prints back to canonical text that
//! parses to the same calls and prints the same again. Programs are typed against kfuzz's own
//! `descriptions/linux` (made-up constants), so the parser meets structs, unions, arrays,
//! resources and pointers as in real use.
#![no_main]
use std::sync::OnceLock;

use kfuzz_prog::target::Target;
use kfuzz_prog::text;
use libfuzzer_sys::fuzz_target;

#[path = "../common/linux_target.rs"]
mod linux_target;

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let t = linux_target::load(&linux_target::default_dir());
        assert!(
            t.syscalls.len() > 50,
            "descriptions/linux compiled to {} calls",
            t.syscalls.len()
        );
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let t = target();
    if let Ok(p) = text::parse(t, src) {
        // The printed text is canonical (unused variables dropped, the rest renumbered): parsing
        // it gives the same calls, and printing those gives the same text.
        let printed = text::format(t, &p);
        let again = match text::parse(t, &printed) {
            Ok(again) => again,
            Err(e) => panic!("printed program does not parse: {e}\n{printed}"),
        };
        assert_eq!(text::format(t, &again), printed, "printing is not stable");
        assert_eq!(again.calls.len(), p.calls.len());
        for (a, b) in again.calls.iter().zip(&p.calls) {
            assert_eq!(a.meta, b.meta, "calls differ after printing:\n{printed}");
        }
    }
});
