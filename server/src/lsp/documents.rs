//! Open documents: a `dashmap` store shared with run threads, incremental sync, and position
//! conversion in the negotiated encoding (UTF-16 by default, as LSP says).
//!
//! Text is kept as Rust `String` (UTF-8). Positions from the client count code units of the
//! negotiated encoding: UTF-16 units (astral characters such as emoji count 2), UTF-8 bytes,
//! or UTF-32 code points. Lines end at `\n`, `\r\n` or `\r`, as LSP defines them.
//! Only the main loop writes the store (`didOpen`/`didChange`/`didClose`), so a run that starts
//! after a change sees it; run threads read it through [`DocumentStore::get`].
//! Texts are shared copy-on-write: a run's snapshot costs a reference count, and a change copies
//! the text only while some run still holds the old one.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use lsp_types::{Position, PositionEncodingKind, Range, TextDocumentContentChangeEvent};

use crate::features;
use crate::features::text::{ByteEdit, LineStarts, line_starts};

/// The unit of `Position::character`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl PositionEncoding {
    /// Picks from the client's offer: UTF-8 (our native text, cheapest), then UTF-32,
    /// else UTF-16, which every client must support.
    pub(crate) fn negotiate(offered: &[&str]) -> PositionEncoding {
        if offered.contains(&"utf-8") {
            PositionEncoding::Utf8
        } else if offered.contains(&"utf-32") {
            PositionEncoding::Utf32
        } else {
            PositionEncoding::Utf16
        }
    }

    pub(crate) fn kind(self) -> PositionEncodingKind {
        match self {
            PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
            PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
            PositionEncoding::Utf32 => PositionEncodingKind::UTF32,
        }
    }

    fn units(self, ch: char) -> u32 {
        match self {
            PositionEncoding::Utf8 => ch.len_utf8() as u32,
            PositionEncoding::Utf16 => ch.len_utf16() as u32,
            PositionEncoding::Utf32 => 1,
        }
    }
}

/// One open document.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub(crate) text: Arc<String>,
    pub(crate) version: i32,
    pub(crate) language_id: String,
    /// The latest edits with the version each produced, so that a run's edit computed on an
    /// older version can be carried to this one ([`DocumentStore::rebase`]).
    pub(crate) edits: VecDeque<(i32, ByteEdit)>,
    /// The version before the oldest edit kept.
    pub(crate) edits_since: i32,
    /// Which `didOpen` of its URI this is ([`DocumentStore::open`] numbers them): a client
    /// numbers versions afresh when a document is opened again, so a version is only
    /// comparable within one opening.
    pub(crate) opening: u64,
}

impl Document {
    pub(crate) fn new(text: String, version: i32, language_id: String) -> Document {
        Document {
            text: Arc::new(text),
            version,
            language_id,
            edits: VecDeque::new(),
            edits_since: version,
            opening: 0,
        }
    }
}

/// Edits kept per document: enough for any run's lifetime of typing.
const MAX_EDITS: usize = 4096;

/// Open documents by URI string. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct DocumentStore {
    documents: Arc<DashMap<String, Document>>,
    openings: Arc<std::sync::atomic::AtomicU64>,
}

impl DocumentStore {
    pub(crate) fn open(&self, uri: &str, mut document: Document) {
        document.opening = 1 + self
            .openings
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.documents.insert(uri.to_owned(), document);
    }

    pub(crate) fn close(&self, uri: &str) {
        self.documents.remove(uri);
    }

    /// A copy of the document, so no lock is held while the caller works.
    pub(crate) fn get(&self, uri: &str) -> Option<Document> {
        self.documents.get(uri).map(|document| document.clone())
    }

    pub(crate) fn get_text(&self, uri: &str) -> Option<Arc<String>> {
        self.documents
            .get(uri)
            .map(|document| document.text.clone())
    }

