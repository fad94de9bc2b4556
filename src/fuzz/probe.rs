//! Which enabled calls the guest's kernel lacks: the syscall itself (ENOSYS), the device, proc
//! or sysfs file an `openat$…` opens, the address family a `socket$…` creates. The checks are
//! planned here from the descriptions, answered by the executor (`HostMsg::CheckSupport`), and
//! turned back into calls to drop for the run, each with its reason; calls that need a resource
//! only dropped calls created go too. `plan` and `apply` are pure; `check_vm` asks a VM and
//! prints a warning per dropped call.

use std::collections::{BTreeSet, HashMap, HashSet};

use kfuzz_prog::target::{produced_resources, required_resources, Target};
use kfuzz_prog::types::{BufferKind, SyscallId, TypeKind};
use kfuzz_wire::{Support, SupportCheck};

use crate::kernel::syscall_config::SyscallConfig;
use crate::kernel::tree::KernelTree;
use crate::shell::Shell;
use crate::vm::Vm;

/// Calls the probe never issues: they end, suspend or fork the process that makes them, or
/// restart the machine; every kernel has them.
const NEVER_PROBED: &[&str] = &[
    "exit",
    "exit_group",
    "pause",
    "rt_sigsuspend",
    "rt_sigreturn",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "reboot",
];

/// Calls whose constant path is a file the kernel provides rather than one the call creates.
const OPENS: &[&str] = &["open", "openat", "openat2"];
/// Where those files must live for the check to apply: the kernel's own filesystems.
const KERNEL_PATHS: &[&str] = &["/dev/", "/proc/", "/sys/"];

/// The checks to send, and which of them each call depends on.
#[derive(Debug, Default)]
pub struct Plan {
    pub checks: Vec<SupportCheck>,
    calls: Vec<(SyscallId, Vec<usize>)>,
}

/// A call taken out of the run, and why (`not in this kernel (CONFIG_X is not set)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub reason: String,
}

pub fn plan(target: &Target, enabled: &[SyscallId]) -> Plan {
    let mut p = Plan::default();
    let mut index: HashMap<SupportCheck, usize> = HashMap::new();
    for &id in enabled {
        let s = &target.syscalls[id];
        let mut wanted = Vec::new();
        // A pseudo-call is the executor's own code, never ENOSYS.
        let pseudo = kfuzz_wire::PseudoCall::from_nr(s.nr).is_some();
        if !pseudo && !NEVER_PROBED.contains(&s.call_name.as_str()) {
            wanted.push(SupportCheck::Syscall { nr: s.nr });
        }
        if OPENS.contains(&s.call_name.as_str()) {
            if let Some(path) = constant_path(target, id) {
                wanted.push(SupportCheck::Path { path });
            }
        }
        if s.call_name == "socket" {
            let c = |i: usize, first_flag: bool| {
                s.args.get(i).and_then(|a| match &a.ty.kind {
                    TypeKind::Const { val, .. } => Some(*val),
                    TypeKind::Flags { vals, .. } if first_flag => vals.first().copied(),
                    _ => None,
                })
            };
            if let Some(domain) = c(0, false) {
                wanted.push(SupportCheck::Socket {
                    domain,
                    ty: c(1, true).unwrap_or(0),
                    proto: c(2, false).unwrap_or(0),
                });
            }
        }
        let idx = wanted
            .into_iter()
            .map(|w| {
                *index.entry(w.clone()).or_insert_with(|| {
                    p.checks.push(w);
                    p.checks.len() - 1
                })
            })
            .collect();
        p.calls.push((id, idx));
    }
    p
}

/// The one string a call's pointer argument can point to, if it is a path under `/dev`,
/// `/proc` or `/sys`.
fn constant_path(target: &Target, id: SyscallId) -> Option<String> {
    target.syscalls[id].args.iter().find_map(|a| {
        let TypeKind::Ptr { elem, .. } = &a.ty.kind else {
            return None;
        };
        let TypeKind::Buffer {
            kind: BufferKind::String { values, .. },
            ..
        } = &elem.kind
        else {
            return None;
        };
        let [v] = &values[..] else { return None };
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        let path = std::str::from_utf8(&v[..end]).ok()?;
        KERNEL_PATHS
            .iter()
            .any(|k| path.starts_with(k))
            .then(|| path.to_string())
    })
}

