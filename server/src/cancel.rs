//! [`CancelFlag`]: how a run tells the engine, the sandbox and commands to stop.
//!
//! Code that computes checks the flag between steps (the engine between decode steps; a
//! computing snippet is not asked, its worker is killed). Code that waits never looks at it on
//! a timer, as rust-analyzer's workers `select!` their work with cancellation:
//! - a wait for a message is [`CancelFlag::wait`] (or [`CancelFlag::recv`]), a crossbeam
//!   `Select` over the work and a channel that the flag disconnects when it is set;
//! - a wait in `poll(2)` on descriptors (the jail's pipes, a socket) is [`poll_until`], which
//!   polls them with pipes whose write ends the flag closes when it is set.
//!
//! Either way the waiter wakes the moment the flag is set, and an idle wait does not wake at
//! all until its own deadline.

#[cfg(unix)]
use crate::sync;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
#[cfg(unix)]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Dropped by `cancel`, which wakes every waiter at once.
    wake: Mutex<Wake>,
    woken: Receiver<()>,
    /// The read end of the pipe whose write end is in `wake`, made on first use.
    #[cfg(unix)]
    hangup: OnceLock<std::io::PipeReader>,
}

/// What `cancel` drops. Both are `None` once the flag is set.
#[derive(Debug)]
struct Wake {
    /// Never sent on: dropping it disconnects `Inner::woken`.
    channel: Option<Sender<()>>,
    /// Never written: dropping it hangs up `Inner::hangup`.
    #[cfg(unix)]
    pipe: Option<std::io::PipeWriter>,
}

impl Default for Inner {
    fn default() -> Inner {
        let (wake, woken) = crossbeam_channel::bounded(0);
        Inner {
            set: AtomicBool::new(false),
            joined: Vec::new(),
            deadline: None,
            wake: Mutex::new(Wake {
                channel: Some(wake),
                #[cfg(unix)]
                pipe: None,
            }),
            woken,
            #[cfg(unix)]
            hangup: OnceLock::new(),
        }
    }
}

