//! The diff side against hand-written diffs and a throw-away git repository.

use super::*;

fn lines(p: &Patch, path: &str) -> Vec<u32> {
    p.lines_of(path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", p.files.keys()))
        .iter()
        .copied()
        .collect()
}

const MODIFIED: &str = "\
diff --git a/ipc/shm.c b/ipc/shm.c
index 1111111..2222222 100644
--- a/ipc/shm.c
+++ b/ipc/shm.c
@@ -10,7 +10,8 @@ static int newseg(struct ipc_namespace *ns)
 a
 b
-c
+C
+C2
 d
 e
 f
 g
@@ -40,3 +41,3 @@ void f(void)
 x
-y
+Y
 z
";

#[test]
fn added_and_modified_lines_are_numbered_in_the_new_file() {
    let p = Patch::parse(MODIFIED, "t.diff").unwrap();
    assert_eq!(p.files.len(), 1);
    let f = &p.files["ipc/shm.c"];
    assert_eq!(f.status, FileStatus::Modified);
    assert!(!f.binary);
    assert_eq!(lines(&p, "ipc/shm.c"), vec![12, 13, 42]);
    assert_eq!(p.line_count(), 3);
}

#[test]
fn a_pure_deletion_marks_the_line_that_follows_it() {
    let d = "\
--- a/mm/shmem.c
+++ b/mm/shmem.c
@@ -5,6 +5,4 @@
 one
 two
-gone1
-gone2
 three
 four
";
    let p = Patch::parse(d, "t.diff").unwrap();
    // New numbering: one=5, two=6, three=7.
    assert_eq!(lines(&p, "mm/shmem.c"), vec![7]);
}

#[test]
fn a_deletion_ending_the_hunk_marks_the_line_before() {
    // At the end of the file, and in a diff without context (`-U0`).
    let d = "\
--- a/a.c
+++ b/a.c
@@ -1,3 +1,2 @@
 x
 y
-z
--- a/b.c
+++ b/b.c
@@ -20,2 +19,0 @@
-p
-q
";
    let p = Patch::parse(d, "t.diff").unwrap();
    assert_eq!(lines(&p, "a.c"), vec![2]);
    assert_eq!(lines(&p, "b.c"), vec![19]);
}

#[test]
fn new_deleted_renamed_and_binary_files() {
    let d = "\
From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] ipc: things

A commit message line.
--- this line is prose, not a header
---
 ipc/new.c | 2 ++
 2 files changed

diff --git a/ipc/new.c b/ipc/new.c
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/ipc/new.c
@@ -0,0 +1,2 @@
+int a;
+int b;
diff --git a/ipc/old.c b/ipc/old.c
deleted file mode 100644
index 4444444..0000000
--- a/ipc/old.c
+++ /dev/null
@@ -1,2 +0,0 @@
-int a;
-int b;
diff --git a/ipc/msg.c b/ipc/message.c
similarity index 90%
rename from ipc/msg.c
rename to ipc/message.c
index 5555555..6666666 100644
--- a/ipc/msg.c
+++ b/ipc/message.c
@@ -3,1 +3,1 @@
-old
+new
diff --git a/ipc/sem.c b/ipc/semaphore.c
similarity index 100%
rename from ipc/sem.c
rename to ipc/semaphore.c
diff --git a/firmware/blob.bin b/firmware/blob.bin
index 7777777..8888888 100644
Binary files a/firmware/blob.bin and b/firmware/blob.bin differ
diff --git a/firmware/lit.bin b/firmware/lit.bin
new file mode 100644
index 0000000..9999999
GIT binary patch
literal 12
Tcmd;L;9_86U|?YAVBi1%0RRGg

literal 0
HcmV?d00001

-- 
2.39.2
";
    let p = Patch::parse(d, "series.patch").unwrap();
    let names: Vec<&str> = p.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "firmware/blob.bin",
            "firmware/lit.bin",
            "ipc/message.c",
            "ipc/new.c",
            "ipc/old.c",
            "ipc/semaphore.c"
        ]
    );
    assert_eq!(p.files["ipc/new.c"].status, FileStatus::Added);
    assert_eq!(lines(&p, "ipc/new.c"), vec![1, 2]);
    assert_eq!(p.files["ipc/old.c"].status, FileStatus::Deleted);
    assert!(p.files["ipc/old.c"].lines.is_empty());
    let m = &p.files["ipc/message.c"];
    assert_eq!(m.status, FileStatus::Renamed);
    assert_eq!(m.old_path.as_deref(), Some("ipc/msg.c"));
    assert_eq!(lines(&p, "ipc/message.c"), vec![3]);
    let s = &p.files["ipc/semaphore.c"];
    assert_eq!((s.status, s.lines.len()), (FileStatus::Renamed, 0));
    assert!(p.files["firmware/blob.bin"].binary);
    let lit = &p.files["firmware/lit.bin"];
    assert!(lit.binary && lit.status == FileStatus::Added);
}

