//! [`AcpFrontEnd`]: the features' [`FrontEnd`] for an ACP client. The run's steps become
//! `session/update`s as they happen — prose as `agent_message_chunk` while it is generated
//! (tool-call markup never shown), each Code Mode snippet and each tool inside it as a
//! `tool_call` with `tool_call_update`s, writes as `diff` content — and the client's own
//! services are used where it offers them: `fs/read_text_file` (unsaved buffers),
//! `fs/write_text_file` (edits the editor shows and can undo), `session/request_permission`.
//!
//! How a client shows what it is sent decides how Punie quotes there what a request chose.
//! ACP v1's schema says of a text content block "Clients SHOULD render this text as Markdown";
//! of a tool call's `title`, a permission option's `name` and a plan entry only that they are
//! human-readable. Zed, the reference client, renders (zed-industries/zed,
//! `crates/acp_thread/src/acp_thread.rs` at 00293ca7, `crates/agent_ui/src/acp/thread_view.rs`):
//! - a tool call's `title` by its `kind` (`ToolCall::from_acp`, `update_fields`): `execute`
//!   as text in which every URL is made a link (`Markdown::new_text`, the markdown crate's
//!   `parse_links_only`), `edit` as Markdown after `util::markdown::MarkdownEscaped` (URLs in
//!   text still made links), any other kind as Markdown, its first line only; the card's header
//!   shows the file name instead when the call has one location;
//! - `content` text blocks, and so the permission request's, as Markdown (`ContentBlock::append`,
//!   `create_markdown_block`; `render_tool_call_content` → `render_markdown_output`), open
//!   under the title while the request waits (`is_open = needs_confirmation || …`); a `diff` in
//!   a diff editor (`Diff::finalized`); `locations` as file names;
//! - a permission option's `name` as a button's label (`render_permission_buttons`);
//! - `rawInput`, and `rawOutput` when there is no content, as Markdown: a string as it is, an
//!   object as pretty JSON in a fenced block (`markdown_for_raw_output`), where no JSON string
//!   can end the fence;
//! - `agent_message_chunk` and `agent_thought_chunk`, and plan entries, as Markdown.
//!
//! No quoting survives all three ways of rendering a title, so a title is Punie's own words
//! (the tool's name, `Punie wants to run a command`); what the request, the model or a file
//! chose (the question, the call as the model wrote it, what a snippet printed) is content, in
//! Markdown code (`Prompt::markdown_details`, `wire::literal_content`), and paths are
//! `locations` and diffs. The model's answer stays Markdown: it is the answer.

use crate::sync;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::{Value, json};

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::features::{
    EditOutcome, ExistingFile, FileChange, Finished, FrontEnd, OpenDocument, ProseStream,
    existing_file, text,
};
use crate::policy::{self, Answer, Before, Prompt, PromptKind};
use crate::tools::Tool;

use super::main_loop::Task;
use super::transport::notification;
use super::wire;

/// A tool call's `locations` for `path`: none where the path holds hidden characters, which
/// clients show as they are (a U+202E reorders the name, a line break hides its end); the
/// call's content names it escaped. (`write_file` refuses such names: `sandbox::dispatch`.)
fn locations(path: &str) -> Value {
    if policy::has_hidden(path) {
        json!([])
    } else {
        json!([{ "path": path }])
    }
}

/// How long a request to the client (a permission dialog, a file read or write) may wait.
/// `PUNIE_ACP_REQUEST_TIMEOUT_MS` shortens it for tests of clients that never answer.
fn request_timeout() -> Duration {
    let millis = std::env::var("PUNIE_ACP_REQUEST_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    Duration::from_millis(millis)
}

/// What the client offered in `initialize`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientFs {
    pub read_text_file: bool,
    pub write_text_file: bool,
}

pub(crate) struct AcpFrontEnd {
    pub(crate) session_id: String,
    /// The session's working directory: prompts name paths relative to it.
    pub(crate) root: PathBuf,
    pub(crate) run_id: String,
    pub(crate) fs: ClientFs,
    pub(crate) out: Sender<Value>,
    pub(crate) tasks: Sender<Task>,
    pub(crate) cancel: CancelFlag,
    pub(crate) state: Mutex<StreamState>,
}

/// The live view of the run: the prose stream of the current turn and the open tool calls.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    prose: ProseStream,
    /// Prose sent for the current turn, to tell whether the final answer was already shown.
    turn_prose: String,
    /// The `execute` call of the running snippet.
    snippet_call: Option<String>,
    /// The tool running inside it, and which tool it is.
    tool_call: Option<(String, Option<Tool>)>,
    n_calls: usize,
}

