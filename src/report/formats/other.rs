//! Every other report: CPU exceptions (general protection, divide error, invalid opcode, double
//! fault, arm's faults), `kernel BUG at` (BUG_ON, list and usercopy checks), panics, unexpected
//! reboots, and the few user-space failures that end a run.

use super::{call_trace, rip_stack, Format, Oops, Pick, StackRule, Step};

/// A report named after the faulting function only.
const RIP_ONLY: Option<StackRule> = Some(StackRule {
    steps: &[Step::Rip],
    ..StackRule::NEW
});

pub static UNABLE_TO_HANDLE: Oops = Oops {
    header: "Unable to handle kernel",
    formats: &[Format {
        title: "Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)",
        template: "BUG: unable to handle kernel {1} in {2}",
        alt: &["bad-access in {2}"],
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static GPF: Oops = Oops {
    header: "general protection fault",
    formats: &[Format {
        title: "general protection fault.*:",
        template: "general protection fault in {1}",
        alt: &["bad-access in {1}"],
        stack: rip_stack(),
        ..Format::NEW
    }],
    // A user-space fault the kernel only logs.
    not_reports: &[r"general protection fault .* error:\d+ in "],
};

pub static STACK_SEGMENT: Oops = Oops {
    header: "stack segment: ",
    formats: &[Format {
        title: "stack segment: ",
        template: "stack segment fault in {1}",
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static KERNEL_PANIC: Oops = Oops {
    header: "Kernel panic",
    formats: &[
        // A smashed stack may lose the function's name and the unwinder's way.
        Format {
            title: "Kernel panic - not syncing: stack-protector:",
            detail: Some(
                "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}",
            ),
            template: "kernel panic: stack is corrupted in {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: stack-protector:",
            detail: Some(
                "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+",
            ),
            template: "kernel panic: stack is corrupted in {1}",
            stack: call_trace(&["stack_chk"]),
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: corrupted stack end",
            detail: Some(
                "Kernel panic - not syncing: corrupted stack end detected inside scheduler",
            ),
            template: "kernel panic: corrupted stack end in {1}",
            alt: &["stack-overflow in {1}"],
            stack: Some(StackRule {
                skip: &["schedule", "retint_kernel"],
                pick: Pick::Stall,
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: kernel stack overflow",
            template: "kernel stack overflow in {1}",
            alt: &["stack-overflow in {1}"],
            stack: Some(StackRule {
                skip: &["bad_stack"],
                pick: Pick::Stall,
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: Attempted to kill init!",
            template: "kernel panic: Attempted to kill init!",
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
            template: "kernel panic: Couldn't open N_TTY ldisc",
            ..Format::NEW
        },
        // The panics that follow another report: seen first, the report itself was lost.
        Format {
            title: "Kernel panic - not syncing: Fatal exception",
            template: "kernel panic: Fatal exception",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: panic_on_warn set",
            template: "kernel panic: panic_on_warn set",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: hung_task: blocked tasks",
            template: "kernel panic: hung_task: blocked tasks",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "Kernel panic - not syncing: (.*)",
            template: "kernel panic: {1}",
            ..Format::NEW
        },
    ],
    not_reports: &[],
};

pub static DOUBLE_FAULT: Oops = Oops {
    header: "PANIC: double fault",
    formats: &[Format {
        title: "PANIC: double fault",
        template: "PANIC: double fault in {1}",
        stack: RIP_ONLY,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static RUST_PANIC: Oops = Oops {
    header: "rust_kernel: panicked",
    formats: &[Format {
        title: "rust_kernel: panicked",
        detail: Some("rust_kernel: panicked at [^\n]*?\n(.+?)\n"),
        template: "{1} in {2}",
        stack: call_trace(&[r"__rustc::rust_begin_unwind"]),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static KERNEL_BUG: Oops = Oops {
    header: "kernel BUG",
    formats: &[
        Format {
            title: "kernel BUG at mm/usercopy.c",
            template: "BUG: bad usercopy in {1}",
            stack: call_trace(&["usercopy", "__check"]),
            ..Format::NEW
        },
        Format {
            title: "kernel BUG at lib/list_debug.c",
            template: "BUG: corrupted list in {1}",
            // A corrupted list is as often a use-after-free or a race.
            alt: &["bad-access in {1}"],
            stack: call_trace(&[]),
            ..Format::NEW
        },
        Format {
            title: "kernel BUG at (.*)",
            template: "kernel BUG in {2}",
            stack: Some(StackRule {
                steps: &[Step::Rip, Step::CallTrace, Step::Stack],
                // skb helpers BUG_ON their callers' mistakes.
                skip: &["^skb_"],
                ..StackRule::NEW
            }),
            ..Format::NEW
        },
    ],
    not_reports: &[],
};

pub static KERNEL_BUG_CAPITAL: Oops = Oops {
    header: "Kernel BUG",
    formats: &[Format {
        title: "Kernel BUG (.*)",
        template: "kernel BUG {1}",
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static SLAB_ALREADY_FREE: Oops = Oops {
    header: "BUG kmalloc-",
    formats: &[Format {
        title: "BUG kmalloc-.*: Object already free",
        template: "BUG: Object already free",
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static DIVIDE_ERROR: Oops = Oops {
    header: "divide error:",
    formats: &[Format {
        title: "divide error: ",
        template: "divide error in {1}",
        stack: RIP_ONLY,
        ..Format::NEW
    }],
    not_reports: &[],
};

/// The same, as some kernels spell it.
pub static DIVIDE_ERROR_MISSPELT: Oops = Oops {
    header: "divide_error:",
    formats: &[Format {
        title: "divide_error: ",
        template: "divide error in {1}",
        stack: RIP_ONLY,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static INVALID_OPCODE: Oops = Oops {
    header: "invalid opcode:",
    formats: &[Format {
        title: "invalid opcode: ",
        template: "invalid opcode in {1}",
        stack: RIP_ONLY,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static INT3: Oops = Oops {
    header: "int3:",
    formats: &[Format {
        title: "int3: ",
        template: "int3 in {1}",
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static REBOOT: Oops = Oops {
    header: "Booting the kernel.",
    formats: &[Format {
        title: "^Booting the kernel",
        template: "unexpected kernel reboot",
        no_stack: true,
        ..Format::NEW
    }],
    // Boot messages echoed back by a program (as a mount option, say).
    not_reports: &["Parsing ELF|Decompressing Linux|Unknown parameter '"],
};

pub static NETDEV_WAIT: Oops = Oops {
    header: "unregister_netdevice: waiting for",
    formats: &[Format {
        title: "unregister_netdevice: waiting for (?:.*) to become free",
        template: "unregister_netdevice: waiting for DEV to become free",
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static VFS_FILE_COUNT: Oops = Oops {
    header: "VFS: Close: file count is 0",
    formats: &[Format {
        title: "VFS: Close: file count is 0",
        template: "VFS: Close: file count is zero (use-after-free)",
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static VFS_BUSY_INODES: Oops = Oops {
    header: "VFS: Busy inodes after unmount",
    formats: &[Format {
        title: "VFS: Busy inodes after unmount",
        template: "VFS: Busy inodes after unmount (use-after-free)",
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static INTERNAL_ERROR: Oops = Oops {
    header: "Internal error:",
    formats: &[Format {
        title: "Internal error:",
        template: "Internal error in {1}",
        // arm64's name for what arm calls a paging request.
        alt: &["bad-access in {1}"],
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static UNHANDLED_FAULT: Oops = Oops {
    header: "Unhandled fault:",
    formats: &[Format {
        title: "Unhandled fault:",
        template: "Unhandled fault in {1}",
        // arm's name for what x86 calls a general protection fault.
        alt: &["bad-access in {1}"],
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static ALIGNMENT_TRAP: Oops = Oops {
    header: "Alignment trap:",
    formats: &[Format {
        title: "Alignment trap:",
        template: "Alignment trap in {1}",
        stack: rip_stack(),
        ..Format::NEW
    }],
    not_reports: &[],
};

/// The Trusty TEE's panics, relayed by its kernel driver.
pub static TRUSTY: Oops = Oops {
    header: "trusty: panic",
    formats: &[
        Format {
            title: "trusty: panic.* ASSERT FAILED",
            detail: Some(r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)"),
            template: "trusty: ASSERT FAILED: {1}",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "trusty: panic.* ASSERT FAILED.*: *(.*)",
            template: "trusty: ASSERT FAILED: {1}",
            corrupted: true,
            ..Format::NEW
        },
        Format {
            title: "trusty: panic",
            detail: Some(r"trusty: panic \(.*?\): (.+)"),
            template: "trusty: panic: {1}",
            no_stack: true,
            ..Format::NEW
        },
    ],
    not_reports: &[],
};

pub static GO_FATAL: Oops = Oops {
    header: "fatal error:",
    formats: &[Format {
        title: "fatal error:",
        template: "go runtime error",
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &["ALSA", "fatal error: cannot create timer"],
};

/// The fuzzer's executor failing (syzkaller's executors print this; kfuzz's may too).
pub static SYZFAIL: Oops = Oops {
    header: "SYZFAIL:",
    formats: &[Format {
        title: "SYZFAIL:(.*)",
        template: "SYZFAIL:{1}",
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static SYZFATAL: Oops = Oops {
    header: "SYZFATAL:",
    formats: &[Format {
        title: "SYZFATAL:(.*)()",
        template: "SYZFATAL:{1}",
        alt: &["SYZFATAL{2}"],
        no_stack: true,
        ..Format::NEW
    }],
    not_reports: &[],
};

pub static USER_PANIC: Oops = Oops {
    header: "panic:",
    formats: &[
        Format {
            title: "panic: Sentry detected .* stuck task",
            template: "panic: Sentry detected stuck tasks",
            no_stack: true,
            ..Format::NEW
        },
        Format {
            title: "panic:(.*)",
            template: "panic:{1}",
            no_stack: true,
            ..Format::NEW
        },
    ],
    // Kernel functions (`skb_panic:`) and boot chatter.
    not_reports: &[
        "_panic:",
        "xlog_status:",
        r"ddb\.onpanic:",
        "evtlog_status:",
    ],
};
