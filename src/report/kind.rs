//! What kind of crash a title names (`KASAN: … in f` → `Kasan`), and the titles of the two
//! crashes that have no report: the machine went silent, or stopped answering. Kinds are read
//! off finished titles only, so a title and its kind can never disagree.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashKind {
    Kasan,
    Kmsan,
    Kcsan,
    Kfence,
    Ubsan,
    Warning,
    /// A generic `BUG:` report.
    Bug,
    /// `kernel BUG at file:line` (a `BUG_ON`).
    KernelBug,
    Gpf,
    PageFault,
    NullDeref,
    Lockdep,
    /// A sleeping function called, or scheduling, in atomic context.
    AtomicSleep,
    /// A per-cpu accessor used with preemption enabled.
    Preemptible,
    TaskHung,
    RcuStall,
    SoftLockup,
    HardLockup,
    Usercopy,
    Kobject,
    Refcount,
    ListCorruption,
    MemoryLeak,
    StackOverflow,
    Panic,
    /// Any other oops: divide error, invalid opcode, double fault, an unexpected reboot, …
    Oops,
    /// The guest printed nothing for too long.
    NoOutput,
    /// The executor stopped answering (the VM died without a recognisable report).
    LostConnection,
}

/// Title prefixes (or words) → kind, tried in order: the dedicated formats before the broad ones.
const KIND_OF_TITLE: &[(&str, CrashKind)] = &[
    ("KASAN:", CrashKind::Kasan),
    ("KMSAN:", CrashKind::Kmsan),
    ("KCSAN:", CrashKind::Kcsan),
    ("KFENCE:", CrashKind::Kfence),
    ("UBSAN:", CrashKind::Ubsan),
    ("WARNING: bad usercopy", CrashKind::Usercopy),
    ("BUG: bad usercopy", CrashKind::Usercopy),
    ("WARNING: kobject bug", CrashKind::Kobject),
    ("WARNING: refcount bug", CrashKind::Refcount),
    ("BUG: corrupted list", CrashKind::ListCorruption),
    ("memory leak", CrashKind::MemoryLeak),
    ("BUG: stack guard page", CrashKind::StackOverflow),
    ("kernel stack overflow", CrashKind::StackOverflow),
    (
        "kernel panic: corrupted stack end",
        CrashKind::StackOverflow,
    ),
    ("kernel panic: stack is corrupted", CrashKind::StackOverflow),
    ("possible deadlock", CrashKind::Lockdep),
    ("inconsistent lock state", CrashKind::Lockdep),
    ("WARNING: suspicious RCU usage", CrashKind::Lockdep),
    ("INFO: suspicious RCU usage", CrashKind::Lockdep),
    ("WARNING: lock held when returning", CrashKind::Lockdep),
    ("BUG: lock held when returning", CrashKind::Lockdep),
    ("WARNING: locking bug", CrashKind::Lockdep),
    ("WARNING: bad unlock balance", CrashKind::Lockdep),
    ("BUG: bad unlock balance", CrashKind::Lockdep),
    ("WARNING: held lock freed", CrashKind::Lockdep),
    ("BUG: held lock freed", CrashKind::Lockdep),
    ("WARNING: still has locks held", CrashKind::Lockdep),
    ("BUG: still has locks held", CrashKind::Lockdep),
    ("WARNING: nested lock was not taken", CrashKind::Lockdep),
    ("WARNING: possible circular locking", CrashKind::Lockdep),
    (
        "INFO: trying to register non-static key",
        CrashKind::Lockdep,
    ),
    ("BUG: spinlock", CrashKind::Lockdep),
    ("BUG: rwlock", CrashKind::Lockdep),
    (
        "BUG: sleeping function called from invalid context",
        CrashKind::AtomicSleep,
    ),
    ("BUG: scheduling while atomic", CrashKind::AtomicSleep),
    ("INFO: task hung", CrashKind::TaskHung),
    ("INFO: task can't die", CrashKind::TaskHung),
    ("INFO: rcu detected stall", CrashKind::RcuStall),
    ("BUG: soft lockup", CrashKind::SoftLockup),
    (
        "BUG: unable to handle kernel NULL pointer dereference",
        CrashKind::NullDeref,
    ),
    (
        "BUG: unable to handle kernel paging request",
        CrashKind::PageFault,
    ),
    (
        "BUG: unable to handle kernel access to user memory",
        CrashKind::PageFault,
    ),
    ("general protection fault", CrashKind::Gpf),
    ("kernel BUG", CrashKind::KernelBug),
    ("BUG:", CrashKind::Bug),
    ("WARNING", CrashKind::Warning),
    ("kernel panic", CrashKind::Panic),
    ("panic:", CrashKind::Panic),
];

