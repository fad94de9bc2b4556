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
