//! A chat prompt's tokens: control tokens (`<|im_start|>`, `<|im_end|>`) parsed where the
//! template wrote them, read as plain text where the prompt quotes a message's words
//! (`prompt::quote`: the question, a file, a tool's output).
//!
//! llama.cpp parses control tokens' text anywhere in a text it is told to, and a chat prompt
//! needs that for its turns, so a file that contains `<|im_end|>\n<|im_start|>system\n…` would
//! otherwise open a system turn of its own. Only control tokens are read as text here:
//! llama.cpp matches user-defined tokens (Qwen's `<tool_call>`, `</tool_response>`) in any
//! text, as the model's training tokenizer did, and the model's own calls read back need them;
//! a user's or a tool's words reach the engine with those tags already broken
//! (`prompt::quote`). A prompt whose quoted words hold no control token's text is tokenized in
//! one call, exactly as before; one that does is tokenized in pieces around that text.

use std::ops::Range;

use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;

/// The texts of a vocabulary's control tokens.
pub(super) struct ControlTexts(Vec<String>);

impl ControlTexts {
    pub(super) fn of(vocab: &LlamaVocab) -> ControlTexts {
        let mut texts: Vec<String> = (0..vocab.n_tokens())
            .map(LlamaToken)
            .filter(|token| vocab.is_control(*token))
            .filter_map(|token| Some(vocab.text(token)?.to_str().ok()?.to_owned()))
            .filter(|text| !text.is_empty())
            .collect();
        texts.sort();
        texts.dedup();
        ControlTexts(texts)
    }

    /// The tokens of `text`, a chat prompt (BOS added if the model wants it), whose `quoted`
    /// byte ranges are read with control tokens as plain text.
    pub(super) fn tokenize(
        &self,
        vocab: &LlamaVocab,
        text: &str,
        quoted: &[Range<usize>],
    ) -> Vec<LlamaToken> {
        let literal = controls_in(text, quoted, &self.0);
        let mut tokens = Vec::new();
        let mut at = 0;
        for span in literal {
            let before = &text[at..span.start];
            if at == 0 || !before.is_empty() {
                tokens.extend(vocab.tokenize(before.as_bytes(), at == 0, true));
            }
            tokens.extend(vocab.tokenize(text[span.clone()].as_bytes(), false, false));
            at = span.end;
        }
        let rest = &text[at..];
        if at == 0 || !rest.is_empty() {
            tokens.extend(vocab.tokenize(rest.as_bytes(), at == 0, true));
        }
        tokens
    }
}

/// Where, inside `quoted` ranges of `text`, the text of one of `controls` occurs: in order,
/// not overlapping, the longest first where two start together. Ranges out of bounds or off a
/// character boundary are ignored.
fn controls_in(text: &str, quoted: &[Range<usize>], controls: &[String]) -> Vec<Range<usize>> {
    let mut found: Vec<Range<usize>> = Vec::new();
    for range in quoted {
        let Some(words) = text.get(range.clone()) else {
            continue;
        };
        for control in controls {
            found.extend(
                words
                    .match_indices(control.as_str())
                    .map(|(at, _)| range.start + at..range.start + at + control.len()),
            );
        }
    }
    found.sort_by_key(|span| (span.start, std::cmp::Reverse(span.end)));
    let mut res: Vec<Range<usize>> = Vec::with_capacity(found.len());
    for span in found {
        if res.last().is_none_or(|last| span.start >= last.end) {
            res.push(span);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controls() -> Vec<String> {
        ["<|im_start|>", "<|im_end|>", "<|im", "<|endoftext|>"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn only_controls_inside_quoted_ranges_are_found() {
        let text = "<|im_start|>user\nsee <|im_end|> and <|im_start|>x<|im_end|>\n";
        let words = text.find("see").unwrap()..text.rfind("<|im_end|>").unwrap();
        let found = controls_in(text, std::slice::from_ref(&words), &controls());
        let texts: Vec<&str> = found.iter().map(|span| &text[span.clone()]).collect();
        assert_eq!(texts, ["<|im_end|>", "<|im_start|>"]);
        assert!(
            found
                .iter()
                .all(|span| words.start <= span.start && span.end <= words.end)
        );
    }

    #[test]
    fn overlapping_controls_keep_the_longest_and_bad_ranges_are_ignored() {
        let text = "a<|im_start|>b";
        let whole = 0..text.len();
        let found = controls_in(text, std::slice::from_ref(&whole), &controls());
        assert_eq!(found, std::slice::from_ref(&(1..13)));
        let accented = "é<|im_end|>";
        assert!(controls_in(accented, &[1..4, 5..99], &controls()).is_empty());
        assert!(controls_in(text, &[], &controls()).is_empty());
    }
}
