//! The run transcript: one JSON object per line in `<dir>/<run_id>.jsonl`, for debugging and
//! evaluation.
//!
//! Every line has `"event"` and `"run_id"`. Events, in order: `run` (question, session,
//! profile), then per turn `prompt` (the full prompt on the first turn, afterwards only what
//! was appended to the previous prompt and output, with `prefix_reused`), `output` (raw model
//! text, finish reason, token counts, timings), `tool_call` and `tool_result` per snippet (each tool
//! call in it with its `permission`: decision, who decided, the protected rule, the scope),
//! `rejected_call` for calls that could not run; finally `end` (status, answer, totals).
//! Writing is best effort: a full disk must not fail the user's run, so errors are logged once
//! and the transcript stops.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Where `.punie/transcripts` lives for a workspace.
pub fn default_transcript_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join(".punie").join("transcripts")
}

/// An open transcript file, or a disabled one.
pub(crate) struct Transcript {
    run_id: String,
    writer: Option<BufWriter<File>>,
    path: Option<PathBuf>,
}

impl Transcript {
    /// Opens `<dir>/<run_id>.jsonl` (creating `dir`), or a disabled transcript when `dir` is `None`
    /// or cannot be written.
    pub(crate) fn open(dir: Option<&Path>, run_id: &str) -> Transcript {
        let mut transcript = Transcript {
            run_id: run_id.to_owned(),
            writer: None,
            path: None,
        };
        let Some(dir) = dir else { return transcript };
        let path = dir.join(format!("{run_id}.jsonl"));
        let opened = std::fs::create_dir_all(dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
        match opened {
            Ok(file) => {
                transcript.writer = Some(BufWriter::new(file));
                transcript.path = Some(path);
            }
            Err(err) => tracing::warn!("cannot write the transcript {}: {err}", path.display()),
        }
        transcript
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one line `{"event": event, "run_id": …, ...fields}`; `fields` must be an object.
    pub(crate) fn write(&mut self, event: &str, fields: Value) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let mut line = json!({"event": event, "run_id": self.run_id});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        // Flushed per line so a crash or a kill leaves every finished step on disk.
        let written = serde_json::to_writer(&mut *writer, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"))
            .and_then(|()| writer.flush());
        if let Err(err) = written {
            tracing::warn!("transcript write failed, no more lines will be written: {err}");
            self.writer = None;
        }
    }
}

/// A permission ruling as the transcript and `punie ask --json` record it:: `{"decision", "by", "rule"?, "answer"?, "scope"?}`.
pub fn ruling_json(ruling: &crate::policy::Ruling) -> serde_json::Value {
    let answer = match &ruling.by {
        crate::policy::RuledBy::User(answer) => Some(answer.name()),
        _ => None,
    };
    json!({
        "decision": ruling.decision(),
        "by": ruling.by_name(),
        "rule": ruling.rule.map(|rule| rule.id),
        "answer": answer,
        "scope": ruling.scope.as_ref().map(crate::policy::Scope::describe),
        "subject": ruling.subject,
    })
}
