//! One run, the same in every front end: the question built from the [`Ask`], the agent with
//! the shared pre-warmed sandbox and the front end's tools, then the edits the answer implies.

use crate::sync;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::agent::{self, Conversation, RunOutcome, RunRequest, RunStatus};
use crate::cancel::CancelFlag;
use crate::engine::{EngineHandle, Sampling};
use crate::policy::markdown_literal;
use crate::prompt::{self, GenericConfig, Message, Profile};
use crate::sandbox::Sandbox;

use super::approvals::SessionApprovals;
use super::conversations::Conversations;
use super::edits::{AnswerEdit, CHANGED_MEANWHILE, EditOutcome, answer_edit, turn_limit_note};
use super::front_end::FrontEnd;
use super::question::Ask;
use super::settings::Settings;
use super::tool_host::FeatureToolHost;

/// What outlives a run and is shared by all of them: one pre-warmed sandbox worker (runs
/// take turns on it), the conversations follow-ups continue, and the session's approvals.
/// Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RunResources {
    sandbox: Arc<Mutex<Option<Sandbox>>>,
    pub conversations: Conversations,
    pub approvals: SessionApprovals,
}

impl RunResources {
    /// The same shared sandbox and conversations, with `approvals` as the session's
    /// remembered answers (an ACP session remembers its own).
    pub fn with_approvals(&self, approvals: SessionApprovals) -> RunResources {
        RunResources {
            approvals,
            ..self.clone()
        }
    }
}

/// Everything one run is about, owned by the run.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub run_id: String,
    pub ask: Ask,
    pub settings: Settings,
    pub profile: Profile,
    /// The conversation so far (see `Conversations::for_run`), or a new one.
    pub conversation: Conversation,
    /// When the run ends with an answer, its conversation is kept under this key.
    pub remember_as: Option<String>,
    /// Whether a follow-up may come to the same engine (the editor front ends, which keep
    /// serving). Then, once the run has answered, the engine evaluates the opening of the next
    /// user turn while the user reads the answer, and the follow-up starts sooner.
    pub follow_ups: bool,
    /// Where the transcript goes; `None` writes none.
    pub transcript_dir: Option<PathBuf>,
}

/// How a run ended: the agent's outcome, and the markdown for the user (the answer plus
/// notes about the edits made from it).
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: RunOutcome,
    pub markdown: String,
}

/// Runs `input` to its end, reporting every step to `front_end`. Never panics on model
/// output; cancellation (`cancel`) ends it within 100 ms.
pub fn execute(
    input: RunInput,
    engine: &EngineHandle,
    resources: &RunResources,
    front_end: &dyn FrontEnd,
    cancel: &CancelFlag,
) -> Finished {
    let host = FeatureToolHost {
        root: &input.ask.root,
        front_end,
        settings: &input.settings,
        approvals: &resources.approvals,
        cancel,
    };
    let request = RunRequest {
        run_id: input.run_id.clone(),
        question: input.ask.question_after(input.conversation.messages()),
        conversation: input.conversation.clone(),
        profile: input.profile.clone(),
        max_turns: input.settings.max_turns,
        sampling: Sampling {
            max_tokens: input.settings.max_tokens,
            ..Sampling::default()
        },
        transcript_dir: input.transcript_dir.clone(),
    };
    let outcome = {
        let mut sandbox_slot = sync::lock(&resources.sandbox);
        let limits = input.settings.sandbox_limits();
        let sandbox = match sandbox_slot.as_mut() {
            Some(sandbox) => {
                sandbox.set_limits(limits);
                sandbox
            }
            None => match Sandbox::new(limits) {
                Ok(sandbox) => sandbox_slot.insert(sandbox),
                Err(err) => {
                    let reason = format!("the sandbox could not start: {err:#}");
                    front_end.on_event(agent::RunEvent::Failed {
                        reason: reason.clone(),
                    });
                    return Finished {
                        outcome: failed_outcome(&input.run_id, input.conversation, reason),
                        markdown: String::new(),
                    };
                }
            },
        };
        agent::run(engine, sandbox, &host, cancel, request, &mut |event| {
            front_end.on_event(event)
        })
    };
    let mut markdown = outcome.answer.clone();
    if matches!(
        outcome.status,
        RunStatus::Done | RunStatus::TurnLimit { .. }
    ) {
        if input.follow_ups {
            prepare_follow_up(engine, &input, outcome.conversation.messages());
        }
        if let Some(key) = &input.remember_as {
            resources
                .conversations
                .set(key, outcome.conversation.clone());
        }
    }
    let note = match outcome.status {
        _ if cancel.is_cancelled() => None,
        RunStatus::Done => apply_answer_edit(&input.ask, &host, &outcome.answer),
        // The answer is Punie's own note, whose code blocks quote the model's last prose and
        // a snippet's output (a repository's file): no edit may come from it.
        RunStatus::TurnLimit { .. } => turn_limit_note(&input.ask),
        RunStatus::Truncated(_) | RunStatus::Cancelled | RunStatus::Failed(_) => None,
    };
    if let Some(note) = note {
        markdown.push_str("\n\n");
        markdown.push_str(&note);
    }
    Finished { outcome, markdown }
}

