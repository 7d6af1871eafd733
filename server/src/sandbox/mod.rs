//! The Code Mode sandbox: runs the model's Python snippets in RustPython inside a separate,
//! limited worker process, and carries their tool calls out on the host side.
//!
//! # API (what the agent loop and the CLI use)
//!
//! ```text
//! let mut sandbox = Sandbox::new(SandboxLimits::default())?;      // pre-warms a worker
//! let host = DiskToolHost { root: workspace.into(), allow_commands: false };
//! let res: SandboxResult = sandbox.execute(code, &host, &cancel, &mut |event| match event {
//!     ToolEvent::Started { tool, label } => { /* progress: "read_file README.md" */ }
//!     ToolEvent::Finished { tool, ok, error, permission } => { /* "read_file failed: FileNotFoundError: …" */ }
//! });
//! ```
//!
//! * [`SandboxLimits`]: wall-clock timeout, memory, output and tool-call caps
//!   (defaults 10 000 ms, 256 MB, 256 KB, 64).
//! * [`Sandbox`]: owns one pre-warmed worker (`punie sandbox-worker`, the current executable
//!   re-executed; `PUNIE_SANDBOX_WORKER` names another binary, for tests of crates that
//!   link Punie). [`Sandbox::execute`] never fails as a Rust call: every outcome, including
//!   a crashed or killed worker, is a [`SandboxResult`].
//! * [`ToolHost`]: the host side of tool calls. [`DiskToolHost`] serves the CLI (disk,
//!   `--allow-commands`); the LSP layer implements it over editor buffers,
//!   `workspace/applyEdit` and permission dialogs.
//! * [`overhead_bench`]: p50/p99 of `execute` overhead, for `punie bench`.
//!
//! # Design
//!
//! An in-process interpreter cannot be stopped safely mid-allocation, and RustPython 0.5
//! aborts the process on failed allocations and overflows the native stack on deep nesting.
//! So the interpreter lives in a worker process that the server can kill at any moment:
//!
//! * The worker holds no file access of its own. Every tool call goes to the parent as one
//!   JSON line on the worker's stdout; the parent checks policy and confinement, runs the
//!   tool and answers on the worker's stdin (see `protocol`).
//! * OS limits: `RLIMIT_AS` (memory), `RLIMIT_CPU` (a backstop should the parent die),
//!   `RLIMIT_NOFILE`/`RLIMIT_NPROC`/`RLIMIT_FSIZE`, `PR_SET_PDEATHSIG`, an empty environment,
//!   working directory `/`, and on Linux a Landlock ruleset that forbids every file-system
//!   access and a seccomp filter that forbids `execve`, sockets and `ptrace` (each applied
//!   where the kernel offers it; see `worker::lockdown`).
//! * The parent enforces the wall-clock timeout by killing the worker, so `while True: pass`,
//!   loops that swallow every exception, native `time.sleep` and the formatting of the result
//!   are all covered. A killed or crashed worker is replaced at once by a fresh pre-warmed one.
//! * Before compiling, the source is checked for size and bracket depth (the parser and the
//!   compiler recurse), then its AST is checked against an allowlist (`validate`, with the
//!   lists in `allowlist`): the syntax a snippet needs and no more (no classes, generators,
//!   async code, `with`, `match`, decorators), only provided or self-bound names and none
//!   starting with `__`, only listed attributes and only for reading, `import json` only.
//!   So no snippet reaches `type`, a class, a frame, a code object, a module or an attribute
//!   by a computed name, and nothing it does outlives it: each snippet gets fresh globals
//!   and a fresh `json`; builtins and tool functions cannot be changed. The interpreter's
//!   `builtins` module is emptied and refilled from the same allowlist.
//! * Errors are formatted from the exception's class name and `str()`, never through
//!   RustPython's traceback printer (which opens the code object's file name).
//!
//! Tool time does not count against the snippet's timeout; `run_command` has its own
//! ([`CommandLimits`]) and dies with the snippet when the run is cancelled.

pub mod allowlist;
mod dispatch;
mod protocol;
mod validate;
pub mod worker;

pub mod coverage;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::cancel::CancelFlag;
use crate::policy::{self, Answer, Decision, PolicySettings, SessionApprovals};
pub use crate::policy::{Ruling, ToolRequest};
use crate::tools::PermissionClass;
pub use crate::tools::Tool;
pub use crate::workspace::{CommandLimits, ToolError};

