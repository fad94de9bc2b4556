//! Fragment and .config parsing, merging, verification and `depends on` evaluation never panic.
#![no_main]
use kfuzz::kernel::kconfig::{eval_expr, verify, DotConfig, KconfigFragment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = DotConfig::parse(text);
    if let Ok(frag) = KconfigFragment::parse("fuzz.config", text) {
        let mut merged = config.clone();
        merged.merge(&frag.requests);
        assert!(verify(&frag.requests, &merged).is_empty(), "a merged config satisfies its requests");
    }
    for line in text.lines() {
        let _ = eval_expr(line, &config);
    }
});
