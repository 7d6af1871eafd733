//! The server's side of one command: a private directory, the helper process, and one loop
//! that reads the command's output and the helper's reports until everything has ended or
//! the deadline passed. Nothing here blocks: every wait is a `poll` bounded by the deadline
//! (or, once the command is being stopped, by a short grace period), so a descendant that
//! holds the output pipes open can never hold the run. The cancel flag's pipes are in the
//! same `poll` ([`poll_until`]), so a cancel wakes it at once and a quiet command costs no
//! wake-ups before its deadline.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Access, Host, Layers, Reach, Report, git_config};
use crate::cancel::{CancelFlag, poll_for, poll_until};

/// How long a command being stopped may take to be gone before the server gives up on its
/// helper ([`give_up_on_helper`]).
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);
/// The longest report line kept from the helper.
const MAX_REPORT_BYTES: usize = 64 * 1024;

/// Limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// When the command and everything it started are stopped.
    pub deadline: Instant,
    /// Bytes kept of stdout and of stderr each; the command is stopped when either has more.
    pub output_bytes: usize,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signalled(i32),
    /// Stopped at the deadline.
    TimedOut,
    Cancelled,
    /// Stopped because it printed more than the output limit.
    OutputLimit,
}

/// A command that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub end: End,
    /// The layers it ran under (absent if it was stopped before the helper reported).
    pub layers: Option<Layers>,
}

/// A command that did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound(String),
    NotPermitted(String),
    /// The jail could not be built on this machine; nothing ran.
    Refused(String),
    /// The helper could not be started or failed without a report.
    Helper(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound(message)
            | Failure::NotPermitted(message)
            | Failure::Refused(message)
            | Failure::Helper(message) => f.write_str(message),
        }
    }
}

/// Runs `argv` in `cwd` (inside `workspace`) under the jail, and waits until it and every
/// process it started have ended, or `limits.deadline` passes, or `cancel` is set; then
/// nothing it started is left. The one way a program runs on behalf of the model.
///
/// `protected` are the workspace's protected paths as the caller found them just before
/// ([`super::protected_for_command`]); they are mounted read-only. The jail cannot stop the
/// command from creating others, so the caller looks again afterwards, whatever the outcome
/// (a helper that dies reports nothing, but its command may have written), and moves aside
/// what appeared.
///
/// Before git runs, its configuration and its submodules' are listed the same way
/// (`git_config::scan_argv`, `submodules_scan_argv`) and the programs they name are switched
/// off for the command: a scan that fails fails the run.
pub fn run(
    argv: &[String],
    cwd: &Path,
    workspace: &Path,
    protected: &[PathBuf],
    access: &Access,
    limits: &RunLimits,
    cancel: &CancelFlag,
) -> Result<Finished, Failure> {
    let scan = |scan_argv: &[String]| {
        run_one(
            scan_argv,
            cwd,
            workspace,
            protected,
            access,
            &[],
            limits,
            cancel,
        )
    };
    // Each program key once, though a submodule may name the superproject's drivers again.
    let mut git_programs = BTreeMap::new();
    let mut keep_out_of_submodules = false;
    if let Some(scan_argv) = git_config::scan_argv(argv) {
        let listed = scan(&scan_argv)?;
        match listed.end {
            // 1: no key matched.
            End::Exited(0 | 1) => git_programs.extend(found(&listed)?),
            // Stopped: the command would have been.
            End::TimedOut | End::Cancelled => return Ok(listed),
            End::Exited(_) | End::Signalled(_) | End::OutputLimit => {
                return Err(cannot_list(&listed));
            }
        }
    }
    if let Some(scan_argv) = git_config::submodules_scan_argv(argv) {
        let listed = scan(&scan_argv)?;
        match listed.end {
            End::Exited(0) => git_programs.extend(found(&listed)?),
            End::TimedOut | End::Cancelled => return Ok(listed),
            End::Exited(_) => {
                let walked = scan_gitlinks(argv, &scan)?;
                match walked {
                    GitlinkScan::Found(keys) => git_programs.extend(keys),
                    GitlinkScan::NoGitlink => keep_out_of_submodules = true,
                    GitlinkScan::Stopped(listed) => return Ok(listed),
                }
            }
            End::Signalled(_) | End::OutputLimit => return Err(cannot_list(&listed)),
        }
    }
    let git_keys: Vec<(String, String)> = git_programs
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .chain(
            git_config::IGNORE_SUBMODULES
                .iter()
                .filter(|_| keep_out_of_submodules)
                .map(|&(key, value)| (key.to_owned(), value.to_owned())),
        )
        .collect();
    let mut finished = run_one(
        argv, cwd, workspace, protected, access, &git_keys, limits, cancel,
    )?;
    if !git_programs.is_empty() && finished.end != End::Exited(0) {
        // What git says of a blanked program ("cannot run : No such file") does not say why.
        let keys: Vec<&str> = git_programs.keys().map(String::as_str).collect();
        if !finished.stderr.is_empty() && !finished.stderr.ends_with(b"\n") {
            finished.stderr.push(b'\n');
        }
        finished.stderr.extend_from_slice(
            format!(
                "[the repository's git configuration names programs, which do not run: {}]\n",
                keys.join(", ")
            )
            .as_bytes(),
        );
    }
    Ok(finished)
}

