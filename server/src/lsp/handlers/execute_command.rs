//! `workspace/executeCommand`: `punie.ask` validates its argument, answers
//! `{"runId", "token"}` at once and starts the run; `punie.cancel` cancels one;
//! `punie.newConversation` makes the next free-form question start a new conversation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::{NumberOrString, Range};
use serde_json::{Value, json};

use crate::features::{Ask, DocumentSnapshot, Instruction, Selection, language_from_path};
use crate::lsp::documents::{self, PositionEncoding, Snap};
use crate::lsp::ext::{ASK_COMMAND, CANCEL_COMMAND, CancelParams, NEW_CONVERSATION_COMMAND};
use crate::lsp::global_state::{Handled, HandlerError, HandlerResult, Server};
use crate::lsp::run::RunSpec;

pub(crate) fn handle_execute_command(server: &mut Server, params: Value) -> HandlerResult {
    let command = params["command"]
        .as_str()
        .ok_or_else(|| HandlerError::invalid_params("command: expected a string"))?
        .to_owned();
    let arguments = match &params["arguments"] {
        Value::Null => Vec::new(),
        Value::Array(arguments) => arguments.clone(),
        _ => return Err(HandlerError::invalid_params("arguments: expected an array")),
    };
    let client_token: Option<NumberOrString> = params
        .get("workDoneToken")
        .and_then(|token| serde_json::from_value(token.clone()).ok());
    match command.as_str() {
        ASK_COMMAND => ask(server, &arguments, client_token),
        CANCEL_COMMAND => {
            let argument = arguments.first().cloned().unwrap_or(Value::Null);
            let params: CancelParams = serde_json::from_value(argument).map_err(|_| {
                HandlerError::invalid_params("runId: expected {\"runId\": \"...\"}")
            })?;
            Ok(Handled::Reply(
                json!({"cancelled": server.cancel_run(&params.run_id)}),
            ))
        }
        NEW_CONVERSATION_COMMAND => Ok(Handled::Reply(
            json!({"cleared": server.resources.conversations.forget_all()}),
        )),
        _ => Err(HandlerError::invalid_params(format!(
            "command: unknown command {command}"
        ))),
    }
}

fn ask(
    server: &mut Server,
    arguments: &[Value],
    client_token: Option<NumberOrString>,
) -> HandlerResult {
    let spec = validate(server, arguments)?;
    let (run_id, token) = server.start_run(spec, client_token);
    let mut result = json!({"runId": run_id});
    if let Some(token) = token {
        result["token"] = serde_json::to_value(token).unwrap_or(Value::Null);
    }
    Ok(Handled::ReplyThenSchedule {
        value: result,
        run_id,
    })
}

/// Checks the `punie.ask` argument; each error names the field, as INTERFACES.md asks.
fn validate(server: &mut Server, arguments: &[Value]) -> Result<RunSpec, HandlerError> {
    fn invalid(message: impl Into<String>) -> HandlerError {
        HandlerError::invalid_params(message)
    }
    let argument = match arguments {
        [argument @ Value::Object(_)] => argument,
        [] => {
            return Err(invalid(
                "arguments: expected one object {uri, range, instruction}",
            ));
        }
        _ => {
            return Err(invalid(
                "arguments: expected exactly one object {uri, range, instruction}",
            ));
        }
    };
    let instruction = match &argument["instruction"] {
        Value::Null => {
            return Err(invalid(
                "instruction: missing (explain, fix, tests, refactor or ask)",
            ));
        }
        Value::String(name) => Instruction::parse(name).ok_or_else(|| {
            invalid(format!(
                "instruction: unknown instruction {name:?} (explain, fix, tests, refactor or ask)"
            ))
        })?,
        _ => return Err(invalid("instruction: expected a string")),
    };
    let uri = argument["uri"]
        .as_str()
        .ok_or_else(|| invalid("uri: missing or not a string"))?;
    if uri.parse::<lsp_types::Uri>().is_err() || !uri.contains(':') {
        return Err(invalid(format!("uri: malformed URI {uri:?}")));
    }
    let range: Range = serde_json::from_value(argument["range"].clone()).map_err(|_| {
        invalid("range: missing or not an LSP range {start: {line, character}, end: {...}}")
    })?;
    let question = match &argument["question"] {
        Value::Null => None,
        Value::String(question) => Some(question.clone()),
        _ => return Err(invalid("question: expected a string")),
    };
    let open = server.documents.get(uri);
    let opening = open.as_ref().map(|doc| doc.opening);
    let (text, version, language_id) = match open {
        Some(doc) => (doc.text, Some(doc.version), doc.language_id),
        None => match super::code_action::read_small_file(uri) {
            Some(text) => (Arc::new(text), None, String::new()),
            None => {
                return Err(invalid(format!(
                    "uri: {uri} is neither open in the editor nor a readable file"
                )));
            }
        },
    };
    if (range.end.line, range.end.character) < (range.start.line, range.start.character) {
        return Err(invalid("range: end is before start"));
    }
    let (start, end) = byte_range(&text, range, server.caps.encoding)
        .ok_or_else(|| invalid("range: beyond the end of the document"))?;
    if instruction == Instruction::Ask
        && question.as_deref().is_none_or(|q| q.trim().is_empty())
        && text[start..end].trim().is_empty()
    {
        return Err(invalid("question: missing, and the selection is empty"));
    }
    let path = crate::lsp::uri::to_path(uri);
    if path.is_none() && crate::uri::is_file_uri(uri) {
        // Treated as an editor-only buffer, its edits would skip every file check.
        return Err(invalid(format!(
            "uri: {uri} names a file that is not on this machine's file system as a UTF-8 \
             path (another host?); Punie works only on local files"
        )));
    }
    let root = match root_for(&server.roots, path.as_deref()) {
        Some(root) => root,
        None => server
            .scratch_root()
            .map_err(|err| HandlerError::new(lsp_server::ErrorCode::InternalError, err))?,
    };
    let language_id = if language_id.is_empty() {
        language_from_path(path.as_deref())
    } else {
        language_id
    };
    let document = DocumentSnapshot {
        id: uri.to_owned(),
        path,
        text,
        version,
        language_id,
    };
    Ok(RunSpec {
        run_id: String::new(),
        uri: uri.to_owned(),
        range,
        opening,
        ask: Ask {
            instruction,
            question,
            selection: Some(Selection {
                document,
                start,
                end,
            }),
            root,
        },
    })
}

/// The byte range of `range` in `text`, strictly (`None` when it lies outside).
fn byte_range(text: &str, range: Range, encoding: PositionEncoding) -> Option<(usize, usize)> {
    let start = documents::offset_strict(text, range.start, encoding, Snap::Back)?;
    let end = documents::offset_strict(text, range.end, encoding, Snap::Forward)?;
    (start <= end).then_some((start, end))
}

/// The workspace folder containing the document (the deepest one); `None` for a document in
/// no folder (an untitled buffer, a file opened on its own), whose run gets the server's
/// private scratch directory: the tools of a run never reach beyond a folder the user opened.
fn root_for(roots: &[PathBuf], path: Option<&Path>) -> Option<PathBuf> {
    let path = path?;
    roots
        .iter()
        .filter(|root| path.starts_with(root))
        .max_by_key(|root| root.as_os_str().len())
        .cloned()
}
