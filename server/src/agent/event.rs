//! [`RunEvent`]: what a run reports while it works, for the CLI and the LSP layer to render.
//!
//! Events are plain data in the order they happen. The agent never formats them for a UI;
//! [`RunEvent::progress_message`] gives the short wording INTERFACES.md §2 asks of `$/progress`
//! reports so that the CLI and the LSP say the same thing.

use std::time::Duration;

use super::types::Truncation;
use crate::policy;

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The run began. Always the first event.
    Started { run_id: String, session_id: String },
    /// The engine is still loading its model; generation starts when it is ready.
    LoadingModel,
    /// The engine is busy with other runs; `ahead` jobs go first.
    Queued { ahead: usize },
    /// A model turn begins (1-based).
    TurnStarted { turn: usize },
    /// A piece of the model's output, as streamed.
    Text { turn: usize, text: String },
    /// A model turn ended; token counts and speed for progress displays.
    TurnFinished { turn: usize, stats: TurnStats },
    /// A Code Mode snippet is about to run.
    CodeStarted { turn: usize, code: String },
    /// A tool called from inside the snippet started, e.g. `read_file README.md`.
    ToolStarted { tool: String, label: String },
    /// That tool call returned.
    ToolFinished { tool: String, label: String },
    /// That tool call raised; `error` is `PythonExceptionType: message`.
    ToolFailed {
        tool: String,
        label: String,
        error: String,
    },
    /// The snippet finished; `error` (`Type: message`) when it raised.
    CodeFinished {
        turn: usize,
        ok: bool,
        output: String,
        error: Option<String>,
    },
    /// The model's output could not be understood as a tool call; the problem goes back to it.
    CallRejected { turn: usize, problem: String },
    /// Earlier context was dropped to fit the model's context window: `dropped` messages of
    /// earlier exchanges removed, `condensed` tool outputs replaced by a note. The model no
    /// longer sees them; the user should know.
    ContextTrimmed { dropped: usize, condensed: usize },
    /// A tool output was cut in the middle to fit the context; the model is told which lines
    /// and how to print them.
    OutputCut {
        turn: usize,
        kept_chars: usize,
        total_chars: usize,
    },
    /// The model's chat template could not be used and ChatML is used instead (once a run);
    /// `reason` says why, for the user to see.
    TemplateFallback { reason: String },
    /// The final answer, or the turn limit's note (also in `RunOutcome::answer`).
    Answer { text: String },
    /// The model's turn was cut before it ended (`RunStatus::Truncated`); `text` is the prose
    /// so far. No more events follow.
    Truncated {
        text: String,
        truncation: Truncation,
    },
    /// The run was cancelled; no more events follow.
    Cancelled,
    /// The run failed; no more events follow.
    Failed { reason: String },
}

/// Figures of one model turn.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TurnStats {
    /// Prompt tokens.
    pub n_prompt: usize,
    /// Prompt tokens evaluated (the rest came from the engine's KV cache).
    pub n_evaluated: usize,
    /// Tokens generated.
    pub n_generated: usize,
    /// Prompt evaluation time.
    pub prefill: Duration,
    /// Generation time after the first token.
    pub decode: Duration,
}

impl TurnStats {
    /// Generation speed, tokens per second; 0 when nothing was timed.
    pub fn decode_tokens_per_second(&self) -> f64 {
        let seconds = self.decode.as_secs_f64();
        if seconds > 0.0 && self.n_generated > 1 {
            (self.n_generated - 1) as f64 / seconds
        } else {
            0.0
        }
    }
}

impl RunEvent {
    /// The short progress wording of INTERFACES.md §2 (`generating`, `read_file README.md`,
    /// `read_file failed: FileNotFoundError: …`), or `None` for events that are not progress
    /// (streamed text, the answer, the end).
    /// Escaped for a line of its own (`policy::one_line`): errors quote what the model wrote.
    pub fn progress_message(&self) -> Option<String> {
        self.progress_wording()
            .map(|wording| policy::one_line(&wording))
    }

    fn progress_wording(&self) -> Option<String> {
        match self {
            RunEvent::Started { .. } => Some("starting".to_owned()),
            RunEvent::LoadingModel => Some("loading the model".to_owned()),
            RunEvent::Queued { ahead } => Some(format!("queued ({ahead} ahead)")),
            RunEvent::TurnStarted { turn: 1 } => Some("generating".to_owned()),
            RunEvent::TurnStarted { turn } => Some(format!("generating (turn {turn})")),
            RunEvent::CodeStarted { .. } => Some("running code".to_owned()),
            // A status bar: the label's start, and how much of it is not shown.
            RunEvent::ToolStarted { label, .. } => Some(policy::cut(label, 80).with_note()),
            RunEvent::ToolFailed { tool, error, .. } => Some(format!("{tool} failed: {error}")),
            RunEvent::CodeFinished {
                ok: false,
                error: Some(error),
                ..
            } => Some(format!("code failed: {error}")),
            RunEvent::CallRejected { problem, .. } => Some(format!("bad tool call: {problem}")),
            RunEvent::ContextTrimmed { dropped, condensed } => Some(match (dropped, condensed) {
                (0, condensed) => format!(
                    "{condensed} earlier tool output{} dropped to fit the model's context",
                    plural(*condensed)
                ),
                (dropped, 0) => format!(
                    "{dropped} earlier message{} dropped to fit the model's context",
                    plural(*dropped)
                ),
                (dropped, condensed) => format!(
                    "{dropped} earlier message{} and {condensed} tool output{} dropped to fit the model's context",
                    plural(*dropped),
                    plural(*condensed)
                ),
            }),
            RunEvent::OutputCut {
                kept_chars,
                total_chars,
                ..
            } => Some(format!(
                "output cut to fit the model's context: {kept_chars} of {total_chars} characters shown"
            )),
            RunEvent::TemplateFallback { reason } => Some(reason.clone()),
            RunEvent::Text { .. }
            | RunEvent::TurnFinished { .. }
            | RunEvent::ToolFinished { .. }
            | RunEvent::CodeFinished { .. }
            | RunEvent::Answer { .. }
            | RunEvent::Truncated { .. }
            | RunEvent::Cancelled
            | RunEvent::Failed { .. } => None,
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
