//! `textDocument/didChange`: incremental edits in the negotiated position encoding.

use lsp_types::DidChangeTextDocumentParams;
use serde_json::Value;

use crate::lsp::global_state::Server;

pub(crate) fn handle_did_change(server: &mut Server, params: Value) {
    let Some(params) =
        super::parse_notification::<DidChangeTextDocumentParams>("didChange", params)
    else {
        return;
    };
    let uri = params.text_document.uri.as_str();
    if !server.documents.apply_changes(
        uri,
        params.text_document.version,
        &params.content_changes,
        server.caps.encoding,
    ) {
        tracing::warn!("didChange for {uri}, which is not open");
    }
}
