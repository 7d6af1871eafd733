//! [`Server`]: the state the main loop owns (what the client can do, the workspace folders,
//! open documents, settings, runs, requests awaiting the client's answer), and the ways to
//! talk to the client. Only the main loop changes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError};
use lsp_types::{MessageType, ShowMessageParams};
use serde_json::Value;

use crate::features::{RunQueue, RunResources, SessionApprovals};

use super::documents::{DocumentStore, PositionEncoding};
use super::engine_lifecycle::EngineState;
use super::main_loop::Task;
use super::progress::Progress;
use super::scheduling::Run;
use super::settings::SettingsStore;
use crate::jsonrpc::Outgoing;

/// How long a request to the client is remembered without an answer.
const PENDING_TTL: Duration = Duration::from_secs(300);

/// What the client can do, read once from `initialize`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientCaps {
    pub work_done_progress: bool,
    pub show_document: bool,
    pub apply_edit: bool,
    pub document_changes: bool,
    pub create_files: bool,
    /// `workspace.workspaceEdit.changeAnnotationSupport`: edits can ask for confirmation.
    pub change_annotations: bool,
    pub configuration: bool,
    pub punie_answer: bool,
    /// `experimental.puniePermission`: permission questions go as `punie/permission`.
    pub punie_permission: bool,
    pub encoding: PositionEncoding,
}

/// Why we sent a request to the client, to route its answer.
pub(crate) enum Pending {
    ProgressCreate { run_id: String },
    LoadProgressCreate { generation: u64 },
    Configuration,
    Forward(Sender<Result<Value, ResponseError>>),
    Ignore,
}

pub(crate) struct Server {
    sender: Sender<Outgoing>,
    pub(crate) task_sender: Sender<Task>,
    pub(crate) initialized: bool,
    /// The client sent `initialized`: requests to it may go out.
    pub(crate) client_ready: bool,
    pub(crate) caps: ClientCaps,
    pub(crate) roots: Vec<PathBuf>,
    pub(crate) documents: DocumentStore,
    pub(crate) settings: SettingsStore,
    pub(crate) engine: Option<EngineState>,
    pub(crate) engine_generation: u64,
    /// The last engine SPEC refused because a project's settings could have sent it.
    pub(crate) refused_engine: Option<crate::engine::EngineSpec>,
    /// `PUNIE_ENGINE` did not parse, and the user was told.
    pub(crate) environment_engine_refused: bool,
    pub(crate) runs: HashMap<String, Run>,
    pub(crate) queue: RunQueue,
    /// Requests to the client awaiting its answer, with when they went out.
    pub(crate) pending: HashMap<RequestId, (Pending, Instant)>,
    next_request_id: i32,
    pub(crate) next_run: u64,
    /// What runs share: the pre-warmed sandbox and the conversations.
    pub(crate) resources: RunResources,
    /// "Allow for this session" answers, one set per workspace folder: an answer given for a
    /// run in one folder never covers another folder's command or file of the same name.
    pub(crate) approvals: HashMap<PathBuf, SessionApprovals>,
    /// Set by `shutdown`: the id to answer once cancelled runs have ended, and the deadline.
    pub(crate) shutdown: Option<(RequestId, Instant)>,
    pub(crate) shutdown_requested: bool,
    /// Progress of runs that ended before the client accepted their token: the `begin` and
    /// `end` go out when it does.
    pub(crate) ended_progress: HashMap<String, Progress>,
    /// The root of runs on documents in no workspace folder: an empty private directory,
    /// made on first use and removed when the server ends.
    scratch: Option<tempfile::TempDir>,
}

impl Server {
    pub(crate) fn new(sender: Sender<Outgoing>, task_sender: Sender<Task>) -> Server {
        Server {
            sender,
            task_sender,
            initialized: false,
            client_ready: false,
            caps: ClientCaps::default(),
            roots: Vec::new(),
            documents: DocumentStore::default(),
            settings: SettingsStore::default(),
            engine: None,
            engine_generation: 0,
            refused_engine: None,
            environment_engine_refused: false,
            runs: HashMap::new(),
            queue: RunQueue::default(),
            pending: HashMap::new(),
            next_request_id: 0,
            next_run: 0,
            resources: RunResources::default(),
            approvals: HashMap::new(),
            shutdown: None,
            shutdown_requested: false,
            ended_progress: HashMap::new(),
            scratch: None,
        }
    }

