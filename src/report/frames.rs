//! Which function a title names: reading frames out of a report, skipping the kernel's generic
//! machinery (sanitizer runtimes, printk, locking primitives, …) so the title lands on the code
//! that has the bug, and the special pickers for stalls and hung tasks. Never allocates more
//! than the report's own lines.

use std::sync::LazyLock;

use regex::Regex;

/// A pattern in the report formats' shorthand, compiled: `{{FUNC}}` captures a function name
/// (followed by `+0x…` or `.isra…`), `{{PC}}` is a `[<address>]`, `{{ADDR}}` a hex address,
/// `{{SRC}}` captures `file.c:123`, `{{TASK}}` is a task's `comm:pid` (anything, lazily).
pub fn pattern(src: &str) -> Regex {
    let expanded = src
        .replace("{{ADDR}}", "0x[0-9a-f]+")
        .replace("{{PC}}", r"\[<?(?:0x)?[0-9a-f]+>?\]")
        .replace("{{FUNC}}", r"([a-zA-Z0-9_]+)(?:\.|\+)")
        .replace("{{SRC}}", r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)")
        .replace("{{TASK}}", r"[\s\S]{0,100}?");
    match Regex::new(&expanded) {
        Ok(re) => re,
        // The patterns are ours and tested; a bad one must not take the fuzzer down.
        Err(_) => Regex::new("$^").unwrap_or_else(|_| unreachable!()),
    }
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

/// A named group of functions that are never the bug's home: the title moves to their caller.
pub struct SkipFamily {
    pub name: &'static str,
    /// Regexes matched anywhere in the function name.
    pub functions: &'static [&'static str],
}

