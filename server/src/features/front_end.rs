//! [`FrontEnd`]: what a front end (the LSP server, the ACP agent, the terminal) provides to
//! the features: the editor's buffers, permission dialogs, edits the user can see and undo,
//! and somewhere for a run's events to go. Everything else a run needs is protocol-free and
//! lives in this layer.

use std::path::Path;
use std::sync::Arc;

use crate::agent::RunEvent;
use crate::cancel::CancelFlag;
use crate::policy::{Answer, Prompt};

use super::edits::{EditOutcome, FileChange};

/// The host of a run, implemented once per protocol. Methods are called from the run's
/// thread and may block (a dialog waits for the user) but must give up once `cancel` is set.
pub trait FrontEnd: Sync {
    /// The editor's buffer of `path` (unsaved changes included), when the editor has it open.
    fn open_document(&self, path: &Path, cancel: &CancelFlag) -> Option<OpenDocument>;

    /// Shows `prompt` to the user and waits for the answer. The prompt is data: show its
    /// texts as they are (they are escaped and say what was cut) and offer "for this session"
    /// only when `prompt.session` is set. No answer (a timeout, a dismissed dialog, a
    /// cancelled run) is [`Answer::NoAnswer`]; a front end that cannot ask says why with
    /// [`Answer::Unavailable`].
    fn ask_permission(&self, prompt: &Prompt, cancel: &CancelFlag) -> Answer;

    /// Makes `change` through the editor, so the user sees it and one undo reverts it.
    /// `confirm`: the change is a tool's write that the policy asks about; an editor that can
    /// show a change for confirmation before making it should. `None` when this front end
    /// cannot make it: the change is then written to disk atomically.
    fn apply_change(
        &self,
        change: &FileChange,
        confirm: bool,
        cancel: &CancelFlag,
    ) -> Option<EditOutcome>;

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
