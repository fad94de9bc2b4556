//! Reports that start with `WARNING:` (WARN_ON and its dedicated formats — debug objects,
//! usercopy, kobject, refcount — and lockdep) and with `INFO:` (stalls, hung tasks, older
//! lockdep wording).

use super::{call_trace, warning_stack, Format, Oops, Pick, StackRule, Step};

/// lockdep's "the lock was taken at:" lines.
const AT_FUNC: &str = "at: (?:{{PC}} +)?{{FUNC}}";

pub static WARNING: Oops = Oops {
    header: "WARNING:",
    formats: &[
        Format {
            title: r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
            template: "WARNING: ODEBUG bug in {1}",
            // The users of debug objects are skipped too.
            stack: warning_stack(&[
                "debug_",
                "rcu",
                "hrtimer_",
                "timer_",
                "work_",
                "percpu_",
                "vunmap",
                "vfree",
                "__free_",
                "debug_check",
                "kobject_",
            ]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)",
            template: "WARNING: bad usercopy in {1}",
            stack: warning_stack(&["usercopy", "__check"]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)",
            template: "WARNING: kobject bug in {1}",
            stack: warning_stack(&["kobject_"]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
            template: "WARNING: proc registration bug in {1}",
            stack: warning_stack(&["proc_"]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)",
            template: "WARNING: refcount bug in {1}",
            stack: warning_stack(&["refcount", "kobject_"]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*kernel/locking/lockdep\.c.*lock_",
            template: "WARNING: locking bug in {1}",
            stack: warning_stack(&["lock_sock", "release_sock"]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: .*still has locks held!",
            detail: Some(r"WARNING: .*still has locks held!(?:.*\n)+?.*at: {{FUNC}}"),
            template: "WARNING: still has locks held in {1}",
            ..Format::NEW
        },
        Format {
            title: "WARNING: Nested lock was not taken",
            template: "WARNING: nested lock was not taken in {1}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: lock held when returning to user space",
            detail: Some(
                r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}",
            ),
            template: "WARNING: lock held when returning to user space in {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*mm/.*\.c.* k?.?malloc",
            template: "WARNING: kmalloc bug in {1}",
            stack: warning_stack(&["kmalloc", "krealloc", "slab", "kmem"]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: .*mm/vmalloc.c.*__vmalloc_node",
            template: "WARNING: zero-size vmalloc in {1}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: .* usb_submit_urb",
            template: "WARNING in {1}/usb_submit_urb",
            stack: warning_stack(&[
                "usb_submit_urb",
                "usb_start_wait_urb",
                "usb_bulk_msg",
                "usb_interrupt_msg",
                "usb_control_msg",
            ]),
            ..Format::NEW
        },
        Format {
            // The short form of newer kernels: `WARNING: file.c:12 at 0x…, CPU#0: comm/pid`.
            title: r"WARNING: {{SRC}} at 0x\d+, CPU#\d+",
            template: "WARNING in {2}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: .* at {{SRC}} {{FUNC}}",
            template: "WARNING in {3}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: {{SRC}} at {{FUNC}}",
            template: "WARNING in {3}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: r"WARNING: \[.*\] {{SRC}} at {{FUNC}}.*",
            template: "WARNING in {3}",
            stack: warning_stack(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: possible circular locking dependency detected",
            detail: Some(
                r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock",
            ),
            template: "possible deadlock in {1}",
            stack: Some(StackRule {
                steps: &[Step::Find(AT_FUNC), Step::Find(AT_FUNC), Step::Stack],
                // Deadlocks through work items' lockdep maps belong to the workqueue code.
                skip: &[
                    "process_one_work",
                    "flush_workqueue",
                    "drain_workqueue",
                    "destroy_workqueue",
                ],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "WARNING: possible irq lock inversion dependency detected",
            detail: Some(
                r"WARNING: possible irq lock inversion dependency detected(?:.*\n)+?.*just changed the state of lock(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "WARNING: .*-safe -> .*-unsafe lock order detected",
            template: "possible deadlock in {1}",
            stack: Some(StackRule {
                steps: &[Step::Find("which became (?:.*) at:"), Step::Stack],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "WARNING: possible recursive locking detected",
            detail: Some(
                r"WARNING: possible recursive locking detected(?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "WARNING: inconsistent lock state",
            detail: Some(
                r"WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}",
            ),
            template: "inconsistent lock state in {2}",
            stack: call_trace(&[]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: suspicious RCU usage",
            detail: Some(r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
            template: "WARNING: suspicious RCU usage in {2}",
            stack: call_trace(&["rcu", "kmem", "slab"]),
            ..Format::NEW
        },
        Format {
            title: "WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
            template: "WARNING: kernel stack regs has bad '{1}' value",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
            template: "WARNING: kernel stack frame pointer has bad value",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "WARNING: bad unlock balance detected!",
            template: "WARNING: bad unlock balance in {1}",
            stack: Some(StackRule {
                steps: &[Step::Find("{{PC}} +{{FUNC}}"), Step::CallTrace, Step::Stack],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "WARNING: held lock freed!",
            detail: Some(r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}"),
            template: "WARNING: held lock freed in {1}",
            ..Format::NEW
        },
        Format {
            title: "WARNING: kernel stack regs .* has bad 'bp' value",
            template: "WARNING: kernel stack regs has bad value",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "WARNING: kernel stack frame pointer .* has bad value",
            template: "WARNING: kernel stack regs has bad value",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: r"WARNING:[[:space:]]*(?:\n|$)",
            template: "WARNING: corrupted",
            corrupted: true,
            ..Format::NEW
        },
    ],
    not_reports: &[
        // sshd, the workqueue code, mount and glibc say WARNING too.
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "WARNING: workqueue cpumask: online intersect > possible intersect",
        "WARNING: [Tt]he mand mount option",
        r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
        "WARNING: Unprivileged eBPF is enabled with eIBRS",
        r"WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size (\((?:\d+)x(?:\d+) vs\. (?:\d+)x(?:\d+)\))",
        "WARNING: See https.* for mitigation options.",
        "WARNING: kernel not compiled with CPU_SRSO",
        r"EXT4-[Ff][Ss](?: \(.*\))?:",
        "(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)",
        r"XFS \(\w+\): WARNING",
    ],
};

pub static INFO: Oops = Oops {
    header: "INFO:",
    formats: &[
        Format {
            title: "INFO: possible circular locking dependency detected",
            detail: Some(
                r"INFO: possible circular locking dependency detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "INFO: possible irq lock inversion dependency detected",
            detail: Some(
                r"INFO: possible irq lock inversion dependency detected \](?:.*\n)+?.*just changed the state of lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
            detail: Some(
                r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \](?:.*\n)+?.*is trying to acquire(?:.*\n)+?.*at: {{PC}} +{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "INFO: possible recursive locking detected",
            detail: Some(
                r"INFO: possible recursive locking detected \](?:.*\n)+?.*is trying to acquire lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}",
            ),
            template: "possible deadlock in {1}",
            ..Format::NEW
        },
        Format {
            title: "INFO: inconsistent lock state",
            detail: Some(
                r"INFO: inconsistent lock state \](?:.*\n)+?.*takes(?:.*\n)+?.*at: {{PC}} +{{FUNC}}",
            ),
            template: "inconsistent lock state in {1}",
            ..Format::NEW
        },
        Format {
            title: "INFO: rcu_(?:preempt|sched|bh|tasks) (?:self-)?detected(?: expedited)? stall",
            template: "INFO: rcu detected stall in {1}",
            alt: &["stall in {1}"],
            stack: Some(StackRule {
                steps: &[Step::Find("apic_timer_interrupt"), Step::Rip, Step::Stack],
                fallback: &[
                    Step::Find("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"),
                    Step::Stack,
                ],
                skip: &["apic_timer_interrupt", "rcu"],
                pick: Pick::Stall,
            }),
            ..Format::NEW
        },
        Format {
            title: "INFO: trying to register non-static key",
            template: "INFO: trying to register non-static key in {1}",
            stack: call_trace(&["stack", "lock", "IRQ"]),
            ..Format::NEW
        },
        Format {
            title: "INFO: suspicious RCU usage",
            detail: Some(r"INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
            template: "INFO: suspicious RCU usage in {2}",
            stack: call_trace(&["rcu", "kmem", "slab"]),
            ..Format::NEW
        },
        Format {
            title: "INFO: task {{TASK}} blocked (?:in I/O wait )?for more than [0-9]+ seconds",
            template: "INFO: task hung in {1}",
            alt: &["hang in {1}"],
            stack: Some(StackRule {
                pick: Pick::Hang,
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "INFO: task {{TASK}} can't die for more than .* seconds",
            template: "INFO: task can't die in {1}",
            alt: &["hang in {1}"],
            stack: call_trace(&["schedule"]),
            ..Format::NEW
        },
        Format {
            // What is left of an old-style KASAN report whose header was lost.
            title: "INFO: (Freed|Allocated) in (.*)",
            template: "INFO: {1} in {2}",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: r"INFO:[[:space:]]*(?:\n|$)",
            template: "INFO: corrupted",
            corrupted: true,
            ..Format::NEW
        },
    ],
    not_reports: &[
        "INFO: lockdep is turned off",
        "INFO: Stall ended before state dump start",
        "INFO: NMI handler",
        "INFO: recovery required on readonly filesystem",
        "(handler|interrupt).*took too long",
        "INFO: sys_.* is not present in /proc/kallsyms",
        "INFO: no syscalls can create resource",
        "rmt_storage:INFO:",
        // `INVALID BTF_INFO:NUM`
        "_INFO:",
    ],
};
