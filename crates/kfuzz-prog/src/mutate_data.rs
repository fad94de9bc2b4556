//! Mutating data values the way that finds branches: integers moved to interesting values of
//! their width and to operands the kernel was seen comparing with (`ValuePool`), buffers with
//! bytes inserted, removed and overwritten, lengths drawn mostly small and near boundaries.
//! Every function here keeps a value inside its type's bounds (ranges, alignment, fixed sizes,
//! a string's terminator); it never changes a program's shape beyond the one value.

use std::collections::HashSet;

use rand::Rng;

use crate::types::Dir;

/// Recent comparison operands (from `KCOV_TRACE_CMP`), for the mutator to draw integers and
/// buffer words from. Bounded: new values replace the oldest.
#[derive(Debug, Clone, Default)]
pub struct ValuePool {
    vals: Vec<u64>,
    seen: HashSet<u64>,
    /// Where the next value goes once the pool is full.
    next: usize,
}

/// Values a pool keeps at most.
pub const POOL_SIZE: usize = 4096;

impl ValuePool {
    /// Adds a value; small ones (which the interesting values cover) and kernel addresses
    /// (which no argument should take) are not kept.
    pub fn add(&mut self, v: u64) {
        let kernel_address = (0xffff_8000_0000_0000..0xffff_ffff_ffff_0000).contains(&v);
        if !(0x100..=u64::MAX - 0x100).contains(&v) || kernel_address || self.seen.contains(&v) {
            return;
        }
        if self.vals.len() < POOL_SIZE {
            self.vals.push(v);
        } else {
            let old = std::mem::replace(&mut self.vals[self.next], v);
            self.seen.remove(&old);
            self.next = (self.next + 1) % POOL_SIZE;
        }
        self.seen.insert(v);
    }

    pub fn len(&self) -> usize {
        self.vals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    /// A random value from the pool.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<u64> {
        if self.vals.is_empty() {
            None
        } else {
            Some(self.vals[rng.gen_range(0..self.vals.len())])
        }
    }
}

fn mask_of(size: u8) -> u64 {
    if size >= 8 || size == 0 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// An interesting value for an integer of `size` bytes: 0, ±1, powers of two and their
/// neighbours, the signed and unsigned extremes of the width, page sizes.
pub fn interesting_int(rng: &mut impl Rng, size: u8) -> u64 {
    let bits = u32::from(size.clamp(1, 8)) * 8;
    let mask = mask_of(size);
    let v = match rng.gen_range(0..10) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,                 // -1
        3 => 1u64 << (bits - 1),       // the signed minimum
        4 => (1u64 << (bits - 1)) - 1, // the signed maximum
        5 => [0x1000u64, 0x2000, 0x200000, 0x3, 0x7, 0xff, 0xfff][rng.gen_range(0..7)],
        6 => u64::MAX - 1, // -2
        _ => {
            let p = 1u64 << rng.gen_range(0..bits);
            match rng.gen_range(0..3) {
                0 => p,
                1 => p.wrapping_sub(1),
                _ => p.wrapping_add(1),
            }
        }
    };
    v & mask
}

/// Snaps `v` into `lo..=hi` on the grid `lo + k*align`.
fn fit_range(v: u64, lo: u64, hi: u64, align: u64) -> u64 {
    let v = v.clamp(lo, hi);
    if align > 1 {
        (lo + (v - lo) / align * align).min(hi)
    } else {
        v
    }
}

