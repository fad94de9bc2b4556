//! Minimization primitives that later stages (triage, repro) drive: drop a call and fix up its
//! users, simplify one argument to its default. Each keeps the program valid.

use std::collections::HashSet;

use crate::prog::*;
use crate::target::Target;

/// Removes call `idx`; uses of the variables it defined fall back to their default values.
pub fn remove_call(target: &Target, p: &mut Prog, idx: usize) {
    if idx >= p.calls.len() {
        return;
    }
    p.calls.remove(idx);
    drop_dangling(target, p);
}

/// Removes the calls at `idxs` (any order; out-of-range ones are ignored) in one go; uses of
/// the variables they defined fall back to their default values.
pub fn remove_calls(target: &Target, p: &mut Prog, idxs: &[usize]) {
    let gone: HashSet<usize> = idxs.iter().copied().collect();
    let mut i = 0;
    p.calls.retain(|_| {
        i += 1;
        !gone.contains(&(i - 1))
    });
    drop_dangling(target, p);
}

/// The calls `keep` needs: `keep` itself and, transitively, every earlier call that defines a
/// variable one of them uses (its producers). Sorted.
pub fn needed_calls(target: &Target, p: &Prog, keep: &[usize]) -> Vec<usize> {
    let mut needed: HashSet<usize> = keep
        .iter()
        .copied()
        .filter(|i| *i < p.calls.len())
        .collect();
    // Which call defines each variable.
    let mut definer = std::collections::HashMap::new();
    for (i, c) in p.calls.iter().enumerate() {
        for (v, _) in defined_vars(target, c) {
            definer.entry(v).or_insert(i);
        }
    }
    let mut todo: Vec<usize> = needed.iter().copied().collect();
    while let Some(i) = todo.pop() {
        for v in used_vars(&p.calls[i]) {
            if let Some(&d) = definer.get(&v) {
                if d < i && needed.insert(d) {
                    todo.push(d);
                }
            }
        }
    }
    let mut out: Vec<usize> = needed.into_iter().collect();
    out.sort_unstable();
    out
}

/// The order in which minimization tries to drop the calls of `p` not in `keep`: first all
/// calls `keep` does not need (see `needed_calls`) at once, then the producers it needs one
/// at a time, latest first. A group that cannot go is split in halves and each tried again
/// ([`Chunks::failed`]): most calls of a random program have nothing to do with what made it
/// interesting, and a few runs drop them where one run per call was a fifth of all executions.
pub fn removal_chunks(target: &Target, p: &Prog, keep: &[usize]) -> Chunks {
    let needed = needed_calls(target, p, keep);
    let mut unrelated: Vec<usize> = (0..p.calls.len())
        .rev()
        .filter(|i| needed.binary_search(i).is_err())
        .collect();
    let producers: Vec<usize> = needed
        .iter()
        .rev()
        .copied()
        .filter(|i| !keep.contains(i))
        .collect();
    let mut queue = std::collections::VecDeque::new();
    if !unrelated.is_empty() {
        queue.push_back(std::mem::take(&mut unrelated));
    }
    queue.extend(producers.into_iter().map(|i| vec![i]));
    Chunks { queue }
}

/// Groups of call indices (of the program as it was) to try removing, in order.
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    queue: std::collections::VecDeque<Vec<usize>>,
}

impl Chunks {
    /// The next group to try, or None when all were tried.
    pub fn next_chunk(&mut self) -> Option<Vec<usize>> {
        self.queue.pop_front()
    }

    /// `chunk` could not go: its halves are tried next (a single call is given up on).
    pub fn failed(&mut self, chunk: Vec<usize>) {
        if chunk.len() > 1 {
            let (a, b) = chunk.split_at(chunk.len() / 2);
            self.queue.push_front(b.to_vec());
            self.queue.push_front(a.to_vec());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Turns every use of a variable not defined by an earlier call into its plain value.
pub fn drop_dangling(target: &Target, p: &mut Prog) {
    let mut defined: HashSet<VarId> = HashSet::new();
    for c in &mut p.calls {
        for_each_res_mut(c, &mut |r| {
            if r.src.is_some_and(|v| !defined.contains(&v)) {
                r.src = None;
            }
        });
        for (v, _) in defined_vars(target, c) {
            defined.insert(v);
        }
    }
}

/// Every place in a call that `simplify_arg` can reset, as a path of child indices.
pub fn arg_paths(call: &Call) -> Vec<Vec<usize>> {
    fn go(a: &Arg, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(path.clone());
        let children: Vec<&Arg> = match a {
            Arg::Ptr {
                pointee: Some(p), ..
            } => vec![p],
            Arg::Group(items) => items.iter().collect(),
            Arg::Union { arg, .. } => vec![arg],
            _ => vec![],
        };
        for (i, c) in children.into_iter().enumerate() {
            path.push(i);
            go(c, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    for (i, a) in call.args.iter().enumerate() {
        let mut path = vec![i];
        go(a, &mut path, &mut out);
    }
    out
}

/// Resets the argument at `path` in call `idx` to its type's default. Returns false when it
/// already was the default (nothing to simplify).
pub fn simplify_arg(target: &Target, p: &mut Prog, idx: usize, path: &[usize]) -> bool {
    let Some(call) = p.calls.get_mut(idx) else {
        return false;
    };
    let Some((ty, arg)) = arg_at_mut(target, call, path) else {
        return false;
    };
    // Resources keep their variable: dropping it would change what the program does more than
    // "simplifying" means here; calls are removed for that.
    if matches!(arg, Arg::Res(_)) {
        return false;
    }
    let d = crate::gen::default_arg(target, ty);
    if *arg == d {
        return false;
    }
    *arg = d;
    crate::gen::fix_lens(target, call);
    drop_dangling(target, p);
    true
}
