//! Compiling descriptions into a target, and what happens to calls that cannot be compiled.

use std::collections::HashMap;

use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};

pub fn target_of(text: &str, consts: &[(&str, u64)]) -> Target {
    let files = [DescriptionFile {
        name: "t.txt".into(),
        text: text.into(),
    }];
    let nodes = parse_files(&files).expect("parses");
    let consts: HashMap<String, u64> = consts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let numbers: HashMap<String, u64> = [
        ("open", 2),
        ("close", 3),
        ("read", 0),
        ("write", 1),
        ("pipe", 22),
        ("dup", 32),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    compile(&nodes, &consts, &numbers)
}

fn reason(t: &Target, call: &str) -> String {
    t.disabled
        .iter()
        .find(|d| d.name == call)
        .map(|d| d.reason.clone())
        .unwrap_or_else(|| panic!("{call} is not disabled: {:?}", t.disabled))
}

#[test]
fn unsupported_or_unknown_constructs_disable_only_their_calls() {
    let t = target_of(
        "resource fd[int32]: 0xffffffffffffffff\n\
         open(file ptr[in, filename], flags flags[open_flags]) fd\n\
         open_flags = O_RDONLY, O_WRONLY\n\
         close(fd fd)\n\
         read(fd fd, buf ptr[out, fmt[hex, int32]])\n\
         write(fd fd, buf ptr[in, no_such_type])\n\
         dup(fd fd, x const[NOT_IN_TREE])\n\
         pipe(x int32)\n\
         pipe(y int32)\n\
         nosuchcall(x int32)\n",
        &[("O_RDONLY", 0), ("O_WRONLY", 1)],
    );
    let enabled: Vec<&str> = t.syscalls.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(enabled, ["open", "close", "pipe"]);
    assert_eq!(
        reason(&t, "read"),
        "t.txt:5:26: type `fmt` is not supported by kfuzz yet"
    );
    assert_eq!(
        reason(&t, "write"),
        "t.txt:6:26: unknown type `no_such_type`"
    );
    assert_eq!(
        reason(&t, "dup"),
        "t.txt:7:20: constant `NOT_IN_TREE` is not defined by the tree's headers"
    );
    assert!(reason(&t, "pipe")
        .starts_with("t.txt:9:1: duplicate call name (first declared at t.txt:8:1)"));
    assert!(reason(&t, "nosuchcall").contains("not in the tree's syscall table"));
}

#[test]
fn a_call_needing_a_resource_nobody_makes_is_disabled() {
    let t = target_of("resource fd[int32]\nresource orphan[int32]\nclose(fd fd)\nread(x orphan)\nopen(x int32) fd\n", &[]);
    assert!(reason(&t, "read").contains("no enabled call can create resource `orphan`"));
    assert!(t.syscall("close").is_some());
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("`orphan` is never consumed")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn templates_structs_and_resource_inheritance() {
    let t = target_of(
        "resource fd[int32]: 0xffffffffffffffff\nresource fd_pipe[fd]\n\
         type pair[T] {\n\ta T\n\tb T\n} [packed]\n\
         type small int32[0:10, 2]\n\
         pipe(fds ptr[out, pair[fd_pipe]], s small)\n\
         close(fd fd)\n",
        &[],
    );
    let pipe = t.syscall("pipe").expect("pipe enabled");
    assert_eq!(t.structs.len(), 1);
    assert!(t.structs[0].packed);
    assert_eq!(t.structs[0].name, "pair[fd_pipe]");
    let fd = t.resource("fd").unwrap();
    let fd_pipe = t.resource("fd_pipe").unwrap();
    assert!(t.resources[fd].accepts(&t.resources[fd_pipe]));
    assert!(!t.resources[fd_pipe].accepts(&t.resources[fd]));
    assert_eq!(t.resources[fd_pipe].special, [0xffffffffffffffff]);
    assert!(kfuzz_prog::target::produces(&t, pipe, fd_pipe));
}

#[test]
fn resources_that_are_their_own_base_disable_their_users_without_recursing_forever() {
    let t = target_of(
        "resource ra[rb]\nresource rb[ra]\nresource rc[rc]\n\
         read$ra(fd ra, buf ptr[out, int8], n len[buf])\n\
         read$rc(fd rc, buf ptr[out, int8], n len[buf])\n",
        &[],
    );
    assert!(reason(&t, "read$ra").contains("is its own base"));
    assert!(reason(&t, "read$rc").contains("is its own base"));
}
