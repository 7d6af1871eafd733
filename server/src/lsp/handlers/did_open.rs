//! `textDocument/didOpen`: the buffer enters the store.

use lsp_types::DidOpenTextDocumentParams;
use serde_json::Value;

use crate::lsp::documents::Document;
use crate::lsp::global_state::Server;

pub(crate) fn handle_did_open(server: &mut Server, params: Value) {
    let Some(params) = super::parse_notification::<DidOpenTextDocumentParams>("didOpen", params)
    else {
        return;
    };
    let document = params.text_document;
    server.documents.open(
        document.uri.as_str(),
        Document::new(document.text, document.version, document.language_id),
    );
}
