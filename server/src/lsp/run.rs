//! One "Ask Punie" run on its own thread: the features' run with this client as its front
//! end, then the last word to the main loop.
//!
//! The thread gets an owned snapshot ([`RunSpec`]: the document text when the run was asked
//! for), so later typing cannot change what the run is about. It talks to the client only
//! through the main loop ([`Task`]s), never directly.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Sender;
use lsp_types::Range;

use crate::agent::{self, RunStatus};
use crate::cancel::CancelFlag;
use crate::engine::EngineHandle;
use crate::features::{self, Ask, RunInput, RunResources, Settings};

use super::documents::DocumentStore;
use super::front_end::LspFrontEnd;
use super::main_loop::{ClientCaps, RunFinished, Task};

/// What a run is about: the validated `punie.ask` argument with its document snapshot.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub run_id: String,
    pub uri: String,
    /// The request's range, echoed in `punie/answer`.
    pub range: Range,
    pub ask: Ask,
    /// Which opening of the buffer the selection's version belongs to, when it is open.
    pub opening: Option<u64>,
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
    pub resources: RunResources,
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
                status: RunStatus::Failed("internal error (see the server log)".to_owned()),
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
    if context.engine.load_state().is_none() {
        let _ = context.tasks.send(Task::Report {
            run_id: run_id.clone(),
            message: "Loading model…".to_owned(),
        });
    }
    let front_end = LspFrontEnd {
        run_id: run_id.clone(),
        root: spec.ask.root.clone(),
        documents: context.documents.clone(),
        caps: context.caps.clone(),
        tasks: context.tasks.clone(),
        openings: Default::default(),
    };
    let selection = spec.ask.selection.as_ref();
    if let (Some(opening), Some(version)) = (
        spec.opening,
        selection.and_then(|selection| selection.document.version),
    ) {
        front_end.saw_opening(&spec.uri, version, opening);
    }
    let root = &spec.ask.root;
    let conversation_key = root.display().to_string();
    let input = RunInput {
        run_id: run_id.clone(),
        ask: spec.ask.clone(),
        settings: context.settings.clone(),
        profile: features::profile_for(&context.settings),
        conversation: context
            .resources
            .conversations
            .for_run(&conversation_key, spec.ask.instruction),
        remember_as: Some(conversation_key),
        follow_ups: true,
        transcript_dir: Some(agent::default_transcript_dir(root)),
    };
    let finished = features::execute(
        input,
        &context.engine,
        &context.resources,
        &front_end,
        &context.cancel,
    );
    let (status, markdown) = match finished.outcome.status {
        RunStatus::Failed(reason) => {
            // A model that failed to load says so in the words INTERFACES.md gives.
            let reason = match context.engine.load_state() {
                Some(Err(error)) => super::engine_lifecycle::engine_failure_reason(&error),
                _ => reason,
            };
            (RunStatus::Failed(reason.clone()), reason)
        }
        status => (status, finished.markdown),
    };
    let answer_file = if !context.caps.punie_answer && context.caps.show_document {
        write_answer_file(root, &run_id, &markdown)
    } else {
        None
    };
    RunFinished {
        run_id,
        status,
        markdown,
        answer_file,
    }
}

/// `.punie/answers/<runId>.md`, for clients that can show it.
fn write_answer_file(root: &Path, run_id: &str, markdown: &str) -> Option<PathBuf> {
    // The root as the client names it may go through a link; nothing below it is followed.
    let answers = agent::state_dir(&crate::workspace::follow_user_links(root)).join("answers");
    let path = answers.join(format!("{run_id}.md"));
    // Made by the state directory's code, which follows no link a command left there.
    if let Err(err) = agent::create_state_dir(&answers) {
        tracing::warn!("cannot write {}: {err}", path.display());
        return None;
    }
    match crate::workspace::write_atomic(&path, markdown) {
        Ok(()) => Some(path),
        Err(err) => {
            tracing::warn!("cannot write {}: {}", path.display(), err.message);
            None
        }
    }
}
