//! The event loop: one thread, one `select!` over a closed [`Event`] enum, and the dispatch
//! table that says where each message is handled.
//!
//! Everything that can wake the server is an [`Event`]: a message from the client, a [`Task`]
//! from a run thread (a progress step, a request it needs sent to the client, its end), or a
//! tick (model-load polling, throttled text streaming, deadlines). State changes happen only
//! here, so a run that starts after a `didChange` always sees the change.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError};
use lsp_types::{MessageType, NumberOrString, ShowMessageParams};
use serde_json::Value;

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::engine::{EngineConfig, EngineError, EngineHandle, EngineSpec};

use super::documents::{DocumentStore, PositionEncoding};
use super::ext::{AnswerParams, AnswerStatus};
use super::progress::Progress;
use super::run::{RunContext, RunSpec, SharedRunState};
use super::settings::SettingsStore;
use super::transport::{Incoming, Outgoing};
use super::{ServerExit, handlers};

/// How often the loop wakes without a message: polls the model load, flushes streamed text,
/// checks deadlines.
const TICK: Duration = Duration::from_millis(50);
/// Streamed answer text goes out as a report at most this often, so a fast model cannot flood
/// the client (or delay a `codeAction` answer behind a queue of reports).
const TEXT_REPORT_INTERVAL: Duration = Duration::from_millis(200);
/// After `shutdown`, cancelled runs get this long to send their `end` and answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Everything that can wake the server.
enum Event {
    Lsp(Incoming),
    /// The client's input ended (stdin closed).
    Closed,
    Task(Task),
    Tick,
}

/// What run threads send the loop.
pub(crate) enum Task {
    /// A step of the agent's run.
    Run { run_id: String, event: RunEvent },
    /// A progress report that does not come from the agent (waiting for the model).
    Report { run_id: String, message: String },
    /// A request to the client; the answer (or the client's error) goes to `reply`.
    ClientRequest {
        method: String,
        params: Value,
        reply: Sender<Result<Value, ResponseError>>,
    },
    /// The run's last word: progress `end`, then the answer.
    Finished(RunFinished),
}

pub(crate) struct RunFinished {
    pub run_id: String,
    pub status: AnswerStatus,
    /// `done`, `cancelled` or `failed: <reason>`.
    pub end_message: String,
    pub markdown: String,
    /// `.punie/answers/<runId>.md`, written for clients that can show a document.
    pub answer_file: Option<PathBuf>,
}

/// What the client can do, read once from `initialize`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientCaps {
    pub work_done_progress: bool,
    pub show_document: bool,
    pub apply_edit: bool,
    pub document_changes: bool,
    pub create_files: bool,
    pub configuration: bool,
    pub punie_answer: bool,
    pub encoding: PositionEncoding,
}

/// Why we sent a request to the client, to route its answer.
enum Pending {
    ProgressCreate { run_id: String },
    LoadProgressCreate { generation: u64 },
    Configuration,
    Forward(Sender<Result<Value, ResponseError>>),
    Ignore,
}

/// One run the server knows about: queued, running, or finishing.
pub(crate) struct Run {
    pub spec: Arc<RunSpec>,
    pub cancel: CancelFlag,
    pub progress: Option<Progress>,
    pub thread: Option<JoinHandle<()>>,
    /// Streamed text not yet reported, and when the last text report went out.
    pub text_tail: String,
    pub text_dirty: bool,
    pub last_text_report: Option<Instant>,
}

/// The model load and its progress.
struct EngineState {
    handle: Arc<EngineHandle>,
    spec: EngineSpec,
    /// Bumped on every (re)spawn, so a late answer to an old create request is ignored.
    generation: u64,
    progress: Option<Progress>,
    /// The load outcome has been handled (progress ended, error shown).
    settled: bool,
    /// The load error, once known: every later run fails fast with it.
    error: Option<EngineError>,
}

