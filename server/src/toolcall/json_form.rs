//! The JSON forms: `{"name": …, "arguments": …}` inside `<tool_call>` (Qwen2.5/Qwen3 chat
//! templates) and inside a ```` ```json ```` fence (Punie's oldest training rows).
//!
//! The JSON value is read with serde_json's streaming reader, which stops at the end of the first
//! value, so braces inside strings and text after the value need no special handling. A fence
//! whose JSON is no call (no `name`) is an ordinary code block in an answer and stays plain text
//! without a problem; one that looks like a call but is not valid JSON gets an error and stays text.

use super::{
    BlockOutcome, CallForm, ParseProblem, TOOL_CALL_CLOSE, ToolCall, find_from, skip_whitespace,
};
use crate::toolcall::xml_form::failed_block;

const FENCE: &str = "```";
const FENCE_OPEN: &str = "```json";

/// `<tool_call>` at `start`, `{` at `json_pos`.
pub(crate) fn parse_json_block(input: &str, start: usize, json_pos: usize) -> BlockOutcome {
    let (value, json_end) = match read_json(input, json_pos) {
        Ok(it) => it,
        Err(err) => {
            let mut outcome = failed_block(
                input,
                start,
                &format!("the JSON in a `<tool_call>` is not valid: {err}"),
            );
            // JSON cut off at the end of the text may still be going on (a `</tool_call>` inside
            // one of its strings is no close), so a stream scanner must not call it finished.
            outcome.closed &= !err.is_eof();
            return outcome;
        }
    };
    let mut problems = Vec::new();
    let at = skip_whitespace(input, json_end);
    let (end, closed) = if input[at..].starts_with(TOOL_CALL_CLOSE) {
        (at + TOOL_CALL_CLOSE.len(), true)
    } else if at == input.len() {
        problems.push(ParseProblem::note(
            start..json_end,
            "missing `</tool_call>` at the end of the output",
        ));
        (json_end, false)
    } else {
        problems.push(ParseProblem::note(
            start..json_end,
            "missing `</tool_call>` after the JSON",
        ));
        (json_end, false)
    };
    match call_from_json(value, CallForm::JsonTag) {
        Ok(call) => BlockOutcome {
            call: Some(call),
            end,
            closed,
            problems,
        },
        Err(message) => {
            problems.push(ParseProblem::error(start..end, message));
            BlockOutcome {
                call: None,
                end,
                closed,
                problems,
            }
        }
    }
}

/// A ```` ```json ```` fence at `fence_pos`; `None` when it is not a tool call at all.
pub(crate) fn parse_fence(input: &str, fence_pos: usize) -> Option<BlockOutcome> {
    let info_end = fence_pos + FENCE_OPEN.len();
    let body = skip_whitespace(input, info_end);
    // Only an object can be a call; this also leaves "```jsonc" and "```json5" blocks alone.
    if !input[body..].starts_with('{') {
        return None;
    }
    match read_json(input, body) {
        Ok((value, json_end)) => {
            if !looks_like_call(&value) {
                return None;
            }
            let mut problems = Vec::new();
            let at = skip_whitespace(input, json_end);
            let (end, closed) = if input[at..].starts_with(FENCE) {
                (at + FENCE.len(), true)
            } else {
                problems.push(ParseProblem::note(
                    fence_pos..json_end,
                    "missing the closing ``` of the ```json block",
                ));
                (json_end, false)
            };
            Some(match call_from_json(value, CallForm::JsonFence) {
                Ok(call) => BlockOutcome {
                    call: Some(call),
                    end,
                    closed,
                    problems,
                },
                Err(message) => {
                    problems.push(ParseProblem::error(fence_pos..end, message));
                    BlockOutcome {
                        call: None,
                        end,
                        closed,
                        problems,
                    }
                }
            })
        }
        Err(err) => {
            let (end, closed) = match find_from(input, FENCE, body) {
                Some(close) => (close + FENCE.len(), true),
                None => (input.len(), false),
            };
            let region = &input[body..end];
            if !(region.contains("\"name\"")
                && (region.contains("\"arguments\"") || region.contains("\"parameters\"")))
            {
                return None;
            }
            let message = format!("the tool call in a ```json block is not valid JSON: {err}");
            Some(BlockOutcome {
                call: None,
                end,
                closed,
                problems: vec![ParseProblem::error(fence_pos..end, message)],
            })
        }
    }
}

/// The first JSON value at `pos` and the offset just after it.
fn read_json(input: &str, pos: usize) -> Result<(serde_json::Value, usize), serde_json::Error> {
    let mut values =
        serde_json::Deserializer::from_str(&input[pos..]).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(value)) => Ok((value, pos + values.byte_offset())),
        Some(Err(err)) => Err(err),
        // Unreachable in practice (the text starts with `{`), but an empty read is an EOF error.
        None => serde_json::from_str::<serde_json::Value>("").map(|value| (value, pos)),
    }
}

fn looks_like_call(value: &serde_json::Value) -> bool {
    value.get("name").is_some() || value.get("function").is_some()
}

/// `{"name", "arguments"}`, also `"parameters"` for `"arguments"`, arguments given as a JSON
/// string (OpenAI's wire form), and the OpenAI nesting `{"function": {"name", "arguments"}}`.
fn call_from_json(value: serde_json::Value, form: CallForm) -> Result<ToolCall, String> {
    let serde_json::Value::Object(mut object) = value else {
        return Err("a JSON tool call must be an object with `name` and `arguments`".to_owned());
    };
    if let Some(serde_json::Value::Object(function)) = object.remove("function") {
        object = function;
    }
    let name = match object.remove("name") {
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return Err("a JSON tool call has no `name` string".to_owned()),
    };
    let arguments = match object
        .remove("arguments")
        .or_else(|| object.remove("parameters"))
    {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(arguments)) => arguments,
        Some(serde_json::Value::String(text)) => match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(arguments)) => arguments,
            _ => {
                return Err(format!(
                    "the `arguments` of tool call `{name}` are not a JSON object"
                ));
            }
        },
        Some(_) => {
            return Err(format!(
                "the `arguments` of tool call `{name}` are not a JSON object"
            ));
        }
    };
    Ok(ToolCall {
        name,
        arguments,
        span: 0..0,
        form,
    })
}
