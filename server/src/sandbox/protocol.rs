//! The JSON-lines protocol between the server and its sandbox worker, on two pipes that only
//! the worker's Rust side holds: the worker reads [`ToWorker`] lines on fd [`FROM_PARENT_FD`]
//! and writes [`FromWorker`] lines on fd [`TO_PARENT_FD`]. Its stdout goes nowhere and its
//! stderr is a capped capture the parent reads only to explain a crash, so nothing the
//! interpreter prints can be taken for a message.
//!
//! The exchange, strictly in turn: the worker sends `ready` once; then for each snippet the
//! parent sends `exec` with a fresh id, the worker sends zero or more `tool` requests (each
//! naming that exec and numbering its calls 1, 2, …, and waiting for the `tool_result` that
//! names the call) and one `done` naming the exec. Anything else (a second `ready`, a message
//! between snippets, a wrong id or call number, a line that does not parse or is longer than
//! the parent allows) is a broken worker: the parent kills it and the snippet gets a
//! `SystemError`.

use serde::{Deserialize, Serialize};

use super::PyError;
use crate::workspace::ToolError;

/// The worker reads the parent's lines here.
pub(crate) const FROM_PARENT_FD: i32 = 3;
/// The worker writes its lines here.
pub(crate) const TO_PARENT_FD: i32 = 4;

/// Longest `tool` line a worker may send: the arguments of one call as JSON (a write of a
/// few MB of text fits; escaping can make a line up to six times its text).
pub(crate) const MAX_TOOL_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Longest exception message kept (longer ones are cut with a marker, in the worker and
/// again in the parent).
pub(crate) const MAX_ERROR_BYTES: usize = 8 * 1024;
/// Longest exception class name accepted from a worker.
const MAX_TYPE_NAME_BYTES: usize = 64;

/// The longest line the parent reads from a worker whose output is capped at `output_limit`
/// bytes: a `done` with that much output and a capped error, or a `tool` line.
pub(crate) fn max_line_bytes(output_limit: usize) -> usize {
    let done = 6 * (output_limit + MAX_ERROR_BYTES) + 64 * 1024;
    done.max(MAX_TOOL_LINE_BYTES)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ToWorker {
    Exec {
        id: u64,
        code: String,
        output_limit: usize,
    },
    ToolResult {
        /// The `call` of the `tool` request this answers.
        call: u32,
        ok: bool,
        value: serde_json::Value,
        error: Option<WireError>,
    },
}

impl ToWorker {
    pub(crate) fn tool_error(call: u32, err: &ToolError) -> ToWorker {
        ToWorker::ToolResult {
            call,
            ok: false,
            value: serde_json::Value::Null,
            error: Some(WireError {
                type_name: err.type_name.clone(),
                message: cap_message(&err.message),
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
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FromWorker {
    Ready {},
    Tool {
        /// The `exec` this call belongs to.
        exec: u64,
        /// 1 for the snippet's first call, then one more each time.
        call: u32,
        tool: String,
        args: serde_json::Map<String, serde_json::Value>,
    },
    Done {
        exec: u64,
        ok: bool,
        output: String,
        truncated: bool,
        error: Option<WireError>,
    },
}

impl FromWorker {
    pub(crate) fn parse(line: &[u8]) -> Option<FromWorker> {
        serde_json::from_slice(line).ok()
    }

    pub(crate) fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireError {
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    pub(crate) message: String,
    pub(crate) line: Option<u32>,
}

impl WireError {
    /// The error as the snippet saw it, if it is one a worker could have sent: a class name
    /// that is an identifier, a message within the cap.
    pub(crate) fn into_py_error(self) -> Option<PyError> {
        let name_ok = !self.type_name.is_empty()
            && self.type_name.len() <= MAX_TYPE_NAME_BYTES
            && self
                .type_name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        let message_ok = self.message.len() <= MAX_ERROR_BYTES + TRUNCATED_MARKER_BYTES;
        (name_ok && message_ok).then_some(PyError {
            type_name: self.type_name,
            message: self.message,
            line: self.line,
        })
    }
}

/// Room for the marker `cap_message` appends.
const TRUNCATED_MARKER_BYTES: usize = 64;

/// `message`, cut to [`MAX_ERROR_BYTES`] on a character boundary with a marker saying how
/// long it was.
pub(crate) fn cap_message(message: &str) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message.to_owned();
    }
    let mut cut = MAX_ERROR_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [message truncated: {} bytes]",
        &message[..cut],
        message.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_strangers_do_not_parse() {
        let done = FromWorker::Done {
            exec: 7,
            ok: true,
            output: "a\n{\"op\": \"done\"}\n".to_owned(),
            truncated: false,
            error: None,
        };
        let line = done.to_line();
        assert!(!line.contains('\n'));
        assert!(matches!(
            FromWorker::parse(line.as_bytes()),
            Some(FromWorker::Done { exec: 7, .. })
        ));
        for stranger in [
            &b"{\"op\": \"done\"}"[..],
            b"{\"op\": \"tool\", \"tool\": \"read_file\", \"args\": {}}",
            b"{\"op\": \"ready\", \"extra\": 1}",
            b"{\"op\": \"tool\", \"exec\": 1, \"call\": 1, \"tool\": \"x\", \"args\": []}",
            b"Traceback (most recent call last):",
            b"\xff\xfe",
        ] {
            assert!(FromWorker::parse(stranger).is_none(), "{stranger:?}");
        }
    }

    #[test]
    fn errors_are_capped_and_checked() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let capped = cap_message(&long);
        assert!(capped.len() <= MAX_ERROR_BYTES + TRUNCATED_MARKER_BYTES);
        assert!(capped.ends_with(&format!("[message truncated: {} bytes]", long.len())));
        let wire = |type_name: &str, message: String| WireError {
            type_name: type_name.to_owned(),
            message,
            line: None,
        };
        assert!(wire("ValueError", capped).into_py_error().is_some());
        assert!(wire("ValueError", long).into_py_error().is_none());
        assert!(
            wire("Value Error\n", String::new())
                .into_py_error()
                .is_none()
        );
        assert!(wire("", String::new()).into_py_error().is_none());
    }
}
