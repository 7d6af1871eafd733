//! [`ToolHost`]: the workspace as a run's tool calls see it. The sandbox's dispatch and the
//! typed tools' back ends carry calls out through it; each front end implements it (editor
//! buffers, edits the user sees, its permission dialog), and `sandbox::DiskToolHost` is the
//! plain disk.

use std::path::Path;

use super::{CommandLimits, ToolError};
use crate::cancel::CancelFlag;
use crate::policy::{Before, Ruling, ToolRequest};
use crate::tools::Tool;

/// The host side of tool calls. Paths handed to it are already resolved and confined to
/// [`ToolHost::workspace_root`].
pub trait ToolHost: Sync {
    fn workspace_root(&self) -> &Path;

    /// The unsaved editor buffer of `path`, if the editor has it open. A front end that asks
    /// its client for it stops waiting once `cancel` is set: the snippet's time is up, or the
    /// run was cancelled.
    fn read_document(&self, _path: &Path, _cancel: &CancelFlag) -> Option<String> {
        None
    }

    /// Writes `content` to a file, only if it still holds `before`: what the call's prompt
    /// showed, or what was read when it was judged where no one was asked. Otherwise nothing
    /// is written and the call fails ([`super::changed_meanwhile`]). The LSP layer turns this
    /// into `workspace/applyEdit` on the buffer's current version, after that comparison.
    /// Waits on the client end once `cancel` is set, as [`ToolHost::read_document`]'s do.
    fn write_file(
        &self,
        path: &Path,
        before: &Before,
        content: &str,
        _cancel: &CancelFlag,
    ) -> Result<(), ToolError> {
        super::write_unchanged(path, before, content)
    }

    /// May this call go ahead? `request` is the call resolved: the workspace-relative path
    /// after symlinks, the argv, the change a write makes. Hosts answer with
    /// `policy::permit(request, settings, approvals, ask)`, where `ask` shows the prompt in
    /// their front end; the [`Ruling`] goes into the transcript, and a refusal becomes the
    /// snippet's `PermissionError`. A dialog gives up (no answer: a refusal) once `cancel` is
    /// set: the run was cancelled or the snippet's hard cap on waiting passed.
    fn permit(&self, request: &ToolRequest, cancel: &CancelFlag) -> Ruling;

    /// Serves a call itself instead of the built-in back end (test doubles). `None` means
    /// "use the built-in back end".
    fn call_tool(
        &self,
        _tool: Tool,
        _args: &serde_json::Value,
        _cancel: &CancelFlag,
    ) -> Option<Result<serde_json::Value, ToolError>> {
        None
    }

    /// Limits of `run_command`.
    fn command_limits(&self) -> CommandLimits {
        CommandLimits::default()
    }
}
