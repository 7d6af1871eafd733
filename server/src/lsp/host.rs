//! [`LspToolHost`]: the sandbox's tools as seen from an editor. `read_file` sees unsaved
//! buffers, writes go through `workspace/applyEdit` (one undo reverts them), and tools whose
//! policy is `ask` open a `window/showMessageRequest` dialog.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Sender;
use lsp_types::{Position, Range, WorkspaceEdit};
use serde_json::{Value, json};

use crate::cancel::CancelFlag;
use crate::policy::Decision;
use crate::sandbox::{Permission, Tool, ToolError, ToolHost};

use super::documents::{self, DocumentStore};
use super::edits;
use super::ext::{PERMISSION_ALLOW, PERMISSION_ALLOW_SESSION, PERMISSION_DENY};
use super::main_loop::{ClientCaps, Task};
use super::run::{RunContext, RunSpec, SharedRunState, client_request};
use super::settings::Settings;

/// How long a permission dialog or an edit waits for the editor; no answer means no.
/// `PUNIE_LSP_REQUEST_TIMEOUT_MS` shortens it for tests of clients that never answer.
fn request_timeout() -> Duration {
    let millis = std::env::var("PUNIE_LSP_REQUEST_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    Duration::from_millis(millis)
}

/// How an edit went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditOutcome {
    Applied,
    /// The editor answered `applied: false`.
    Rejected,
    Failed(String),
}

pub(crate) struct LspToolHost {
    root: PathBuf,
    documents: DocumentStore,
    caps: ClientCaps,
    settings: Settings,
    tasks: Sender<Task>,
    cancel: CancelFlag,
    shared: SharedRunState,
}

impl LspToolHost {
    pub(crate) fn new(context: &RunContext) -> LspToolHost {
        LspToolHost {
            root: context.spec.root.clone(),
            documents: context.documents.clone(),
            caps: context.caps.clone(),
            settings: context.settings.clone(),
            tasks: context.tasks.clone(),
            cancel: context.cancel.clone(),
            shared: context.shared.clone(),
        }
    }

    /// The open document at `path`: its URI, text and version.
    fn open_document(&self, path: &Path) -> Option<(String, documents::Document)> {
        self.documents.uris().into_iter().find_map(|uri| {
            let doc_path = super::uri::to_path(&uri)?;
            if doc_path == path {
                self.documents.get(&uri).map(|doc| (uri, doc))
            } else {
                None
            }
        })
    }

    fn apply_edit(&self, edit: WorkspaceEdit) -> EditOutcome {
        let params = json!({"label": "Punie", "edit": edit});
        match client_request(
            &self.tasks,
            &self.cancel,
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
            None if self.cancel.is_cancelled() => {
                EditOutcome::Failed("the run was cancelled".to_owned())
            }
            None => EditOutcome::Failed("the editor did not answer the edit request".to_owned()),
        }
    }

    /// Replaces the run's selection with `text`.
    pub(crate) fn replace_range(&self, spec: &RunSpec, text: &str) -> EditOutcome {
        if self.caps.apply_edit {
            let Ok(uri) = spec.uri.parse() else {
                return EditOutcome::Failed(format!("bad document URI {}", spec.uri));
            };
            return self.apply_edit(edits::replace_edit(
                &uri,
                spec.version,
                spec.range,
                text,
                self.caps.document_changes,
            ));
        }
        let Some(path) = &spec.path else {
            return EditOutcome::Failed("the document is not a file on disk".to_owned());
        };
        let mut new_text = spec.text.clone();
        new_text.replace_range(spec.start..spec.end, text);
        match write_atomic(path, &new_text) {
            Ok(()) => EditOutcome::Applied,
            Err(err) => EditOutcome::Failed(err.to_string()),
        }
    }

