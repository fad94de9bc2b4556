//! `kfuzz execprog PROG… [--procs N] [--threaded] [--collide] [--repeat N] [--sandbox S]
//! [--cover FILE]`: run program files by hand in a VM and see what each call did.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use kfuzz_prog::{exec, text};
use kfuzz_wire::{ExecOpts, ExecResult};

use super::run::SandboxArg;
use super::syscalls::TargetArgs;
use crate::crash_dir::CrashDir;
use crate::report;
use crate::shell::Shell;
use crate::vm::monitor::{CrashMonitor, Verdict};
use crate::vm::{Accel, Vm};

/// Run program files (syzkaller text format) in a VM and print each call's result
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Program files
    #[arg(required = true)]
    pub programs: Vec<PathBuf>,
    /// Programs run at once
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub procs: usize,
    /// Run each call in a thread of its own (a blocking call is left behind)
    #[arg(long)]
    pub threaded: bool,
    /// Run each program a second time with pairs of calls racing
    #[arg(long)]
    pub collide: bool,
    /// Run the programs N times; 0 loops until a crash or Ctrl-C
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u64,
    #[arg(long, value_enum, default_value_t = SandboxArg::None)]
    pub sandbox: SandboxArg,
    /// Write the kernel PCs the programs covered to FILE (hex, one per line)
    #[arg(long, value_name = "FILE")]
    pub cover: Option<PathBuf>,
    /// Where a crash is saved (default: kfuzz.toml's fuzz.workdir)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub guest: super::boot::GuestArgs,
}

/// Base (KVM) timeouts, scaled under TCG, as in `kfuzz run`.
const PROG_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_millis(50);

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<i32> {
    if let Some(cover) = &args.cover {
        crate::fsutil::ensure_not_an_input(
            "--cover",
            cover,
            args.programs.iter().map(|p| p.as_path()),
        )?;
    }
    let l = args.target.load(shell)?;
    let t = &l.loaded.target;
    let mut progs = Vec::new();
    for path in &args.programs {
        let src = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let p = text::parse(t, &src).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        let lines: Vec<String> = text::format(t, &p).lines().map(String::from).collect();
        progs.push((path.clone(), exec::encode(t, &p), lines));
    }
    let kernel = crate::vm::boot::kernel_from_build(&l.tree.build_dir())?;
    let work = l.tree.work_dir();
    let guest = args.guest.prepare(shell, &l.tree, &l.manifest)?;
    let accel = Accel::detect_and_tell(shell);
    let scale = accel.timeout_scale();
    let kernel_path = kernel.clone();
    let spec = guest.spec(&l.manifest.vm, kernel, work.join("execprog"), accel);
    let workdir = match &args.workdir {
        Some(d) => std::path::absolute(d)?,
        None => l.tree.root.join(&l.manifest.fuzz.workdir),
    };
    let opts = ExecOpts {
        sandbox: args.sandbox.into(),
        full_signal: true,
        timeout_ms: (PROG_TIMEOUT * scale).as_millis() as u64,
        call_timeout_ms: (CALL_TIMEOUT * scale).as_millis() as u64,
        threaded: args.threaded || args.collide,
        collide: args.collide,
        comparisons: false,
        fresh: false,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    crate::vm::reaper::on_interrupt(move || s.store(true, Ordering::SeqCst));
    let (mut vm, hs, took) = Vm::start_ready(&spec, 0, |w| shell.warn(w))?;
    shell.status(
        "Ready",
        format!(
            "vm0: linux {} {} in {:.1}s",
            hs.release,
            if vm.restored {
                "restored from a snapshot"
            } else {
                "booted"
            },
            took.as_secs_f64()
        ),
    );
    let procs = vm.procs(args.procs.clamp(1, 32))?;
    // (program index, run) pairs; with --repeat 0 refilled as they are taken.
    let queue: Mutex<VecDeque<(usize, u64)>> = Mutex::new(VecDeque::new());
    let fill = |q: &mut VecDeque<(usize, u64)>, run: u64| {
        q.extend((0..progs.len()).map(|i| (i, run)));
    };
    if let Ok(mut q) = queue.lock() {
        for run in 0..args.repeat.max(1) {
            fill(&mut q, run);
        }
    }
    let state = Mutex::new(Session {
        kernel: kernel_path,
        monitor: CrashMonitor::new(&vm),
        vm,
        crash: None,
        cover: HashSet::new(),
        next_run: args.repeat.max(1),
        next_id: 0,
    });
    std::thread::scope(|scope| {
        for proc in procs {
            let (queue, state, progs, opts, stop, workdir) =
                (&queue, &state, &progs, &opts, &stop, &workdir);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let next = queue.lock().ok().and_then(|mut q| {
                    if q.is_empty() && args.repeat == 0 {
                        let run = state.lock().map(|mut s| {
                            s.next_run += 1;
                            s.next_run - 1
                        });
                        fill(&mut q, run.unwrap_or(0));
                    }
                    q.pop_front()
                });
                let Some((i, run)) = next else { return };
                let (path, encoded, lines) = &progs[i];
                let id = state
                    .lock()
                    .map(|mut s| {
                        s.next_id += 1;
                        s.next_id
                    })
                    .unwrap_or(0);
                let res = proc.exec(id, encoded, opts);
                let Ok(mut st) = state.lock() else { return };
                match &res {
                    Ok(r) => {
                        print_result(shell, path, run, proc.index, lines, r);
                        st.cover.extend(r.new_pcs.iter().copied());
                    }
                    Err(e) => shell.warn(format!("{}: {e:#}", path.display())),
                }
                let program = lines.join("\n");
                let broken = res.as_ref().err().map(|e| format!("{e:#}"));
                if st.look_for_crash(broken.as_deref(), id, &program, workdir, shell) {
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
            });
        }
    });
    let st = state
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a proc thread panicked"))?;
    if let Some(path) = &args.cover {
        let mut pcs: Vec<u64> = st.cover.iter().copied().collect();
        pcs.sort_unstable();
        let text: String = pcs.iter().map(|pc| format!("{pc:#x}\n")).collect();
        crate::fsutil::write_atomic(path, text.as_bytes())?;
        shell.status(
            "Wrote",
            format!("{} covered PCs to {}", pcs.len(), path.display()),
        );
    }
    let crashed = st.crash.is_some();
    st.vm.shutdown();
    Ok(if crashed { 1 } else { 0 })
}

