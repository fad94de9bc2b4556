//! Comparison hints: the kernel compared an argument's value with something else (KCOV's
//! `KCOV_TRACE_CMP`), so a program where the argument has that other value probably takes
//! another branch. Given the comparisons a call's execution saw, make those programs.

use std::collections::{BTreeSet, HashMap};

use crate::prog::{visit_args_mut, Arg, Prog};
use crate::target::Target;
use crate::types::TypeKind;

/// Operand pairs of the comparisons one call made, as a map from each value to the values it
/// was compared with.
#[derive(Debug, Default, Clone)]
pub struct CompMap(HashMap<u64, BTreeSet<u64>>);

impl CompMap {
    pub fn add(&mut self, a: u64, b: u64) {
        if a != b {
            self.0.entry(a).or_default().insert(b);
            self.0.entry(b).or_default().insert(a);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Values `v` was compared with, directly or as its low 8, 16 or 32 bits (the kernel often
    /// compares a truncated copy); a replacement keeps `v`'s upper bits.
    fn replacements(&self, v: u64) -> BTreeSet<u64> {
        let mut out = BTreeSet::new();
        for bits in [64u32, 32, 16, 8] {
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            if let Some(others) = self.0.get(&(v & mask)) {
                for o in others {
                    let r = (v & !mask) | (o & mask);
                    if r != v {
                        out.insert(r);
                    }
                }
            }
        }
        out
    }
}

/// Programs that differ from `p` in one integer argument of call `call` (ints and flags; not
/// consts, lengths or resources), replaced by a value it was compared with. At most `max`.
pub fn mutants(target: &Target, p: &Prog, call: usize, comps: &CompMap, max: usize) -> Vec<Prog> {
    let Some(c) = p.calls.get(call) else {
        return Vec::new();
    };
    // The values of the call's hintable arguments, in visiting order.
    let mut values = Vec::new();
    let mut c0 = c.clone();
    visit_args_mut(target, &mut c0, &mut |t, a| {
        if let (TypeKind::Int { size, .. } | TypeKind::Flags { size, .. }, Arg::Int(v)) =
            (&t.kind, &*a)
        {
            values.push((*v, *size));
        }
    });
    let mut out = Vec::new();
    for (k, (v, size)) in values.iter().enumerate() {
        // A replacement is cut to the argument's size (text refuses wider values).
        let mask = if *size >= 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        let fitting: BTreeSet<u64> = comps
            .replacements(*v)
            .into_iter()
            .map(|r| r & mask)
            .filter(|r| r != v)
            .collect();
        for r in fitting {
            if out.len() >= max {
                return out;
            }
            let mut q = p.clone();
            let mut seen = 0;
            visit_args_mut(target, &mut q.calls[call], &mut |t, a| {
                if let (TypeKind::Int { .. } | TypeKind::Flags { .. }, Arg::Int(x)) =
                    (&t.kind, &mut *a)
                {
                    if seen == k {
                        *x = r;
                    }
                    seen += 1;
                }
            });
            out.push(q);
        }
    }
    out
}
