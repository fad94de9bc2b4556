//! The crash monitor: the one place that decides, from a VM's console and from what the
//! executor's channel did, whether the guest crashed. `run`, `repro`, `regress`, `execprog` and
//! `bench` all ask it, so they agree on what a crash is, on the made-up crashes (lost connection,
//! no output), and on how long the kernel gets to finish printing a report.
//!
//! It reads the console only from where it last looked (a long run's console is never parsed
//! from the start again) and never waits longer than its scaled settle times.

use std::time::{Duration, Instant};

use super::Vm;
use crate::report::{self, CrashKind, CrashReport};

/// How long the kernel gets to finish a report once one has started, while the guest still
/// answers (a WARNING: the kernel goes on) and once the executor's channel broke (a panic: the
/// dump, then QEMU exits). Both are scaled like every guest timeout; a report whose end line
/// is there ends the wait at once.
const SETTLE_ALIVE: Duration = Duration::from_millis(700);
const SETTLE_DYING: Duration = Duration::from_millis(1500);

/// After a run's last program: the executor's answer travels on virtio and may overtake what
/// the kernel printed on the serial console meanwhile.
const LATE_LINES: Duration = Duration::from_millis(300);

/// What a look at the VM found.
#[derive(Debug)]
pub enum Verdict {
    /// No crash: the guest goes on.
    NoCrash,
    /// A crash: a report from the console, or a made-up one (`lost connection to test
    /// machine`, `no output from test machine`) when the guest stopped answering without one.
    Crash(CrashReport),
    /// The guest stopped answering while printing faster than the console is kept (a printk
    /// storm): no title, what printed it is in the console log.
    Flooded,
}

impl Verdict {
    pub fn crashed(&self) -> bool {
        !matches!(self, Verdict::NoCrash)
    }
}

/// The crash report made up when the guest stopped answering without printing one: `why` is
/// what the channel said.
pub fn made_up_report(kind: CrashKind, why: &str) -> CrashReport {
    CrashReport {
        title: kind
            .made_up_title()
            .unwrap_or("lost connection to test machine")
            .into(),
        kind,
        alt_titles: Vec::new(),
        frame: None,
        report: why.to_string(),
        line: 0,
        truncated: false,
        corrupted: false,
    }
}

/// Watches one VM's console from a position on.
#[derive(Debug, Clone)]
pub struct CrashMonitor {
    scan_from: u64,
}

impl CrashMonitor {
    /// Watches what the VM prints from now on.
    pub fn new(vm: &Vm) -> CrashMonitor {
        CrashMonitor {
            scan_from: vm.console().offset(),
        }
    }

    /// Watches the whole console, boot included.
    pub fn from_boot() -> CrashMonitor {
        CrashMonitor { scan_from: 0 }
    }

    /// Whether a report has started since the last look: no waiting, nothing consumed. For
    /// loops that stop running programs at the first sign of a crash.
    pub fn seen(&self, vm: &Vm) -> bool {
        !report::parse(&vm.console().since(self.scan_from).0).is_empty()
    }

    /// Looks after a program ran. `broken` is the executor channel's error when the program
    /// got no answer: the guest is going away or stuck, so a report is waited for, and without
    /// one it is a made-up crash.
    pub fn check(&mut self, vm: &mut Vm, broken: Option<&str>) -> Verdict {
        self.check_for(vm, broken, None)
    }

    /// `check` after the last program of a run, giving lines still on their way a moment.
    /// `wanted`: the title looked for, chosen when the console has several reports (a crash
    /// may come behind a WARNING the same program triggers).
    pub fn check_last(&mut self, vm: &mut Vm, broken: Option<&str>, wanted: &str) -> Verdict {
        std::thread::sleep(vm.scaled(LATE_LINES));
        self.check_for(vm, broken, Some(wanted))
    }

    fn check_for(&mut self, vm: &mut Vm, broken: Option<&str>, wanted: Option<&str>) -> Verdict {
        let (text, complete) = vm.console().since_lines(self.scan_from);
        if broken.is_none() && report::parse(&text).is_empty() {
            self.scan_from = complete;
            return Verdict::NoCrash;
        }
        self.settle(vm, broken.is_some());
        let (text, end) = vm.console().since(self.scan_from);
        self.scan_from = end;
        let mut reports = report::parse(&text);
        if !reports.is_empty() {
            let pick = reports
                .iter()
                .position(|r| Some(r.title.as_str()) == wanted)
                .unwrap_or(0);
            return Verdict::Crash(reports.swap_remove(pick));
        }
        match broken {
            None => Verdict::NoCrash,
            Some(_) if vm.console().flooded() => Verdict::Flooded,
            Some(why) => {
                let kind = if vm.exited() {
                    CrashKind::LostConnection
                } else {
                    CrashKind::NoOutput
                };
                Verdict::Crash(made_up_report(kind, why))
            }
        }
    }

    /// Waits until the report in the console is whole (its end line), QEMU exits, or the
    /// settle time passes.
    fn settle(&self, vm: &mut Vm, dying: bool) {
        let deadline = Instant::now() + vm.scaled(if dying { SETTLE_DYING } else { SETTLE_ALIVE });
        while Instant::now() < deadline && !vm.exited() {
            if report_is_whole(&vm.console().since(self.scan_from).0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // What QEMU had not yet handed over when the end line (or its exit) was seen.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Waits up to `timeout` for a crash report (LKDTM checks, `bench`): the report once it
    /// is whole, or None when none came (or QEMU exited without one).
    pub fn wait(&mut self, vm: &mut Vm, timeout: Duration) -> Option<CrashReport> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.seen(vm) || vm.exited() {
                return match self.check_for(vm, Some("the guest crashed"), None) {
                    Verdict::Crash(r) if r.line > 0 => Some(r),
                    _ => None,
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// A report is whole once the kernel printed its closing line.
fn report_is_whole(text: &str) -> bool {
    text.contains("---[ end trace")
        || text.contains("---[ end Kernel panic")
        || text.contains("Kernel Offset:")
}
