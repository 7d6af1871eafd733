//! Changes to files in the features layer's terms ([`FileChange`]), and the edits an answer
//! implies: Fix/Refactor replace the selection with the answer's first code block; Write
//! tests creates or extends the test file the language's convention names.
//!
//! Front ends turn a [`FileChange`] into their own edit (LSP `workspace/applyEdit`, ACP
//! `fs/write_text_file`) so the user sees it and can undo it; when they cannot,
//! [`write_to_disk`] makes it an atomic write.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::markdown_literal;

use super::question::{Ask, Selection, shown_path};
use super::text;

/// One change to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Replaces `range` (byte offsets into `before`) with `text`.
    Replace {
        /// The front end's name for the document when it has one (the URI of an open LSP
        /// document); `None` for a file only on disk, which the front end names by `path`.
        id: Option<String>,
        path: Option<PathBuf>,
        /// The text `range` refers to: what the front end had at `version`.
        before: Arc<String>,
        /// The editor's version of `before`, when it is open: an editor refuses a versioned
        /// edit of a buffer that changed since.
        version: Option<i32>,
        range: Range<usize>,
        text: String,
    },
    /// Creates a file that does not exist yet.
    Create { path: PathBuf, text: String },
}

impl FileChange {
    pub fn path(&self) -> Option<&Path> {
        match self {
            FileChange::Replace { path, .. } => path.as_deref(),
            FileChange::Create { path, .. } => Some(path),
        }
    }

    /// The whole text of the file after the change.
    pub fn after(&self) -> String {
        match self {
            FileChange::Replace {
                before,
                range,
                text,
                ..
            } => {
                let mut res = before.to_string();
                res.replace_range(range.clone(), text);
                res
            }
            FileChange::Create { text, .. } => text.clone(),
        }
    }
}

/// How a change went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    Applied,
    /// The editor refused it (`applied: false`), e.g. the buffer changed meanwhile.
    Rejected,
    /// Nothing was made: the file is no longer what the change was computed from (the code it
    /// replaces was edited, a whole-file write's text changed at all, a file to create now
    /// exists, a file to change is gone).
    ChangedMeanwhile,
    Failed(String),
    /// The editor has not answered the edit request in time. It may still apply the edit
    /// (a preview the user is reading), so nobody may be told that nothing changed.
    Unanswered,
}

/// The largest file an edit reads back to carry itself through changes made meanwhile: as
/// large as a file the editor has not opened may be to be asked about.
pub const MAX_EDITED_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Writes a change to disk atomically (a temporary file in the same directory, renamed).
///
/// The file may have changed since the run read it: a replacement is carried through that
/// change ([`text::carried`]) or, when the change touched the replaced code or replaces the
/// whole file, refused; so is a new file where one has appeared, and a change to a file now
/// gone or no longer text. A file keeps its encoding: a byte-order mark stays, a file that is
/// not UTF-8 keeps every byte the change does not replace ([`text::Encoding`]). Beneath
/// `root` (the workspace root as the client names it), no link is followed
/// (`workspace::follow_root_links`).
pub fn write_to_disk(root: &Path, change: &FileChange) -> EditOutcome {
    let Some(path) = change.path() else {
        return EditOutcome::Failed("the document is not a file on disk".to_owned());
    };
    let path = &crate::workspace::follow_root_links(root, path);
    // Bounded and without blocking: a command may have left a FIFO where the file was.
    let on_disk = match crate::workspace::read_bounded(
        path,
        &path.display().to_string(),
        MAX_EDITED_FILE_BYTES,
    ) {
        Ok(bytes) => Some(text::decode(&bytes)),
        Err(err) if err.type_name == "FileNotFoundError" => None,
        Err(err) => return EditOutcome::Failed(err.message),
    };
    let (after, encoding) = match (change, on_disk) {
        (FileChange::Create { text, .. }, None) => {
            (text.clone(), text::Encoding::Utf8 { bom: false })
        }
        (
            FileChange::Replace {
                before,
                range,
                text,
                ..
            },
            Some(Some((current, encoding))),
        ) => match text::carried(before, &current, range.clone()) {
            Some(range) => {
                let mut res = current;
                res.replace_range(range, text);
                (res, encoding)
            }
            None => return EditOutcome::ChangedMeanwhile,
        },
        _ => return EditOutcome::ChangedMeanwhile,
    };
    let Ok(content) = text::encode(&after, encoding) else {
        return EditOutcome::Failed(
            "the file is not UTF-8 and the change has characters it cannot hold".to_owned(),
        );
    };
    match crate::workspace::write_atomic(path, &content) {
        Ok(()) => EditOutcome::Applied,
        Err(err) => EditOutcome::Failed(err.message),
    }
}

