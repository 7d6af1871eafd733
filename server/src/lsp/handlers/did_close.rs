//! `textDocument/didClose`: the buffer leaves the store; the file on disk is the truth again.

use lsp_types::DidCloseTextDocumentParams;
use serde_json::Value;

use crate::lsp::global_state::Server;

pub(crate) fn handle_did_close(server: &mut Server, params: Value) {
    let Some(params) = super::parse_notification::<DidCloseTextDocumentParams>("didClose", params)
    else {
        return;
    };
    server.documents.close(params.text_document.uri.as_str());
}
