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
//! * [`overhead_bench`]: p50/p99 of `execute` overhead and the start-up a pre-warmed worker
//!   saves a run, for `punie bench`.
//!
//! # Design
//!
//! An in-process interpreter cannot be stopped safely mid-allocation, and RustPython 0.5
//! aborts the process on failed allocations and overflows the native stack on deep nesting.
//! So the interpreter lives in a worker process that the server can kill at any moment:
//!
//! * The worker holds no file access of its own. Every tool call goes to the parent as one
//!   JSON line on a pipe only the worker's Rust side holds (fd 4; answers come on fd 3); its
//!   stdout goes nowhere and its stderr only explains a crash. Every message names the
//!   request it answers; anything out of turn, unparsable or longer than allowed makes the
//!   parent kill the worker (see `protocol`, `process`).
//! * OS limits: `RLIMIT_AS` (memory), `RLIMIT_CPU` (a backstop should the parent die),
//!   `RLIMIT_NOFILE`/`RLIMIT_NPROC`/`RLIMIT_FSIZE`, `PR_SET_PDEATHSIG`, an empty environment,
//!   working directory `/`, its own process group, and on Linux a Landlock ruleset that
//!   forbids every file-system access and a seccomp filter that forbids `execve`, sockets and
//!   `ptrace` (each applied where the kernel offers it; see `worker::lockdown`).
//! * The parent enforces the wall-clock timeout by killing the worker, so `while True: pass`,
//!   loops that swallow every exception, native `time.sleep` and the formatting of the result
//!   are all covered. A killed or crashed worker is replaced at once by a fresh pre-warmed one.
//!   Workers are forked by one long-lived thread, so a pre-warmed worker outlives the run
//!   whose thread asked for it (the parent-death signal follows the forking thread).
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
//! * The time limit bounds everything a snippet causes, tool calls included: each call runs
//!   with the time left as its deadline (under its own limit, e.g. [`CommandLimits`]); only
//!   the host's wait for a permission answer pauses the clock, up to a hard cap. Every byte
//!   the parent keeps is bounded: settings within caps, protocol lines, error messages, reads
//!   (what is read, not what `stat` says), and records of calls, which keep long arguments as
//!   size and digest (see `limits`).

pub mod allowlist;
mod bench;
mod dispatch;
mod limits;
mod process;
mod protocol;
mod validate;
pub mod worker;

pub mod coverage;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cancel::{CancelFlag, Interrupted};
use crate::policy::{self, Answer, Decision, PolicySettings, PromptKind, SessionApprovals};
pub use crate::policy::{Ruling, ToolRequest};
use crate::tools::PermissionClass;
pub use crate::tools::Tool;
pub use crate::workspace::{CommandLimits, ToolError, ToolHost};

pub use bench::{CancelFigures, OverheadFigures, cancel_bench, overhead_bench};
pub use limits::SandboxLimits;
use limits::SnippetClock;
use process::{Incoming, WorkerProcess};
use protocol::{FromWorker, ToWorker};

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
    /// The named arguments, e.g. `{"path": "README.md"}`; one longer than 256 bytes is kept
    /// as `{"bytes": N, "sha256": "…"}` of its text, never its contents.
    pub args: serde_json::Value,
    pub ok: bool,
    /// `Type: message` of the exception the call raised in the snippet (cut at 8 KB).
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

    fn permit(&self, request: &ToolRequest, _cancel: &CancelFlag) -> Ruling {
        let approvals = Mutex::new(SessionApprovals::default());
        policy::permit(request, &self.settings(), &approvals, &mut |prompt| {
            Answer::Unavailable(match prompt.kind {
                PromptKind::Execute | PromptKind::Call => {
                    "there is no one to ask; pass --allow-commands".to_owned()
                }
                PromptKind::Read | PromptKind::Write => "there is no one to ask".to_owned(),
            })
        })
    }
}

/// How long a fresh worker may take to start before the sandbox gives up on it.
const WORKER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// A worker is replaced after this many snippets, to bound fragmentation and leaks.
const MAX_RUNS_PER_WORKER: u32 = 200;
/// Room for the `[output truncated: …]` marker the worker adds to capped output.
const OUTPUT_MARKER_BYTES: usize = 128;

