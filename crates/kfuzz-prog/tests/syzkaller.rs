//! syzkaller's own `sys/linux` descriptions, when `KFUZZ_SYZKALLER_DIR` points at a checkout
//! (or at its `sys/linux`): every file parses, and compiling with its `*.const` files disables
//! calls one by one, never the load. Prints the figures; skipped (with a line saying so) when the
//! variable is unset.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kfuzz_prog::target::{compile, parse_files, DescriptionFile};

fn sys_linux() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("KFUZZ_SYZKALLER_DIR")?);
    let sub = dir.join("sys/linux");
    Some(if sub.is_dir() { sub } else { dir })
}

/// `NAME = 123` and `NAME = amd64:123, arm:…` lines of the `*.const` files.
fn const_files(dir: &std::path::Path) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(dir).expect("read sys/linux") {
        let p = e.expect("dir entry").path();
        if !p.to_string_lossy().ends_with(".const") {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("read a const file");
        for line in text.lines() {
            let Some((name, vals)) = line.split_once('=') else {
                continue;
            };
            let v = vals
                .split(',')
                .map(str::trim)
                .find_map(|v| match v.split_once(':') {
                    Some(("amd64", v)) => Some(v.trim()),
                    Some(_) => None,
                    None => Some(v),
                });
            let parsed = v.and_then(|v| {
                if let Some(h) = v.strip_prefix("0x") {
                    u64::from_str_radix(h, 16).ok()
                } else if let Some(n) = v.strip_prefix('-') {
                    n.parse::<u64>().ok().map(u64::wrapping_neg)
                } else {
                    v.parse().ok()
                }
            });
            if let Some(v) = parsed {
                out.insert(name.trim().to_string(), v);
            }
        }
    }
    out
}

#[test]
fn syzkaller_sys_linux_loads_with_its_const_files() {
    let Some(dir) = sys_linux() else {
        eprintln!("KFUZZ_SYZKALLER_DIR is not set: skipping the syzkaller descriptions test");
        return;
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).expect("read sys/linux") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "txt") {
            files.push(DescriptionFile {
                name: p.display().to_string(),
                text: std::fs::read_to_string(&p).expect("read a description"),
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let t0 = std::time::Instant::now();
    let nodes = parse_files(&files).unwrap_or_else(|e| panic!("{e}"));
    let parsed = t0.elapsed();
    let consts = const_files(&dir);
    let numbers: HashMap<String, u64> = consts
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("__NR_")?.to_string(), *v)))
        .collect();
    let target = compile(&nodes, &consts, &numbers);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for d in &target.disabled {
        let msg = d.reason.splitn(4, ':').nth(3).unwrap_or(&d.reason).trim();
        let key: String = if std::env::var_os("KFUZZ_SYZKALLER_DETAIL").is_some() {
            msg.to_string()
        } else {
            msg.split('`')
                .enumerate()
                .map(|(i, p)| if i % 2 == 1 { "…" } else { p })
                .collect::<Vec<_>>()
                .join("`")
        };
        *reasons.entry(key).or_default() += 1;
    }
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    eprintln!(
        "{} files, {} calls: {} enabled, {} disabled (parse {:?}, total {:?})",
        files.len(),
        target.syscalls.len() + target.disabled.len(),
        target.syscalls.len(),
        target.disabled.len(),
        parsed,
        t0.elapsed()
    );
    if let Some(pat) = std::env::var_os("KFUZZ_SYZKALLER_SHOW") {
        let pat = pat.to_string_lossy().into_owned();
        for d in target
            .disabled
            .iter()
            .filter(|d| d.reason.contains(&pat))
            .take(5)
        {
            eprintln!("  {}: {}", d.name, d.reason);
        }
    }
    for (k, n) in top.iter().take(25) {
        eprintln!("{n:6}  {k}");
    }
    assert!(
        files.len() > 100,
        "expected syzkaller's ~220 files in {}",
        dir.display()
    );
    assert!(target.syscalls.len() > 1000, "too few calls enabled");

    // Every enabled call: generated programs print, read back to the same text, and encode.
    use rand::SeedableRng;
    let t1 = std::time::Instant::now();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut bad = Vec::new();
    let only = std::env::var("KFUZZ_SYZKALLER_ONLY").ok();
    for id in 0..target.syscalls.len() {
        if only
            .as_ref()
            .is_some_and(|o| !target.syscalls[id].name.contains(o.as_str()))
        {
            continue;
        }
        let started = std::time::Instant::now();
        if std::env::var_os("KFUZZ_SYZKALLER_TRACE").is_some() {
            eprintln!("{}", target.syscalls[id].name);
        }
        let ct = kfuzz_prog::gen::ChoiceTable::new(&target, &[id]);
        for _ in 0..3 {
            let p = kfuzz_prog::gen::generate(&target, &ct, &mut rng, 2);
            if only.is_some() {
                eprintln!("  generated in {:?}", started.elapsed());
            }
            let text = kfuzz_prog::text::format(&target, &p);
            if only.is_some() {
                eprintln!("  printed in {:?}: {} bytes", started.elapsed(), text.len());
            }
            match kfuzz_prog::text::parse(&target, &text) {
                Ok(back) => {
                    let again = kfuzz_prog::text::format(&target, &back);
                    if again != text {
                        bad.push(format!(
                            "{}: round trip changed\n{text}{again}",
                            target.syscalls[id].name
                        ));
                    }
                }
                Err(e) => bad.push(format!("{}: {e}\n{text}", target.syscalls[id].name)),
            }
            kfuzz_prog::exec::encode(&target, &p);
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            bad.push(format!(
                "{}: 3 programs took {:?}",
                target.syscalls[id].name,
                started.elapsed()
            ));
        }
    }
    eprintln!(
        "generated, printed, parsed and encoded 3 programs per call in {:?}",
        t1.elapsed()
    );
    for b in bad.iter().take(10) {
        eprintln!("{b}");
    }
    assert!(bad.is_empty(), "{} programs did not round-trip", bad.len());
}
