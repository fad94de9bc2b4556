//! The report parser's stories: whole logs, titles of each kind, and the title moving past
//! each family of skipped functions to the caller.

use super::*;
use super::{frames, skip};

/// A console log of `tests/fixtures/reports/`.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_wanted_crash_counts_behind_another_report() {
    let first = fixture("fuzz-refcount-warning.log");
    let second = fixture("lkdtm-warning-message.log");
    let both = format!("{first}{second}");
    let t1 = crash_title(&first, None).unwrap();
    let t2 = crash_title(&second, None).unwrap();
    assert_ne!(t1, t2);
    assert_eq!(crash_title(&both, Some(&t2)).as_deref(), Some(t2.as_str()));
    assert_eq!(crash_title(&both, Some(&t1)).as_deref(), Some(t1.as_str()));
    // Another crash than the one looked for: the first report names the run.
    assert_eq!(
        crash_title(&both, Some("BUG: other")).as_deref(),
        Some(t1.as_str())
    );
    assert_eq!(crash_title(&fixture("no-crash.log"), Some(&t1)), None);
}

#[test]
fn a_bug_reported_while_booting_is_named() {
    assert_eq!(
        crash_title(&fixture("boot-kasan-wild-memory-access.log"), None).as_deref(),
        Some("KASAN: wild-memory-access Write in handle_edge_irq")
    );
    assert_eq!(crash_title(&fixture("no-crash.log"), None), None);
}

#[test]
fn the_echoed_command_line_is_no_report() {
    let log = "[    0.910529][    T0] Kernel command line: console=ttyS0 x=\"BUG: KASAN: no in f\"\n\
               [    0.923633][    T0] Unknown kernel command line parameters \"x=BUG: KASAN: no in f\", will be passed to user space.\n";
    assert!(parse(log).is_empty(), "{:?}", parse(log));
}

/// The title and kind of the first report in `log` (lines joined with `\n`).
fn first(log: &[&str]) -> (String, CrashKind, bool) {
    let reports = parse(&log.join("\n"));
    let r = reports
        .first()
        .unwrap_or_else(|| panic!("no report in {log:#?}"));
    (r.title.clone(), r.kind, r.corrupted)
}

/// A KASAN report whose bad access is in `callee`, called by `victim_caller`.
fn kasan_in(callee: &str) -> String {
    let (title, ..) = first(&[
        &format!("BUG: KASAN: slab-out-of-bounds in {callee}+0x1c/0x40"),
        "Read of size 8 at addr ffff888012345678 by task a/1",
        "",
        "CPU: 0 PID: 1 Comm: a Not tainted 6.12.0 #1",
        "Call Trace:",
        " <TASK>",
        &format!(" {callee}+0x1c/0x40"),
        " victim_caller+0x2d/0x60",
        " do_syscall_64+0x6e/0xc5",
        " </TASK>",
    ]);
    title
}

/// The title names the caller of a function of `family` (the family's name checks that the
/// function is in the family it claims).
fn skipped_in_family(family: &str, callee: &str) {
    let fam = skip::SKIP_FAMILIES
        .iter()
        .find(|f| f.name == family)
        .unwrap_or_else(|| panic!("no family {family}"));
    let re = frames::pattern(&fam.functions.join("|"));
    assert!(re.is_match(callee), "{callee} is not in {family}");
    assert_eq!(
        kasan_in(callee),
        "KASAN: slab-out-of-bounds Read in victim_caller",
        "{family}: {callee}"
    );
}

#[test]
fn an_ordinary_function_is_named_itself() {
    assert_eq!(
        kasan_in("shm_lock"),
        "KASAN: slab-out-of-bounds Read in shm_lock"
    );
}

#[test]
fn sanitizer_runtime_frames_are_skipped() {
    skipped_in_family("sanitizer runtime", "kasan_check_range");
}

#[test]
fn report_and_warn_machinery_is_skipped() {
    skipped_in_family("report and WARN/BUG machinery", "warn_slowpath_fmt");
}

#[test]
fn printk_and_formatting_are_skipped() {
    skipped_in_family("printk and formatting", "vsnprintf");
}

#[test]
fn allocators_are_skipped() {
    skipped_in_family("allocators", "__kmalloc");
}

#[test]
fn page_cache_helpers_are_skipped() {
    skipped_in_family("page cache", "filemap_alloc_folio");
}

#[test]
fn locking_primitives_are_skipped() {
    skipped_in_family("locking primitives", "_raw_spin_lock_irqsave");
}

#[test]
fn might_sleep_checks_are_skipped() {
    skipped_in_family("might-sleep checks", "__might_fault");
}

#[test]
fn atomics_and_bit_operations_are_skipped() {
    skipped_in_family("atomics and bit operations", "atomic_fetch_add_relaxed");
}

#[test]
fn reference_counting_is_skipped() {
    skipped_in_family("reference counting", "kref_get");
}

#[test]
fn list_and_tree_helpers_are_skipped() {
    skipped_in_family("lists and trees", "__list_add_valid_or_report");
}

#[test]
fn memory_and_string_helpers_are_skipped() {
    skipped_in_family("memory and string helpers", "memcpy");
}

#[test]
fn user_copies_are_skipped() {
    skipped_in_family("user copies", "_copy_to_user");
}

#[test]
fn debug_objects_are_skipped() {
    skipped_in_family("debug objects", "debug_object_activate");
}

#[test]
fn work_timer_and_wait_helpers_are_skipped() {
    skipped_in_family("work, timers and waiting", "__flush_work");
}

