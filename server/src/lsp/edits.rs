//! [`FileChange`]s as `WorkspaceEdit`s: a replacement as a (versioned, where the client takes
//! `documentChanges`) text edit, a new file as `CreateFile` + its content.

use std::collections::HashMap;

use lsp_types::{
    CreateFile, CreateFileOptions, DocumentChangeOperation, DocumentChanges, OneOf,
    OptionalVersionedTextDocumentIdentifier, Position, Range, ResourceOp, TextDocumentEdit,
    TextEdit, Uri, WorkspaceEdit,
};

use crate::features::FileChange;

use super::documents;
use super::main_loop::ClientCaps;

/// `change` as a `WorkspaceEdit` this client can apply, or `None` when it cannot (no
/// `workspace/applyEdit`, or a new file without create operations): the change is then made
/// on disk.
pub(crate) fn workspace_edit(change: &FileChange, caps: &ClientCaps) -> Option<WorkspaceEdit> {
    if !caps.apply_edit {
        return None;
    }
    match change {
        FileChange::Replace {
            id,
            path,
            before,
            version,
            range,
            text,
        } => {
            let uri = match id {
                Some(id) => id.parse().ok()?,
                None => super::uri::from_path(path.as_deref()?)?,
            };
            let range = Range {
                start: documents::position_of(before, range.start, caps.encoding),
                end: documents::position_of(before, range.end, caps.encoding),
            };
            Some(replace_edit(
                &uri,
                *version,
                range,
                text,
                caps.document_changes,
            ))
        }
        FileChange::Create { path, text } => {
            if !caps.create_files {
                return None;
            }
            let uri = super::uri::from_path(path)?;
            Some(create_file_edit(&uri, text))
        }
    }
}

/// Replaces `range` of the document `uri` with `text`; versioned when `version` is known and the
/// client takes `documentChanges`, so an edit against a changed buffer is refused by the editor.
fn replace_edit(
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

/// Creates `uri` and fills it with `text`. A file that appeared meanwhile makes the client
/// fail the edit (neither overwritten nor prepended to).
fn create_file_edit(uri: &Uri, text: &str) -> WorkspaceEdit {
    let zero = Position {
        line: 0,
        character: 0,
    };
    WorkspaceEdit {
        document_changes: Some(DocumentChanges::Operations(vec![
            DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                uri: uri.clone(),
                options: Some(CreateFileOptions {
                    overwrite: Some(false),
                    ignore_if_exists: Some(false),
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn replacements_are_ranges_in_the_clients_encoding() {
        let caps = ClientCaps {
            apply_edit: true,
            document_changes: true,
            ..ClientCaps::default()
        };
        let change = FileChange::Replace {
            id: Some("file:///w/a.py".to_owned()),
            path: Some(PathBuf::from("/w/a.py")),
            before: std::sync::Arc::new("x = '😀'\ny = 2\n".to_owned()),
            version: Some(3),
            range: 11..16,
            text: "y = 3".to_owned(),
        };
        let edit = serde_json::to_value(workspace_edit(&change, &caps).unwrap()).unwrap();
        let document_edit = &edit["documentChanges"][0];
        assert_eq!(document_edit["textDocument"]["version"], 3);
        assert_eq!(
            document_edit["edits"][0]["range"],
            serde_json::json!({"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}})
        );
        let no_edits = ClientCaps::default();
        assert!(workspace_edit(&change, &no_edits).is_none());
    }
}