/// The calls of `enabled` to keep, and those dropped with why. `explain` names what a call
/// the kernel lacks needs (`CONFIG_ADVISE_SYSCALLS is not set`), given its syscall name.
pub fn apply(
    target: &Target,
    enabled: &[SyscallId],
    plan: &Plan,
    answers: &[Support],
    explain: &mut dyn FnMut(&str) -> Option<String>,
) -> (Vec<SyscallId>, Vec<Dropped>) {
    let mut dropped = Vec::new();
    let mut gone = BTreeSet::new();
    let mut explained: HashMap<String, String> = HashMap::new();
    for (id, idx) in &plan.calls {
        let s = &target.syscalls[*id];
        let reason = idx
            .iter()
            .find_map(|&i| match (&plan.checks[i], answers.get(i)?) {
                (_, Support::NoSyscall) => {
                    let why = explained.entry(s.call_name.clone()).or_insert_with(|| {
                        explain(&s.call_name).unwrap_or_else(|| "ENOSYS".into())
                    });
                    Some(format!("not in this kernel ({why})"))
                }
                (SupportCheck::Path { path }, Support::NoPath) => {
                    Some(format!("{path} does not exist in the guest"))
                }
                (SupportCheck::Socket { domain, .. }, Support::NoFamily) => {
                    Some(format!("address family {domain} not supported"))
                }
                _ => None,
            });
        if let Some(reason) = reason {
            gone.insert(*id);
            dropped.push(Dropped {
                name: s.name.clone(),
                reason,
            });
        }
    }
    let mut kept: Vec<SyscallId> = enabled
        .iter()
        .copied()
        .filter(|id| !gone.contains(id))
        .collect();
    // Calls left without a way to get a resource they need, which they had before. What each
    // call makes and needs is worked out once: thousands of calls are enabled with
    // syzkaller's descriptions.
    let makes: HashMap<SyscallId, HashSet<usize>> = enabled
        .iter()
        .map(|id| (*id, produced_resources(target, &target.syscalls[*id])))
        .collect();
    let needs: HashMap<SyscallId, Vec<usize>> = enabled
        .iter()
        .map(|id| (*id, required_resources(target, &target.syscalls[*id])))
        .collect();
    let all_made: HashSet<usize> = enabled
        .iter()
        .flat_map(|c| makes[c].iter().copied())
        .collect();
    loop {
        let made: HashSet<usize> = kept.iter().flat_map(|c| makes[c].iter().copied()).collect();
        let orphans: Vec<(usize, usize)> = kept
            .iter()
            .enumerate()
            .filter_map(|(k, id)| {
                let before = unmade(target, &all_made, &needs[id]);
                unmade(target, &made, &needs[id])
                    .into_iter()
                    .find(|r| !before.contains(r))
                    .map(|r| (k, r))
            })
            .collect();
        if orphans.is_empty() {
            break;
        }
        for (k, r) in orphans.iter().rev() {
            let id = kept.remove(*k);
            dropped.push(Dropped {
                name: target.syscalls[id].name.clone(),
                reason: format!(
                    "needs a {} resource, which no call left creates",
                    target.resources[*r].name
                ),
            });
        }
    }
    (kept, dropped)
}

/// Asks `vm`'s kernel about `enabled` and returns the calls to keep, after a warning for each
/// call dropped (a missing syscall named with its config option when `tree` tells it). None
/// when the VM did not answer.
pub fn check_vm(
    vm: &mut Vm,
    target: &Target,
    enabled: &[SyscallId],
    tree: Option<&KernelTree>,
    shell: &Shell,
) -> Option<Vec<SyscallId>> {
    let plan = plan(target, enabled);
    let answers = match vm.check_support(&plan.checks) {
        Ok(a) => a,
        Err(e) => {
            shell.warn(format!("{e:#} (asking the kernel which calls it has)"));
            return None;
        }
    };
    // The tree is scanned only when a syscall turns out to be missing.
    let mut config = None;
    let mut explain = |call: &str| {
        let sc = config.get_or_insert_with(|| {
            SyscallConfig::load(tree?)
                .map_err(|e| shell.verbose("Probe", format!("{e:#}")))
                .ok()
                .flatten()
        });
        sc.as_ref()?.why_missing(call)
    };
    let (kept, dropped) = apply(target, enabled, &plan, &answers, &mut explain);
    if !dropped.is_empty() && shell.is_term() {
        // Over the live status line.
        eprint!("\r\x1b[2K");
    }
    // A few are named one by one; thousands (syzkaller's descriptions on a small kernel) are
    // summed up by reason, each with -v.
    const NAMED: usize = 20;
    let verbose = shell.verbosity == crate::shell::Verbosity::Verbose;
    for d in &dropped {
        if dropped.len() <= NAMED {
            shell.warn(format!("{}: {}", d.name, d.reason));
        } else {
            shell.verbose("Dropped", format!("{}: {}", d.name, d.reason));
        }
        shell.json(&serde_json::json!({"reason": "call-dropped", "name": d.name, "why": d.reason}));
    }
    if dropped.len() > NAMED {
        let mut by_reason: HashMap<String, usize> = HashMap::new();
        for d in &dropped {
            *by_reason
                .entry(kfuzz_prog::summary::reason_class(&d.reason))
                .or_default() += 1;
        }
        let mut top: Vec<(String, usize)> = by_reason.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let list: Vec<String> = top
            .iter()
            .take(6)
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        shell.warn(format!(
            "{} calls cannot run on this kernel: {}{}",
            dropped.len(),
            list.join("; "),
            if verbose {
                ""
            } else {
                " (-v names each call and its option)"
            }
        ));
    }
    Some(kept)
}