#[test]
fn device_model_teardown_is_skipped() {
    skipped_in_family("device model", "kobject_put");
}

#[test]
fn io_accessors_are_skipped() {
    skipped_in_family("I/O accessors", "__raw_readl");
}

#[test]
fn arch_fault_entry_is_skipped() {
    skipped_in_family("arch fault entry", "__phys_addr");
}

#[test]
fn every_skip_family_has_a_test() {
    let tested = [
        "sanitizer runtime",
        "report and WARN/BUG machinery",
        "printk and formatting",
        "allocators",
        "page cache",
        "locking primitives",
        "might-sleep checks",
        "atomics and bit operations",
        "reference counting",
        "lists and trees",
        "memory and string helpers",
        "user copies",
        "debug objects",
        "work, timers and waiting",
        "device model",
        "I/O accessors",
        "arch fault entry",
    ];
    for f in skip::SKIP_FAMILIES {
        assert!(tested.contains(&f.name), "no test for {}", f.name);
    }
}

#[test]
fn syscall_entry_prefixes_come_off_the_named_frame() {
    assert_eq!(
        kasan_in("__do_sys_victim"),
        "KASAN: slab-out-of-bounds Read in victim"
    );
    let r = &parse(
        &[
            "BUG: KASAN: use-after-free in __x64_sys_victim+0x1/0x2",
            "Write of size 1 at addr ffff888012345678 by task a/1",
            "Call Trace:",
            " __x64_sys_victim+0x1/0x2",
            " do_syscall_64+0x6e/0xc5",
        ]
        .join("\n"),
    )[0];
    assert_eq!(r.title, "KASAN: use-after-free Write in sys_victim");
    assert_eq!(r.frame.as_deref(), Some("sys_victim"));
    // The frame as printed is one of the alternative titles.
    assert!(r
        .alt_titles
        .contains(&"KASAN: use-after-free Write in __x64_sys_victim".to_string()));
    assert!(r
        .alt_titles
        .contains(&"bad-access in sys_victim".to_string()));
}

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

#[test]
fn a_report_without_frames_is_corrupted() {
    let (title, _, corrupted) = first(&[
        "WARNING: CPU: 0 PID: 1 at net/foo.c:12 foo_check+0x1/0x2",
        "Modules linked in:",
    ]);
    // The title's function comes from the stack, not from the WARNING line.
    assert_eq!(title, "WARNING in corrupted");
    assert!(corrupted);
}

#[test]
fn interleaved_output_of_another_task_stays_out_of_the_report() {
    let (title, ..) = first(&[
        "[   10.1][  T100] WARNING: CPU: 0 PID: 100 at net/foo.c:12 foo_check+0x1/0x2",
        "[   10.1][  T200] RIP: 0010:other_task+0x1/0x2",
        "[   10.1][  T100] RIP: 0010:foo_check+0x1/0x2",
        "[   10.1][  T100] Call Trace:",
        "[   10.1][  T200]  other_caller+0x1/0x2",
        "[   10.1][  T100]  foo_ioctl+0x1/0x2",
    ]);
    assert_eq!(title, "WARNING in foo_check");
}

#[test]
fn the_panic_after_a_report_is_part_of_it() {
    let log = [
        "WARNING: CPU: 0 PID: 1 at net/foo.c:12 foo_check+0x1/0x2",
        "RIP: 0010:foo_check+0x1/0x2",
        "Call Trace:",
        " foo_ioctl+0x1/0x2",
        "---[ end trace 0000000000000000 ]---",
        "Kernel panic - not syncing: panic_on_warn set ...",
    ]
    .join("\n");
    let reports = parse(&log);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(!reports[0].truncated);
    // Seen alone, the panic names a lost report.
    let (title, _, corrupted) = first(&["Kernel panic - not syncing: panic_on_warn set ..."]);
    assert_eq!(title, "kernel panic: panic_on_warn set");
    assert!(corrupted);
}

#[test]
fn a_huge_log_is_read_in_bounded_time() {
    let mut log = String::new();
    for i in 0..200_000 {
        log.push_str(&format!(
            "[ {i}.000000][  T1] WARNING: CPU: 0 PID: 1 at net/foo.c:{i} foo_check+0x1/0x2\n"
        ));
    }
    let started = std::time::Instant::now();
    let reports = parse(&log);
    assert!(reports.len() <= 64);
    // Long reports whose details never come: every format searches all of each.
    let mut log = String::new();
    for _ in 0..70 {
        log.push_str("[ 1.000000][  T1] BUG: KASAN: slab-out-of-bounds in f+0x1/0x2\n");
        for i in 0..5000 {
            log.push_str(&format!(
                "[ 1.000000][  T1]  filler_{i}+0x1/0x2 and more text\n"
            ));
        }
    }
    let reports = parse(&log);
    assert_eq!(reports.len(), 64);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_next_program_ends_a_report() {
    let log = [
        "[   10.1][  T100] WARNING: CPU: 0 PID: 100 at net/foo.c:12 foo_check+0x1/0x2",
        "[   10.1][  T100] RIP: 0010:foo_check+0x1/0x2",
        "[   10.1][  T100] Call Trace:",
        "[   10.1][  T100]  foo_ioctl+0x1/0x2",
        "[   10.2][  T100] kfuzz: executing program 8 on proc 0",
        "[   10.2][  T100] later chatter of the same task",
    ]
    .join("\n");
    let r = &parse(&log)[0];
    assert_eq!(r.title, "WARNING in foo_check");
    assert!(!r.report.contains("executing program"), "{}", r.report);
    assert!(!r.truncated);
}
