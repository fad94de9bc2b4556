//! Turning a call's KCOV PCs into edge signal, and the sets that remember what a VM's results
//! already reported. The executor sends each call's PCs as KCOV recorded them; the host turns
//! them into signal here (under TCG the same work cost the guest ~7 ms per program, natively it
//! is a fraction of one). The sets hash with one folded multiply. Nothing here may drop signal
//! the fuzzer has not seen.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for keys that are PCs or already-mixed edge hashes: a folded 128-bit multiply
/// spreads them over both the high bits (hashbrown's tags) and the low bits (its buckets).
#[derive(Default, Clone, Copy)]
pub struct FoldHasher(u64);

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.0 ^ v) * u128::from(MIX);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// A set of PCs or edges.
pub type FastSet<T> = HashSet<T, BuildHasherDefault<FoldHasher>>;

/// A PC's 32-bit hash; an edge is the hash of its PC xor the rotated hash of the one before.
pub fn hash(pc: u64) -> u32 {
    let mut x = pc ^ (pc >> 29);
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x as u32
}

/// What `call_signal` returns: the call's new (or all) edges, and how many distinct PCs it hit.
pub struct CallSignal {
    pub signal: Vec<u32>,
    pub cover: u32,
}

/// One call's edges not in `seen` (all of them with `full`), sorted; `seen` learns the new
/// ones. `distinct` is scratch space, emptied first, and holds the call's PCs afterwards.
pub fn call_signal(
    pcs: &[u64],
    seen: &mut FastSet<u32>,
    full: bool,
    distinct: &mut FastSet<u64>,
) -> CallSignal {
    distinct.clear();
    let mut prev: u32 = 0;
    let mut signal = Vec::new();
    for &pc in pcs {
        let h = hash(pc);
        let edge = h ^ prev;
        prev = h.rotate_left(1);
        distinct.insert(pc);
        if seen.insert(edge) || full {
            signal.push(edge);
        }
    }
    signal.sort_unstable();
    signal.dedup();
    CallSignal {
        signal,
        cover: distinct.len() as u32,
    }
}

/// Where x86_64 kernels keep their code: the kernel text mapping and the modules area
/// (Documentation/arch/x86/x86_64/mm.rst), from `__START_KERNEL_map` up to the fixmap.
pub const KERNEL_TEXT: std::ops::Range<u64> = 0xffff_ffff_8000_0000..0xffff_ffff_ff00_0000;

/// Whether `pc` can be a PC KCOV recorded. KCOV's buffer is ordinary memory of the process
/// that runs the programs, and a fuzzed call can write over it (its count word above all):
/// what it then holds is not coverage, and once thousands of such words counted as new PCs.
pub fn is_kernel_pc(pc: u64) -> bool {
    KERNEL_TEXT.contains(&pc)
}

/// The PCs of one call as they travel: little-endian u64s, copied in bulk.
pub fn pcs_to_bytes(pcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcs.len() * 8);
    for pc in pcs {
        out.extend_from_slice(&pc.to_le_bytes());
    }
    out
}

/// The PCs `pcs_to_bytes` made (a trailing partial word is ignored).
pub fn pcs_from_bytes(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            u64::from_le_bytes(b)
        })
        .collect()
}

/// What one VM's results have reported so far: the edges (or what the host told it it has,
/// see `learn`) and the PCs. A new VM starts with none.
#[derive(Default)]
pub struct Known {
    signal: FastSet<u32>,
    pcs: FastSet<u64>,
    scratch: FastSet<u64>,
    /// Words results carried as PCs that are not kernel code (see `is_kernel_pc`), dropped.
    pub not_pcs: u64,
}

impl Known {
    /// Edges the fuzzer already has: results stop reporting them (unless full).
    pub fn learn(&mut self, signal: impl IntoIterator<Item = u32>) {
        self.signal.extend(signal);
    }

