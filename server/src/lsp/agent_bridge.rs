//! The one place the LSP layer calls the agent: builds its request from the settings and the
//! workspace's conversation, lends it the shared sandbox, and maps its outcome back.
//!
//! Conversation memory: each workspace root keeps the conversation of its last finished run.
//! `Ask Punie…` (free-form) continues it, so a follow-up question can refer to the previous
//! answer; the other actions are self-contained and start afresh (their run then becomes the
//! conversation a follow-up continues).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::agent::{self, Conversation, RunEvent, RunRequest, RunStatus};
use crate::engine::Sampling;
use crate::prompt::{GenericConfig, Profile};
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::tools::Tool;

use super::ext::Instruction;
use super::host::LspToolHost;
use super::run::{AgentOutcome, AgentStatus, RunContext};
use super::settings::Settings;

/// State the agent keeps between runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentState {
    /// One pre-warmed sandbox worker, reused by consecutive runs (runs take turns).
    sandbox: Arc<Mutex<Option<Sandbox>>>,
    conversations: Arc<Mutex<HashMap<PathBuf, Conversation>>>,
}

impl AgentState {
    /// Forgets every conversation; returns how many there were.
    pub(crate) fn forget_conversations(&self) -> usize {
        let mut conversations = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        let n_conversations = conversations.len();
        conversations.clear();
        n_conversations
    }
}

/// Runs the agent on `question`, reporting each step to `on_event`.
pub(crate) fn run_agent(
    context: &RunContext,
    host: &LspToolHost,
    question: String,
    on_event: &mut dyn FnMut(RunEvent),
) -> AgentOutcome {
    let state = &context.shared.agent;
    let settings = &context.settings;
    let limits = SandboxLimits {
        timeout_ms: settings.sandbox_timeout_ms,
        memory_mb: settings.sandbox_memory_mb,
        output_kb: settings.sandbox_output_kb,
        ..SandboxLimits::default()
    };
    let mut sandbox_slot = state.sandbox.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = match sandbox_slot.as_mut() {
        Some(sandbox) => {
            sandbox.set_limits(limits);
            sandbox
        }
        None => match Sandbox::new(limits) {
            Ok(sandbox) => sandbox_slot.insert(sandbox),
            Err(err) => {
                return AgentOutcome {
                    status: AgentStatus::Failed(format!("the sandbox could not start: {err:#}")),
                    answer: String::new(),
                };
            }
        },
    };
    let root = context.spec.root.clone();
    let conversation = if context.spec.instruction == Instruction::Ask {
        state
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&root)
            .cloned()
            .unwrap_or_default()
    } else {
        Conversation::new()
    };
    let request = RunRequest {
        run_id: context.spec.run_id.clone(),
        question,
        conversation,
        profile: profile(settings),
        max_turns: settings.max_turns,
        sampling: Sampling::default(),
        transcript_dir: Some(agent::default_transcript_dir(&root)),
    };
    let outcome = agent::run(
        &context.engine,
        sandbox,
        host,
        &context.cancel,
        request,
        on_event,
    );
    drop(sandbox_slot);
    if outcome.status.keeps_conversation() {
        state
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(root, outcome.conversation);
    }
    let status = match outcome.status {
        RunStatus::Done => AgentStatus::Done,
        RunStatus::Truncated(truncation) => AgentStatus::Truncated(truncation.to_string()),
        RunStatus::Cancelled => AgentStatus::Cancelled,
        RunStatus::Failed(reason) => AgentStatus::Failed(reason),
    };
    AgentOutcome {
        status,
        answer: outcome.answer,
    }
}

/// The prompt profile: the setting (validated with the other settings), else the one the model
/// was made for; `generic` carries the model's chat template. A model whose header cannot be
/// read gets plain `generic` here: the engine reports the broken file when the run starts.
fn profile(settings: &Settings) -> Profile {
    agent::resolve_profile(&settings.engine, None, settings.profile.as_deref()).unwrap_or_else(
        |err| {
            tracing::warn!("prompt profile: {err:#}");
            let tools: Vec<Tool> = Tool::core().collect();
            Profile::Generic(GenericConfig {
                stubs: crate::tools::stubs_text(&tools),
                ..GenericConfig::default()
            })
        },
    )
}