    /// The scratch root (see the field), made on first use.
    pub(crate) fn scratch_root(&mut self) -> Result<PathBuf, String> {
        if self.scratch.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("punie-scratch-")
                .tempdir()
                .map_err(|err| format!("cannot make a scratch directory: {err}"))?;
            self.scratch = Some(dir);
        }
        let dir = self.scratch.as_ref().map(|dir| dir.path().to_path_buf());
        dir.and_then(|dir| dir.canonicalize().ok())
            .ok_or_else(|| "the scratch directory is gone".to_owned())
    }

    // ---- settings ----

    /// Merges a settings source, reports bad values, and applies what changed.
    pub(crate) fn apply_settings(&mut self, source: &Value) {
        let before = self.settings.settings().clone();
        for problem in self.settings.apply(source) {
            self.show_message(
                MessageType::ERROR,
                &format!("Punie settings: {problem}; using the default"),
            );
        }
        let after = self.settings.settings().clone();
        if before.tool_policy != after.tool_policy {
            // "Allow for this session" lasts until the policy setting changes (runs in
            // flight hold their folder's set: emptied, not only forgotten).
            for (_, approvals) in self.approvals.drain() {
                approvals.clear();
            }
        }
        if self.initialized && self.engine.is_some() {
            self.ensure_engine();
        }
    }

    pub(crate) fn pull_configuration(&mut self) {
        if self.caps.configuration {
            let params = serde_json::json!({"items": [{"section": super::ext::CONFIG_SECTION}]});
            self.send_request("workspace/configuration", params, Pending::Configuration);
        }
    }

    // ---- output ----

    pub(crate) fn send(&self, outgoing: Outgoing) {
        // A closed writer means the client is gone; the loop notices when input ends.
        let _ = self.sender.send(outgoing);
    }

    pub(crate) fn send_notification(&self, notification: Notification) {
        self.send(Message::Notification(notification).into());
    }

    pub(crate) fn respond_err(&self, id: RequestId, code: i32, message: String) {
        self.send(Message::Response(Response::new_err(id, code, message)).into());
    }

    /// Shows `message`, which may quote a path, a setting's value or an answer: as code, so
    /// that a client that renders it as Markdown shows it as it is and makes no link of it.
    pub(crate) fn show_message(&self, kind: MessageType, message: &str) {
        let params = ShowMessageParams {
            typ: kind,
            message: crate::policy::markdown_literal(message),
        };
        self.send_notification(Notification::new("window/showMessage".to_owned(), params));
    }

    /// Forgets requests the client has not answered in `PENDING_TTL`: the run that asked gave
    /// up long ago (its own wait is shorter), and a client that never answers must not make
    /// the server grow.
    pub(crate) fn expire_pending(&mut self, now: Instant) {
        let expired: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, (_, sent_at))| now.duration_since(*sent_at) >= PENDING_TTL)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((Pending::ProgressCreate { run_id }, _)) = self.pending.remove(&id) {
                // Its run ended waiting for the token: nothing will ever show.
                self.ended_progress.remove(&run_id);
            }
        }
    }

    pub(crate) fn send_request(&mut self, method: &str, params: Value, pending: Pending) {
        self.next_request_id += 1;
        let id = RequestId::from(self.next_request_id);
        self.pending.insert(id.clone(), (pending, Instant::now()));
        self.send(Message::Request(Request::new(id, method.to_owned(), params)).into());
    }
}

/// What a request handler did: the loop sends the one response.
pub(crate) enum Handled {
    /// Answer with this value.
    Reply(Value),
    /// Answer with this value, then schedule the run (`punie.ask`).
    ReplyThenSchedule { value: Value, run_id: String },
    /// The answer goes out later (`shutdown`, once its runs have ended).
    Later,
}

/// A handler's failure, with its JSON-RPC code.
#[derive(Debug)]
pub(crate) struct HandlerError {
    pub code: i32,
    pub message: String,
}

impl HandlerError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: code as i32,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> HandlerError {
        HandlerError::new(ErrorCode::InvalidParams, message)
    }
}

pub(crate) type HandlerResult = Result<Handled, HandlerError>;
