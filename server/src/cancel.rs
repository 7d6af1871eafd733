//! [`CancelFlag`]: how a run tells the engine, the sandbox and commands to stop.
//!
//! Code that computes polls the flag between steps; code that waits for a message waits in
//! [`CancelFlag::recv`], which wakes the moment the flag is set (as rust-analyzer's workers
//! `select!` their work with cancellation) instead of checking it every few milliseconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender};

/// A cancellation flag shared between a run and everything it started. Cheap to clone;
/// once set it stays set.
///
/// A flag made by [`CancelFlag::joined`] also reads as set when any of the flags it joins is
/// set, or once its deadline has passed: the engine thread hands its engines one flag that
/// stands for "the run cancelled, the engine is being dropped, or the call took too long", so
/// every place that polls a flag honours all three.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    set: AtomicBool,
    joined: Vec<CancelFlag>,
    deadline: Option<Instant>,
    /// Never sent on: dropped by `cancel`, which disconnects `woken` and so wakes every
    /// waiter at once.
    wake: Mutex<Option<Sender<()>>>,
    woken: Receiver<()>,
}

impl Default for Inner {
    fn default() -> Inner {
        let (wake, woken) = crossbeam_channel::bounded(0);
        Inner {
            set: AtomicBool::new(false),
            joined: Vec::new(),
            deadline: None,
            wake: Mutex::new(Some(wake)),
            woken,
        }
    }
}

impl CancelFlag {
    /// A flag that is set when any of `flags` is, when `deadline` passes, or when it is
    /// cancelled itself. Cancelling it does not cancel `flags`.
    pub fn joined(flags: &[&CancelFlag], deadline: Option<Instant>) -> CancelFlag {
        CancelFlag(Arc::new(Inner {
            joined: flags.iter().map(|&flag| flag.clone()).collect(),
            deadline,
            ..Inner::default()
        }))
    }

    pub fn cancel(&self) {
        self.0.set.store(true, Ordering::Release);
        // After the store, so a woken waiter sees the flag set.
        let wake = self
            .0
            .wake
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(wake);
    }

    /// Waits for a message on `rx` until `deadline`. `None` when the deadline (or the flag's
    /// own) passes, the flag is set (waking at once), or every sender is gone.
    pub fn recv<T>(&self, rx: &Receiver<T>, deadline: Instant) -> Option<T> {
        let mut woken = Vec::new();
        let mut deadline = deadline;
        self.wakers(&mut woken, &mut deadline);
        if self.is_cancelled() {
            return None;
        }
        let mut select = Select::new();
        let work = select.recv(rx);
        for flag in &woken {
            select.recv(flag);
        }
        let op = select.select_deadline(deadline).ok()?;
        let index = op.index();
        if index == work {
            op.recv(rx).ok()
        } else {
            // A flag was cancelled: its channel is disconnected.
            let _ = op.recv(&woken[index - 1]);
            None
        }
    }

    /// The channels that wake a waiter on this flag and the flags it joins, and the earliest
    /// of their deadlines.
    fn wakers(&self, woken: &mut Vec<Receiver<()>>, deadline: &mut Instant) {
        woken.push(self.0.woken.clone());
        if let Some(own) = self.0.deadline {
            *deadline = (*deadline).min(own);
        }
        for flag in &self.0.joined {
            flag.wakers(woken, deadline);
        }
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

    #[test]
    fn a_waiter_wakes_when_a_joined_flag_is_cancelled() {
        let run = CancelFlag::default();
        let joined = CancelFlag::joined(&[&run], None);
        let (_keep, rx) = crossbeam_channel::unbounded::<u32>();
        let far = Instant::now() + Duration::from_secs(3600);
        let canceller = {
            let run = run.clone();
            std::thread::spawn(move || run.cancel())
        };
        // Returns only because the cancel woke it: the deadline is an hour away.
        assert_eq!(joined.recv(&rx, far), None);
        canceller.join().unwrap();
    }

    #[test]
    fn a_waiter_gets_its_message_or_gives_up_at_a_deadline() {
        let flag = CancelFlag::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(7).unwrap();
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(flag.recv(&rx, far), Some(7));
        assert_eq!(flag.recv(&rx, Instant::now()), None, "the deadline passed");
        let short = CancelFlag::joined(&[&flag], Some(Instant::now()));
        assert_eq!(
            short.recv(&rx, far),
            None,
            "the joined flag's deadline passed"
        );
        drop(tx);
        assert_eq!(flag.recv(&rx, far), None, "no sender is left");
    }
}
