//! Triage and hints: a program with new signal is re-run to keep only its stable signal,
//! cut and minimized while that signal stays, and added to the corpus; a new corpus program is
//! queued to be smashed, and its comparison hints are tried when the work mix allows. Never decides how much of each kind of
//! work to do (that is `mix`), and never touches the VMs but through `Fuzzer::run_as`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use kfuzz_prog::prog::Prog;
use kfuzz_prog::{hints, minimize, text};
use rand::seq::SliceRandom;
use rand::Rng;

use super::mix::WorkKind;
use super::{corpus, CorpusEntry, Ctx, Fuzzer};

/// How many times a program with new signal is re-run during triage (fewer when none of
/// its new signal is left after a run).
const TRIAGE_RUNS: usize = 3;
/// Programs run from one corpus program's comparison hints, at most (how many of them run
/// at all is the mix's to say).
const HINT_PROGRAMS: usize = 64;
/// Hint programs made for one corpus program, among which those run are drawn.
const HINT_CANDIDATES: usize = 256;
/// Corpus programs waiting for their hints; the oldest give way.
const HINTS_QUEUE: usize = 256;
/// Mutants made of each new corpus program before it is left to the general pick (the newest
/// program first; how often a mutation smashes rather than draws from the whole corpus is the
/// mix's to say).
const SMASH_MUTANTS: u32 = 32;
/// New corpus programs waiting to be smashed; the oldest give way.
const SMASH_QUEUE: usize = 64;

