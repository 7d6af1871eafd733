//! Model output → plain text plus the tool calls in it, and the problems found on the way.
//!
//! Bad model output is an expected input, not an error: [`parse`] never fails and never panics.
//! It returns what it understood ([`Parsed`]) together with the problems it met, so the agent can
//! run the calls it got and tell the model about the rest.
//!
//! **Invariant: no text is lost.** Every call carries the byte span of its raw text in the input;
//! [`Parsed::text`] is exactly the input with those spans cut out. Text the parser could not turn
//! into a call (invalid JSON, an empty block) stays in `text` and gets a [`ParseProblem`].
//!
//! # Forms accepted
//!
//! | form | example | [`CallForm`] |
//! |---|---|---|
//! | the fine-tune's trained form | `<tool_call><function=execute_code>\n<parameter=code>\n…\n</parameter>\n</function></tool_call>` | `Xml` |
//! | compact / other Qwen spacing | `<tool_call>\n<function=f><parameter=p>v</parameter></function>\n</tool_call>` | `Xml` |
//! | bare code (later Punie data) | `<tool_call>\nprint(1)\n</tool_call>` → `execute_code` | `Bare` |
//! | JSON (other Qwen models) | `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>` | `JsonTag` |
//! | legacy fence (old rows) | `` ```json\n{"name": …, "arguments": {…}}\n``` `` | `JsonFence` |
//!
//! Recovered with a [`Severity::Note`]: a missing `</tool_call>` (the usual case when generation
//! stops on it as a stop string), a missing `</function>` or `</parameter>`, code written directly
//! inside `<function=execute_code>` without a `<parameter=code>`.
//!
//! # Why a purpose-built scanner and not an XML parser
//!
//! The model writes Python *raw* between the tags: `a < b`, `x & y`, `"</parameter>"` inside a
//! string literal, HTML in a string. That text is not well-formed XML, and `<function=name>` is
//! not an XML tag at all, so an XML reader rejects most real calls. The scanner here instead looks
//! for the few fixed tags by byte search and decides where a value ends by what follows a closing
//! tag (see [`xml_form`]). `quick-xml` is still used where XML rules do apply: to unescape entities
//! when a model does escape its code (see [`entities`] for exactly when that happens).
//!
//! Parameter values are strings; the parser knows no tool schemas and does not guess types.
//!
//! # Streaming
//!
//! [`StreamScanner`] is fed the generated text chunk by chunk and says when a `<tool_call>` block
//! starts and when it is complete, so the agent can report progress and stop generating early.

mod entities;
mod json_form;
mod stream;
mod xml_form;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use stream::{ScanEvent, StreamScanner};

/// The tool that runs a Python snippet: the only tool the Code Mode model calls.
pub const EXECUTE_CODE: &str = "execute_code";

/// What [`parse`] understood of one model output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The input with the raw text of every call in `calls` removed (prose before, between and
    /// after calls, verbatim, including whitespace).
    pub text: String,
    /// The calls, in the order they appear. Their spans are sorted and do not overlap.
    pub calls: Vec<ToolCall>,
    /// What could not be parsed (`Severity::Error`: no call was made from it) or was repaired
    /// (`Severity::Note`: a call was still made), in input order.
    pub errors: Vec<ParseProblem>,
}

impl Parsed {
    /// The problems the model should hear about: those that lost a call.
    pub fn hard_errors(&self) -> impl Iterator<Item = &ParseProblem> {
        self.errors
            .iter()
            .filter(|it| it.severity == Severity::Error)
    }
}

/// One tool call found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    /// Argument name → value. Values from the XML forms are always strings; the JSON forms keep
    /// whatever JSON the model wrote.
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// Byte range of the call's raw text in the input (from `<tool_call>` or the fence's first
    /// backtick through the closing tag or fence, or to where the call was cut off).
    pub span: Range<usize>,
    pub form: CallForm,
}

impl ToolCall {
    /// The Python snippet of an `execute_code` call; `None` for other tools or a missing `code`.
    pub fn code(&self) -> Option<&str> {
        if self.name != EXECUTE_CODE {
            return None;
        }
        self.arguments.get("code")?.as_str()
    }
}

/// The written shape of a call, for transcripts and for telling a model how it wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallForm {
    /// `<tool_call><function=NAME><parameter=P>…</parameter></function></tool_call>`.
    Xml,
    /// `<tool_call>\ncode\n</tool_call>`: an `execute_code` call.
    Bare,
    /// `<tool_call>{"name": …, "arguments": …}</tool_call>`.
    JsonTag,
    /// `` ```json {"name": …, "arguments": …} ``` ``.
    JsonFence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Repaired: a call was made anyway.
    Note,
    /// The text in `span` did not become a call.
    Error,
}

