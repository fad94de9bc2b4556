//! The work mix: what each kind of work (generation, mutation, smashing, comparison hints,
//! triage re-runs, minimization, reproduction) costs in executions and earns in new signal, and the
//! policy that steers the fuzzer's executions towards the kinds that pay. Pure counting and
//! arithmetic: it never runs anything, and its decisions are functions of a snapshot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A kind of work the fuzzer spends executions on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkKind {
    /// A program generated from nothing.
    Generate,
    /// A corpus program mutated.
    Mutate,
    /// A program just added to the corpus mutated, before it joins the general pick: the
    /// neighbourhood of what just found new signal (syzkaller's "smash").
    Smash,
    /// A corpus program's comparison-operand run and the programs made from its hints.
    Hints,
    /// Re-runs of a program with new signal, to keep only the stable part (and candidates
    /// reloaded from disk).
    Triage,
    /// Runs trying a program without one of its calls.
    Minimize,
    /// Reproducing a crash on a VM of its own (counted in attempts: its runs do not go
    /// through the fuzzer).
    Repro,
}

impl WorkKind {
    pub const ALL: [WorkKind; KINDS] = [
        WorkKind::Generate,
        WorkKind::Mutate,
        WorkKind::Smash,
        WorkKind::Hints,
        WorkKind::Triage,
        WorkKind::Minimize,
        WorkKind::Repro,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkKind::Generate => "generate",
            WorkKind::Mutate => "mutate",
            WorkKind::Smash => "smash",
            WorkKind::Hints => "hints",
            WorkKind::Triage => "triage",
            WorkKind::Minimize => "minimize",
            WorkKind::Repro => "repro",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const KINDS: usize = 7;

/// Live counters, shared by every proc thread.
#[derive(Default)]
pub struct Mix {
    kinds: [Counters; KINDS],
    /// Snapshots taken every `WINDOW_STEP` executions, oldest first, the last
    /// `WINDOW_STEPS` of them: what `recent` measures from.
    marks: Mutex<VecDeque<MixSnapshot>>,
    total: AtomicU64,
}

/// Executions between two marks of the recent window.
const WINDOW_STEP: u64 = 250;
/// Marks kept: the recent window spans about `WINDOW_STEP * WINDOW_STEPS` executions.
const WINDOW_STEPS: usize = 8;

#[derive(Default)]
struct Counters {
    execs: AtomicU64,
    /// Signal no execution had shown before (the fuzzer's max signal grew by it).
    new_signal: AtomicU64,
    /// Stable signal that reached the corpus from work of this kind (after triage).
    corpus_signal: AtomicU64,
    micros: AtomicU64,
}

impl Mix {
    /// One execution of `kind`, which took `took`.
    pub fn executed(&self, kind: WorkKind, took: Duration) {
        let c = &self.kinds[kind.index()];
        c.execs.fetch_add(1, Ordering::Relaxed);
        c.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if kind != WorkKind::Repro
            && (self.total.fetch_add(1, Ordering::Relaxed) + 1) % WINDOW_STEP == 0
        {
            let now = self.snapshot();
            if let Ok(mut m) = self.marks.lock() {
                if m.len() >= WINDOW_STEPS {
                    m.pop_front();
                }
                m.push_back(now);
            }
        }
    }

    /// The figures of the last few thousand executions (all of them early in a run): what
    /// yields are judged on, so that a kind's early luck does not steer the whole run.
    pub fn recent(&self) -> MixSnapshot {
        let now = self.snapshot();
        let first = self.marks.lock().ok().and_then(|m| {
            // The window starts at the oldest mark once there are enough of them.
            (m.len() >= WINDOW_STEPS)
                .then(|| m.front().copied())
                .flatten()
        });
        match first {
            Some(old) => now.since(&old),
            None => now,
        }
    }

    /// `n` signals first seen by an execution of `kind`.
    pub fn found(&self, kind: WorkKind, n: usize) {
        self.kinds[kind.index()]
            .new_signal
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` stable signals added to the corpus by a program that `kind` found.
    pub fn kept(&self, kind: WorkKind, n: usize) {
        self.kinds[kind.index()]
            .corpus_signal
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MixSnapshot {
        let mut s = MixSnapshot::default();
        for (k, c) in WorkKind::ALL.iter().zip(&self.kinds) {
            s.kinds[k.index()] = KindFigures {
                execs: c.execs.load(Ordering::Relaxed),
                new_signal: c.new_signal.load(Ordering::Relaxed),
                corpus_signal: c.corpus_signal.load(Ordering::Relaxed),
                micros: c.micros.load(Ordering::Relaxed),
            };
        }
        s
    }
}

/// The figures of one kind at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindFigures {
    pub execs: u64,
    pub new_signal: u64,
    pub corpus_signal: u64,
    pub micros: u64,
}

/// All kinds' figures at one moment: what the policy decides from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixSnapshot {
    pub kinds: [KindFigures; KINDS],
}

/// One line of the mix as printed and as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KindReport {
    pub kind: WorkKind,
    pub execs: u64,
    /// Of all executions through the fuzzer (reproduction attempts are not among them).
    pub share_pct: f64,
    pub new_signal: u64,
    pub corpus_signal: u64,
    /// New signal per 1000 executions.
    pub signal_per_1000: f64,
    pub seconds: f64,
}

/// Below this many executions a kind's yield is not judged yet: it gets the idle share.
const WARMUP_EXECS: u64 = 200;
/// The share of executions hints and minimization may take at most while they earn nothing
/// more than fuzzing does ("while they find nothing": the trickle).
pub const TRICKLE_SHARE: f64 = 0.05;
/// The share a kind gets whose yield equals fuzzing's, and before its yield is known.
pub const IDLE_SHARE: f64 = 0.30;
/// The share a kind earns whose yield is at least twice fuzzing's.
pub const EARNED_SHARE: f64 = 0.60;
/// Generation's chance before its yield and mutation's are judged, and its bounds after.
pub const GENERATE_DEFAULT: f64 = 0.1;
pub const GENERATE_MIN: f64 = 0.03;
pub const GENERATE_MAX: f64 = 0.5;
/// Executions of each of generation and mutation before their yields are compared.
const GENERATE_WARMUP: u64 = 30;
/// The chance that a mutation smashes a new corpus program (while one waits) rather than
/// mutating one drawn from the whole corpus, before their yields are judged, and its bounds
/// after.
pub const SMASH_DEFAULT: f64 = 0.5;
pub const SMASH_MIN: f64 = 0.2;
pub const SMASH_MAX: f64 = 0.8;
/// Minimization's share below which every call is tried.
const MINIMIZE_FULL_SHARE: f64 = 0.15;

impl MixSnapshot {
    pub fn get(&self, k: WorkKind) -> KindFigures {
        self.kinds[k.index()]
    }

    /// What happened between `old` and this snapshot.
    pub fn since(&self, old: &MixSnapshot) -> MixSnapshot {
        let mut d = *self;
        for (n, o) in d.kinds.iter_mut().zip(&old.kinds) {
            n.execs = n.execs.saturating_sub(o.execs);
            n.new_signal = n.new_signal.saturating_sub(o.new_signal);
            n.corpus_signal = n.corpus_signal.saturating_sub(o.corpus_signal);
            n.micros = n.micros.saturating_sub(o.micros);
        }
        d
    }

    /// The chance that the next fuzzing program is generated rather than mutated (once there
    /// is a corpus): in proportion to the two yields of new signal per execution, between
    /// `GENERATE_MIN` and `GENERATE_MAX`; `GENERATE_DEFAULT` until both are judged.
    pub fn generate_chance(&self) -> f64 {
        let g = self.get(WorkKind::Generate);
        yield_share(
            g,
            self.mutation(),
            GENERATE_DEFAULT,
            GENERATE_MIN,
            GENERATE_MAX,
        )
    }

    /// Mutation and smashing together: corpus programs mutated.
    fn mutation(&self) -> KindFigures {
        let (m, s) = (self.get(WorkKind::Mutate), self.get(WorkKind::Smash));
        KindFigures {
            execs: m.execs + s.execs,
            new_signal: m.new_signal + s.new_signal,
            corpus_signal: m.corpus_signal + s.corpus_signal,
            micros: m.micros + s.micros,
        }
    }

    /// The chance that a mutation smashes a new corpus program (while one waits) rather than
    /// mutating one drawn from the whole corpus: in proportion to the two yields of new
    /// signal per execution, between `SMASH_MIN` and `SMASH_MAX`; `SMASH_DEFAULT` until both
    /// are judged.
    pub fn smash_chance(&self) -> f64 {
        let (s, m) = (self.get(WorkKind::Smash), self.get(WorkKind::Mutate));
        yield_share(s, m, SMASH_DEFAULT, SMASH_MIN, SMASH_MAX)
    }

    /// Executions through the fuzzer (reproduction runs on VMs of its own).
    pub fn total_execs(&self) -> u64 {
        WorkKind::ALL
            .iter()
            .filter(|k| **k != WorkKind::Repro)
            .map(|k| self.get(*k).execs)
            .sum()
    }

    /// The fraction of the fuzzer's executions that went to `k`.
    pub fn share(&self, k: WorkKind) -> f64 {
        self.get(k).execs as f64 / self.total_execs().max(1) as f64
    }

    /// Stable corpus signal per execution of `k`.
    pub fn yield_of(&self, k: WorkKind) -> f64 {
        let f = self.get(k);
        f.corpus_signal as f64 / f.execs.max(1) as f64
    }

    /// Stable corpus signal per execution of plain fuzzing (generation, mutation, smashing),
    /// with the triage and minimization it caused charged to it in proportion: what an
    /// execution spent elsewhere would buy.
    pub fn fuzz_yield(&self) -> f64 {
        let (g, m) = (self.get(WorkKind::Generate), self.mutation());
        (g.corpus_signal + m.corpus_signal) as f64 / (g.execs + m.execs).max(1) as f64
    }

    /// The most of the fuzzer's executions `k` may take: the trickle while it earns nothing,
    /// the idle share while it earns as much as fuzzing (or is too new to judge), up to the
    /// earned share at twice fuzzing's yield.
    pub fn share_cap(&self, k: WorkKind) -> f64 {
        if self.get(k).execs < WARMUP_EXECS {
            return IDLE_SHARE;
        }
        let (own, fuzz) = (self.yield_of(k), self.fuzz_yield());
        let ratio = if fuzz > 0.0 {
            own / fuzz
        } else if own > 0.0 {
            2.0
        } else {
            // Nobody finds anything: no reason to prefer fuzzing.
            1.0
        };
        TRICKLE_SHARE
            + (IDLE_SHARE - TRICKLE_SHARE) * ratio.clamp(0.0, 1.0)
            + (EARNED_SHARE - IDLE_SHARE) * (ratio - 1.0).clamp(0.0, 1.0)
    }

    /// How many more executions `k` may have now without passing its cap: the `x` with
    /// `(own + x) / (total + x) <= cap`.
    pub fn room(&self, k: WorkKind) -> u64 {
        let cap = self.share_cap(k);
        let own = self.get(k).execs as f64;
        let total = self.total_execs() as f64;
        let x = (cap * total - own) / (1.0 - cap);
        if x.is_finite() && x > 0.0 {
            x as u64
        } else {
            0
        }
    }

    /// How many calls minimization may try to remove from a program of `calls` removable
    /// calls: all while minimization's share is small; fewer as it grows, and at its cap a
    /// trickle of one.
    pub fn minimize_steps(&self, calls: usize) -> usize {
        let share = self.share(WorkKind::Minimize);
        let cap = IDLE_SHARE;
        if share < MINIMIZE_FULL_SHARE || self.total_execs() < WARMUP_EXECS {
            calls
        } else if share < cap {
            // From all the calls at MINIMIZE_FULL_SHARE down to a quarter near the cap.
            let t = (share - MINIMIZE_FULL_SHARE) / (cap - MINIMIZE_FULL_SHARE);
            let keep = 1.0 - 0.75 * t;
            ((calls as f64 * keep).ceil() as usize).clamp(calls.min(1), calls)
        } else {
            calls.min(1)
        }
    }

    /// Per kind: executions, share, signal, time.
    pub fn report(&self) -> Vec<KindReport> {
        let total = self.total_execs().max(1) as f64;
        WorkKind::ALL
            .iter()
            .map(|k| {
                let f = self.get(*k);
                KindReport {
                    kind: *k,
                    execs: f.execs,
                    share_pct: if *k == WorkKind::Repro {
                        0.0
                    } else {
                        100.0 * f.execs as f64 / total
                    },
                    new_signal: f.new_signal,
                    corpus_signal: f.corpus_signal,
                    signal_per_1000: 1000.0 * f.new_signal as f64 / f.execs.max(1) as f64,
                    seconds: f.micros as f64 / 1e6,
                }
            })
            .collect()
    }
}

/// `a`'s share of the two yields of new signal per execution, `a`'s and `b`'s, within
/// `min..=max`; `default` until both have `GENERATE_WARMUP` executions, or while neither finds
/// anything.
fn yield_share(a: KindFigures, b: KindFigures, default: f64, min: f64, max: f64) -> f64 {
    if a.execs < GENERATE_WARMUP || b.execs < GENERATE_WARMUP {
        return default;
    }
    let ay = a.new_signal as f64 / a.execs as f64;
    let by = b.new_signal as f64 / b.execs as f64;
    if ay + by <= 0.0 {
        return default;
    }
    (ay / (ay + by)).clamp(min, max)
}

/// The mix as lines for people, one per kind that did anything: execs, share, new signal,
/// signal per 1000 executions, corpus signal.
pub fn format_report(rows: &[KindReport]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.execs > 0)
        .map(|r| {
            let unit = if r.kind == WorkKind::Repro {
                "attempts"
            } else {
                "execs"
            };
            format!(
                "{:>9} {:>7} {unit:<8} {:>5.1}%  new signal {:>6} ({:>7.1}/1000 execs)  corpus signal {:>6}  {:>6.0}s",
                r.kind.name(),
                r.execs,
                r.share_pct,
                r.new_signal,
                r.signal_per_1000,
                r.corpus_signal,
                r.seconds
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: &[(WorkKind, u64, u64)]) -> MixSnapshot {
        let mut s = MixSnapshot::default();
        for (k, execs, corpus) in rows {
            s.kinds[k.index()] = KindFigures {
                execs: *execs,
                new_signal: *corpus,
                corpus_signal: *corpus,
                micros: 0,
            };
        }
        s
    }

    #[test]
    fn counters_add_up_per_kind_and_shares_leave_repro_out() {
        let m = Mix::default();
        for _ in 0..3 {
            m.executed(WorkKind::Mutate, Duration::from_millis(2));
        }
        m.executed(WorkKind::Hints, Duration::from_millis(1));
        m.executed(WorkKind::Repro, Duration::from_secs(10));
        m.found(WorkKind::Mutate, 5);
        m.kept(WorkKind::Mutate, 4);
        let s = m.snapshot();
        assert_eq!(s.total_execs(), 4);
        assert_eq!(s.get(WorkKind::Mutate).execs, 3);
        assert_eq!(s.get(WorkKind::Mutate).micros, 6000);
        assert!((s.share(WorkKind::Hints) - 0.25).abs() < 1e-9);
        let rows = s.report();
        let mutate = rows.iter().find(|r| r.kind == WorkKind::Mutate).unwrap();
        assert!((mutate.signal_per_1000 - 5000.0 / 3.0).abs() < 1e-6);
        assert_eq!(
            rows.iter()
                .find(|r| r.kind == WorkKind::Repro)
                .unwrap()
                .share_pct,
            0.0
        );
        let lines = format_report(&rows);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].contains("mutate") && lines[0].contains("75.0%"),
            "{lines:?}"
        );
        assert!(lines[2].contains("attempts"), "{lines:?}");
    }

    #[test]
    fn hints_that_find_nothing_get_only_a_trickle() {
        let s = snap(&[
            (WorkKind::Mutate, 1000, 50),
            (WorkKind::Hints, 1400, 0),
            (WorkKind::Triage, 100, 0),
        ]);
        assert!((s.share_cap(WorkKind::Hints) - TRICKLE_SHARE).abs() < 1e-9);
        assert_eq!(
            s.room(WorkKind::Hints),
            0,
            "hints are far over their cap: queued"
        );
        // Once other work has run, hints get their trickle again.
        let s = snap(&[
            (WorkKind::Mutate, 30_000, 50),
            (WorkKind::Hints, 1400, 0),
            (WorkKind::Triage, 100, 0),
        ]);
        assert!(s.room(WorkKind::Hints) > 0);
        let after = snap(&[
            (WorkKind::Mutate, 30_000, 50),
            (WorkKind::Hints, 1400 + s.room(WorkKind::Hints), 0),
            (WorkKind::Triage, 100, 0),
        ]);
        assert!(after.share(WorkKind::Hints) <= TRICKLE_SHARE + 1e-9);
    }

    #[test]
    fn hints_that_pay_earn_a_bigger_share_up_to_the_earned_cap() {
        let fuzz = (WorkKind::Mutate, 1000, 100);
        let equal = snap(&[fuzz, (WorkKind::Hints, 500, 50)]);
        assert!((equal.share_cap(WorkKind::Hints) - IDLE_SHARE).abs() < 1e-9);
        let better = snap(&[fuzz, (WorkKind::Hints, 500, 75)]);
        let c = better.share_cap(WorkKind::Hints);
        assert!(c > IDLE_SHARE && c < EARNED_SHARE, "{c}");
        let best = snap(&[fuzz, (WorkKind::Hints, 500, 500)]);
        assert!((best.share_cap(WorkKind::Hints) - EARNED_SHARE).abs() < 1e-9);
        let half = snap(&[fuzz, (WorkKind::Hints, 500, 25)]);
        let c = half.share_cap(WorkKind::Hints);
        assert!(c > TRICKLE_SHARE && c < IDLE_SHARE, "{c}");
    }

    #[test]
    fn a_new_kind_gets_the_idle_share_before_it_is_judged() {
        let s = snap(&[(WorkKind::Generate, 10, 3), (WorkKind::Hints, 5, 0)]);
        assert!((s.share_cap(WorkKind::Hints) - IDLE_SHARE).abs() < 1e-9);
        // 15 execs, 5 of them hints: (5 + x) / (15 + x) <= 0.3 has no room.
        assert_eq!(s.room(WorkKind::Hints), 0);
        let s = snap(&[(WorkKind::Generate, 100, 3)]);
        // (0 + x) / (100 + x) <= 0.3: x <= 42.
        assert_eq!(s.room(WorkKind::Hints), 42);
        // Hints never exceed the idle share while unjudged.
        let after = snap(&[(WorkKind::Generate, 100, 3), (WorkKind::Hints, 33, 0)]);
        assert!(after.share(WorkKind::Hints) <= IDLE_SHARE);
    }

    #[test]
    fn nothing_found_anywhere_treats_hints_like_fuzzing() {
        let s = snap(&[(WorkKind::Mutate, 1000, 0), (WorkKind::Hints, 300, 0)]);
        assert!((s.share_cap(WorkKind::Hints) - IDLE_SHARE).abs() < 1e-9);
        let s = snap(&[(WorkKind::Mutate, 1000, 0), (WorkKind::Hints, 300, 7)]);
        assert!((s.share_cap(WorkKind::Hints) - EARNED_SHARE).abs() < 1e-9);
    }

    #[test]
    fn generation_follows_its_yield_against_mutation_within_bounds() {
        let early = snap(&[(WorkKind::Generate, 5, 100), (WorkKind::Mutate, 500, 10)]);
        assert_eq!(early.generate_chance(), GENERATE_DEFAULT);
        let even = snap(&[(WorkKind::Generate, 100, 50), (WorkKind::Mutate, 1000, 500)]);
        assert!((even.generate_chance() - 0.5).abs() < 1e-9);
        let gen_pays = snap(&[(WorkKind::Generate, 100, 500), (WorkKind::Mutate, 1000, 50)]);
        assert_eq!(gen_pays.generate_chance(), GENERATE_MAX);
        let mutation_pays = snap(&[(WorkKind::Generate, 100, 1), (WorkKind::Mutate, 1000, 500)]);
        assert_eq!(mutation_pays.generate_chance(), GENERATE_MIN);
        let nothing = snap(&[(WorkKind::Generate, 100, 0), (WorkKind::Mutate, 1000, 0)]);
        assert_eq!(nothing.generate_chance(), GENERATE_DEFAULT);
    }

    #[test]
    fn smashing_follows_its_yield_against_mutation_within_bounds() {
        let early = snap(&[(WorkKind::Smash, 5, 100), (WorkKind::Mutate, 500, 10)]);
        assert_eq!(early.smash_chance(), SMASH_DEFAULT);
        let even = snap(&[(WorkKind::Smash, 100, 50), (WorkKind::Mutate, 1000, 500)]);
        assert!((even.smash_chance() - 0.5).abs() < 1e-9);
        let better = snap(&[(WorkKind::Smash, 100, 60), (WorkKind::Mutate, 1000, 200)]);
        assert!((better.smash_chance() - 0.75).abs() < 1e-9);
        let pays = snap(&[(WorkKind::Smash, 100, 500), (WorkKind::Mutate, 1000, 50)]);
        assert_eq!(pays.smash_chance(), SMASH_MAX);
        let idle = snap(&[(WorkKind::Smash, 100, 0), (WorkKind::Mutate, 1000, 500)]);
        assert_eq!(
            idle.smash_chance(),
            SMASH_MIN,
            "never nothing: new programs get a look"
        );
        let nothing = snap(&[(WorkKind::Smash, 100, 0), (WorkKind::Mutate, 1000, 0)]);
        assert_eq!(nothing.smash_chance(), SMASH_DEFAULT);
        // Generation is weighed against both kinds of mutation together.
        let gen = snap(&[
            (WorkKind::Generate, 100, 100),
            (WorkKind::Mutate, 500, 250),
            (WorkKind::Smash, 500, 750),
        ]);
        assert!((gen.generate_chance() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_recent_window_forgets_early_luck() {
        let m = Mix::default();
        // A lucky start: generation finds a lot.
        for _ in 0..100 {
            m.executed(WorkKind::Generate, Duration::ZERO);
        }
        m.found(WorkKind::Generate, 1000);
        // Then a long stretch where only mutation finds anything.
        for i in 0..(WINDOW_STEP as usize * (WINDOW_STEPS + 2)) {
            let k = if i % 10 == 0 {
                WorkKind::Generate
            } else {
                WorkKind::Mutate
            };
            m.executed(k, Duration::ZERO);
            if k == WorkKind::Mutate && i % 20 == 1 {
                m.found(WorkKind::Mutate, 1);
            }
        }
        let all = m.snapshot();
        let recent = m.recent();
        assert!(all.generate_chance() > 0.4, "{}", all.generate_chance());
        assert_eq!(recent.generate_chance(), GENERATE_MIN);
        assert!(recent.total_execs() <= WINDOW_STEP * (WINDOW_STEPS as u64 + 1));
        assert_eq!(recent.get(WorkKind::Generate).new_signal, 0);
    }

    #[test]
    fn minimization_gets_cheaper_as_its_share_grows() {
        let small = snap(&[(WorkKind::Mutate, 1000, 10), (WorkKind::Minimize, 100, 0)]);
        assert_eq!(small.minimize_steps(10), 10);
        let mid = snap(&[(WorkKind::Mutate, 1000, 10), (WorkKind::Minimize, 280, 0)]);
        let n = mid.minimize_steps(10);
        assert!(n > 1 && n < 10, "{n}");
        let big = snap(&[(WorkKind::Mutate, 1000, 10), (WorkKind::Minimize, 1000, 0)]);
        assert_eq!(big.minimize_steps(10), 1, "a trickle, never nothing");
        assert_eq!(big.minimize_steps(0), 0);
        // Early on, everything is minimized.
        let early = snap(&[(WorkKind::Mutate, 10, 1), (WorkKind::Minimize, 100, 0)]);
        assert_eq!(early.minimize_steps(7), 7);
    }
}
