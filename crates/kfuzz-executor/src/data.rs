//! The data areas where programs' pointers point: mapping them, copying arguments in and
//! results out, and, in a persistent runner, wiping between programs only what a program may
//! have written. A wipe must leave every area as a fresh mapping would: zeroed, read-write-exec.

use kfuzz_wire::{CopyValue, ExecCall};

use crate::pseudo;

/// Where the host puts pointer arguments: the data areas of the host/guest contract.
pub use kfuzz_wire::{data_room, in_data, DATA_AREAS};
pub const DATA_SIZE: usize = kfuzz_wire::DATA_SIZE as usize;

/// Maps every data area afresh (zeroed, over whatever the last program left there).
/// Returns false when one cannot be mapped.
pub fn map_data_areas() -> bool {
    DATA_AREAS.iter().all(|base| map_area(*base))
}

/// Maps the data area at `base` afresh.
fn map_area(base: u64) -> bool {
    // SAFETY: a fixed anonymous mapping at an address reserved for programs' data.
    let p = unsafe {
        libc::mmap(
            base as *mut libc::c_void,
            DATA_SIZE,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    p != libc::MAP_FAILED
}

/// A variable's value, or the default when the call that should have set it failed.
pub fn var(vars: &[Option<u64>], v: u32, d: u64) -> u64 {
    vars.get(v as usize).copied().flatten().unwrap_or(d)
}

/// The call's pointer arguments' contents, written into the data area.
pub fn copyin(call: &ExecCall, vars: &[Option<u64>]) {
    for c in &call.copyin {
        let Some(room) = data_room(c.addr) else {
            continue;
        };
        let room = room as usize;
        // SAFETY: writes stay inside the data area mapped in `setup` (room checked).
        unsafe {
            let p = c.addr as *mut u8;
            match &c.value {
                CopyValue::Int {
                    size,
                    big_endian,
                    val,
                } => write_int(p, *size, *big_endian, *val, room),
                CopyValue::Var {
                    size,
                    var: v,
                    default,
                } => write_int(p, *size, false, var(vars, *v, *default), room),
                CopyValue::Bytes(b) => {
                    std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len().min(room))
                }
            }
        }
    }
}

/// The call's results: its return value and the resources it wrote to memory.
pub fn copyout(call: &ExecCall, vars: &mut [Option<u64>], ret: i64) {
    if let Some(v) = call.ret_var {
        if let Some(slot) = vars.get_mut(v as usize) {
            *slot = Some(ret as u64);
        }
    }
    for c in &call.copyout {
        if in_data(c.addr, u64::from(c.size)) {
            // SAFETY: reading inside the data area.
            let v = unsafe { read_int(c.addr as *const u8, c.size) };
            if let Some(slot) = vars.get_mut(c.var as usize) {
                *slot = Some(v);
            }
        }
    }
}

/// # Safety
/// `p` must be valid for `room` bytes.
unsafe fn write_int(p: *mut u8, size: u8, be: bool, val: u64, room: usize) {
    let size = (size as usize).clamp(1, 8).min(room);
    let bytes = if be {
        val.to_be_bytes()[8 - size..].to_vec()
    } else {
        val.to_le_bytes()[..size].to_vec()
    };
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
}

/// # Safety
/// `p` must be valid for `size` bytes.
unsafe fn read_int(p: *const u8, size: u8) -> u64 {
    let mut b = [0u8; 8];
    let n = (size as usize).clamp(1, 8);
    std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n);
    u64::from_le_bytes(b)
}

/// Calls that change mappings rather than contents: an area one was pointed at is mapped
/// afresh.
const MAPPING_CALLS: [libc::c_long; 11] = [
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_pkey_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_remap_file_pages,
    libc::SYS_shmat,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_mlockall,
];

/// Of `MAPPING_CALLS`, those that change nothing when they fail.
const ALL_OR_NOTHING: [libc::c_long; 1] = [libc::SYS_shmat];

/// What a wipe must do to one area.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wipe {
    Nothing,
    /// Its pages from offset `.0` up to `.1` plus `WRITE_REACH` may hold data: drop them
    /// (they read back as zeroes).
    Pages(u64, u64),
    /// Its mapping may have changed: map it afresh.
    Map,
}

/// How far past the highest address a program pointed at in an area a wipe reaches. Dropping
/// pages costs a walk over their page tables (~1.5 ms for a whole 16 MiB area under TCG), and
/// programs point at the first pages of an area; a kernel write that starts in them and runs
/// further than this leaves data the next program may see.
const WRITE_REACH: u64 = 2 << 20;

const PAGE: u64 = 4096;

