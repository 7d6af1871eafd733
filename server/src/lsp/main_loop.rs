//! The event loop: one thread, one `select!` over a closed [`Event`] enum, and the dispatch
//! table that says where each message is handled.
//!
//! Everything that can wake the server is an [`Event`]: a message from the client, a [`Task`]
//! from a run thread (a progress step, a request it needs sent to the client, its end), or a
//! tick (model-load polling, throttled text streaming, deadlines), armed only while one of
//! those is under way, so an idle server sleeps until a message comes. State changes happen only
//! here, so a run that starts after a `didChange` always sees the change. The state itself is
//! [`Server`] (`global_state`); runs are scheduled in `scheduling`, the engine is started and
//! watched in `engine_lifecycle`.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};
use lsp_server::{ErrorCode, Message, Notification, Request, Response, ResponseError};
use lsp_types::MessageType;
use serde_json::Value;

use crate::agent::{RunEvent, RunStatus};

use super::global_state::{Handled, HandlerError, Pending};
use super::{ServerExit, handlers};
use crate::jsonrpc::{Incoming, Outgoing};

pub(crate) use super::global_state::{ClientCaps, Server};

/// How often the loop wakes without a message: polls the model load, flushes streamed text,
/// checks deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(50);

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
    pub status: RunStatus,
    /// The answer, or the reason of a failure.
    pub markdown: String,
    /// `.punie/answers/<runId>.md`, written for clients that can show a document.
    pub answer_file: Option<std::path::PathBuf>,
}

/// Runs the loop until `exit` or the end of input.
pub(crate) fn main_loop(incoming: Receiver<Incoming>, sender: Sender<Outgoing>) -> ServerExit {
    let (task_sender, task_receiver) = crossbeam_channel::unbounded::<Task>();
    let ticker = crossbeam_channel::tick(TICK);
    let idle = crossbeam_channel::never();
    let mut server = Server::new(sender, task_sender);
    loop {
        let tick = if server.needs_tick() { &ticker } else { &idle };
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
            recv(tick) -> _ => Event::Tick,
        };
        if let Some(exit) = server.handle_event(event) {
            server.stop(&task_receiver);
            return exit;
        }
    }
}

impl Server {
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
            Ok(Ok(Handled::Reply(value))) => {
                self.send(Message::Response(Response::new_ok(id, value)).into());
            }
            Ok(Ok(Handled::ReplyThenSchedule { value, run_id })) => {
                // The response goes out before the run asks for its progress token or starts,
                // so the client knows the run id and token when the first progress arrives.
                self.send(Message::Response(Response::new_ok(id, value)).into());
                self.schedule_run(&run_id);
            }
            // `shutdown` answers later, once its runs have ended.
            Ok(Ok(Handled::Later)) => {}
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
            "workspace/didChangeWorkspaceFolders" => {
                handlers::did_change_workspace_folders::handle_did_change_workspace_folders(
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
            "$/cancelRequest" | "$/setTrace" | "textDocument/didSave" => {}
            _ => tracing::debug!("ignoring notification {method}"),
        }));
        if result.is_err() {
            tracing::error!("handler for {method} panicked");
        }
    }

    fn on_response(&mut self, response: Response) {
        let Some((pending, _)) = self.pending.remove(&response.id) else {
            tracing::debug!("response to an unknown request {}", response.id);
            return;
        };
        let outcome = match response.error {
            Some(error) => Err(error),
            None => Ok(response.result.unwrap_or(Value::Null)),
        };
        match pending {
            Pending::ProgressCreate { run_id } => {
                self.run_progress_created(&run_id, outcome.is_ok())
            }
            Pending::LoadProgressCreate { generation } => {
                self.load_progress_created(generation, outcome.is_ok())
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

    /// Whether anything waits on the clock: a model loading, a run (streamed text is sent at
    /// most every `TEXT_REPORT_INTERVAL`), a shutdown's grace period, a request to the client.
    fn needs_tick(&self) -> bool {
        self.engine_loading()
            || !self.runs.is_empty()
            || self.shutdown.is_some()
            || !self.pending.is_empty()
    }

    fn on_tick(&mut self) {
        self.poll_engine_load();
        self.flush_streamed_text();
        self.check_shutdown_deadline();
        self.expire_pending(std::time::Instant::now());
    }
}
