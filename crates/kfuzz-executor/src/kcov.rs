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

/// An open, mapped KCOV handle for the current thread.
pub struct Kcov {
    file: std::fs::File,
    area: *mut u64,
    words: usize,
}

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
            file,
            area: area.cast(),
            words,
        })
    }

    /// Starts collecting on the calling thread.
    pub fn enable(&self, mode: libc::c_ulong) -> std::io::Result<()> {
        // SAFETY: ioctl on our fd.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), KCOV_ENABLE, mode) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.reset();
        Ok(())
    }

    pub fn disable(&self) -> std::io::Result<()> {
        // SAFETY: ioctl on our fd.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), KCOV_DISABLE, 0 as libc::c_ulong) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn reset(&self) {
        // SAFETY: area[0] is the count word of a live mapping.
        unsafe { std::ptr::write_volatile(self.area, 0) };
    }

    /// The PCs collected since the last reset (trace-pc mode).
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
        // SAFETY: unmapping the mapping we created.
        unsafe { libc::munmap(self.area.cast(), self.words * 8) };
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