/// What [`scan_gitlinks`] found.
enum GitlinkScan {
    /// The keys to blank in every gitlink (none is fine).
    Found(Vec<(String, String)>),
    /// The index holds no gitlink (or there is no index): git has no submodule to run in.
    NoGitlink,
    /// Timed out or cancelled: the command would have been.
    Stopped(Finished),
}

/// The most gitlinks [`scan_gitlinks`] scans, and how deep it goes, before refusing.
const MAX_GITLINKS: usize = 64;
const MAX_GITLINK_DEPTH: usize = 8;

/// The keys of every gitlink of the index, each scanned where it is, and of the populated ones'
/// own gitlinks: for a repository `git submodule foreach` cannot list (`git_config`'s doc).
fn scan_gitlinks(
    argv: &[String],
    scan: &dyn Fn(&[String]) -> Result<Finished, Failure>,
) -> Result<GitlinkScan, Failure> {
    let too_many = || {
        Failure::Refused(format!(
            "the repository has more than {MAX_GITLINKS} submodules or nests them deeper than \
             {MAX_GITLINK_DEPTH}, so the programs their configuration names cannot be switched \
             off; not running git"
        ))
    };
    let mut keys = Vec::new();
    let mut n_gitlinks = 0;
    let mut repositories: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(within) = repositories.pop() {
        let Some(index_argv) = git_config::index_argv(argv, &within) else {
            return Ok(GitlinkScan::NoGitlink);
        };
        let index = scan(&index_argv)?;
        match index.end {
            End::Exited(0) => {}
            End::TimedOut | End::Cancelled => return Ok(GitlinkScan::Stopped(index)),
            // No index here: nothing git could run in.
            _ => continue,
        }
        for gitlink in git_config::gitlinks(&index.stdout) {
            n_gitlinks += 1;
            if n_gitlinks > MAX_GITLINKS || within.len() >= MAX_GITLINK_DEPTH {
                return Err(too_many());
            }
            let mut nested = within.clone();
            nested.push(gitlink);
            let one_argv = |make: fn(&[String], &[String]) -> Option<Vec<String>>| {
                make(argv, &nested).ok_or_else(too_many)
            };
            let listed = scan(&one_argv(git_config::scan_argv_within)?)?;
            match listed.end {
                End::Exited(0) => keys.extend(found(&listed)?),
                End::TimedOut | End::Cancelled => return Ok(GitlinkScan::Stopped(listed)),
                // 1: no key; otherwise not a repository git could run in.
                _ => {}
            }
            let prefix = scan(&one_argv(git_config::prefix_argv)?)?;
            if prefix.end == End::Exited(0) && prefix.stdout.trim_ascii().is_empty() {
                repositories.push(nested);
            }
        }
    }
    Ok(if n_gitlinks == 0 {
        GitlinkScan::NoGitlink
    } else {
        GitlinkScan::Found(keys)
    })
}

/// The keys to blank from a scan's output (`git_config::found`).
fn found(listed: &Finished) -> Result<Vec<(String, String)>, Failure> {
    git_config::found(&String::from_utf8_lossy(&listed.stdout)).map_err(Failure::Refused)
}

fn cannot_list(listed: &Finished) -> Failure {
    Failure::Refused(format!(
        "cannot list the programs git's configuration names, to switch them off: {}",
        String::from_utf8_lossy(&listed.stderr).trim()
    ))
}

