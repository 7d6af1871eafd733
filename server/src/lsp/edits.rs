//! Turning answers into edits: the first fenced code block, the test file a language's
//! convention names, and the `WorkspaceEdit`s that replace a selection or create a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_types::{
    CreateFile, CreateFileOptions, DocumentChangeOperation, DocumentChanges, OneOf,
    OptionalVersionedTextDocumentIdentifier, Range, ResourceOp, TextDocumentEdit, TextEdit, Uri,
    WorkspaceEdit,
};

/// The content of the first fenced code block (```` ``` ```` or `~~~`), without the fences.
pub(crate) fn first_code_block(markdown: &str) -> Option<String> {
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
        // An unclosed fence runs to the end of the answer (CommonMark again).
        let mut res = body.join("\n");
        res.push('\n');
        return Some(res);
    }
    None
}

/// Where "Write tests" puts the tests for `source` (relative to `root`), by the convention of
/// the language: Python `tests/test_<module>.py`; JavaScript/TypeScript `<name>.test.<ext>`
/// beside the source; Go `<name>_test.go` beside it; Rust `tests/<name>.rs`; otherwise
/// `tests/test_<name>.<ext>`.
pub(crate) fn test_file_for(root: &Path, source: &Path, language_id: &str) -> PathBuf {
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

/// Replaces `range` of the document `uri` with `text`; versioned when `version` is known and the
/// client takes `documentChanges`, so an edit against a changed buffer is refused by the editor.
pub(crate) fn replace_edit(
    uri: &Uri,
    version: Option<i32>,
    range: Range,
    text: &str,
    document_changes: bool,
) -> WorkspaceEdit {
    let edit = TextEdit {
        range,
        new_text: text.to_owned(),
    };
    if document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version,
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..WorkspaceEdit::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        }
    }
}

/// Creates `uri` (overwriting nothing) and fills it with `text`.
pub(crate) fn create_file_edit(uri: &Uri, text: &str) -> WorkspaceEdit {
    let zero = lsp_types::Position {
        line: 0,
        character: 0,
    };
    WorkspaceEdit {
        document_changes: Some(DocumentChanges::Operations(vec![
            DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                uri: uri.clone(),
                options: Some(CreateFileOptions {
                    overwrite: Some(false),
                    ignore_if_exists: Some(true),
                }),
                annotation_id: None,
            })),
            DocumentChangeOperation::Edit(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: None,
                },
                edits: vec![OneOf::Left(TextEdit {
                    range: Range {
                        start: zero,
                        end: zero,
                    },
                    new_text: text.to_owned(),
                })],
            }),
        ])),
        ..WorkspaceEdit::default()
    }
}

/// `existing` with `addition` appended after one blank line.
pub(crate) fn extend_text(existing: &str, addition: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_code_block_takes_the_first_fence() {
        let answer = "Here:\n\n```python\ndef f():\n    return 1\n```\n\nand\n```\nx\n```\n";
        assert_eq!(
            first_code_block(answer).as_deref(),
            Some("def f():\n    return 1\n")
        );
        assert_eq!(first_code_block("no code"), None);
        assert_eq!(first_code_block("~~~\na\n~~~").as_deref(), Some("a\n"));
        assert_eq!(first_code_block("```py\nopen").as_deref(), Some("open\n"));
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
    }
}