    /// Appends `code` to the file at `path`, or creates it.
    pub(crate) fn extend_or_create(&self, path: &Path, code: &str) -> EditOutcome {
        let open = self.open_document(path);
        let existing = match &open {
            Some((_, doc)) => Some(doc.text.clone()),
            None => std::fs::read_to_string(path).ok(),
        };
        match existing {
            Some(existing) => {
                if self.caps.apply_edit
                    && let Some(uri) = super::uri::from_path(path)
                {
                    let keep = existing.trim_end_matches('\n').len();
                    let encoding = self.caps.encoding;
                    let range = Range {
                        start: documents::position_of(&existing, keep, encoding),
                        end: documents::end_position(&existing, encoding),
                    };
                    let suffix = edits::extend_text(&existing, code)[keep..].to_owned();
                    let version = open.as_ref().map(|(_, doc)| doc.version);
                    return self.apply_edit(edits::replace_edit(
                        &uri,
                        version,
                        range,
                        &suffix,
                        self.caps.document_changes,
                    ));
                }
                match write_atomic(path, &edits::extend_text(&existing, code)) {
                    Ok(()) => EditOutcome::Applied,
                    Err(err) => EditOutcome::Failed(err.to_string()),
                }
            }
            None => self.create(path, code),
        }
    }

    fn create(&self, path: &Path, content: &str) -> EditOutcome {
        if self.caps.apply_edit
            && self.caps.create_files
            && let Some(uri) = super::uri::from_path(path)
        {
            return self.apply_edit(edits::create_file_edit(&uri, content));
        }
        match write_atomic(path, content) {
            Ok(()) => EditOutcome::Applied,
            Err(err) => EditOutcome::Failed(err.to_string()),
        }
    }

    /// Replaces the whole content of `path` with `content` (the `write_file` tool).
    fn write_whole(&self, path: &Path, content: &str) -> EditOutcome {
        if !self.caps.apply_edit {
            return match write_atomic(path, content) {
                Ok(()) => EditOutcome::Applied,
                Err(err) => EditOutcome::Failed(err.to_string()),
            };
        }
        let open = self.open_document(path);
        let existing = match &open {
            Some((_, doc)) => Some(doc.text.clone()),
            None => std::fs::read_to_string(path).ok(),
        };
        match (existing, super::uri::from_path(path)) {
            (Some(existing), Some(uri)) => {
                let range = Range {
                    start: Position {
                        line: 0,
                        character: 0,
                    },
                    end: documents::end_position(&existing, self.caps.encoding),
                };
                let version = open.as_ref().map(|(_, doc)| doc.version);
                self.apply_edit(edits::replace_edit(
                    &uri,
                    version,
                    range,
                    content,
                    self.caps.document_changes,
                ))
            }
            _ => self.create(path, content),
        }
    }

    fn ask_permission(&self, tool: Tool, label: &str) -> Permission {
        let params = json!({
            "type": 3,
            "message": format!("Punie wants to run `{label}`. Allow it?"),
            "actions": [{"title": PERMISSION_ALLOW}, {"title": PERMISSION_ALLOW_SESSION}, {"title": PERMISSION_DENY}],
        });
        let answer = client_request(
            &self.tasks,
            &self.cancel,
            "window/showMessageRequest",
            params,
            request_timeout(),
        );
        let title = match &answer {
            Some(Ok(result)) => result.get("title").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        match title {
            PERMISSION_ALLOW => Permission::Allow,
            PERMISSION_ALLOW_SESSION => {
                self.shared
                    .session_allowed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(tool.name().to_owned());
                Permission::Allow
            }
            // Deny, dismissal, an error or no answer within the timeout.
            _ => Permission::Deny,
        }
    }
}

impl ToolHost for LspToolHost {
    fn workspace_root(&self) -> &Path {
        &self.root
    }

    fn read_document(&self, path: &Path) -> Option<String> {
        self.open_document(path).map(|(_, doc)| doc.text)
    }

    fn write_file(&self, path: &Path, content: &str) -> Result<(), ToolError> {
        match self.write_whole(path, content) {
            EditOutcome::Applied => Ok(()),
            EditOutcome::Rejected => Err(ToolError::permission("edit rejected by the editor")),
            EditOutcome::Failed(reason) => Err(ToolError::new("OSError", reason)),
        }
    }

    fn permit(&self, tool: Tool, label: &str) -> Permission {
        match self.settings.policy(tool) {
            Decision::Allow => Permission::Allow,
            Decision::Deny => Permission::Deny,
            Decision::Ask => {
                let allowed_for_session = self
                    .shared
                    .session_allowed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(tool.name());
                if allowed_for_session {
                    Permission::Allow
                } else {
                    self.ask_permission(tool, label)
                }
            }
        }
    }
}

/// Writes `content` to `path` atomically: a temporary file in the same directory, then a
/// rename, so a reader never sees half a file. Creates missing directories.
pub(crate) fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.punie-{}.tmp", std::process::id()));
    std::fs::write(&temp, content)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}