    /// The URIs of open documents, for mapping workspace paths back to buffers.
    pub(crate) fn uris(&self) -> Vec<String> {
        self.documents
            .iter()
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Applies `didChange` content changes in order. Returns false when the document is not
    /// open (the change is dropped: a client bug we survive).
    pub(crate) fn apply_changes(
        &self,
        uri: &str,
        version: i32,
        changes: &[TextDocumentContentChangeEvent],
        encoding: PositionEncoding,
    ) -> bool {
        let Some(mut document) = self.documents.get_mut(uri) else {
            return false;
        };
        let mut lines = LineStarts::default();
        for change in changes {
            let edit = match change.range {
                None => {
                    let edit = ByteEdit {
                        start: 0,
                        end: document.text.len(),
                        new_len: change.text.len(),
                    };
                    document.text = Arc::new(change.text.clone());
                    lines = LineStarts::default();
                    edit
                }
                Some(range) => {
                    let start = offset_clamped(&mut lines, &document.text, range.start, encoding);
                    let end =
                        offset_clamped(&mut lines, &document.text, range.end, encoding).max(start);
                    Arc::make_mut(&mut document.text).replace_range(start..end, &change.text);
                    lines.edited_from(start);
                    ByteEdit {
                        start,
                        end,
                        new_len: change.text.len(),
                    }
                }
            };
            document.edits.push_back((version, edit));
        }
        while document.edits.len() > MAX_EDITS {
            if let Some((dropped_version, _)) = document.edits.pop_front() {
                document.edits_since = dropped_version;
            }
        }
        document.version = version;
        true
    }

    /// `range` of the document as it was at `version` of its `opening`, carried through the
    /// edits made since: the range in today's text, that text and its version. `None` when an
    /// edit touched the range itself, the edits since `version` are no longer known, or the
    /// document was opened again since (its versions started afresh).
    pub(crate) fn rebase(
        &self,
        uri: &str,
        opening: u64,
        version: i32,
        range: std::ops::Range<usize>,
    ) -> Option<(std::ops::Range<usize>, Arc<String>, i32)> {
        let document = self.documents.get(uri)?;
        if document.opening != opening || version < document.edits_since {
            return None;
        }
        let edits: Vec<ByteEdit> = document
            .edits
            .iter()
            .filter(|(edit_version, _)| *edit_version > version)
            .map(|(_, edit)| *edit)
            .collect();
        let range = features::text::rebase(range, &edits)?;
        Some((range, document.text.clone(), document.version))
    }
}

/// The content of a line without its line break.
fn line_content(text: &str, starts: &[usize], line: usize) -> (usize, usize) {
    let start = starts[line];
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let content = &text[start..end];
    let trimmed = content.trim_end_matches(['\n', '\r']);
    (start, start + trimmed.len())
}

/// Which way a position inside a character (the middle of a surrogate pair, of a multi-byte
/// character) goes: a range's start to the character's start, its end to the character's end,
/// so a range that splits a character takes all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Snap {
    Back,
    Forward,
}

/// Byte offset of `position` in `text`, or `None` when it lies beyond the document (a line
/// past the last, or a character past the end of its line).
pub(crate) fn offset_strict(
    text: &str,
    position: Position,
    encoding: PositionEncoding,
    snap: Snap,
) -> Option<usize> {
    let starts = line_starts(text);
    let line = position.line as usize;
    if line >= starts.len() {
        return None;
    }
    let (start, end) = line_content(text, &starts, line);
    let mut units = 0u32;
    for (idx, ch) in text[start..end].char_indices() {
        if units == position.character {
            return Some(start + idx);
        }
        units += encoding.units(ch);
        if units > position.character {
            return Some(match snap {
                Snap::Back => start + idx,
                Snap::Forward => start + idx + ch.len_utf8(),
            });
        }
    }
    (units == position.character).then_some(end)
}

/// Byte offset of `position`, clamped as LSP asks: a character past the line's end means the
/// end of the line, a line past the last means the end of the document, and a position in the
/// middle of a character snaps to its start. `lines` are `text`'s, kept across the changes of
/// one `didChange`.
fn offset_clamped(
    lines: &mut LineStarts,
    text: &str,
    position: Position,
    encoding: PositionEncoding,
) -> usize {
    let Some(start) = lines.start(text, position.line as usize) else {
        return text.len();
    };
    let mut units = 0u32;
    for (idx, ch) in text[start..].char_indices() {
        let next = units + encoding.units(ch);
        if ch == '\n' || ch == '\r' || next > position.character {
            return start + idx;
        }
        units = next;
    }
    text.len()
}

/// The position of byte `offset` (which must be on a char boundary).
pub(crate) fn position_of(text: &str, offset: usize, encoding: PositionEncoding) -> Position {
    let offset = offset.min(text.len());
    let starts = line_starts(text);
    let line = starts.partition_point(|&start| start <= offset) - 1;
    let character = text[starts[line]..offset]
        .chars()
        .map(|ch| encoding.units(ch))
        .sum();
    Position {
        line: line as u32,
        character,
    }
}