use protocol::{FromWorker, ToWorker, WireError};

/// Limits of one snippet. The server's settings `sandbox.timeoutMs`, `memoryMb` and
/// `outputKb` map onto the first three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock time of the snippet's own code (tool calls excluded).
    pub timeout_ms: u64,
    /// Address space the worker may add for the snippet.
    pub memory_mb: u64,
    /// Printed output kept; the rest is dropped and a marker added.
    pub output_kb: u64,
    pub max_tool_calls: usize,
}

impl Default for SandboxLimits {
    fn default() -> SandboxLimits {
        SandboxLimits {
            timeout_ms: 10_000,
            memory_mb: 256,
            output_kb: 256,
            max_tool_calls: 64,
        }
    }
}

/// A Python exception as the snippet saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyError {
    /// The exception class name, e.g. `FileNotFoundError`.
    pub type_name: String,
    pub message: String,
    /// The snippet line it was raised at, when known.
    pub line: Option<u32>,
}

impl std::fmt::Display for PyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.type_name)
        } else {
            write!(f, "{}: {}", self.type_name, self.message)
        }
    }
}

impl PyError {
    fn new(type_name: &str, message: impl Into<String>) -> PyError {
        PyError {
            type_name: type_name.to_owned(),
            message: message.into(),
            line: None,
        }
    }
}

/// One tool call the snippet made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    pub tool: String,
    /// The named arguments, e.g. `{"path": "README.md"}`.
    pub args: serde_json::Value,
    pub ok: bool,
    /// `Type: message` of the exception the call raised in the snippet.
    pub error: Option<String>,
    /// How the permission step decided; `None` when the call failed before it (an unknown
    /// tool, a path outside the workspace, too many calls).
    pub permission: Option<Ruling>,
}

/// Tool lifecycle, for progress reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEvent {
    /// `label` is e.g. `read_file README.md`.
    Started { tool: String, label: String },
    /// `error` is `Type: message` when the call failed; `permission`: how it was decided
    /// (see [`ToolCallRecord::permission`]).
    Finished {
        tool: String,
        ok: bool,
        error: Option<String>,
        permission: Option<Ruling>,
    },
}

/// The outcome of one snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxResult {
    pub ok: bool,
    /// What the snippet printed (also when it failed), capped at `output_kb`.
    pub output: String,
    pub output_truncated: bool,
    pub error: Option<PyError>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub elapsed: Duration,
}

/// The host side of tool calls. Paths handed to it are already resolved and confined to
/// [`ToolHost::workspace_root`].
pub trait ToolHost: Sync {
    fn workspace_root(&self) -> &Path;

    /// The unsaved editor buffer of `path`, if the editor has it open.
    fn read_document(&self, _path: &Path) -> Option<String> {
        None
    }

    /// Writes a file (the LSP layer turns this into `workspace/applyEdit`).
    fn write_file(&self, path: &Path, content: &str) -> Result<(), ToolError> {
        crate::workspace::write_atomic(path, content)
    }

    /// May this call go ahead? `request` is the call resolved: the workspace-relative path
    /// after symlinks, the argv, the change a write makes. Hosts answer with
    /// `policy::permit(request, settings, approvals, ask)`, where `ask` shows the prompt in
    /// their front end; the [`Ruling`] goes into the transcript, and a refusal becomes the
    /// snippet's `PermissionError`.
    fn permit(&self, request: &ToolRequest) -> Ruling;

    /// Serves a call itself instead of the built-in back end (test doubles). `None` means
    /// "use the built-in back end".
    fn call_tool(
        &self,
        _tool: Tool,
        _args: &serde_json::Value,
        _cancel: &CancelFlag,
    ) -> Option<Result<serde_json::Value, ToolError>> {
        None
    }

    /// Limits of `run_command`.
    fn command_limits(&self) -> CommandLimits {
        CommandLimits::default()
    }
}

/// The host of `punie sandbox`, `punie eval` and tests: the disk, no editor buffers, nobody
/// to ask. Reads and writes are allowed, protected paths refused; commands run only with
/// `allow_commands` (`--allow-commands`), else they raise `PermissionError` saying so.
#[derive(Debug, Clone)]
pub struct DiskToolHost {
    pub root: PathBuf,
    pub allow_commands: bool,
}

