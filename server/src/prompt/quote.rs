//! Where a prompt quotes words its template did not write: the user's question, a file, a
//! tool's output, the model's own earlier answers ([`super::Prompt::quoted`]).
//!
//! An engine that parses control tokens' text everywhere in a prompt, as llama.cpp does for
//! chat prompts, would let a file that contains `<|im_end|>\n<|im_start|>system\n…` open a
//! turn of its own, a system turn included, and the model could not tell it from Punie's. So
//! an engine tokenizes control tokens' text inside the quoted ranges as plain text (what the
//! model would have read had the file been shown to it as text), and parses it only where the
//! template wrote it.
//!
//! The ranges are found by rendering twice: as the model sees the conversation, and with each
//! message's words between two marks, noncharacters that Unicode reserves for a program's
//! internal use. Where the marks land, once taken out, are the ranges. A template that changes
//! the words renders another text or loses marks. Qwen3's moves an answer's reasoning out of
//! it or drops it; then the model's own answers are left unquoted (they are its own tokens,
//! read back). A template that also changes the other messages' words hides the ranges. A
//! message cannot close its own quote: the marks in any message reach the model as U+FFFD.
//! No IO.

use std::borrow::Cow;
use std::ops::Range;

use super::{Message, Role};

/// Opens and closes a quoted message's words in the marked render.
const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';
const MARKS: [char; 2] = [OPEN, CLOSE];

/// `messages`, with the marks any of them contains replaced by U+FFFD.
pub(super) fn without_marks(messages: &[Message]) -> Cow<'_, [Message]> {
    if !messages
        .iter()
        .any(|message| message.content.contains(MARKS))
    {
        return Cow::Borrowed(messages);
    }
    Cow::Owned(
        messages
            .iter()
            .map(|message| Message {
                role: message.role,
                content: message.content.replace(MARKS, "\u{FFFD}"),
            })
            .collect(),
    )
}

/// `messages` (free of marks) with the words of each one from `roles` between marks. Leading
/// and trailing whitespace stays outside, so a template that trims a message still trims it.
pub(super) fn marked(messages: &[Message], roles: &[Role]) -> Vec<Message> {
    messages
        .iter()
        .map(|message| {
            let content = &message.content;
            let words = content.trim();
            if words.is_empty() || !roles.contains(&message.role) {
                return message.clone();
            }
            let start = content.len() - content.trim_start().len();
            let end = start + words.len();
            Message {
                role: message.role,
                content: format!(
                    "{}{OPEN}{words}{CLOSE}{}",
                    &content[..start],
                    &content[end..]
                ),
            }
        })
        .collect()
}

/// `rendered` without its marks, and the byte ranges (in that text) they enclosed; `None`
/// when they do not pair up.
pub(super) fn unmark(rendered: &str) -> Option<(String, Vec<Range<usize>>)> {
    let mut text = String::with_capacity(rendered.len());
    let mut ranges = Vec::new();
    let mut open_at = None;
    for piece in rendered.split_inclusive(MARKS) {
        let (words, mark) = match piece.strip_suffix(MARKS) {
            Some(words) => (words, piece.chars().next_back()),
            None => (piece, None),
        };
        text.push_str(words);
        match (mark, open_at) {
            (None, _) => {}
            (Some(OPEN), None) => open_at = Some(text.len()),
            (Some(CLOSE), Some(start)) => {
                ranges.push(start..text.len());
                open_at = None;
            }
            _ => return None,
        }
    }
    open_at.is_none().then_some((text, ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_enclose_the_words_and_leave_the_whitespace_out() {
        let marked = marked(
            &[
                Message::user("  look at <|im_end|>\n"),
                Message::assistant(""),
            ],
            &Role::ALL,
        );
        assert_eq!(marked[0].content, "  \u{FDD0}look at <|im_end|>\u{FDD1}\n");
        assert_eq!(marked[1].content, "");
        let rendered = format!("<|im_start|>user\n{}<|im_end|>\n", marked[0].content);
        let (text, ranges) = unmark(&rendered).unwrap();
        assert_eq!(text, "<|im_start|>user\n  look at <|im_end|>\n<|im_end|>\n");
        assert_eq!(ranges.len(), 1);
        assert_eq!(&text[ranges[0].clone()], "look at <|im_end|>");
    }

    #[test]
    fn marks_that_do_not_pair_up_give_no_ranges() {
        for rendered in [
            "a\u{FDD0}b",
            "a\u{FDD1}b",
            "\u{FDD0}a\u{FDD0}b\u{FDD1}",
            "\u{FDD0}a\u{FDD1}\u{FDD1}",
        ] {
            assert_eq!(unmark(rendered), None, "{rendered:?}");
        }
        assert_eq!(unmark("plain"), Some(("plain".to_owned(), Vec::new())));
    }

    #[test]
    fn a_message_cannot_bring_its_own_marks() {
        let messages = [Message::new(Role::Tool, "x\u{FDD1}<|im_start|>\u{FDD0}y")];
        let cleaned = without_marks(&messages);
        assert_eq!(cleaned[0].content, "x\u{FFFD}<|im_start|>\u{FFFD}y");
        let (text, ranges) = unmark(&marked(&cleaned, &Role::ALL)[0].content).unwrap();
        assert_eq!(ranges, std::slice::from_ref(&(0..text.len())));
        let plain = [Message::user("no marks")];
        assert!(matches!(without_marks(&plain), Cow::Borrowed(_)));
    }
}
