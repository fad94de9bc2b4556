//! KCOV: per-thread kernel coverage through /sys/kernel/debug/kcov.

use std::os::fd::AsRawFd;

pub const KCOV_PATH: &str = "/sys/kernel/debug/kcov";
/// `_IOR('c', 1, unsigned long)`
const KCOV_INIT_TRACE: libc::c_ulong = 0x8008_6301;
/// `_IO('c', 100)`
const KCOV_ENABLE: libc::c_ulong = 0x6364;
/// `_IO('c', 101)`
const KCOV_DISABLE: libc::c_ulong = 0x6365;
pub const KCOV_TRACE_PC: libc::c_ulong = 0;
pub const KCOV_TRACE_CMP: libc::c_ulong = 1;

/// An open, mapped KCOV handle. Collection is per thread: the thread that calls `enable`.
pub struct Kcov {
    /// Keeps the fd `raw` uses open.
    _file: std::fs::File,
    raw: KcovRef,
}

/// A copyable view of an open handle, for the threads of a forked program (which never outlive
/// the handle: the child exits before the parent drops it).
#[derive(Clone, Copy)]
pub struct KcovRef {
    fd: libc::c_int,
    area: *mut u64,
    words: usize,
}

// SAFETY: the fd and mapping are plain kernel objects usable from any thread; KCOV itself
// refuses a second thread enabling the same handle.
unsafe impl Send for KcovRef {}

impl Kcov {
    /// Opens KCOV with room for `words` 64-bit entries.
    pub fn open(words: usize) -> std::io::Result<Kcov> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(KCOV_PATH)?;
        let fd = file.as_raw_fd();
        // SAFETY: ioctl on an fd we own; the argument is a size.
        if unsafe { libc::ioctl(fd, KCOV_INIT_TRACE, words as libc::c_ulong) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let len = words * 8;
        // SAFETY: mapping the KCOV buffer as the kernel documents; checked for MAP_FAILED.
        let area = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if area == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Kcov {
            raw: KcovRef {
                fd,
                area: area.cast(),
                words,
            },
            _file: file,
        })
    }

    /// See `KcovRef::range`.
    pub fn range(&self, start: usize, n: usize) -> &[u64] {
        self.raw.range(start, n)
    }

    pub fn raw(&self) -> KcovRef {
        self.raw
    }

    /// Starts collecting on the calling thread, from an empty buffer.
    pub fn enable(&self, mode: libc::c_ulong) -> std::io::Result<()> {
        self.raw.enable(mode)?;
        self.raw.reset();
        Ok(())
    }

    /// Keeps all but the first page (the count word and the first PCs) out of forked children:
    /// copying a mapping of KCOV's pages costs a fork about as much as the rest of the process
    /// (measured under TCG: 2 MiB of KCOV buffer made fork+exit ~13 ms slower). Children see
    /// the count and may reset it; this process reads the PCs.
    pub fn keep_from_forks(&self) {
        let page = 4096;
        let len = self.raw.words * 8;
        if len > page {
            // SAFETY: madvise on the tail of our own mapping.
            unsafe {
                libc::madvise(
                    self.raw.area.cast::<u8>().add(page).cast(),
                    len - page,
                    libc::MADV_DONTFORK,
                )
            };
        }
    }

    pub fn disable(&self) -> std::io::Result<()> {
        self.raw.disable()
    }

    pub fn reset(&self) {
        self.raw.reset()
    }

    /// The PCs collected since the last reset (trace-pc mode).
    pub fn pcs(&self) -> Vec<u64> {
        self.raw.pcs()
    }
}

impl KcovRef {
    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// The same handle, reached through another fd (after dup2).
    pub fn with_fd(self, fd: libc::c_int) -> KcovRef {
        KcovRef { fd, ..self }
    }

    /// Starts collecting on the calling thread; the buffer is not reset.
    pub fn enable(&self, mode: libc::c_ulong) -> std::io::Result<()> {
        // SAFETY: ioctl on an open KCOV fd.
        if unsafe { libc::ioctl(self.fd, KCOV_ENABLE, mode) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn disable(&self) -> std::io::Result<()> {
        // SAFETY: ioctl on an open KCOV fd.
        if unsafe { libc::ioctl(self.fd, KCOV_DISABLE, 0 as libc::c_ulong) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn reset(&self) {
        // SAFETY: area[0] is the count word of a live mapping.
        unsafe { std::ptr::write_volatile(self.area, 0) };
    }

    /// PCs recorded so far (the count word), clamped to the buffer.
    pub fn count(&self) -> usize {
        // SAFETY: area[0] is the count word of a live mapping.
        (unsafe { std::ptr::read_volatile(self.area) } as usize).min(self.words - 1)
    }

    /// PCs `start..start + n` of the buffer (clamped). Only for the process that mapped it:
    /// a forked child has the first page only (see `Kcov::keep_from_forks`).
    pub fn range(&self, start: usize, n: usize) -> &[u64] {
        let start = start.min(self.words - 1);
        let n = n.min(self.words - 1 - start);
        // SAFETY: entries 1..words of the mapping; start and n are clamped to it.
        unsafe { std::slice::from_raw_parts(self.area.add(1 + start), n) }
    }

    /// Comparison records `start..start + n` (KCOV_TRACE_CMP: four words each, the type, the
    /// two operands and the PC), as operand pairs. Only for the process that mapped it.
    pub fn comparisons(&self, start: usize, n: usize) -> Vec<(u64, u64)> {
        let records = (self.words - 1) / 4;
        let start = start.min(records);
        let n = n.min(records - start);
        // SAFETY: entries 1..words of the mapping; the records are clamped to it.
        let words = unsafe { std::slice::from_raw_parts(self.area.add(1 + 4 * start), 4 * n) };
        words.chunks_exact(4).map(|r| (r[1], r[2])).collect()
    }

    pub fn pcs(&self) -> Vec<u64> {
        // SAFETY: the mapping holds `words` u64s; the count is clamped to that.
        unsafe {
            let n = (std::ptr::read_volatile(self.area) as usize).min(self.words - 1);
            (0..n)
                .map(|i| std::ptr::read_volatile(self.area.add(i + 1)))
                .collect()
        }
    }
}

impl Drop for Kcov {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping we created (the fd closes with `file`).
        unsafe { libc::munmap(self.raw.area.cast(), self.raw.words * 8) };
    }
}

/// Whether KCOV accepts a mode (used to detect KCOV_TRACE_CMP).
pub fn supports(mode: libc::c_ulong) -> bool {
    let Ok(k) = Kcov::open(1024) else {
        return false;
    };
    let ok = k.enable(mode).is_ok();
    if ok {
        let _ = k.disable();
    }
    ok
}
