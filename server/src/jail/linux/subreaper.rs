//! Without namespaces nothing ends a command's descendants for us: no init whose death makes
//! the kernel kill the rest. Two processes keep them instead, each a child subreaper (every
//! process orphaned below it becomes its child):
//!
//! - the **helper**, the command's parent: it answers the seccomp filter's notifications,
//!   reports, and when the command ends kills every descendant ([`sweep`]) before it reports
//!   the end;
//! - the **keeper** above it, the process the server started ([`keep`]): it forks the helper
//!   and then only waits for it. Should the helper die before its sweep is done (the
//!   out-of-memory killer; a command on a kernel that lets it signal the helper), its children,
//!   the command and every daemon it left included, become the keeper's, and the keeper
//!   sweeps them the same way and reports a failure. It also kills a helper that has not
//!   ended within [`HELPER_GRACE`] of the server asking it to stop, and sweeps after it.
//!
//! So any one of the two may die and nothing the command started outlives the run. Neither is
//! in the command's reach: Landlock's signal scope (ABI 6) keeps its `kill`, `tgkill` and
//! `pidfd_send_signal` inside its own domain, seccomp refuses `ptrace`, `process_vm_*` and
//! `pidfd_getfd` and lets it change the limits and scheduling of no process but itself, and
//! the out-of-memory killer takes the command first (`oom_score_adj` 1000, and the keeper,
//! a few pages, puts itself out of reach where it may: as root). The server never kills the
//! keeper once the command runs: a keeper that is late is left to finish (`run.rs`).
//!
//! Why not the alternatives:
//! - the server as the subreaper: every orphan of every program it starts (git, sandbox
//!   workers) would come to it, and reaping them means `waitpid(-1)`, which takes the statuses
//!   that `std::process::Child::wait` waits for elsewhere in the server; it could not tell
//!   which run an orphan came from, and a server that dies takes it with it;
//! - pidfds alone: they follow one known process, not a tree (a daemon forked after the last
//!   look has none); the keeper uses one only to wait for the helper;
//! - stopping (`SIGSTOP`) before killing: the sweep's `SIGKILL` already keeps a process from
//!   forking again (the kernel abandons a fork once a fatal signal is pending), and a
//!   descendant reaches a subreaper only when its parent has died, which killing hastens.
//!
//! What this does not cover: both processes killed together (SIGKILL to each, from outside the
//! command: the command has no way to); a kernel without Landlock's signal scope (before
//! 6.12), where a command may signal any process of its user, these two and the server
//! alike (`punie sandbox --explain` says so); and a chain of processes that each fork and exit
//! faster than one round of the sweep, which only a PID namespace or a cgroup could stop.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::super::helper::send;
use super::super::run::STOP_GRACE;
use super::pidfd_open;
use crate::jail::Report;

/// How long the helper may take to end everything once the server asked (end-of-file on the
/// control socket) before the keeper kills it and sweeps itself: half the server's own wait,
/// so that the keeper is done before the server gives up waiting.
const HELPER_GRACE: Duration = Duration::from_millis(STOP_GRACE.as_millis() as u64 / 2);

/// Becomes the keeper: forks the helper, which runs `helper` (and exits), waits for it, then
/// kills whatever it left. Reports on `control` only what the helper could not.
pub(super) fn keep(control: &UnixStream, helper: impl FnOnce()) {
    // SAFETY: plain prctl flag: the helper's orphans become ours once it is gone.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // Opened before anything runs, so that the sweep needs no new descriptor.
    let children = Children::open();
    // SAFETY: this process is single-threaded (the helper starts no threads).
    let pid = match unsafe { libc::fork() } {
        -1 => {
            send(
                control,
                &Report::Refused {
                    message: format!(
                        "cannot start the command's helper: {}",
                        io::Error::last_os_error()
                    ),
                },
            );
            return;
        }
        0 => {
            helper();
            std::process::exit(0);
        }
        pid => pid,
    };
    // Where allowed (as root): a keeper killed for memory would set the command's
    // descendants free, and it holds a few pages.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    let end = wait_for_helper(pid, control);
    let swept = sweep(children.as_ref(), None);
    let message = match (end, swept) {
        (HelperEnd::Killed(signal), Ok(())) => format!(
            "the command's helper was killed (signal {signal}); the command and everything it \
             started were stopped"
        ),
        (HelperEnd::Killed(signal), Err(err)) => format!(
            "the command's helper was killed (signal {signal}), and what the command started \
             cannot be listed, so some of it may still run: {err}"
        ),
        (_, Err(err)) => {
            format!("cannot make sure that everything the command started has stopped: {err}")
        }
        (HelperEnd::Exited | HelperEnd::Late, Ok(())) => return,
    };
    send(control, &Report::Failed { message });
}

enum HelperEnd {
    /// It exited: it has swept and reported.
    Exited,
    /// A signal from outside ended it.
    Killed(i32),
    /// It did not end within [`HELPER_GRACE`] of the server's stop, so we killed it.
    Late,
}

