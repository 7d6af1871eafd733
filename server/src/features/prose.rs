//! [`ProseStream`]: the prose of a model turn as it streams in, without its tool calls, so a
//! front end can show the answer while it is generated (ACP `agent_message_chunk`) and never
//! show `<tool_call>` markup. Calls are found by the tool-call parser's own streaming scanner,
//! so a call ends where `toolcall::parse` says it does.

use crate::toolcall::{ScanEvent, StreamScanner};

const TAG: &str = "<tool_call>";

#[derive(Debug, Default)]
pub struct ProseStream {
    scanner: StreamScanner,
    text: String,
    /// Bytes of `text` already handed out or skipped.
    done: usize,
    in_call: bool,
}

impl ProseStream {
    /// Appends `chunk`; returns the prose that is now final (possibly empty). Text that could
    /// be the start of a `<tool_call>` tag is held back until the next chunk says.
    pub fn push(&mut self, chunk: &str) -> String {
        self.text.push_str(chunk);
        let mut res = String::new();
        for event in self.scanner.push(chunk) {
            match event {
                ScanEvent::CallStarted { offset, .. } => {
                    if !self.in_call && offset >= self.done {
                        res.push_str(&self.text[self.done..offset]);
                    }
                    self.in_call = true;
                    self.done = self.done.max(offset);
                }
                ScanEvent::CallFinished { span, .. } => {
                    self.in_call = false;
                    self.done = self.done.max(span.end);
                }
            }
        }
        if !self.in_call {
            let safe_end = self.text.len() - held_back(&self.text[self.done..]);
            res.push_str(&self.text[self.done..safe_end]);
            self.done = safe_end;
        }
        res
    }

    /// The turn ended: the prose held back, unless it is inside an unfinished call.
    pub fn finish(&mut self) -> String {
        if self.in_call {
            return String::new();
        }
        let res = self.text[self.done..].to_owned();
        self.done = self.text.len();
        res
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `<tool_call>`.
fn held_back(text: &str) -> usize {
    (1..TAG.len())
        .rev()
        .find(|&n| text.ends_with(&TAG[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(chunks: &[&str], expect: &str) {
        let mut stream = ProseStream::default();
        let mut res = String::new();
        for chunk in chunks {
            res.push_str(&stream.push(chunk));
        }
        res.push_str(&stream.finish());
        assert_eq!(res, expect);
    }

    #[test]
    fn calls_are_left_out_however_the_text_is_chunked() {
        let turn = "Let me look.\n<tool_call><function=execute_code>\n<parameter=code>\nprint('</tool_call>')\n</parameter>\n</function></tool_call>\nDone.";
        check(&[turn], "Let me look.\n\nDone.");
        let chunks: Vec<String> = turn.chars().map(String::from).collect();
        let chunks: Vec<&str> = chunks.iter().map(String::as_str).collect();
        check(&chunks, "Let me look.\n\nDone.");
        check(&["a <tool", "_cal", "l> never closed"], "a ");
        check(&["2 < 3 and <b>"], "2 < 3 and <b>");
    }

    #[test]
    fn prose_goes_out_as_soon_as_it_cannot_be_a_tag() {
        let mut stream = ProseStream::default();
        assert_eq!(stream.push("Hello"), "Hello");
        assert_eq!(stream.push(" <tool"), " ");
        assert_eq!(stream.push("s> are"), "<tools> are");
    }
}
