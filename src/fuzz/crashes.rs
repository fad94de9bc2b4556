//! The fuzzer's crashes: a VM's console checked after each program, a crash recorded in its
//! directory (the log with the programs that ran), and new titles reproduced on a VM of their own.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mix::WorkKind;
use super::{Fuzzer, VmInner};
use crate::crash_dir::CrashDir;
use crate::report::{self, CrashReport};
use crate::shell::Shell;
use crate::vm::monitor::Verdict;
use crate::vm::Vm;

impl Fuzzer {
    /// Looks for a report in the console since the last look (the crash monitor's policy);
    /// records it. Returns true when a crash was recorded.
    pub(super) fn check_console(&self, inner: &mut VmInner) -> bool {
        let VmInner { vm, monitor } = inner;
        match monitor.check(vm, None) {
            Verdict::Crash(r) => {
                self.record_crash(vm, &r);
                true
            }
            Verdict::NoCrash | Verdict::Flooded => false,
        }
    }

    /// The console tail with each `kfuzz: executing program <id>` line followed by that
    /// program's text, as syzkaller's logs show them.
    fn expand_log(&self, console: &str) -> String {
        let recent = self
            .recent
            .lock()
            .map(|r| r.iter().cloned().collect::<HashMap<u64, String>>())
            .unwrap_or_default();
        let mut out = String::with_capacity(console.len() * 2);
        for line in console.lines() {
            out.push_str(line);
            out.push('\n');
            let id = report::program_marker(line).map(|(id, _)| id);
            if let Some(text) = id.and_then(|id| recent.get(&id)) {
                out.push_str(text);
            }
        }
        out
    }

    pub(super) fn record_crash(&self, vm: &Vm, r: &CrashReport) {
        let log = self.expand_log(&vm.console().tail_text());
        let dir = CrashDir::for_title(&self.opts.workdir.join("crashes"), &r.title);
        match dir.save(r, self.opts.symbols.as_deref(), &log) {
            Ok(new) => {
                let path = dir.path();
                self.stats.crashes.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = self.state.lock() {
                    *s.crash_titles.entry(r.title.clone()).or_default() += 1;
                }
                if new {
                    if self.shell.is_term() {
                        eprint!("\r\x1b[2K");
                    }
                    self.shell.note(
                        "Crash",
                        format!("{} (vm{}, {})", r.title, vm.index, path.display()),
                    );
                    self.shell.json(&serde_json::json!({"reason": "crash", "title": r.title, "kind": r.kind, "dir": path}));
                    let hang = r.kind.made_up_title().is_some();
                    if self.opts.reproduce && !hang {
                        if let Ok(mut q) = self.repro_queue.lock() {
                            q.push_back((dir.clone(), r.title.clone()));
                        }
                    }
                }
            }
            Err(e) => self.fail(format!("cannot save crash {:?}: {e:#}", r.title)),
        }
    }

    /// The reproducer thread: each new crash title in turn, on a VM of its own (under
    /// `<work>/repro/`), until the run stops.
    pub(super) fn reproducer(self: Arc<Self>) {
        let mut spec = self.opts.spec.clone();
        spec.work_dir = spec.work_dir.join("repro");
        let quiet = Shell::new(crate::shell::Verbosity::Quiet, self.shell.format);
        while !self.stop.load(Ordering::SeqCst) {
            let next = self.repro_queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some((dir, title)) = next else {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            };
            let log = dir.first_log().unwrap_or_default();
            let started = Instant::now();
            self.live.set_reproducing(Some(&title));
            let r = crate::repro::reproduce_into(
                &self.opts.target,
                spec.clone(),
                &log,
                &title,
                self.opts.sandbox,
                &dir,
                &quiet,
                Some(&self.stop),
            );
            self.mix.executed(WorkKind::Repro, started.elapsed());
            self.live.set_reproducing(None);
            if self.shell.is_term() {
                eprint!("\r\x1b[2K");
            }
            match r {
                Ok(Some(s)) => {
                    self.shell.note("Reproduced", s.line());
                    self.shell.json(
                        &serde_json::json!({"reason": "repro", "reproduced": true, "result": s}),
                    );
                }
                Ok(None) => self
                    .shell
                    .note("Repro", format!("{title:?} did not reproduce")),
                Err(e) if self.stop.load(Ordering::SeqCst) => {
                    self.shell.verbose("Repro", format!("{title:?}: {e:#}"));
                }
                Err(e) => self.shell.warn(format!("reproducing {title:?}: {e:#}")),
            }
        }
    }
}