struct Session {
    vm: Vm,
    /// The booted kernel, whose vmlinux symbolizes a saved report.
    kernel: PathBuf,
    monitor: CrashMonitor,
    crash: Option<String>,
    cover: HashSet<u64>,
    next_run: u64,
    next_id: u64,
}

impl Session {
    /// Asks the crash monitor about the console (`broken`: the program got no answer); saves
    /// and prints a crash. True when the session must end.
    fn look_for_crash(
        &mut self,
        broken: Option<&str>,
        id: u64,
        program: &str,
        workdir: &std::path::Path,
        shell: &Shell,
    ) -> bool {
        let r = match self.monitor.check(&mut self.vm, broken) {
            Verdict::Crash(r) => r,
            Verdict::NoCrash => return false,
            Verdict::Flooded => {
                shell.warn(format!(
                    "the guest printed faster than its console is kept (its output: {})",
                    self.vm.console_log().display()
                ));
                return true;
            }
        };
        let log: String = self
            .vm
            .console()
            .tail_text()
            .lines()
            .flat_map(|l| {
                let ours = report::program_marker(l).is_some_and(|(i, _)| i == id);
                let extra = ours.then(|| program.to_string());
                std::iter::once(l.to_string()).chain(extra)
            })
            .map(|l| l + "\n")
            .collect();
        let dir = CrashDir::for_title(&workdir.join("crashes"), &r.title);
        // Loaded once a crash is there: saved reports get their source lines.
        let symbols = crate::kernel::symbols::load_for(&self.kernel, shell);
        match dir.save(&r, symbols.as_deref(), &log) {
            Ok(_) => {
                shell.note("Crash", format!("{} ({})", r.title, dir.path().display()));
                shell.json(&serde_json::json!({"reason": "crash", "title": r.title, "kind": r.kind, "dir": dir.path()}));
            }
            Err(e) => shell.warn(format!("cannot save crash {:?}: {e:#}", r.title)),
        }
        self.crash = Some(r.title);
        true
    }
}

fn print_result(
    shell: &Shell,
    path: &std::path::Path,
    run: u64,
    proc: u32,
    lines: &[String],
    r: &ExecResult,
) {
    shell.status(
        "Executed",
        format!(
            "{} (run {}, proc {proc}){}",
            path.display(),
            run + 1,
            if r.hanged { ": hanged, killed" } else { "" }
        ),
    );
    let mut calls = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let c = r.calls.get(i).cloned().unwrap_or_default();
        let outcome = if !c.executed {
            "not finished".to_string()
        } else if c.errno != 0 {
            format!(
                "= -1 ({})",
                std::io::Error::from_raw_os_error(c.errno)
                    .to_string()
                    .replace(&format!(" (os error {})", c.errno), "")
            )
        } else {
            format!("= {:#x}", c.ret)
        };
        shell.println(format!("  #{i} {line}\n       {outcome}, {} PCs", c.cover));
        calls.push(serde_json::json!({"call": line, "executed": c.executed, "ret": c.ret, "errno": c.errno, "cover": c.cover, "signal": c.signal.len()}));
    }
    shell.json(&serde_json::json!({"reason": "executed", "file": path, "run": run + 1, "proc": proc, "hanged": r.hanged, "calls": calls}));
}
