//! The Qwen3-Coder XML form (`<function=…><parameter=…>`) and the bare `<tool_call>code</tool_call>`.
//!
//! Where a raw value ends is decided by what follows a closing tag, not by the first closing tag:
//! `</parameter>` closes a value only when, after optional whitespace, the next thing is
//! `<parameter=`, `</function>`, `</tool_call>`, `<tool_call>` or the end of the output. So
//! `print("</parameter>")` inside the code does not end it, while every form the models write
//! does. When no such `</parameter>` exists the value runs to `</function></tool_call>`, then to
//! `</function>` before a new call, then to `</tool_call>`, then to the end of the output, with a
//! note that the closing tag was missing.
//!
//! Two bounds keep one call from swallowing the next: a value never reaches past
//! `</function></tool_call>`, and nothing reaches past a `<tool_call>` that starts a line (the
//! next call). The bare form closes at the first `</tool_call>` that starts a line, else at the
//! first one.
//!
//! `BlockOutcome::closed` is only set when no text that could follow would change the decision
//! (an end taken from a fallback such as a bare `</tool_call>`, which could sit inside a string
//! literal that goes on, is not final); `StreamScanner` relies on that to report a call finished
//! while the model is still generating.

use super::{
    BlockOutcome, CallForm, EXECUTE_CODE, ParseProblem, TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolCall,
    entities, find_from, followed_by, skip_whitespace,
};

pub(crate) const FUNCTION_OPEN: &str = "<function=";
const FUNCTION_CLOSE: &str = "</function>";
const PARAMETER_OPEN: &str = "<parameter=";
const PARAMETER_CLOSE: &str = "</parameter>";

/// `<tool_call>` at `start`, `<function=` at `function_pos`.
pub(crate) fn parse_function_block(input: &str, start: usize, function_pos: usize) -> BlockOutcome {
    let mut problems = Vec::new();
    let name_start = function_pos + FUNCTION_OPEN.len();
    let Some((name, mut pos)) = tag_name(input, name_start) else {
        let mut outcome = failed_block(
            input,
            start,
            "a `<function=NAME>` tag is malformed: expected `>` after the name",
        );
        outcome.closed &= !tag_is_cut_off(input, name_start);
        return outcome;
    };
    let mut arguments = serde_json::Map::new();
    // Whether every end decision so far holds whatever text follows (see `ValueEnd::definite`).
    let mut definite = true;
    loop {
        let at = skip_whitespace(input, pos);
        let rest = &input[at..];
        if rest.starts_with(PARAMETER_OPEN) {
            let name_start = at + PARAMETER_OPEN.len();
            let Some((param_name, value_start)) = tag_name(input, name_start) else {
                let mut outcome = failed_block(
                    input,
                    start,
                    "a `<parameter=NAME>` tag is malformed: expected `>` after the name",
                );
                outcome.closed &= definite && !tag_is_cut_off(input, name_start);
                return outcome;
            };
            let value_end = find_value_end(input, value_start);
            definite &= value_end.definite;
            if value_end.missing_close {
                problems.push(ParseProblem::note(
                    at..value_end.after,
                    format!("missing `</parameter>` after parameter `{param_name}`"),
                ));
            }
            let raw = &input[value_start..value_end.value_end];
            let value = clean_value(
                &param_name,
                raw,
                value_start..value_end.value_end,
                &mut problems,
            );
            if arguments.contains_key(&param_name) {
                problems.push(ParseProblem::note(
                    at..value_end.after,
                    format!("parameter `{param_name}` is given twice; the last one is used"),
                ));
            }
            arguments.insert(param_name, serde_json::Value::String(value));
            pos = value_end.after;
            continue;
        }
        if rest.starts_with(FUNCTION_CLOSE) {
            pos = at + FUNCTION_CLOSE.len();
            break;
        }
        if at == input.len()
            || rest.starts_with(TOOL_CALL_CLOSE)
            || rest.starts_with(TOOL_CALL_OPEN)
        {
            problems.push(ParseProblem::note(start..at, "missing `</function>`"));
            pos = at;
            break;
        }
        // Text that is in no parameter. For execute_code that is the code itself (a model that
        // forgot `<parameter=code>`); for other tools there is nothing sensible to do with it.
        let (body_end, after, stray_definite) = stray_text_end(input, at);
        definite &= stray_definite;
        let raw = &input[at..body_end];
        if arguments.is_empty() && name == EXECUTE_CODE {
            problems.push(ParseProblem::note(
                at..body_end,
                "the code is not inside `<parameter=code>`",
            ));
            let code = clean_value("code", raw, at..body_end, &mut problems);
            arguments.insert("code".to_owned(), serde_json::Value::String(code));
        } else {
            problems.push(ParseProblem::note(
                at..body_end,
                format!("text outside any `<parameter=…>` of `{name}` was ignored"),
            ));
        }
        pos = after;
        break;
    }
    let (end, closed) = close_tool_call(input, start, pos, &mut problems);
    let closed = closed && definite;
    BlockOutcome {
        call: Some(ToolCall {
            name,
            arguments,
            span: 0..0,
            form: CallForm::Xml,
        }),
        end,
        closed,
        problems,
    }
}

