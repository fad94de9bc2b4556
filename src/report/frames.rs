//! Frames: the patterns that find them in a report (instruction pointer lines, call trace
//! headers, frame lines), their canonical names (syscall prefixes off), and how a format picks
//! one among those left after skipping — the first, or for stalls and hung tasks a
//! representative one deeper in the stack.

use std::sync::LazyLock;

use regex::Regex;

/// A pattern in the report formats' shorthand, compiled: `{{FUNC}}` captures a function name
/// (followed by `+0x…`, `.isra…` or a decoded ` (file.c:123`), `{{PC}}` is a `[<address>]`, `{{ADDR}}` a hex address,
/// `{{SRC}}` captures `file.c:123`, `{{TASK}}` is a task's `comm:pid` (anything, lazily).
pub fn pattern(src: &str) -> Regex {
    // Every pattern is a constant of ours, checked by the tests; a bad one must still not take
    // the fuzzer down, so it matches nothing.
    Regex::new(&expand(src))
        .or_else(|_| Regex::new("$^"))
        .unwrap_or_else(|_| unreachable!("the empty pattern compiles"))
}

/// A pattern in the formats' shorthand, in regex syntax.
pub fn expand(src: &str) -> String {
    src.replace("{{ADDR}}", "0x[0-9a-f]+")
        .replace("{{PC}}", r"\[<?(?:0x)?[0-9a-f]+>?\]")
        // `func+0x1a/0x40`, `func.isra.0+…`, or as decode_stacktrace.sh prints it,
        // `func (mm/slub.c:123)`.
        .replace(
            "{{FUNC}}",
            r"([a-zA-Z0-9_]+)(?:\.|\+| \([a-zA-Z0-9_/.-]+\.[a-zA-Z]+:[0-9])",
        )
        .replace("{{SRC}}", r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)")
        .replace("{{TASK}}", r"[\s\S]{0,100}?")
}

/// The line holding the faulting instruction pointer (x86 `RIP:`, powerpc `NIP`, arm `pc :`).
pub const RIP_LINE: &str = r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))";

/// The header of a call trace.
pub const CALL_TRACE: &str = r"(?:Call (?:T|t)race:)|(?:Backtrace:)";

/// The last line of riscv's register dump, after which a stack follows with no header.
const RISCV_REGS_END: &str = r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}";

/// Lines that start a stack trace (and so end the one before). riscv's stays last: its stack
/// may be absent without the report being damaged.
pub static STACK_STARTS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"Call (?:T|t)race",
        r"Allocated:",
        r"Allocated by task [0-9]+:",
        r"Freed:",
        r"Freed by task [0-9]+:",
        // `backtrace:` of kmemleak (with its crc), but not lockdep's `stack backtrace:`.
        r"[^k] backtrace(?: \(crc [[:xdigit:]]*\))?:",
        r"Backtrace:",
        r"Uninit was stored to memory at",
        RISCV_REGS_END,
    ]
    .into_iter()
    .map(pattern)
    .collect()
});

/// A line that is one frame (the function is the capture).
pub static FRAME_LINES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        pattern(r"^ *(?:{{PC}} ){0,2}{{FUNC}}"),
        // arm: `[<pc>] (callee) from [<pc>] (caller+0x…)`; both names count.
        pattern(r"^ *{{PC}} \(([a-zA-Z0-9_.]+)\) from {{PC}} \({{FUNC}}"),
    ]
});

/// A fault-injection stack mixed into the report: what follows can't be trusted.
pub static INJECTED_FAULT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x")
});

/// Syscall entry prefixes: `__x64_sys_read`, `__do_sys_read` and `SyS_read` all name `read`'s
/// entry, whatever the arch or kernel version. The shortest stripped form is the canonical one.
const SYSCALL_PREFIXES: &[&str] = &[
    "SYSC_",
    "SyS_",
    "sys_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_",
    "__se_sys_",
    "__do_sys_",
    "compat_SYSC_",
    "compat_SyS_",
    "ksys_",
];

/// `__x64_sys_read` → `sys_read`: one prefix off, the shortest result.
pub fn canonical(frame: &str) -> &str {
    SYSCALL_PREFIXES
        .iter()
        .map(|p| frame.strip_prefix(p).unwrap_or(frame))
        .min_by_key(|f| f.len())
        .unwrap_or(frame)
}

/// Every way one syscall prefix can come off a frame (for alternative titles).
pub fn prefix_variants(frame: &str) -> impl Iterator<Item = (usize, &str)> {
    SYSCALL_PREFIXES
        .iter()
        .enumerate()
        .map(move |(i, p)| (i, frame.strip_prefix(p).unwrap_or(frame)))
}

pub const PREFIX_COUNT: usize = SYSCALL_PREFIXES.len();

/// How a format picks its function among the frames left after skipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The first one.
    First,
    /// A stall loops somewhere below an entry point: name the frame just above the first
    /// dispatching function (syscall entry, workqueue, timer, file operation, …).
    Stall,
    /// A hung task waits on somebody else: group waits on RCU and on rtnl, else skip the
    /// waiting primitives.
    Hang,
}