/// What the programs of a persistent runner may have done to the data areas since the last
/// wipe. An area counts as written where any value a program used (an argument, a pointer it
/// copied in, a value written into memory) points into it: a kernel only writes where it is
/// pointed. The first wipe maps every area.
pub struct Dirty {
    areas: [Wipe; DATA_AREAS.len()],
}

impl Default for Dirty {
    fn default() -> Self {
        Dirty {
            areas: [Wipe::Map; DATA_AREAS.len()],
        }
    }
}

fn area_of(v: u64) -> Option<usize> {
    DATA_AREAS
        .iter()
        .position(|base| v >= *base && v - *base < DATA_SIZE as u64)
}

impl Dirty {
    /// Marks the area `v` points into: to be mapped afresh with `map`, else its pages from
    /// `v` on to be dropped.
    fn raise(&mut self, v: u64, map: bool) {
        let Some(i) = area_of(v) else {
            return;
        };
        let off = v - DATA_AREAS[i];
        self.areas[i] = match self.areas[i] {
            Wipe::Map => Wipe::Map,
            _ if map => Wipe::Map,
            Wipe::Nothing => Wipe::Pages(off, off),
            Wipe::Pages(lo, hi) => Wipe::Pages(lo.min(off), hi.max(off)),
        };
    }

    /// After `call` ran with arguments `a` and returned `ret`.
    pub fn note_call(&mut self, call: &ExecCall, a: &pseudo::Args, vars: &[Option<u64>], ret: i64) {
        let nr = call.nr as libc::c_long;
        let remaps = MAPPING_CALLS.contains(&nr) && !(ret == -1 && ALL_OR_NOTHING.contains(&nr));
        if remaps && nr == libc::SYS_mlockall {
            self.areas = [Wipe::Map; DATA_AREAS.len()];
        }
        for v in a {
            self.raise(*v, remaps);
        }
        if remaps && ret != -1 {
            // Where mmap or shmat put the mapping.
            self.raise(ret as u64, true);
        }
        for c in &call.copyin {
            self.raise(c.addr, false);
            match &c.value {
                CopyValue::Int { val, .. } => self.raise(*val, false),
                CopyValue::Var {
                    var: v, default, ..
                } => self.raise(var(vars, *v, *default), false),
                CopyValue::Bytes(b) => {
                    self.raise(c.addr + (b.len() as u64).saturating_sub(1), false)
                }
            }
        }
    }

    /// Makes every area as a fresh mapping would be. False when one cannot be mapped.
    pub fn wipe(&mut self) -> bool {
        let mut ok = true;
        for (i, base) in DATA_AREAS.iter().enumerate() {
            let done = match self.areas[i] {
                Wipe::Nothing => true,
                Wipe::Pages(lo, hi) => {
                    let start = lo & !(PAGE - 1);
                    let end = (hi + WRITE_REACH).min(DATA_SIZE as u64);
                    // SAFETY: dropping pages of an area only programs use.
                    let r = unsafe {
                        libc::madvise(
                            (*base + start) as *mut libc::c_void,
                            (end - start) as usize,
                            libc::MADV_DONTNEED,
                        )
                    };
                    r == 0 || map_area(*base)
                }
                Wipe::Map => map_area(*base),
            };
            self.areas[i] = if done { Wipe::Nothing } else { Wipe::Map };
            ok &= done;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfuzz_wire::{Copyin, ExecCall};

    fn call(nr: libc::c_long, copyin: Vec<Copyin>) -> ExecCall {
        ExecCall {
            nr: nr as u64,
            args: Vec::new(),
            copyin,
            copyout: Vec::new(),
            ret_var: None,
        }
    }

    #[test]
    fn only_areas_a_program_pointed_at_are_wiped() {
        let mut d = Dirty {
            areas: [Wipe::Nothing; 3],
        };
        let mut a: pseudo::Args = [0; kfuzz_wire::PSEUDO_MAX_ARGS];
        a[1] = DATA_AREAS[1] + 0x100;
        d.note_call(&call(libc::SYS_read, Vec::new()), &a, &[], 5);
        assert_eq!(
            d.areas,
            [Wipe::Nothing, Wipe::Pages(0x100, 0x100), Wipe::Nothing]
        );
    }

    #[test]
    fn a_mapping_call_at_an_area_maps_it_again_unless_it_failed_cleanly() {
        let mut d = Dirty {
            areas: [Wipe::Nothing; 3],
        };
        let mut a: pseudo::Args = [0; kfuzz_wire::PSEUDO_MAX_ARGS];
        a[1] = DATA_AREAS[0];
        d.note_call(&call(libc::SYS_shmat, Vec::new()), &a, &[], -1);
        assert_eq!(d.areas[0], Wipe::Pages(0, 0));
        d.note_call(&call(libc::SYS_mprotect, Vec::new()), &a, &[], -1);
        assert_eq!(d.areas[0], Wipe::Map);
    }
}
