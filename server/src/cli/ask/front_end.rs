//! [`TerminalFrontEnd`]: the features' front end for `punie ask`. No editor: files are read
//! and written on disk. Progress goes to stderr: a spinner with the current step when stderr
//! is a terminal, plain lines (`punie: read_file README.md`) otherwise, so logs and CI stay
//! readable. Permission questions are asked on the terminal (`prompt`) when stdin and stderr
//! are both terminals; otherwise nobody can answer, and writes and commands are refused
//! unless `--allow-writes` / `--allow-commands` allowed them before the run.

use crate::sync;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::engine::EngineSpec;
use crate::features::{EditOutcome, FileChange, FrontEnd, OpenDocument};
use crate::policy::{self, Answer, Prompt};

use super::prompt;

pub(super) struct TerminalFrontEnd {
    progress: Mutex<Progress>,
    /// Someone at a terminal can answer permission questions.
    interactive: bool,
}

enum Progress {
    Terminal(ProgressBar),
    Lines,
}

impl TerminalFrontEnd {
    /// `terminal`: stderr is a terminal (a spinner); `interactive`: stdin is one too (questions).
    pub(super) fn new(terminal: bool, interactive: bool) -> TerminalFrontEnd {
        let progress = if terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            Progress::Terminal(bar)
        } else {
            Progress::Lines
        };
        TerminalFrontEnd {
            progress: Mutex::new(progress),
            interactive,
        }
    }

    pub(super) fn loading(&self, spec: &EngineSpec) {
        let what = match spec {
            EngineSpec::Default => "loading the default model".to_owned(),
            EngineSpec::Llama { path } => format!("loading {}", path.display()),
            EngineSpec::OpenAi { url, model } => format!("using {model} at {url}"),
            EngineSpec::Scripted { path } => format!("scripted engine {}", path.display()),
        };
        self.say(&what);
    }

    pub(super) fn finish(&self) {
        if let Progress::Terminal(bar) = &*self.lock() {
            bar.finish_and_clear();
        }
    }

    /// Shows one line of progress, escaped: a failure's reason can quote the model's words.
    fn say(&self, message: &str) {
        let message = policy::one_line(message);
        match &*self.lock() {
            Progress::Terminal(bar) => bar.set_message(message),
            Progress::Lines => {
                let _ = writeln!(std::io::stderr().lock(), "punie: {message}");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        sync::lock(&self.progress)
    }
}

impl FrontEnd for TerminalFrontEnd {
    fn open_document(&self, _path: &Path, _cancel: &CancelFlag) -> Option<OpenDocument> {
        None
    }

    fn ask_permission(&self, prompt: &Prompt, cancel: &CancelFlag) -> Answer {
        if !self.interactive {
            if prompt.secret.is_some() {
                return Answer::Unavailable(
                    "no terminal to ask on, and a file named like a secret is read only when \
                     you answer"
                        .to_owned(),
                );
            }
            return Answer::Unavailable(format!(
                "no terminal to ask on; pass {}",
                prompt::flag_for(prompt)
            ));
        }
        // The spinner would draw over the question: hide it while the user reads.
        match &*self.lock() {
            Progress::Terminal(bar) => bar.suspend(|| prompt::ask(prompt, cancel)),
            Progress::Lines => prompt::ask(prompt, cancel),
        }
    }

    fn apply_change(
        &self,
        _change: &FileChange,
        _confirm: bool,
        _cancel: &CancelFlag,
    ) -> Option<EditOutcome> {
        None
    }

    fn on_event(&self, event: RunEvent) {
        match &event {
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
}