impl DiskToolHost {
    fn settings(&self) -> PolicySettings {
        let mut settings = PolicySettings::default();
        settings
            .tools
            .set_class(PermissionClass::Write, Decision::Allow);
        if self.allow_commands {
            settings
                .tools
                .set_class(PermissionClass::Execute, Decision::Allow);
        }
        settings
    }
}

impl ToolHost for DiskToolHost {
    fn workspace_root(&self) -> &Path {
        &self.root
    }

    fn permit(&self, request: &ToolRequest) -> Ruling {
        let approvals = Mutex::new(SessionApprovals::default());
        policy::permit(request, &self.settings(), &approvals, &mut |_prompt| {
            Answer::Unavailable("there is no one to ask; pass --allow-commands".to_owned())
        })
    }
}

/// How long a fresh worker may take to start before the sandbox gives up on it.
const WORKER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// A worker is replaced after this many snippets, to bound fragmentation and leaks.
const MAX_RUNS_PER_WORKER: u32 = 200;
/// How often a waiting parent looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// Runs snippets; owns one pre-warmed worker process.
pub struct Sandbox {
    limits: SandboxLimits,
    worker_exe: PathBuf,
    worker: Option<Worker>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// This very binary. On Linux `/proc/self/exe` still runs it after the file on disk was
/// replaced or deleted (an upgrade or a rebuild while the server runs), so the worker always
/// speaks the same protocol as its parent; `current_exe` would name a missing file then.
fn own_executable() -> anyhow::Result<PathBuf> {
    let proc_self_exe = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_self_exe.exists() {
        return Ok(proc_self_exe.to_path_buf());
    }
    std::env::current_exe().context("finding the punie executable for the sandbox worker")
}

impl Sandbox {
    /// A sandbox whose worker is this executable (`punie sandbox-worker`), or the binary
    /// named by `PUNIE_SANDBOX_WORKER`. Starts the first worker in the background.
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Sandbox> {
        let exe = match std::env::var_os("PUNIE_SANDBOX_WORKER") {
            Some(exe) => PathBuf::from(exe),
            None => own_executable()?,
        };
        Sandbox::with_worker_exe(limits, &exe)
    }