#[test]
fn plain_diff_u_with_timestamps_and_no_newline_markers() {
    let d = "\
--- linux.orig/ipc/util.c\t2024-01-01 10:00:00.000000000 +0000
+++ linux/ipc/util.c\t2024-01-02 10:00:00.000000000 +0000
@@ -1 +1 @@
-a
\\ No newline at end of file
+b
\\ No newline at end of file
";
    let p = Patch::parse(d, "t.diff").unwrap();
    assert_eq!(lines(&p, "ipc/util.c"), vec![1]);
}

#[test]
fn hunk_lines_that_look_like_headers_are_content() {
    // A removed line `-- x` shows as `--- x`, an added `++ y` as `+++ y`.
    let d = "\
--- a/Documentation/x.rst
+++ b/Documentation/x.rst
@@ -1,2 +1,2 @@
--- x
+++ y
 z
";
    let p = Patch::parse(d, "t.diff").unwrap();
    assert_eq!(p.files.len(), 1);
    assert_eq!(lines(&p, "Documentation/x.rst"), vec![1]);
}

#[test]
fn malformed_diffs_name_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n",
            4,
            "ends inside the hunk at line 3",
        ),
        (
            "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n",
            6,
            "after the hunk at line 3 ended",
        ),
        (
            "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n@@ -9 +9 @@\n",
            5,
            "does not fit",
        ),
        (
            "--- a/x\n+++ b/x\n@@ -1,x +1 @@\n",
            3,
            "malformed hunk header",
        ),
        ("@@ -1 +1 @@\n-a\n+b\n", 1, "outside a file"),
        (
            "diff --git a/x b/x\n--- a/x\n@@ -1 +1 @@\n",
            2,
            "followed by a `+++ `",
        ),
        ("hello\nworld\n", 2, "not a diff"),
    ];
    for (text, line, msg) in cases {
        let e = Patch::parse(text, "bad.diff").unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.to_string().contains(msg), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("bad.diff:{line}: ")),
            "{e}"
        );
    }
}

#[test]
fn a_very_long_line_is_an_error_not_an_allocation() {
    let mut d = String::from("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+");
    d.push_str(&"y".repeat((1 << 20) + 10));
    let e = Patch::parse(&d, "big.diff").unwrap_err();
    assert_eq!(e.line, 5);
}

#[test]
fn config_options_from_kconfig_blocks_and_fragments() {
    let d = "\
--- a/init/Kconfig
+++ b/init/Kconfig
@@ -1,6 +1,7 @@
 config SYSVIPC
 \tbool \"System V IPC\"
+\tdepends on MMU
 
 config POSIX_MQUEUE
 \tbool \"POSIX Message Queues\"
 \tdepends on NET
--- a/arch/x86/configs/x86_64_defconfig
+++ b/arch/x86/configs/x86_64_defconfig
@@ -1,2 +1,2 @@
-# CONFIG_SHMEM is not set
+CONFIG_SHMEM=y
 CONFIG_NET=y
--- a/ipc/shm.c
+++ b/ipc/shm.c
@@ -1 +1 @@
-CONFIG_NOT_A_CONFIG_FILE=y
+x
";
    let p = Patch::parse(d, "t.diff").unwrap();
    let opts: Vec<&str> = p.config_options.iter().map(String::as_str).collect();
    assert_eq!(opts, vec!["SHMEM", "SYSVIPC"]);
}

