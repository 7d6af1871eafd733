//! The agent's public data: what a run is asked ([`RunRequest`]) and what it gives back
//! ([`RunOutcome`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Sampling;
use crate::prompt::Profile;

use super::conversation::Conversation;

/// Turns a run may take when nobody says otherwise (INTERFACES.md §2 `maxTurns`).
pub const DEFAULT_MAX_TURNS: usize = 8;

/// Everything one run needs besides the engine, the sandbox and the tool host.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Names the run in events and its transcript file (`<run_id>.jsonl`); see [`new_run_id`](super::new_run_id).
    pub run_id: String,
    /// The user's question, appended to the conversation as a user message.
    pub question: String,
    /// The conversation so far: [`Conversation::new`] for a new one, or the
    /// [`RunOutcome::conversation`] of the previous run for a follow-up.
    pub conversation: Conversation,
    /// How messages become prompt text (and which system prompt a new conversation gets).
    pub profile: Profile,
    /// Model turns at most (1..=10000); reaching it ends the run `Done` with an answer that says so.
    pub max_turns: usize,
    /// Sampling of every turn; `Default` is greedy and stops on `<|im_end|>`.
    pub sampling: Sampling,
    /// Where the transcript goes (`<dir>/<run_id>.jsonl`); `None` writes none.
    /// Usually `<workspace>/.punie/transcripts` (see [`default_transcript_dir`](super::default_transcript_dir)).
    pub transcript_dir: Option<PathBuf>,
}

/// How the model calls tools in a run.
///
/// Code Mode is Punie's way: one `execute_code` snippet may call many tools, so a multi-step
/// question takes two model turns. Tool-per-turn is the format Punie used before Code Mode
/// (Phase 21): the model calls `read_file`, `write_file` or `run_command` directly, one call per
/// turn, and sees each result before the next call, so N operations take N + 1 turns. It exists
/// so that `punie eval` and `punie bench` can measure the difference on the same loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    #[default]
    CodeMode,
    ToolPerTurn,
}

impl Strategy {
    pub const NAMES: [&'static str; 2] = ["code-mode", "tool-per-turn"];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::CodeMode => Strategy::NAMES[0],
            Strategy::ToolPerTurn => Strategy::NAMES[1],
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        match name {
            "code-mode" => Some(Strategy::CodeMode),
            "tool-per-turn" => Some(Strategy::ToolPerTurn),
            _ => None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// The model's final answer.
    Done,
    /// The run reached its turn limit (`max_turns`) before the model gave a final answer.
    /// `answer` is Punie's note saying so, with the model's last prose and the last snippet's
    /// output: not the model's answer, so no edit may be made from it. The conversation keeps
    /// the turns, so a follow-up goes on from them. On the wire it is `done` (INTERFACES.md §2),
    /// ACP's `max_turn_requests`.
    TurnLimit { max_turns: usize },
    /// The model's last turn was cut before it ended it: `answer` holds the prose so far, and
    /// may stop mid-sentence or inside a code fence, so no edit may be made from it. The
    /// conversation keeps the cut turn, so a follow-up ("Continue") picks up where it stopped.
    /// A cut turn never runs its tool calls.
    Truncated(Truncation),
    /// The cancel flag was set; `answer` holds what was produced so far.
    Cancelled,
    /// The engine failed (model missing, context overflow, …); the reason is one line.
    Failed(String),
}

/// What cut an answer short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// The per-turn token cap ([`Sampling::max_tokens`]).
    TokenCap { max_tokens: usize },
    /// The model's context window: prompt and answer filled all `n_ctx` tokens.
    Context { n_ctx: usize },
}

impl RunStatus {
    /// The wire name: `done`, `truncated`, `cancelled`, `failed` (INTERFACES.md §2).
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Done | RunStatus::TurnLimit { .. } => "done",
            RunStatus::Truncated(_) => "truncated",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed(_) => "failed",
        }
    }

    /// Whether the run's turns belong in the conversation a follow-up continues: a finished
    /// run's, and a stopped or cut one's (so that it can be continued); not a cancelled or
    /// failed one's.
    pub fn keeps_conversation(&self) -> bool {
        matches!(
            self,
            RunStatus::Done | RunStatus::TurnLimit { .. } | RunStatus::Truncated(_)
        )
    }
}

/// `done`, `truncated: <why>`, `cancelled`, `failed: <reason>`: the end message of progress
/// reports and the `status` of transcripts and `--json` output.
impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Truncated(why) => write!(f, "truncated: {why}"),
            RunStatus::Failed(reason) => write!(f, "failed: {reason}"),
            RunStatus::Done | RunStatus::TurnLimit { .. } | RunStatus::Cancelled => {
                f.write_str(self.name())
            }
        }
    }
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Truncation::TokenCap { max_tokens } => write!(
                f,
                "the answer was cut at the limit of {max_tokens} tokens per model turn"
            ),
            Truncation::Context { n_ctx } => write!(
                f,
                "the answer was cut where the model's context of {n_ctx} tokens ran out"
            ),
        }
    }
}

/// One Code Mode snippet the model ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    /// Model turn (1-based) that asked for it.
    pub turn: usize,
    /// What the model called: `execute_code`, or a direct tool (`read_file`, …) from the older
    /// JSON form, which runs as a one-line snippet.
    pub tool: String,
    /// The Python that ran.
    pub code: String,
    pub ok: bool,
    /// What the snippet printed.
    pub output: String,
    /// `PythonExceptionType: message` when it raised.
    pub error: Option<String>,
    /// What the model saw: the content of the tool response turn.
    pub response: String,
    /// The tools the snippet called, in order.
    pub tools: Vec<ToolUse>,
    pub elapsed: Duration,
}

/// One tool call made from inside a snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    pub tool: String,
    pub label: String,
    pub ok: bool,
    pub error: Option<String>,
    /// How its permission was decided (`None`: it failed before, e.g. a path outside).
    pub permission: Option<crate::policy::Ruling>,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunTimings {
    /// The whole run.
    pub wall: Duration,
    /// From the start of the run to the first generated token (queueing and loading included).
    pub first_token: Option<Duration>,
    /// Prompt evaluation, all turns.
    pub prefill: Duration,
    /// Token generation, all turns.
    pub decode: Duration,
    /// Snippets in the sandbox, all turns.
    pub sandbox: Duration,
}

/// What a run gives back.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    /// Markdown for the user: the final turn's prose (tool calls removed), the turn-limit note,
    /// or, when cancelled, the prose produced so far.
    pub answer: String,
    /// Model turns taken.
    pub turns: usize,
    pub tool_calls: Vec<ToolCallRecord>,
    /// Prompt tokens over all turns.
    pub tokens_in: usize,
    /// Prompt tokens actually evaluated over all turns (the rest came from the KV cache).
    pub tokens_evaluated: usize,
    /// Generated tokens over all turns.
    pub tokens_out: usize,
    pub timings: RunTimings,
    /// The conversation with this run's turns appended: pass it to the next run to follow up.
    pub conversation: Conversation,
    /// The transcript file, when one was written.
    pub transcript: Option<PathBuf>,
}

impl RunOutcome {
    /// An outcome before any turn: no answer, no figures.
    pub fn new(run_id: &str, status: RunStatus, conversation: Conversation) -> RunOutcome {
        RunOutcome {
            run_id: run_id.to_owned(),
            status,
            answer: String::new(),
            turns: 0,
            tool_calls: Vec::new(),
            tokens_in: 0,
            tokens_evaluated: 0,
            tokens_out: 0,
            timings: RunTimings::default(),
            conversation,
            transcript: None,
        }
    }
}