/// A new value for an integer of `size` bytes (and `range`/`align` when given) currently `v`.
pub fn mutate_int(
    rng: &mut impl Rng,
    v: u64,
    size: u8,
    range: Option<(u64, u64)>,
    align: u64,
    pool: &ValuePool,
) -> u64 {
    let mask = mask_of(size);
    if let Some((lo, hi)) = range.filter(|(lo, hi)| lo <= hi) {
        let step = align.max(1);
        let x = match rng.gen_range(0..10) {
            0 => lo,
            1 => hi,
            2 => lo.saturating_add(step),
            3 => hi.saturating_sub(step),
            4 => v.saturating_add(step),
            5 => v.saturating_sub(step),
            6 => pool
                .pick(rng)
                .filter(|p| (lo..=hi).contains(p))
                .unwrap_or_else(|| rng.gen_range(lo..=hi)),
            7 => {
                let i = interesting_int(rng, size);
                if (lo..=hi).contains(&i) {
                    i
                } else {
                    rng.gen_range(lo..=hi)
                }
            }
            _ => rng.gen_range(lo..=hi),
        };
        return fit_range(x, lo, hi, align) & mask;
    }
    let bits = u32::from(size.clamp(1, 8)) * 8;
    let x = match rng.gen_range(0..20) {
        0..=3 => v.wrapping_add(rng.gen_range(1..=4)),
        4..=6 => v.wrapping_sub(rng.gen_range(1..=4)),
        7..=10 => interesting_int(rng, size),
        11..=14 => match pool.pick(rng) {
            // Often compared as a value off by one (`<` vs `<=`).
            Some(p) => match rng.gen_range(0..4) {
                0 => p.wrapping_add(1),
                1 => p.wrapping_sub(1),
                _ => p,
            },
            None => interesting_int(rng, size),
        },
        15..=16 => v ^ (1u64 << rng.gen_range(0..bits)),
        17 => v.swap_bytes() >> (64 - bits),
        _ => rng.gen(),
    };
    x & mask
}

/// A new value for a flags argument: one flag, a few flags together, a flag set or cleared in
/// the current value, nothing, or (rarely) any value or a compared operand.
pub fn mutate_flags(
    rng: &mut impl Rng,
    v: u64,
    vals: &[u64],
    bitmask: bool,
    size: u8,
    pool: &ValuePool,
) -> u64 {
    let mask = mask_of(size);
    if vals.is_empty() {
        return mutate_int(rng, v, size, None, 1, pool);
    }
    let one = |rng: &mut dyn rand::RngCore| vals[rng.gen_range(0..vals.len())];
    let x = if !bitmask {
        match rng.gen_range(0..20) {
            0 => interesting_int(rng, size),
            1 => pool.pick(rng).unwrap_or(0),
            _ => one(rng),
        }
    } else {
        match rng.gen_range(0..20) {
            0..=5 => v ^ one(rng),
            6..=8 => v | one(rng),
            9..=10 => v & !one(rng),
            11..=13 => one(rng),
            14..=16 => (0..rng.gen_range(2..=4)).fold(0, |a, _| a | one(rng)),
            17 => 0,
            18 => vals.iter().fold(0, |a, b| a | b),
            _ => match pool.pick(rng) {
                Some(p) if rng.gen_ratio(1, 2) => p,
                _ => v ^ (1u64 << rng.gen_range(0..u32::from(size.clamp(1, 8)) * 8)),
            },
        }
    };
    x & mask
}

/// Sizes worth trying: small ones, powers of two and their neighbours, page sizes.
const SIZES: &[usize] = &[
    0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 511, 512, 1023,
    1024, 2048, 4095, 4096, 4097,
];

/// A length in `min..=max` for a buffer or array now `cur` long: mostly small and near
/// boundaries (the type's own bounds, ±1 of the current, the sizes above).
pub fn pick_len(rng: &mut impl Rng, cur: usize, min: usize, max: usize) -> usize {
    if max <= min {
        return min;
    }
    let n = match rng.gen_range(0..20) {
        0..=1 => min,
        2 => max,
        3 => min + 1,
        4 => max - 1,
        5..=6 => cur + 1,
        7..=8 => cur.saturating_sub(1),
        9 => cur * 2,
        10 => cur / 2,
        // Small sizes often: a few dozen bytes is what most structures hold.
        11..=17 => SIZES[rng.gen_range(0..SIZES.len().min(16))],
        18 => SIZES[rng.gen_range(0..SIZES.len())],
        _ => rng.gen_range(min..=max.min(min + 4096)),
    };
    n.clamp(min, max)
}

/// Mutates bytes in place within `min..=max` bytes (an output buffer only changes length,
/// staying zero). One to three edits: a bit flipped, a byte set, an interesting or compared
/// integer written at an offset, bytes inserted, removed or copied, a new length.
pub fn mutate_bytes(
    rng: &mut impl Rng,
    d: &mut Vec<u8>,
    min: usize,
    max: usize,
    dir: Dir,
    pool: &ValuePool,
) {
    let max = max.max(min);
    if dir == Dir::Out {
        let n = pick_len(rng, d.len(), min, max);
        d.resize(n, 0);
        return;
    }
    for _ in 0..rng.gen_range(1..=3) {
        edit_bytes(rng, d, min, max, pool, false);
    }
    if d.len() < min {
        d.resize(min, 0);
    }
    d.truncate(max);
}

