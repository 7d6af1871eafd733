//! The ACP agent's event loop: one thread, one `select!` over client messages and the tasks of
//! prompt threads, and the dispatch table. Sessions, the engine and the queue of prompts live
//! here ([`Agent`]); a prompt runs on its own thread (`prompts`), which streams its updates
//! straight to the writer and asks the loop only to send requests to the client.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use serde_json::{Value, json};

use crate::agent::Conversation;
use crate::cancel::CancelFlag;
use crate::engine::{EngineConfig, EngineHandle, EngineSpec};
use crate::features::{self, Finished, RunQueue, RunResources, SessionApprovals, Settings};

use super::front_end::ClientFs;
use super::sessions::{SessionMeta, SessionStore};
use super::transport::{
    INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, Incoming, METHOD_NOT_FOUND, error_response,
    notification, request, response,
};
use super::wire::{self, ModelChoice};
use super::{AcpOptions, replay};

/// After the input ends, running prompts get this long to wind down.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// What prompt threads send the loop.
pub(crate) enum Task {
    /// A request to the client; its answer (result or error object) goes to `reply`.
    ClientRequest {
        method: String,
        params: Value,
        reply: Sender<Result<Value, Value>>,
    },
    /// A prompt's run ended.
    Finished {
        run_id: String,
        finished: Box<Finished>,
    },
}

/// A handler's failure: a JSON-RPC error code and message.
pub(crate) struct Failure {
    pub code: i64,
    pub message: String,
}

impl Failure {
    pub(crate) fn invalid_params(message: impl Into<String>) -> Failure {
        Failure {
            code: INVALID_PARAMS,
            message: message.into(),
        }
    }
}

/// What a request handler did.
pub(crate) enum Handled {
    /// Answer now with this result, then send these notifications.
    Reply { result: Value, then: Vec<Value> },
    /// The answer comes later (`session/prompt`, when its run ends).
    Later,
}

impl Handled {
    pub(crate) fn reply(result: Value) -> Handled {
        Handled::Reply {
            result,
            then: Vec::new(),
        }
    }
}

/// One session: where it works, what it said so far, which model it uses.
pub(crate) struct Session {
    pub cwd: PathBuf,
    pub conversation: Conversation,
    pub model: String,
    pub approvals: SessionApprovals,
    pub title: Option<String>,
    /// The run of the prompt in progress, if any: one prompt at a time per session.
    pub active: Option<String>,
}

/// One prompt: queued or running.
pub(crate) struct PromptRun {
    pub session_id: String,
    pub request_id: Value,
    pub cancel: CancelFlag,
    /// What runs, until it starts.
    pub input: Option<crate::features::RunInput>,
    pub thread: Option<JoinHandle<()>>,
}

pub(crate) struct Agent {
    pub out: Sender<Value>,
    pub tasks: Sender<Task>,
    pub options: AcpOptions,
    pub fs: ClientFs,
    pub initialized: bool,
    pub sessions: HashMap<String, Session>,
    pub runs: HashMap<String, PromptRun>,
    pub queue: RunQueue,
    pub engine: Option<(EngineSpec, Arc<EngineHandle>)>,
    pub resources: RunResources,
    pub store: Option<SessionStore>,
    pub choices: Vec<(ModelChoice, EngineSpec)>,
    /// Problems of the user's policy file already told (each once, before an answer).
    pub policy_problems_told: Vec<String>,
    pending: HashMap<i64, Sender<Result<Value, Value>>>,
    next_request_id: i64,
}

/// Serves until the input ends.
pub(crate) fn main_loop(incoming: Receiver<Incoming>, out: Sender<Value>, options: AcpOptions) {
    let (tasks, task_receiver) = crossbeam_channel::unbounded::<Task>();
    let store = SessionStore::open()
        .inspect_err(|err| tracing::warn!("sessions will not be saved: {err:#}"))
        .ok();
    let choices = super::models::choices(options.engine.as_ref());
    let mut agent = Agent {
        out,
        tasks,
        options,
        fs: ClientFs::default(),
        initialized: false,
        sessions: HashMap::new(),
        runs: HashMap::new(),
        queue: RunQueue::default(),
        engine: None,
        resources: RunResources::default(),
        store,
        choices,
        policy_problems_told: Vec::new(),
        pending: HashMap::new(),
        next_request_id: 0,
    };
    loop {
        select! {
            recv(incoming) -> message => match message {
                Ok(message) => agent.on_message(message),
                Err(_) => break,
            },
            recv(task_receiver) -> task => {
                if let Ok(task) = task {
                    agent.on_task(task);
                }
            }
        }
    }
    agent.stop(&task_receiver);
}