    /// A sandbox whose worker is `exe sandbox-worker`.
    pub fn with_worker_exe(limits: SandboxLimits, exe: &Path) -> anyhow::Result<Sandbox> {
        let mut sandbox = Sandbox {
            limits,
            worker_exe: exe.to_path_buf(),
            worker: None,
        };
        sandbox.worker = Some(
            sandbox
                .spawn_worker()
                .context("starting the sandbox worker")?,
        );
        Ok(sandbox)
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Changes the limits; a new memory limit takes a new worker.
    pub fn set_limits(&mut self, limits: SandboxLimits) {
        if limits.memory_mb != self.limits.memory_mb {
            self.worker = None;
        }
        self.limits = limits;
    }

    fn spawn_worker(&self) -> anyhow::Result<Worker> {
        Worker::spawn(&self.worker_exe, &self.limits)
    }

    /// Runs `code`, carrying its tool calls out through `host`. Stops when the time limit
    /// passes or `cancel` is set (within ~10 ms), killing the worker; the next call gets a
    /// fresh one.
    pub fn execute(
        &mut self,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(ToolEvent),
    ) -> SandboxResult {
        let start = Instant::now();
        let mut res = SandboxResult {
            ok: false,
            output: String::new(),
            output_truncated: false,
            error: None,
            tool_calls: Vec::new(),
            elapsed: Duration::ZERO,
        };
        if let Err(err) = validate::precheck(code) {
            res.error = Some(err);
            res.elapsed = start.elapsed();
            return res;
        }
        match self.run_in_worker(code, host, cancel, on_event, &mut res) {
            Ok(()) => {}
            Err(err) => {
                res.ok = false;
                res.error = Some(err);
            }
        }
        res.elapsed = start.elapsed();
        res
    }

    fn run_in_worker(
        &mut self,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(ToolEvent),
        res: &mut SandboxResult,
    ) -> Result<(), PyError> {
        let alive = self.worker.as_mut().is_some_and(Worker::alive);
        let mut worker = match self.worker.take() {
            Some(worker) if alive => worker,
            _ => self.spawn_worker().map_err(|err| {
                PyError::new(
                    "SystemError",
                    format!("the sandbox worker could not start: {err:#}"),
                )
            })?,
        };
        let outcome = self.drive(&mut worker, code, host, cancel, on_event, res);
        match outcome {
            Ok(()) => {
                worker.runs += 1;
                if worker.runs < MAX_RUNS_PER_WORKER {
                    self.worker = Some(worker);
                }
            }
            Err(_) => {
                worker.kill();
            }
        }
        if self.worker.is_none() {
            // Pre-warm the next one now, so that the next snippet does not wait for it.
            self.worker = self.spawn_worker().ok();
        }
        outcome
    }

    fn drive(
        &self,
        worker: &mut Worker,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(ToolEvent),
        res: &mut SandboxResult,
    ) -> Result<(), PyError> {
        worker.wait_ready(cancel)?;
        let exec = ToWorker::Exec {
            code: code.to_owned(),
            output_limit: usize::try_from(self.limits.output_kb.saturating_mul(1024))
                .unwrap_or(usize::MAX),
        };
        worker.send(&exec)?;
        let timeout = Duration::from_millis(self.limits.timeout_ms);
        let mut deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if cancel.is_cancelled() {
                return Err(PyError::new("KeyboardInterrupt", "the run was cancelled"));
            }
            if now >= deadline {
                return Err(PyError::new(
                    "TimeoutError",
                    format!(
                        "the snippet ran longer than its {} ms time limit and was stopped",
                        self.limits.timeout_ms
                    ),
                ));
            }
            let wait = (deadline - now).min(CANCEL_POLL);
            let msg = match worker.lines.recv_timeout(wait) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(worker.death_error(&self.limits)),
            };
            match msg {
                FromWorker::Ready => {}
                FromWorker::Tool { tool, args } => {
                    let tool_start = Instant::now();
                    let reply = if res.tool_calls.len() >= self.limits.max_tool_calls {
                        let err = ToolError::new(
                            "RuntimeError",
                            format!(
                                "too many tool calls in one snippet (limit {})",
                                self.limits.max_tool_calls
                            ),
                        );
                        res.tool_calls.push(ToolCallRecord {
                            tool,
                            args,
                            ok: false,
                            error: Some(err.to_string()),
                            permission: None,
                        });
                        ToWorker::tool_error(&err)
                    } else {
                        let record = dispatch::call(host, &tool, args, cancel, on_event);
                        let reply = match &record.1 {
                            Ok(value) => ToWorker::ToolResult {
                                ok: true,
                                value: value.clone(),
                                error: None,
                            },
                            Err(err) => ToWorker::tool_error(err),
                        };
                        res.tool_calls.push(record.0);
                        reply
                    };
                    if cancel.is_cancelled() {
                        return Err(PyError::new("KeyboardInterrupt", "the run was cancelled"));
                    }
                    worker.send(&reply)?;
                    // Tool time is the host's, not the snippet's.
                    deadline += tool_start.elapsed();
                }
                FromWorker::Done {
                    ok,
                    output,
                    truncated,
                    error,
                } => {
                    res.ok = ok;
                    res.output = output;
                    res.output_truncated = truncated;
                    res.error = error.map(WireError::into_py_error);
                    return Ok(());
                }
                FromWorker::Invalid { line } => {
                    return Err(PyError::new(
                        "SystemError",
                        format!("the sandbox worker sent a malformed message: {line}"),
                    ));
                }
            }
        }
    }
}

/// One worker process and the threads that read its pipes.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<FromWorker>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    ready: bool,
    runs: u32,
}