#[test]
fn quoted_and_spaced_paths() {
    let d = "\
diff --git \"a/dir/t\\303\\251st.c\" \"b/dir/t\\303\\251st.c\"
index 1..2 100644
--- \"a/dir/t\\303\\251st.c\"
+++ \"b/dir/t\\303\\251st.c\"
@@ -1 +1 @@
-a
+b
diff --git a/my file.c b/my file.c
index 1..2 100644
Binary files a/my file.c and b/my file.c differ
";
    let p = Patch::parse(d, "t.diff").unwrap();
    assert_eq!(lines(&p, "dir/t\u{e9}st.c"), vec![1]);
    assert!(p.files["my file.c"].binary);
}

#[test]
fn patch_source_from_the_command_line() {
    assert_eq!(PatchSource::from_arg(None), PatchSource::WorkingTree);
    assert_eq!(
        PatchSource::from_arg(Some("HEAD~2")),
        PatchSource::Revision("HEAD~2".into())
    );
    let f = tempfile::NamedTempFile::new().unwrap();
    let path = f.path().to_str().unwrap();
    assert_eq!(
        PatchSource::from_arg(Some(path)),
        PatchSource::File(f.path().to_path_buf())
    );
}

mod git {
    use super::*;
    use std::fs;

    fn commit(repo: &git2::Repository, msg: &str) -> git2::Oid {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
    }

    fn numbered(n: u32) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn working_tree_then_head_then_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        fs::create_dir(dir.path().join("ipc")).unwrap();
        fs::write(dir.path().join("ipc/shm.c"), numbered(20)).unwrap();
        fs::write(dir.path().join("ipc/gone.c"), numbered(3)).unwrap();
        commit(&repo, "base");

        // Second commit: line 5 changed, line 15 deleted, a file removed.
        let mut text = numbered(20).replace("line 5\n", "LINE 5\n");
        text = text.replace("line 15\n", "");
        fs::write(dir.path().join("ipc/shm.c"), &text).unwrap();
        fs::remove_file(dir.path().join("ipc/gone.c")).unwrap();
        let second = commit(&repo, "change shm");

        // Clean tree: HEAD's own change.
        let p = Patch::load(dir.path(), &PatchSource::WorkingTree).unwrap();
        assert!(p.origin.starts_with("HEAD ("), "{}", p.origin);
        assert!(p.origin.ends_with(" change shm)"), "{}", p.origin);
        assert_eq!(lines(&p, "ipc/shm.c"), vec![5, 15]);
        assert_eq!(p.files["ipc/gone.c"].status, FileStatus::Deleted);

        // A dirty tree: its changes only (one staged, one not).
        fs::write(
            dir.path().join("ipc/shm.c"),
            text.replace("line 2\n", "two\n"),
        )
        .unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("ipc/shm.c")).unwrap();
        index.write().unwrap();
        fs::write(
            dir.path().join("ipc/shm.c"),
            text.replace("line 2\n", "two\n")
                .replace("line 9\n", "nine\n"),
        )
        .unwrap();
        let p = Patch::load(dir.path(), &PatchSource::WorkingTree).unwrap();
        assert_eq!(p.origin, "working tree against HEAD");
        assert_eq!(lines(&p, "ipc/shm.c"), vec![2, 9]);
        assert!(!p.files.contains_key("ipc/gone.c"));

        // A revision, by name and by id: the same as HEAD's change was.
        for rev in ["HEAD".to_string(), second.to_string()] {
            let p = Patch::load(dir.path(), &PatchSource::Revision(rev)).unwrap();
            assert_eq!(lines(&p, "ipc/shm.c"), vec![5, 15]);
        }
        // The root commit: every file added.
        let p = Patch::load(dir.path(), &PatchSource::Revision("HEAD~1".into())).unwrap();
        assert_eq!(p.files["ipc/shm.c"].status, FileStatus::Added);
        assert_eq!(p.files["ipc/shm.c"].lines.len(), 20);

        let e = Patch::load(dir.path(), &PatchSource::Revision("nope".into())).unwrap_err();
        assert!(e.to_string().contains("`nope` is not a commit"), "{e:#}");
    }

    #[test]
    fn a_tree_outside_git_says_to_use_a_diff_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = Patch::load(dir.path(), &PatchSource::WorkingTree).unwrap_err();
        assert!(
            e.to_string().contains("give the patch as a .diff file"),
            "{e:#}"
        );
    }

    #[test]
    fn git_and_the_text_parser_agree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        fs::write(dir.path().join("a.c"), numbered(40)).unwrap();
        commit(&repo, "base");
        let text = numbered(40)
            .replace("line 3\n", "")
            .replace("line 20\n", "twenty\nmore\n")
            .replace("line 40\n", "");
        fs::write(dir.path().join("a.c"), text).unwrap();
        let from_git = Patch::load(dir.path(), &PatchSource::WorkingTree).unwrap();
        let head = repo.head().unwrap().peel_to_tree().unwrap();
        let diff = repo
            .diff_tree_to_workdir_with_index(Some(&head), None)
            .unwrap();
        let mut buf = Vec::new();
        diff.print(git2::DiffFormat::Patch, |_, _, l| {
            if matches!(l.origin(), '+' | '-' | ' ') {
                buf.push(l.origin() as u8);
            }
            buf.extend_from_slice(l.content());
            true
        })
        .unwrap();
        let from_text = Patch::read(&buf[..], "printed").unwrap();
        assert_eq!(from_git.files, from_text.files);
        assert_eq!(lines(&from_git, "a.c"), vec![3, 19, 20, 39]);
    }
}