impl AcpFrontEnd {
    pub(crate) fn new(
        session_id: &str,
        root: &Path,
        run_id: &str,
        fs: ClientFs,
        out: Sender<Value>,
        tasks: Sender<Task>,
        cancel: CancelFlag,
    ) -> AcpFrontEnd {
        AcpFrontEnd {
            session_id: session_id.to_owned(),
            root: root.to_owned(),
            run_id: run_id.to_owned(),
            fs,
            out,
            tasks,
            cancel,
            state: Mutex::new(StreamState::default()),
        }
    }

    fn send_update(&self, update: Value) {
        let params = wire::update(&self.session_id, update);
        let _ = self.out.send(notification("session/update", params));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamState> {
        sync::lock(&self.state)
    }

    fn new_call_id(&self, state: &mut StreamState) -> String {
        state.n_calls += 1;
        format!("{}-{}", self.run_id, state.n_calls)
    }

    /// The run ended: what the user has not seen yet — the answer when it was not streamed
    /// (the turn-limit note), and the notes about edits made from it.
    pub(crate) fn finish(&self, finished: &Finished) {
        let answer = finished.outcome.answer.trim();
        let streamed = self.lock().turn_prose.trim().to_owned();
        let mut rest = String::new();
        if !answer.is_empty() && !streamed.contains(answer) {
            rest.push_str(answer);
        }
        if let Some(notes) = finished.markdown.strip_prefix(&finished.outcome.answer) {
            rest.push_str(notes);
        }
        if !rest.trim().is_empty() && !self.cancel.is_cancelled() {
            self.send_update(wire::agent_text(rest.trim_start_matches('\n')));
        }
    }

    /// Sends a request to the client through the main loop and waits for the answer: until
    /// the request timeout at most, giving up early when the run is cancelled or `cancel` is
    /// set (the snippet's time is up; a permission question's cap on waiting passed).
    fn client_request(
        &self,
        method: &str,
        params: Value,
        cancel: &CancelFlag,
    ) -> Option<Result<Value, Value>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.tasks
            .send(Task::ClientRequest {
                method: method.to_owned(),
                params,
                reply,
            })
            .ok()?;
        CancelFlag::joined(&[&self.cancel, cancel], None)
            .recv(&answer, std::time::Instant::now() + request_timeout())
    }

    /// The tool call a file operation belongs to: the running tool's, or a new `edit` call
    /// for an edit made from the answer (after every snippet ended).
    fn call_for_change(&self, change: &FileChange) -> String {
        let mut state = self.lock();
        if let Some((id, _)) = &state.tool_call {
            return id.clone();
        }
        let id = self.new_call_id(&mut state);
        drop(state);
        let path = change
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // The path is in `locations` and the diff, which no client renders as Markdown.
        self.send_update(json!({
            "sessionUpdate": "tool_call",
            "toolCallId": id,
            "title": "Edit a file",
            "kind": "edit",
            "status": "in_progress",
            "locations": locations(&path),
        }));
        id
    }

    /// Shows a file change on the tool call `id`.
    fn send_diff(&self, id: &str, path: &str, old_text: Option<&str>, new_text: &str) {
        self.send_update(json!({
            "sessionUpdate": "tool_call_update",
            "toolCallId": id,
            "locations": locations(path),
            "content": [{"type": "diff", "path": path, "oldText": old_text, "newText": new_text}],
        }));
    }

    /// `change` made on the file as the client has it now (its `fs/read_text_file`, else the
    /// disk): the text it replaces and the whole new text. `None` when it may not be made
    /// there: its code was edited, a whole-file write's text changed at all, a file to create
    /// exists, a file to change is gone ([`text::carried`]).
    fn current(
        &self,
        change: &FileChange,
        cancel: &CancelFlag,
    ) -> Option<(Option<String>, String)> {
        let path = change.path()?;
        match (change, existing_file(self, &self.root, path, cancel)) {
            (FileChange::Create { text, .. }, ExistingFile::Missing) => Some((None, text.clone())),
            (
                FileChange::Replace {
                    before,
                    range,
                    text,
                    ..
                },
                ExistingFile::Text { text: now, .. },
            ) => {
                let range = text::carried(before, &now, range.clone())?;
                let mut after = now.to_string();
                after.replace_range(range, text);
                Some((Some(now.to_string()), after))
            }
            _ => None,
        }
    }
}

