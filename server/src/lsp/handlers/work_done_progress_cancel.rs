//! `window/workDoneProgress/cancel`: the user pressed cancel on a run's progress.

use lsp_types::WorkDoneProgressCancelParams;
use serde_json::Value;

use crate::lsp::global_state::Server;

pub(crate) fn handle_work_done_progress_cancel(server: &mut Server, params: Value) {
    let Some(params) = super::parse_notification::<WorkDoneProgressCancelParams>(
        "workDoneProgress/cancel",
        params,
    ) else {
        return;
    };
    match server.run_for_token(&params.token) {
        Some(run_id) => {
            server.cancel_run(&run_id);
        }
        None => tracing::debug!("cancel for a token with no run: {:?}", params.token),
    }
}
