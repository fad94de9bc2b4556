//! Fragment, `.config` and Kconfig parsing, merging, verification and `depends on` evaluation
//! never panic; a merged config satisfies its requests and a `.config` survives being written out.
#![no_main]
use kfuzz::kernel::kconfig::{
    dependency_values, eval_expr, find_definitions, parse_assignment, verify, DotConfig,
    KconfigFragment,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = DotConfig::parse(text);
    let written = config.to_text();
    assert_eq!(
        DotConfig::parse(&written).to_text(),
        written,
        "a .config reads back as written"
    );
    if let Ok(frag) = KconfigFragment::parse("fuzz.config", text) {
        let mut merged = config.clone();
        merged.merge(&frag.requests);
        assert!(
            verify(&frag.requests, &merged).is_empty(),
            "a merged config satisfies its requests"
        );
    }
    // The same text as a Kconfig file: look up the symbols it defines and evaluate their deps.
    let mut symbols: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("config" | "menuconfig"))
                .then(|| w.next())
                .flatten()
        })
        .collect();
    symbols.dedup();
    for symbol in symbols.iter().take(8) {
        for def in find_definitions("Kconfig", text, symbol) {
            assert!(def.line >= 1 && def.line <= text.lines().count());
            for dep in &def.depends_on {
                let _ = eval_expr(dep, &config);
                let _ = dependency_values(dep, &config);
            }
        }
    }
    for line in text.lines() {
        let _ = parse_assignment(line);
        let _ = eval_expr(line, &config);
        let _ = dependency_values(line, &config);
    }
});
