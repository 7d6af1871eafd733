//! A long-lived program in the jail that the server talks to over pipes: a language server
//! (`ty server`) kept per workspace, which answers in about a millisecond once it has read
//! the workspace, where one started per call pays its start-up and its indexing every time
//! (measured in docs/typed-tools.md).
//!
//! It runs under the jail of [`super::run`]'s commands, with a pipe from the server on its
//! stdin instead of `/dev/null`, and the reach of a reader ([`Reach::Reader`]): it answers
//! read-class tools, so it reads only the workspace without its secrets and what it needs to
//! run, never the network; it writes only in the workspace and its private directory, and
//! sees no other processes. Every read is bounded (the stdout the caller has not taken yet,
//! the tail of stderr) and every wait ends at the caller's deadline or cancel flag. Dropping the [`Session`] stops the program and
//! everything it started: the helper kills the namespace's init when its control socket
//! closes, exactly as for a command at its deadline, and that also happens when the server
//! itself dies.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::time::Instant;

use super::run::{
    Helper, ReadResult, is_keeper, read_some, remove_private, set_nonblocking, start_helper,
    take_reports, wait_helper,
};
use super::{Failure, Layers, Reach, Report, WorkspaceSecrets};
use crate::cancel::{CancelFlag, poll_for, poll_until};

/// The bytes of stderr kept (the last ones), for the error a caller shows.
const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// Why a session can no longer be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The program ended (how, in words), or closed its output.
    Exited(String),
    /// A wait reached its deadline; the program is stopped.
    TimedOut,
    /// A wait saw the cancel flag; the program is stopped.
    Cancelled,
    /// The program wrote more than the limit without the caller taking it.
    OutputLimit,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Exited(how) => write!(f, "it ended ({how})"),
            SessionEnd::TimedOut => f.write_str("it did not answer in time"),
            SessionEnd::Cancelled => f.write_str("the run was cancelled"),
            SessionEnd::OutputLimit => f.write_str("it wrote more than the limit"),
        }
    }
}

/// One jailed program with a pipe to its stdin and from its stdout.
pub struct Session {
    child: Child,
    control: UnixStream,
    /// stdout, stderr and the control socket, each `None` once closed.
    open: [Option<OwnedFd>; 3],
    stdin: Option<OwnedFd>,
    /// Bytes sent but not yet taken by the program.
    pending: Vec<u8>,
    output: Vec<u8>,
    output_limit: usize,
    stderr_tail: Vec<u8>,
    control_line: Vec<u8>,
    layers: Option<Layers>,
    /// A report that the program could not start.
    failure: Option<Failure>,
    ended: Option<SessionEnd>,
    /// Removed when the session is dropped, after the helper is gone.
    private: Option<tempfile::TempDir>,
}

impl Session {
    /// Starts `argv` in `cwd` (inside `workspace`, whose secrets are `secrets`) in the jail
    /// and waits, until `deadline`, for the helper to report that it runs. At most
    /// `output_limit` bytes of stdout are held for the caller at a time.
    pub fn start(
        argv: &[String],
        cwd: &Path,
        workspace: &Path,
        secrets: &WorkspaceSecrets,
        output_limit: usize,
        deadline: Instant,
        cancel: &CancelFlag,
    ) -> Result<Session, Failure> {
        let (read_end, write_end) = pipe()
            .map_err(|err| Failure::Helper(format!("cannot create the stdin pipe: {err}")))?;
        let (helper, control_fd) = start_helper(
            argv,
            cwd,
            workspace,
            super::protected_for_command(workspace)?.paths,
            Reach::Reader(secrets),
            &[],
            Some(&read_end),
        )?
        .watch_control()?;
        drop(read_end);
        let Helper {
            child,
            control,
            stdout,
            stderr,
            private,
        } = helper;
        for fd in [&stdout, &stderr, &control_fd, &write_end] {
            set_nonblocking(fd.as_raw_fd());
        }
        let mut session = Session {
            child,
            control,
            open: [Some(stdout), Some(stderr), Some(control_fd)],
            stdin: Some(write_end),
            pending: Vec::new(),
            output: Vec::new(),
            output_limit,
            stderr_tail: Vec::new(),
            control_line: Vec::new(),
            layers: None,
            failure: None,
            ended: None,
            private: Some(private),
        };
        while session.layers.is_none() {
            if let Err(end) = session.round(deadline, cancel) {
                return Err(session.failure.take().unwrap_or_else(|| {
                    Failure::Helper(format!(
                        "{} did not start: {end}{}",
                        argv[0],
                        session.stderr_note()
                    ))
                }));
            }
        }
        Ok(session)
    }

    /// Queues `bytes` for the program's stdin; they are written while the caller waits.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.stdin.is_some() {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// Waits until the program has written more to stdout ([`Session::output`]), writing what
    /// was sent as it reads it. An error ends the session: the caller drops it.
    pub fn wait_output(
        &mut self,
        deadline: Instant,
        cancel: &CancelFlag,
    ) -> Result<(), SessionEnd> {
        while !self.round(deadline, cancel)? {}
        Ok(())
    }

    /// What the program wrote to stdout and the caller has not taken (drained by the caller).
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// The layers the program runs under.
    pub fn layers(&self) -> Option<&Layers> {
        self.layers.as_ref()
    }

    /// Whether the program still runs and the session can be used.
    pub fn is_running(&self) -> bool {
        self.ended.is_none()
    }