/// [`run`] without the scan, with the keys `git_programs` switched off.
#[allow(clippy::too_many_arguments)]
fn run_one(
    argv: &[String],
    cwd: &Path,
    workspace: &Path,
    protected: &[PathBuf],
    access: &Access,
    git_programs: &[(String, String)],
    limits: &RunLimits,
    cancel: &CancelFlag,
) -> Result<Finished, Failure> {
    let (helper, control_fd) = start_helper(
        argv,
        cwd,
        workspace,
        protected.to_vec(),
        Reach::Command(access),
        git_programs,
        None,
    )?
    .watch_control()?;
    let Helper {
        mut child,
        control,
        stdout,
        stderr,
        private,
    } = helper;
    let drained = drain([stdout, stderr], control, control_fd, limits, cancel);
    let keeper = is_keeper(drained.reports.iter().find_map(|report| match report {
        Report::Started { layers } => Some(layers),
        _ => None,
    }));
    if drained.helper_overdue {
        give_up_on_helper(&mut child, keeper);
    } else {
        wait_helper(&mut child, keeper);
    }
    remove_private(private);
    outcome(drained, access.network)
}

/// A started helper that has its plan: the command's output pipes, the control socket and
/// the private directory (removed when dropped, so only after the helper is gone).
pub(super) struct Helper {
    pub(super) child: Child,
    pub(super) control: UnixStream,
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
    pub(super) private: tempfile::TempDir,
}

impl Helper {
    /// The helper and a second descriptor of its control socket, for `poll`; when there is
    /// none, the helper is stopped (and reaped) and its private directory removed.
    pub(super) fn watch_control(mut self) -> Result<(Helper, OwnedFd), Failure> {
        match self.control.try_clone() {
            Ok(control) => Ok((self, OwnedFd::from(control))),
            Err(err) => {
                stop_helper(&mut self.child);
                remove_private(self.private);
                Err(Failure::Helper(format!(
                    "cannot watch the control socket: {err}"
                )))
            }
        }
    }
}

/// Makes the private directory, starts `punie jail-exec` and hands it the plan for `argv` as
/// `reach` allows it, with the paths of `read_only` mounted read-only and the git keys
/// `git_programs` switched off. `stdin` becomes the command's standard input (else
/// `/dev/null`).
pub(super) fn start_helper(
    argv: &[String],
    cwd: &Path,
    workspace: &Path,
    read_only: Vec<PathBuf>,
    reach: Reach<'_>,
    git_programs: &[(String, String)],
    stdin: Option<&OwnedFd>,
) -> Result<Helper, Failure> {
    let private = tempfile::Builder::new()
        .prefix("punie-run-")
        .tempdir()
        .map_err(|err| {
            Failure::Helper(format!(
                "cannot create the command's private directory: {err}"
            ))
        })?;
    let private_dir = private
        .path()
        .canonicalize()
        .unwrap_or_else(|_| private.path().to_path_buf());
    let mut plan = reach.plan(argv, cwd, workspace, &Host::current(), &private_dir);
    plan.protect(read_only);
    plan.switch_off_git_programs(git_programs);
    plan.stdin_fd = stdin.map(AsRawFd::as_raw_fd);
    // Before the helper starts, so that a plan that cannot be handed over leaves no process.
    let mut line = serde_json::to_vec(&plan)
        .map_err(|err| Failure::Helper(format!("cannot write the command's plan: {err}")))?;
    line.push(b'\n');
    let exe = super::punie_executable()
        .map_err(|err| Failure::Helper(format!("cannot find the punie executable: {err}")))?;
    let (control, helper_end) = UnixStream::pair()
        .map_err(|err| Failure::Helper(format!("cannot create the control socket: {err}")))?;
    let mut command = Command::new(&exe);
    command
        .arg("jail-exec")
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(OwnedFd::from(helper_end)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Out of the terminal's process group: a Ctrl-C meant for `punie ask` is the run's
        // cancel, not a signal to the command.
        .process_group(0);
    if let Some(fd) = plan.stdin_fd {
        // SAFETY: fcntl on a descriptor that stays open until the spawn returns; it is
        // async-signal-safe. Only this child inherits it: everywhere else it is close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|err| {
        Failure::Helper(format!(
            "cannot start the command helper {} jail-exec: {err}",
            exe.display()
        ))
    })?;
    let mut control = control;
    if let Err(err) = control.write_all(&line) {
        stop_helper(&mut child);
        return Err(Failure::Helper(format!(
            "cannot hand the command to its helper: {err}"
        )));
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        stop_helper(&mut child);
        return Err(Failure::Helper("the helper has no output pipes".to_owned()));
    };
    Ok(Helper {
        child,
        control,
        stdout: OwnedFd::from(stdout),
        stderr: OwnedFd::from(stderr),
        private,
    })
}

