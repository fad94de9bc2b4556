//! Pseudo-calls (`syz_*`) from descriptions to the executor's encoding and to C: the ones the
//! executor implements get its numbers, the others stay out with a reason; compressed images
//! read and print as syzkaller writes them; prog2c calls a helper per pseudo-call.

use std::collections::HashMap;

use kfuzz_prog::target::{compile, parse_files, DescriptionFile, Target};
use kfuzz_wire::{CopyValue, ExecArg, PseudoCall};

const DESCRIPTIONS: &str = r#"
resource fd[int32]: 0xffffffffffffffff
resource fd_dir[fd]
resource sock_nl_generic[fd]
resource pid[int32]: 0, 0xffffffffffffffff
resource genl_nlctrl_family_id[int16]
open_flags = O_RDONLY, O_RDWR
mount_flags = MS_RDONLY, MS_NOSUID

syz_open_dev$null(dev ptr[in, string["/dev/null"]], id intptr, flags flags[open_flags]) fd
syz_open_procfs(pid pid, file ptr[in, string["status"]]) fd
syz_genetlink_get_family_id$nlctrl(name ptr[in, string["nlctrl"]], fd sock_nl_generic) genl_nlctrl_family_id
syz_mount_image$tmpfs(fs ptr[in, string["tmpfs"]], dir ptr[in, filename], flags flags[mount_flags], opts ptr[in, string], chdir bool8, size len[img], img ptr[in, compressed_image]) fd_dir (no_generate, no_minimize)
syz_kvm_setup_cpu(fd fd)
read(fd fd, buf buffer[out], count len[buf])
getpid() pid
socket$nl_generic(domain const[16], type const[3], proto const[16]) sock_nl_generic
"#;

fn target() -> Target {
    let files = [DescriptionFile {
        name: "pseudo.txt".into(),
        text: DESCRIPTIONS.into(),
    }];
    let nodes = parse_files(&files).expect("parses");
    let consts: HashMap<String, u64> = [
        ("O_RDONLY", 0),
        ("O_RDWR", 2),
        ("MS_RDONLY", 1),
        ("MS_NOSUID", 2),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    let numbers: HashMap<String, u64> = [
        ("read".to_string(), 0),
        ("getpid".to_string(), 39),
        ("socket".to_string(), 41),
    ]
    .into();
    compile(&nodes, &consts, &numbers)
}

/// zlib of "kfuzz image", as syzkaller writes a compressed image.
const IMAGE_B64: &str = "eNrLTiutqlLIzE1MTwUAGroEXg==";
const IMAGE: &[u8] = &[
    0x78, 0xda, 0xcb, 0x4e, 0x2b, 0xad, 0xaa, 0x52, 0xc8, 0xcc, 0x4d, 0x4c, 0x4f, 0x05, 0x00, 0x1a,
    0xba, 0x04, 0x5e,
];

fn program() -> String {
    format!(
        "r0 = syz_open_dev$null(&(0x20000000)='/dev/null\\x00', 0x0, 0x2)\n\
         read(r0, &(0x20000100)=\"\"/16, 0x10)\n\
         syz_open_procfs(0x0, &(0x20000200)='status\\x00')\n\
         syz_genetlink_get_family_id$nlctrl(&(0x20000300)='nlctrl\\x00', 0xffffffffffffffff)\n\
         syz_mount_image$tmpfs(&(0x20000400)='tmpfs\\x00', &(0x20000500)='./file0\\x00', 0x1, &(0x20000600)='size=1m\\x00', 0x0, 0x13, &(0x20000700)=\"${IMAGE_B64}\")\n"
    )
}

#[test]
fn implemented_pseudo_calls_get_the_executors_numbers_and_the_rest_a_reason() {
    let t = target();
    let nr = |name: &str| {
        t.syscalls
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} disabled: {:?}", t.disabled))
            .nr
    };
    assert_eq!(nr("syz_open_dev$null"), PseudoCall::OpenDev.nr());
    assert_eq!(nr("syz_open_procfs"), PseudoCall::OpenProcfs.nr());
    assert_eq!(
        nr("syz_genetlink_get_family_id$nlctrl"),
        PseudoCall::GenetlinkGetFamilyId.nr()
    );
    assert_eq!(nr("syz_mount_image$tmpfs"), PseudoCall::MountImage.nr());
    assert_eq!(nr("read"), 0);
    let kvm = t
        .disabled
        .iter()
        .find(|d| d.name == "syz_kvm_setup_cpu")
        .expect("syz_kvm_setup_cpu is disabled");
    assert!(
        kvm.reason
            .ends_with("pseudo-syscall `syz_kvm_setup_cpu` is not implemented by kfuzz's executor"),
        "{}",
        kvm.reason
    );
}

