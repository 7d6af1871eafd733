//! `workspace/didChangeConfiguration`: pull the section again where the client supports
//! `workspace/configuration`; otherwise take `settings.punie` (or `settings`) from the payload.

use serde_json::Value;

use crate::lsp::ext::CONFIG_SECTION;
use crate::lsp::global_state::Server;

pub(crate) fn handle_did_change_configuration(server: &mut Server, params: Value) {
    if server.caps.configuration {
        server.pull_configuration();
        return;
    }
    let settings = &params["settings"];
    let section = match settings.get(CONFIG_SECTION) {
        Some(section) => section,
        None => settings,
    };
    server.apply_settings(&section.clone());
}
