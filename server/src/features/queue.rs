//! [`RunQueue`]: runs take turns on the one engine. Pure bookkeeping: which run is active,
//! which wait and in what order, and which waiting runs moved far enough to be told (so a
//! front end reports a position only when it changed meaningfully).

use std::collections::{HashMap, VecDeque};

/// Positions this close to the front are told at every step.
const ALWAYS_TOLD: usize = 3;

#[derive(Debug, Default)]
pub struct RunQueue {
    active: Option<String>,
    waiting: VecDeque<String>,
    /// The position last reported for each waiting run.
    reported: HashMap<String, usize>,
}

impl RunQueue {
    /// Adds a run at the end; returns it when it can start at once.
    #[must_use]
    pub fn push(&mut self, run_id: &str) -> Option<String> {
        self.waiting.push_back(run_id.to_owned());
        self.next()
    }

    /// The active run ended; returns the run that starts next.
    #[must_use]
    pub fn finished(&mut self, run_id: &str) -> Option<String> {
        if self.active.as_deref() == Some(run_id) {
            self.active = None;
        }
        self.next()
    }

    /// Takes a waiting run out of the queue (it was cancelled before it started); false when
    /// it was not waiting.
    pub fn remove_waiting(&mut self, run_id: &str) -> bool {
        self.reported.remove(run_id);
        match self.waiting.iter().position(|waiting| waiting == run_id) {
            Some(idx) => {
                self.waiting.remove(idx);
                true
            }
            None => false,
        }
    }

    pub fn is_waiting(&self, run_id: &str) -> bool {
        self.waiting.iter().any(|waiting| waiting == run_id)
    }

    /// Waiting runs to be told their number of runs ahead, with that number: each new run, and
    /// a run whose number fell to half the last one told or to [`ALWAYS_TOLD`] or fewer. Telling
    /// every run each time the queue moves costs the square of the queue's depth in
    /// notifications; halving steps keep it to a logarithm per run, and the last steps, the
    /// ones a user watches, are all told.
    pub fn moved(&mut self) -> Vec<(String, usize)> {
        let ahead_base = usize::from(self.active.is_some());
        let mut res = Vec::new();
        for (idx, run_id) in self.waiting.iter().enumerate() {
            let ahead = ahead_base + idx;
            let tell = match self.reported.get(run_id) {
                None => true,
                Some(&told) => ahead != told && (ahead <= ALWAYS_TOLD || ahead <= told / 2),
            };
            if tell {
                self.reported.insert(run_id.clone(), ahead);
                res.push((run_id.clone(), ahead));
            }
        }
        res
    }

    fn next(&mut self) -> Option<String> {
        if self.active.is_some() {
            return None;
        }
        let run_id = self.waiting.pop_front()?;
        self.reported.remove(&run_id);
        self.active = Some(run_id.clone());
        Some(run_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_take_turns_and_positions_are_reported_when_they_change() {
        let mut queue = RunQueue::default();
        assert_eq!(queue.push("a").as_deref(), Some("a"));
        assert_eq!(queue.push("b"), None);
        assert_eq!(queue.push("c"), None);
        assert_eq!(
            queue.moved(),
            vec![("b".to_owned(), 1), ("c".to_owned(), 2)]
        );
        assert_eq!(queue.moved(), vec![]);
        assert!(queue.remove_waiting("b"));
        assert!(!queue.remove_waiting("b"));
        assert_eq!(queue.moved(), vec![("c".to_owned(), 1)]);
        assert_eq!(queue.finished("a").as_deref(), Some("c"));
        assert_eq!(queue.moved(), vec![]);
        assert_eq!(queue.finished("c"), None);
    }

    #[test]
    fn a_deep_queue_tells_each_run_a_logarithm_of_its_moves() {
        let mut queue = RunQueue::default();
        let depth = 400;
        let runs: Vec<String> = (0..depth).map(|n| n.to_string()).collect();
        for run in &runs {
            let _ = queue.push(run);
        }
        let mut told: HashMap<String, Vec<usize>> = HashMap::new();
        let mut record = |queue: &mut RunQueue| {
            for (run, ahead) in queue.moved() {
                told.entry(run).or_default().push(ahead);
            }
        };
        record(&mut queue);
        for run in &runs {
            let _ = queue.finished(run);
            record(&mut queue);
        }
        let last = &told[&runs[depth - 1]];
        assert_eq!(
            last,
            &[399, 199, 99, 49, 24, 12, 6, 3, 2, 1],
            "halving steps, then every step near the front"
        );
        let total: usize = told.values().map(Vec::len).sum();
        assert!(total < depth * 11, "{total} reports for {depth} runs");
        assert!(
            told.values()
                .all(|positions| positions.windows(2).all(|w| w[1] < w[0]))
        );
    }
}