/// Like `mutate_bytes` for a string's text: printable bytes more often, `body_max` bounds the
/// text (its terminator is the caller's).
pub fn mutate_text(rng: &mut impl Rng, d: &mut Vec<u8>, body_max: usize, pool: &ValuePool) {
    for _ in 0..rng.gen_range(1..=2) {
        edit_bytes(rng, d, 0, body_max, pool, true);
    }
    d.truncate(body_max);
}

/// A byte to put somewhere: printable when `text`.
fn some_byte(rng: &mut impl Rng, text: bool) -> u8 {
    if text && rng.gen_ratio(7, 8) {
        rng.gen_range(0x20..0x7f)
    } else {
        [0x00, 0x01, 0x7f, 0x80, 0xff, rng.gen()][rng.gen_range(0..6)]
    }
}

fn edit_bytes(
    rng: &mut impl Rng,
    d: &mut Vec<u8>,
    min: usize,
    max: usize,
    pool: &ValuePool,
    text: bool,
) {
    match rng.gen_range(0..16) {
        0..=1 if !d.is_empty() => {
            let i = rng.gen_range(0..d.len());
            d[i] ^= 1 << rng.gen_range(0..8);
        }
        2..=3 if !d.is_empty() => {
            let i = rng.gen_range(0..d.len());
            d[i] = some_byte(rng, text);
        }
        // A word: an interesting value or a compared operand, either byte order.
        4..=6 if !d.is_empty() && !text => {
            let width = [1usize, 2, 4, 8][rng.gen_range(0..4)].min(d.len());
            let v = match pool.pick(rng) {
                Some(p) if rng.gen_ratio(1, 2) => p,
                _ => interesting_int(rng, width as u8),
            };
            let bytes = if rng.gen_ratio(1, 4) {
                v.to_be_bytes()[8 - width..].to_vec()
            } else {
                v.to_le_bytes()[..width].to_vec()
            };
            let at = rng.gen_range(0..=d.len() - width);
            d[at..at + width].copy_from_slice(&bytes);
        }
        // Insert a few bytes.
        7..=9 if d.len() < max => {
            let n = rng.gen_range(1..=16).min(max - d.len());
            let at = rng.gen_range(0..=d.len());
            let new: Vec<u8> = (0..n).map(|_| some_byte(rng, text)).collect();
            d.splice(at..at, new);
        }
        // Remove a few bytes.
        10..=11 if d.len() > min => {
            let n = rng.gen_range(1..=16).min(d.len() - min);
            let at = rng.gen_range(0..=d.len() - n);
            d.drain(at..at + n);
        }
        // Copy a chunk over another place.
        12 if d.len() >= 2 => {
            let n = rng.gen_range(1..=d.len() / 2);
            let from = rng.gen_range(0..=d.len() - n);
            let to = rng.gen_range(0..=d.len() - n);
            let chunk = d[from..from + n].to_vec();
            d[to..to + n].copy_from_slice(&chunk);
        }
        // A new length.
        _ if max > min => {
            let n = pick_len(rng, d.len(), min, max);
            while d.len() < n {
                d.push(some_byte(rng, text));
            }
            d.truncate(n);
        }
        _ => {}
    }
}

