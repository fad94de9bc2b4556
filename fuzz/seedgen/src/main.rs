//! Writes the generated seeds the fuzz targets start from: programs generated from kfuzz's own
//! descriptions (for `program`) and frames of every message kind (for `wire`). Deterministic, so
//! running it again rewrites the same files. Run from `fuzz/`: `cargo run --manifest-path
//! seedgen/Cargo.toml`.

use std::path::Path;

use kfuzz_prog::gen::{generate, ChoiceTable};
use kfuzz_wire::*;
use rand::{rngs::SmallRng, SeedableRng};

#[path = "../../common/linux_target.rs"]
#[allow(dead_code)]
mod linux_target;

const PROGRAMS: usize = 40;

fn main() -> std::io::Result<()> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let target = linux_target::load(&linux_target::default_dir());
    let all: Vec<_> = (0..target.syscalls.len()).collect();
    let ct = ChoiceTable::new(&target, &all);
    let mut rng = SmallRng::seed_from_u64(15);
    let dir = seeds.join("program");
    std::fs::create_dir_all(&dir)?;
    let mut progs = Vec::new();
    for i in 0..PROGRAMS {
        let p = generate(&target, &ct, &mut rng, 2 + i % 6);
        std::fs::write(
            dir.join(format!("gen-{i:02}.txt")),
            kfuzz_prog::text::format(&target, &p),
        )?;
        progs.push(p);
    }

    let dir = seeds.join("wire");
    std::fs::create_dir_all(&dir)?;
    let opts = ExecOpts::new(5000, 1000);
    let host = [
        HostMsg::Command {
            argv: vec!["uname".into(), "-r".into()],
            timeout_ms: 1000,
        },
        HostMsg::CoverageProbe,
        HostMsg::Exec {
            id: 7,
            proc: 1,
            prog: kfuzz_prog::exec::encode(&target, &progs[5]),
            opts,
        },
        HostMsg::RawLoop { millis: 100 },
        HostMsg::WriteFile {
            path: "/repro".into(),
            data: b"\x7fELF".to_vec(),
            mode: 0o755,
        },
        HostMsg::CheckSupport(vec![
            SupportCheck::Syscall { nr: 2 },
            SupportCheck::Path {
                path: "/dev/kvm".into(),
            },
            SupportCheck::Socket {
                domain: 1,
                ty: 1,
                proto: 0,
            },
        ]),
        HostMsg::Shutdown,
    ];
    let guest = [
        GuestMsg::Handshake(Handshake {
            protocol: PROTOCOL_VERSION,
            release: "6.12.117".into(),
            cpus: 2,
            memory_kib: 1 << 20,
            features: Features {
                kcov: true,
                kasan: true,
                ..Features::default()
            },
        }),
        GuestMsg::CommandDone {
            status: Some(0),
            signal: None,
            timed_out: false,
            stdout: b"6.12.117\n".to_vec(),
            stderr: Vec::new(),
        },
        GuestMsg::CoverageProbe(Ok(ProbeResult {
            distinct_pcs: 120,
            total_pcs: 300,
            syscalls: vec!["getppid".into()],
        })),
        GuestMsg::CoverageProbe(Err("no kcov".into())),
        GuestMsg::ExecDone {
            proc: 1,
            result: ExecResult {
                calls: vec![CallResult {
                    executed: true,
                    ret: -1,
                    errno: 22,
                    signal: vec![3, 4],
                    cover: 2,
                    comps: vec![(1, 2)],
                }],
                new_pcs: vec![0xffff_ffff_8100_0000],
                hanged: false,
                timing: ExecTiming {
                    setup_us: 10,
                    calls_us: 20,
                    teardown_us: 5,
                    ..Default::default()
                },
            },
        },
        GuestMsg::RawLoopDone {
            iterations: 1000,
            millis: 100,
            kcov: true,
        },
        GuestMsg::Support(vec![
            Support::Yes,
            Support::NoSyscall,
            Support::NoPath,
            Support::NoFamily,
            Support::Unknown("killed".into()),
        ]),
        GuestMsg::Error("cannot fork".into()),
    ];
    // One frame per file, then all frames of one direction in one file (a conversation). The
    // first byte picks the direction (even: guest → host, odd: host → guest).
    let frames = |dir: u8, msgs: &mut dyn Iterator<Item = Vec<u8>>| -> Vec<u8> {
        let mut out = vec![dir];
        for m in msgs {
            out.extend(m);
        }
        out
    };
    let enc = |m: &dyn Fn(&mut Vec<u8>) -> Result<(), WireError>| -> Vec<u8> {
        let mut buf = Vec::new();
        m(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        buf
    };
    let host_frames: Vec<Vec<u8>> = host.iter().map(|m| enc(&|b| write_msg(b, m))).collect();
    let guest_frames: Vec<Vec<u8>> = guest.iter().map(|m| enc(&|b| write_msg(b, m))).collect();
    for (i, f) in host_frames.iter().enumerate() {
        std::fs::write(
            dir.join(format!("host-{i}.bin")),
            frames(1, &mut std::iter::once(f.clone())),
        )?;
    }
    for (i, f) in guest_frames.iter().enumerate() {
        std::fs::write(
            dir.join(format!("guest-{i}.bin")),
            frames(0, &mut std::iter::once(f.clone())),
        )?;
    }
    std::fs::write(
        dir.join("host-all.bin"),
        frames(1, &mut host_frames.into_iter()),
    )?;
    std::fs::write(
        dir.join("guest-all.bin"),
        frames(0, &mut guest_frames.into_iter()),
    )?;
    Ok(())
}