/// Runs snippets; owns one pre-warmed worker process.
pub struct Sandbox {
    limits: SandboxLimits,
    worker_exe: PathBuf,
    worker: Option<WorkerProcess>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A fresh id for each `exec` the process sends.
fn next_exec_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The snippet's error when its run was cancelled.
fn cancelled() -> PyError {
    PyError::new("KeyboardInterrupt", "the run was cancelled")
}

/// The snippet's error when its worker broke the protocol.
fn broken(what: impl std::fmt::Display) -> PyError {
    PyError::new(
        "SystemError",
        format!("the sandbox worker broke its protocol ({what}) and was stopped"),
    )
}

impl Sandbox {
    /// A sandbox whose worker is this executable (`punie sandbox-worker`), or the binary
    /// named by `PUNIE_SANDBOX_WORKER`. Starts the first worker in the background.
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Sandbox> {
        let exe = crate::jail::punie_executable()
            .context("finding the punie executable for the sandbox worker")?;
        Sandbox::with_worker_exe(limits, &exe)
    }

    /// A sandbox whose worker is `exe sandbox-worker`.
    pub fn with_worker_exe(limits: SandboxLimits, exe: &Path) -> anyhow::Result<Sandbox> {
        // Commands run under the same binary's `jail-exec`.
        crate::jail::use_helper_executable(exe);
        let mut sandbox = Sandbox {
            limits: limits.capped(),
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

    /// Changes the limits (within the sandbox's caps); a new memory or output limit takes a
    /// new worker.
    pub fn set_limits(&mut self, limits: SandboxLimits) {
        let limits = limits.capped();
        if limits.memory_mb != self.limits.memory_mb || limits.output_kb != self.limits.output_kb {
            self.worker = None;
        }
        self.limits = limits;
    }

    fn spawn_worker(&self) -> anyhow::Result<WorkerProcess> {
        WorkerProcess::spawn(
            &self.worker_exe,
            self.limits.memory_mb,
            protocol::max_line_bytes(self.limits.output_bytes()),
        )
    }

    /// Runs `code`, carrying its tool calls out through `host`. Stops when the time limit
    /// passes or `cancel` is set (the wait for the worker wakes at once), killing the worker;
    /// the next call gets a fresh one.
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

    /// The pre-warmed worker if it is alive and has said nothing out of turn, else a new one.
    fn take_worker(&mut self) -> Result<WorkerProcess, PyError> {
        if let Some(mut worker) = self.worker.take() {
            // Between snippets a worker has nothing to say; one that spoke is not trusted.
            let quiet = !worker.ready || worker.incoming.is_empty();
            if quiet && worker.alive() {
                return Ok(worker);
            }
        }
        self.spawn_worker().map_err(|err| {
            PyError::new(
                "SystemError",
                format!("the sandbox worker could not start: {err:#}"),
            )
        })
    }

    fn run_in_worker(
        &mut self,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(ToolEvent),
        res: &mut SandboxResult,
    ) -> Result<(), PyError> {
        let mut worker = self.take_worker()?;
        let outcome = self.drive(&mut worker, code, host, cancel, on_event, res);
        if outcome.is_ok() {
            worker.runs += 1;
            if worker.runs < MAX_RUNS_PER_WORKER {
                self.worker = Some(worker);
            }
        }
        // A worker that failed is dropped here, which kills it.
        if self.worker.is_none() {
            // Pre-warm the next one now, so that the next snippet does not wait for it.
            self.worker = self.spawn_worker().ok();
        }
        outcome
    }

    /// Carries out call number `call` and keeps a bounded record of it; the reply for the
    /// worker. A call no worker of ours would send (a tool not in the registry, an argument
    /// it does not take) means the worker is not ours any more.
    #[allow(clippy::too_many_arguments)]
    fn tool_call(
        &self,
        call: u32,
        tool: &str,
        args: serde_json::Map<String, serde_json::Value>,
        host: &dyn ToolHost,
        clock: &SnippetClock<'_>,
        on_event: &mut dyn FnMut(ToolEvent),
        res: &mut SandboxResult,
    ) -> Result<ToWorker, PyError> {
        let Some(spec) = Tool::by_name(tool).map(Tool::spec) else {
            return Err(broken("a call of a tool that does not exist"));
        };
        if let Some(name) = args
            .keys()
            .find(|name| !spec.params.iter().any(|param| param.name == name.as_str()))
        {
            return Err(broken(format!(
                "{} called with an argument it does not take: {:.64}",
                spec.name, name
            )));
        }
        let kept_args = limits::summarize_args(&args);
        if call as usize > self.limits.max_tool_calls {
            let err = ToolError::new(
                "RuntimeError",
                format!(
                    "too many tool calls in one snippet (limit {})",
                    self.limits.max_tool_calls
                ),
            );
            // The first refused call is recorded; a snippet that goes on is only refused.
            if call as usize == self.limits.max_tool_calls + 1 {
                res.tool_calls.push(ToolCallRecord {
                    tool: spec.name.to_owned(),
                    args: kept_args,
                    ok: false,
                    error: Some(err.to_string()),
                    permission: None,
                });
            }
            return Ok(ToWorker::tool_error(call, &err));
        }
        let (mut record, outcome) = dispatch::call(
            host,
            spec.name,
            serde_json::Value::Object(args),
            clock,
            on_event,
        );
        record.args = kept_args;
        res.tool_calls.push(record);
        Ok(match outcome {
            Ok(value) => ToWorker::ToolResult {
                call,
                ok: true,
                value,
                error: None,
            },
            Err(err) => ToWorker::tool_error(call, &err),
        })
    }

    fn wait_ready(&self, worker: &mut WorkerProcess, cancel: &CancelFlag) -> Result<(), PyError> {
        if worker.ready {
            return Ok(());
        }
        let deadline = Instant::now() + WORKER_START_TIMEOUT;
        match cancel.wait(&worker.incoming, Some(deadline)) {
            Ok(Incoming::Message(FromWorker::Ready {})) => {
                worker.ready = true;
                Ok(())
            }
            Ok(_) => Err(broken("it spoke before it was ready")),
            Err(Interrupted::Cancelled) => Err(cancelled()),
            Err(Interrupted::TimedOut) => Err(PyError::new(
                "SystemError",
                "the sandbox worker did not start in time",
            )),
            Err(Interrupted::Disconnected) => Err(worker.death_error(&self.limits)),
        }
    }

    fn drive(
        &self,
        worker: &mut WorkerProcess,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(ToolEvent),
        res: &mut SandboxResult,
    ) -> Result<(), PyError> {
        self.wait_ready(worker, cancel)?;
        let exec = next_exec_id();
        let output_limit = self.limits.output_bytes();
        worker.send(&ToWorker::Exec {
            id: exec,
            code: code.to_owned(),
            output_limit,
        })?;
        let clock = SnippetClock::start(
            cancel,
            Duration::from_millis(self.limits.timeout_ms),
            limits::MAX_PERMISSION_PAUSE,
        );
        let mut calls: u32 = 0;
        loop {
            // The deadline moves only while a tool call waits for a permission answer, which
            // happens between these waits.
            let msg = match cancel.wait(&worker.incoming, Some(clock.deadline())) {
                Ok(Incoming::Message(msg)) => msg,
                Ok(Incoming::Malformed(start)) => {
                    return Err(broken(format!("a line that is not a message: {start:?}")));
                }
                Ok(Incoming::Oversized { limit }) => {
                    return Err(broken(format!("a line longer than {limit} bytes")));
                }
                Err(Interrupted::Cancelled) => return Err(cancelled()),
                Err(Interrupted::TimedOut) => {
                    return Err(PyError::new(
                        "TimeoutError",
                        format!(
                            "the snippet ran longer than its {} ms time limit (tool calls \
                             included) and was stopped",
                            self.limits.timeout_ms
                        ),
                    ));
                }
                Err(Interrupted::Disconnected) => return Err(worker.death_error(&self.limits)),
            };
            match msg {
                FromWorker::Tool {
                    exec: of,
                    call,
                    tool,
                    args,
                } if of == exec && call == calls + 1 => {
                    calls = call;
                    let reply = self.tool_call(call, &tool, args, host, &clock, on_event, res)?;
                    if cancel.is_cancelled() {
                        return Err(cancelled());
                    }
                    worker.send(&reply)?;
                }
                FromWorker::Done {
                    exec: of,
                    ok,
                    output,
                    truncated,
                    error,
                } if of == exec => {
                    if output.len() > output_limit + OUTPUT_MARKER_BYTES {
                        return Err(broken(format!(
                            "{} bytes of output, more than its {output_limit}",
                            output.len()
                        )));
                    }
                    res.error = match error {
                        None => None,
                        Some(error) => Some(
                            error
                                .into_py_error()
                                .ok_or_else(|| broken("an error no snippet can raise"))?,
                        ),
                    };
                    res.ok = ok && res.error.is_none();
                    res.output = output;
                    res.output_truncated = truncated;
                    return Ok(());
                }
                FromWorker::Ready {} => return Err(broken("a second ready")),
                FromWorker::Tool { exec: of, call, .. } => {
                    return Err(broken(format!(
                        "tool call {call} of exec {of} while running call {} of exec {exec}",
                        calls + 1
                    )));
                }
                FromWorker::Done { exec: of, .. } => {
                    return Err(broken(format!(
                        "done for exec {of} while running exec {exec}"
                    )));
                }
            }
        }
    }
}
