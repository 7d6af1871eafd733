//! The parent's side of one worker process.
//!
//! * Started from the sandbox's spawner thread. Linux delivers `PR_SET_PDEATHSIG` when the
//!   *thread* that forked a child ends, not its process: a worker forked by a run's thread
//!   died with that run, and the next run paid start-up again. One thread that lives as long
//!   as the process forks every worker, so a pre-warmed worker outlives the run that made
//!   it and still dies with the server.
//! * Its protocol runs on two pipes that become the worker's fds 3 and 4 (see `protocol`);
//!   its stdin and stdout are `/dev/null`; its stderr is read into a 16 KB tail that is only
//!   ever used to explain a crash (`classify_death`).
//! * A reader thread hands over complete lines no longer than the parent allows, parsed; a
//!   line that is longer or does not parse ends the reading (the parent then kills the
//!   worker). A writer thread sends the parent's lines, so that a worker that stops reading
//!   can never block the parent. No thread is ever joined: each ends when its pipe does.
//! * The worker leads its own process group, and the whole group is killed, so nothing it
//!   might start (it cannot: seccomp and `RLIMIT_NPROC`) outlives it.

use crate::sync;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};

use super::protocol::{FromWorker, ToWorker};
use super::{PyError, SandboxLimits};

/// Bytes of the worker's stderr kept for explaining its death.
const STDERR_TAIL_BYTES: usize = 16 * 1024;
/// How long a dead worker's stderr may take to reach its end.
const STDERR_DRAIN: Duration = Duration::from_secs(1);

/// What the reader thread hands to the parent.
pub(super) enum Incoming {
    Message(FromWorker),
    /// A line that is not a message: its first characters, for the error.
    Malformed(String),
    /// A line longer than the parent allows.
    Oversized {
        limit: usize,
    },
}

/// One worker process and the threads that talk to it.
pub(super) struct WorkerProcess {
    child: Child,
    to_worker: Option<Sender<String>>,
    pub(super) incoming: Receiver<Incoming>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// Closed when the stderr reader has read to the end.
    stderr_done: Receiver<()>,
    /// It has said `ready`.
    pub(super) ready: bool,
    /// Snippets it has run.
    pub(super) runs: u32,
}

impl WorkerProcess {
    /// Starts `exe sandbox-worker` whose lines may be up to `max_line` bytes long.
    pub(super) fn spawn(exe: &Path, memory_mb: u64, max_line: usize) -> anyhow::Result<Self> {
        let (worker_reads, parent_writes) = std::io::pipe().context("creating a pipe")?;
        let (parent_reads, worker_writes) = std::io::pipe().context("creating a pipe")?;
        let mut command = Command::new(exe);
        command
            .arg("sandbox-worker")
            .arg("--memory-mb")
            .arg(memory_mb.to_string())
            // The snippet must not see the server's environment (tokens, keys, paths).
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        child_setup(&mut command, &worker_reads, &worker_writes);
        let mut child = spawn_from_long_lived_thread(command)
            .with_context(|| format!("running {} sandbox-worker", exe.display()))?;
        // Only the worker holds its ends now: its death is our end-of-file.
        drop((worker_reads, worker_writes));
        let stderr = child.stderr.take().context("worker stderr")?;

        let (message_tx, incoming) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("sandbox-reader".to_owned())
            .spawn(move || read_messages(parent_reads, max_line, &message_tx))?;
        let (line_tx, line_rx) = crossbeam_channel::unbounded::<String>();
        std::thread::Builder::new()
            .name("sandbox-writer".to_owned())
            .spawn(move || {
                let mut pipe = parent_writes;
                for line in line_rx {
                    if pipe.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            })?;
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr_tail);
        let (done_tx, stderr_done) = crossbeam_channel::bounded::<()>(0);
        std::thread::Builder::new()
            .name("sandbox-stderr".to_owned())
            .spawn(move || {
                keep_tail(stderr, &tail);
                drop(done_tx);
            })?;
        Ok(WorkerProcess {
            child,
            to_worker: Some(line_tx),
            incoming,
            stderr_tail,
            stderr_done,
            ready: false,
            runs: 0,
        })
    }

