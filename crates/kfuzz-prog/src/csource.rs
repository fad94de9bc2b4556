//! `prog2c`: a standalone C program that does what the executor does for a program: the data
//! area at its fixed address, each call's pointer data written before it, its arguments (named
//! constants where the descriptions name them), resources passed through `r[]`, and each
//! call's result printed. Readable first: the program's own line is a comment above each call,
//! and libc's wrapper is called where there is one with the kernel's arguments.

use std::collections::BTreeMap;
use std::fmt::Write;

use kfuzz_wire::{CopyValue, ExecArg, ExecCall, PseudoCall};

use crate::prog::{Arg, Prog, DATA_AREAS, DATA_BASE, DATA_SIZE};
use crate::target::Target;
use crate::types::TypeKind;

mod pseudo;

/// The executor's sandboxes, which a C reproducer sets up the same way.
pub use kfuzz_wire::Sandbox;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Each call in a thread of its own; one still blocked after the timeout is left behind.
    pub threaded: bool,
    /// Run the program this many times, each in a fresh child; 0: forever.
    pub repeat: u64,
    pub sandbox: Sandbox,
    /// A blocking call is interrupted (or, threaded, left behind) after this long.
    pub call_timeout_ms: u64,
}

/// libc wrappers whose arguments are the kernel's, by call name: one letter per argument
/// (`i` int-sized, `l` long-sized, `p` pointer) and whether they return a pointer. Calls not
/// listed (or whose libc wrapper takes other arguments, like eventfd or signalfd) go through
/// `syscall(__NR_…)`.
const WRAPPERS: &[(&str, &str, bool)] = &[
    ("shmget", "ili", false),
    ("shmat", "ipi", true),
    ("shmdt", "p", false),
    ("shmctl", "iip", false),
    ("msgget", "ii", false),
    ("msgsnd", "ipli", false),
    ("msgrcv", "iplli", false),
    ("msgctl", "iip", false),
    ("semget", "iii", false),
    ("semop", "ipl", false),
    ("semtimedop", "iplp", false),
    ("semctl", "iiil", false),
    ("mmap", "plliil", true),
    ("munmap", "pl", false),
    ("mprotect", "pli", false),
    ("mremap", "pllip", true),
    ("madvise", "pli", false),
    ("mlock", "pl", false),
    ("munlock", "pl", false),
    ("mlockall", "i", false),
    ("munlockall", "", false),
    ("msync", "pli", false),
    ("mincore", "plp", false),
    ("remap_file_pages", "plili", false),
    ("open", "pii", false),
    ("openat", "ipii", false),
    ("close", "i", false),
    ("read", "ipl", false),
    ("write", "ipl", false),
    ("pread64", "ipll", false),
    ("pwrite64", "ipll", false),
    ("readv", "ipi", false),
    ("writev", "ipi", false),
    ("lseek", "ili", false),
    ("dup", "i", false),
    ("dup2", "ii", false),
    ("dup3", "iii", false),
    ("fcntl", "iil", false),
    ("ftruncate", "il", false),
    ("fsync", "i", false),
    ("fdatasync", "i", false),
    ("fallocate", "iill", false),
    ("sendfile", "iipl", false),
    ("splice", "ipipli", false),
    ("tee", "iili", false),
    ("pipe", "p", false),
    ("pipe2", "pi", false),
    ("epoll_create", "i", false),
    ("epoll_create1", "i", false),
    ("epoll_ctl", "iiip", false),
    ("epoll_wait", "ipii", false),
    ("timerfd_create", "ii", false),
    ("timerfd_settime", "iipp", false),
    ("timerfd_gettime", "ip", false),
    ("memfd_create", "pi", false),
    ("socket", "iii", false),
    ("socketpair", "iiip", false),
    ("bind", "ipi", false),
    ("listen", "ii", false),
    ("accept", "ipp", false),
    ("accept4", "ippi", false),
    ("connect", "ipi", false),
    ("sendmsg", "ipi", false),
    ("recvmsg", "ipi", false),
    ("sendto", "iplipi", false),
    ("recvfrom", "iplipp", false),
    ("shutdown", "ii", false),
    ("getsockopt", "iiipp", false),
    ("setsockopt", "iiipi", false),
    ("getsockname", "ipp", false),
    ("getpeername", "ipp", false),
    ("getpid", "", false),
    ("getppid", "", false),
];