impl Fuzzer {
    /// Re-runs a program to keep its stable signal, cuts the calls after the last one with new
    /// signal, minimizes it while that signal stays (as far as the mix allows), and adds it to
    /// the corpus. `new`: the signal that made it interesting (None: a candidate from disk,
    /// whose whole stable signal counts); `origin`: the work that found it, credited with the
    /// signal kept. Err: the VM is gone.
    pub(super) fn triage(
        &self,
        ctx: &Ctx,
        prog: &Prog,
        new: Option<HashSet<u32>>,
        origin: WorkKind,
    ) -> Result<(), ()> {
        let t = &*self.opts.target;
        let mut stable: Option<HashSet<u32>> = None;
        // Per call: the signal every run gave it.
        let mut per_call: Vec<HashSet<u32>> = Vec::new();
        // The PCs every run covered, recorded with the program for `kfuzz regress`.
        let mut stable_pcs: Option<HashSet<u64>> = None;
        for run in 0..TRIAGE_RUNS {
            let r = self
                .run_as(ctx, WorkKind::Triage, prog, &self.exec_opts(true, false))
                .ok_or(())?;
            let calls: Vec<HashSet<u32>> = r
                .calls
                .iter()
                .map(|c| c.signal.iter().copied().collect())
                .collect();
            let sig: HashSet<u32> = calls.iter().flatten().copied().collect();
            if run == 0 {
                per_call = calls;
            } else {
                for (i, have) in per_call.iter_mut().enumerate() {
                    match calls.get(i) {
                        Some(c) => have.retain(|x| c.contains(x)),
                        None => have.clear(),
                    }
                }
            }
            stable = Some(match stable {
                None => sig,
                Some(s) => s.intersection(&sig).copied().collect(),
            });
            let pcs: HashSet<u64> = r.new_pcs.iter().copied().collect();
            stable_pcs = Some(match stable_pcs {
                None => pcs,
                Some(s) => s.intersection(&pcs).copied().collect(),
            });
            // Every new signal already proved flaky: more runs cannot bring it back.
            if let (Some(new), Some(st)) = (&new, &stable) {
                if !st.iter().any(|x| new.contains(x)) {
                    break;
                }
            }
        }
        let mut stable = stable.unwrap_or_default();
        // How much the program covers in all, new or not: its weight when mutation picks.
        let weight = stable.len();
        let mut stable_pcs = stable_pcs.unwrap_or_default();
        if let Some(new) = &new {
            stable.retain(|s| new.contains(s));
        }
        {
            let Ok(mut s) = self.state.lock() else {
                return Ok(());
            };
            stable.retain(|x| !s.corpus_signal.contains(x));
            if stable.is_empty() {
                return Ok(());
            }
            let mut first_seen = 0;
            for x in &stable {
                first_seen += usize::from(s.add_max_signal(ctx.proc.vm, *x));
            }
            self.mix.found(origin, first_seen);
        }
        // Corpus programs from disk were minimized when they were added.
        let p = if new.is_some() {
            self.minimize(ctx, prog, &stable, &per_call, &mut stable_pcs)?
        } else {
            prog.clone()
        };
        let txt = text::format(t, &p);
        let name = corpus::name_of(&txt);
        // The PCs recorded for `kfuzz regress` are those also reached by a new runner: the
        // long-lived runner's history shapes some paths (maple tree node splits of its
        // mappings), which a replay in another process would not take.
        let known = self
            .state
            .lock()
            .map_or(true, |s| s.corpus_names.contains(&name));
        if !known && self.opts.symbols.is_some() {
            let mut o = self.exec_opts(true, false);
            o.fresh = true;
            let r = self.run_as(ctx, WorkKind::Triage, &p, &o).ok_or(())?;
            let pcs: HashSet<u64> = r.new_pcs.iter().copied().collect();
            stable_pcs.retain(|pc| pcs.contains(pc));
        }
        let area = self
            .opts
            .focus
            .as_ref()
            .map_or(super::focus::Area::Rest, |f| {
                f.area(stable_pcs.iter().copied())
            });
        // What it covers, as `.meta.json` records it: worked out before the fuzzer's state is
        // locked (DWARF lookups take a while).
        let mut recorded = (!known).then(|| {
            let (cover, files) = self
                .opts
                .symbols
                .as_ref()
                .map(|sy| sy.cover(stable_pcs.iter().copied()))
                .unwrap_or_default();
            let lines = self
                .opts
                .lines
                .as_ref()
                .and_then(|t| t.lock().ok())
                .map(|t| corpus::lines_of(t.reached_lines(stable_pcs.iter().copied())))
                .unwrap_or_default();
            (cover, files, lines)
        });
        let Ok(mut s) = self.state.lock() else {
            return Ok(());
        };
        // A corpus program from disk is already saved; a new one that minimized to a program
        // the corpus has only adds its signal.
        let known = s.corpus_names.contains(&name);
        if !known {
            match corpus::save(&self.opts.workdir.join("corpus"), &txt) {
                Ok(path) => {
                    // Announced once it is on disk for good (written whole, renamed, synced).
                    self.shell
                        .json(&serde_json::json!({"reason": "corpus-added", "path": path}));
                    let mut signal: Vec<u32> = stable.iter().copied().collect();
                    signal.sort_unstable();
                    let (cover, files, lines) = recorded.take().unwrap_or_default();
                    let meta = corpus::Meta {
                        signal,
                        cover,
                        files,
                        lines,
                        commit: self.opts.commit.clone(),
                        recorded: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                    };
                    if let Err(e) = corpus::save_meta(&path, &meta) {
                        // The program is saved; only what it covered is lost.
                        self.shell
                            .warn(format!("cannot save {}: {e:#}", path.display()));
                    }
                }
                Err(e) => {
                    self.fail(format!(
                        "cannot save a corpus program: {e:#}\n(the programs already in {} are whole: each was written to a temporary file and renamed)",
                        self.opts.workdir.join("corpus").display()
                    ));
                    return Err(());
                }
            }
            s.corpus_names.insert(name);
        }
        self.mix.kept(origin, stable.len());
        if known && new.is_some() {
            for x in &stable {
                s.corpus_signal.insert(*x);
            }
            self.stats
                .signal
                .store(s.corpus_signal.len() as u64, Ordering::SeqCst);
            return Ok(());
        }
        for x in &stable {
            s.corpus_signal.insert(*x);
        }
        s.corpus.push(CorpusEntry {
            prog: p.clone(),
            weight,
            area,
        });
        self.live.added(&p, stable.len());
        self.stats
            .corpus
            .store(s.corpus.len() as u64, Ordering::SeqCst);
        self.stats
            .signal
            .store(s.corpus_signal.len() as u64, Ordering::SeqCst);
        self.shell.verbose(
            "Added",
            format!(
                "corpus program {} (+{} signal)",
                s.corpus.len(),
                stable.len()
            ),
        );
        // A program new to the corpus (not one reloaded from disk) is worth its hints, when
        // their share of the executions allows (see `next_work`).
        if new.is_some() && !self.opts.no_feedback {
            if s.smash.len() >= SMASH_QUEUE {
                s.smash.pop_front();
            }
            s.smash.push_back((p.clone(), SMASH_MUTANTS));
            if s.hints_queue.len() >= HINTS_QUEUE {
                s.hints_queue.pop_front();
            }
            s.hints_queue.push_back(p);
        }
        Ok(())
    }