pub(crate) struct Server {
    sender: Sender<Outgoing>,
    task_sender: Sender<Task>,
    pub(crate) initialized: bool,
    /// The client sent `initialized`: requests to it may go out.
    pub(crate) client_ready: bool,
    pub(crate) caps: ClientCaps,
    pub(crate) roots: Vec<PathBuf>,
    pub(crate) documents: DocumentStore,
    pub(crate) settings: SettingsStore,
    engine: Option<EngineState>,
    engine_generation: u64,
    pub(crate) runs: HashMap<String, Run>,
    queue: VecDeque<String>,
    active: Option<String>,
    pending: HashMap<RequestId, Pending>,
    next_request_id: i32,
    next_run: u64,
    pub(crate) shared: SharedRunState,
    /// Set by `shutdown`: the id to answer once cancelled runs have ended, and the deadline.
    shutdown: Option<(RequestId, Instant)>,
    pub(crate) shutdown_requested: bool,
    /// Progress of runs that ended before the client accepted their token: the `begin` and
    /// `end` go out when it does.
    ended_progress: HashMap<String, Progress>,
    /// A run whose `punie.ask` response is being sent; it is scheduled right after.
    pub(crate) schedule_after_response: Option<String>,
}

/// Runs the loop until `exit` or the end of input.
pub(crate) fn main_loop(incoming: Receiver<Incoming>, sender: Sender<Outgoing>) -> ServerExit {
    let (task_sender, task_receiver) = crossbeam_channel::unbounded::<Task>();
    let ticker = crossbeam_channel::tick(TICK);
    let mut server = Server::new(sender, task_sender);
    loop {
        let event = select! {
            recv(incoming) -> message => match message {
                Ok(message) => Event::Lsp(message),
                Err(_) => Event::Closed,
            },
            recv(task_receiver) -> task => match task {
                Ok(task) => Event::Task(task),
                // The server holds a sender, so this cannot happen; treat it as a tick.
                Err(_) => Event::Tick,
            },
            recv(ticker) -> _ => Event::Tick,
        };
        if let Some(exit) = server.handle_event(event) {
            server.stop(&task_receiver);
            return exit;
        }
    }
}

