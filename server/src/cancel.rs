//! [`CancelFlag`]: how a run tells the engine, the sandbox and commands to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A cancellation flag shared between a run and everything it started. Cheap to clone;
/// once set it stays set.
///
/// A flag made by [`CancelFlag::joined`] also reads as set when any of the flags it joins is
/// set, or once its deadline has passed: the engine thread hands its engines one flag that
/// stands for "the run cancelled, the engine is being dropped, or the call took too long", so
/// every place that polls a flag honours all three.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    set: AtomicBool,
    joined: Vec<CancelFlag>,
    deadline: Option<Instant>,
}

impl CancelFlag {
    /// A flag that is set when any of `flags` is, when `deadline` passes, or when it is
    /// cancelled itself. Cancelling it does not cancel `flags`.
    pub fn joined(flags: &[&CancelFlag], deadline: Option<Instant>) -> CancelFlag {
        CancelFlag(Arc::new(Inner {
            set: AtomicBool::new(false),
            joined: flags.iter().map(|&flag| flag.clone()).collect(),
            deadline,
        }))
    }

    pub fn cancel(&self) {
        self.0.set.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.set.load(Ordering::Acquire)
            || self.0.joined.iter().any(CancelFlag::is_cancelled)
            || self.deadline_passed()
    }

    /// Whether this flag's own deadline (not a joined flag's) has passed.
    pub fn deadline_passed(&self) -> bool {
        self.0
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn joined_flags_follow_their_parts_and_their_deadline() {
        let run = CancelFlag::default();
        let engine = CancelFlag::default();
        let far = Instant::now() + Duration::from_secs(3600);
        let both = CancelFlag::joined(&[&run, &engine], Some(far));
        assert!(!both.is_cancelled());
        engine.cancel();
        assert!(both.is_cancelled() && !run.is_cancelled());

        let own = CancelFlag::joined(&[&run], None);
        own.cancel();
        assert!(own.is_cancelled() && !run.is_cancelled(), "only downwards");

        let past = CancelFlag::joined(&[&run], Some(Instant::now()));
        assert!(past.is_cancelled() && past.deadline_passed());
    }
}