/// Removes the private directory, also when the command left directories it cannot be
/// removed from (`chmod 0`): everything in it is the command's, and every process is gone.
pub(super) fn remove_private(private: tempfile::TempDir) {
    let path = private.keep();
    if std::fs::remove_dir_all(&path).is_ok() {
        return;
    }
    fn open_up(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                open_up(&entry.path());
            }
        }
    }
    open_up(&path);
    if let Err(err) = std::fs::remove_dir_all(&path) {
        tracing::warn!(
            "cannot remove a command's private directory {}: {err}",
            path.display()
        );
    }
}

/// Everything read from one command.
struct Drained {
    output: [Vec<u8>; 2],
    reports: Vec<Report>,
    stopped: Option<End>,
    /// The command was being stopped and its helper did not end within the grace period.
    helper_overdue: bool,
}

/// Reads stdout, stderr and the control socket until all three are closed, stopping the
/// command at the deadline, on cancel, or when it prints too much.
fn drain(
    pipes: [OwnedFd; 2],
    control: UnixStream,
    control_fd: OwnedFd,
    limits: &RunLimits,
    cancel: &CancelFlag,
) -> Drained {
    let mut res = Drained {
        output: [Vec::new(), Vec::new()],
        reports: Vec::new(),
        stopped: None,
        helper_overdue: false,
    };
    let [stdout, stderr] = pipes;
    // Index 0 and 1: stdout and stderr; 2: the control socket.
    let mut open: [Option<OwnedFd>; 3] = [Some(stdout), Some(stderr), Some(control_fd)];
    for fd in open.iter().flatten() {
        set_nonblocking(fd.as_raw_fd());
    }
    let mut control_line = Vec::new();
    let mut grace_until: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if res.stopped.is_none() {
            if cancel.is_cancelled() {
                res.stopped = Some(End::Cancelled);
            } else if now >= limits.deadline {
                res.stopped = Some(End::TimedOut);
            }
        }
        if res.stopped.is_some() && grace_until.is_none() {
            // The helper reads end-of-file and takes everything down.
            let _ = control.shutdown(std::net::Shutdown::Write);
            grace_until = Some(now + STOP_GRACE);
        }
        if open.iter().all(Option::is_none) {
            break;
        }
        // While it runs, the wait ends at the deadline or a cancel; once it is being stopped,
        // only at the end of the grace period.
        let (until, woken_by) = match grace_until {
            Some(until) if now >= until => {
                res.helper_overdue = true;
                break;
            }
            Some(until) => (until, None),
            None => (limits.deadline, Some(cancel)),
        };
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .flatten()
            .map(|fd| poll_for(fd.as_raw_fd(), libc::POLLIN))
            .collect();
        poll_until(&mut fds, until, woken_by);
        for pollfd in fds.iter().filter(|pollfd| pollfd.revents != 0) {
            let Some(idx) = open
                .iter()
                .position(|fd| fd.as_ref().is_some_and(|fd| fd.as_raw_fd() == pollfd.fd))
            else {
                continue;
            };
            let closed = loop {
                match read_some(pollfd.fd, &mut buf) {
                    ReadResult::Data(n_read) => {
                        let data = &buf[..n_read];
                        if idx == 2 {
                            take_reports(&mut control_line, data, &mut res.reports);
                            continue;
                        }
                        let kept = &mut res.output[idx];
                        let room = limits.output_bytes.saturating_sub(kept.len());
                        kept.extend_from_slice(&data[..n_read.min(room)]);
                        if n_read > room && res.stopped.is_none() {
                            res.stopped = Some(End::OutputLimit);
                        }
                    }
                    ReadResult::Pending => break false,
                    ReadResult::Closed => break true,
                }
            };
            if closed {
                open[idx] = None;
            }
        }
    }
    res
}

pub(super) enum ReadResult {
    Data(usize),
    Pending,
    Closed,
}

pub(super) fn read_some(fd: RawFd, buf: &mut [u8]) -> ReadResult {
    // SAFETY: `buf` is valid for `buf.len()` bytes and `fd` is open while we hold it.
    let n_read = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    match n_read {
        0 => ReadResult::Closed,
        n if n > 0 => ReadResult::Data(n as usize),
        _ => match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::WouldBlock => ReadResult::Pending,
            std::io::ErrorKind::Interrupted => ReadResult::Pending,
            _ => ReadResult::Closed,
        },
    }
}

