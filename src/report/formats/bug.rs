//! Reports that start with `BUG:` (the sanitizers, faults on bad addresses, the scheduler's and
//! the memory manager's own checks) and with `UBSAN:`.

use super::{call_trace, rip_stack, Format, Oops, Pick, StackRule, Step};

/// KMSAN's two stacks: where uninit memory was used, then where it was created.
const KMSAN_STEPS: &[Step] = &[
    Step::Stack,
    Step::Find("(Local variable .* created at:|Uninit was created at:)"),
    Step::Stack,
];

/// A KFENCE report's stack follows its first line directly.
const KFENCE_STACK: Option<StackRule> = Some(StackRule {
    steps: &[
        Step::Find(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"),
        Step::Stack,
    ],
    ..StackRule::NEW
});

pub static BUG: Oops = Oops {
    header: "BUG:",
    formats: &[
        Format {
            title: "BUG: KASAN:",
            detail: Some(
                r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)",
            ),
            template: "KASAN: {1} {3} in {4}",
            alt: &["bad-access in {4}"],
            stack: Some(StackRule {
                steps: &[
                    Step::Find(r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}"),
                    Step::CallTrace,
                    Step::Stack,
                ],
                // Frames of the arm64 hardware tag fault path.
                skip: &["kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "BUG: KASAN:",
            detail: Some(
                "BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}",
            ),
            template: "KASAN: invalid-free in {2}",
            alt: &["invalid-free in {2}"],
            stack: Some(StackRule {
                steps: &[
                    Step::Find(
                        "BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}",
                    ),
                    Step::CallTrace,
                    Step::Stack,
                ],
                skip: &["slab_", "kfree", "vunmap", "vfree"],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
            template: "KASAN: {1} {2}",
            ..Format::NEW
        },
        Format {
            title: "BUG: KASAN: (.*)",
            template: "KASAN: {1}",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KMSAN: kernel-usb-infoleak",
            detail: Some("BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}"),
            template: "KMSAN: kernel-usb-infoleak in {2}",
            alt: &["KMSAN origin in {3}"],
            stack: Some(StackRule {
                steps: KMSAN_STEPS,
                skip: &[
                    "alloc_skb",
                    "usb_submit_urb",
                    "usb_start_wait_urb",
                    "usb_bulk_msg",
                    "usb_interrupt_msg",
                    "usb_control_msg",
                ],
                ..StackRule::NEW
            }),
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KMSAN:",
            detail: Some(r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}"),
            template: "KMSAN: {1} in {3}",
            alt: &["bad-access in {3}"],
            stack: Some(StackRule {
                steps: KMSAN_STEPS,
                // Generic crypto code is where the bug shows, rarely where it is.
                skip: &[
                    "alloc_skb",
                    "netlink_ack",
                    "netlink_rcv_skb",
                    "_encrypt$",
                    "^(?:crypto|cipher|drbg|rng)_",
                ],
                ..StackRule::NEW
            }),
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KCSAN: data-race",
            detail: Some("BUG: KCSAN: (.*)"),
            template: "KCSAN: {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KCSAN:",
            detail: Some("BUG: KCSAN: (.*)"),
            template: "KCSAN: {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}",
            template: "KFENCE: {1} {2} in {4}",
            alt: &["bad-access in {4}"],
            stack: KFENCE_STACK,
            ..Format::NEW
        },
        Format {
            title: "BUG: KFENCE: invalid free in {{FUNC}}",
            template: "KFENCE: invalid free in {2}",
            alt: &["invalid-free in {2}"],
            stack: KFENCE_STACK,
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: KFENCE: invalid (read|write) in {{FUNC}}",
            template: "KFENCE: invalid {1} in {3}",
            alt: &["bad-access in {3}"],
            stack: KFENCE_STACK,
            ..Format::NEW
        },
        Format {
            title: "BUG: KFENCE: memory corruption in {{FUNC}}",
            template: "KFENCE: memory corruption in {2}",
            stack: KFENCE_STACK,
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)",
            template: "BUG: unable to handle kernel paging request in {1}",
            alt: &["bad-access in {1}"],
            stack: rip_stack(),
            ..Format::NEW
        },
        Format {
            title: "BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)",
            template: "BUG: unable to handle kernel NULL pointer dereference in {1}",
            alt: &["bad-access in {1}"],
            stack: rip_stack(),
            ..Format::NEW
        },
        Format {
            // The rest of the line is a second printk, sometimes lost.
            title: "BUG: (?:unable to handle kernel|Unable to handle kernel)",
            template: "BUG: unable to handle kernel",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
            template: "BUG: {1} {2} in {3}",
            stack: call_trace(&["spin_", "_lock", "_unlock"]),
            ..Format::NEW
        },
        Format {
            title: "BUG: soft lockup",
            template: "BUG: soft lockup in {1}",
            alt: &["stall in {1}"],
            stack: Some(StackRule {
                steps: &[Step::Rip, Step::CallTrace, Step::Stack],
                pick: Pick::Stall,
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "BUG: .*still has locks held!",
            detail: Some(r"BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
            template: "BUG: still has locks held in {1}",
            ..Format::NEW
        },
        Format {
            title: "BUG: scheduling while atomic",
            template: "BUG: scheduling while atomic in {1}",
            stack: call_trace(&["schedule"]),
            ..Format::NEW
        },
        Format {
            title: "BUG: lock held when returning to user space",
            detail: Some(
                r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}",
            ),
            template: "BUG: lock held when returning to user space in {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: bad unlock balance detected!",
            template: "BUG: bad unlock balance in {1}",
            stack: Some(StackRule {
                steps: &[Step::Find("{{PC}} +{{FUNC}}"), Step::CallTrace, Step::Stack],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "BUG: held lock freed!",
            detail: Some(r"BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
            template: "BUG: held lock freed in {1}",
            ..Format::NEW
        },
        Format {
            title: "BUG: Bad rss-counter state",
            template: "BUG: Bad rss-counter state",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: non-zero nr_ptes on freeing mm",
            template: "BUG: non-zero nr_ptes on freeing mm",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: non-zero nr_pmds on freeing mm",
            template: "BUG: non-zero nr_pmds on freeing mm",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            // The filesystem and the block device (loop0, loop1, …) are left out of the title:
            // they split one bug into many.
            title: "BUG: Dentry .* still in use",
            detail: Some(r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]"),
            template: "BUG: Dentry still in use in {1}",
            alt: &["BUG: Dentry still in use [{1} of {2}]"],
            ..Format::NEW
        },
        Format {
            title: "BUG: Bad page (state|cache)",
            template: "BUG: Bad page {1} in {2}",
            stack: Some(StackRule {
                steps: &[Step::Find("page last allocated"), Step::Stack],
                skip: &[
                    "(free|put|get|update|release)_page",
                    "free_unref",
                    "^_*folio",
                    "truncate_inode_pages",
                    "page_frag_free",
                    "alloc",
                    "vmap",
                    "page_owner",
                ],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "BUG: Bad page map",
            template: "BUG: Bad page map",
            ..Format::NEW
        },
        Format {
            title: "BUG: workqueue lockup",
            template: "BUG: workqueue lockup",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: sleeping function called from invalid context at (.*)",
            template: "BUG: sleeping function called from invalid context in {2}",
            stack: call_trace(&[]),
            ..Format::NEW
        },
        Format {
            title: r"BUG: using ([a-z_]+)\(\) in preemptible",
            template: "BUG: using {1}() in preemptible code in {2}",
            stack: call_trace(&[
                "dump_stack",
                "preemption",
                "preempt",
                "debug_",
                "processor_id",
                "this_cpu",
            ]),
            ..Format::NEW
        },
        Format {
            title: "BUG: workqueue leaked lock or atomic",
            detail: Some(
                r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n",
            ),
            template: "BUG: workqueue leaked lock or atomic in {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "BUG: memory leak",
            template: "memory leak in {1}",
            stack: Some(StackRule {
                steps: &[
                    Step::Find(r"backtrace(?: \(crc [[:xdigit:]]*\))?:"),
                    Step::Stack,
                ],
                skip: &[
                    "kmemleak",
                    "mmap",
                    "kmem",
                    "slab",
                    "alloc",
                    "create_object",
                    "idr_get",
                    "list_lru_init",
                    "kasprintf",
                    "kvasprintf",
                    "pcpu_create",
                    "strdup",
                    "strndup",
                    "memdup",
                ],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "BUG: .*stack guard page was hit at",
            template: "BUG: stack guard page was hit in {1}",
            alt: &["stack-overflow in {1}"],
            stack: Some(StackRule {
                steps: &[Step::Rip, Step::CallTrace, Step::Stack],
                pick: Pick::Stall,
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            // arm's wording of what x86 reports as a lockdep WARNING: one title for both.
            title: "BUG: Invalid wait context",
            template: "WARNING: locking bug in {1}",
            stack: call_trace(&["lock_sock", "release_sock"]),
            ..Format::NEW
        },
        Format {
            title: r"BUG:[[:space:]]*(?:\n|$)",
            template: "BUG: corrupted",
            corrupted: true,
            ..Format::NEW
        },
    ],
    not_reports: &[
        "ODEBUG:",
        "Boot_DEBUG:",
        "xlog_status:",
        "DEBUG:",
        "BUG: no syscalls can create resource",
    ],
};

/// Frames of UBSAN's own reporting.
const UBSAN_SKIP: &[&str] = &["ubsan", "overflow"];

pub static UBSAN: Oops = Oops {
    header: "UBSAN:",
    formats: &[
        Format {
            title: "UBSAN:",
            detail: Some("UBSAN: Undefined behaviour in"),
            template: "UBSAN: undefined-behaviour in {1}",
            stack: call_trace(UBSAN_SKIP),
            ..Format::NEW
        },
        Format {
            title: "UBSAN: array-index-out-of-bounds in",
            template: "UBSAN: array-index-out-of-bounds in {1}",
            alt: &["bad-access in {1}"],
            stack: call_trace(UBSAN_SKIP),
            ..Format::NEW
        },
        Format {
            title: "UBSAN:",
            detail: Some("UBSAN: (.*?) in"),
            template: "UBSAN: {1} in {2}",
            stack: call_trace(UBSAN_SKIP),
            ..Format::NEW
        },
    ],
    not_reports: &[],
};