    /// The last of what the program wrote to stderr, as `: text` (empty when nothing).
    pub fn stderr_note(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr_tail);
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    }

    fn end(&mut self, end: SessionEnd) -> SessionEnd {
        self.ended.get_or_insert(end).clone()
    }

    /// One `poll` (until something is ready, the deadline or a cancel): writes what it can,
    /// reads what there is. `Ok(true)` when stdout grew.
    fn round(&mut self, deadline: Instant, cancel: &CancelFlag) -> Result<bool, SessionEnd> {
        if let Some(end) = &self.ended {
            return Err(end.clone());
        }
        if cancel.is_cancelled() {
            return Err(self.end(SessionEnd::Cancelled));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(self.end(SessionEnd::TimedOut));
        }
        // Index 0..3: stdout, stderr, control; 3: stdin, when there is something to write.
        let mut fds: Vec<(usize, libc::pollfd)> = self
            .open
            .iter()
            .enumerate()
            .filter_map(|(idx, fd)| Some((idx, fd.as_ref()?.as_raw_fd())))
            .map(|(idx, fd)| (idx, poll_for(fd, libc::POLLIN)))
            .collect();
        if let Some(stdin) = self.stdin.as_ref().filter(|_| !self.pending.is_empty()) {
            fds.push((3, poll_for(stdin.as_raw_fd(), libc::POLLOUT)));
        }
        let mut raw: Vec<libc::pollfd> = fds.iter().map(|(_, fd)| *fd).collect();
        poll_until(&mut raw, deadline, Some(cancel));
        let mut grew = false;
        for ((idx, _), polled) in fds.iter().zip(&raw) {
            if polled.revents == 0 {
                continue;
            }
            match idx {
                3 => self.write_pending(),
                0 => grew |= self.read_output()?,
                _ => self.read_side(*idx),
            }
        }
        if self.open[0].is_none() && self.ended.is_none() {
            self.end(SessionEnd::Exited("it closed its output".to_owned()));
        }
        Ok(grew)
    }

    fn write_pending(&mut self) {
        let Some(stdin) = &self.stdin else {
            return;
        };
        // SAFETY: writes from a valid buffer to a descriptor we own.
        let written = unsafe {
            libc::write(
                stdin.as_raw_fd(),
                self.pending.as_ptr().cast(),
                self.pending.len(),
            )
        };
        match usize::try_from(written) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(_) => {
                let err = std::io::Error::last_os_error();
                if !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) {
                    // The program closed its stdin: nothing more can reach it.
                    self.stdin = None;
                    self.pending.clear();
                }
            }
        }
    }

    /// Reads what stdout has; `Ok(true)` when something came.
    fn read_output(&mut self) -> Result<bool, SessionEnd> {
        let Some(fd) = self.open[0].as_ref().map(AsRawFd::as_raw_fd) else {
            return Ok(false);
        };
        let mut buf = [0u8; 64 * 1024];
        let mut grew = false;
        loop {
            match read_some(fd, &mut buf) {
                ReadResult::Data(n_read) => {
                    self.output.extend_from_slice(&buf[..n_read]);
                    grew = true;
                    if self.output.len() > self.output_limit {
                        return Err(self.end(SessionEnd::OutputLimit));
                    }
                }
                ReadResult::Pending => return Ok(grew),
                ReadResult::Closed => {
                    self.open[0] = None;
                    return Ok(grew);
                }
            }
        }
    }

    /// Reads stderr (its tail is kept) or the helper's reports.
    fn read_side(&mut self, idx: usize) {
        let Some(fd) = self.open[idx].as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match read_some(fd, &mut buf) {
                ReadResult::Data(n_read) if idx == 1 => {
                    self.stderr_tail.extend_from_slice(&buf[..n_read]);
                    let excess = self.stderr_tail.len().saturating_sub(STDERR_TAIL_BYTES);
                    self.stderr_tail.drain(..excess);
                }
                ReadResult::Data(n_read) => {
                    let mut reports = Vec::new();
                    take_reports(&mut self.control_line, &buf[..n_read], &mut reports);
                    for report in reports {
                        self.take_report(report);
                    }
                }
                ReadResult::Pending => return,
                ReadResult::Closed => {
                    self.open[idx] = None;
                    if idx == 2 {
                        self.end(SessionEnd::Exited("its helper ended".to_owned()));
                    }
                    return;
                }
            }
        }
    }

    fn take_report(&mut self, report: Report) {
        let failure = match report {
            Report::Started { layers } => {
                // A reader never has the network.
                super::note_layers(&layers, false);
                self.layers = Some(layers);
                return;
            }
            Report::Exited { code, signal } => {
                let how = match (code, signal) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    (None, None) => "no status".to_owned(),
                };
                self.end(SessionEnd::Exited(how));
                return;
            }
            Report::NotFound { message } => Failure::NotFound(message),
            Report::NotPermitted { message } => Failure::NotPermitted(message),
            Report::Refused { message } => Failure::Refused(message),
            Report::Failed { message } => Failure::Helper(message),
        };
        self.end(SessionEnd::Exited(failure.to_string()));
        self.failure = Some(failure);
    }
}

impl Drop for Session {
    /// Closes the program's stdin and the control socket: the helper takes everything down.
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.control.shutdown(std::net::Shutdown::Write);
        wait_helper(&mut self.child, is_keeper(self.layers.as_ref()));
        if let Some(private) = self.private.take() {
            remove_private(private);
        }
    }
}

/// A pipe, both ends close-on-exec: `(read, write)`.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = std::io::pipe()?;
    Ok((OwnedFd::from(read), OwnedFd::from(write)))
}