#[test]
fn huge_hunk_counts_are_an_error_not_an_allocation() {
    let d = "\
--- a/ipc/shm.c
+++ b/ipc/shm.c
@@ -1,1 +4294967290,4294967295 @@
+x
";
    let e = Patch::parse(d, "huge.diff").expect_err("a hunk that ends early");
    assert!(e.to_string().starts_with("huge.diff:"), "{e}");
    let d = "\
--- a/ipc/shm.c
+++ b/ipc/shm.c
@@ -1 +99999999999999999999999 @@
+x
";
    let e = Patch::parse(d, "big.diff").expect_err("a number past u32");
    assert!(e.to_string().starts_with("big.diff:3"), "{e}");
}

#[test]
fn unchanged_lines_move_by_the_hunks_before_them() {
    // Old 10-12 → new 10-13 (one line added after old 11); old 30 deleted (new 30 after it).
    let text = "--- a/x.c\n+++ b/x.c\n@@ -10,3 +10,4 @@\n a\n b\n+new\n c\n@@ -29,3 +30,2 @@\n d\n-gone\n e\n";
    let p = Patch::parse(text, "t.diff").unwrap();
    let f = &p.files["x.c"];
    assert_eq!(f.new_line_of(1), Some(1));
    assert_eq!(f.new_line_of(9), Some(9));
    // Inside a hunk (changed or context): no answer.
    assert_eq!(f.new_line_of(11), None);
    assert_eq!(f.new_line_of(12), None);
    assert_eq!(f.new_line_of(13), Some(14));
    assert_eq!(f.new_line_of(28), Some(29));
    assert_eq!(f.new_line_of(30), None);
    // After both: +1 then -1.
    assert_eq!(f.new_line_of(32), Some(32));
    assert_eq!(f.new_line_of(100), Some(100));
}

#[test]
fn an_insertion_with_no_old_lines_moves_only_what_follows_it() {
    // Two lines inserted after old line 5.
    let text = "--- a/x.c\n+++ b/x.c\n@@ -5,0 +6,2 @@\n+one\n+two\n";
    let p = Patch::parse(text, "t.diff").unwrap();
    let f = &p.files["x.c"];
    assert_eq!(f.new_line_of(5), Some(5));
    assert_eq!(f.new_line_of(6), Some(8));
}

#[test]
fn a_series_changing_a_file_twice_moves_lines_through_both() {
    let text = "--- a/x.c\n+++ b/x.c\n@@ -5,0 +6,1 @@\n+one\n--- a/x.c\n+++ b/x.c\n@@ -1,0 +2,1 @@\n+two\n";
    let p = Patch::parse(text, "t.diff").unwrap();
    let f = &p.files["x.c"];
    assert_eq!(f.new_line_of(10), Some(12));
    assert_eq!(f.new_line_of(1), Some(1));
}

#[test]
fn hunks_at_the_end_of_the_line_range_move_lines_without_overflow() {
    let text = format!(
        "--- a/x.c\n+++ b/x.c\n@@ -{m},0 +{m},1 @@\n+one\n",
        m = u32::MAX
    );
    let p = Patch::parse(&text, "t.diff").unwrap();
    let f = &p.files["x.c"];
    assert_eq!(f.new_line_of(7), Some(7));
    assert_eq!(f.new_line_of(u32::MAX), Some(u32::MAX));
}
