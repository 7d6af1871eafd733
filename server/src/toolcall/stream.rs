//! Watching generated text as it streams in: when does a `<tool_call>` start, when is it complete.
//!
//! The scanner keeps the whole text (the agent needs it anyway) and decides completion with the
//! same block parser as [`super::parse`], so a `</tool_call>` inside the code's string literals
//! does not end a call early, and the events do not depend on how the text was chunked (a
//! proptest checks this). While a call is open its block is parsed again on every push: that is
//! linear in the block's length, a few kilobytes, which costs far less than generating a token.
//! Only `<tool_call>` blocks are tracked; the legacy ```` ```json ```` fence is left to `parse`.

use std::ops::Range;

use super::xml_form::at_line_start;
use super::{Parsed, TOOL_CALL_OPEN, find_from, parse, parse_tool_call_block, skip_whitespace};

/// Something the agent may act on while the model is still generating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// A `<tool_call>` tag was generated at `offset` (bytes into the text so far).
    CallStarted { call_idx: usize, offset: usize },
    /// The call that started at `span.start` is complete: its closing tag ends at `span.end`, or
    /// the next call started right after it without one. Generation can stop here.
    CallFinished { call_idx: usize, span: Range<usize> },
}

/// Feed it chunks with [`StreamScanner::push`]; read the whole result with [`StreamScanner::finish`].
#[derive(Debug, Default)]
pub struct StreamScanner {
    text: String,
    /// Where to look for the next tag. The last few bytes before it are searched again on the
    /// next push, because a tag may be split across chunks.
    scan_pos: usize,
    /// Start of the call that has started and not finished.
    open_call: Option<usize>,
    /// End of the last finished call: tags are never searched for before it again.
    finished_end: usize,
    n_calls: usize,
}

impl StreamScanner {
    /// Appends `chunk` and returns what happened in it, in order (often nothing).
    pub fn push(&mut self, chunk: &str) -> Vec<ScanEvent> {
        self.text.push_str(chunk);
        let mut res = Vec::new();
        loop {
            match self.open_call {
                Some(start) => {
                    // The block is parsed again on every push: a call is a few kilobytes, and
                    // whether it is complete can change with any new text, not only new tags.
                    let outcome = parse_tool_call_block(&self.text, start);
                    // A block cut off by a `<tool_call>` that starts a line is final: the parser
                    // never lets a call reach past one (see `xml_form`).
                    let next_open = skip_whitespace(&self.text, outcome.end);
                    let next_call_follows = outcome.end < self.text.len()
                        && self.text[next_open..].starts_with(TOOL_CALL_OPEN)
                        && at_line_start(&self.text, start, next_open);
                    if outcome.closed || next_call_follows {
                        res.push(ScanEvent::CallFinished {
                            call_idx: self.n_calls - 1,
                            span: start..outcome.end,
                        });
                        self.open_call = None;
                        // After a block that is no call, look for calls inside it, as `parse` does.
                        let resume = if outcome.call.is_some() {
                            outcome.end
                        } else {
                            start + 1
                        };
                        self.scan_pos = resume;
                        self.finished_end = resume;
                    } else {
                        self.scan_pos = self.text.len();
                        break;
                    }
                }
                None => {
                    let from = self.scan_pos.saturating_sub(TOOL_CALL_OPEN.len() - 1);
                    match find_from(&self.text, TOOL_CALL_OPEN, from.max(self.finished_end)) {
                        Some(offset) => {
                            res.push(ScanEvent::CallStarted {
                                call_idx: self.n_calls,
                                offset,
                            });
                            self.n_calls += 1;
                            self.open_call = Some(offset);
                            self.scan_pos = offset + TOOL_CALL_OPEN.len();
                        }
                        None => {
                            self.scan_pos = self.text.len();
                            break;
                        }
                    }
                }
            }
        }
        res
    }

    /// All text pushed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a call has started and not finished.
    pub fn in_call(&self) -> bool {
        self.open_call.is_some()
    }

    /// Parses everything pushed so far.
    pub fn finish(&self) -> Parsed {
        parse(&self.text)
    }
}
