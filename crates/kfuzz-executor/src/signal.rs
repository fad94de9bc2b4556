//! Turning a call's KCOV PCs into edge signal, and the sets that remember what the host already
//! has. Runs after every program, so it is kept cheap: the sets hash with one folded multiply
//! (std's SipHash cost ~3 ms per program under TCG). It must never drop signal the host has
//! not seen.

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
