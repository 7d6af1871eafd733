//! Limits that hold: what a snippet may take (time, memory, output, tool calls), the clock
//! that bounds everything it causes, and what the parent keeps of its tool calls.
//!
//! * **Time.** The snippet's limit counts its own code *and* its tool calls: each call runs
//!   with the time that is left as its deadline (under its own per-call limit, e.g.
//!   `CommandLimits::timeout`), through a cancel flag that fires at the deadline. Only the
//!   host's wait for the user's permission answer pauses the clock, and pauses never take the
//!   snippet past [`MAX_PERMISSION_PAUSE`] beyond its limit: that is the hard cap on its whole
//!   wall time.
//! * **Bytes.** Settings cannot lift the caps here ([`SandboxLimits::capped`]); a record of a
//!   tool call keeps each long argument as its size and digest, never its contents, and an
//!   error as at most `protocol::MAX_ERROR_BYTES`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::cancel::CancelFlag;

/// Limits of one snippet. The server's settings `sandbox.timeoutMs`, `memoryMb` and
/// `outputKb` map onto the first three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock time of everything the snippet causes: its code and its tool calls (the
    /// user's time to answer a permission prompt excepted).
    pub timeout_ms: u64,
    /// Address space the worker may add for the snippet.
    pub memory_mb: u64,
    /// Printed output kept; the rest is dropped and a marker added.
    pub output_kb: u64,
    pub max_tool_calls: usize,
}

impl Default for SandboxLimits {
    fn default() -> SandboxLimits {
        SandboxLimits {
            timeout_ms: 10_000,
            memory_mb: 256,
            output_kb: 256,
            max_tool_calls: 64,
        }
    }
}

const MAX_TOOL_CALLS: usize = 1_000;

/// How much longer than its limit a snippet may run while the host waits for permission
/// answers: the hard cap on a snippet's wall time is its limit plus this.
pub(crate) const MAX_PERMISSION_PAUSE: Duration = Duration::from_secs(300);

impl SandboxLimits {
    /// The most any setting can ask for (the settings' upper bounds, `features::Settings`).
    pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
    pub const MAX_MEMORY_MB: u64 = 16 * 1024;
    pub const MAX_OUTPUT_KB: u64 = 4 * 1024;

    /// These limits within the sandbox's own caps (and each at least 1).
    pub fn capped(&self) -> SandboxLimits {
        SandboxLimits {
            timeout_ms: self.timeout_ms.clamp(1, Self::MAX_TIMEOUT_MS),
            memory_mb: self.memory_mb.clamp(1, Self::MAX_MEMORY_MB),
            output_kb: self.output_kb.clamp(1, Self::MAX_OUTPUT_KB),
            max_tool_calls: self.max_tool_calls.clamp(1, MAX_TOOL_CALLS),
        }
    }

    /// Bytes of printed output a snippet keeps.
    pub(crate) fn output_bytes(&self) -> usize {
        usize::try_from(self.output_kb.saturating_mul(1024)).unwrap_or(usize::MAX)
    }
}

/// One snippet's time. Lives on the thread that drives the snippet.
pub(crate) struct SnippetClock<'run> {
    run: &'run CancelFlag,
    deadline: Cell<Instant>,
    cap: Instant,
}

impl<'run> SnippetClock<'run> {
    /// Starts now, with `limit`, which pauses may extend by `max_pause` in all
    /// ([`MAX_PERMISSION_PAUSE`]); `run` is the run's own cancel flag.
    pub(crate) fn start(
        run: &'run CancelFlag,
        limit: Duration,
        max_pause: Duration,
    ) -> SnippetClock<'run> {
        let now = Instant::now();
        SnippetClock {
            run,
            deadline: Cell::new(now + limit),
            cap: now + limit + max_pause,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline.get()
    }

    /// Time left before the deadline.
    pub(crate) fn left(&self) -> Duration {
        self.deadline().saturating_duration_since(Instant::now())
    }

