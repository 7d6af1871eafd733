//! The run transcript: one JSON object per line in `<dir>/<run_id>.jsonl`, for debugging and
//! evaluation.
//!
//! Every line has `"event"` and `"run_id"`. Events, in order: `run` (question, session,
//! profile, how many earlier messages the run continued), then per turn `context_trimmed` (when
//! earlier context was dropped to fit), `prompt` (its size, whether it extends the previous
//! prompt and output), `output` (raw model text, finish reason, token counts, timings),
//! `tool_call` and `tool_result` per snippet (`response`: exactly what the model was shown; each
//! tool call in it with its `permission`: decision, who decided, the protected rule, the scope),
//! `rejected_call` for calls that could not run; finally `end` (status, answer, totals).
//!
//! **Each text is stored once.** A prompt is the conversation rendered, so it is not stored:
//! the question is in `run`, the model's turns in `output`, what the tools returned in
//! `tool_result`; `punie render-prompt` renders them again, and the messages before this run
//! are in the session (or the earlier runs' transcripts). A snippet's code is in the `output`
//! that called it.
//!
//! **Bounded.** A transcript stops at [`MAX_FILE_BYTES`] (its last line says so); opening one
//! removes the directory's transcripts older than [`MAX_AGE`] and then the oldest beyond
//! [`MAX_DIR_BYTES`] or [`MAX_FILES`]. Writing is best effort: a full disk must not fail the
//! user's run, so errors are logged once and the transcript stops.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::workspace_state;

/// One transcript's size at most.
pub(crate) const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// All transcripts of a directory together.
pub(crate) const MAX_DIR_BYTES: u64 = 64 * 1024 * 1024;
/// Transcripts kept in a directory.
pub(crate) const MAX_FILES: usize = 500;
/// How long a transcript is kept.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Where `.punie/transcripts` lives for a workspace.
pub fn default_transcript_dir(workspace_root: &Path) -> PathBuf {
    workspace_state::state_dir(workspace_root).join("transcripts")
}

/// An open transcript file, or a disabled one.
pub(crate) struct Transcript {
    run_id: String,
    writer: Option<BufWriter<File>>,
    path: Option<PathBuf>,
    written: u64,
}

impl Transcript {
    /// Opens `<dir>/<run_id>.jsonl` (creating `dir`, pruning it), or a disabled transcript when
    /// `dir` is `None` or cannot be written.
    pub(crate) fn open(dir: Option<&Path>, run_id: &str) -> Transcript {
        let mut transcript = Transcript {
            run_id: run_id.to_owned(),
            writer: None,
            path: None,
            written: 0,
        };
        let Some(dir) = dir else { return transcript };
        let path = dir.join(format!("{run_id}.jsonl"));
        let opened = workspace_state::create_dir(dir).and_then(|()| {
            prune(dir, SystemTime::now());
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            // A link in place of the file is not followed; the user's words are theirs alone.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW).mode(0o600);
            }
            options.open(&path)
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
        if self.writer.is_none() {
            return;
        }
        let mut line = json!({"event": event, "run_id": self.run_id});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        if self.written + bytes.len() as u64 > MAX_FILE_BYTES {
            let full = json!({"event": "transcript_full", "run_id": self.run_id, "max_bytes": MAX_FILE_BYTES});
            bytes = format!("{full}\n").into_bytes();
            self.append(&bytes);
            self.writer = None;
            return;
        }
        self.append(&bytes);
    }

    fn append(&mut self, bytes: &[u8]) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        // Flushed per line so a crash or a kill leaves every finished step on disk.
        match writer.write_all(bytes).and_then(|()| writer.flush()) {
            Ok(()) => self.written += bytes.len() as u64,
            Err(err) => {
                tracing::warn!("transcript write failed, no more lines will be written: {err}");
                self.writer = None;
            }
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

/// Removes the transcripts of `dir` that are older than [`MAX_AGE`] at `now`, then the oldest
/// until the rest fit [`MAX_DIR_BYTES`] and [`MAX_FILES`] with room for one more. Only
/// `*.jsonl` files are touched; failures are ignored (another run may prune at the same time).
fn prune(dir: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut transcripts: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "jsonl"))
        .filter_map(|entry| {
            let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some((meta.modified().ok()?, meta.len(), entry.path()))
        })
        .collect();
    // Newest first.
    transcripts.sort_by_key(|t| std::cmp::Reverse(t.0));
    let mut kept_bytes = 0;
    let mut kept_files = 0;
    for (modified, bytes, path) in transcripts {
        let too_old = now.duration_since(modified).is_ok_and(|age| age > MAX_AGE);
        let too_many =
            kept_files + 1 >= MAX_FILES || kept_bytes + bytes + MAX_FILE_BYTES > MAX_DIR_BYTES;
        if too_old || too_many {
            let _ = std::fs::remove_file(&path);
        } else {
            kept_bytes += bytes;
            kept_files += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_age(path: &Path, age: Duration) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn old_transcripts_go_and_the_directory_stays_under_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; 4 * 1024 * 1024];
        // 20 transcripts of 4 MiB, one an hour older than the next; one of them a month old.
        for n in 0..20 {
            let path = dir.path().join(format!("run-{n:02}.jsonl"));
            std::fs::write(&path, &big).unwrap();
            set_age(&path, Duration::from_secs(3600 * (20 - n)));
        }
        set_age(&dir.path().join("run-19.jsonl"), MAX_AGE * 2);
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        prune(dir.path(), SystemTime::now());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // 64 MiB with room for one more 8 MiB transcript: the 14 newest of 4 MiB, without the
        // month-old one; other files untouched.
        let expected: Vec<String> = ["notes.txt".to_owned()]
            .into_iter()
            .chain((5..19).map(|n| format!("run-{n:02}.jsonl")))
            .collect();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_transcript_stops_at_its_size_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::open(Some(dir.path()), "run-x");
        let chunk = "y".repeat(1024 * 1024);
        for _ in 0..10 {
            transcript.write("output", json!({"text": chunk}));
        }
        let text = std::fs::read_to_string(transcript.path().unwrap()).unwrap();
        assert!(text.len() as u64 <= MAX_FILE_BYTES, "{}", text.len());
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["event"], "transcript_full");
        assert_eq!(text.lines().count(), 8);
    }
}