#[test]
fn calls_taking_images_are_parsed_but_never_generated() {
    let t = target();
    let mount = t
        .syscalls
        .iter()
        .find(|s| s.name == "syz_mount_image$tmpfs")
        .unwrap();
    assert!(mount.no_generate);
    assert_eq!(mount.args.len(), 7);
    let all: Vec<usize> = (0..t.syscalls.len()).collect();
    let ct = kfuzz_prog::gen::ChoiceTable::new(&t, &all);
    assert!(!ct.is_enabled(mount.id));
    assert!(ct.is_enabled(t.syscalls.iter().find(|s| s.name == "read").unwrap().id));
}

#[test]
fn a_pseudo_call_program_round_trips_and_encodes_its_image_as_given() {
    let t = target();
    let text = program();
    let p = kfuzz_prog::text::parse(&t, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kfuzz_prog::text::format(&t, &p), text);

    let e = kfuzz_prog::exec::encode(&t, &p);
    assert_eq!(e.calls[0].nr, 0x10000);
    assert!(e.calls[0]
        .copyin
        .iter()
        .any(|c| c.addr == 0x2000_0000 && c.value == CopyValue::Bytes(b"/dev/null\0".to_vec())));
    assert_eq!(e.calls[0].args[2], ExecArg::Const(2));
    assert_eq!(e.calls[1].nr, 0, "read stays a syscall");
    let mount = &e.calls[4];
    assert_eq!(mount.nr, PseudoCall::MountImage.nr());
    assert_eq!(mount.args.len(), 7);
    assert_eq!(mount.args[5], ExecArg::Const(IMAGE.len() as u64));
    assert!(mount
        .copyin
        .iter()
        .any(|c| c.addr == 0x2000_0700 && c.value == CopyValue::Bytes(IMAGE.to_vec())));
}

#[test]
fn bad_image_text_is_an_error_at_its_column() {
    let t = target();
    let line = "syz_mount_image$tmpfs(&(0x20000400)='tmpfs\\x00', &(0x20000500)='./file0\\x00', 0x0, &(0x20000600)='\\x00', 0x0, 0x1, &(0x20000700)=\"$eJ!z\")\n";
    let err = kfuzz_prog::text::parse(&t, line).unwrap_err();
    assert!(err.message.contains("base64"), "{err}");
    assert_eq!(err.col, line.find('!').unwrap() + 1, "{err}");
}

#[test]
fn prog2c_calls_one_helper_per_pseudo_call_and_links_zlib_for_images() {
    let t = target();
    let p = kfuzz_prog::text::parse(&t, &program()).unwrap();
    let c = kfuzz_prog::csource::generate(&t, &p, &Default::default());
    for name in [
        "syz_open_dev",
        "syz_open_procfs",
        "syz_genetlink_get_family_id",
        "syz_mount_image",
    ] {
        assert_eq!(
            c.matches(&format!("static long {name}(")).count(),
            1,
            "one helper for {name}:\n{c}"
        );
    }
    assert!(!c.contains("syz_emit_ethernet"), "only the helpers used");
    assert!(
        c.contains("res = syz_open_dev((long)0x20000000, (long)0x0, (long)O_RDWR);"),
        "{c}"
    );
    assert!(c.contains("syz_mount_image((long)0x20000400, (long)0x20000500, (long)MS_RDONLY"));
    assert!(c.contains("#include <zlib.h>") && c.contains("repro.c -lz"));
    assert!(!c.contains("__NR_syz"), "{c}");
    assert!(
        c.contains("syscall(__NR_read") || c.contains("read(r[0]"),
        "{c}"
    );
}