impl CrashKind {
    /// The kind of crash `title` (in syzkaller's scheme) names.
    pub fn of_title(title: &str) -> CrashKind {
        if let Some(kind) = CrashKind::made_up_kind(title) {
            return kind;
        }
        if title.contains(" in preemptible") {
            return CrashKind::Preemptible;
        }
        if title.contains("hard LOCKUP") || title.contains("Hard LOCKUP") {
            return CrashKind::HardLockup;
        }
        KIND_OF_TITLE
            .iter()
            .find(|(prefix, _)| title.starts_with(prefix))
            .map_or(CrashKind::Oops, |&(_, kind)| kind)
    }

    /// The title of a crash that has no console report, the same for every run so such crashes
    /// group together; `None` for kinds whose titles come from reports.
    pub fn made_up_title(self) -> Option<&'static str> {
        match self {
            CrashKind::LostConnection => Some("lost connection to test machine"),
            CrashKind::NoOutput => Some("no output from test machine"),
            _ => None,
        }
    }

    fn made_up_kind(title: &str) -> Option<CrashKind> {
        [CrashKind::LostConnection, CrashKind::NoOutput]
            .into_iter()
            .find(|k| k.made_up_title() == Some(title))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_titles_are_syzkallers_and_map_back_to_their_kind() {
        for kind in [CrashKind::LostConnection, CrashKind::NoOutput] {
            let title = kind.made_up_title().unwrap_or_default();
            assert!(title.ends_with("test machine"), "{title}");
            assert_eq!(CrashKind::of_title(title), kind);
        }
        assert_eq!(CrashKind::Kasan.made_up_title(), None);
    }

    #[test]
    fn each_title_family_has_its_kind() {
        let cases = [
            ("KASAN: use-after-free Read in f", CrashKind::Kasan),
            ("KMSAN: uninit-value in f", CrashKind::Kmsan),
            ("KCSAN: data-race in f / g", CrashKind::Kcsan),
            ("KFENCE: invalid free in f", CrashKind::Kfence),
            ("UBSAN: shift-out-of-bounds in f", CrashKind::Ubsan),
            ("WARNING in f", CrashKind::Warning),
            ("WARNING: ODEBUG bug in f", CrashKind::Warning),
            ("WARNING: bad usercopy in f", CrashKind::Usercopy),
            ("WARNING: kobject bug in f", CrashKind::Kobject),
            ("WARNING: refcount bug in f", CrashKind::Refcount),
            ("BUG: corrupted list in f", CrashKind::ListCorruption),
            ("memory leak in f", CrashKind::MemoryLeak),
            (
                "BUG: stack guard page was hit in f",
                CrashKind::StackOverflow,
            ),
            ("possible deadlock in f", CrashKind::Lockdep),
            ("WARNING: suspicious RCU usage in f", CrashKind::Lockdep),
            (
                "BUG: sleeping function called from invalid context in f",
                CrashKind::AtomicSleep,
            ),
            (
                "BUG: using smp_processor_id() in preemptible code in f",
                CrashKind::Preemptible,
            ),
            ("INFO: task hung in f", CrashKind::TaskHung),
            ("INFO: rcu detected stall in f", CrashKind::RcuStall),
            ("BUG: soft lockup in f", CrashKind::SoftLockup),
            ("kernel panic: Hard LOCKUP", CrashKind::HardLockup),
            ("general protection fault in f", CrashKind::Gpf),
            (
                "BUG: unable to handle kernel paging request in f",
                CrashKind::PageFault,
            ),
            (
                "BUG: unable to handle kernel NULL pointer dereference in f",
                CrashKind::NullDeref,
            ),
            ("kernel BUG in f", CrashKind::KernelBug),
            ("BUG: Bad page state in f", CrashKind::Bug),
            ("kernel panic: Attempted to kill init!", CrashKind::Panic),
            ("divide error in f", CrashKind::Oops),
        ];
        for (title, kind) in cases {
            assert_eq!(CrashKind::of_title(title), kind, "{title}");
        }
    }
}