/// Waits until the helper has ended, killing it once it is late; reaps it.
fn wait_for_helper(helper: libc::pid_t, control: &UnixStream) -> HelperEnd {
    let pidfd = pidfd_open(helper);
    let mut stop_by: Option<Instant> = None;
    loop {
        let mut fds = Vec::with_capacity(2);
        if let Some(pidfd) = &pidfd {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Watched until it reaches end-of-file, which stays readable.
        if stop_by.is_none() {
            fds.push(libc::pollfd {
                fd: control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = match (stop_by, &pidfd) {
            // Without a pidfd (Linux < 5.3) look at the helper every 10 ms.
            (_, None) => 10,
            (Some(until), Some(_)) => until
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(1000) as i32,
            (None, Some(_)) => -1,
        };
        // SAFETY: a valid array of pollfd structs.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if stop_by.is_none()
            && fds.last().is_some_and(|fd| fd.revents != 0)
            && control_closed(control)
        {
            stop_by = Some(Instant::now() + HELPER_GRACE);
        }
        let mut status = 0;
        // SAFETY: reaps our own child without blocking.
        let reaped = unsafe { libc::waitpid(helper, &mut status, libc::WNOHANG) };
        if reaped == helper
            || (reaped < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        {
            return if reaped == helper && libc::WIFSIGNALED(status) {
                HelperEnd::Killed(libc::WTERMSIG(status))
            } else {
                HelperEnd::Exited
            };
        }
        if stop_by.is_some_and(|until| Instant::now() >= until) {
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(helper, libc::SIGKILL);
                libc::waitpid(helper, std::ptr::null_mut(), 0);
            }
            return HelperEnd::Late;
        }
    }
}

/// Whether the server has closed its end of the control socket (or it failed), without
/// taking what the helper is to read.
fn control_closed(control: &UnixStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: peeks at most one byte into a local.
    let peeked = unsafe {
        libc::recv(
            control.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    peeked == 0
        || (peeked < 0
            && !matches!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN | libc::EINTR)
            ))
}

/// Kills every descendant: as a subreaper, each orphaned descendant is our child, so killing
/// our children until none is left reaches them all, however they left their process group.
/// Fails closed: when our children cannot be listed, kills the process group `group` (the
/// helper passes the command's: its session's first, `setsid` made them one) and says why, so
/// that the run is not reported as ended.
pub(super) fn sweep(children: Option<&Children>, group: Option<libc::pid_t>) -> io::Result<()> {
    loop {
        let listed = match children {
            Some(children) => children.list(),
            None => children_by_scan(),
        };
        let pids = match listed {
            Ok(pids) => pids,
            Err(err) => {
                if let Some(group) = group {
                    // SAFETY: signals the command's process group, which we made.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
                return Err(err);
            }
        };
        for pid in pids {
            // SAFETY: signals a process that is our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut reaped_any = false;
        loop {
            // SAFETY: reaps any child of ours without blocking.
            let reaped = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            if reaped > 0 {
                reaped_any = true;
                continue;
            }
            if reaped < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                return Ok(());
            }
            break;
        }
        if !reaped_any {
            // Not a blocking `waitpid`: the `children` file can miss a process that is being
            // reparented to us, which nothing has killed, so look again every millisecond.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// This single-threaded process's `children` file, where the kernel has one
/// (CONFIG_PROC_CHILDREN): opened once and read again from the start each time.
pub(super) struct Children(std::fs::File);

impl Children {
    pub(super) fn open() -> Option<Children> {
        // SAFETY: getpid has no arguments.
        let me = unsafe { libc::getpid() };
        std::fs::File::open(format!("/proc/{me}/task/{me}/children"))
            .ok()
            .map(Children)
    }

    fn list(&self) -> io::Result<Vec<libc::pid_t>> {
        use std::os::unix::fs::FileExt;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.0.read_at(&mut chunk, text.len() as u64)? {
                0 => break,
                n_read => text.extend_from_slice(&chunk[..n_read]),
            }
        }
        Ok(String::from_utf8_lossy(&text)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect())
    }
}

/// The pids whose parent is this process, from every `/proc/<pid>/stat` (a kernel without
/// `children` files).
fn children_by_scan() -> io::Result<Vec<libc::pid_t>> {
    // SAFETY: getpid has no arguments.
    let me = unsafe { libc::getpid() };
    let mut res = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if parent_pid(&stat) == Some(me) => res.push(pid),
            Ok(_) => {}
            // Gone meanwhile.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(res)
}

/// The fourth field of `/proc/<pid>/stat`; the second (the name, in parentheses) may hold
/// spaces and parentheses, so the fields are counted after the last `)`.
fn parent_pid(stat: &str) -> Option<libc::pid_t> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_process_names() {
        assert_eq!(parent_pid("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_pid("42 (a) b (c)) R 9 1 1"), Some(9));
        assert_eq!(parent_pid("garbage"), None);
    }
}