pub const SKIP_FAMILIES: &[SkipFamily] = &[
    SkipFamily {
        name: "sanitizer runtime",
        functions: &[
            "__sanitizer",
            "__asan",
            "kasan",
            "hwasan",
            "__msan",
            "kmsan",
            "kcsan_setup_watchpoint",
            "check_memory_region",
            "check_heap_object",
            "check_object",
            "read_word_at_a_time",
            "(read|write)_once_.*nocheck",
            "print_address_description",
            "__fortify_report",
            "_indirect_thunk_",
            "perf_trace",
        ],
    },
    SkipFamily {
        name: "report and WARN/BUG machinery",
        functions: &[
            "panic",
            "invalid_op",
            "report_bug",
            "fixup_bug",
            "print_report",
            "print_usage_bug",
            "do_error",
            "_trap$|do_trap",
            "show_stack",
            "dump_stack",
            "walk_stack",
            "dump_backtrace",
            "warn_slowpath",
            "warn_alloc",
            "warn_bogus",
            "__warn",
            "program_check_exception",
            "program_check_common",
            "print_tainted",
            "^get_taint$",
            "assertfail",
            "hex_dump_to_buffer",
            "print_hex_dump",
            "stack_trace_consume_entry",
            "arch_stack_walk",
            "stack_trace_save",
            "print_unlock",
            "imbalance_bug",
        ],
    },
    SkipFamily {
        name: "printk and formatting",
        functions: &[
            "string",
            "pointer",
            "snprintf",
            "scnprintf",
            "kasprintf",
            "kvasprintf",
            "printk",
            "va_format",
            "dev_info",
            "dev_notice",
            "dev_warn",
            "dev_err",
            "dev_alert",
            "dev_crit",
            "dev_emerg",
        ],
    },
    SkipFamily {
        name: "allocators",
        functions: &[
            "alloc_page",
            "k?v?(?:m|z|c)alloc",
            "krealloc",
            "kmem_cache",
            "allocate_slab",
            "__alloc_frozen_pages_noprof",
            "slab_",
            "^kv?free$",
            "kfree_skb",
        ],
    },
    SkipFamily {
        name: "page cache",
        functions: &[
            "folio_(?:alloc|unlock)",
            "filemap_alloc_folio",
            "__filemap_get_folio",
            "find_or_create_page",
            "do_read_cache_folio",
            "read_cache_page",
            "pagecache_get_page",
            "grab_cache_page_write_begin",
            "^(un)?lock_page",
            "xas_(?:start|load|find)",
            "find_lock_entries",
            "truncate_inode_pages_range",
            "mark_buffer_dirty",
        ],
    },
    SkipFamily {
        name: "locking primitives",
        functions: &[
            "lockdep",
            "bh_enable",
            "bh_disable",
            "lock_acquire",
            "lock_release",
            "lock_class",
            "mark_lock",
            "(reacquire|mark)_held_locks",
            "raw_spin_rq",
            "spin_lock",
            "spin_trylock",
            "spin_unlock",
            "read_lock",
            "read_trylock",
            "write_lock",
            "write_trylock",
            "read_unlock",
            "write_unlock",
            "^down$",
            "down_read",
            "down_write",
            "down_read_trylock",
            "down_write_trylock",
            "down_trylock",
            "up_read",
            "up_write",
            "^mutex_",
            "^__mutex_",
            "^rt_mutex_",
            "owner_on_cpu",
            "osq_lock",
            "osq_unlock",
            "(trace|lockdep)_(hard|soft)irq",
        ],
    },
    SkipFamily {
        name: "might-sleep checks",
        functions: &[
            "__might_fault",
            "might_fault",
            "might_sleep",
            "__might_resched",
        ],
    },
    SkipFamily {
        name: "atomics and bit operations",
        functions: &[
            "atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
            "(set|clear|change|test)_bit",
        ],
    },
    SkipFamily {
        name: "reference counting",
        functions: &[
            "^refcount_",
            "^kref_",
            "ref_tracker",
            "^iput$",
            "^iput_final$",
            "^ihold$",
            "^put_device$",
            "fast_dput",
            "dput",
            "drop_nlink",
            "ida_free",
        ],
    },
    SkipFamily {
        name: "lists and trees",
        functions: &[
            "list_add",
            "list_del",
            "list_replace",
            "list_move",
            "list_splice",
            "^rb_",
            "^__rb_",
            "^klist_",
            "rhashtable_lookup",
        ],
    },
    SkipFamily {
        name: "memory and string helpers",
        functions: &[
            "memcpy",
            "memcmp",
            "memset",
            "memchr",
            "memmove",
            "memdup",
            "strcmp",
            "strncmp",
            "strcpy",
            "strlcpy",
            "strncpy",
            "strscpy",
            "strlen",
            "strstr",
            "strnstr",
            "strnlen",
            "strchr",
            "strdup",
            "strndup",
            "^crc\\d+",
            "crc_itu_t",
        ],
    },
    SkipFamily {
        name: "user copies",
        functions: &[
            "copy_to_user",
            "copy_from_user",
            "copy_to_iter",
            "copy_from_iter",
            "copy_page_to_iter",
            "copy_page_from_iter",
            "copy_folio_to_iter",
            "^copyin$",
            "^copyout$",
            "put_user",
            "get_user",
            "extract_(user|iter)_to_sg",
        ],
    },
    SkipFamily {
        name: "debug objects",
        functions: &[
            "debug_object",
            "timer_is_static_object",
            "work_is_static_object",
            "seqprop_assert",
        ],
    },
    SkipFamily {
        name: "work, timers and waiting",
        functions: &[
            "__wake_up",
            "del_timer",
            "flush_work",
            "__cancel_work_timer",
            "cancel_work_sync",
            "try_to_grab_pending",
            "flush_workqueue",
            "drain_workqueue",
            "destroy_workqueue",
            "queue_work",
            "finish_wait",
            "kthread_stop",
            "^complete$",
            "wait_for_completion",
            "insert_work",
            "__queue_delayed_work",
            "queue_delayed_work_on",
            "lock_timer_base",
            "__timer_delete_sync",
            "sk_stop_timer_sync",
            "__mod_timer",
            "cleanup_srcu_struct",
        ],
    },
    SkipFamily {
        name: "device model",
        functions: &[
            "kobject_",
            "add_uevent_var",
            "get_device_parent",
            "device_add",
            "device_del",
            "device_unregister",
            "device_destroy",
            "device_release",
            "devres_release_all",
            "hwrng_unregister",
            "i2c_del_adapter",
            "__unregister_client",
            "device_for_each_child",
            "rollback_registered",
            "unregister_netdev",
            "sysfs_remove",
            "device_remove_file",
            "tty_unregister_device",
            "dummy_urb_enqueue",
            "usb_kill_urb",
            "usb_kill_anchored_urbs",
            "usb_control_msg",
            "usb_hcd_submit_urb",
            "usb_submit_urb",
        ],
    },
    SkipFamily {
        name: "I/O accessors",
        functions: &[
            "readb$",
            "readw$",
            "readl$",
            "readq$",
            "writeb$",
            "writew$",
            "writel$",
            "writeq$",
            "logic_in",
            "logic_out",
        ],
    },
    SkipFamily {
        name: "arch fault entry",
        functions: &[
            "do_(kernel|translation)_fault",
            "do_mem_abort",
            "el1_abort",
            "el1h_64_sync(?:_handler)?",
            "__phys_addr",
        ],
    },
];

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

/// The regex of every skipped function, plus a format's own extra skips.
pub fn skip_regex(extra: &[&str]) -> Regex {
    let all: Vec<&str> = SKIP_FAMILIES
        .iter()
        .flat_map(|f| f.functions.iter().copied())
        .chain(extra.iter().copied())
        .collect();
    pattern(&all.join("|"))
}

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
    fn every_skip_pattern_compiles() {
        for family in SKIP_FAMILIES {
            for f in family.functions {
                assert!(Regex::new(f).is_ok(), "{}: {f}", family.name);
            }
        }
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
