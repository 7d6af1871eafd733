//! The JSON-lines protocol between the server and its sandbox worker.
//!
//! Parent → worker (worker's stdin): `exec` a snippet, then one `tool_result` per `tool`
//! request. Worker → parent (worker's stdout): `ready` once after start-up, `tool` for each
//! tool call (the worker blocks until the answer), `done` at the end of a snippet.
//! One message per line; stdout carries nothing else (the interpreter's `print` is captured).

use serde::{Deserialize, Serialize};

use super::PyError;
use crate::workspace::ToolError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum ToWorker {
    Exec {
        code: String,
        output_limit: usize,
    },
    ToolResult {
        ok: bool,
        value: serde_json::Value,
        error: Option<WireError>,
    },
}

impl ToWorker {
    pub(crate) fn tool_error(err: &ToolError) -> ToWorker {
        ToWorker::ToolResult {
            ok: false,
            value: serde_json::Value::Null,
            error: Some(WireError {
                type_name: err.type_name.clone(),
                message: err.message.clone(),
                line: None,
            }),
        }
    }

    pub(crate) fn to_line(&self) -> String {
        // Serialising plain data cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn parse(line: &str) -> Option<ToWorker> {
        serde_json::from_str(line).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum FromWorker {
    Ready,
    Tool {
        tool: String,
        args: serde_json::Value,
    },
    Done {
        ok: bool,
        output: String,
        truncated: bool,
        error: Option<WireError>,
    },
    /// Not sent: what the parent makes of a line it cannot parse.
    #[serde(skip)]
    Invalid {
        line: String,
    },
}

impl FromWorker {
    pub(crate) fn parse(line: &str) -> FromWorker {
        serde_json::from_str(line).unwrap_or_else(|_| {
            let mut shown: String = line.chars().take(200).collect();
            if shown.len() < line.len() {
                shown.push('…');
            }
            FromWorker::Invalid { line: shown }
        })
    }

    pub(crate) fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct WireError {
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    pub(crate) message: String,
    pub(crate) line: Option<u32>,
}

impl WireError {
    pub(crate) fn into_py_error(self) -> PyError {
        PyError {
            type_name: self.type_name,
            message: self.message,
            line: self.line,
        }
    }
}