pub(super) fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Splits the helper's bytes into JSON lines; a line that is not a report is ignored (the
/// helper is ours, so that would be a bug, not an attack: the command cannot write here).
pub(super) fn take_reports(line: &mut Vec<u8>, data: &[u8], reports: &mut Vec<Report>) {
    for &byte in data {
        if byte == b'\n' {
            if let Ok(report) = serde_json::from_slice::<Report>(line) {
                reports.push(report);
            }
            line.clear();
        } else if line.len() < MAX_REPORT_BYTES {
            line.push(byte);
        }
    }
}

/// Waits up to [`STOP_GRACE`] for the helper to exit, then gives up on it
/// ([`give_up_on_helper`]).
pub(super) fn wait_helper(helper: &mut Child, keeper: bool) {
    let until = Instant::now() + STOP_GRACE;
    #[cfg(target_os = "linux")]
    let exited = super::linux::pidfd_open(helper.id() as libc::pid_t);
    #[cfg(not(target_os = "linux"))]
    let exited: Option<OwnedFd> = None;
    while Instant::now() < until {
        if let Ok(Some(_)) = helper.try_wait() {
            return;
        }
        match &exited {
            Some(pidfd) => poll_until(
                &mut [poll_for(pidfd.as_raw_fd(), libc::POLLIN)],
                until,
                None,
            ),
            // Nothing to wait on (macOS, Linux before 5.3): look again every millisecond.
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    give_up_on_helper(helper, keeper);
}

/// Whether the helper that reported `layers` is a keeper (`linux/subreaper.rs`): Linux without
/// a PID namespace. Not known before it reported.
pub(super) fn is_keeper(layers: Option<&Layers>) -> bool {
    layers.is_some_and(|layers| layers.platform == "linux" && !layers.pid_namespace)
}

/// Stops waiting for a helper that did not end in time. With a PID namespace (or before the
/// helper said how it contains the command) it is killed, and its init dies with it: the
/// kernel kills the rest. A keeper is not: its death would set the command's descendants
/// free, and it never blocks (it kills what is left until nothing is, and a helper that is
/// late); it is left to finish, and a thread of its own reaps it.
pub(super) fn give_up_on_helper(helper: &mut Child, keeper: bool) {
    if !keeper {
        stop_helper(helper);
        return;
    }
    tracing::warn!(
        "a command's helper did not end in time; it is left to stop what the command started"
    );
    let pid = helper.id() as libc::pid_t;
    let reaper = std::thread::Builder::new()
        .name("jail-keeper-reaper".to_owned())
        .spawn(move || {
            // SAFETY: waits for our own child, which nothing else waits for from now on.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        });
    if reaper.is_err() {
        stop_helper(helper);
    }
}

/// Kills the helper. With a PID namespace its init dies with it (parent-death signal) and
/// the kernel kills the rest; without one, only before its command runs
/// ([`give_up_on_helper`]).
pub(super) fn stop_helper(helper: &mut Child) {
    let _ = helper.kill();
    let _ = helper.wait();
}

fn outcome(drained: Drained, network_allowed: bool) -> Result<Finished, Failure> {
    let Drained {
        output: [stdout, stderr],
        reports,
        stopped,
        helper_overdue: _,
    } = drained;
    let mut layers = None;
    let mut exited = None;
    for report in reports {
        match report {
            Report::Started { layers: started } => {
                super::note_layers(&started, network_allowed);
                layers = Some(started);
            }
            Report::Exited { code, signal } => exited = Some((code, signal)),
            Report::NotFound { message } => return Err(Failure::NotFound(message)),
            Report::NotPermitted { message } => return Err(Failure::NotPermitted(message)),
            Report::Refused { message } => return Err(Failure::Refused(message)),
            Report::Failed { message } => return Err(Failure::Helper(message)),
        }
    }
    let end = match (stopped, exited) {
        (Some(End::OutputLimit), _) => End::OutputLimit,
        (_, Some((Some(code), _))) => End::Exited(code),
        (_, Some((None, Some(signal)))) => End::Signalled(signal),
        (Some(stopped), _) => stopped,
        _ => {
            let tail =
                String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2000)..]).into_owned();
            return Err(Failure::Helper(format!(
                "the command's helper ended without a report{}",
                if tail.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.trim())
                }
            )));
        }
    };
    Ok(Finished {
        stdout,
        stderr,
        end,
        layers,
    })
}
