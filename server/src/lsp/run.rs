//! One "Ask Punie" run on its own thread: the question built from the selection, the agent,
//! the edits its answer implies, and the last word to the main loop.
//!
//! The thread gets an owned snapshot ([`RunSpec`]: the document text when the run was asked
//! for), so later typing cannot change what the run is about. It talks to the client only
//! through the main loop ([`Task`]s), never directly.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use lsp_types::Range;
use serde_json::Value;

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::engine::EngineHandle;

use super::documents::{self, DocumentStore};
use super::edits;
use super::ext::{AnswerStatus, Instruction};
use super::host::{EditOutcome, LspToolHost};
use super::main_loop::{ClientCaps, RunFinished, Task, engine_failure_reason};
use super::settings::Settings;

/// Lines of context above and below the selection that go into the question.
const CONTEXT_LINES: usize = 20;

/// What a run is about: validated arguments plus a snapshot of the document.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub run_id: String,
    pub uri: String,
    pub range: Range,
    pub instruction: Instruction,
    pub question: Option<String>,
    /// The document's text when the run was asked for.
    pub text: String,
    /// Its version, when it is open in the editor.
    pub version: Option<i32>,
    /// Byte offsets of the range in `text`.
    pub start: usize,
    pub end: usize,
    pub path: Option<PathBuf>,
    pub root: PathBuf,
    pub language_id: String,
}

impl RunSpec {
    pub(crate) fn selection(&self) -> &str {
        &self.text[self.start..self.end]
    }
}

/// State that outlives a run and is shared by all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedRunState {
    /// Tools the user allowed "for this session".
    pub session_allowed: Arc<Mutex<std::collections::HashSet<String>>>,
    /// The agent's own state: the sandbox, conversations.
    pub agent: super::agent_bridge::AgentState,
}

/// Everything the run thread needs.
pub(crate) struct RunContext {
    pub spec: Arc<RunSpec>,
    pub engine: Arc<EngineHandle>,
    pub settings: Settings,
    pub caps: ClientCaps,
    pub documents: DocumentStore,
    pub tasks: Sender<Task>,
    pub cancel: CancelFlag,
    pub shared: SharedRunState,
}

/// The run thread's body. Always ends by sending exactly one [`Task::Finished`].
pub(crate) fn execute(context: RunContext) {
    let tasks = context.tasks.clone();
    let run_id = context.spec.run_id.clone();
    let finished = match std::panic::catch_unwind(AssertUnwindSafe(|| execute_inner(&context))) {
        Ok(finished) => finished,
        Err(_) => {
            tracing::error!("run {run_id} panicked");
            RunFinished {
                run_id: run_id.clone(),
                status: AnswerStatus::Failed,
                end_message: "failed: internal error (see the server log)".to_owned(),
                markdown: "internal error (see the server log)".to_owned(),
                answer_file: None,
            }
        }
    };
    let _ = tasks.send(Task::Finished(finished));
}

fn execute_inner(context: &RunContext) -> RunFinished {
    let spec = &context.spec;
    let run_id = spec.run_id.clone();
    let send_event = |event: RunEvent| {
        let _ = context.tasks.send(Task::Run {
            run_id: run_id.clone(),
            event,
        });
    };
    if context.engine.load_state().is_none() {
        let _ = context.tasks.send(Task::Report {
            run_id: run_id.clone(),
            message: "Loading model…".to_owned(),
        });
    }
    let host = LspToolHost::new(context);
    let question = build_question(spec);
    let outcome =
        super::agent_bridge::run_agent(context, &host, question, &mut |event| send_event(event));
    let (status, mut markdown, end_message) = match outcome.status {
        AgentStatus::Done => (AnswerStatus::Done, outcome.answer, "done".to_owned()),
        AgentStatus::Truncated(why) => (
            AnswerStatus::Truncated,
            format!(
                "{}\n\n({why}: no edit was made; ask Punie to continue)",
                outcome.answer
            ),
            format!("truncated: {why}"),
        ),
        AgentStatus::Cancelled => (
            AnswerStatus::Cancelled,
            outcome.answer,
            "cancelled".to_owned(),
        ),
        AgentStatus::Failed(reason) => {
            let reason = match context.engine.load_state() {
                Some(Err(error)) => engine_failure_reason(&error),
                _ => reason,
            };
            (
                AnswerStatus::Failed,
                reason.clone(),
                format!("failed: {reason}"),
            )
        }
    };
    if status == AnswerStatus::Done
        && !context.cancel.is_cancelled()
        && let Some(note) = apply_answer_edits(spec, &host, &markdown)
    {
        markdown.push_str("\n\n");
        markdown.push_str(&note);
    }
    let answer_file = if !context.caps.punie_answer && context.caps.show_document {
        write_answer_file(&spec.root, &run_id, &markdown)
    } else {
        None
    };
    RunFinished {
        run_id,
        status,
        end_message,
        markdown,
        answer_file,
    }
}

/// How the agent ended, in the terms the LSP layer needs.
pub(crate) enum AgentStatus {
    Done,
    /// Cut by the token cap or the context (the reason): no edit is made from the answer.
    Truncated(String),
    Cancelled,
    Failed(String),
}

pub(crate) struct AgentOutcome {
    pub status: AgentStatus,
    pub answer: String,
}