impl Server {
    fn new(sender: Sender<Outgoing>, task_sender: Sender<Task>) -> Server {
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
            runs: HashMap::new(),
            queue: VecDeque::new(),
            active: None,
            pending: HashMap::new(),
            next_request_id: 0,
            next_run: 0,
            shared: SharedRunState::default(),
            shutdown: None,
            shutdown_requested: false,
            schedule_after_response: None,
            ended_progress: HashMap::new(),
        }
    }

    fn handle_event(&mut self, event: Event) -> Option<ServerExit> {
        match event {
            Event::Lsp(Incoming::Message(Message::Request(request))) => self.on_request(request),
            Event::Lsp(Incoming::Message(Message::Notification(notification))) => {
                if notification.method == "exit" {
                    return Some(ServerExit {
                        clean: self.shutdown_requested,
                    });
                }
                self.on_notification(notification);
            }
            Event::Lsp(Incoming::Message(Message::Response(response))) => {
                self.on_response(response)
            }
            Event::Lsp(Incoming::Invalid { id, code, message }) => {
                tracing::warn!("malformed message from the client: {message}");
                self.send(Outgoing::RawError {
                    id: id.unwrap_or(Value::Null),
                    code,
                    message,
                });
            }
            Event::Closed => {
                tracing::info!("the client closed the connection");
                return Some(ServerExit {
                    clean: self.shutdown_requested,
                });
            }
            Event::Task(task) => self.on_task(task),
            Event::Tick => self.on_tick(),
        }
        None
    }

    /// Routes a request. Every request gets exactly one response, including failed ones: a
    /// handler's `Err` becomes a JSON-RPC error, and a panic becomes `InternalError` (one
    /// broken request must not take the server down).
    fn on_request(&mut self, request: Request) {
        let id = request.id.clone();
        if !self.initialized && request.method != "initialize" {
            self.respond_err(
                id,
                ErrorCode::ServerNotInitialized as i32,
                "the server is not initialized".to_owned(),
            );
            return;
        }
        if self.shutdown_requested {
            self.respond_err(
                id,
                ErrorCode::InvalidRequest as i32,
                "the server is shutting down".to_owned(),
            );
            return;
        }
        let method = request.method.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| match method.as_str() {
            // Lifecycle: state changes on the loop.
            "initialize" => handlers::initialize::handle_initialize(self, request.params),
            "shutdown" => handlers::shutdown::handle_shutdown(self, id.clone()),
            // Answered at once from the current documents; never waits on the model.
            "textDocument/codeAction" => {
                handlers::code_action::handle_code_action(self, request.params)
            }
            // Validates, answers at once, and starts the run on its own thread.
            "workspace/executeCommand" => {
                handlers::execute_command::handle_execute_command(self, request.params)
            }
            _ => Err(HandlerError::new(
                ErrorCode::MethodNotFound,
                format!("unknown method {method}"),
            )),
        }));
        match result {
            Ok(Ok(Some(value))) => {
                self.send(Message::Response(Response::new_ok(id, value)).into());
                if let Some(run_id) = self.schedule_after_response.take() {
                    self.schedule_run(&run_id);
                }
            }
            // `shutdown` answers later, once its runs have ended.
            Ok(Ok(None)) => {}
            Ok(Err(err)) => self.respond_err(id, err.code, err.message),
            Err(_) => {
                tracing::error!("handler for {method} panicked");
                self.show_message(
                    MessageType::ERROR,
                    "Punie hit an internal error; see the server log",
                );
                self.respond_err(
                    id,
                    ErrorCode::InternalError as i32,
                    format!("internal error in {method}"),
                );
            }
        }
    }

    fn on_notification(&mut self, notification: Notification) {
        if !self.initialized {
            return;
        }
        let method = notification.method.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| match method.as_str() {
            "initialized" => handlers::initialized::handle_initialized(self),
            // Document and settings changes apply here, before any later request is read.
            "textDocument/didOpen" => {
                handlers::did_open::handle_did_open(self, notification.params)
            }
            "textDocument/didChange" => {
                handlers::did_change::handle_did_change(self, notification.params)
            }
            "textDocument/didClose" => {
                handlers::did_close::handle_did_close(self, notification.params)
            }
            "workspace/didChangeConfiguration" => {
                handlers::did_change_configuration::handle_did_change_configuration(
                    self,
                    notification.params,
                )
            }
            "window/workDoneProgress/cancel" => {
                handlers::work_done_progress_cancel::handle_work_done_progress_cancel(
                    self,
                    notification.params,
                )
            }
            // Every request is answered at once (runs go to their own thread and are cancelled
            // with punie.cancel), so there is never a pending request to cancel.
            "$/cancelRequest"
            | "$/setTrace"
            | "textDocument/didSave"
            | "workspace/didChangeWorkspaceFolders" => {}
            _ => tracing::debug!("ignoring notification {method}"),
        }));
        if result.is_err() {
            tracing::error!("handler for {method} panicked");
        }
    }

    fn on_response(&mut self, response: Response) {
        let Some(pending) = self.pending.remove(&response.id) else {
            tracing::debug!("response to an unknown request {}", response.id);
            return;
        };
        let outcome = match response.error {
            Some(error) => Err(error),
            None => Ok(response.result.unwrap_or(Value::Null)),
        };
        match pending {
            Pending::ProgressCreate { run_id } => {
                let accepted = outcome.is_ok();
                // A run that already ended left its progress in `ended_progress`.
                let mut ended = self.ended_progress.remove(&run_id);
                let progress = match self.runs.get_mut(&run_id) {
                    Some(run) => run.progress.as_mut(),
                    None => ended.as_mut(),
                };
                if let Some(progress) = progress {
                    for notification in progress.created(accepted) {
                        let _ = self.sender.send(Message::Notification(notification).into());
                    }
                }
            }
            Pending::LoadProgressCreate { generation } => {
                let accepted = outcome.is_ok();
                if let Some(engine) = self
                    .engine
                    .as_mut()
                    .filter(|engine| engine.generation == generation)
                    && let Some(progress) = engine.progress.as_mut()
                {
                    for notification in progress.created(accepted) {
                        let _ = self.sender.send(Message::Notification(notification).into());
                    }
                }
            }
            Pending::Configuration => {
                if let Ok(Value::Array(items)) = outcome
                    && let Some(section) = items.into_iter().next()
                {
                    self.apply_settings(&section);
                }
            }
            Pending::Forward(reply) => {
                let _ = reply.send(outcome);
            }
            Pending::Ignore => {}
        }
    }

    fn on_task(&mut self, task: Task) {
        match task {
            Task::Run { run_id, event } => self.on_run_event(&run_id, event),
            Task::Report { run_id, message } => self.report(&run_id, &message),
            Task::ClientRequest {
                method,
                params,
                reply,
            } => {
                self.send_request(&method, params, Pending::Forward(reply));
            }
            Task::Finished(finished) => self.on_run_finished(finished),
        }
    }

    fn on_run_event(&mut self, run_id: &str, event: RunEvent) {
        if let RunEvent::Text { text, .. } = &event {
            if let Some(run) = self.runs.get_mut(run_id) {
                run.text_tail.push_str(text);
                let keep_from = run
                    .text_tail
                    .char_indices()
                    .rev()
                    .nth(59)
                    .map(|(idx, _)| idx)
                    .unwrap_or(0);
                run.text_tail.drain(..keep_from);
                run.text_dirty = true;
            }
            return;
        }
        if let Some(message) = event.progress_message() {
            self.report(run_id, &message);
        }
    }

    fn on_tick(&mut self) {
        self.poll_engine_load();
        let now = Instant::now();
        let mut reports = Vec::new();
        for (run_id, run) in &mut self.runs {
            let due = run
                .last_text_report
                .is_none_or(|last| now.duration_since(last) >= TEXT_REPORT_INTERVAL);
            if run.text_dirty && due {
                run.text_dirty = false;
                run.last_text_report = Some(now);
                let snippet: String = run
                    .text_tail
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                reports.push((run_id.clone(), format!("generating: …{snippet}")));
            }
        }
        for (run_id, message) in reports {
            self.report(&run_id, &message);
        }
        if let Some((_, deadline)) = &self.shutdown
            && (self.runs.is_empty() || Instant::now() >= *deadline)
        {
            self.finish_shutdown();
        }
    }

    // ---- runs ----

    /// Registers and schedules a validated run. Returns the run id and its progress token.
    pub(crate) fn start_run(
        &mut self,
        spec: RunSpec,
        client_token: Option<NumberOrString>,
    ) -> (String, Option<NumberOrString>) {
        self.next_run += 1;
        let run_id = format!("{}-{}", run_id_prefix(), self.next_run);
        let spec = Arc::new(RunSpec {
            run_id: run_id.clone(),
            ..spec
        });
        let mut begin_notification = None;
        let progress = match client_token {
            Some(token) => {
                let (progress, begin) = Progress::started(token, "starting");
                begin_notification = Some(begin);
                Some(progress)
            }
            None if self.caps.work_done_progress => Some(Progress::pending(
                NumberOrString::String(format!("punie/run/{run_id}")),
                "starting",
            )),
            None => None,
        };
        let token = progress.as_ref().map(|progress| progress.token().clone());
        self.runs.insert(
            run_id.clone(),
            Run {
                spec,
                cancel: CancelFlag::default(),
                progress,
                thread: None,
                text_tail: String::new(),
                text_dirty: false,
                last_text_report: None,
            },
        );
        if let Some(begin) = begin_notification {
            self.send(Message::Notification(begin).into());
        }
        (run_id, token)
    }

    /// After the `punie.ask` response went out: ask for the progress token and schedule.
    pub(crate) fn schedule_run(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        if let Some(NumberOrString::String(token)) =
            run.progress.as_ref().map(|p| p.token().clone())
            && token.starts_with("punie/run/")
        {
            let params = serde_json::json!({ "token": token });
            self.send_request(
                "window/workDoneProgress/create",
                params,
                Pending::ProgressCreate {
                    run_id: run_id.to_owned(),
                },
            );
        }
        if let Some(error) = self.engine.as_ref().and_then(|engine| engine.error.clone()) {
            // A model that failed to load fails every run at once, with the same reason.
            self.finish_without_thread(
                run_id,
                AnswerStatus::Failed,
                &engine_failure_reason(&error),
            );
            return;
        }
        self.queue.push_back(run_id.to_owned());
        self.pump_queue();
    }

    /// Starts the next queued run when the engine is free, and tells the others their place.
    fn pump_queue(&mut self) {
        if self.active.is_none()
            && let Some(run_id) = self.queue.pop_front()
        {
            self.spawn_run_thread(&run_id);
        }
        let ahead_base = usize::from(self.active.is_some());
        let queued: Vec<String> = self.queue.iter().cloned().collect();
        for (idx, run_id) in queued.iter().enumerate() {
            self.report(run_id, &format!("queued ({} ahead)", ahead_base + idx));
        }
    }

    fn spawn_run_thread(&mut self, run_id: &str) {
        let Some(engine) = self.engine.as_ref().map(|engine| engine.handle.clone()) else {
            self.finish_without_thread(run_id, AnswerStatus::Failed, "the engine is not running");
            return;
        };
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        let context = RunContext {
            spec: run.spec.clone(),
            engine,
            settings: self.settings.settings().clone(),
            caps: self.caps.clone(),
            documents: self.documents.clone(),
            tasks: self.task_sender.clone(),
            cancel: run.cancel.clone(),
            shared: self.shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("punie-run-{run_id}"))
            .spawn(move || super::run::execute(context));
        match thread {
            Ok(thread) => {
                run.thread = Some(thread);
                self.active = Some(run_id.to_owned());
            }
            Err(err) => {
                let reason = format!("cannot start a thread for the run: {err}");
                self.finish_without_thread(run_id, AnswerStatus::Failed, &reason);
            }
        }
    }

    /// Cancels a run. Returns false for unknown or finished runs.
    pub(crate) fn cancel_run(&mut self, run_id: &str) -> bool {
        let Some(run) = self.runs.get(run_id) else {
            return false;
        };
        run.cancel.cancel();
        if let Some(position) = self.queue.iter().position(|queued| queued == run_id) {
            // A queued run has no thread: it ends here, at once.
            self.queue.remove(position);
            self.finish_without_thread(run_id, AnswerStatus::Cancelled, "");
            self.pump_queue();
        }
        true
    }

    pub(crate) fn run_for_token(&self, token: &NumberOrString) -> Option<String> {
        self.runs
            .iter()
            .find(|(_, run)| {
                run.progress
                    .as_ref()
                    .is_some_and(|progress| progress.token() == token)
            })
            .map(|(run_id, _)| run_id.clone())
    }

    fn finish_without_thread(&mut self, run_id: &str, status: AnswerStatus, reason: &str) {
        let end_message = match status {
            AnswerStatus::Done => "done".to_owned(),
            AnswerStatus::Truncated => format!("truncated: {reason}"),
            AnswerStatus::Cancelled => "cancelled".to_owned(),
            AnswerStatus::Failed => format!("failed: {reason}"),
        };
        let markdown = if status == AnswerStatus::Failed {
            reason.to_owned()
        } else {
            String::new()
        };
        self.on_run_finished(RunFinished {
            run_id: run_id.to_owned(),
            status,
            end_message,
            markdown,
            answer_file: None,
        });
    }

    fn on_run_finished(&mut self, finished: RunFinished) {
        let Some(mut run) = self.runs.remove(&finished.run_id) else {
            return;
        };
        if let Some(mut progress) = run.progress.take() {
            match progress.end(&finished.end_message) {
                Some(end) => self.send(Message::Notification(end).into()),
                None if progress.is_pending() => {
                    self.ended_progress
                        .insert(finished.run_id.clone(), progress);
                }
                None => {}
            }
        }
        self.deliver_answer(&run, &finished);
        if let Some(thread) = run.thread.take() {
            // `Finished` is the thread's last act, so this returns at once.
            let _ = thread.join();
        }
        if self.active.as_deref() == Some(finished.run_id.as_str()) {
            self.active = None;
        }
        self.pump_queue();
    }

    fn deliver_answer(&mut self, run: &Run, finished: &RunFinished) {
        if self.caps.punie_answer {
            let params = AnswerParams {
                run_id: finished.run_id.clone(),
                uri: run.spec.uri.clone(),
                range: run.spec.range,
                markdown: finished.markdown.clone(),
                status: finished.status,
            };
            let notification =
                Notification::new(super::ext::ANSWER_NOTIFICATION.to_owned(), params);
            self.send(Message::Notification(notification).into());
            return;
        }
        let (kind, text) = match finished.status {
            AnswerStatus::Done => (MessageType::INFO, finished.markdown.clone()),
            AnswerStatus::Truncated => (
                MessageType::WARNING,
                format!("Punie (truncated):\n\n{}", finished.markdown),
            ),
            AnswerStatus::Cancelled if finished.markdown.trim().is_empty() => {
                (MessageType::INFO, "Punie: cancelled".to_owned())
            }
            AnswerStatus::Cancelled => (
                MessageType::INFO,
                format!("Punie (cancelled):\n\n{}", finished.markdown),
            ),
            AnswerStatus::Failed => (
                MessageType::ERROR,
                format!("Punie failed: {}", finished.markdown),
            ),
        };
        self.show_message(kind, &text);
        if let Some(path) = &finished.answer_file
            && let Some(uri) = super::uri::from_path(path)
        {
            let params =
                serde_json::json!({"uri": uri.as_str(), "external": false, "takeFocus": false});
            self.send_request("window/showDocument", params, Pending::Ignore);
        }
    }

    fn report(&mut self, run_id: &str, message: &str) {
        if let Some(progress) = self
            .runs
            .get_mut(run_id)
            .and_then(|run| run.progress.as_mut())
            && let Some(notification) = progress.report(message)
        {
            let _ = self.sender.send(Message::Notification(notification).into());
        }
    }

    // ---- engine ----

    /// Starts (or restarts, when the SPEC changed) the engine; the model loads in the background.
    pub(crate) fn ensure_engine(&mut self) {
        let spec = self.settings.settings().engine.clone();
        if self
            .engine
            .as_ref()
            .is_some_and(|engine| engine.spec == spec)
        {
            return;
        }
        self.engine_generation += 1;
        let generation = self.engine_generation;
        tracing::info!("starting engine {spec}");
        let config = EngineConfig::from_env().unwrap_or_else(|err| {
            tracing::warn!("{err}; using the defaults");
            EngineConfig {
                default_model: default_model_path(),
                ..EngineConfig::default()
            }
        });
        let handle = Arc::new(EngineHandle::spawn(spec.clone(), config));
        let old = self.engine.replace(EngineState {
            handle,
            spec,
            generation,
            progress: None,
            settled: false,
            error: None,
        });
        if let Some(mut old) = old
            && let Some(progress) = old.progress.as_mut()
            && let Some(end) = progress.end("cancelled")
        {
            self.send(Message::Notification(end).into());
        }
        // The old engine's handle lives on in any run still using it and is dropped (its
        // thread joined) with the last of them. Progress waits for `initialized`: the server
        // may not send requests before the client has the `initialize` response.
        if self.client_ready {
            self.poll_engine_load();
            self.start_load_progress();
        }
    }

    /// "Loading model…" progress, when the load is still going on.
    pub(crate) fn start_load_progress(&mut self) {
        if !self.caps.work_done_progress {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.settled || engine.progress.is_some() {
            return;
        }
        let generation = engine.generation;
        let token = format!("punie/load/{generation}");
        engine.progress = Some(Progress::pending(
            NumberOrString::String(token.clone()),
            "Loading model…",
        ));
        self.send_request(
            "window/workDoneProgress/create",
            serde_json::json!({ "token": token }),
            Pending::LoadProgressCreate { generation },
        );
    }

    fn poll_engine_load(&mut self) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.settled {
            return;
        }
        let Some(state) = engine.handle.load_state() else {
            return;
        };
        engine.settled = true;
        let end_message = match &state {
            Ok(description) => {
                tracing::info!("engine ready: {description}");
                "done".to_owned()
            }
            Err(error) => format!("failed: {}", engine_failure_reason(error)),
        };
        let end = engine
            .progress
            .as_mut()
            .and_then(|progress| progress.end(&end_message));
        if let Err(error) = state {
            engine.error = Some(error.clone());
            let message = format!("Punie could not load its model: {error}");
            if let Some(end) = end {
                self.send(Message::Notification(end).into());
            }
            self.show_message(MessageType::ERROR, &message);
        } else if let Some(end) = end {
            self.send(Message::Notification(end).into());
        }
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
            // "Allow for this session" lasts until the policy setting changes.
            self.shared
                .session_allowed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
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

    // ---- shutdown ----

    /// `shutdown`: cancel every run; answer once they have ended (or after a grace period).
    pub(crate) fn begin_shutdown(&mut self, id: RequestId) {
        self.shutdown_requested = true;
        let run_ids: Vec<String> = self.runs.keys().cloned().collect();
        for run_id in run_ids {
            self.cancel_run(&run_id);
        }
        self.shutdown = Some((id, Instant::now() + SHUTDOWN_GRACE));
        if self.runs.is_empty() {
            self.finish_shutdown();
        }
    }

    fn finish_shutdown(&mut self) {
        if let Some((id, _)) = self.shutdown.take() {
            self.send(Message::Response(Response::new_ok(id, Value::Null)).into());
        }
    }

    /// Leaving the loop: cancel what still runs, let the threads end, join them.
    fn stop(&mut self, tasks: &Receiver<Task>) {
        for run in self.runs.values() {
            run.cancel.cancel();
        }
        // Cancelled runs stop within 100 ms; while they wind down they may still ask the loop
        // for things (a client request), so keep serving their tasks until each has ended.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.runs.values().any(|run| run.thread.is_some()) && Instant::now() < deadline {
            match tasks.recv_timeout(TICK) {
                Ok(Task::ClientRequest { reply, .. }) => {
                    let _ = reply.send(Err(ResponseError {
                        code: ErrorCode::RequestCanceled as i32,
                        message: "the server is exiting".to_owned(),
                        data: None,
                    }));
                }
                Ok(Task::Finished(finished)) => {
                    if let Some(mut run) = self.runs.remove(&finished.run_id)
                        && let Some(thread) = run.thread.take()
                    {
                        let _ = thread.join();
                    }
                }
                Ok(_) | Err(_) => {}
            }
        }
        if let Some(engine) = self.engine.take()
            && engine.handle.load_state().is_none()
        {
            // Dropping a loading engine joins its thread, which would wait for the whole
            // model to load; the process is about to end, so let it go.
            std::mem::forget(engine.handle);
        }
    }

    // ---- output ----

    pub(crate) fn send(&self, outgoing: Outgoing) {
        // A closed writer means the client is gone; the loop notices when input ends.
        let _ = self.sender.send(outgoing);
    }

    fn respond_err(&self, id: RequestId, code: i32, message: String) {
        self.send(Message::Response(Response::new_err(id, code, message)).into());
    }

    pub(crate) fn show_message(&self, kind: MessageType, message: &str) {
        let params = ShowMessageParams {
            typ: kind,
            message: message.to_owned(),
        };
        self.send(
            Message::Notification(Notification::new("window/showMessage".to_owned(), params))
                .into(),
        );
    }

    fn send_request(&mut self, method: &str, params: Value, pending: Pending) {
        self.next_request_id += 1;
        let id = RequestId::from(self.next_request_id);
        self.pending.insert(id.clone(), pending);
        self.send(Message::Request(Request::new(id, method.to_owned(), params)).into());
    }
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

pub(crate) type HandlerResult = Result<Option<Value>, HandlerError>;

/// The reason in `failed: <reason>`. A missing model has the exact wording of INTERFACES.md.
pub(crate) fn engine_failure_reason(error: &EngineError) -> String {
    match error {
        EngineError::ModelMissing { .. } => {
            "model not installed: run punie models fetch".to_owned()
        }
        other => other.to_string(),
    }
}

/// Run ids: unique across restarts, since answers are kept in `.punie/answers/<runId>.md`.
fn run_id_prefix() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    format!("{millis:x}")
}

fn default_model_path() -> Option<PathBuf> {
    None
}
