//! [`LspFrontEnd`]: the features' [`FrontEnd`] over an editor. `read_file` sees unsaved
//! buffers, changes go through `workspace/applyEdit` (one undo reverts them), permission
//! questions are `window/showMessageRequest` dialogs, and the run's events go to the main
//! loop, which turns them into `$/progress`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::{Value, json};

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::features::text;
use crate::features::{EditOutcome, FileChange, FrontEnd, OpenDocument};
use crate::policy::{Answer, Before, DIALOG_SUBJECT_CHARS, Prompt, Scope};

use super::documents::DocumentStore;
use super::ext::{
    PERMISSION_ALLOW, PERMISSION_ALLOW_SESSION, PERMISSION_ANSWER_ALLOW,
    PERMISSION_ANSWER_ALLOW_SESSION, PERMISSION_ANSWER_DENY, PERMISSION_DENY, PERMISSION_REQUEST,
    PermissionChange, PermissionParams,
};
use super::main_loop::{ClientCaps, Task};

/// How long a permission dialog or an edit waits for the editor; no answer means no.
/// `PUNIE_LSP_REQUEST_TIMEOUT_MS` shortens it for tests of clients that never answer.
fn request_timeout() -> Duration {
    let millis = std::env::var("PUNIE_LSP_REQUEST_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    Duration::from_millis(millis)
}

pub(crate) struct LspFrontEnd {
    pub(crate) run_id: String,
    /// The run's workspace root: a prompt's paths are relative to it.
    pub(crate) root: PathBuf,
    pub(crate) documents: DocumentStore,
    pub(crate) caps: ClientCaps,
    pub(crate) tasks: Sender<Task>,
    /// The opening of each buffer version the run has read ([`Document::opening`]), the first
    /// one seen for a version: an edit is carried through the buffer's own edits only when the
    /// buffer is still that opening, and by comparing texts otherwise.
    pub(crate) openings: Mutex<HashMap<(String, i32), u64>>,
}

impl LspFrontEnd {
    /// Asks with `punie/permission`, which carries what a rich client shows before the
    /// answer: the diff's two texts, the whole text of a cut message.
    fn ask_punie_permission(&self, prompt: &Prompt, cancel: &CancelFlag) -> Answer {
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        let change = prompt.change.as_ref().and_then(|change| {
            Some(PermissionChange {
                uri: super::uri::from_path(&root.join(&change.path))?.to_string(),
                before: match &change.before {
                    Before::Text(text) => Some(text.clone()),
                    Before::Missing | Before::Binary { .. } | Before::TooLarge { .. } => None,
                },
                after: change.after.clone(),
                summary: change.diff.summary.clone(),
            })
        });
        let params = PermissionParams {
            run_id: self.run_id.clone(),
            tool: prompt.tool.to_owned(),
            kind: prompt.kind.name().to_owned(),
            title: prompt.headline(DIALOG_SUBJECT_CHARS),
            message: prompt.message(DIALOG_SUBJECT_CHARS),
            details: prompt.details(),
            cut: prompt.is_cut(DIALOG_SUBJECT_CHARS),
            session: prompt.session.as_ref().map(Scope::describe),
            change,
        };
        let Ok(params) = serde_json::to_value(&params) else {
            return Answer::NoAnswer;
        };
        let answer = client_request(
            &self.tasks,
            cancel,
            PERMISSION_REQUEST,
            params,
            request_timeout(),
        );
        let answer = match &answer {
            Some(Ok(result)) => result.get("answer").and_then(Value::as_str),
            _ => None,
        };
        match answer {
            Some(PERMISSION_ANSWER_ALLOW) => Answer::AllowOnce,
            // Only where the prompt offered it; otherwise it is this call only.
            Some(PERMISSION_ANSWER_ALLOW_SESSION) if prompt.session.is_some() => {
                Answer::AllowForSession
            }
            Some(PERMISSION_ANSWER_ALLOW_SESSION) => Answer::AllowOnce,
            Some(PERMISSION_ANSWER_DENY) => Answer::Deny,
            _ => Answer::NoAnswer,
        }
    }
}

impl FrontEnd for LspFrontEnd {
    fn open_document(&self, path: &Path, _cancel: &CancelFlag) -> Option<OpenDocument> {
        self.buffer(path)
    }

    fn ask_permission(&self, prompt: &Prompt, cancel: &CancelFlag) -> Answer {
        if self.caps.punie_permission {
            return self.ask_punie_permission(prompt, cancel);
        }
        let mut actions = vec![json!({"title": PERMISSION_ALLOW})];
        if prompt.session.is_some() {
            actions.push(json!({"title": PERMISSION_ALLOW_SESSION}));
        }
        actions.push(json!({"title": PERMISSION_DENY}));
        let params = json!({
            "type": 3,
            // Zed renders it as Markdown; VS Code's notifications make links of
            // `[…](command:…)`: what the request chose is shown literally by both.
            "message": prompt.markdown_message(DIALOG_SUBJECT_CHARS),
            "actions": actions,
        });
        let answer = client_request(
            &self.tasks,
            cancel,
            "window/showMessageRequest",
            params,
            request_timeout(),
        );
        let title = match &answer {
            Some(Ok(result)) => result.get("title").and_then(Value::as_str),
            _ => None,
        };
        match title {
            Some(PERMISSION_ALLOW) => Answer::AllowOnce,
            Some(PERMISSION_ALLOW_SESSION) => Answer::AllowForSession,
            Some(PERMISSION_DENY) => Answer::Deny,
            // Dismissal, an error or no answer within the timeout.
            _ => Answer::NoAnswer,
        }
    }

    fn apply_change(
        &self,
        change: &FileChange,
        confirm: bool,
        cancel: &CancelFlag,
    ) -> Option<EditOutcome> {
        if !self.caps.apply_edit {
            return None;
        }
        let change = match self.current(change) {
            Ok(Some(change)) => change,
            Ok(None) => return None,
            Err(ChangedMeanwhile) => return Some(EditOutcome::ChangedMeanwhile),
        };
        let edit = super::edits::workspace_edit(&change, &self.caps, confirm)?;
        let params = json!({"label": "Punie", "edit": edit});
        let outcome = match client_request(
            &self.tasks,
            cancel,
            "workspace/applyEdit",
            params,
            request_timeout(),
        ) {
            Some(Ok(result)) => {
                if result.get("applied").and_then(Value::as_bool) == Some(true) {
                    EditOutcome::Applied
                } else {
                    EditOutcome::Rejected
                }
            }
            Some(Err(error)) => {
                EditOutcome::Failed(format!("the editor answered: {}", error.message))
            }
            None if cancel.is_cancelled() => EditOutcome::Failed(
                "the run was cancelled, or the snippet's time ran out, before the editor \
                 answered"
                    .to_owned(),
            ),
            None => EditOutcome::Unanswered,
        };
        Some(outcome)
    }

    fn on_event(&self, event: RunEvent) {
        let _ = self.tasks.send(Task::Run {
            run_id: self.run_id.clone(),
            event,
        });
    }
}

impl LspFrontEnd {
    /// The editor's buffer of `path`: the document store's, synchronized by the editor's
    /// notifications, so no request waits.
    fn buffer(&self, path: &Path) -> Option<OpenDocument> {
        self.documents.uris().into_iter().find_map(|uri| {
            if super::uri::to_path(&uri)? != path {
                return None;
            }
            let document = self.documents.get(&uri)?;
            self.saw_opening(&uri, document.version, document.opening);
            Some(OpenDocument {
                id: uri,
                text: document.text,
                version: Some(document.version),
            })
        })
    }

    pub(crate) fn saw_opening(&self, uri: &str, version: i32, opening: u64) {
        crate::sync::lock(&self.openings)
            .entry((uri.to_owned(), version))
            .or_insert(opening);
    }

    /// `change` carried to the document as the editor has it now: the user may have typed
    /// while the run worked. A replacement whose code was itself edited is refused, and so is
    /// a whole-file write (`write_file`) unless the text is still the one it was judged on, a
    /// new file where one has appeared, and a change to a file that is gone. The version sent
    /// is the one compared here: the editor refuses the edit if the buffer changes after.
    /// `None`: the server writes the change itself, because the file is not open and not
    /// UTF-8 (an editor would decode it its own way and save it as UTF-8; the server keeps
    /// every byte the change does not replace).
    fn current(&self, change: &FileChange) -> Result<Option<FileChange>, ChangedMeanwhile> {
        let FileChange::Replace {
            id,
            path,
            before,
            version,
            range,
            text,
        } = change
        else {
            let created = change.path().is_some_and(|path| {
                self.buffer(path).is_some()
                    || std::fs::symlink_metadata(crate::workspace::follow_root_links(
                        &self.root, path,
                    ))
                    .is_ok()
            });
            return if created {
                Err(ChangedMeanwhile)
            } else {
                Ok(Some(change.clone()))
            };
        };
        let whole = *range == (0..before.len());
        let open = match id {
            Some(uri) if self.documents.get(uri).is_some() => Some(uri.clone()),
            _ => path
                .as_deref()
                .and_then(|path| self.buffer(path))
                .map(|document| document.id),
        };
        // The opening the change's version belongs to, if the buffer is still that one.
        let opening = match (&open, version) {
            (Some(uri), Some(version)) => crate::sync::lock(&self.openings)
                .get(&(uri.clone(), *version))
                .copied()
                .filter(|&opening| {
                    self.documents
                        .get(uri)
                        .is_some_and(|document| document.opening == opening)
                }),
            _ => None,
        };
        let (range, now, now_version) = match (&open, version, opening) {
            // The buffer's own edits since the run's snapshot say where the code went.
            (Some(uri), Some(version), Some(opening)) if !whole => {
                let (range, now, now_version) = self
                    .documents
                    .rebase(uri, opening, *version, range.clone())
                    .ok_or(ChangedMeanwhile)?;
                (range, now, Some(now_version))
            }
            // A buffer opened again since (or never read by this run), or a whole-file write:
            // its texts say it.
            (Some(uri), _, _) => {
                let document = self.documents.get(uri).ok_or(ChangedMeanwhile)?;
                let range =
                    text::carried(before, &document.text, range.clone()).ok_or(ChangedMeanwhile)?;
                (range, document.text, Some(document.version))
            }
            // Not open: the client reads the file from disk to apply the edit.
            (None, _, _) => {
                let Some(path) = path else {
                    return Ok(Some(change.clone()));
                };
                // Bounded and without blocking: a command may have left a FIFO there.
                let read = crate::workspace::read_bounded(
                    &crate::workspace::follow_root_links(&self.root, path),
                    "",
                    crate::features::MAX_EDITED_FILE_BYTES,
                );
                // The run read this file as text: gone, unreadable or binary, it changed.
                let (now, encoding) = read
                    .ok()
                    .and_then(|bytes| text::decode(&bytes))
                    .ok_or(ChangedMeanwhile)?;
                if encoding == text::Encoding::Latin1 {
                    return Ok(None);
                }
                let range = text::carried(before, &now, range.clone()).ok_or(ChangedMeanwhile)?;
                (range, Arc::new(now), None)
            }
        };
        Ok(Some(FileChange::Replace {
            id: open.or_else(|| id.clone()),
            path: path.clone(),
            before: now,
            version: now_version,
            range,
            text: text.clone(),
        }))
    }
}

/// The file is not what a change was computed from: nothing is sent.
struct ChangedMeanwhile;

/// Sends a request to the client through the main loop and waits for the answer, `timeout`
/// at most, giving up early when the run is cancelled. `None` means no answer.
fn client_request(
    tasks: &Sender<Task>,
    cancel: &CancelFlag,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Option<Result<Value, lsp_server::ResponseError>> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    tasks
        .send(Task::ClientRequest {
            method: method.to_owned(),
            params,
            reply,
        })
        .ok()?;
    cancel.recv(&answer, std::time::Instant::now() + timeout)
}
