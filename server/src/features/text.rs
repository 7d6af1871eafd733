//! Text as the features see it: lines as LSP counts them (`\n`, `\r\n` and `\r` each end a
//! line) in byte offsets, shared by the question builder and the LSP position conversions; and
//! edits made to a document while a run worked, through which a selection is carried
//! ([`rebase`]) so the run's edit lands on the code it was about, or not at all; and files as
//! text ([`decode`], [`encode`], [`read_file`]).

use std::ops::Range;
use std::path::Path;

use crate::workspace::{self, ToolError};

/// The byte-order mark some editors write at the start of UTF-8 files.
pub const BOM: char = '\u{feff}';

/// One replacement: bytes `start..end` of the text before it became `new_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteEdit {
    pub start: usize,
    pub end: usize,
    pub new_len: usize,
}

/// Where `range` is after `edits` (applied in order); `None` when an edit touches the range
/// itself (the code the run was about changed: its edit must not land anywhere).
pub fn rebase(range: Range<usize>, edits: &[ByteEdit]) -> Option<Range<usize>> {
    let mut range = range;
    for edit in edits {
        if edit.end <= range.start {
            // Before the range (an insertion at its start too): it moves.
            let removed = edit.end - edit.start;
            range = (range.start - removed + edit.new_len)..(range.end - removed + edit.new_len);
        } else if edit.start < range.end {
            return None;
        }
        // Otherwise after the range (an insertion at its end too): nothing moves.
    }
    Some(range)
}

/// Where `range` of `before` lies in `now`, the text as it is now (one diff between them);
/// `None` when the change may not be made there: the code it replaces was edited, or it
/// replaces the whole of `before` (a `write_file`), which is made only on that very text,
/// never over what was typed or written meanwhile.
pub fn carried(before: &str, now: &str, range: Range<usize>) -> Option<Range<usize>> {
    if before == now {
        return Some(range);
    }
    if range == (0..before.len()) {
        return None;
    }
    rebase(range, &[diff_edit(before, now)])
}

/// The one edit that turns `before` into `after`: what lies between their common prefix and
/// common suffix (on character boundaries).
pub fn diff_edit(before: &str, after: &str) -> ByteEdit {
    let mut prefix = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !before.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let max_suffix = before.len().min(after.len()) - prefix;
    let mut suffix = before
        .bytes()
        .rev()
        .zip(after.bytes().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    while !before.is_char_boundary(before.len() - suffix) {
        suffix -= 1;
    }
    ByteEdit {
        start: prefix,
        end: before.len() - suffix,
        new_len: after.len() - suffix - prefix,
    }
}

/// How a file's bytes map to the text the features work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8; `bom`: the file starts with a byte-order mark, which the text leaves out (editors
    /// do not count it in positions) and a write puts back.
    Utf8 { bom: bool },
    /// Bytes that are not UTF-8, one character per byte (ISO-8859-1). The view is lossless:
    /// every byte is a character and back, so what an edit does not touch is written back byte
    /// for byte, whatever 8-bit encoding the file really uses.
    Latin1,
}

/// The text of a file's bytes and how to write it back; `None` for a binary file (a NUL
/// byte: UTF-16 and data files), which is not text to edit.
pub fn decode(bytes: &[u8]) -> Option<(String, Encoding)> {
    if bytes.contains(&0) {
        return None;
    }
    Some(match std::str::from_utf8(bytes) {
        Ok(text) => {
            let (bom, text) = strip_bom(text);
            (text.to_owned(), Encoding::Utf8 { bom })
        }
        Err(_) => (
            bytes.iter().map(|&b| char::from(b)).collect(),
            Encoding::Latin1,
        ),
    })
}

/// The text of the file at `path` as an editor shows it ([`decode`]), read by
/// `workspace::read_bounded`: a regular file only, opened without blocking, at most `max`
/// bytes read, so `/dev/zero`, a FIFO or a `/proc` file cannot hang or swell the caller.
/// `shown` names the file in errors; a binary file is a `UnicodeDecodeError`.
pub fn read_file(path: &Path, shown: &str, max: u64) -> Result<String, ToolError> {
    let bytes = workspace::read_bounded(path, shown, max)?;
    decode(&bytes)
        .map(|(text, _)| text)
        .ok_or_else(|| ToolError::new("UnicodeDecodeError", "a binary file"))
}

/// The bytes of `text` in `encoding`; `Err` names the first character a Latin-1 file cannot
/// hold.
pub fn encode(text: &str, encoding: Encoding) -> Result<Vec<u8>, char> {
    match encoding {
        Encoding::Utf8 { bom } => {
            let text = text.strip_prefix(BOM).unwrap_or(text);
            let mut res = Vec::with_capacity(text.len() + 3);
            if bom {
                res.extend_from_slice("\u{feff}".as_bytes());
            }
            res.extend_from_slice(text.as_bytes());
            Ok(res)
        }
        Encoding::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| c))
            .collect(),
    }
}

/// `text` without a leading byte-order mark, and whether it had one.
pub fn strip_bom(text: &str) -> (bool, &str) {
    match text.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, text),
    }
}

/// Byte offsets of the start of each line; the first is always 0. A line ends at `\n`,
/// `\r\n` or a lone `\r`, as LSP counts lines.
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut lines = LineStarts::default();
    lines.start(text, usize::MAX);
    lines.starts
}