/// Frames below which a stall's representative frame is found.
const STALL_ANCHORS: &[&str] = &[
    "process_one_work",
    "do_syscall_",
    "do_fast_syscall_",
    "sysenter_dispatch",
    "tracesys_phase2",
    "el0_svc_handler",
    "invoke_syscall",
    "ret_fast_syscall",
    "netif_receive_skb",
    "do_softirq",
    "call_timer_fn",
    "_run_timers",
    "run_timer_softirq",
    "hrtimer_run",
    "run_ksoftirqd",
    "smpboot_thread_fn",
    "^kthread$",
    "start_secondary",
    "cpu_startup_entry",
    "ret_from_fork",
    "vfs_write",
    "vfs_read",
    "vfs_iter_read",
    "vfs_iter_write",
    "do_iter_read",
    "do_iter_write",
    "call_read_iter",
    "call_write_iter",
    "new_sync_read",
    "new_sync_write",
    "vfs_ioctl",
    "ksys_ioctl",
    "compat_ioctl",
    "compat_sys_ioctl",
    "blkdev_driver_ioctl",
    "blkdev_ioctl",
    "do_iter_readv_writev",
    "^call_mmap",
    "mmap_region",
    "do_mmap",
    "do_dentry_open",
    "vfs_open",
    "^sock_sendmsg",
    "^sock_recvmsg",
    "^sock_release",
    "^__sock_release",
    "^setsockopt$",
    "kernel_setsockopt",
    "sock_common_setsockopt",
    "^listen$",
    "kernel_listen",
    "sk_common_release",
    "^sock_mmap",
    "^accept$",
    "kernel_accept",
    "^sock_do_ioctl",
    "^sock_ioctl",
    "^compat_sock_ioctl",
    "^nfnetlink_rcv_msg",
    "^rtnetlink_rcv_msg",
    "^netlink_dump",
    "^(sys_)?(socketpair|connect|ioctl)",
    "__do_fault",
    "do_page_fault",
    "^page_fault$",
    "__fput",
    "task_work_run",
    "exit_to_usermode",
    "smp_call_function",
    "tasklet_action",
    "tasklet_hi_action",
];

static STALL_ANCHOR: LazyLock<Regex> = LazyLock::new(|| pattern(&STALL_ANCHORS.join("|")));

/// Waits a hung task is grouped by, and the name the group gets (`None`: the frame's own).
const HANG_GROUPS: &[(&str, Option<&str>)] = &[
    ("rtnl_lock", None),
    ("synchronize_rcu", Some("synchronize_rcu")),
    ("synchronize_srcu", Some("synchronize_rcu")),
    ("synchronize_net", Some("synchronize_rcu")),
    ("synchronize_sched", Some("synchronize_rcu")),
];

/// Parts of names of the primitives a hung task waits in.
const HANG_WAITS: &[&str] = &[
    "sched",
    "_lock",
    "_slowlock",
    "down",
    "rwsem",
    "completion",
    "kthread",
    "wait",
    "synchronize",
    "context_switch",
    "__switch_to",
    "cancel_delayed_work",
    "rcu_barrier",
];

/// The picked frame (canonical form) and its index, or `None` when nothing fits.
pub fn pick(how: Pick, frames: &[String]) -> Option<(String, usize)> {
    let canon: Vec<&str> = frames.iter().map(|f| canonical(f)).collect();
    match how {
        Pick::First => canon.first().map(|f| (f.to_string(), 0)),
        Pick::Stall => {
            let mut prev = (*canon.first()?, 0);
            for (i, f) in canon.iter().enumerate() {
                if STALL_ANCHOR.is_match(f) {
                    if f.contains("smp_call_function") {
                        return Some(("smp_call_function".to_string(), i));
                    }
                    return Some((prev.0.to_string(), prev.1));
                }
                prev = (f, i);
            }
            None
        }
        Pick::Hang => {
            for (i, f) in canon.iter().enumerate() {
                // The groups are tried in order for each frame, as one set.
                for (wait, name) in HANG_GROUPS {
                    if f.contains(wait) {
                        return Some((name.unwrap_or(f).to_string(), i));
                    }
                }
            }
            canon
                .iter()
                .enumerate()
                .find(|(_, f)| !HANG_WAITS.iter().any(|w| f.contains(w)))
                .map(|(i, f)| (f.to_string(), i))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_patterns_compile() {
        let warn_rip = format!("(?:{RIP_LINE}|--- interrupt: [0-9]+ at {{{{FUNC}}}})");
        for p in [RIP_LINE, CALL_TRACE, RISCV_REGS_END, warn_rip.as_str()] {
            assert!(Regex::new(&expand(p)).is_ok(), "{p}");
        }
        assert!(pattern(RIP_LINE).is_match("RIP: 0010:foo_bar+0x1/0x2"));
    }

    #[test]
    fn every_stall_anchor_compiles() {
        for a in STALL_ANCHORS {
            assert!(Regex::new(a).is_ok(), "{a}");
        }
    }

    #[test]
    fn syscall_prefixes_come_off() {
        assert_eq!(canonical("__x64_sys_read"), "sys_read");
        assert_eq!(canonical("__do_sys_read"), "read");
        assert_eq!(canonical("SyS_read"), "read");
        assert_eq!(canonical("shm_lock"), "shm_lock");
    }

    #[test]
    fn a_stall_is_named_above_its_entry_point() {
        let frames: Vec<String> = ["loop_a", "loop_b", "tty_write", "vfs_write", "ksys_write"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick(Pick::Stall, &frames), Some(("tty_write".into(), 2)));
    }

    #[test]
    fn hung_tasks_waiting_on_rcu_group_together() {
        let frames: Vec<String> = ["schedule", "synchronize_srcu", "foo_release"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pick(Pick::Hang, &frames),
            Some(("synchronize_rcu".into(), 1))
        );
        let frames: Vec<String> = ["schedule", "rwsem_down_read_slowpath", "foo_read"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick(Pick::Hang, &frames), Some(("foo_read".into(), 2)));
    }
}