impl FrontEnd for AcpFrontEnd {
    fn open_document(&self, path: &Path, cancel: &CancelFlag) -> Option<OpenDocument> {
        let call = self.lock().tool_call.clone();
        if let Some((id, _)) = call {
            self.send_update(json!({
                "sessionUpdate": "tool_call_update",
                "toolCallId": id,
                "locations": locations(&path.display().to_string()),
            }));
        }
        if !self.fs.read_text_file {
            return None;
        }
        let params = json!({"sessionId": self.session_id, "path": path.display().to_string()});
        match self.client_request("fs/read_text_file", params, cancel)? {
            Ok(result) => Some(OpenDocument {
                id: path.display().to_string(),
                text: Arc::new(result["content"].as_str()?.to_owned()),
                version: None,
            }),
            // The client could not read it (a missing file): the disk decides.
            Err(_) => None,
        }
    }

    fn ask_permission(&self, prompt: &Prompt, cancel: &CancelFlag) -> Answer {
        let call = self.lock().tool_call.clone();
        let tool_call_id = match call {
            Some((id, _)) => id,
            None => {
                let mut state = self.lock();
                self.new_call_id(&mut state)
            }
        };
        let kind = match prompt.kind {
            PromptKind::Read => "read",
            PromptKind::Write => "edit",
            PromptKind::Execute => "execute",
            PromptKind::Call => "other",
        };
        // The whole truth in the call's content, which the client renders as Markdown under
        // the title; a write's change also as a diff the client renders.
        let mut content: Vec<Value> = wire::text_content(&prompt.markdown_details())
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(change) = &prompt.change {
            let old_text = match &change.before {
                Before::Text(text) => Some(text.clone()),
                _ => None,
            };
            content.push(json!({
                "type": "diff",
                "path": self.root.join(&change.path).display().to_string(),
                "oldText": old_text,
                "newText": change.after,
            }));
        }
        let options: Vec<Value> = wire::permission_options()
            .as_array()
            .into_iter()
            .flatten()
            .filter(|option| {
                prompt.session.is_some()
                    || !matches!(
                        option["kind"].as_str(),
                        Some("allow_always" | "reject_always")
                    )
            })
            .cloned()
            .collect();
        let params = json!({
            "sessionId": self.session_id,
            "toolCall": {
                "toolCallId": tool_call_id,
                "title": prompt.title(),
                "kind": kind,
                "status": "pending",
                "content": content,
            },
            "options": options,
        });
        // `cancel` is the run's with the cap on waiting for the user: the snippet's clock is
        // stopped while the user reads the question, so its time does not cut it short.
        let outcome = match self.client_request("session/request_permission", params, cancel) {
            Some(Ok(result)) => result["outcome"].clone(),
            _ => return Answer::NoAnswer,
        };
        if outcome["outcome"] != "selected" {
            // `cancelled`: a rejection, not remembered.
            return Answer::NoAnswer;
        }
        match outcome["optionId"].as_str() {
            Some(wire::ALLOW_ONCE) => Answer::AllowOnce,
            Some(wire::ALLOW_ALWAYS) if prompt.session.is_some() => Answer::AllowForSession,
            Some(wire::REJECT_ALWAYS) if prompt.session.is_some() => Answer::DenyForSession,
            Some(wire::REJECT_ONCE) => Answer::Deny,
            _ => Answer::NoAnswer,
        }
    }

    fn apply_change(
        &self,
        change: &FileChange,
        _confirm: bool,
        cancel: &CancelFlag,
    ) -> Option<EditOutcome> {
        let id = self.call_for_change(change);
        let path = change.path()?.display().to_string();
        let outcome = if self.fs.write_text_file {
            // `fs/write_text_file` replaces the whole file: the change is carried to the text
            // as the client has it now, or not made.
            Some(match self.current(change, cancel) {
                Some((old_text, new_text)) => {
                    self.send_diff(&id, &path, old_text.as_deref(), &new_text);
                    let params =
                        json!({"sessionId": self.session_id, "path": path, "content": new_text});
                    match self.client_request("fs/write_text_file", params, cancel) {
                        Some(Ok(_)) => EditOutcome::Applied,
                        Some(Err(error)) => EditOutcome::Failed(format!(
                            "the editor answered: {}",
                            error["message"].as_str().unwrap_or("an error")
                        )),
                        None => EditOutcome::Unanswered,
                    }
                }
                None => EditOutcome::ChangedMeanwhile,
            })
        } else {
            // Written on disk (`features::write_to_disk`), which carries the change itself.
            let old_text = match change {
                FileChange::Replace { before, .. } => Some(before.as_str()),
                FileChange::Create { .. } => None,
            };
            self.send_diff(&id, &path, old_text, &change.after());
            None
        };
        if self.lock().tool_call.is_none() {
            // An edit made from the answer has a call of its own, which ends here.
            let status = match &outcome {
                Some(EditOutcome::Applied) | None => "completed",
                Some(_) => "failed",
            };
            self.send_update(
                json!({"sessionUpdate": "tool_call_update", "toolCallId": id, "status": status}),
            );
        }
        outcome
    }