    pub(super) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Queues `msg` for the worker; never blocks.
    pub(super) fn send(&self, msg: &ToWorker) -> Result<(), PyError> {
        let mut line = msg.to_line();
        line.push('\n');
        self.to_worker
            .as_ref()
            .and_then(|sender| sender.send(line).ok())
            .ok_or_else(|| PyError::new("SystemError", "the sandbox worker is gone"))
    }

    /// Why the worker died, as the exception the snippet would have seen.
    pub(super) fn death_error(&mut self, limits: &SandboxLimits) -> PyError {
        let status = self.child.wait().ok();
        // The whole of stderr, unless something still holds it open.
        let _ = self.stderr_done.recv_timeout(STDERR_DRAIN);
        let tail = sync::lock(&self.stderr_tail);
        classify_death(&String::from_utf8_lossy(&tail), status, limits)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: a signal to the worker's own process group (it leads it, `process_group(0)`).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The writer ends with its queue; the readers end with the pipes.
        drop(self.to_worker.take());
    }
}

/// In the forked child, before `exec`: the protocol pipes onto fds 3 and 4, and death with
/// the server.
fn child_setup(
    command: &mut Command,
    worker_reads: &std::io::PipeReader,
    worker_writes: &std::io::PipeWriter,
) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;

        use super::protocol::{FROM_PARENT_FD, TO_PARENT_FD};
        let reads = worker_reads.as_raw_fd();
        let writes = worker_writes.as_raw_fd();
        let server = std::process::id();
        // SAFETY: between fork and exec only async-signal-safe calls are made (fcntl, dup2,
        // prctl, getppid), on descriptors this closure owns copies of.
        unsafe {
            command.pre_exec(move || {
                // Move both ends above the targets first: a pipe end may already sit on 3
                // or 4, and dup2 onto itself would keep its close-on-exec flag.
                let high_reads = libc::fcntl(reads, libc::F_DUPFD_CLOEXEC, 10);
                let high_writes = libc::fcntl(writes, libc::F_DUPFD_CLOEXEC, 10);
                if high_reads < 0
                    || high_writes < 0
                    || libc::dup2(high_reads, FROM_PARENT_FD) < 0
                    || libc::dup2(high_writes, TO_PARENT_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                #[cfg(target_os = "linux")]
                {
                    libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                    // The server may have died before the line above took effect.
                    if libc::getppid() as u32 != server {
                        return Err(std::io::Error::other("the server exited"));
                    }
                }
                let _ = server;
                Ok(())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (command, worker_reads, worker_writes);
}

/// Runs `command.spawn()` on the spawner thread, which lives as long as the process (see the
/// module doc); the reply comes back over a channel.
fn spawn_from_long_lived_thread(command: Command) -> std::io::Result<Child> {
    type Job = (Command, Sender<std::io::Result<Child>>);
    static SPAWNER: Mutex<Option<Sender<Job>>> = Mutex::new(None);
    let jobs = {
        let mut spawner = sync::lock(&SPAWNER);
        match spawner.as_ref() {
            Some(jobs) => jobs.clone(),
            None => {
                let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
                std::thread::Builder::new()
                    .name("sandbox-spawner".to_owned())
                    .spawn(move || {
                        for (mut command, reply) in queue {
                            let _ = reply.send(command.spawn());
                        }
                    })?;
                spawner.insert(jobs).clone()
            }
        }
    };
    let (reply, answer) = crossbeam_channel::bounded(1);
    let gone = || std::io::Error::other("the sandbox's spawner thread is gone");
    jobs.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// The reader thread: complete lines of at most `max_line` bytes, parsed, until end-of-file
/// or the first line that is too long or not a message.
fn read_messages(pipe: std::io::PipeReader, max_line: usize, to_parent: &Sender<Incoming>) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        let incoming = match read_capped_line(&mut reader, max_line, &mut line) {
            Ok(CappedLine::Line) => match FromWorker::parse(&line) {
                Some(msg) => Incoming::Message(msg),
                None => Incoming::Malformed(
                    String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned(),
                ),
            },
            Ok(CappedLine::TooLong) => Incoming::Oversized { limit: max_line },
            Ok(CappedLine::End) | Err(_) => return,
        };
        let stop = !matches!(incoming, Incoming::Message(_));
        if to_parent.send(incoming).is_err() || stop {
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum CappedLine {
    /// `line` holds a whole line, without its newline.
    Line,
    /// More than the cap before a newline; what was read is dropped.
    TooLong,
    /// End of file (a line cut by it is dropped: the writer died mid-line).
    End,
}

/// Reads one line into `line`, holding at most `max` bytes of it.
fn read_capped_line(
    reader: &mut impl BufRead,
    max: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<CappedLine> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(CappedLine::End);
        }
        let (chunk, found) = match buf.iter().position(|&byte| byte == b'\n') {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if line.len() + chunk > max {
            return Ok(CappedLine::TooLong);
        }
        line.extend_from_slice(&buf[..chunk]);
        reader.consume(chunk + usize::from(found));
        if found {
            return Ok(CappedLine::Line);
        }
    }
}

fn keep_tail(mut stderr: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n_read) => {
                let mut tail = sync::lock(tail);
                tail.extend_from_slice(&buf[..n_read]);
                if tail.len() > STDERR_TAIL_BYTES {
                    let cut = tail.len() - STDERR_TAIL_BYTES;
                    tail.drain(..cut);
                }
            }
        }
    }
}

/// Maps a dead worker's stderr and exit status to a Python exception.
fn classify_death(
    stderr: &str,
    status: Option<std::process::ExitStatus>,
    limits: &SandboxLimits,
) -> PyError {
    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt;
        status.and_then(|status| status.signal())
    };
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    if stderr.contains("has overflowed its stack") || stderr.contains("stack overflow") {
        return PyError::new(
            "RecursionError",
            "the snippet nested or recursed too deeply and overflowed the interpreter's stack",
        );
    }
    if stderr.contains("memory allocation of")
        || stderr.contains("capacity overflow")
        || stderr.contains("out of memory")
    {
        return PyError::new(
            "MemoryError",
            format!(
                "the snippet needed more than its {} MB memory limit",
                limits.memory_mb
            ),
        );
    }
    #[cfg(unix)]
    if signal == Some(libc::SIGXCPU) {
        return PyError::new("TimeoutError", "the snippet used up its CPU time limit");
    }
    #[cfg(unix)]
    if signal == Some(libc::SIGSEGV) || signal == Some(libc::SIGBUS) {
        return PyError::new(
            "RecursionError",
            "the snippet overflowed the interpreter's stack",
        );
    }
    if stderr.contains("panicked") {
        return PyError::new(
            "SystemError",
            "the sandbox interpreter hit an internal error on this snippet (the worker was restarted)",
        );
    }
    #[cfg(unix)]
    if signal == Some(libc::SIGABRT) || signal == Some(libc::SIGKILL) {
        return PyError::new(
            "MemoryError",
            format!(
                "the snippet was stopped: it likely exceeded its {} MB memory limit",
                limits.memory_mb
            ),
        );
    }
    let last_line: String = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    PyError::new(
        "SystemError",
        format!(
            "the sandbox worker exited unexpectedly ({}){}",
            status
                .map(|status| status.to_string())
                .unwrap_or_else(|| "unknown status".to_owned()),
            if last_line.is_empty() {
                String::new()
            } else {
                format!(": {last_line}")
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_whole_or_refused() {
        let mut reader = BufReader::with_capacity(4, &b"ab\n0123456789\nxy\nlast"[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_capped_line(&mut reader, 8, &mut line).unwrap(),
            CappedLine::Line
        );
        assert_eq!(line, b"ab");
        line.clear();
        assert_eq!(
            read_capped_line(&mut reader, 8, &mut line).unwrap(),
            CappedLine::TooLong
        );
        assert!(line.len() <= 8);
        let mut reader = BufReader::new(&b"xy\nlast"[..]);
        line.clear();
        assert_eq!(
            read_capped_line(&mut reader, 8, &mut line).unwrap(),
            CappedLine::Line
        );
        line.clear();
        assert_eq!(
            read_capped_line(&mut reader, 8, &mut line).unwrap(),
            CappedLine::End
        );
    }
}