    /// Drops the calls after the last one with new stable signal (calls run one after the
    /// other, so no later call changes an earlier one's coverage; not so when threaded), then
    /// tries the program without the other calls while the stable signal is still produced:
    /// first all those the signal's calls do not need at once, then their producers one by
    /// one, halving a group that cannot go (see `minimize::removal_chunks`), in as many runs
    /// as the mix allows.
    fn minimize(
        &self,
        ctx: &Ctx,
        prog: &Prog,
        stable: &HashSet<u32>,
        per_call: &[HashSet<u32>],
        stable_pcs: &mut HashSet<u64>,
    ) -> Result<Prog, ()> {
        let t = &*self.opts.target;
        let mut p = prog.clone();
        // The calls whose own signal holds some of the new signal: never tried without.
        let signal_calls: Vec<usize> = per_call
            .iter()
            .enumerate()
            .filter(|(_, s)| s.iter().any(|x| stable.contains(x)))
            .map(|(i, _)| i)
            .collect();
        let Some(&last) = signal_calls.last() else {
            // The signal was stable only as a whole (it moved between calls): keep it all.
            return Ok(p);
        };
        if !self.opts.threaded && last + 1 < p.calls.len() {
            p.calls.truncate(last + 1);
            minimize::drop_dangling(t, &mut p);
        }
        let mut chunks = minimize::removal_chunks(t, &p, &signal_calls);
        let removable = p.calls.len() - signal_calls.len();
        let mut runs = self.mix.snapshot().minimize_steps(removable);
        // Indices into `p` as it was after the cut; `best` is `p` without `gone`.
        let mut gone: Vec<usize> = Vec::new();
        let mut best = p.clone();
        while runs > 0 {
            let Some(chunk) = chunks.next_chunk() else {
                break;
            };
            runs -= 1;
            let mut without = gone.clone();
            without.extend(&chunk);
            let mut q = p.clone();
            minimize::remove_calls(t, &mut q, &without);
            if q.calls.is_empty() {
                continue;
            }
            let r = self
                .run_as(ctx, WorkKind::Minimize, &q, &self.exec_opts(true, false))
                .ok_or(())?;
            let sig: HashSet<u32> = r
                .calls
                .iter()
                .flat_map(|c| c.signal.iter().copied())
                .collect();
            if stable.iter().all(|x| sig.contains(x)) {
                gone = without;
                best = q;
                let pcs: HashSet<u64> = r.new_pcs.iter().copied().collect();
                stable_pcs.retain(|pc| pcs.contains(pc));
            } else {
                chunks.failed(chunk);
            }
        }
        Ok(best)
    }

    /// Runs corpus program `p` once collecting the kernel's comparisons, and queues the
    /// programs where an argument takes a value it was compared with (drawn among all its
    /// calls', at most `HINT_PROGRAMS`), each to be run as hints work when the mix allows.
    /// The operands also join the pool mutations draw from. Err: the VM is gone.
    pub(super) fn comparisons(&self, ctx: &Ctx, p: &Prog, rng: &mut impl Rng) -> Result<(), ()> {
        let t = &*self.opts.target;
        let mut opts = self.exec_opts(false, false);
        opts.comparisons = true;
        let r = self.run_as(ctx, WorkKind::Hints, p, &opts).ok_or(())?;
        let mut candidates = Vec::new();
        for (i, c) in r.calls.iter().enumerate() {
            let mut comps = hints::CompMap::default();
            for (a, b) in &c.comps {
                comps.add(*a, *b);
            }
            if let Ok(mut pool) = self.operands.write() {
                for (a, b) in &c.comps {
                    pool.add(*a);
                    pool.add(*b);
                }
            }
            let room = HINT_CANDIDATES.saturating_sub(candidates.len());
            candidates.extend(hints::mutants(t, p, i, &comps, room));
        }
        candidates.shuffle(rng);
        candidates.truncate(HINT_PROGRAMS);
        if let Ok(mut s) = self.state.lock() {
            s.hint_progs.extend(candidates);
        }
        Ok(())
    }
}