impl Agent {
    fn on_message(&mut self, message: Incoming) {
        match message {
            Incoming::Request { id, method, params } => self.on_request(id, &method, params),
            Incoming::Notification { method, params } => self.on_notification(&method, &params),
            Incoming::Response { id, result } => {
                let reply = id.as_i64().and_then(|id| self.pending.remove(&id));
                match reply {
                    Some(reply) => {
                        let _ = reply.send(result);
                    }
                    None => tracing::debug!("response to an unknown request {id}"),
                }
            }
            Incoming::Invalid { id, code, message } => {
                tracing::warn!("malformed message from the client: {message}");
                self.send(error_response(id, code, &message));
            }
        }
    }

    /// Routes a request. Every request gets exactly one response; a handler's panic becomes
    /// an internal error, and the agent keeps serving.
    fn on_request(&mut self, id: Value, method: &str, params: Value) {
        if !self.initialized && method != "initialize" {
            self.send(error_response(id, INVALID_REQUEST, "initialize first"));
            return;
        }
        let request_id = id.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| match method {
            "initialize" => self.handle_initialize(&params),
            "authenticate" => Ok(Handled::reply(json!({}))),
            "session/new" => self.handle_new_session(&params),
            "session/load" => self.handle_load_session(&params),
            "session/list" => self.handle_list_sessions(&params),
            "session/set_config_option" => self.handle_set_config_option(&params),
            // Answered when its run ends.
            "session/prompt" => self.handle_prompt(request_id, &params),
            _ => Err(Failure {
                code: METHOD_NOT_FOUND,
                message: format!("unknown method {method}"),
            }),
        }));
        match result {
            Ok(Ok(Handled::Reply { result, then })) => {
                self.send(response(id, result));
                for message in then {
                    self.send(message);
                }
            }
            Ok(Ok(Handled::Later)) => {}
            Ok(Err(failure)) => self.send(error_response(id, failure.code, &failure.message)),
            Err(_) => {
                tracing::error!("handler for {method} panicked");
                self.send(error_response(
                    id,
                    INTERNAL_ERROR,
                    &format!("internal error in {method}"),
                ));
            }
        }
    }

    fn on_notification(&mut self, method: &str, params: &Value) {
        match method {
            "session/cancel" => match params["sessionId"].as_str() {
                Some(session_id) => self.cancel_session(session_id),
                None => tracing::warn!("session/cancel without a sessionId"),
            },
            _ => tracing::debug!("ignoring notification {method}"),
        }
    }

    fn on_task(&mut self, task: Task) {
        match task {
            Task::ClientRequest {
                method,
                params,
                reply,
            } => {
                self.next_request_id += 1;
                self.pending.insert(self.next_request_id, reply);
                self.send(request(self.next_request_id, &method, params));
            }
            Task::Finished { run_id, finished } => self.on_run_finished(&run_id, *finished),
        }
    }

    pub(crate) fn send(&self, message: Value) {
        let _ = self.out.send(message);
    }

    pub(crate) fn send_update(&self, session_id: &str, update: Value) {
        self.send(notification(
            "session/update",
            wire::update(session_id, update),
        ));
    }

    // ---- handlers ----

    fn handle_initialize(&mut self, params: &Value) -> Result<Handled, Failure> {
        if !params.is_object() {
            return Err(Failure::invalid_params(
                "initialize: params must be an object",
            ));
        }
        let fs = &params["clientCapabilities"]["fs"];
        self.fs = ClientFs {
            read_text_file: fs["readTextFile"].as_bool() == Some(true),
            write_text_file: fs["writeTextFile"].as_bool() == Some(true),
        };
        self.initialized = true;
        Ok(Handled::reply(wire::initialize_result()))
    }

    fn handle_new_session(&mut self, params: &Value) -> Result<Handled, Failure> {
        let cwd = session_cwd(params)?;
        let conversation = Conversation::new();
        let session_id = conversation.session_id().to_owned();
        let model = self.default_model();
        let result = json!({
            "sessionId": session_id,
            "configOptions": self.config_options(&model),
        });
        self.prepare_for_prompts(&model);
        self.sessions.insert(
            session_id.clone(),
            Session {
                cwd,
                conversation,
                model,
                approvals: SessionApprovals::default(),
                title: None,
                active: None,
            },
        );
        let then = vec![notification(
            "session/update",
            wire::update(&session_id, wire::available_commands()),
        )];
        Ok(Handled::Reply { result, then })
    }

    fn handle_load_session(&mut self, params: &Value) -> Result<Handled, Failure> {
        let cwd = session_cwd(params)?;
        let session_id = params["sessionId"]
            .as_str()
            .ok_or_else(|| Failure::invalid_params("sessionId: missing or not a string"))?
            .to_owned();
        if self
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.active.is_some())
        {
            return Err(Failure::invalid_params(format!(
                "sessionId {session_id}: a prompt is running in it"
            )));
        }
        let store = self.store.as_ref().ok_or_else(|| {
            Failure::invalid_params("no saved sessions: the data directory is not available")
        })?;
        let (meta, saved) = store
            .load(&session_id)
            .map_err(|err| Failure::invalid_params(wire::literal_in_error(&format!("{err:#}"))))?
            .ok_or_else(|| {
                Failure::invalid_params(format!("sessionId {session_id}: no such saved session"))
            })?;
        // The conversation is replayed before the answer, as the spec asks.
        for update in replay::replay(&saved.conversation) {
            self.send_update(&session_id, update);
        }
        let model = if self
            .choices
            .iter()
            .any(|(choice, _)| choice.value == meta.model)
        {
            meta.model.clone()
        } else {
            self.default_model()
        };
        let result = json!({"configOptions": self.config_options(&model)});
        if let Some(engine) = self.engine_for_preparing(&model) {
            features::prepare_continuation(
                &engine,
                &features::profile_for(&self.settings_for(&model, Settings::default())),
                saved.conversation.messages(),
            );
        }
        self.sessions.insert(
            session_id.clone(),
            Session {
                cwd,
                conversation: saved.conversation,
                model,
                approvals: SessionApprovals::default(),
                title: Some(meta.title),
                active: None,
            },
        );
        let then = vec![notification(
            "session/update",
            wire::update(&session_id, wire::available_commands()),
        )];
        Ok(Handled::Reply { result, then })
    }

    fn handle_list_sessions(&mut self, params: &Value) -> Result<Handled, Failure> {
        let cwd = params["cwd"].as_str().map(PathBuf::from);
        let sessions: Vec<Value> = self
            .store
            .as_ref()
            .map(|store| store.list(cwd.as_deref()))
            .unwrap_or_default()
            .into_iter()
            .map(|meta: SessionMeta| {
                json!({
                    "sessionId": meta.session_id,
                    "cwd": meta.cwd.display().to_string(),
                    "title": meta.title,
                    "updatedAt": meta.updated_at,
                })
            })
            .collect();
        Ok(Handled::reply(json!({"sessions": sessions})))
    }

    fn handle_set_config_option(&mut self, params: &Value) -> Result<Handled, Failure> {
        let session_id = params["sessionId"]
            .as_str()
            .ok_or_else(|| Failure::invalid_params("sessionId: missing or not a string"))?;
        if params["configId"].as_str() != Some(wire::MODEL_CONFIG_ID) {
            return Err(Failure::invalid_params(format!(
                "configId: unknown option {} (this agent has `model`)",
                params["configId"]
            )));
        }
        let value = params["value"]
            .as_str()
            .ok_or_else(|| Failure::invalid_params("value: expected a string"))?;
        if !self.choices.iter().any(|(choice, _)| choice.value == value) {
            return Err(Failure::invalid_params(format!(
                "value: {value:?} is not an installed model"
            )));
        }
        let session = self.sessions.get_mut(session_id).ok_or_else(|| {
            Failure::invalid_params(format!("sessionId {session_id}: no such session"))
        })?;
        session.model = value.to_owned();
        self.prepare_for_prompts(value);
        let options = self.config_options(value);
        Ok(Handled::reply(json!({"configOptions": options})))
    }

    // ---- models ----

    pub(crate) fn default_model(&self) -> String {
        self.choices
            .first()
            .map(|(choice, _)| choice.value.clone())
            .unwrap_or_default()
    }

    fn config_options(&self, current: &str) -> Value {
        let choices: Vec<ModelChoice> = self
            .choices
            .iter()
            .map(|(choice, _)| choice.clone())
            .collect();
        wire::config_options(&choices, current)
    }

    /// The engine SPEC of a model selector value.
    pub(crate) fn engine_spec_of(&self, model: &str) -> EngineSpec {
        self.choices
            .iter()
            .find(|(choice, _)| choice.value == model)
            .map(|(_, spec)| spec.clone())
            .unwrap_or(EngineSpec::Default)
    }

    /// The settings a prompt on `model` runs with, over `users`: what the user's policy file
    /// gives (its policy and limits; read for each prompt), which the engine and the profile
    /// do not depend on.
    pub(crate) fn settings_for(&self, model: &str, users: Settings) -> Settings {
        Settings {
            engine: self.engine_spec_of(model),
            profile: self.options.profile.clone(),
            ..users
        }
    }

    /// While the user writes a session's first prompt: loads `model` and has its engine evaluate
    /// what every new conversation starts with (a model loaded at the first prompt made that
    /// prompt wait for the load).
    fn prepare_for_prompts(&mut self, model: &str) {
        if let Some(engine) = self.engine_for_preparing(model) {
            features::prepare_new_conversation(
                &engine,
                &features::profile_for(&self.settings_for(model, Settings::default())),
            );
        }
    }

    /// The engine for `model`, to prepare the next prompt on; `None` while prompts run or wait:
    /// another model would load beside the one they use.
    fn engine_for_preparing(&mut self, model: &str) -> Option<Arc<EngineHandle>> {
        self.runs.is_empty().then(|| self.engine_for(model).1)
    }

    /// The engine for `model`; a different model replaces the loaded one.
    pub(crate) fn engine_for(&mut self, model: &str) -> (EngineSpec, Arc<EngineHandle>) {
        let spec = self.engine_spec_of(model);
        if let Some((loaded, handle)) = &self.engine
            && *loaded == spec
        {
            return (spec, handle.clone());
        }
        let config = EngineConfig::from_env().unwrap_or_else(|err| {
            tracing::warn!("{err}; using the defaults");
            EngineConfig::default()
        });
        let handle = Arc::new(EngineHandle::spawn(spec.clone(), config));
        self.engine = Some((spec.clone(), handle.clone()));
        (spec, handle)
    }

    pub(crate) fn save_session(&self, session_id: &str, profile: &str) {
        let (Some(store), Some(session)) = (&self.store, self.sessions.get(session_id)) else {
            return;
        };
        let meta = SessionMeta {
            session_id: session_id.to_owned(),
            cwd: session.cwd.clone(),
            title: session.title.clone().unwrap_or_default(),
            model: session.model.clone(),
            updated_at: super::sessions::now_rfc3339(),
        };
        if let Err(err) = store.save(&meta, &session.conversation, profile) {
            tracing::warn!("session {session_id} was not saved: {err:#}");
        }
    }

    /// The input ended: cancel what runs, let the threads end.
    fn stop(&mut self, tasks: &Receiver<Task>) {
        for run in self.runs.values() {
            run.cancel.cancel();
        }
        let deadline = Instant::now() + EXIT_GRACE;
        // Only a task changes what is left to wait for, so each wait is for the next task.
        while self.runs.values().any(|run| run.thread.is_some()) && Instant::now() < deadline {
            match tasks.recv_deadline(deadline) {
                Ok(Task::ClientRequest { reply, .. }) => {
                    let _ = reply.send(Err(
                        json!({"code": INTERNAL_ERROR, "message": "the agent is exiting"}),
                    ));
                }
                Ok(Task::Finished { run_id, .. }) => {
                    if let Some(mut run) = self.runs.remove(&run_id)
                        && let Some(thread) = run.thread.take()
                    {
                        let _ = thread.join();
                    }
                }
                Err(_) => {}
            }
        }
        if let Some((_, engine)) = self.engine.take()
            && engine.load_state().is_none()
        {
            // Dropping a loading engine joins its thread; the process is about to end.
            std::mem::forget(engine);
        }
    }
}

/// `cwd`: an absolute directory.
fn session_cwd(params: &Value) -> Result<PathBuf, Failure> {
    if !params.is_object() {
        return Err(Failure::invalid_params("params must be an object"));
    }
    let cwd = params["cwd"]
        .as_str()
        .ok_or_else(|| Failure::invalid_params("cwd: missing or not a string"))?;
    let path = PathBuf::from(cwd);
    if !path.is_absolute() {
        return Err(Failure::invalid_params(format!(
            "cwd: {} is not an absolute path",
            wire::literal_in_error(cwd)
        )));
    }
    path.canonicalize()
        .ok()
        .filter(|path| path.is_dir())
        .ok_or_else(|| {
            Failure::invalid_params(format!(
                "cwd: {} is not a directory",
                wire::literal_in_error(cwd)
            ))
        })
}
