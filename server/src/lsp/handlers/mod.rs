//! One file per LSP method, named after it; each exports `handle_<method>`.
//!
//! Requests return a [`HandlerResult`](super::global_state::HandlerResult) (the loop sends the
//! one response); notifications return nothing.

pub(crate) mod code_action;
pub(crate) mod did_change;
pub(crate) mod did_change_configuration;
pub(crate) mod did_change_workspace_folders;
pub(crate) mod did_close;
pub(crate) mod did_open;
pub(crate) mod execute_command;
pub(crate) mod initialize;
pub(crate) mod initialized;
pub(crate) mod shutdown;
pub(crate) mod work_done_progress_cancel;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::global_state::HandlerError;

/// Params of a request, or `InvalidParams` saying what is wrong with them.
pub(crate) fn parse_params<P: DeserializeOwned>(
    method: &str,
    params: Value,
) -> Result<P, HandlerError> {
    serde_json::from_value(params)
        .map_err(|err| HandlerError::invalid_params(format!("{method}: {err}")))
}

/// Params of a notification, or `None` (logged): a notification cannot be answered.
pub(crate) fn parse_notification<P: DeserializeOwned>(method: &str, params: Value) -> Option<P> {
    match serde_json::from_value(params) {
        Ok(params) => Some(params),
        Err(err) => {
            tracing::warn!("ignoring {method} with bad params: {err}");
            None
        }
    }
}
