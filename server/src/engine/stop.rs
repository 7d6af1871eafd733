//! Incremental text assembly for streamed generation: UTF-8 pieces split across tokens, and
//! stop strings split across tokens.
//!
//! Pure logic, no IO. [`Utf8Assembler`] turns token bytes into text, holding back an
//! incomplete trailing character. [`StopMatcher`] holds back text that could still become a
//! stop string, so a caller never streams half of `<|im_end|>` and then has to take it back.

/// Turns a stream of byte pieces into text, holding back an incomplete UTF-8 sequence.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Appends `bytes` and returns the text that is complete. Invalid bytes become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut res = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    res.push_str(text);
                    self.pending.clear();
                    return res;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    // Safe: `valid_up_to` marks the end of a valid prefix.
                    res.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match err.error_len() {
                        // An incomplete sequence at the end: wait for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return res;
                        }
                        Some(n_invalid) => {
                            res.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + n_invalid);
                        }
                    }
                }
            }
        }
    }

    /// At the end of generation: whatever is left, lossily.
    pub fn finish(&mut self) -> String {
        let res = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        res
    }
}

/// The outcome of feeding text to a [`StopMatcher`].
#[derive(Debug, PartialEq, Eq)]
pub struct StopStep {
    /// Text that can be emitted now: it is not, and cannot become, part of a stop string.
    pub emit: String,
    /// A stop string was found; `emit` ends just before it.
    pub stopped: bool,
}

/// Finds stop strings in streamed text, even when one is split across pieces.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    // Invariant: `held` is a proper prefix of some stop string (or empty), and never contains one.
    held: String,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> StopStep {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(stop_at) = first_stop {
            let emit = self.held[..stop_at].to_owned();
            self.held.clear();
            return StopStep {
                emit,
                stopped: true,
            };
        }
        let keep_from = self.start_of_possible_stop();
        let emit = self.held[..keep_from].to_owned();
        self.held.drain(..keep_from);
        StopStep {
            emit,
            stopped: false,
        }
    }

    /// At the end of generation the held text was not a stop string after all.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The earliest char boundary from which the held text is a prefix of some stop string.
    fn start_of_possible_stop(&self) -> usize {
        self.held
            .char_indices()
            .map(|(idx, _)| idx)
            .find(|&idx| {
                let tail = &self.held[idx..];
                self.stops.iter().any(|stop| stop.starts_with(tail))
            })
            .unwrap_or(self.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one by one; returns the emitted text joined with `|` per push, and whether
    /// it stopped.
    #[track_caller]
    fn check(stops: &[&str], pieces: &[&str], expect_emitted: &str, expect_stopped: bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut matcher = StopMatcher::new(&stops);
        let mut emitted = Vec::new();
        let mut stopped = false;
        for piece in pieces {
            let step = matcher.push(piece);
            emitted.push(step.emit);
            if step.stopped {
                stopped = true;
                break;
            }
        }
        if !stopped {
            emitted.push(matcher.finish());
        }
        assert_eq!(emitted.join("|"), expect_emitted);
        assert_eq!(stopped, expect_stopped);
    }

    #[test]
    fn stop_in_one_piece() {
        check(&["<|im_end|>"], &["hello<|im_end|>more"], "hello", true);
    }

    #[test]
    fn stop_split_across_pieces_is_never_emitted() {
        check(
            &["<|im_end|>"],
            &["hello<|im", "_en", "d|>"],
            "hello||",
            true,
        );
        check(&["</tool_call>"], &["x</", "tool_call>"], "x|", true);
    }

    #[test]
    fn false_alarm_is_released() {
        check(&["<|im_end|>"], &["a <|im", " b"], "a |<|im b|", false);
        check(&["<|im_end|>"], &["tail <|im"], "tail |<|im", false);
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        check(&["STOP", "END"], &["one END two STOP"], "one ", true);
    }

    #[test]
    fn multibyte_text_keeps_char_boundaries() {
        check(&["éé"], &["aé", "é"], "a|", true);
        check(&["<|im_end|>"], &["日本語<"], "日本語|<", false);
    }

    #[test]
    fn empty_stop_strings_are_ignored() {
        check(&[""], &["abc"], "abc|", false);
    }

    #[test]
    fn utf8_split_across_pieces() {
        let bytes = "é日🦀".as_bytes();
        let mut assembler = Utf8Assembler::default();
        let mut res = String::new();
        for byte in bytes {
            res.push_str(&assembler.push(&[*byte]));
        }
        res.push_str(&assembler.finish());
        assert_eq!(res, "é日🦀");
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let mut assembler = Utf8Assembler::default();
        assert_eq!(assembler.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(assembler.push(b"\xe6\x97"), "");
        assert_eq!(assembler.finish(), "\u{fffd}");
    }
}