    /// Runs `wait` (the host asking the user) with the clock stopped, up to the hard cap: the
    /// flag `wait` gets is set when the run is cancelled or the cap passes.
    pub(crate) fn paused<T>(&self, wait: impl FnOnce(&CancelFlag) -> T) -> T {
        let started = Instant::now();
        let res = wait(&CancelFlag::joined(&[self.run], Some(self.cap)));
        self.deadline
            .set((self.deadline() + started.elapsed()).min(self.cap));
        res
    }

    /// The flag a tool call runs under: set when the run is cancelled or the snippet's time
    /// is up.
    pub(crate) fn cancel_flag(&self) -> CancelFlag {
        CancelFlag::joined(&[self.run], Some(self.deadline()))
    }
}

/// Longest argument kept as given in a tool call's record (paths and commands fit).
const MAX_KEPT_ARGUMENT_BYTES: usize = 256;

/// A tool call's arguments as the record keeps them: each short argument as given, each long
/// one as `{"bytes": N, "sha256": "…"}` of its text (a string's UTF-8, else its JSON).
pub(crate) fn summarize_args(args: &serde_json::Map<String, Value>) -> Value {
    let summarized = args
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
                other => std::borrow::Cow::Owned(other.to_string()),
            };
            let kept = if text.len() <= MAX_KEPT_ARGUMENT_BYTES {
                value.clone()
            } else {
                let digest = sha2::Sha256::digest(text.as_bytes());
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                serde_json::json!({"bytes": text.len(), "sha256": hex})
            };
            (name.clone(), kept)
        })
        .collect();
    Value::Object(summarized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_cannot_lift_the_caps() {
        let wild = SandboxLimits {
            timeout_ms: u64::MAX,
            memory_mb: 0,
            output_kb: u64::MAX,
            max_tool_calls: usize::MAX,
        };
        let capped = wild.capped();
        assert_eq!(capped.timeout_ms, SandboxLimits::MAX_TIMEOUT_MS);
        assert_eq!(capped.memory_mb, 1);
        assert_eq!(capped.output_kb, SandboxLimits::MAX_OUTPUT_KB);
        assert_eq!(capped.max_tool_calls, MAX_TOOL_CALLS);
        assert_eq!(SandboxLimits::default().capped(), SandboxLimits::default());
    }

    #[test]
    fn pauses_move_the_deadline_up_to_the_cap() {
        let run = CancelFlag::default();
        let hour = Duration::from_secs(3600);
        let clock = SnippetClock::start(&run, hour, Duration::from_millis(30));
        let before = clock.deadline();
        clock.paused(|_| std::thread::sleep(Duration::from_millis(20)));
        let after_one = clock.deadline();
        assert!(after_one >= before + Duration::from_millis(20));
        clock.paused(|_| std::thread::sleep(Duration::from_millis(20)));
        assert_eq!(
            clock.deadline(),
            before + Duration::from_millis(30),
            "pauses stop at the cap"
        );
        assert!(!clock.cancel_flag().is_cancelled());
        // A wait that outlasts the cap is told to give up.
        let capped = SnippetClock::start(&run, Duration::ZERO, Duration::from_millis(10));
        let gave_up = capped.paused(|cancel| {
            std::thread::sleep(Duration::from_millis(15));
            cancel.is_cancelled()
        });
        assert!(gave_up);
        let short = SnippetClock::start(&run, Duration::from_millis(10), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(15));
        assert!(short.left().is_zero() && short.cancel_flag().is_cancelled());
        run.cancel();
        let fresh = SnippetClock::start(&run, hour, Duration::ZERO);
        assert!(
            fresh.cancel_flag().is_cancelled(),
            "the run's cancel reaches the calls"
        );
    }

    #[test]
    fn long_arguments_are_kept_as_size_and_digest() {
        let args = serde_json::json!({
            "path": "src/app.py",
            "content": "x".repeat(10_000),
            "args": ["-la"],
        });
        let summary = summarize_args(args.as_object().unwrap());
        assert_eq!(summary["path"], "src/app.py");
        assert_eq!(summary["args"], serde_json::json!(["-la"]));
        assert_eq!(summary["content"]["bytes"], 10_000);
        assert_eq!(summary["content"]["sha256"].as_str().unwrap().len(), 64);
        assert!(summary.to_string().len() < 300);
    }
}