/// Why [`CancelFlag::wait`] returned without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The flag, or one it joins, is set, or the flag's own deadline passed.
    Cancelled,
    /// The caller's deadline passed.
    TimedOut,
    /// Every sender is gone.
    Disconnected,
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
        let mut wake = self.wake();
        wake.channel = None;
        #[cfg(unix)]
        {
            wake.pipe = None;
        }
    }

    fn wake(&self) -> std::sync::MutexGuard<'_, Wake> {
        sync::lock(&self.0.wake)
    }

    /// Waits for a message on `rx` until `deadline`. `None` when the deadline (or the flag's
    /// own) passes, the flag is set (waking at once), or every sender is gone.
    pub fn recv<T>(&self, rx: &Receiver<T>, deadline: Instant) -> Option<T> {
        self.wait(rx, Some(deadline)).ok()
    }

    /// Waits for a message on `rx` until `deadline` (`None`: no deadline but the flag's own),
    /// waking at once when the flag is set; says why when no message came.
    pub fn wait<T>(&self, rx: &Receiver<T>, deadline: Option<Instant>) -> Result<T, Interrupted> {
        let mut woken = Vec::new();
        let mut until = deadline;
        self.visit(&mut |flag| {
            woken.push(flag.0.woken.clone());
            until = earliest(until, flag.0.deadline);
        });
        if self.is_cancelled() {
            return Err(Interrupted::Cancelled);
        }
        let mut select = Select::new();
        let work = select.recv(rx);
        for flag in &woken {
            select.recv(flag);
        }
        let op = match until {
            Some(until) => select.select_deadline(until),
            None => Ok(select.select()),
        };
        match op {
            Ok(op) if op.index() == work => op.recv(rx).map_err(|_| Interrupted::Disconnected),
            Ok(op) => {
                // A flag was cancelled: its channel is disconnected.
                let index = op.index();
                let _ = op.recv(&woken[index - 1]);
                Err(Interrupted::Cancelled)
            }
            Err(_) if self.is_cancelled() => Err(Interrupted::Cancelled),
            Err(_) => Err(Interrupted::TimedOut),
        }
    }

    /// For a `poll(2)` on descriptors of the caller's: descriptors that hang up (so `poll`
    /// returns) once this flag or one it joins is set, to add to the set with `POLLIN`, and
    /// the earliest of their deadlines, to bound the timeout by. Each flag makes its pipe on
    /// first use and keeps it while it lives (close-on-exec, so no command inherits it).
    #[cfg(unix)]
    fn poll_wakers(&self) -> std::io::Result<(Vec<BorrowedFd<'_>>, Option<Instant>)> {
        let mut fds = Vec::new();
        let mut deadline = None;
        let mut failed = None;
        self.visit(&mut |flag| {
            deadline = earliest(deadline, flag.0.deadline);
            match flag.hangup() {
                Ok(fd) => fds.push(fd),
                Err(err) => failed = Some(err),
            }
        });
        match failed {
            Some(err) => Err(err),
            None => Ok((fds, deadline)),
        }
    }

    /// This flag's own pipe (not a joined flag's), made on first use: hung up already when
    /// the flag is set.
    #[cfg(unix)]
    fn hangup(&self) -> std::io::Result<BorrowedFd<'_>> {
        if let Some(reader) = self.0.hangup.get() {
            return Ok(reader.as_fd());
        }
        // Under the lock `cancel` takes, so a cancel either sees the writer or happened before.
        let mut wake = self.wake();
        if self.0.hangup.get().is_none() {
            let (reader, writer) = std::io::pipe()?;
            if wake.channel.is_some() {
                wake.pipe = Some(writer);
            }
            let _ = self.0.hangup.set(reader);
        }
        drop(wake);
        Ok(self.0.hangup.get().expect("set above").as_fd())
    }

    /// Calls `each` with this flag and every flag it joins, however deep.
    fn visit<'a>(&'a self, each: &mut dyn FnMut(&'a CancelFlag)) {
        each(self);
        for flag in &self.0.joined {
            flag.visit(each);
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

/// How often a wait looks at the flag when the flag cannot make its pipe (the process is out
/// of descriptors).
#[cfg(unix)]
const FALLBACK_POLL: Duration = Duration::from_millis(10);

/// A `pollfd` for `fd` and `events`.
#[cfg(unix)]
pub fn poll_for(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits in `poll(2)` until one of `fds` is ready (its `revents` set), `until` passes, or
/// `cancel` is set: the flag's pipes are polled with `fds`, so a cancel wakes the wait at
/// once and a quiet wait does not wake before `until` (or the flag's own deadline).
#[cfg(unix)]
pub fn poll_until(fds: &mut [libc::pollfd], until: Instant, cancel: Option<&CancelFlag>) {
    let mut set = fds.to_vec();
    let mut until = until;
    match cancel.map(CancelFlag::poll_wakers) {
        Some(Ok((wakers, flag_deadline))) => {
            set.extend(
                wakers
                    .iter()
                    .map(|fd| poll_for(fd.as_raw_fd(), libc::POLLIN)),
            );
            until = earliest(Some(until), flag_deadline).unwrap_or(until);
        }
        Some(Err(_)) => until = until.min(Instant::now() + FALLBACK_POLL),
        None => {}
    }
    let wait = until.saturating_duration_since(Instant::now());
    // Rounded up, so that a wait does not end just short of its deadline and spin.
    let timeout_ms = i32::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX);
    // SAFETY: `set` is a valid array of `set.len()` pollfd structs.
    let ready = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, timeout_ms) };
    for (fd, polled) in fds.iter_mut().zip(&set) {
        fd.revents = if ready > 0 { polled.revents } else { 0 };
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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

    /// A bound on waits that must end by a cancel: far enough never to pass on a loaded
    /// machine, near enough that a wait that was not woken fails the test instead of hanging it.
    const NOT_WOKEN: Duration = Duration::from_secs(60);

    #[test]
    fn a_waiter_wakes_when_a_joined_flag_is_cancelled() {
        let run = CancelFlag::default();
        let joined = CancelFlag::joined(&[&run], None);
        let (_keep, rx) = crossbeam_channel::unbounded::<u32>();
        let deadline = Instant::now() + NOT_WOKEN;
        let canceller = {
            let run = run.clone();
            std::thread::spawn(move || run.cancel())
        };
        assert_eq!(joined.recv(&rx, deadline), None);
        assert!(Instant::now() < deadline, "woken by the cancel");
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

    #[test]
    fn a_wait_says_why_it_ended() {
        let flag = CancelFlag::default();
        let (tx, rx) = crossbeam_channel::unbounded::<u32>();
        let now = Instant::now();
        assert_eq!(flag.wait(&rx, Some(now)), Err(Interrupted::TimedOut));
        let expired = CancelFlag::joined(&[&flag], Some(now));
        assert_eq!(expired.wait(&rx, None), Err(Interrupted::Cancelled));
        drop(tx);
        assert_eq!(flag.wait(&rx, None), Err(Interrupted::Disconnected));
        flag.cancel();
        assert_eq!(flag.wait(&rx, None), Err(Interrupted::Cancelled));
    }

    #[test]
    fn a_wait_without_a_deadline_of_its_own_wakes_on_cancel() {
        let run = CancelFlag::default();
        let deadline = Instant::now() + NOT_WOKEN;
        let joined = CancelFlag::joined(&[&run], Some(deadline));
        let (_keep, rx) = crossbeam_channel::unbounded::<u32>();
        let canceller = {
            let run = run.clone();
            std::thread::spawn(move || run.cancel())
        };
        assert_eq!(joined.wait(&rx, None), Err(Interrupted::Cancelled));
        assert!(Instant::now() < deadline, "woken by the cancel");
        canceller.join().unwrap();
    }

    /// `poll(2)` on `fds`, which must wake it within [`NOT_WOKEN`]; the revents of each.
    #[cfg(unix)]
    fn poll_woken(fds: &[BorrowedFd<'_>]) -> Vec<libc::c_short> {
        let mut set: Vec<libc::pollfd> = fds
            .iter()
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfd structs.
        let ready = unsafe {
            libc::poll(
                set.as_mut_ptr(),
                set.len() as libc::nfds_t,
                NOT_WOKEN.as_millis() as i32,
            )
        };
        assert!(ready > 0, "not woken: {}", std::io::Error::last_os_error());
        set.iter().map(|fd| fd.revents).collect()
    }

    #[cfg(unix)]
    #[test]
    fn a_poll_wakes_when_a_joined_flag_is_cancelled() {
        let run = CancelFlag::default();
        let far = Instant::now() + Duration::from_secs(3600);
        let joined = CancelFlag::joined(&[&run], Some(far));
        let (fds, deadline) = joined.poll_wakers().unwrap();
        assert_eq!(fds.len(), 2, "the joined flag's pipe and the run's");
        assert_eq!(deadline, Some(far));
        let canceller = {
            let run = run.clone();
            std::thread::spawn(move || run.cancel())
        };
        let revents = poll_woken(&fds);
        assert_eq!(revents[0], 0, "the joined flag itself was not cancelled");
        assert_ne!(revents[1], 0);
        canceller.join().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_quiet_poll_until_wakes_on_cancel() {
        let (quiet, _never_written) = std::io::pipe().unwrap();
        let run = CancelFlag::default();
        let joined = CancelFlag::joined(&[&run], None);
        let until = Instant::now() + NOT_WOKEN;
        let canceller = {
            let run = run.clone();
            std::thread::spawn(move || run.cancel())
        };
        let mut fds = [poll_for(quiet.as_raw_fd(), libc::POLLIN)];
        poll_until(&mut fds, until, Some(&joined));
        assert!(Instant::now() < until, "woken by the cancel");
        assert_eq!(fds[0].revents, 0, "only the flag's pipe was ready");
        canceller.join().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_flag_set_before_its_pipe_is_made_hangs_up_at_once() {
        let flag = CancelFlag::default();
        flag.cancel();
        let (fds, deadline) = flag.poll_wakers().unwrap();
        assert_eq!(deadline, None);
        assert_ne!(poll_woken(&fds)[0], 0);
        // The same pipe on the next call.
        let (again, _) = flag.poll_wakers().unwrap();
        assert_eq!(again[0].as_raw_fd(), fds[0].as_raw_fd());
    }
}
