//! How many threads each generation step uses, chosen from measured step times.
//!
//! ggml's worker threads wait for each other at a spinning barrier after every graph node, and
//! a non-spinning threadpool poll level only changes how they wait *between* graphs. So when
//! another busy process takes one of two cores, two threads decode at a fraction of one
//! thread's speed: each step waits for a descheduled peer (docs/benchmarks.md measured 2.5×
//! slower). Nothing tells the engine which count is faster right now except trying: the tuner
//! decodes with its current count and, every so often, a few steps with one thread more or
//! fewer (a probe), and moves to the probed count when its steps were clearly faster.
//!
//! Probes get rarer while they keep losing (16, 32, … 256 steps apart), so a quiet machine pays
//! one slower step in a hundred or more; a probe that cost many steps (two threads beside a busy
//! process) ends after one step and waits long enough (up to 2048 steps) to keep its cost near
//! 2% of decode time; a step that suddenly takes much longer than the best
//! seen for its kind (someone started a build) brings the next probe forward. Steps are compared
//! only with steps of the same batch size, since a verification batch of 9 tokens costs more
//! than a single token. Pure logic: the engine passes in what it measured.

use std::collections::HashMap;
use std::time::Duration;

/// Steps between probes: the first, and the longest back-off.
const MIN_INTERVAL: usize = 16;
const MAX_INTERVAL: usize = 256;
/// Probe steps compared with the current count before deciding, and the most steps a probe may
/// take to find them (a step with no same-size baseline cannot be compared).
const PROBE_COMPARISONS: usize = 2;
const PROBE_MAX_STEPS: usize = 8;
/// A probed count must be this much faster to be taken: noise must not make the count flap.
const SWITCH_MARGIN: f64 = 0.05;
/// A recent median this many times the best seen means the machine changed: probe now.
const SLOWDOWN: f64 = 1.5;
/// A probe step this many times slower than the current count's steps ends the probe at once.
/// On a quiet machine a probe step is at most about 1.3 times slower; with a busy process on a
/// 2-core machine, the first two-thread step after single-thread ones took 8 to 30 single steps
/// (docs/benchmarks.md): the second thread waits for the busy one's time slice.
const HOPELESS: f64 = 3.0;
/// After a losing probe, the next waits until the steps decoded since cover its extra cost
/// this many times over (at most [`MAX_COSTLY_INTERVAL`] steps), so probing costs at most
/// about 2% of decode time however expensive a probe turned out.
const PROBE_COST_COVER: f64 = 50.0;
const MAX_COSTLY_INTERVAL: usize = 2048;
/// Step times remembered per (threads, batch size).
const WINDOW: usize = 5;

#[derive(Debug, Clone)]
pub(crate) struct ThreadTuner {
    max: usize,
    current: usize,
    adaptive: bool,
    /// The latest step times for each (threads, batch size), oldest first.
    recent: HashMap<(usize, usize), Vec<Duration>>,
    /// The lowest window median seen for each (threads, batch size).
    best: HashMap<(usize, usize), Duration>,
    probe: Option<Probe>,
    steps_to_probe: usize,
    interval: usize,
    /// Which neighbour the next probe tries first.
    probe_fewer: bool,
}

#[derive(Debug, Clone)]
struct Probe {
    threads: usize,
    steps: usize,
    /// Probe step time / the current count's median for the same batch size.
    ratios: Vec<f64>,
}

impl ThreadTuner {
    /// Always `threads`.
    pub(crate) fn fixed(threads: usize) -> ThreadTuner {
        ThreadTuner {
            adaptive: false,
            ..ThreadTuner::adaptive(threads)
        }
    }

    /// Starts at `max` and moves between 1 and `max` as measurements say.
    pub(crate) fn adaptive(max: usize) -> ThreadTuner {
        let max = max.max(1);
        ThreadTuner {
            max,
            current: max,
            adaptive: true,
            recent: HashMap::new(),
            best: HashMap::new(),
            probe: None,
            steps_to_probe: MIN_INTERVAL,
            interval: MIN_INTERVAL,
            probe_fewer: true,
        }
    }

    /// Threads for the next step.
    pub(crate) fn threads(&self) -> usize {
        self.probe
            .as_ref()
            .map_or(self.current, |probe| probe.threads)
    }