    fn on_event(&self, event: RunEvent) {
        let mut state = self.lock();
        match event {
            RunEvent::TurnStarted { .. } => {
                state.prose = ProseStream::default();
                state.turn_prose.clear();
            }
            RunEvent::Text { text, .. } => {
                let prose = state.prose.push(&text);
                self.send_prose(&mut state, prose);
            }
            RunEvent::TurnFinished { .. } => {
                let prose = state.prose.finish();
                self.send_prose(&mut state, prose);
            }
            RunEvent::CodeStarted { code, .. } => {
                let id = self.new_call_id(&mut state);
                state.snippet_call = Some(id.clone());
                drop(state);
                self.send_update(json!({
                    "sessionUpdate": "tool_call",
                    "toolCallId": id,
                    "title": "Run Python",
                    "kind": "execute",
                    "status": "in_progress",
                    "rawInput": {"code": code},
                }));
            }
            RunEvent::ToolStarted { tool, label } => {
                let id = self.new_call_id(&mut state);
                let tool = Tool::by_name(&tool);
                state.tool_call = Some((id.clone(), tool));
                drop(state);
                // The call as the model wrote it is content; the title is the tool's name.
                self.send_update(json!({
                    "sessionUpdate": "tool_call",
                    "toolCallId": id,
                    "title": tool.map_or("Tool call", Tool::name),
                    "kind": wire::tool_kind(tool),
                    "status": "in_progress",
                    "content": wire::literal_content(&label),
                    "rawInput": {"call": label},
                }));
            }
            RunEvent::ToolFinished { .. } => {
                if let Some((id, _)) = state.tool_call.take() {
                    drop(state);
                    self.send_update(json!({"sessionUpdate": "tool_call_update", "toolCallId": id, "status": "completed"}));
                }
            }
            RunEvent::ToolFailed { error, .. } => {
                if let Some((id, _)) = state.tool_call.take() {
                    drop(state);
                    self.send_update(json!({
                        "sessionUpdate": "tool_call_update",
                        "toolCallId": id,
                        "status": "failed",
                        "rawOutput": {"error": error},
                    }));
                }
            }
            RunEvent::CodeFinished {
                ok, output, error, ..
            } => {
                state.tool_call = None;
                if let Some(id) = state.snippet_call.take() {
                    drop(state);
                    let mut shown = output.clone();
                    if let Some(error) = &error {
                        shown.push_str(error);
                    }
                    self.send_update(json!({
                        "sessionUpdate": "tool_call_update",
                        "toolCallId": id,
                        "status": if ok { "completed" } else { "failed" },
                        "rawOutput": {"output": output, "error": error},
                        "content": wire::literal_content(&shown),
                    }));
                }
            }
            // What the model no longer sees, and a template that could not be used: the user
            // is told in the thread, as a note between the answers.
            RunEvent::ContextTrimmed { .. } | RunEvent::TemplateFallback { .. } => {
                drop(state);
                if let Some(message) = event.progress_message() {
                    let note = policy::markdown_literal(&message);
                    self.send_update(wire::agent_text(&format!("_({note})_\n\n")));
                }
            }
            // A detail of what the model was shown: a thought, not the answer.
            RunEvent::OutputCut { .. } => {
                drop(state);
                if let Some(message) = event.progress_message() {
                    self.send_update(wire::agent_thought(&message));
                }
            }
            RunEvent::Started { .. }
            | RunEvent::LoadingModel
            | RunEvent::Queued { .. }
            | RunEvent::CallRejected { .. }
            | RunEvent::Answer { .. }
            | RunEvent::Truncated { .. }
            | RunEvent::Cancelled
            | RunEvent::Failed { .. } => {}
        }
    }
}

impl AcpFrontEnd {
    fn send_prose(&self, state: &mut StreamState, prose: String) {
        if prose.is_empty() || self.cancel.is_cancelled() {
            return;
        }
        state.turn_prose.push_str(&prose);
        self.send_update(wire::agent_text(&prose));
    }
}