/// `<tool_call>` at `start` followed by something that is neither `<function=` nor JSON: the
/// whole body is Python for `execute_code` (Punie's Phase 24 format).
pub(crate) fn parse_bare_block(input: &str, start: usize, body_start: usize) -> BlockOutcome {
    let mut problems = Vec::new();
    // A `<tool_call>` starting a line begins the next call: this one never reaches past it.
    let limit = next_call_at_line_start(input, body_start).unwrap_or(input.len());
    // `closed` only when the close starts a line: one inside the code (`print("</tool_call>")`)
    // is used when there is no other, but a stream scanner must wait for the end of the output.
    let (body_end, end, closed, found_close) = match bare_close(input, body_start, limit) {
        Some((close, line_start)) => (close, close + TOOL_CALL_CLOSE.len(), line_start, true),
        None => (limit, limit, false, false),
    };
    let raw = &input[body_start..body_end];
    if raw.trim().is_empty() {
        problems.push(ParseProblem::error(
            start..end,
            "a `<tool_call>` block is empty",
        ));
        return BlockOutcome {
            call: None,
            end,
            closed,
            problems,
        };
    }
    if !found_close {
        problems.push(ParseProblem::note(start..end, "missing `</tool_call>`"));
    }
    let code = clean_value("code", raw, body_start..body_end, &mut problems);
    let mut arguments = serde_json::Map::new();
    arguments.insert("code".to_owned(), serde_json::Value::String(code));
    BlockOutcome {
        call: Some(ToolCall {
            name: EXECUTE_CODE.to_owned(),
            arguments,
            span: 0..0,
            form: CallForm::Bare,
        }),
        end,
        closed,
        problems,
    }
}

/// After the function's content: consume `</tool_call>` if it is next, else note that it is
/// missing. Returns the block's end and whether it was closed.
fn close_tool_call(
    input: &str,
    start: usize,
    pos: usize,
    problems: &mut Vec<ParseProblem>,
) -> (usize, bool) {
    let at = skip_whitespace(input, pos);
    if input[at..].starts_with(TOOL_CALL_CLOSE) {
        return (at + TOOL_CALL_CLOSE.len(), true);
    }
    let message = if at == input.len() {
        "missing `</tool_call>` at the end of the output"
    } else {
        "missing `</tool_call>`"
    };
    problems.push(ParseProblem::note(start..pos, message));
    (pos, false)
}

/// A block that yields no call: its text stays text, up to and including its `</tool_call>`.
pub(crate) fn failed_block(input: &str, start: usize, message: &str) -> BlockOutcome {
    let (end, closed) = match find_from(input, TOOL_CALL_CLOSE, start) {
        Some(close) => (close + TOOL_CALL_CLOSE.len(), true),
        None => (input.len(), false),
    };
    BlockOutcome {
        call: None,
        end,
        closed,
        problems: vec![ParseProblem::error(start..end, message)],
    }
}

