//! The scripted engine: canned model turns from a JSON file, for deterministic tests.
//!
//! The file holds a JSON array of strings (one per model turn) or
//! `{"turns": [...], "chunk_delay_ms": N, "n_ctx": N}` (INTERFACES.md §2). Each run has its own cursor:
//! [`GenerateRequest::turn`] picks the turn, so runs never disturb each other. Past the last
//! turn the "model" ends its output at once (empty text). Turns are streamed in small chunks
//! so streaming, progress and cancellation are exercised as with a real model. Tokens are
//! [`estimate_tokens`]: a turn is cut at `max_tokens`, and with `n_ctx` the engine has a context
//! window like a model's (a prompt that does not fit is an error, an answer that reaches the end
//! is cut), so that context management can be tested deterministically. Without `n_ctx` in the
//! script, `PUNIE_CTX_SIZE` ([`EngineConfig::n_ctx`](super::EngineConfig)) gives the window.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::plain_file;

use super::{
    CancelFlag, Engine, EngineError, FinishReason, GenerateRequest, Generation, Timings,
    estimate_tokens,
};

/// Characters per streamed chunk: small enough that a turn arrives in many pieces.
const CHUNK_CHARS: usize = 8;

/// The largest script read; the test suites' are a few KiB.
const MAX_SCRIPT_BYTES: u64 = 16 * 1024 * 1024;