    /// Fills each executed call's `signal` and `cover` from its raw PCs (which it empties) and
    /// the result's `new_pcs`: edges and PCs not reported before, or all of them with `full`.
    /// Words that cannot be kernel PCs are dropped first.
    pub fn process(&mut self, r: &mut crate::ExecResult, full: bool) {
        let mut new_pcs: Vec<u64> = Vec::new();
        for c in &mut r.calls {
            if c.pcs.is_empty() {
                continue;
            }
            let mut pcs = pcs_from_bytes(&std::mem::take(&mut c.pcs));
            let before = pcs.len();
            pcs.retain(|pc| is_kernel_pc(*pc));
            self.not_pcs += (before - pcs.len()) as u64;
            let s = call_signal(&pcs, &mut self.signal, full, &mut self.scratch);
            c.signal = s.signal;
            c.cover = s.cover;
            new_pcs.extend(self.scratch.iter());
        }
        new_pcs.sort_unstable();
        new_pcs.dedup();
        new_pcs.retain(|pc| self.pcs.insert(*pc) || full);
        r.new_pcs = new_pcs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_seen_once_are_not_reported_again_unless_full() {
        let mut seen = FastSet::default();
        let mut scratch = FastSet::default();
        let pcs = [
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0020,
            0xffff_ffff_8100_0010,
        ];
        let first = call_signal(&pcs, &mut seen, false, &mut scratch);
        assert_eq!(first.cover, 2);
        assert_eq!(first.signal.len(), 3);
        assert!(call_signal(&pcs, &mut seen, false, &mut scratch)
            .signal
            .is_empty());
        assert_eq!(
            call_signal(&pcs, &mut seen, true, &mut scratch).signal,
            first.signal
        );
    }

    #[test]
    fn words_that_are_not_kernel_code_are_not_coverage() {
        let real = 0xffff_ffff_8123_4560u64;
        // What a program may leave in KCOV's buffer: its own data, user addresses, a kernel
        // data pointer (the direct map), zero.
        let junk = [
            0x4141_4141_4141_4141u64,
            0x2000_0040,
            0xffff_8880_0123_4000,
            0,
        ];
        let mut pcs = vec![real];
        pcs.extend(junk);
        let mut r = crate::ExecResult {
            calls: vec![crate::CallResult {
                executed: true,
                pcs: pcs_to_bytes(&pcs),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut k = Known::default();
        k.process(&mut r, false);
        assert_eq!(r.new_pcs, vec![real]);
        assert_eq!(r.calls[0].cover, 1);
        assert_eq!(r.calls[0].signal.len(), 1);
        assert_eq!(k.not_pcs, junk.len() as u64);
        assert!(is_kernel_pc(0xffff_ffff_a000_1234), "modules");
        assert!(!is_kernel_pc(0xffff_ffff_ff60_0000), "vsyscall page");
    }

    #[test]
    fn known_reports_each_edge_and_pc_once_per_vm() {
        let pcs = [0xffff_ffff_8100_0010u64, 0xffff_ffff_8100_0020];
        let call = |pcs: &[u64]| crate::CallResult {
            executed: true,
            pcs: pcs_to_bytes(pcs),
            ..Default::default()
        };
        let mut r = crate::ExecResult {
            calls: vec![call(&pcs), call(&pcs[..1])],
            ..Default::default()
        };
        let mut k = Known::default();
        k.process(&mut r, false);
        assert_eq!(r.calls[0].signal.len(), 2);
        assert_eq!(r.calls[0].cover, 2);
        assert!(r.calls[0].pcs.is_empty(), "the raw PCs are consumed");
        // The second call's one edge (the first PC, from nothing) was the first call's too.
        assert!(r.calls[1].signal.is_empty());
        assert_eq!(r.calls[1].cover, 1);
        assert_eq!(r.new_pcs, pcs.to_vec());

        let mut again = crate::ExecResult {
            calls: vec![call(&pcs)],
            ..Default::default()
        };
        let mut full = again.clone();
        k.process(&mut again, false);
        assert!(again.calls[0].signal.is_empty() && again.new_pcs.is_empty());
        k.process(&mut full, true);
        assert_eq!(full.calls[0].signal.len(), 2);
        assert_eq!(full.new_pcs, pcs.to_vec());

        let mut fresh = Known::default();
        fresh.learn(r.calls[0].signal.iter().copied());
        let mut r2 = crate::ExecResult {
            calls: vec![call(&pcs)],
            ..Default::default()
        };
        fresh.process(&mut r2, false);
        assert!(
            r2.calls[0].signal.is_empty(),
            "learned edges are not reported"
        );
        assert_eq!(
            r2.new_pcs.len(),
            2,
            "PCs are reported whatever signal is learned"
        );
    }

    #[test]
    fn pcs_survive_the_trip() {
        let pcs = vec![0, 1, u64::MAX, 0xffff_ffff_8123_4567];
        assert_eq!(pcs_from_bytes(&pcs_to_bytes(&pcs)), pcs);
    }

    #[test]
    fn fold_hasher_spreads_aligned_keys_over_low_bits() {
        let low: std::collections::HashSet<u64> = (0..256u64)
            .map(|i| {
                let mut h = FoldHasher::default();
                h.write_u64(0xffff_ffff_8100_0000 + i * 64);
                h.finish() & 0xff
            })
            .collect();
        assert!(low.len() > 128, "only {} distinct low bytes", low.len());
    }
}