/// Something in the output that was not as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    pub severity: Severity,
    /// One sentence a user (or the model) can act on.
    pub message: String,
    /// Byte range in the input it is about; always on char boundaries.
    pub span: Range<usize>,
}

impl ParseProblem {
    fn note(span: Range<usize>, message: impl Into<String>) -> ParseProblem {
        ParseProblem {
            severity: Severity::Note,
            message: message.into(),
            span,
        }
    }
    fn error(span: Range<usize>, message: impl Into<String>) -> ParseProblem {
        ParseProblem {
            severity: Severity::Error,
            message: message.into(),
            span,
        }
    }
}

pub(crate) const TOOL_CALL_OPEN: &str = "<tool_call>";
pub(crate) const TOOL_CALL_CLOSE: &str = "</tool_call>";
const JSON_FENCE_OPEN: &str = "```json";

/// Splits model output into text and tool calls. Never fails; see the module doc.
pub fn parse(input: &str) -> Parsed {
    let mut res = Parsed::default();
    // `text_start`: where the text not yet copied to `res.text` begins.
    // `pos`: where to look for the next call (after a block that failed, past its text).
    let mut text_start = 0;
    let mut pos = 0;
    loop {
        let next_tag = find_from(input, TOOL_CALL_OPEN, pos);
        let next_fence = find_from(input, JSON_FENCE_OPEN, pos);
        let tag_first = match (next_tag, next_fence) {
            (None, None) => break,
            (Some(tag), Some(fence)) => tag < fence,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let (start, outcome) = if let (true, Some(tag)) = (tag_first, next_tag) {
            (tag, parse_tool_call_block(input, tag))
        } else if let Some(fence) = next_fence {
            match json_form::parse_fence(input, fence) {
                Some(outcome) => (fence, outcome),
                None => {
                    // An ordinary ```json code block in an answer: plain text.
                    pos = fence + JSON_FENCE_OPEN.len();
                    continue;
                }
            }
        } else {
            break;
        };
        res.errors.extend(outcome.problems);
        match outcome.call {
            Some(call) => {
                res.text.push_str(&input[text_start..start]);
                res.calls.push(ToolCall {
                    span: start..outcome.end,
                    ..call
                });
                text_start = outcome.end;
                pos = outcome.end;
            }
            None => {
                // The block's text stays text. Look for calls again right after its opening tag:
                // a broken block (say an unclosed fence) must not swallow a good call after it.
                pos = start + 1;
            }
        }
    }
    res.text.push_str(&input[text_start..]);
    res
}

/// The result of parsing one block that starts at a `<tool_call>` or a ```` ```json ```` fence.
#[derive(Debug)]
pub(crate) struct BlockOutcome {
    /// The call, with an empty span (the caller knows where the block started).
    pub(crate) call: Option<ToolCall>,
    /// End of the block's raw text (exclusive), on a char boundary.
    pub(crate) end: usize,
    /// Whether the block certainly ended with its real closing tag (`</tool_call>` or the closing
    /// fence), as opposed to running into the end of the input or the next call, or ending at a
    /// tag that more text could still turn into part of the call (see `StreamScanner`).
    pub(crate) closed: bool,
    pub(crate) problems: Vec<ParseProblem>,
}

/// Parses the `<tool_call>` block that starts at `start`: picks the XML, JSON or bare form by the
/// first thing after the tag.
pub(crate) fn parse_tool_call_block(input: &str, start: usize) -> BlockOutcome {
    let body_start = start + TOOL_CALL_OPEN.len();
    let first = skip_whitespace(input, body_start);
    let rest = &input[first..];
    if rest.starts_with(xml_form::FUNCTION_OPEN) {
        xml_form::parse_function_block(input, start, first)
    } else if rest.starts_with('{') {
        json_form::parse_json_block(input, start, first)
    } else {
        xml_form::parse_bare_block(input, start, body_start)
    }
}

/// Byte offset of the first `needle` at or after `from`. Works on bytes so that `from` need not
/// be a char boundary; the needles are ASCII, so a match always is one.
pub(crate) fn find_from(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let hay = haystack.as_bytes();
    let needle = needle.as_bytes();
    if from >= hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|idx| from + idx)
}

/// The first offset at or after `from` that is not ASCII whitespace.
pub(crate) fn skip_whitespace(input: &str, from: usize) -> usize {
    let bytes = input.as_bytes();
    let mut pos = from;
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// Whether `input[pos..]`, after whitespace, starts with one of `tags` or is empty.
pub(crate) fn followed_by(input: &str, pos: usize, tags: &[&str]) -> bool {
    let after = skip_whitespace(input, pos);
    after == input.len() || tags.iter().any(|tag| input[after..].starts_with(tag))
}