/// An integer as C source: small negatives in decimal (`-1`, `-100` for AT_FDCWD), the rest
/// in hex.
fn int_literal(v: u64) -> String {
    let s = v as i64;
    if (-4096..0).contains(&s) {
        format!("{s}")
    } else {
        format!("{v:#x}")
    }
}

/// A name for a top-level integer argument when its type names its values.
fn named(kind: &TypeKind, v: u64, used: &mut BTreeMap<String, u64>) -> Option<String> {
    match kind {
        TypeKind::Const {
            name: Some(n), val, ..
        } if *val == v
            && n.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) =>
        {
            used.insert(n.clone(), v);
            Some(n.clone())
        }
        TypeKind::Flags { names, bitmask, .. } => {
            if let Some((n, _)) = names.iter().find(|(_, x)| *x == v && (v != 0 || !bitmask)) {
                used.insert(n.clone(), v);
                return Some(n.clone());
            }
            if !bitmask || v == 0 {
                return None;
            }
            let mut parts = Vec::new();
            let mut left = v;
            for (n, x) in names {
                if *x != 0 && left & x == *x {
                    parts.push((n.clone(), *x));
                    left &= !x;
                }
            }
            if left != 0 || parts.len() < 2 {
                return None;
            }
            for (n, x) in &parts {
                used.insert(n.clone(), *x);
            }
            Some(
                parts
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(" | "),
            )
        }
        _ => None,
    }
}

fn c_string(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\{c:03o}");
            }
        }
    }
    s.push('"');
    s
}

fn ctype(size: u8) -> &'static str {
    match size {
        1 => "uint8_t",
        2 => "uint16_t",
        4 => "uint32_t",
        _ => "uint64_t",
    }
}

fn be_swap(size: u8) -> &'static str {
    match size {
        2 => "htobe16",
        4 => "htobe32",
        8 => "htobe64",
        _ => "",
    }
}