/// Why an edit was not made: the code it replaces changed while the run worked.
pub const CHANGED_MEANWHILE: &str =
    "the code was edited while Punie worked, so the change was not applied (it is in the answer)";

/// The content of the first complete fenced code block (```` ``` ```` or `~~~`), without
/// the fences. An unclosed block is no block: an answer cut in the middle of its code must
/// never replace the user's code with the part that arrived.
pub fn first_code_block(markdown: &str) -> Option<String> {
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let fence = if trimmed.starts_with("```") {
            "```"
        } else if trimmed.starts_with("~~~") {
            "~~~"
        } else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut body = Vec::new();
        for inner in lines.by_ref() {
            if inner.trim_start().starts_with(fence)
                && inner
                    .trim()
                    .chars()
                    .all(|c| c == fence.as_bytes()[0] as char)
            {
                let mut res = body.join("\n");
                res.push('\n');
                return Some(res);
            }
            // Strip the fence's own indentation, as CommonMark does.
            let strip = inner.len() - inner.trim_start().len();
            body.push(&inner[strip.min(indent)..]);
        }
        return None;
    }
    None
}

/// Where "Write tests" puts the tests for `source` (relative to `root`), by the convention of
/// the language: Python `tests/test_<module>.py`; JavaScript/TypeScript `<name>.test.<ext>`
/// beside the source; Go `<name>_test.go` beside it; Rust `tests/<name>.rs`; otherwise
/// `tests/test_<name>.<ext>`.
pub fn test_file_for(root: &Path, source: &Path, language_id: &str) -> PathBuf {
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module");
    let ext = source.extension().and_then(|s| s.to_str()).unwrap_or("");
    let beside = |name: String| {
        source
            .parent()
            .map(|dir| dir.join(&name))
            .unwrap_or_else(|| root.join(&name))
    };
    match (language_id, ext) {
        ("python", _) | (_, "py") => root.join("tests").join(format!("test_{stem}.py")),
        ("javascript" | "typescript" | "javascriptreact" | "typescriptreact", _)
        | (_, "js" | "ts" | "jsx" | "tsx" | "mjs") => beside(format!("{stem}.test.{ext}")),
        ("go", _) | (_, "go") => beside(format!("{stem}_test.go")),
        ("rust", _) | (_, "rs") => root.join("tests").join(format!("{stem}.rs")),
        _ if ext.is_empty() => root.join("tests").join(format!("test_{stem}")),
        _ => root.join("tests").join(format!("test_{stem}.{ext}")),
    }
}

/// `existing` with `addition` appended after two blank lines.
fn extend_text(existing: &str, addition: &str) -> String {
    let mut res = existing.trim_end_matches('\n').to_owned();
    if !res.is_empty() {
        res.push_str("\n\n\n");
    }
    res.push_str(addition);
    if !res.ends_with('\n') {
        res.push('\n');
    }
    res
}

/// `text` with the line endings of `like`: a CRLF file stays CRLF after an edit.
fn with_line_endings_of(text: &str, like: &str) -> String {
    let crlf = like.matches("\r\n").count();
    let lf = like.matches('\n').count() - crlf;
    if crlf > lf {
        text.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        text.to_owned()
    }
}

/// What is known of a file the answer's edit would touch.
#[derive(Debug, Clone)]
pub enum ExistingFile {
    Missing,
    /// Its text (the editor's buffer when open) and the editor's name and version for it.
    Text {
        id: Option<String>,
        text: Arc<String>,
        version: Option<i32>,
    },
    /// It exists but is not text Punie can read (not UTF-8, a directory, no permission).
    Unreadable(String),
}

