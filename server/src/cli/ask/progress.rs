//! Progress of `punie ask` on stderr: a spinner with the current step when stderr is a
//! terminal, plain lines (`punie: read_file README.md`) otherwise, so logs and CI stay readable.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::agent::RunEvent;
use crate::engine::EngineSpec;

pub(super) struct Progress {
    mode: Mode,
}

enum Mode {
    Terminal(ProgressBar),
    Lines,
}

impl Progress {
    pub(super) fn new(terminal: bool, _json: bool) -> Progress {
        if !terminal {
            return Progress { mode: Mode::Lines };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress {
            mode: Mode::Terminal(bar),
        }
    }

    pub(super) fn loading(&mut self, spec: &EngineSpec) {
        let what = match spec {
            EngineSpec::Default => "loading the default model".to_owned(),
            EngineSpec::Llama { path } => format!("loading {}", path.display()),
            EngineSpec::OpenAi { url, model } => format!("using {model} at {url}"),
            EngineSpec::Scripted { path } => format!("scripted engine {}", path.display()),
        };
        self.say(&what);
    }

    pub(super) fn event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::TurnFinished { turn, stats } => {
                let speed = stats.decode_tokens_per_second();
                let mut line = format!(
                    "turn {turn}: {} prompt tokens ({} evaluated), {} generated",
                    stats.n_prompt, stats.n_evaluated, stats.n_generated
                );
                if speed > 0.0 {
                    line.push_str(&format!(", {speed:.1} tok/s"));
                }
                self.say(&line);
            }
            RunEvent::ToolFinished { label, .. } => self.say(&format!("{label}: ok")),
            RunEvent::Cancelled => self.say("cancelled"),
            RunEvent::Failed { reason } => self.say(&format!("failed: {reason}")),
            RunEvent::Answer { .. } => self.say("done"),
            RunEvent::Truncated { truncation, .. } => self.say(&format!(
                "truncated: {truncation}; `punie ask --continue` with a follow-up goes on from there"
            )),
            other => {
                if let Some(message) = other.progress_message() {
                    self.say(&message);
                }
            }
        }
    }

    pub(super) fn finish(&mut self) {
        if let Mode::Terminal(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn say(&mut self, message: &str) {
        match &self.mode {
            Mode::Terminal(bar) => bar.set_message(message.to_owned()),
            Mode::Lines => {
                let _ = writeln!(std::io::stderr().lock(), "punie: {message}");
            }
        }
    }
}
