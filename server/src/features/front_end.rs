//! [`FrontEnd`]: what a front end (the LSP server, the ACP agent, the terminal) provides to
//! the features: the editor's buffers, permission dialogs, edits the user can see and undo,
//! and somewhere for a run's events to go. Everything else a run needs is protocol-free and
//! lives in this layer.

use std::path::Path;
use std::sync::Arc;

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::tools::Tool;

use super::edits::{EditOutcome, FileChange};

/// The host of a run, implemented once per protocol. Methods are called from the run's
/// thread and may block (a dialog waits for the user) but must give up once `cancel` is set.
pub trait FrontEnd: Sync {
    /// The editor's buffer of `path` (unsaved changes included), when the editor has it open.
    fn open_document(&self, path: &Path) -> Option<OpenDocument>;

    /// Shows `request` to the user and waits for the answer. No answer (a timeout, a
    /// dismissed dialog, a cancelled run, a front end that cannot ask) is [`PermissionAnswer::Deny`].
    fn ask_permission(&self, request: &PermissionRequest, cancel: &CancelFlag) -> PermissionAnswer;

    /// Makes `change` through the editor, so the user sees it and one undo reverts it.
    /// `None` when this front end cannot: the change is then written to disk atomically.
    fn apply_change(&self, change: &FileChange, cancel: &CancelFlag) -> Option<EditOutcome>;

    /// A step of the run (progress, streamed text, tool calls), in order.
    fn on_event(&self, event: RunEvent);
}

/// A buffer the editor has open.
#[derive(Debug, Clone)]
pub struct OpenDocument {
    /// The front end's name for it (the LSP URI).
    pub id: String,
    pub text: Arc<String>,
    pub version: Option<i32>,
}

/// What the user is asked to allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRequest {
    pub tool: Tool,
    /// The call as the user sees it (`run_command pytest -q`).
    pub label: String,
}

impl PermissionRequest {
    /// The question a dialog shows.
    pub fn message(&self) -> String {
        format!("Punie wants to run `{}`. Allow it?", self.label)
    }
}

/// The user's answer to a [`PermissionRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionAnswer {
    AllowOnce,
    /// Allowed, and remembered for the rest of the session (see `SessionApprovals`).
    AllowForSession,
    Deny,
    /// Denied, and remembered for the rest of the session (ACP `reject_always`).
    DenyForSession,
}
