//! Text that a permission prompt shows: escaped so that it cannot lie, quoted as a shell
//! would show it, and cut only with a note that says how much is missing; an editor's
//! message holds no link syntax ([`unlinked`]).
//!
//! What a prompt shows comes from the model, so it is hostile: a tab run or a bidi override
//! can make `rm -rf ~` look like `ls`, a newline can forge a second line of the dialog. Every
//! character that is not plainly visible (C0 and C1 controls, DEL, bidi embeddings, overrides,
//! isolates and marks, zero-width characters, other Unicode format characters, line and
//! paragraph separators) is written as an escape: in a shell word `\t`, `\n`, `\x1b`, `\u202E`,
//! the way bash's `printf %q` writes a word inside `$'…'`; in free text such as a diff line
//! `<U+202E>`.

use std::fmt::Write;

/// Is `ch` a character that a reader cannot see or that reorders or hides what follows it?
fn is_hidden(ch: char) -> bool {
    ch.is_control()
        || matches!(ch,
            // Bidi: ALM, LRM/RLM, embeddings and overrides, isolates.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero-width and joiners, word joiner and invisible operators, BOM.
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}'
            // Soft hyphen, Mongolian vowel separator, Hangul fillers, other format characters.
            | '\u{00AD}' | '\u{180E}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            | '\u{206A}'..='\u{206F}' | '\u{FFF9}'..='\u{FFFB}'
            // Variation selectors and tag characters (invisible "ASCII smuggling").
            | '\u{FE00}'..='\u{FE0F}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Appends `ch` in its escaped form (only called for hidden characters and the quote syntax).
fn push_escape(res: &mut String, ch: char) {
    match ch {
        '\t' => res.push_str("\\t"),
        '\n' => res.push_str("\\n"),
        '\r' => res.push_str("\\r"),
        '\\' => res.push_str("\\\\"),
        '\'' => res.push_str("\\'"),
        ch if (ch as u32) < 0x80 => {
            let _ = write!(res, "\\x{:02x}", ch as u32);
        }
        ch if (ch as u32) <= 0xFFFF => {
            let _ = write!(res, "\\u{:04X}", ch as u32);
        }
        ch => {
            let _ = write!(res, "\\U{:08X}", ch as u32);
        }
    }
}

/// `text` (free text such as a diff line, not a shell word) with every hidden character but
/// the tab written as `<U+202E>`. Backslashes stay as they are, so code reads as code; a file
/// that holds the literal text `<U+202E>` looks the same as one that holds the character,
/// which hides nothing.
pub fn escape(text: &str) -> String {
    escape_except(text, &['\t'])
}

/// `text` for a line of its own (a status bar, a progress line): [`escape`], and tabs written
/// as `\t`, so a run of them cannot push the rest out of sight.
pub fn one_line(text: &str) -> String {
    escape(text).replace('\t', "\\t")
}

/// `text` as it may reach a terminal (`punie ask`'s answer on a TTY): [`escape`], keeping line
/// breaks. An escape sequence in a model's answer would otherwise act on the terminal: set
/// its title or clipboard (OSC 52), move the cursor over earlier lines, or conceal what follows.
pub fn escape_lines(text: &str) -> String {
    escape_except(text, &['\t', '\n'])
}

fn escape_except(text: &str, kept: &[char]) -> String {
    let mut res = String::with_capacity(text.len());
    for ch in text.chars() {
        if !kept.contains(&ch) && is_hidden(ch) {
            let _ = write!(res, "<U+{:04X}>", ch as u32);
        } else {
            res.push(ch);
        }
    }
    res
}

/// Characters that need no quoting in a shell word.
fn is_plain(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || "_@%+=:,./-".contains(ch)
}

/// One word as bash's `printf %q` would show it: plain words as they are, words with spaces
/// or shell syntax in single quotes, words with hidden characters or quotes in `$'…'` with
/// escapes. Pasting the result into a shell gives back exactly `word`. Not `shlex`'s quoting,
/// which leaves hidden characters (U+202E, escapes) raw inside its quotes.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        return word.to_owned();
    }
    if !word.chars().any(|ch| is_hidden(ch) || ch == '\'') {
        return format!("'{word}'");
    }
    let mut res = String::from("$'");
    for ch in word.chars() {
        if is_hidden(ch) || ch == '\\' || ch == '\'' {
            push_escape(&mut res, ch);
        } else {
            res.push(ch);
        }
    }
    res.push('\'');
    res
}

/// An argv as a shell command line (see [`shell_word`]).
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text cut to at most `max_chars` characters, saying how many were left out, so that a
/// dialog never shows part of the truth as if it were all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The beginning of the text (never cut inside an escape such as `\u202E`).
    pub text: String,
    /// Characters of the whole text not in `text`; 0 when nothing was cut.
    pub hidden_chars: usize,
}

impl Shown {
    /// The text with a note on what was cut: `… [9812 more characters not shown]`.
    pub fn with_note(&self) -> String {
        if self.hidden_chars == 0 {
            self.text.clone()
        } else {
            format!(
                "{}… [{} more characters not shown]",
                self.text, self.hidden_chars
            )
        }
    }
}

/// The first `max_chars` characters of an already escaped `text`. A backslash escape
/// (`\t`, `\u202E`, `<U+202E>`) is kept whole or left out whole, never split.
pub fn cut(text: &str, max_chars: usize) -> Shown {
    let total = text.chars().count();
    let mut end = 0;
    let mut n_kept = 0;
    while end < text.len() {
        let rest = &text[end..];
        let token = if rest.starts_with('\\') {
            &rest[..escape_len(rest)]
        } else if rest.starts_with("<U+")
            && let Some((close, _)) = rest.char_indices().take(12).find(|(_, ch)| *ch == '>')
        {
            &rest[..=close]
        } else {
            let ch = rest.chars().next().unwrap_or_default();
            &rest[..ch.len_utf8()]
        };
        let n_token = token.chars().count();
        if n_kept + n_token > max_chars {
            break;
        }
        n_kept += n_token;
        end += token.len();
    }
    Shown {
        text: text[..end].to_owned(),
        hidden_chars: total - n_kept,
    }
}

/// `text` for an editor's message (LSP `window/showMessage`, `showMessageRequest`), with no
/// link a client can make of it. VS Code's notifications turn `[label](command:ID?ARGS)` into
/// a link that runs any command, and the text quotes what a model or a cloned repository
/// chose (a file name, a setting's value, an answer). VS Code's parser (`parseLinkedText`)
/// honours no escapes and needs `](` with nothing between: a backslash put between them
/// leaves no link, stays visible, and markdown renders `]\(` as `](`.
pub fn unlinked(text: &str) -> String {
    text.replace("](", "]\\(")
}

/// The length in bytes of the escape at the start of `text` (which starts with `\`); the
/// escapes are ASCII, so bytes are characters.
fn escape_len(text: &str) -> usize {
    let len = match text.as_bytes().get(1) {
        Some(b'x') => 4,
        Some(b'u') => 6,
        Some(b'U') => 10,
        _ => 2,
    };
    // Stop at the first non-ASCII byte so the slice stays on a char boundary.
    text.bytes()
        .take(len)
        .take_while(u8::is_ascii)
        .count()
        .max(1)
}