/// The edit an answer implies, before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerEdit {
    /// Nothing to change (Explain, a question, or no code in the answer).
    None,
    /// Make this change; `done_note` goes into the answer once it is applied.
    Change {
        change: FileChange,
        done_note: Option<String>,
        /// Names the file in notes about a failure.
        shown: String,
    },
    /// The answer cannot be applied; the note says why.
    Refused(String),
}

/// The edit `markdown` implies for `ask`. `existing(path)` tells what is at a path (the
/// editor's buffer first, then the disk).
pub fn answer_edit(
    ask: &Ask,
    markdown: &str,
    existing: &dyn Fn(&Path) -> ExistingFile,
) -> AnswerEdit {
    let Some(selection) = ask.selection.as_ref().filter(|_| wants_edit(ask)) else {
        return AnswerEdit::None;
    };
    let Some(code) = first_code_block(markdown) else {
        if has_unclosed_fence(markdown) {
            return AnswerEdit::Refused(
                "_The answer's code block is not closed (the answer was cut?); nothing was changed._"
                    .to_owned(),
            );
        }
        return AnswerEdit::None;
    };
    if ask.instruction.replaces_selection() {
        replace_selection(&ask.root, selection, code)
    } else {
        write_tests(ask, selection, &code, existing)
    }
}

/// Why nothing was changed for `ask` when the run stopped at its turn limit, if `ask` wanted
/// an edit. The answer is then Punie's note quoting the model's last prose and a snippet's
/// output (a repository's file, say): an edit is made only from the model's final answer.
pub(super) fn turn_limit_note(ask: &Ask) -> Option<String> {
    wants_edit(ask).then(|| {
        "_Nothing was changed: the turn limit was reached before the model gave a final answer, \
         and an edit is only made from one._"
            .to_owned()
    })
}

/// Whether the answer to `ask` is to become an edit: Fix and Refactor replace the selection,
/// Write tests writes the test file.
fn wants_edit(ask: &Ask) -> bool {
    ask.selection.is_some()
        && (ask.instruction.replaces_selection() || ask.instruction == super::Instruction::Tests)
}

