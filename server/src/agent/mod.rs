//! The agent: one "Ask Punie" run from question to answer, with Code Mode tool calls.
//!
//! A run ([`run`]) renders the conversation with a prompt [`Profile`](crate::prompt::Profile),
//! streams the model's turn from the [`EngineHandle`](crate::engine::EngineHandle), parses it
//! ([`toolcall`](crate::toolcall)), runs each `execute_code` snippet through a [`CodeRunner`]
//! (the [`Sandbox`](crate::sandbox::Sandbox) implements it) with the tools of a
//! [`ToolHost`](crate::sandbox::ToolHost), appends the output as a tool message and generates
//! again, until the model answers without a call or [`RunRequest::max_turns`] is reached.
//!
//! How to use it (the CLI's `punie ask` and the LSP layer both do this):
//!
//! ```text
//! let request = RunRequest {
//!     run_id: new_run_id(),
//!     question,
//!     conversation,                 // Conversation::new(), or the last outcome's conversation
//!     profile,
//!     max_turns: DEFAULT_MAX_TURNS,
//!     sampling: Sampling::default(),
//!     transcript_dir: Some(default_transcript_dir(&root)),
//! };
//! let outcome = agent::run(&engine, &mut sandbox, &host, &cancel, request, &mut |event| { … });
//! ```
//!
//! - Events ([`RunEvent`]) arrive on the caller's thread, in order; `progress_message` gives
//!   the `$/progress` wording. The last event is `Answer`, `Truncated`, `Cancelled` or `Failed`.
//! - A model turn that stops at the per-turn token cap or the end of the context ends the run
//!   [`RunStatus::Truncated`], saying which: its tool calls do not run, and its answer is not
//!   complete (no edit may be made from it). The conversation keeps it, so a follow-up continues.
//! - A run that reaches its turn limit ends [`RunStatus::TurnLimit`]: its answer is Punie's note
//!   quoting the model's last prose and the last snippet's output, not the model's final
//!   answer, so no edit may be made from it either.
//! - Cancelling `cancel` from any thread ends the run within 100 ms with
//!   [`RunStatus::Cancelled`], whether it is queued, generating or running a snippet.
//! - Model mistakes are not failures: sandbox exceptions, permission denials and unparsable
//!   calls go back to the model as tool responses (see `feedback`). `Failed` means the engine
//!   failed (model missing, context overflow, …).
//! - Conversation memory: [`RunOutcome::conversation`] is the conversation with this run
//!   appended; pass it as the next request's `conversation` to follow up. A cancelled or failed
//!   run leaves it as it was. [`save_session`]/[`load_session`] store it on disk;
//!   [`save_workspace_session`]/[`load_workspace_session`] keep a workspace's last one for
//!   `--continue`, refusing a file Punie did not write there.
//! - [`run_with_strategy`] runs the same loop with [`Strategy::ToolPerTurn`] (one direct tool
//!   call per turn, the format before Code Mode), for measurements; `run` is Code Mode.
//! - Each run writes a JSON-lines transcript to `transcript_dir` (see `transcript`).

mod context;
mod conversation;
mod event;
mod executor;
mod feedback;
mod profile;
mod run;
mod session;
#[cfg(test)]
mod tests;
mod transcript;
mod types;
mod workspace_session;
mod workspace_state;

pub use conversation::{Conversation, new_run_id, role_from_name, role_name};
pub use event::{RunEvent, TurnStats};
pub use executor::{CodeResult, CodeRunner, ToolActivity};
pub use feedback::tool_response;
pub(crate) use feedback::{code_for_call, response_says_failed};
pub use profile::{resolve_profile, show_offered_tools};
pub use run::{run, run_with_strategy};
pub use session::{
    SavedSession, default_session_path, load_session, read_stored, save_session, write_stored,
};
pub use transcript::{default_transcript_dir, ruling_json};
pub use types::{
    DEFAULT_MAX_TURNS, RunOutcome, RunRequest, RunStatus, RunTimings, Strategy, ToolCallRecord,
    ToolUse, Truncation,
};
pub use workspace_session::{load_workspace_session, save_workspace_session};
pub use workspace_state::{create_dir as create_state_dir, state_dir};
