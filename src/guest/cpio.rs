//! A writer for the cpio "newc" format the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst). Pure: bytes in, bytes out.

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

#[derive(Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    ino: u32,
}

impl CpioWriter {
    pub fn new() -> CpioWriter {
        CpioWriter::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0, // mtime: fixed, so the archive is reproducible
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    pub fn dir(&mut self, path: &str) {
        self.entry(path, S_IFDIR | 0o755, (0, 0), &[]);
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, S_IFREG | (perm & 0o7777), (0, 0), data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
    }

    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | (perm & 0o7777), (major, minor), &[]);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        // The kernel reads the archive in 512-byte blocks; pad like cpio(1) does.
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_end_with_a_trailer() {
        let mut w = CpioWriter::new();
        w.dir("/dev");
        w.file("/init", 0o755, b"abc");
        w.symlink("/bin/sh", "busybox");
        let out = w.finish();
        assert_eq!(out.len() % 512, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("dev\0"));
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // "init" header: name size 5 (with NUL), file size 3.
        let at = text.find("init\0").unwrap();
        let header = &text[at - 110..at];
        assert_eq!(&header[54..62], "00000003", "filesize field");
        assert_eq!(&header[94..102], "00000005", "namesize field");
        // Data of the file starts 4-aligned.
        let data_at = (at + 5).next_multiple_of(4);
        assert_eq!(&out[data_at..data_at + 3], b"abc");
    }

    /// The system's cpio(1) reads what we write.
    #[test]
    fn gnu_cpio_lists_the_archive() {
        let cpio = which::which("cpio").expect("cpio(1), installed by scripts/install-deps.sh");
        let mut w = CpioWriter::new();
        w.dir("/etc");
        w.file("/etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n");
        w.char_device("/dev/console", 0o600, 5, 1);
        let out = w.finish();
        let listing = duct::cmd!(cpio, "-it", "--quiet")
            .stdin_bytes(out)
            .read()
            .unwrap();
        assert_eq!(
            listing.lines().collect::<Vec<_>>(),
            ["etc", "etc/passwd", "dev/console"]
        );
    }
}
