//! Text generation engines behind one interface.
//!
//! Three engines implement [`Engine`]: `llama` (llama.cpp in-process, see `llama.rs`),
//! `openai` (an OpenAI-compatible HTTP server, `openai.rs`) and `scripted` (canned turns
//! for deterministic tests, `scripted.rs`). Callers never hold an engine directly: an
//! [`EngineHandle`] owns a dedicated thread that owns the engine (llama.cpp contexts are not
//! `Sync`, and the model must outlive its context), and talks to callers through channels.
//!
//! Requests carry the whole prompt text. Engines that keep a KV cache compare the new prompt's
//! tokens with the cached ones and evaluate only what follows the longest common prefix, so an
//! agent that appends to a conversation pays only for the new tokens
//! ([`Generation::n_evaluated`] says how many were evaluated).

mod handle;
pub mod llama;
pub mod openai;
pub mod scripted;
mod spec;
pub mod stop;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::cancel::CancelFlag;
pub use handle::{
    DEFAULT_DEADLINE, DEFAULT_IDLE_TIMEOUT, EngineConfig, EngineHandle, GenerationStream,
    StreamEvent,
};
pub use spec::{EngineSpec, SpecError};

/// One request for the next assistant turn.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The full prompt, generation prompt included (see `prompt::render`).
    pub prompt: String,
    /// The byte ranges of `prompt` that quote a message's words (`prompt::Prompt::quoted`):
    /// the llama.cpp engine reads control tokens' text there as plain text; the `openai` engine,
    /// whose server parses control tokens' text anywhere, breaks the markers spelled there with
    /// a zero-width space (`openai/quoting.rs`).
    pub quoted: Vec<std::ops::Range<usize>>,
    /// Index of this model turn within its run, starting at 0. The scripted engine answers
    /// with its turn of this index; other engines ignore it.
    pub turn: usize,
    pub sampling: Sampling,
}

/// Sampling and stopping parameters. `Default` is greedy, as Punie was trained and evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub max_tokens: usize,
    /// 0.0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: i32,
    pub seed: u32,
    /// Generation stops before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks only).
    pub ignore_eog: bool,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            max_tokens: 1024,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: vec!["<|im_end|>".to_owned(), "<|endoftext|>".to_owned()],
            ignore_eog: false,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The context window filled up before `max_tokens`: prompt and output take all of it.
    ContextFull,
    /// The caller cancelled.
    Cancelled,
}

impl FinishReason {
    /// The name in transcripts: `stop`, `length`, `context_full`, `cancelled`.
    pub fn name(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContextFull => "context_full",
            FinishReason::Cancelled => "cancelled",
        }
    }

    /// Whether the output was cut before the model ended it.
    pub fn is_cut(self) -> bool {
        matches!(self, FinishReason::Length | FinishReason::ContextFull)
    }
}

/// The result of one request.
#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub finish: FinishReason,
    /// Tokens in the prompt.
    pub n_prompt: usize,
    /// Prompt tokens actually evaluated (the rest came from the KV cache).
    pub n_evaluated: usize,
    /// Tokens generated.
    pub n_generated: usize,
    pub timings: Timings,
}

/// A token count for engines without a tokenizer at hand: four bytes a token, the usual rule of
/// thumb for English text and code.
pub(crate) fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

impl Generation {
    /// A generation that has produced nothing yet, for an engine to fill in as it streams.
    pub fn empty(n_prompt: usize) -> Generation {
        Generation {
            text: String::new(),
            finish: FinishReason::Stop,
            n_prompt,
            n_evaluated: 0,
            n_generated: 0,
            timings: Timings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Time to evaluate the prompt's new tokens.
    pub prefill: Duration,
    /// From the request to the first generated token.
    pub time_to_first_token: Duration,
    /// Time spent generating after the first token.
    pub decode: Duration,
}

/// Errors an engine reports; each says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("model not installed: run punie models fetch (looked for {path})")]
    ModelMissing { path: String },
    #[error("cannot load model {path}: {reason}")]
    ModelInvalid { path: String, reason: String },
    #[error("prompt of {n_prompt} tokens does not fit the context of {n_ctx} tokens")]
    ContextOverflow { n_prompt: usize, n_ctx: usize },
    #[error("scripted engine: {0}")]
    Script(String),
    #[error("server {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("engine failed: {0}")]
    Backend(String),
    #[error(
        "the engine did not finish within {:.1} s (PUNIE_ENGINE_DEADLINE sets the limit)",
        *millis as f64 / 1000.0
    )]
    Deadline { millis: u64 },
    #[error("the engine stopped")]
    Stopped,
}

/// What every engine does. Implementations run on the engine thread, so they need not be `Sync`.
pub trait Engine {
    /// A short description for logs and reports: kind and model.
    fn describe(&self) -> String;

    /// Generate the next turn, calling `on_text` with each piece of text as it is produced.
    /// Returns with [`FinishReason::Cancelled`] within one decode step of `cancel` being set.
    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError>;

    /// Evaluates `prompt_start`, the opening of a prompt likely to come next, into the KV cache
    /// while the engine would otherwise sit idle, so that prompt pays only for what follows.
    /// Only appends to what the cache holds, and stops between decode calls once `cancel` is
    /// set (a request arrived), keeping what it evaluated; engines without a cache do nothing.
    /// `quoted` as in [`GenerateRequest::quoted`]. Returns how many tokens were evaluated.
    fn prepare(
        &mut self,
        _prompt_start: &str,
        _quoted: &[std::ops::Range<usize>],
        _cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        Ok(0)
    }

    /// Number of tokens `text` tokenizes to (special tokens parsed), for reports.
    /// Engines without a tokenizer estimate.
    fn count_tokens(&self, text: &str) -> Result<usize, EngineError>;

    /// The context window in tokens (prompt and output together), when known.
    fn context_size(&self) -> Option<usize>;
}

/// What a caller needs to fit prompts into an engine's context.
#[derive(Debug, Clone)]
pub struct ContextWindow {
    /// Tokens of prompt and output together.
    pub n_ctx: usize,
    pub counter: TokenCounter,
}

/// Counts tokens the way the engine will, from any thread: with the model's own vocabulary
/// for llama.cpp engines (loaded apart from the engine's, so counting never waits for a
/// decode), by [`estimate_tokens`] for the others.
#[derive(Clone, Default)]
pub struct TokenCounter {
    vocabulary: Option<Arc<llama::GgufTokenizer>>,
}

impl TokenCounter {
    pub(crate) fn new(vocabulary: Option<Arc<llama::GgufTokenizer>>) -> TokenCounter {
        TokenCounter { vocabulary }
    }

    /// Tokens of `text`, a rendered prompt whose `quoted` ranges are the messages' words
    /// (`prompt::Prompt::quoted`), plus one for a BOS token.
    pub fn count_prompt(&self, text: &str, quoted: &[std::ops::Range<usize>]) -> usize {
        match &self.vocabulary {
            Some(vocabulary) => vocabulary.count(text, quoted) + 1,
            None => estimate_tokens(text),
        }
    }

    /// Tokens of `words`, a message's words (all of them quoted), as part of a prompt.
    pub fn count_words(&self, words: &str) -> usize {
        match &self.vocabulary {
            Some(vocabulary) => vocabulary.count(words, std::slice::from_ref(&(0..words.len()))),
            None => estimate_tokens(words),
        }
    }

    /// Whether counts are the model's own, not estimates.
    pub fn is_exact(&self) -> bool {
        self.vocabulary.is_some()
    }
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_exact() {
            "TokenCounter(vocabulary)"
        } else {
            "TokenCounter(estimate)"
        })
    }
}