/// The C program for `p`.
pub fn generate(target: &Target, p: &Prog, opts: &Options) -> String {
    let encoded = crate::exec::encode(target, p);
    // The data areas the program's memory writes and pointer arguments use (kfuzz's own when
    // it uses none).
    let used =
        |a: u64| {
            encoded.calls.iter().any(|c| {
                c.copyin.iter().any(|ci| ci.addr >= a && ci.addr - a < DATA_SIZE)
                || c.args.iter().any(|x| {
                    matches!(x, kfuzz_wire::ExecArg::Const(v) if *v >= a && *v - a < DATA_SIZE)
                })
            })
        };
    let mut areas: Vec<u64> = DATA_AREAS.iter().copied().filter(|a| used(*a)).collect();
    if areas.is_empty() {
        areas.push(DATA_BASE);
    }
    let lines: Vec<String> = crate::text::format(target, p)
        .lines()
        .map(String::from)
        .collect();
    let nvars = encoded
        .calls
        .iter()
        .flat_map(|c| {
            c.ret_var
                .into_iter()
                .chain(c.copyout.iter().map(|o| o.var))
                .chain(c.args.iter().filter_map(|a| match a {
                    ExecArg::Var { var, .. } => Some(*var),
                    _ => None,
                }))
        })
        .max()
        .map_or(0, |m| m as usize + 1);
    // Each variable starts as the value its first use falls back to (-1 for most resources).
    let mut init = vec![u64::MAX; nvars];
    let mut seen = vec![false; nvars];
    for c in &encoded.calls {
        let defaults = c
            .args
            .iter()
            .filter_map(|a| match a {
                ExecArg::Var { var, default } => Some((*var, *default)),
                _ => None,
            })
            .chain(c.copyin.iter().filter_map(|ci| match &ci.value {
                CopyValue::Var { var, default, .. } => Some((*var, *default)),
                _ => None,
            }));
        for (v, d) in defaults {
            if let Some(false) = seen.get(v as usize) {
                seen[v as usize] = true;
                init[v as usize] = d;
            }
        }
    }

    let mut used_names = BTreeMap::new();
    let mut bodies = Vec::new();
    for (i, (call, ec)) in p.calls.iter().zip(&encoded.calls).enumerate() {
        bodies.push(call_body(
            target,
            i,
            call,
            ec,
            lines.get(i),
            &mut used_names,
        ));
    }

    // The pseudo-calls the program makes: each gets a helper function.
    let pseudo: Vec<PseudoCall> = PseudoCall::ALL
        .into_iter()
        .filter(|p| encoded.calls.iter().any(|c| c.nr == p.nr()))
        .collect();
    let libs: String = pseudo
        .iter()
        .map(|p| pseudo::libs(*p))
        .filter(|l| !l.is_empty())
        .map(|l| format!(" {l}"))
        .collect();
    let mut out = String::new();
    out.push_str(&format!(
        "// Generated by kfuzz prog2c from this program:\n{}//\n\
         // gcc -static -Wall -o repro repro.c{libs} (add -pthread for a threaded program)\n\n",
        lines
            .iter()
            .map(|l| format!("//   {l}\n"))
            .collect::<String>()
    ));
    out.push_str(HEADERS);
    if opts.threaded {
        out.push_str("#include <pthread.h>\n#include <time.h>\n");
    }
    let includes: std::collections::BTreeSet<&str> = pseudo
        .iter()
        .flat_map(|p| pseudo::includes(*p).iter().copied())
        .collect();
    for h in includes {
        let _ = writeln!(out, "#include <{h}>");
    }
    out.push('\n');
    for (n, v) in &used_names {
        let _ = writeln!(out, "#ifndef {n}\n#define {n} {}\n#endif", int_literal(*v));
    }
    if !used_names.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "#define DATA_SIZE {DATA_SIZE:#x}ul\n\
         /* Where the program's pointers point (kfuzz's data area, or syzkaller's). */\n\
         static const unsigned long data_areas[] = {{{}}};\n\
         #define NCALLS {}\n#define CALL_TIMEOUT_MS {}\n",
        areas
            .iter()
            .map(|a| format!("{a:#x}ul"))
            .collect::<Vec<_>>()
            .join(", "),
        p.calls.len(),
        opts.call_timeout_ms.max(1)
    );
    if nvars > 0 {
        let _ = writeln!(
            out,
            "/* Resources: what calls returned, used by later calls. */\nstatic intptr_t r[{nvars}] = {{{}}};\n",
            init.iter()
                .map(|v| int_literal(*v))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.push_str(
        "/* Per call: finished, return value, errno. */\n\
         static volatile int done[NCALLS];\nstatic volatile intptr_t ret[NCALLS];\n\
         static volatile int err[NCALLS];\n\n",
    );
    for p in &pseudo {
        out.push_str(pseudo::helper(*p));
        out.push('\n');
    }
    out.push_str(
        "static void execute_call(int call)\n{\n\tintptr_t res = -1;\n\n\tswitch (call) {\n",
    );
    for (i, b) in bodies.iter().enumerate() {
        let _ = writeln!(out, "\tcase {i}:\n{b}\t\tbreak;");
    }
    out.push_str(
        "\t}\n\tret[call] = res;\n\terr[call] = res == -1 ? errno : 0;\n\tdone[call] = 1;\n}\n\n",
    );
    out.push_str(if opts.threaded { THREADED } else { SEQUENTIAL });
    out.push_str(&sandbox_fn(opts.sandbox));
    out.push_str(REPORT);
    let runs = if opts.repeat == 1 {
        "\trun_program();\n\treport();\n\treturn 0;\n".to_string()
    } else {
        let cond = if opts.repeat == 0 {
            String::new()
        } else {
            format!("iter < {}", opts.repeat)
        };
        format!(
            "\tfor (int iter = 0; {cond}; iter++) {{\n\
             \t\tpid_t pid = fork();\n\
             \t\tif (pid == 0) {{\n\t\t\trun_program();\n\t\t\treport();\n\t\t\t_exit(0);\n\t\t}}\n\
             \t\tint status;\n\t\twaitpid(pid, &status, 0);\n\t}}\n\treturn 0;\n"
        )
    };
    let _ = write!(
        out,
        "int main(int argc, char **argv)\n{{\n\
         \t/* A static binary's heap may be placed anywhere in the 1 GiB after it (brk\n\
         \t * randomization), over the data area: run again without randomization. */\n\
         \tif (argc > 0 && !(personality(0xffffffff) & ADDR_NO_RANDOMIZE) &&\n\
         \t    personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE) != -1)\n\
         \t\texecv(\"/proc/self/exe\", argv);\n\
         \tfor (unsigned i = 0; i < sizeof(data_areas) / sizeof(data_areas[0]); i++) {{\n\
         \t\tvoid *want = (void *)data_areas[i];\n\
         \t\tif (mmap(want, DATA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,\n\
         \t\t\t MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != want) {{\n\
         \t\t\tperror(\"mmap of the data area\");\n\t\t\treturn 1;\n\t\t}}\n\t}}\n\
         \tsandbox();\n{runs}}}\n"
    );
    out
}

fn call_body(
    target: &Target,
    i: usize,
    call: &crate::prog::Call,
    ec: &ExecCall,
    line: Option<&String>,
    used_names: &mut BTreeMap<String, u64>,
) -> String {
    let meta = &target.syscalls[call.meta];
    let mut b = String::new();
    if let Some(l) = line {
        let _ = writeln!(b, "\t\t/* {} */", l.replace("*/", "* /"));
    }
    let _ = i;
    for c in &ec.copyin {
        let addr = format!("{:#x}", c.addr);
        match &c.value {
            CopyValue::Int {
                size,
                big_endian,
                val,
            } => {
                let v = int_literal(*val);
                let v = if *big_endian && *size > 1 {
                    format!("{}({v})", be_swap(*size))
                } else {
                    v
                };
                let _ = writeln!(b, "\t\t*({} *){addr} = {v};", ctype(*size));
            }
            CopyValue::Var { size, var, .. } => {
                let _ = writeln!(b, "\t\t*({} *){addr} = r[{var}];", ctype(*size));
            }
            CopyValue::Bytes(bytes) => {
                let _ = writeln!(
                    b,
                    "\t\tmemcpy((void *){addr}, {}, {});",
                    c_string(bytes),
                    bytes.len()
                );
            }
        }
    }
    // The arguments, named where the descriptions name them.
    let args: Vec<String> = ec
        .args
        .iter()
        .enumerate()
        .map(|(k, a)| match a {
            ExecArg::Var { var, .. } => format!("r[{var}]"),
            ExecArg::Const(v) => {
                let kind = meta.args.get(k).map(|f| &f.ty.kind);
                let is_int = matches!(call.args.get(k), Some(Arg::Int(_)));
                kind.filter(|_| is_int)
                    .and_then(|kind| named(kind, *v, used_names))
                    .unwrap_or_else(|| int_literal(*v))
            }
        })
        .collect();
    let wrapper = WRAPPERS.iter().find(|(n, _, _)| *n == meta.call_name);
    let expr = match (PseudoCall::from_nr(meta.nr), wrapper) {
        // A pseudo-call: the helper of the same name (see `pseudo`).
        (Some(p), _) => format!(
            "{}({})",
            p.name(),
            args.iter()
                .map(|a| if a.starts_with("r[") {
                    a.clone()
                } else {
                    format!("(long){a}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, Some((name, sig, returns_ptr))) => {
            let params: Vec<String> = sig
                .chars()
                .enumerate()
                .map(|(k, kind)| {
                    let a = args.get(k).cloned().unwrap_or_else(|| "0".into());
                    let raw = match ec.args.get(k) {
                        Some(ExecArg::Const(v)) => Some(*v),
                        _ => None,
                    };
                    match kind {
                        'p' => match raw {
                            Some(0) => "NULL".into(),
                            _ => format!("(void *){a}"),
                        },
                        // An int parameter given a value that does not fit says so.
                        'i' => match raw {
                            Some(v)
                                if (v as i64) > i64::from(u32::MAX)
                                    || (v as i64) < i64::from(i32::MIN) =>
                            {
                                format!("(int){a}")
                            }
                            _ => a,
                        },
                        _ => a,
                    }
                })
                .collect();
            let call = format!("{name}({})", params.join(", "));
            if *returns_ptr {
                format!("(intptr_t){call}")
            } else {
                call
            }
        }
        (None, None) => {
            let mut parts = vec![format!("__NR_{}", meta.call_name)];
            parts.extend(args.iter().map(|a| {
                if a.starts_with("r[") {
                    a.clone()
                } else {
                    format!("(long){a}")
                }
            }));
            format!("syscall({})", parts.join(", "))
        }
    };
    let _ = writeln!(b, "\t\tres = {expr};");
    let mut after = Vec::new();
    if let Some(v) = ec.ret_var {
        after.push(format!("r[{v}] = res;"));
    }
    for o in &ec.copyout {
        after.push(format!(
            "r[{}] = *({} *){:#x};",
            o.var,
            ctype(o.size),
            o.addr
        ));
    }
    if !after.is_empty() {
        let _ = writeln!(
            b,
            "\t\tif (res != -1) {{\n{}\t\t}}",
            after
                .iter()
                .map(|a| format!("\t\t\t{a}\n"))
                .collect::<String>()
        );
    }
    b
}

const HEADERS: &str = "#define _GNU_SOURCE\n\
#include <endian.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <grp.h>\n\
#include <sched.h>\n#include <signal.h>\n#include <stdint.h>\n#include <stdio.h>\n\
#include <stdlib.h>\n#include <string.h>\n#include <sys/epoll.h>\n#include <sys/ipc.h>\n\
#include <sys/mman.h>\n#include <sys/msg.h>\n#include <sys/personality.h>\n#include <sys/sem.h>\n#include <sys/sendfile.h>\n\
#include <sys/shm.h>\n#include <sys/socket.h>\n#include <sys/syscall.h>\n#include <sys/time.h>\n\
#include <sys/timerfd.h>\n#include <sys/uio.h>\n#include <sys/wait.h>\n#include <unistd.h>\n";

const SEQUENTIAL: &str =
    "/* A call that blocks longer than CALL_TIMEOUT_MS is interrupted by SIGALRM (EINTR). */\n\
static void on_alarm(int sig)\n{\n\t(void)sig;\n}\n\n\
static void arm(int ms)\n{\n\tstruct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};\n\n\
\tsetitimer(ITIMER_REAL, &it, NULL);\n}\n\n\
static void run_program(void)\n{\n\tstruct sigaction sa;\n\n\tmemset(&sa, 0, sizeof(sa));\n\
\tsa.sa_handler = on_alarm;\n\tsigaction(SIGALRM, &sa, NULL);\n\
\tfor (int call = 0; call < NCALLS; call++) {\n\t\tarm(CALL_TIMEOUT_MS);\n\
\t\texecute_call(call);\n\t\tarm(0);\n\t}\n}\n\n";

const THREADED: &str = "/* Each call in a thread of its own; one still blocked after CALL_TIMEOUT_MS is left\n * behind. */\n\
static void *thread_fn(void *arg)\n{\n\texecute_call((int)(intptr_t)arg);\n\treturn NULL;\n}\n\n\
static void run_program(void)\n{\n\tfor (int call = 0; call < NCALLS; call++) {\n\
\t\tpthread_t th;\n\t\tstruct timespec deadline;\n\n\
\t\tif (pthread_create(&th, NULL, thread_fn, (void *)(intptr_t)call) != 0) {\n\
\t\t\texecute_call(call);\n\t\t\tcontinue;\n\t\t}\n\
\t\tclock_gettime(CLOCK_REALTIME, &deadline);\n\
\t\tdeadline.tv_nsec += (CALL_TIMEOUT_MS % 1000) * 1000000L;\n\
\t\tdeadline.tv_sec += CALL_TIMEOUT_MS / 1000 + deadline.tv_nsec / 1000000000L;\n\
\t\tdeadline.tv_nsec %= 1000000000L;\n\
\t\tif (pthread_timedjoin_np(th, NULL, &deadline) != 0)\n\t\t\tpthread_detach(th);\n\t}\n}\n\n";

const REPORT: &str = "/* One line per call on stderr: what it returned. */\n\
static void report(void)\n{\n\tfor (int call = 0; call < NCALLS; call++) {\n\
\t\tif (!done[call])\n\t\t\tfprintf(stderr, \"call %d: not finished\\n\", call);\n\
\t\telse if (ret[call] == -1)\n\
\t\t\tfprintf(stderr, \"call %d: -1 errno %d (%s)\\n\", call, err[call], strerror(err[call]));\n\
\t\telse\n\t\t\tfprintf(stderr, \"call %d: 0x%lx\\n\", call, (unsigned long)ret[call]);\n\t}\n}\n\n";

fn sandbox_fn(s: Sandbox) -> String {
    let body = match s {
        Sandbox::None => "\t/* No sandbox: a private IPC namespace only, as the executor does. */\n\
                          \tunshare(CLONE_NEWIPC);\n",
        Sandbox::Setuid => "\t/* sandbox setuid: run as nobody. */\n\tunshare(CLONE_NEWIPC);\n\
                            \tsetgroups(0, NULL);\n\tif (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))\n\
                            \t\tperror(\"setresuid\");\n",
        Sandbox::Namespace => "\t/* sandbox namespace: new mount, net, ipc, uts and user namespaces. */\n\
                               \tunshare(CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS);\n\
                               \tunshare(CLONE_NEWUSER);\n",
    };
    format!("static void sandbox(void)\n{{\n{body}}}\n\n")
}