    /// The count the tuner settled on (what it returns when not probing).
    pub(crate) fn settled(&self) -> usize {
        self.current
    }

    /// Records that a step of `batch_size` tokens on `threads` threads took `elapsed`.
    pub(crate) fn record(&mut self, threads: usize, batch_size: usize, elapsed: Duration) {
        if !self.adaptive || elapsed.is_zero() {
            return;
        }
        match &mut self.probe {
            Some(probe) if probe.threads == threads => {
                probe.steps += 1;
                if let Some(baseline) = median(self.recent.get(&(self.current, batch_size))) {
                    probe
                        .ratios
                        .push(elapsed.as_secs_f64() / baseline.as_secs_f64());
                }
                remember(&mut self.recent, (threads, batch_size), elapsed);
                let hopeless = probe.ratios.last().is_some_and(|&ratio| ratio >= HOPELESS);
                if hopeless
                    || probe.ratios.len() >= PROBE_COMPARISONS
                    || probe.steps >= PROBE_MAX_STEPS
                {
                    self.finish_probe();
                }
            }
            _ => self.record_current(threads, batch_size, elapsed),
        }
    }

    fn record_current(&mut self, threads: usize, batch_size: usize, elapsed: Duration) {
        let key = (threads, batch_size);
        remember(&mut self.recent, key, elapsed);
        let window = &self.recent[&key];
        if window.len() == WINDOW
            && let Some(now) = median(Some(window))
        {
            let best = self.best.entry(key).or_insert(now);
            if now.as_secs_f64() > SLOWDOWN * best.as_secs_f64() {
                // Much slower than this kind of step has been: the machine got busier. Unless
                // the last probe was hopeless: more load will not make it less so.
                if self.interval <= MAX_INTERVAL {
                    self.steps_to_probe = 0;
                    self.interval = MIN_INTERVAL;
                }
                *best = now;
            } else if now < *best {
                *best = now;
            }
        }
        self.steps_to_probe = self.steps_to_probe.saturating_sub(1);
        if self.steps_to_probe == 0 {
            self.start_probe();
        }
    }

    fn start_probe(&mut self) {
        let fewer = self.current.checked_sub(1).filter(|&n| n >= 1);
        let more = Some(self.current + 1).filter(|&n| n <= self.max);
        let threads = if self.probe_fewer {
            fewer.or(more)
        } else {
            more.or(fewer)
        };
        self.probe_fewer = !self.probe_fewer;
        match threads {
            Some(threads) => {
                self.probe = Some(Probe {
                    threads,
                    steps: 0,
                    ratios: Vec::new(),
                })
            }
            // One thread at most: nothing to try.
            None => self.steps_to_probe = MAX_INTERVAL,
        }
    }

    fn finish_probe(&mut self) {
        let Some(mut probe) = self.probe.take() else {
            return;
        };
        let faster =
            !probe.ratios.is_empty() && median_f64(&mut probe.ratios) < 1.0 - SWITCH_MARGIN;
        if faster {
            // Keep going the same way first: 4 → 3 being better suggests 3 → 2 might be too.
            self.probe_fewer = probe.threads < self.current;
            self.current = probe.threads;
            self.interval = MIN_INTERVAL;
        } else {
            // The steps the probe cost beyond what the current count would have taken.
            let extra: f64 = probe
                .ratios
                .iter()
                .map(|ratio| (ratio - 1.0).max(0.0))
                .sum();
            let covered = ((extra * PROBE_COST_COVER) as usize).min(MAX_COSTLY_INTERVAL);
            self.interval = (self.interval * 2).min(MAX_INTERVAL).max(covered);
        }
        self.steps_to_probe = self.interval;
    }
}

fn remember(
    recent: &mut HashMap<(usize, usize), Vec<Duration>>,
    key: (usize, usize),
    elapsed: Duration,
) {
    let window = recent.entry(key).or_default();
    if window.len() == WINDOW {
        window.remove(0);
    }
    window.push(elapsed);
}