fn has_unclosed_fence(markdown: &str) -> bool {
    markdown
        .lines()
        .any(|line| line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~"))
}

fn replace_selection(root: &Path, selection: &Selection, code: String) -> AnswerEdit {
    let document = &selection.document;
    // Keep the selection's own trailing newline (or its absence).
    let mut replacement = code;
    if !selection.text().ends_with('\n') {
        while replacement.ends_with('\n') {
            replacement.pop();
        }
    }
    let replacement = with_line_endings_of(&replacement, &document.text);
    AnswerEdit::Change {
        change: FileChange::Replace {
            id: Some(document.id.clone()),
            path: document.path.clone(),
            before: document.text.clone(),
            version: document.version,
            range: selection.start..selection.end,
            text: replacement,
        },
        done_note: None,
        shown: document
            .path
            .as_deref()
            .map(|path| shown_path(root, path))
            .unwrap_or_else(|| document.id.clone()),
    }
}

fn write_tests(
    ask: &Ask,
    selection: &Selection,
    code: &str,
    existing: &dyn Fn(&Path) -> ExistingFile,
) -> AnswerEdit {
    let document = &selection.document;
    // Tests go into the project the code belongs to; code outside the workspace folders (an
    // untitled buffer, a file opened on its own) has none Punie may write to.
    let Some(source) = document
        .path
        .clone()
        .filter(|path| path.starts_with(&ask.root))
    else {
        return AnswerEdit::Refused(
            "_The tests are in the answer above: the code is not in a workspace folder, so no test file was written._"
                .to_owned(),
        );
    };
    let conventional = test_file_for(&ask.root, &source, &document.language_id);
    // A test file Punie cannot read is never replaced or prepended to: the tests go beside it.
    let mut candidates = vec![conventional.clone(), beside(&conventional)];
    let mut unreadable: Vec<String> = Vec::new();
    for path in candidates.drain(..) {
        let shown = shown_path(&ask.root, &path);
        // File names a repository chose, and the reason quoting them: Markdown code, so none
        // of it becomes a link or formatting in the answer.
        let note = if unreadable.is_empty() {
            format!("_Tests written to {}._", markdown_literal(&shown))
        } else {
            format!(
                "_Tests written to {}: {} exists but is not text Punie can read ({}), so it was left alone._",
                markdown_literal(&shown),
                markdown_literal(&unreadable[0]),
                markdown_literal(&unreadable[1])
            )
        };
        match existing(&path) {
            ExistingFile::Missing => {
                return AnswerEdit::Change {
                    change: FileChange::Create {
                        path,
                        text: extend_text("", code),
                    },
                    done_note: Some(note),
                    shown,
                };
            }
            ExistingFile::Text { id, text, version } => {
                let keep = text.trim_end_matches('\n').len();
                let suffix = with_line_endings_of(&extend_text(&text, code)[keep..], &text);
                return AnswerEdit::Change {
                    change: FileChange::Replace {
                        id,
                        path: Some(path),
                        range: keep..text.len(),
                        before: text,
                        version,
                        text: suffix,
                    },
                    done_note: Some(note),
                    shown,
                };
            }
            ExistingFile::Unreadable(reason) => {
                if unreadable.is_empty() {
                    unreadable = vec![shown, reason];
                }
            }
        }
    }
    AnswerEdit::Refused(format!(
        "_{} exists but is not text Punie can read ({}), and so does the file beside it; nothing was \
         changed (the tests are in the answer above)._",
        markdown_literal(&unreadable[0]),
        markdown_literal(&unreadable[1])
    ))
}

/// `tests/test_stock.py` → `tests/test_stock_punie.py`.
fn beside(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tests");
    let name = match path.extension().and_then(|s| s.to_str()) {
        Some(ext) => format!("{stem}_punie.{ext}"),
        None => format!("{stem}_punie"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO where the edited file was (a command can leave one) is refused, not waited on.
    #[test]
    fn an_edit_of_a_fifo_fails_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let path = root.join("calc.py");
        let fifo = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let change = FileChange::Replace {
            id: None,
            path: Some(path),
            before: Arc::new("x = 1\n".to_owned()),
            version: None,
            range: 0..5,
            text: "x = 2".to_owned(),
        };
        let outcome = write_to_disk(&root, &change);
        assert!(
            matches!(&outcome, EditOutcome::Failed(reason) if reason.contains("not a regular file")),
            "{outcome:?}"
        );
    }

    #[test]
    fn first_code_block_takes_the_first_complete_fence() {
        let answer = "Here:\n\n```python\ndef f():\n    return 1\n```\n\nand\n```\nx\n```\n";
        assert_eq!(
            first_code_block(answer).as_deref(),
            Some("def f():\n    return 1\n")
        );
        assert_eq!(first_code_block("no code"), None);
        assert_eq!(first_code_block("~~~\na\n~~~").as_deref(), Some("a\n"));
        assert_eq!(first_code_block("```py\nopen"), None);
    }

    #[test]
    fn test_files_follow_the_language_convention() {
        let root = Path::new("/w");
        let check = |source: &str, language: &str, expect: &str| {
            assert_eq!(
                test_file_for(root, Path::new(source), language),
                PathBuf::from(expect)
            );
        };
        check(
            "/w/src/inventory/stock.py",
            "python",
            "/w/tests/test_stock.py",
        );
        check("/w/src/app.ts", "typescript", "/w/src/app.test.ts");
        check("/w/pkg/util.go", "go", "/w/pkg/util_test.go");
        check("/w/src/lib.rs", "rust", "/w/tests/lib.rs");
        assert_eq!(
            extend_text("import x\n", "def test_a(): pass\n"),
            "import x\n\n\ndef test_a(): pass\n"
        );
        assert_eq!(extend_text("", "a"), "a\n");
        assert_eq!(
            beside(Path::new("/w/tests/test_stock.py")),
            PathBuf::from("/w/tests/test_stock_punie.py")
        );
    }

    #[test]
    fn line_endings_follow_the_file() {
        assert_eq!(with_line_endings_of("a\nb\n", "x\r\ny\r\n"), "a\r\nb\r\n");
        assert_eq!(with_line_endings_of("a\r\nb\n", "x\r\ny\r\n"), "a\r\nb\r\n");
        assert_eq!(with_line_endings_of("a\nb\n", "x\ny\n"), "a\nb\n");
    }
}