/// Whether the tag name starting at `from` runs into the end of the text: more text may still
/// complete it.
fn tag_is_cut_off(input: &str, from: usize) -> bool {
    !input.as_bytes()[from.min(input.len())..]
        .iter()
        .any(|byte| matches!(byte, b'>' | b'\n' | b'<'))
}

/// The name in `<function=NAME>` / `<parameter=NAME>`, starting at `from`; returns it and the
/// offset after `>`. `None` when a newline or `<` comes before `>` (the tag is broken).
fn tag_name(input: &str, from: usize) -> Option<(String, usize)> {
    let rest = input.get(from..)?;
    let gt = rest.find(['>', '\n', '<'])?;
    if !rest[gt..].starts_with('>') {
        return None;
    }
    // Some models quote the name (`<function="f">`); the quotes are not part of it.
    let name = rest[..gt]
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_owned(), from + gt + 1))
}

struct ValueEnd {
    /// End of the raw value.
    value_end: usize,
    /// Where parsing goes on (after `</parameter>` when there was one).
    after: usize,
    missing_close: bool,
    /// False when the value ended at a bare `</tool_call>` or a new `<tool_call>`: more text could
    /// show that tag to be part of the code (`print("</tool_call>")`), so a stream must wait.
    definite: bool,
}

/// See the module doc for the order of the rules. A `<tool_call>` that starts a line bounds the
/// search (it begins the next call), so what later text holds never moves this value's end.
fn find_value_end(input: &str, value_start: usize) -> ValueEnd {
    const AFTER_PARAMETER: &[&str] = &[
        PARAMETER_OPEN,
        FUNCTION_CLOSE,
        TOOL_CALL_CLOSE,
        TOOL_CALL_OPEN,
    ];
    let limit = next_call_at_line_start(input, value_start).unwrap_or(input.len());
    let before_limit = |pos: &usize| *pos < limit;
    // `</function></tool_call>` ends the call for sure: a `</parameter>` after it belongs to a
    // later call, never to this value (which then lacks its own `</parameter>`).
    let call_end = find_followed_by_tag(input, FUNCTION_CLOSE, value_start, TOOL_CALL_CLOSE)
        .filter(before_limit);
    let bound = call_end.unwrap_or(limit);
    if let Some(close) = find_followed_by(input, PARAMETER_CLOSE, value_start, AFTER_PARAMETER)
        .filter(|close| *close < bound)
    {
        return ValueEnd {
            value_end: close,
            after: close + PARAMETER_CLOSE.len(),
            missing_close: false,
            definite: true,
        };
    }
    if let Some(stop) = call_end {
        return ValueEnd {
            value_end: stop,
            after: stop,
            missing_close: true,
            definite: true,
        };
    }
    let fallback = find_followed_by(input, FUNCTION_CLOSE, value_start, &[TOOL_CALL_OPEN])
        .filter(before_limit)
        .or_else(|| find_from(input, TOOL_CALL_CLOSE, value_start).filter(before_limit));
    match fallback {
        Some(stop) => ValueEnd {
            value_end: stop,
            after: stop,
            missing_close: true,
            definite: false,
        },
        // Cut off by the next call (final) or by the end of the text (may go on).
        None => ValueEnd {
            value_end: limit,
            after: limit,
            missing_close: true,
            definite: limit < input.len(),
        },
    }
}

/// Where text that is in no parameter ends: returns (end of the text, where parsing goes on,
/// whether more text could move that end). Bounded like `find_value_end`.
fn stray_text_end(input: &str, from: usize) -> (usize, usize, bool) {
    let limit = next_call_at_line_start(input, from).unwrap_or(input.len());
    let before_limit = |pos: &usize| *pos < limit;
    if let Some(close) =
        find_followed_by_tag(input, FUNCTION_CLOSE, from, TOOL_CALL_CLOSE).filter(before_limit)
    {
        return (close, close + FUNCTION_CLOSE.len(), true);
    }
    match find_from(input, TOOL_CALL_CLOSE, from).filter(before_limit) {
        Some(stop) => (stop, stop, false),
        None => (limit, limit, limit < input.len()),
    }
}