/// The starts of a text's lines as far as they have been needed, for a text edited in place:
/// a multi-cursor edit sends thousands of changes in one `didChange`, and rescanning the whole
/// text for each kept the language server's main loop busy for seconds. An edit keeps the
/// starts before it; lines after it are scanned again only when a later change needs them,
/// so changes in either order cost about one scan of the text in all.
pub struct LineStarts {
    /// Starts of the lines found so far; the first is 0.
    starts: Vec<usize>,
    /// The bytes before this offset have been scanned for line breaks.
    scanned: usize,
}

impl Default for LineStarts {
    fn default() -> LineStarts {
        LineStarts {
            starts: vec![0],
            scanned: 0,
        }
    }
}

impl LineStarts {
    /// The start of `line`, or `None` past the last.
    pub fn start(&mut self, text: &str, line: usize) -> Option<usize> {
        let bytes = text.as_bytes();
        while self.starts.len() <= line && self.scanned < bytes.len() {
            let idx = self.scanned;
            self.scanned += 1;
            match bytes[idx] {
                b'\n' => self.starts.push(idx + 1),
                b'\r' if bytes.get(idx + 1) == Some(&b'\n') => {
                    self.starts.push(idx + 2);
                    self.scanned += 1;
                }
                b'\r' => self.starts.push(idx + 1),
                _ => {}
            }
        }
        self.starts.get(line).copied()
    }

    /// Forgets what an edit of the text from byte `from` on may have changed: the lines that
    /// start at or after it (a `\r` just before `from` may have become half of a `\r\n`).
    pub fn edited_from(&mut self, from: usize) {
        let kept = self.starts.partition_point(|&start| start < from).max(1);
        self.starts.truncate(kept);
        self.scanned = self.starts[kept - 1];
    }
}

/// The 0-based line that byte `offset` lies on.
pub fn line_of(text: &str, offset: usize) -> usize {
    let starts = line_starts(text);
    starts.partition_point(|&start| start <= offset.min(text.len())) - 1
}

/// Byte offsets of the start of 0-based `line` and of its end (line break excluded), or
/// `None` past the last line.
pub fn line_span(text: &str, line: usize) -> Option<(usize, usize)> {
    let starts = line_starts(text);
    let start = *starts.get(line)?;
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let content = text[start..end].trim_end_matches(['\n', '\r']);
    Some((start, start + content.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_every_lsp_line_break() {
        assert_eq!(line_starts("a\nb\r\nc\rd"), vec![0, 2, 5, 7]);
        assert_eq!(line_of("a\nb\r\nc", 4), 1);
        assert_eq!(line_of("a\nb\r\nc", 5), 2);
        assert_eq!(line_of("ab", 99), 0);
        assert_eq!(line_span("a\nbc\r\n", 1), Some((2, 4)));
        assert_eq!(line_span("a\nbc\r\n", 2), Some((6, 6)));
        assert_eq!(line_span("a", 1), None);
    }

    #[track_caller]
    fn check_rebase(
        before: &str,
        range: Range<usize>,
        edits: &[(usize, usize, &str)],
        expect: Option<&str>,
    ) {
        let mut text = before.to_owned();
        let mut byte_edits = Vec::new();
        for (start, end, insert) in edits {
            text.replace_range(start..end, insert);
            byte_edits.push(ByteEdit {
                start: *start,
                end: *end,
                new_len: insert.len(),
            });
        }
        let rebased = rebase(range.clone(), &byte_edits).map(|r| text[r].to_owned());
        assert_eq!(rebased.as_deref(), expect);
        if edits.len() == 1 {
            // One edit: the diff of the texts finds the same.
            let diffed = rebase(range, &[diff_edit(before, &text)]).map(|r| text[r].to_owned());
            assert_eq!(diffed.as_deref(), expect);
        }
    }

    #[test]
    fn selections_follow_edits_around_them_and_refuse_edits_inside() {
        let text = "import os\ndef add(a, b):\n    return a - b\nprint(1)\n";
        let start = text.find("def").unwrap();
        let end = text.find("print").unwrap();
        let selected = &text[start..end];
        check_rebase(text, start..end, &[(0, 0, "# new line\n")], Some(selected));
        check_rebase(text, start..end, &[(end, end + 5, "show")], Some(selected));
        check_rebase(
            text,
            start..end,
            &[
                (0, 9, "import sys, re"),
                (text.len() + 5, text.len() + 5, "x\n"),
            ],
            Some(selected),
        );
        check_rebase(text, start..end, &[(start + 4, start + 7, "plus")], None);
        check_rebase(text, start..end, &[(start - 1, start + 1, "")], None);
        assert_eq!(
            diff_edit("aé", "aè"),
            ByteEdit {
                start: 1,
                end: 3,
                new_len: 2
            }
        );
        assert_eq!(strip_bom("\u{feff}x"), (true, "x"));
    }

    #[test]
    fn files_decode_losslessly_and_keep_their_encoding() {
        let bom = Encoding::Utf8 { bom: true };
        assert_eq!(
            decode("\u{feff}café".as_bytes()),
            Some(("café".to_owned(), bom))
        );
        assert_eq!(encode("café", bom).unwrap(), "\u{feff}café".as_bytes());
        // Not UTF-8: one character per byte, and every byte comes back as it was.
        let bytes = b"# caf\xe9 \x93quoted\x94\n".to_vec();
        let (text, encoding) = decode(&bytes).unwrap();
        assert_eq!(encoding, Encoding::Latin1);
        assert!(text.starts_with("# café"));
        assert_eq!(encode(&text, encoding).unwrap(), bytes);
        assert_eq!(encode("x = '→'", Encoding::Latin1), Err('→'));
        assert_eq!(decode(b"\xff\xfeh\x00i\x00"), None, "UTF-16 is binary here");
    }
}