/// Filenames a mutated filename argument may take: the few names programs share (so one
/// call's file is another's), a directory, names nested one level, and the current folder.
pub const FILENAMES: &[&str] = &[
    "./file0",
    "./file1",
    "./file2",
    "./file3",
    "./file0/file0",
    "./file1/file0",
    "./bus",
    ".",
    "./file0/../file1",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::SmallRng {
        rand::rngs::SmallRng::seed_from_u64(seed)
    }

    #[test]
    fn ints_stay_in_their_width_range_and_alignment() {
        let mut r = rng(1);
        let mut pool = ValuePool::default();
        for v in [0x1234u64, 0xdeadbeef, 0x1_0000_0000_0000, 7] {
            pool.add(v);
        }
        for size in [1u8, 2, 4, 8] {
            let mut v = 0;
            for _ in 0..2000 {
                v = mutate_int(&mut r, v, size, None, 1, &pool);
                assert!(v <= mask_of(size), "{v:#x} wider than {size} bytes");
            }
        }
        let mut v = 0x1000;
        for _ in 0..2000 {
            v = mutate_int(&mut r, v, 4, Some((0x1000, 0x5000)), 0x100, &pool);
            assert!((0x1000..=0x5000).contains(&v), "{v:#x}");
            assert_eq!((v - 0x1000) % 0x100, 0, "{v:#x} off the grid");
        }
    }

    #[test]
    fn ints_reach_the_extremes_of_their_width_and_the_pool() {
        let mut r = rng(2);
        let mut pool = ValuePool::default();
        pool.add(0xabcd);
        let seen: HashSet<u64> = (0..5000)
            .map(|_| mutate_int(&mut r, 5, 2, None, 1, &pool))
            .collect();
        for want in [
            0, 1, 0xffff, 0x8000, 0x7fff, 0xabcd, 0xabce, 0xabcc, 4, 6, 0x100,
        ] {
            assert!(seen.contains(&want), "{want:#x} never drawn");
        }
    }

    #[test]
    fn flags_keep_their_width_and_mostly_their_values() {
        let mut r = rng(3);
        let vals = [0x1u64, 0x2, 0x40, 0x800];
        let pool = ValuePool::default();
        let mut v = 0;
        let mut known = 0;
        for _ in 0..2000 {
            v = mutate_flags(&mut r, v, &vals, true, 2, &pool);
            assert!(v <= 0xffff);
            known += usize::from(v & !0x843 == 0);
        }
        assert!(known > 1500, "{known} of 2000 made of the declared flags");
        for _ in 0..500 {
            let x = mutate_flags(&mut r, 0, &vals, false, 4, &pool);
            assert!(x <= 0xffff_ffff);
        }
    }

    #[test]
    fn buffers_stay_within_their_bounds_and_output_stays_zero() {
        let mut r = rng(4);
        let mut pool = ValuePool::default();
        pool.add(0x41424344);
        for (min, max) in [(0usize, 64usize), (4, 4), (16, 20), (0, 4096), (1, 1)] {
            let mut d = vec![0u8; min];
            let mut lens = HashSet::new();
            for _ in 0..1000 {
                mutate_bytes(&mut r, &mut d, min, max, Dir::In, &pool);
                assert!(
                    d.len() >= min && d.len() <= max,
                    "{} not in {min}..={max}",
                    d.len()
                );
                lens.insert(d.len());
            }
            if max > min {
                assert!(lens.len() > 1, "{min}..={max}: the length never changed");
            }
            let mut o = vec![0u8; min];
            for _ in 0..200 {
                mutate_bytes(&mut r, &mut o, min, max, Dir::Out, &pool);
                assert!(o.len() >= min && o.len() <= max);
                assert!(o.iter().all(|b| *b == 0));
            }
        }
    }

    #[test]
    fn lengths_are_mostly_small() {
        let mut r = rng(5);
        let lens: Vec<usize> = (0..2000).map(|_| pick_len(&mut r, 8, 0, 1 << 16)).collect();
        let small = lens.iter().filter(|n| **n <= 64).count();
        assert!(small > 1200, "{small} of 2000 at most 64");
        assert!(lens.contains(&0) && lens.contains(&(1 << 16)) && lens.contains(&4096));
    }

    #[test]
    fn the_pool_keeps_recent_distinct_large_values() {
        let mut p = ValuePool::default();
        p.add(5);
        p.add(u64::MAX);
        assert!(
            p.is_empty(),
            "small values and -1 are left to the interesting values"
        );
        for v in 0..(POOL_SIZE as u64 + 10) {
            p.add(0x1000 + v);
            p.add(0x1000 + v);
        }
        assert_eq!(p.len(), POOL_SIZE);
        assert!(p.seen.contains(&(0x1000 + POOL_SIZE as u64 + 9)));
        assert!(!p.seen.contains(&0x1000));
    }
}
