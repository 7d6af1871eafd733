//! [`FileChange`]s as `WorkspaceEdit`s: a replacement as a (versioned, where the client takes
//! `documentChanges`) text edit, a new file as `CreateFile` + its content. A change to confirm
//! carries a change annotation that needs confirmation, where the client supports them: the
//! editor shows the change itself before making it.

use std::collections::HashMap;

use lsp_types::{
    AnnotatedTextEdit, ChangeAnnotation, CreateFile, CreateFileOptions, DocumentChangeOperation,
    DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier, Position, Range, ResourceOp,
    TextDocumentEdit, TextEdit, Uri, WorkspaceEdit,
};

use crate::features::FileChange;

use super::documents;
use super::main_loop::ClientCaps;

/// `change` as a `WorkspaceEdit` this client can apply, or `None` when it cannot (no
/// `workspace/applyEdit`, or a new file without create operations): the change is then made
/// on disk.
pub(crate) fn workspace_edit(
    change: &FileChange,
    caps: &ClientCaps,
    confirm: bool,
) -> Option<WorkspaceEdit> {
    if !caps.apply_edit {
        return None;
    }
    let edit = match change {
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
    }?;
    // A client that asks about permissions itself (`punie/permission`) has shown the diff.
    let annotate =
        confirm && caps.change_annotations && caps.document_changes && !caps.punie_permission;
    Some(if annotate {
        needing_confirmation(edit)
    } else {
        edit
    })
}

/// The annotation of a change the user confirms in the editor.
const CONFIRM_ANNOTATION: &str = "punie.write";

/// `edit` (in `documentChanges` form) with every change annotated [`CONFIRM_ANNOTATION`],
/// which needs confirmation.
fn needing_confirmation(edit: WorkspaceEdit) -> WorkspaceEdit {
    let id = || Some(CONFIRM_ANNOTATION.to_owned());
    let annotated = |edits: Vec<OneOf<TextEdit, AnnotatedTextEdit>>| {
        edits
            .into_iter()
            .map(|edit| {
                let text_edit = match edit {
                    OneOf::Left(edit) => edit,
                    OneOf::Right(annotated) => annotated.text_edit,
                };
                OneOf::Right(AnnotatedTextEdit {
                    text_edit,
                    annotation_id: CONFIRM_ANNOTATION.to_owned(),
                })
            })
            .collect()
    };
    let annotated_document = |document: TextDocumentEdit| TextDocumentEdit {
        edits: annotated(document.edits),
        ..document
    };
    // Annotations live in `documentChanges`, which the caller checked the client takes.
    let Some(document_changes) = edit.document_changes else {
        return edit;
    };
    let operations: Vec<DocumentChangeOperation> = match document_changes {
        DocumentChanges::Edits(edits) => edits
            .into_iter()
            .map(|document| DocumentChangeOperation::Edit(annotated_document(document)))
            .collect(),
        DocumentChanges::Operations(operations) => operations
            .into_iter()
            .map(|operation| match operation {
                DocumentChangeOperation::Edit(document) => {
                    DocumentChangeOperation::Edit(annotated_document(document))
                }
                DocumentChangeOperation::Op(ResourceOp::Create(create)) => {
                    DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                        annotation_id: id(),
                        ..create
                    }))
                }
                other => other,
            })
            .collect(),
    };
    let annotation = ChangeAnnotation {
        label: "Punie: write_file".to_owned(),
        needs_confirmation: Some(true),
        description: Some("A file the model writes; review it before it is made.".to_owned()),
    };
    WorkspaceEdit {
        changes: None,
        document_changes: Some(DocumentChanges::Operations(operations)),
        change_annotations: Some(HashMap::from([(CONFIRM_ANNOTATION.to_owned(), annotation)])),
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
        let edit = serde_json::to_value(workspace_edit(&change, &caps, false).unwrap()).unwrap();
        let document_edit = &edit["documentChanges"][0];
        assert_eq!(document_edit["textDocument"]["version"], 3);
        assert_eq!(
            document_edit["edits"][0]["range"],
            serde_json::json!({"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}})
        );
        let no_edits = ClientCaps::default();
        assert!(workspace_edit(&change, &no_edits, false).is_none());
    }

    #[test]
    fn a_write_to_confirm_carries_an_annotation_that_needs_confirmation() {
        let caps = ClientCaps {
            apply_edit: true,
            document_changes: true,
            create_files: true,
            change_annotations: true,
            ..ClientCaps::default()
        };
        let create = FileChange::Create {
            path: PathBuf::from("/w/new.py"),
            text: "x = 1\n".to_owned(),
        };
        let edit = serde_json::to_value(workspace_edit(&create, &caps, true).unwrap()).unwrap();
        let annotation = &edit["changeAnnotations"][CONFIRM_ANNOTATION];
        assert_eq!(annotation["needsConfirmation"], true, "{edit}");
        let operations = edit["documentChanges"].as_array().unwrap();
        assert_eq!(operations[0]["kind"], "create");
        assert_eq!(operations[0]["annotationId"], CONFIRM_ANNOTATION);
        assert_eq!(
            operations[1]["edits"][0]["annotationId"],
            CONFIRM_ANNOTATION
        );
        assert_eq!(operations[1]["edits"][0]["newText"], "x = 1\n");
        // Not asked for, or a client that shows its own diff (`punie/permission`): plain.
        let plain = serde_json::to_value(workspace_edit(&create, &caps, false).unwrap()).unwrap();
        assert!(plain.get("changeAnnotations").is_none(), "{plain}");
        let punie = ClientCaps {
            punie_permission: true,
            ..caps
        };
        let own = serde_json::to_value(workspace_edit(&create, &punie, true).unwrap()).unwrap();
        assert!(own.get("changeAnnotations").is_none(), "{own}");
    }
}