/// The median of a window with at least 3 entries (fewer say too little).
fn median(window: Option<&Vec<Duration>>) -> Option<Duration> {
    let window = window.filter(|w| w.len() >= 3)?;
    let mut sorted = window.clone();
    sorted.sort();
    Some(sorted[sorted.len() / 2])
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` single-token steps where a step on `n` threads takes `cost(n)` ms; returns
    /// the thread counts used.
    fn simulate(tuner: &mut ThreadTuner, steps: usize, cost: impl Fn(usize) -> u64) -> Vec<usize> {
        (0..steps)
            .map(|_| {
                let threads = tuner.threads();
                tuner.record(threads, 1, Duration::from_millis(cost(threads)));
                threads
            })
            .collect()
    }

    #[test]
    fn fixed_never_moves() {
        let mut tuner = ThreadTuner::fixed(2);
        let used = simulate(&mut tuner, 500, |n| if n == 2 { 30 } else { 10 });
        assert!(used.iter().all(|&n| n == 2));
    }

    #[test]
    fn quiet_machine_stays_at_max_and_probes_rarely() {
        let mut tuner = ThreadTuner::adaptive(2);
        // Two threads 10 ms a step, one thread 14 ms: a quiet two-core machine.
        let used = simulate(&mut tuner, 1000, |n| if n == 2 { 10 } else { 14 });
        assert_eq!(tuner.settled(), 2);
        let probe_steps = used.iter().filter(|&&n| n == 1).count();
        assert!(probe_steps <= 16, "{probe_steps} probe steps in 1000");
    }

    #[test]
    fn contention_moves_to_one_thread_and_back() {
        let mut tuner = ThreadTuner::adaptive(2);
        simulate(&mut tuner, 300, |n| if n == 2 { 10 } else { 14 });
        assert_eq!(tuner.settled(), 2);
        // A busy process arrives: two threads now wait at ggml's barrier.
        let busy = simulate(&mut tuner, 100, |n| if n == 2 { 30 } else { 14 });
        assert_eq!(tuner.settled(), 1);
        let slow_steps = busy.iter().filter(|&&n| n == 2).count();
        assert!(slow_steps <= 30, "{slow_steps} slow steps before moving");
        // It leaves; a probe finds two threads faster again within the longest back-off.
        simulate(&mut tuner, MAX_INTERVAL + 2 * PROBE_MAX_STEPS, |n| {
            if n == 2 { 10 } else { 14 }
        });
        assert_eq!(tuner.settled(), 2);
    }

    #[test]
    fn a_probe_that_costs_many_steps_ends_at_once_and_comes_back_late() {
        let mut tuner = ThreadTuner::adaptive(2);
        // One busy process on two cores: a two-thread step waits for its time slice.
        let used = simulate(&mut tuner, 2000, |n| if n == 2 { 150 } else { 10 });
        assert_eq!(tuner.settled(), 1);
        let slow_steps = used.iter().filter(|&&n| n == 2).count();
        // The first steps before the first probe, then one step per probe.
        assert!(
            slow_steps <= MIN_INTERVAL + 4,
            "{slow_steps} slow steps in 2000"
        );
    }

    #[test]
    fn climbs_down_several_steps_on_a_bigger_machine() {
        let mut tuner = ThreadTuner::adaptive(8);
        // Three other busy processes: five threads are best, each one more or fewer costs.
        simulate(&mut tuner, 2000, |n| 10 + 4 * (n as i64 - 5).unsigned_abs());
        assert_eq!(tuner.settled(), 5);
    }

    #[test]
    fn steps_are_compared_only_with_steps_of_their_size() {
        let mut tuner = ThreadTuner::adaptive(2);
        // Two threads: 1-token steps 10 ms, 9-token steps 25 ms; one thread: 14 and 40 ms. A
        // probe's 9-token step compared with a 1-token median would look 4 times slower, a
        // 1-token probe step against 9-token steps much faster: neither may decide.
        let cost = |threads: usize, size: usize| match (threads, size) {
            (2, 1) => 10,
            (2, _) => 25,
            (_, 1) => 14,
            _ => 40,
        };
        for step in 0..2000 {
            let size = if step % 3 == 0 { 1 } else { 9 };
            let threads = tuner.threads();
            tuner.record(threads, size, Duration::from_millis(cost(threads, size)));
        }
        assert_eq!(tuner.settled(), 2);
    }
}
