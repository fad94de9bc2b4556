//! One test per family of skipped functions: a KASAN report whose faulting function is in the
//! family is titled after its caller. And syscall entry prefixes coming off the named frame.

use super::super::{frames, parse, skip};
use super::first;

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
