//! `workspace/didChangeWorkspaceFolders`: folders added to or removed from the workspace; a
//! later run's root is the folder that contains its document.

use lsp_types::DidChangeWorkspaceFoldersParams;
use serde_json::Value;

use crate::lsp::global_state::Server;

pub(crate) fn handle_did_change_workspace_folders(server: &mut Server, params: Value) {
    let Some(params) = super::parse_notification::<DidChangeWorkspaceFoldersParams>(
        "didChangeWorkspaceFolders",
        params,
    ) else {
        return;
    };
    for removed in &params.event.removed {
        if let Some(path) = crate::lsp::uri::to_path(removed.uri.as_str()) {
            server.roots.retain(|root| *root != path);
            // A folder added again starts without the answers given for it before.
            if let Some(approvals) = server.approvals.remove(&path) {
                approvals.clear();
            }
        }
    }
    for added in &params.event.added {
        if let Some(path) = crate::lsp::uri::to_path(added.uri.as_str())
            && !server.roots.contains(&path)
        {
            server.roots.push(path);
        }
    }
}