/// The user turn: the instruction, the file, the selection and the lines around it.
pub(crate) fn build_question(spec: &RunSpec) -> String {
    let selection = spec.selection();
    let shown_path = match &spec.path {
        Some(path) => path
            .strip_prefix(&spec.root)
            .unwrap_or(path)
            .display()
            .to_string(),
        None => spec.uri.clone(),
    };
    let fence_lang = if spec.language_id.is_empty() {
        ""
    } else {
        spec.language_id.as_str()
    };
    let first_line = spec.range.start.line + 1;
    let last_line = spec.range.end.line + 1;
    let request = match spec.instruction {
        Instruction::Explain => "Explain what this code does.".to_owned(),
        Instruction::Fix => "Find and fix the bugs in this code. Reply with a short explanation and the corrected \
                             code in one fenced code block that replaces the selection exactly."
            .to_owned(),
        Instruction::Tests => format!(
            "Write tests for this code, following the conventions of {}. Put the complete test code in one fenced \
             code block.",
            if fence_lang == "python" { "pytest" } else { "the language" }
        ),
        Instruction::Refactor => "Refactor this code to be clearer without changing its behaviour. Reply with a short \
                                  explanation and the new code in one fenced code block that replaces the selection \
                                  exactly."
            .to_owned(),
        Instruction::Ask => match &spec.question {
            Some(question) if !question.trim().is_empty() => question.trim().to_owned(),
            _ => selection.trim().to_owned(),
        },
    };
    let mut res = request;
    res.push_str(&format!(
        "\n\nFile: {shown_path} (lines {first_line}-{last_line}, {fence_lang})\n"
    ));
    if !selection.trim().is_empty() {
        res.push_str(&format!(
            "Selection:\n```{fence_lang}\n{}\n```\n",
            selection.trim_end_matches('\n')
        ));
    }
    let context = surrounding_lines(&spec.text, spec.start, spec.end);
    if !context.trim().is_empty() && context.trim() != selection.trim() {
        res.push_str(&format!(
            "Surrounding code:\n```{fence_lang}\n{}\n```\n",
            context.trim_end_matches('\n')
        ));
    }
    res.trim_end().to_owned()
}

/// Up to `CONTEXT_LINES` whole lines before and after `start..end`, the selection included.
fn surrounding_lines(text: &str, start: usize, end: usize) -> String {
    let before_start = text[..start]
        .rmatch_indices('\n')
        .nth(CONTEXT_LINES)
        .map(|(idx, _)| idx + 1)
        .unwrap_or(0);
    let after_end = text[end..]
        .match_indices('\n')
        .nth(CONTEXT_LINES)
        .map(|(idx, _)| end + idx)
        .unwrap_or(text.len());
    text[before_start..after_end].to_owned()
}

/// Fix/Refactor replace the selection with the answer's first code block; Write tests creates
/// or extends the test file. Returns a note for the answer when something went wrong.
fn apply_answer_edits(spec: &RunSpec, host: &LspToolHost, markdown: &str) -> Option<String> {
    let code = edits::first_code_block(markdown)?;
    match spec.instruction {
        Instruction::Fix | Instruction::Refactor => {
            // Keep the selection's own trailing newline (or its absence).
            let mut replacement = code;
            if !spec.selection().ends_with('\n') {
                while replacement.ends_with('\n') {
                    replacement.pop();
                }
            }
            match host.replace_range(spec, &replacement) {
                EditOutcome::Applied => None,
                EditOutcome::Rejected => {
                    Some("_The editor rejected the edit; nothing was changed._".to_owned())
                }
                EditOutcome::Failed(reason) => {
                    Some(format!("_The edit could not be made: {reason}._"))
                }
            }
        }
        Instruction::Tests => {
            let source = spec
                .path
                .clone()
                .unwrap_or_else(|| spec.root.join("module"));
            let test_file = edits::test_file_for(&spec.root, &source, &spec.language_id);
            let shown = test_file
                .strip_prefix(&spec.root)
                .unwrap_or(&test_file)
                .display()
                .to_string();
            match host.extend_or_create(&test_file, &code) {
                EditOutcome::Applied => Some(format!("_Tests written to `{shown}`._")),
                EditOutcome::Rejected => Some(format!(
                    "_The editor rejected the edit; `{shown}` was not changed._"
                )),
                EditOutcome::Failed(reason) => {
                    Some(format!("_`{shown}` could not be written: {reason}._"))
                }
            }
        }
        Instruction::Explain | Instruction::Ask => None,
    }
}

/// `.punie/answers/<runId>.md`, for clients that can show it.
fn write_answer_file(root: &Path, run_id: &str, markdown: &str) -> Option<PathBuf> {
    let path = root
        .join(".punie")
        .join("answers")
        .join(format!("{run_id}.md"));
    match super::host::write_atomic(&path, markdown) {
        Ok(()) => Some(path),
        Err(err) => {
            tracing::warn!("cannot write {}: {err}", path.display());
            None
        }
    }
}

/// Sends a request to the client through the main loop and waits for the answer, `timeout`
/// at most, giving up early when the run is cancelled. `None` means no answer.
pub(crate) fn client_request(
    tasks: &Sender<Task>,
    cancel: &CancelFlag,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Option<Result<Value, lsp_server::ResponseError>> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    tasks
        .send(Task::ClientRequest {
            method: method.to_owned(),
            params,
            reply,
        })
        .ok()?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return None;
        }
        match answer.recv_timeout((deadline - now).min(Duration::from_millis(10))) {
            Ok(result) => return Some(result),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// The byte range of `range` in `text`, strictly (`None` when it lies outside).
pub(crate) fn byte_range(
    text: &str,
    range: Range,
    encoding: documents::PositionEncoding,
) -> Option<(usize, usize)> {
    let start = documents::offset_strict(text, range.start, encoding)?;
    let end = documents::offset_strict(text, range.end, encoding)?;
    (start <= end).then_some((start, end))
}