/// The range of `line` without its line break, or `None` past the last line.
pub(crate) fn line_range(text: &str, line: u32, encoding: PositionEncoding) -> Option<Range> {
    let starts = line_starts(text);
    let line_idx = line as usize;
    if line_idx >= starts.len() {
        return None;
    }
    let (_, end) = line_content(text, &starts, line_idx);
    Some(Range {
        start: Position { line, character: 0 },
        end: position_of(text, end, encoding),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset as one full scan of the text finds it: what [`LineStarts`] must agree with.
    fn offset_by_full_scan(text: &str, position: Position, encoding: PositionEncoding) -> usize {
        let starts = line_starts(text);
        let line = position.line as usize;
        if line >= starts.len() {
            return text.len();
        }
        let (start, end) = line_content(text, &starts, line);
        let mut units = 0u32;
        for (idx, ch) in text[start..end].char_indices() {
            let next = units + encoding.units(ch);
            if next > position.character {
                return start + idx;
            }
            units = next;
        }
        end
    }

    /// Many changes in one `didChange`, in every order and over every kind of line break and
    /// character, land exactly where changes applied one full scan at a time land.
    #[test]
    fn changes_land_where_a_full_scan_puts_them() {
        let pieces = ["a", "é", "😀", "\n", "\r\n", "\r", "\t", "", "xyz\r"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for encoding in [
            PositionEncoding::Utf8,
            PositionEncoding::Utf16,
            PositionEncoding::Utf32,
        ] {
            for _ in 0..200 {
                let text: String = (0..next(40)).map(|_| pieces[next(pieces.len())]).collect();
                let changes: Vec<TextDocumentContentChangeEvent> = (0..next(12))
                    .map(|_| {
                        let (a, b) = (
                            pos(next(8) as u32, next(6) as u32),
                            pos(next(8) as u32, next(6) as u32),
                        );
                        let (start, end) = if (a.line, a.character) <= (b.line, b.character) {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        TextDocumentContentChangeEvent {
                            range: Some(Range { start, end }),
                            range_length: None,
                            text: (0..next(3)).map(|_| pieces[next(pieces.len())]).collect(),
                        }
                    })
                    .collect();
                let mut expect = text.clone();
                for change in &changes {
                    let range = change.range.unwrap();
                    let start = offset_by_full_scan(&expect, range.start, encoding);
                    let end = offset_by_full_scan(&expect, range.end, encoding).max(start);
                    expect.replace_range(start..end, &change.text);
                }
                let store = DocumentStore::default();
                store.open("file:///a", Document::new(text, 1, String::new()));
                assert!(store.apply_changes("file:///a", 2, &changes, encoding));
                assert_eq!(store.get_text("file:///a").unwrap().as_str(), expect);
            }
        }
    }

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[track_caller]
    fn check_change(
        text: &str,
        range: (u32, u32, u32, u32),
        insert: &str,
        encoding: PositionEncoding,
        expect: &str,
    ) {
        let store = DocumentStore::default();
        store.open(
            "file:///a",
            Document::new(text.to_owned(), 1, "python".to_owned()),
        );
        let change = TextDocumentContentChangeEvent {
            range: Some(Range {
                start: pos(range.0, range.1),
                end: pos(range.2, range.3),
            }),
            range_length: None,
            text: insert.to_owned(),
        };
        assert!(store.apply_changes("file:///a", 2, &[change], encoding));
        assert_eq!(store.get_text("file:///a").unwrap().as_str(), expect);
    }

    #[test]
    fn incremental_changes_count_utf16_units() {
        // "😀" is one char, two UTF-16 units, four UTF-8 bytes.
        check_change(
            "a😀b\n",
            (0, 3, 0, 4),
            "X",
            PositionEncoding::Utf16,
            "a😀X\n",
        );
        check_change("a😀b\n", (0, 1, 0, 3), "", PositionEncoding::Utf16, "ab\n");
        check_change(
            "é=1\nx",
            (1, 0, 1, 1),
            "yy",
            PositionEncoding::Utf16,
            "é=1\nyy",
        );
        check_change("a😀b", (0, 5, 0, 6), "c", PositionEncoding::Utf8, "a😀c");
        check_change("a😀b", (0, 2, 0, 3), "c", PositionEncoding::Utf32, "a😀c");
        // Past the end of a line clamps to the line's end; CRLF is one line break.
        check_change(
            "ab\r\ncd",
            (0, 99, 1, 0),
            "",
            PositionEncoding::Utf16,
            "abcd",
        );
        check_change("ab", (5, 0, 5, 0), "!", PositionEncoding::Utf16, "ab!");
    }

    #[test]
    fn strict_offsets_reject_positions_beyond_the_document() {
        let text = "a😀b\nxy";
        let check = |line, character, snap, expect: Option<usize>| {
            assert_eq!(
                offset_strict(text, pos(line, character), PositionEncoding::Utf16, snap),
                expect,
                "{line}:{character} {snap:?}"
            );
        };
        check(0, 3, Snap::Back, Some(5));
        // Inside the emoji's surrogate pair: the whole character is taken.
        check(0, 2, Snap::Back, Some(1));
        check(0, 2, Snap::Forward, Some(5));
        check(0, 4, Snap::Back, Some(6));
        check(0, 5, Snap::Back, None);
        check(1, 2, Snap::Back, Some(9));
        check(2, 0, Snap::Back, None);
        assert_eq!(position_of(text, 6, PositionEncoding::Utf16), pos(0, 4));
        assert_eq!(
            line_range(text, 0, PositionEncoding::Utf16),
            Some(Range {
                start: pos(0, 0),
                end: pos(0, 4)
            })
        );
    }
}
