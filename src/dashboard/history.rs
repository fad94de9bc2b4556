//! The run's figures over time, sampled from the fuzzer's counters, in bounded memory: when
//! full, every other sample is dropped and sampling slows down by half (to one sample every
//! ten minutes at most).

use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub secs: f64,
    pub execs: u64,
    /// Executions per second since the sample before.
    pub execs_per_sec: f64,
    pub signal: u64,
    pub cover: u64,
    pub corpus: u64,
    pub crashes: u64,
}

pub struct History {
    samples: VecDeque<Sample>,
    cap: usize,
    every: Duration,
}

impl History {
    pub fn new(cap: usize, every: Duration) -> History {
        History {
            samples: VecDeque::with_capacity(cap),
            cap: cap.max(4),
            every,
        }
    }

    /// How long until the next sample is due.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Adds a sample (its rate taken against the last one).
    pub fn push(&mut self, mut s: Sample) {
        if let Some(last) = self.samples.back() {
            let dt = s.secs - last.secs;
            s.execs_per_sec = if dt > 0.0 {
                s.execs.saturating_sub(last.execs) as f64 / dt
            } else {
                last.execs_per_sec
            };
        }
        if self.samples.len() >= self.cap {
            // Keep the first, then every other one: the plot keeps its whole span.
            let kept: VecDeque<Sample> = self
                .samples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, s)| *s)
                .collect();
            self.samples = kept;
            self.every = (self.every * 2).min(Duration::from_secs(600));
        }
        self.samples.push_back(s);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64, execs: u64) -> Sample {
        Sample {
            secs,
            execs,
            execs_per_sec: 0.0,
            signal: 0,
            cover: 0,
            corpus: 0,
            crashes: 0,
        }
    }

    #[test]
    fn rates_come_from_consecutive_samples() {
        let mut h = History::new(100, Duration::from_secs(1));
        h.push(at(0.0, 0));
        h.push(at(2.0, 100));
        h.push(at(4.0, 100));
        let rates: Vec<f64> = h.samples().iter().map(|s| s.execs_per_sec).collect();
        assert_eq!(rates, [0.0, 50.0, 0.0]);
    }

    #[test]
    fn memory_stays_bounded_and_the_span_is_kept() {
        let mut h = History::new(8, Duration::from_secs(1));
        for i in 0..1000 {
            h.push(at(f64::from(i), u64::from(i as u32) * 10));
        }
        let s = h.samples();
        assert!(s.len() <= 8, "{}", s.len());
        assert_eq!(s[0].secs, 0.0, "the first sample stays");
        assert_eq!(s.last().map(|s| s.secs), Some(999.0));
        assert!(s.windows(2).all(|w| w[0].secs < w[1].secs));
        assert!(h.every() > Duration::from_secs(1), "sampling slowed down");
    }
}