/// Has `engine` evaluate how a follow-up to the conversation `messages` is most likely to start
/// (the next user turn's opening, then the line naming the same code) while the user reads the
/// answer. A follow-up about other code shares only the opening; the rest of the guess costs
/// idle time and nothing else (the engine drops what a request does not share).
fn prepare_follow_up(engine: &EngineHandle, input: &RunInput, messages: &[Message]) {
    if let Some(start) = prompt::next_user_turn_start(&input.profile, messages) {
        // The opening line is the first of the user's words, quoted as they will be.
        let opening = input.ask.follow_up_opening(messages);
        let mut quoted = start.quoted.unwrap_or_default();
        quoted.push(start.text.len()..start.text.len() + opening.len());
        engine.prepare(start.text + &opening, quoted);
    }
}

/// Has `engine` evaluate what every new conversation with `profile` starts with (its system
/// prompt and the opening of the first user turn) while the user is still choosing what to ask:
/// the first question then pays only for its own words.
pub fn prepare_new_conversation(engine: &EngineHandle, profile: &Profile) {
    let system: Vec<Message> = prompt::system_prompt(profile)
        .map(Message::system)
        .into_iter()
        .collect();
    prepare_continuation(engine, profile, &system);
}

/// Has `engine` evaluate the conversation `messages` and the opening of its next user turn (a
/// reopened session) while the user reads it and writes: the next prompt then pays only for
/// its own words. Nothing is evaluated unless it extends what the engine's cache holds.
pub fn prepare_continuation(engine: &EngineHandle, profile: &Profile, messages: &[Message]) {
    if let Some(start) = prompt::next_user_turn_start(profile, messages) {
        engine.prepare(start.text, start.quoted.unwrap_or_default());
    }
}

/// The outcome of a run that failed before the agent started.
fn failed_outcome(run_id: &str, conversation: Conversation, reason: String) -> RunOutcome {
    RunOutcome::new(run_id, RunStatus::Failed(reason), conversation)
}

/// Makes the edit the answer implies; returns a note for the answer when there is something
/// to say (where tests went, why nothing changed).
fn apply_answer_edit(ask: &Ask, host: &FeatureToolHost<'_>, answer: &str) -> Option<String> {
    match answer_edit(ask, answer, &|path| host.existing(path, host.cancel)) {
        AnswerEdit::None => None,
        AnswerEdit::Refused(note) => Some(note),
        AnswerEdit::Change {
            change,
            done_note,
            shown,
        } => {
            // A file name a repository chose, a refusal or the editor's reason quoting it:
            // Markdown code, so none of it becomes a link or formatting in the answer.
            let shown = markdown_literal(&shown);
            match host
                .permit_answer_edit(&change)
                .map(|()| host.apply(&change, false, host.cancel))
            {
                Err(refusal) => Some(format!(
                    "_Nothing was changed: {}. The code is in the answer above._",
                    markdown_literal(&refusal)
                )),
                Ok(outcome) => match outcome {
                    EditOutcome::Applied => done_note,
                    EditOutcome::Rejected => Some(format!(
                        "_The editor rejected the edit; {shown} was not changed._"
                    )),
                    EditOutcome::Failed(reason) => Some(format!(
                        "_{shown} could not be changed: {}._",
                        markdown_literal(&reason)
                    )),
                    EditOutcome::ChangedMeanwhile => Some(format!(
                        "_{shown} could not be changed: {}._",
                        markdown_literal(CHANGED_MEANWHILE)
                    )),
                    EditOutcome::Unanswered => Some(format!(
                        "_The editor has not confirmed the edit of {shown}; it may still make it._"
                    )),
                },
            }
        }
    }
}

/// The prompt profile for `settings`: the setting, else the one the model was made for;
/// `generic` carries the model's chat template. A model whose header cannot be read gets
/// plain `generic` here: the engine reports the broken file when the run starts.
pub fn profile_for(settings: &Settings) -> Profile {
    agent::resolve_profile(&settings.engine, None, settings.profile.as_deref()).unwrap_or_else(
        |err| {
            tracing::warn!("prompt profile: {err:#}");
            let mut profile = Profile::Generic(GenericConfig::default());
            agent::show_offered_tools(&mut profile);
            profile
        },
    )
}
