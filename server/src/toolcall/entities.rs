//! When to undo XML escaping in a value.
//!
//! The fine-tune writes code raw, so by default nothing is unescaped: `print("&lt;b&gt;")` is a
//! real program that prints an HTML entity. A value is unescaped only when all of these hold:
//!
//! 1. it contains at least one entity reference (`&lt;`, `&gt;`, `&amp;`, `&quot;`, `&apos;`,
//!    `&#NN;`, `&#xNN;`);
//! 2. it is consistently escaped: every `&` starts such a reference and there is no raw `<`
//!    (an escaper always escapes both, so a raw one means the text was never escaped);
//! 3. at least one reference sits where Python code, not a string literal or a comment, would be
//!    (`if a &lt; b:`, `print(&quot;hi&quot;)`): raw Python never has an entity there, so the
//!    value cannot be meant literally.
//!
//! A value that satisfies 1 and 2 but has entities only inside string literals is ambiguous and
//! is kept raw: running it prints the entity instead of the character, which the model can see,
//! while unescaping a real `"&amp;"` would silently change a program.

use std::borrow::Cow;

/// The unescaped value, or `None` to keep `raw` as it is.
pub(crate) fn unescape_if_escaped(raw: &str) -> Option<String> {
    if !raw.contains('&') || raw.contains('<') || !entities_in_code(raw)? {
        return None;
    }
    match quick_xml::escape::unescape(raw) {
        Ok(Cow::Owned(unescaped)) => Some(unescaped),
        Ok(Cow::Borrowed(_)) | Err(_) => None,
    }
}

/// Whether an entity reference occurs outside string literals and comments; `None` when some `&`
/// starts no entity reference (rule 2). A rough Python lexer: quotes (single, double, triple,
/// backslash escapes) and `#` comments are all this rule needs.
fn entities_in_code(raw: &str) -> Option<bool> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Code,
        Comment,
        Str { quote: u8, triple: bool },
    }
    let bytes = raw.as_bytes();
    let mut any_in_code = false;
    let mut state = State::Code;
    let mut idx = 0;
    while idx < bytes.len() {
        let byte = bytes[idx];
        if byte == b'&' {
            // `&` is ASCII, so `idx` is a char boundary here.
            let len = entity_len(&raw[idx..])?;
            any_in_code |= state == State::Code;
            idx += len;
            continue;
        }
        match state {
            State::Code => {
                if byte == b'#' {
                    state = State::Comment;
                    idx += 1;
                } else if byte == b'"' || byte == b'\'' {
                    let triple = is_triple(bytes, idx, byte);
                    state = State::Str {
                        quote: byte,
                        triple,
                    };
                    idx += if triple { 3 } else { 1 };
                } else {
                    idx += 1;
                }
            }
            State::Comment => {
                if byte == b'\n' {
                    state = State::Code;
                }
                idx += 1;
            }
            State::Str { quote, triple } => {
                if byte == b'\\' {
                    // Skips the escaped byte (`"\""`).
                    idx += 2;
                } else if byte == quote && (!triple || is_triple(bytes, idx, quote)) {
                    state = State::Code;
                    idx += if triple { 3 } else { 1 };
                } else {
                    // An unterminated one-line string ends at the line's end.
                    if byte == b'\n' && !triple {
                        state = State::Code;
                    }
                    idx += 1;
                }
            }
        }
    }
    Some(any_in_code)
}

/// Length of the entity reference at the start of `text` (`&` to `;` inclusive), if it is one.
fn entity_len(text: &str) -> Option<usize> {
    let semicolon = text
        .as_bytes()
        .iter()
        .take(12)
        .position(|&byte| byte == b';')?;
    let body = &text[1..semicolon];
    let valid = match body {
        "lt" | "gt" | "amp" | "quot" | "apos" => true,
        _ => match body.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => {
                hex.len() > 1 && hex[1..].bytes().all(|byte| byte.is_ascii_hexdigit())
            }
            Some(dec) => !dec.is_empty() && dec.bytes().all(|byte| byte.is_ascii_digit()),
            None => false,
        },
    };
    valid.then_some(semicolon + 1)
}

fn is_triple(bytes: &[u8], idx: usize, quote: u8) -> bool {
    bytes.len() >= idx + 3 && bytes[idx + 1] == quote && bytes[idx + 2] == quote
}
