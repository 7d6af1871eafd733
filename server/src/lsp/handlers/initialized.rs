//! `initialized`: pull the `punie` settings section and show the model's loading progress.

use crate::lsp::global_state::Server;

pub(crate) fn handle_initialized(server: &mut Server) {
    server.client_ready = true;
    server.pull_configuration();
    server.start_load_progress();
}