impl Worker {
    fn spawn(exe: &Path, limits: &SandboxLimits) -> anyhow::Result<Worker> {
        let mut child = Command::new(exe)
            .arg("sandbox-worker")
            .arg("--memory-mb")
            .arg(limits.memory_mb.to_string())
            // The snippet must not see the server's environment (tokens, keys, paths).
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {} sandbox-worker", exe.display()))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let stderr = child.stderr.take().context("worker stderr")?;
        let (sender, lines) = crossbeam_channel::unbounded();
        let stdout_reader = std::thread::Builder::new()
            .name("sandbox-stdout".to_owned())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let msg = FromWorker::parse(line.trim_end());
                            if sender.send(msg).is_err() {
                                break;
                            }
                        }
                    }
                }
            })?;
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr_tail);
        let stderr_reader = std::thread::Builder::new()
            .name("sandbox-stderr".to_owned())
            .spawn(move || {
                const KEEP: usize = 16 * 1024;
                let mut stderr = stderr;
                let mut buf = [0u8; 4096];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n_read) => {
                            let mut tail = tail.lock().unwrap_or_else(|poison| poison.into_inner());
                            tail.extend_from_slice(&buf[..n_read]);
                            if tail.len() > KEEP {
                                let cut = tail.len() - KEEP;
                                tail.drain(..cut);
                            }
                        }
                    }
                }
            })?;
        Ok(Worker {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr_tail,
            readers: vec![stdout_reader, stderr_reader],
            ready: false,
            runs: 0,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(&mut self, cancel: &CancelFlag) -> Result<(), PyError> {
        let deadline = Instant::now() + WORKER_START_TIMEOUT;
        while !self.ready {
            if cancel.is_cancelled() {
                return Err(PyError::new("KeyboardInterrupt", "the run was cancelled"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PyError::new(
                    "SystemError",
                    "the sandbox worker did not start in time",
                ));
            }
            match self.lines.recv_timeout((deadline - now).min(CANCEL_POLL)) {
                Ok(FromWorker::Ready) => self.ready = true,
                Ok(_) => {
                    return Err(PyError::new(
                        "SystemError",
                        "the sandbox worker spoke before it was ready",
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.death_error(&SandboxLimits::default()));
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, msg: &ToWorker) -> Result<(), PyError> {
        let mut line = msg.to_line();
        line.push('\n');
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| PyError::new("SystemError", "the sandbox worker is gone"))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|_| PyError::new("SystemError", "the sandbox worker stopped reading"))
    }

    /// Why the worker died, as the exception the snippet would have seen.
    fn death_error(&mut self, limits: &SandboxLimits) -> PyError {
        let status = self.child.wait().ok();
        // The reader threads end at EOF; join them so that the whole stderr is in.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let stderr = String::from_utf8_lossy(&tail);
        classify_death(&stderr, status, limits)
    }

    fn kill(mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends an idle worker; kill covers a busy one.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
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
    let last_line = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
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

/// Overhead figures of [`Sandbox::execute`], in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct OverheadFigures {
    /// A trivial snippet (`x = 1`) on a warm worker.
    pub trivial_p50_ms: f64,
    pub trivial_p99_ms: f64,
    /// A snippet with three `read_file` calls, host IO included (tiny files).
    pub tool_snippet_p50_ms: f64,
    pub tool_snippet_p99_ms: f64,
    pub iterations: usize,
}

/// Measures the overhead of `execute` on a warm worker: `iterations` runs of a trivial
/// snippet and of a three-tool snippet, after a warm-up. For `punie bench`.
pub fn overhead_bench(sandbox: &mut Sandbox, iterations: usize) -> anyhow::Result<OverheadFigures> {
    let dir = std::env::temp_dir().join(format!("punie-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating the bench workspace")?;
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(dir.join(name), "hello\n").context("writing a bench file")?;
    }
    let host = DiskToolHost {
        root: dir.clone(),
        allow_commands: false,
    };
    let cancel = CancelFlag::default();
    let trivial = "x = 1";
    let tools = "a = read_file('a.txt')\nb = read_file('b.txt')\nc = read_file('c.txt')\nprint(len(a + b + c))";
    let mut measure = |code: &str| -> anyhow::Result<Vec<f64>> {
        for _ in 0..5 {
            sandbox.execute(code, &host, &cancel, &mut |_| {});
        }
        let mut res = Vec::with_capacity(iterations);
        for _ in 0..iterations.max(1) {
            let start = Instant::now();
            let out = sandbox.execute(code, &host, &cancel, &mut |_| {});
            res.push(start.elapsed().as_secs_f64() * 1000.0);
            if !out.ok {
                anyhow::bail!("bench snippet failed: {:?}", out.error);
            }
        }
        res.sort_by(f64::total_cmp);
        Ok(res)
    };
    let trivial_ms = measure(trivial)?;
    let tool_ms = measure(tools)?;
    let _ = std::fs::remove_dir_all(&dir);
    let pct = |sorted: &[f64], p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    Ok(OverheadFigures {
        trivial_p50_ms: pct(&trivial_ms, 0.5),
        trivial_p99_ms: pct(&trivial_ms, 0.99),
        tool_snippet_p50_ms: pct(&tool_ms, 0.5),
        tool_snippet_p99_ms: pct(&tool_ms, 0.99),
        iterations: trivial_ms.len(),
    })
}