/// The first `needle` at or after `from` that is followed (after whitespace) by one of `tags` or
/// by the end of the input.
fn find_followed_by(input: &str, needle: &str, from: usize, tags: &[&str]) -> Option<usize> {
    let mut search = from;
    while let Some(found) = find_from(input, needle, search) {
        if followed_by(input, found + needle.len(), tags) {
            return Some(found);
        }
        search = found + 1;
    }
    None
}

/// The first `needle` at or after `from` followed (after whitespace) by `tag` itself.
fn find_followed_by_tag(input: &str, needle: &str, from: usize, tag: &str) -> Option<usize> {
    let mut search = from;
    while let Some(found) = find_from(input, needle, search) {
        if input[skip_whitespace(input, found + needle.len())..].starts_with(tag) {
            return Some(found);
        }
        search = found + 1;
    }
    None
}

/// The `</tool_call>` that closes a bare block, starting before `limit`: the first one that
/// starts a line (so that `print("</tool_call>")` in the code does not end it), else the first
/// one. Returns it and whether it starts a line.
fn bare_close(input: &str, body_start: usize, limit: usize) -> Option<(usize, bool)> {
    let first = find_from(input, TOOL_CALL_CLOSE, body_start).filter(|close| *close < limit)?;
    let mut search = first;
    while let Some(found) = find_from(input, TOOL_CALL_CLOSE, search) {
        if found >= limit {
            break;
        }
        if at_line_start(input, body_start, found) {
            return Some((found, true));
        }
        search = found + 1;
    }
    Some((first, false))
}

/// The next `<tool_call>` at or after `from` that starts a line: a new call where the previous
/// one was never closed.
fn next_call_at_line_start(input: &str, from: usize) -> Option<usize> {
    let mut search = from;
    while let Some(found) = find_from(input, TOOL_CALL_OPEN, search) {
        if at_line_start(input, from, found) {
            return Some(found);
        }
        search = found + 1;
    }
    None
}

/// Whether only spaces or tabs stand between the previous newline (or `floor`) and `pos`.
pub(crate) fn at_line_start(input: &str, floor: usize, pos: usize) -> bool {
    let bytes = input.as_bytes();
    let mut idx = pos;
    while idx > floor {
        match bytes[idx - 1] {
            b'\n' => return true,
            b' ' | b'\t' | b'\r' => idx -= 1,
            _ => return false,
        }
    }
    true
}

/// Turns a raw value into the argument: unescapes it when it is consistently XML-escaped (see
/// `entities`), then trims the newlines the format puts around values. For `code`, blank lines
/// before and whitespace after the code are dropped (Python does not care and models vary); other
/// values lose one leading and one trailing newline, as Qwen's own parser does.
fn clean_value(
    name: &str,
    raw: &str,
    span: std::ops::Range<usize>,
    problems: &mut Vec<ParseProblem>,
) -> String {
    let unescaped = entities::unescape_if_escaped(raw);
    if unescaped.is_some() {
        problems.push(ParseProblem::note(
            span,
            format!("the value of `{name}` was XML-escaped; it was unescaped"),
        ));
    }
    let value = unescaped.as_deref().unwrap_or(raw);
    if name == "code" {
        trim_code(value).to_owned()
    } else {
        let value = value.strip_prefix('\n').unwrap_or(value);
        value.strip_suffix('\n').unwrap_or(value).to_owned()
    }
}

/// Drops whitespace-only lines before the code and all whitespace after it, keeping the first
/// line's indentation.
pub(crate) fn trim_code(code: &str) -> &str {
    let code = code.trim_end();
    let first_visible = code.len() - code.trim_start().len();
    let line_start = code[..first_visible]
        .rfind('\n')
        .map_or(0, |newline| newline + 1);
    &code[line_start..]
}
