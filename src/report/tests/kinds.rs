//! One short report per crash kind, in the kernel's wording, and the title syzkaller gives it.

use super::super::CrashKind;
use super::first;

/// One short report per kind, in the kernel's wording, and the title syzkaller gives it.
#[test]
fn each_kind_gets_its_title() {
    let trace = |frames: &[&str]| -> Vec<String> {
        let mut v = vec!["Call Trace:".to_string(), " <TASK>".to_string()];
        v.extend(frames.iter().map(|f| format!(" {f}+0x10/0x20")));
        v.push(" do_syscall_64+0x6e/0xc5".into());
        v.push(" </TASK>".into());
        v
    };
    let cases: Vec<(Vec<String>, &str, CrashKind)> = vec![
        (
            [
                "BUG: KASAN: slab-use-after-free in shm_lock+0x1/0x2",
                "Read of size 4 at addr ffff88800abc0000 by task a/1",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["shm_lock", "ksys_shmctl"]))
            .collect(),
            "KASAN: slab-use-after-free Read in shm_lock",
            CrashKind::Kasan,
        ),
        (
            ["BUG: KMSAN: uninit-value in foo_parse+0x1/0x2"]
                .iter()
                .map(|s| s.to_string())
                .chain(
                    [
                        " foo_parse+0x1/0x2",
                        " foo_ioctl+0x1/0x2",
                        "",
                        "Uninit was created at:",
                        " __kmalloc+0x1/0x2",
                        " foo_new+0x1/0x2",
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                )
                .collect(),
            "KMSAN: uninit-value in foo_parse",
            CrashKind::Kmsan,
        ),
        (
            vec!["BUG: KCSAN: data-race in foo_read / foo_write".into()],
            "KCSAN: data-race in foo_read / foo_write",
            CrashKind::Kcsan,
        ),
        (
            vec![
                "BUG: KFENCE: use-after-free read in foo_read+0x1/0x2".into(),
                "".into(),
                "Use-after-free read at 0xffff88807ffd7000 (in kfence-#12):".into(),
                " foo_read+0x1/0x2".into(),
                " foo_ioctl+0x1/0x2".into(),
            ],
            "KFENCE: use-after-free read in foo_read",
            CrashKind::Kfence,
        ),
        (
            ["UBSAN: shift-out-of-bounds in net/foo.c:12:3"]
                .iter()
                .map(|s| s.to_string())
                .chain(trace(&[
                    "dump_stack_lvl",
                    "__ubsan_handle_shift_out_of_bounds",
                    "foo_shift",
                ]))
                .collect(),
            "UBSAN: shift-out-of-bounds in foo_shift",
            CrashKind::Ubsan,
        ),
        (
            [
                "WARNING: CPU: 0 PID: 1 at net/foo.c:12 foo_check+0x1/0x2",
                "RIP: 0010:foo_check+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_ioctl"]))
            .collect(),
            "WARNING in foo_check",
            CrashKind::Warning,
        ),
        (
            vec!["BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!".into()],
            "BUG: workqueue lockup",
            CrashKind::Bug,
        ),
        (
            [
                "kernel BUG at fs/foo.c:12!",
                "Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN",
                "RIP: 0010:foo_bug+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_ioctl"]))
            .collect(),
            "kernel BUG in foo_bug",
            CrashKind::KernelBug,
        ),
        (
            [
                "general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] SMP KASAN",
                "RIP: 0010:foo_deref+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_ioctl"]))
            .collect(),
            "general protection fault in foo_deref",
            CrashKind::Gpf,
        ),
        (
            [
                "BUG: unable to handle page fault for address: ffffffffffffffff",
                "#PF: supervisor read access in kernel mode",
                "Oops: 0000 [#1] PREEMPT SMP",
                "RIP: 0010:foo_deref+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_ioctl"]))
            .collect(),
            "BUG: unable to handle kernel paging request in foo_deref",
            CrashKind::PageFault,
        ),
        (
            [
                "BUG: kernel NULL pointer dereference, address: 0000000000000000",
                "#PF: supervisor read access in kernel mode",
                "RIP: 0010:foo_deref+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_ioctl"]))
            .collect(),
            "BUG: unable to handle kernel NULL pointer dereference in foo_deref",
            CrashKind::NullDeref,
        ),
        (
            [
                "WARNING: possible circular locking dependency detected",
                "a/1 is trying to acquire lock:",
                "ffff888000000000 (&foo->lock){+.+.}-{3:3}, at: foo_second+0x1/0x2",
                "",
                "but task is already holding lock:",
                "ffff888000000001 (&bar->lock){+.+.}-{3:3}, at: foo_first+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_second"]))
            .collect(),
            "possible deadlock in foo_second",
            CrashKind::Lockdep,
        ),
        (
            ["BUG: sleeping function called from invalid context at mm/slab.h:12"]
                .iter()
                .map(|s| s.to_string())
                .chain(trace(&["dump_stack_lvl", "__might_resched", "foo_sleepy"]))
                .collect(),
            "BUG: sleeping function called from invalid context in foo_sleepy",
            CrashKind::AtomicSleep,
        ),
        (
            [
                "BUG: using smp_processor_id() in preemptible [00000000] code: a/1",
                "caller is foo_cpu+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["dump_stack_lvl", "check_preemption_disabled", "foo_cpu"]))
            .collect(),
            "BUG: using smp_processor_id() in preemptible code in foo_cpu",
            CrashKind::Preemptible,
        ),
        (
            ["INFO: task a:1 blocked for more than 143 seconds."]
                .iter()
                .map(|s| s.to_string())
                .chain(trace(&[
                    "__schedule",
                    "schedule",
                    "rwsem_down_write_slowpath",
                    "foo_flush_all",
                ]))
                .collect(),
            "INFO: task hung in foo_flush_all",
            CrashKind::TaskHung,
        ),
        (
            [
                "rcu: INFO: rcu_preempt self-detected stall on CPU",
                " <IRQ>",
                " rcu_sched_clock_irq+0x1/0x2",
                " asm_sysvec_apic_timer_interrupt+0x1a/0x20",
                " </IRQ>",
                "RIP: 0010:foo_spin+0x1/0x2",
                " foo_loop+0x1/0x2",
                " foo_ioctl+0x1/0x2",
                " __x64_sys_ioctl+0x1/0x2",
                " do_syscall_64+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "INFO: rcu detected stall in foo_ioctl",
            CrashKind::RcuStall,
        ),
        (
            [
                "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]",
                "RIP: 0010:foo_spin+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_loop", "foo_write", "vfs_write"]))
            .collect(),
            "BUG: soft lockup in foo_write",
            CrashKind::SoftLockup,
        ),
        (
            vec!["Kernel panic - not syncing: Hard LOCKUP".into()],
            "kernel panic: Hard LOCKUP",
            CrashKind::HardLockup,
        ),
        (
            [
                "usercopy: Kernel memory exposure attempt detected from SLUB object 'foo' (offset 0, size 64)!",
                "kernel BUG at mm/usercopy.c:102!",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["usercopy_abort", "__check_heap_object", "__check_object_size", "foo_read"]))
            .collect(),
            "BUG: bad usercopy in foo_read",
            CrashKind::Usercopy,
        ),
        (
            [
                "WARNING: CPU: 0 PID: 1 at lib/kobject.c:12 kobject_add_internal+0x1/0x2",
                "RIP: 0010:kobject_add_internal+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["kobject_add", "foo_register"]))
            .collect(),
            "WARNING: kobject bug in foo_register",
            CrashKind::Kobject,
        ),
        (
            [
                "WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0x1/0x2",
                "RIP: 0010:refcount_warn_saturate+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_put"]))
            .collect(),
            "WARNING: refcount bug in foo_put",
            CrashKind::Refcount,
        ),
        (
            ["kernel BUG at lib/list_debug.c:62!"]
                .iter()
                .map(|s| s.to_string())
                .chain(trace(&["__list_del_entry_valid_or_report", "foo_remove"]))
                .collect(),
            "BUG: corrupted list in foo_remove",
            CrashKind::ListCorruption,
        ),
        (
            [
                "BUG: memory leak",
                "unreferenced object 0xffff888000000000 (size 64):",
                "  comm \"a\", pid 1, jiffies 4294937296",
                "  backtrace (crc 0):",
                "    kmemleak_alloc+0x1/0x2",
                "    __kmalloc+0x1/0x2",
                "    foo_new+0x1/0x2",
                "    foo_ioctl+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "memory leak in foo_new",
            CrashKind::MemoryLeak,
        ),
        (
            [
                "BUG: TASK stack guard page was hit at ffffc90000a0fff8 (stack is ffffc90000a10000..ffffc90000a18000)",
                "Oops: stack guard page: 0000 [#1] PREEMPT SMP",
                "RIP: 0010:foo_recurse+0x1/0x2",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(trace(&["foo_recurse", "foo_ioctl", "__x64_sys_ioctl"]))
            .collect(),
            "BUG: stack guard page was hit in foo_ioctl",
            CrashKind::StackOverflow,
        ),
        (
            vec!["Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009".into()],
            "kernel panic: Attempted to kill init!",
            CrashKind::Panic,
        ),
        (
            ["Oops: divide error: 0000 [#1] PREEMPT SMP", "RIP: 0010:foo_div+0x1/0x2"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "divide error in foo_div",
            CrashKind::Oops,
        ),
    ];
    for (log, title, kind) in cases {
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        let (got, got_kind, _) = first(&log);
        assert_eq!(got, title);
        assert_eq!(got_kind, kind, "{title}");
    }
}