/// The resources of `needs` that no kind in `made` can stand for.
fn unmade(target: &Target, made: &HashSet<usize>, needs: &[usize]) -> Vec<usize> {
    needs
        .iter()
        .copied()
        .filter(|need| {
            !made
                .iter()
                .any(|r| target.resources[*need].accepts(&target.resources[*r]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfuzz_prog::target::{compile, parse_files, DescriptionFile};

    fn target() -> Target {
        let text = "resource fd[int32]\n\
                    resource fd_foo[fd]\n\
                    resource sock[fd]\n\
                    madvise(addr int64, len int64, advice int32)\n\
                    exit(code int32)\n\
                    openat$foo(fd const[AT_FDCWD], file ptr[in, string[\"/dev/foo\"]], flags const[2], mode const[0]) fd_foo\n\
                    openat$tmp(fd const[AT_FDCWD], file ptr[in, string[\"/tmp/x\"]], flags const[2], mode const[0]) fd\n\
                    ioctl$foo(fd fd_foo, cmd const[1], arg int64)\n\
                    socket$inet6(domain const[AF_INET6], type flags[sock_types], proto const[0]) sock\n\
                    socket$unix(domain const[AF_UNIX], type flags[sock_types], proto const[0]) sock\n\
                    listen(fd sock, backlog int32)\n\
                    sock_types = SOCK_STREAM, SOCK_DGRAM\n";
        let files = [DescriptionFile {
            name: "t.txt".into(),
            text: text.into(),
        }];
        let nodes = parse_files(&files).expect("parses");
        let consts: HashMap<String, u64> = [
            ("AT_FDCWD", 0xffffffffffffff9c),
            ("AF_INET6", 10),
            ("AF_UNIX", 1),
            ("SOCK_STREAM", 1),
            ("SOCK_DGRAM", 2),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        let numbers: HashMap<String, u64> = [
            ("madvise", 28),
            ("exit", 60),
            ("openat", 257),
            ("ioctl", 16),
            ("socket", 41),
            ("listen", 50),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        let t = compile(&nodes, &consts, &numbers);
        assert!(t.disabled.is_empty(), "{:?}", t.disabled);
        t
    }

    fn id(t: &Target, name: &str) -> SyscallId {
        t.syscall(name).expect(name).id
    }

    #[test]
    fn checks_are_planned_once_each_and_never_for_exit() {
        let t = target();
        let all: Vec<SyscallId> = (0..t.syscalls.len()).collect();
        let p = plan(&t, &all);
        assert!(p.checks.contains(&SupportCheck::Path {
            path: "/dev/foo".into()
        }));
        assert!(!p
            .checks
            .iter()
            .any(|c| matches!(c, SupportCheck::Path { path } if path == "/tmp/x")));
        assert!(p.checks.contains(&SupportCheck::Socket {
            domain: 10,
            ty: 1,
            proto: 0
        }));
        assert!(!p.checks.contains(&SupportCheck::Syscall { nr: 60 }));
        let openats = p
            .checks
            .iter()
            .filter(|c| **c == SupportCheck::Syscall { nr: 257 })
            .count();
        assert_eq!(openats, 1);
    }

    #[test]
    fn missing_calls_are_dropped_with_the_reason_and_so_are_calls_left_without_a_resource() {
        let t = target();
        let all: Vec<SyscallId> = (0..t.syscalls.len()).collect();
        let p = plan(&t, &all);
        let answers: Vec<Support> = p
            .checks
            .iter()
            .map(|c| match c {
                SupportCheck::Syscall { nr: 28 } => Support::NoSyscall,
                SupportCheck::Path { .. } => Support::NoPath,
                SupportCheck::Socket { domain: 10, .. } => Support::NoFamily,
                _ => Support::Yes,
            })
            .collect();
        let mut asked = Vec::new();
        let mut explain = |c: &str| {
            asked.push(c.to_string());
            Some("CONFIG_ADVISE_SYSCALLS is not set".to_string())
        };
        let (kept, dropped) = apply(&t, &all, &p, &answers, &mut explain);
        let reasons: Vec<String> = dropped
            .iter()
            .map(|d| format!("{}: {}", d.name, d.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                "madvise: not in this kernel (CONFIG_ADVISE_SYSCALLS is not set)",
                "openat$foo: /dev/foo does not exist in the guest",
                "socket$inet6: address family 10 not supported",
                "ioctl$foo: needs a fd_foo resource, which no call left creates",
            ]
        );
        assert_eq!(asked, ["madvise"]);
        // listen keeps socket$unix; exit and openat$tmp are untouched.
        for n in ["exit", "openat$tmp", "socket$unix", "listen"] {
            assert!(kept.contains(&id(&t, n)), "{n} was dropped");
        }
        assert_eq!(kept.len(), 4);
    }
}