/// The text of a script. A project's settings may name it (Zed merges `.zed/settings.json`
/// in), so it is read as [`plain_file`] reads a planted file, at most [`MAX_SCRIPT_BYTES`]:
/// `/dev/zero` would fill the memory, a FIFO or the server's own stdin would block or steal
/// its input.
fn read_script(path: &Path) -> Result<String, String> {
    let file = plain_file::open_named(path).map_err(|err| err.to_string())?;
    let bytes = plain_file::read(file, MAX_SCRIPT_BYTES, plain_file::IfLonger::Refuse)
        .map_err(|err| err.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

pub struct ScriptedEngine {
    path: PathBuf,
    turns: Vec<String>,
    chunk_delay: Duration,
    n_ctx: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScriptFile {
    Turns(Vec<String>),
    WithOptions {
        turns: Vec<String>,
        #[serde(default)]
        chunk_delay_ms: u64,
        #[serde(default)]
        n_ctx: Option<usize>,
    },
}

impl ScriptedEngine {
    /// Reads and validates the script. A relative path is resolved against the working directory.
    pub fn load(path: &Path) -> Result<ScriptedEngine, EngineError> {
        let text = read_script(path)
            .map_err(|why| EngineError::Script(format!("cannot read {}: {why}", path.display())))?;
        ScriptedEngine::from_json(path, &text)
    }

    fn from_json(path: &Path, text: &str) -> Result<ScriptedEngine, EngineError> {
        let script: ScriptFile = serde_json::from_str(text).map_err(|err| {
            EngineError::Script(format!(
                "{} is not a JSON array of strings nor {{\"turns\": [...], \"chunk_delay_ms\": N, \"n_ctx\": N}}: {err}",
                path.display()
            ))
        })?;
        let (turns, chunk_delay_ms, n_ctx) = match script {
            ScriptFile::Turns(turns) => (turns, 0, None),
            ScriptFile::WithOptions {
                turns,
                chunk_delay_ms,
                n_ctx,
            } => (turns, chunk_delay_ms, n_ctx),
        };
        Ok(ScriptedEngine {
            path: path.to_owned(),
            turns,
            chunk_delay: Duration::from_millis(chunk_delay_ms),
            n_ctx,
        })
    }
}

impl ScriptedEngine {
    /// The context window when the script does not set one.
    pub fn default_context(&mut self, n_ctx: Option<usize>) {
        self.n_ctx = self.n_ctx.or(n_ctx);
    }
}

impl Engine for ScriptedEngine {
    fn describe(&self) -> String {
        format!(
            "scripted:{} ({} turns)",
            self.path.display(),
            self.turns.len()
        )
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let n_prompt = estimate_tokens(&request.prompt);
        let room = match self.n_ctx {
            Some(n_ctx) if n_prompt >= n_ctx => {
                return Err(EngineError::ContextOverflow { n_prompt, n_ctx });
            }
            Some(n_ctx) => n_ctx - n_prompt,
            None => usize::MAX,
        };
        let turn = self
            .turns
            .get(request.turn)
            .map(String::as_str)
            .unwrap_or("");
        // A turn longer than `max_tokens` or the room left is cut there, as a model's would be.
        let max_tokens = request.sampling.max_tokens.min(room);
        let (turn, mut finish) = match cut_at_tokens(turn, max_tokens) {
            Some(kept) if max_tokens < request.sampling.max_tokens => {
                (kept, FinishReason::ContextFull)
            }
            Some(kept) => (kept, FinishReason::Length),
            None => (turn, FinishReason::Stop),
        };
        let chars: Vec<char> = turn.chars().collect();
        let mut text = String::new();
        let mut first_token_at = None;
        for chunk in chars.chunks(CHUNK_CHARS) {
            if cancel.is_cancelled() {
                finish = FinishReason::Cancelled;
                break;
            }
            if !self.chunk_delay.is_zero() {
                sleep_unless_cancelled(self.chunk_delay, cancel);
                if cancel.is_cancelled() {
                    finish = FinishReason::Cancelled;
                    break;
                }
            }
            let piece: String = chunk.iter().collect();
            on_text(&piece);
            text.push_str(&piece);
            first_token_at.get_or_insert_with(|| started.elapsed());
        }
        let time_to_first_token = first_token_at.unwrap_or_else(|| started.elapsed());
        Ok(Generation {
            n_generated: estimate_tokens(&text),
            text,
            finish,
            n_prompt,
            n_evaluated: n_prompt,
            timings: Timings {
                prefill: Duration::ZERO,
                time_to_first_token,
                decode: started.elapsed().saturating_sub(time_to_first_token),
            },
        })
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EngineError> {
        Ok(estimate_tokens(text))
    }

    fn context_size(&self) -> Option<usize> {
        self.n_ctx
    }
}

/// The longest prefix of `text` that [`estimate_tokens`] counts as at most `max_tokens`, or
/// `None` when the whole text fits.
fn cut_at_tokens(text: &str, max_tokens: usize) -> Option<&str> {
    if estimate_tokens(text) <= max_tokens {
        return None;
    }
    let mut end = max_tokens.saturating_mul(4).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(&text[..end])
}

/// Sleeps for `total`, or until `cancel` is set: that wakes it at once.
fn sleep_unless_cancelled(total: Duration, cancel: &CancelFlag) {
    let never = crossbeam_channel::never::<()>();
    let _ = cancel.wait(&never, Some(Instant::now() + total));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Sampling;

    fn engine(json: &str) -> Result<ScriptedEngine, EngineError> {
        ScriptedEngine::from_json(Path::new("t.json"), json)
    }

    fn request(turn: usize) -> GenerateRequest {
        GenerateRequest {
            prompt: "p".into(),
            quoted: Vec::new(),
            turn,
            sampling: Sampling::default(),
        }
    }

    #[track_caller]
    fn check(json: &str, turn: usize, expect: &str) {
        let mut engine = engine(json).unwrap();
        let mut streamed = String::new();
        let generation = engine
            .generate(&request(turn), &CancelFlag::default(), &mut |t| {
                streamed.push_str(t)
            })
            .unwrap();
        assert_eq!(generation.text, expect);
        assert_eq!(streamed, expect);
    }

    /// A script a project's settings named may be anything: what is not a regular file, or is
    /// larger than any script, is refused without being read to its end or waited on.
    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_of_bounded_size_is_read() {
        let refused = |path: &Path, why: &str| match ScriptedEngine::load(path) {
            Err(EngineError::Script(message)) => assert!(message.ends_with(why), "{message}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{} was read", path.display()),
        };
        refused(Path::new("/dev/zero"), "not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        refused(&fifo, "not a regular file");
        refused(dir.path(), "is a directory");
        let big = dir.path().join("big.json");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_SCRIPT_BYTES + 1).unwrap();
        refused(&big, &format!("too large ({} bytes)", MAX_SCRIPT_BYTES + 1));
        let script = dir.path().join("turns.json");
        std::fs::write(&script, r#"["one"]"#).unwrap();
        assert_eq!(ScriptedEngine::load(&script).unwrap().turns, ["one"]);
    }

    #[test]
    fn turns_by_index_and_empty_past_the_end() {
        check(
            r#"["first turn, long enough to be chunked", "second"]"#,
            0,
            "first turn, long enough to be chunked",
        );
        check(r#"["first", "second"]"#, 1, "second");
        check(r#"["first"]"#, 5, "");
        check(
            r#"{"turns": ["é<tool_call>"], "chunk_delay_ms": 0}"#,
            0,
            "é<tool_call>",
        );
    }

    #[test]
    fn turns_longer_than_max_tokens_are_cut() {
        let mut engine = engine(r#"["0123456789abcdefghij"]"#).unwrap();
        let mut request = request(0);
        request.sampling.max_tokens = 3;
        let generation = engine
            .generate(&request, &CancelFlag::default(), &mut |_| {})
            .unwrap();
        assert_eq!(
            (generation.text.as_str(), generation.finish),
            ("0123456789ab", FinishReason::Length)
        );
        request.sampling.max_tokens = 5;
        let generation = engine
            .generate(&request, &CancelFlag::default(), &mut |_| {})
            .unwrap();
        assert_eq!(generation.finish, FinishReason::Stop);
    }

    #[test]
    fn a_context_window_refuses_long_prompts_and_cuts_long_answers() {
        let mut engine = engine(r#"{"turns": ["0123456789abcdefghij"], "n_ctx": 6}"#).unwrap();
        assert_eq!(engine.context_size(), Some(6));
        let mut request = request(0);
        request.prompt = "12345678".into();
        let generation = engine
            .generate(&request, &CancelFlag::default(), &mut |_| {})
            .unwrap();
        assert_eq!(
            (generation.text.as_str(), generation.finish),
            ("0123456789abcdef", FinishReason::ContextFull)
        );
        request.prompt = "x".repeat(24);
        let err = engine
            .generate(&request, &CancelFlag::default(), &mut |_| {})
            .unwrap_err();
        assert_eq!(
            err,
            EngineError::ContextOverflow {
                n_prompt: 6,
                n_ctx: 6
            }
        );
    }

    #[test]
    fn bad_scripts_are_clear_errors() {
        for bad in ["", "{}", "[1, 2]", r#"{"turns": "x"}"#] {
            let err = engine(bad).err().expect("must fail").to_string();
            assert!(err.contains("t.json"), "{err}");
        }
        let err = ScriptedEngine::load(Path::new("/nonexistent/script.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("cannot read /nonexistent/script.json"),
            "{err}"
        );
    }

    #[test]
    fn cancel_stops_streaming() {
        let mut engine =
            engine(r#"{"turns": ["a long turn that takes a while"], "chunk_delay_ms": 50}"#)
                .unwrap();
        let cancel = CancelFlag::default();
        let mut chunks = 0;
        let generation = engine
            .generate(&request(0), &cancel.clone(), &mut |_| {
                chunks += 1;
                cancel.cancel();
            })
            .unwrap();
        assert_eq!(chunks, 1);
        assert_eq!(generation.finish, FinishReason::Cancelled);
    }
}
