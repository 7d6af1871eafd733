//! `textDocument/codeAction`: the "Ask Punie" actions, answered at once from the store.
//!
//! Every non-empty selection in any language gets the five actions; an empty selection gets
//! them on the cursor's line. Each is a `CodeAction` literal carrying the `punie.ask` command
//! with the request's range, filtered by `context.only`.

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, Command, Range,
};
use serde_json::{Value, json};

use crate::features::Instruction;
use crate::lsp::documents;
use crate::lsp::ext::ASK_COMMAND;
use crate::lsp::global_state::{Handled, HandlerResult, Server};

pub(crate) fn handle_code_action(server: &mut Server, params: Value) -> HandlerResult {
    let params: CodeActionParams = super::parse_params("textDocument/codeAction", params)?;
    let uri = params.text_document.uri.as_str().to_owned();
    let mut range = params.range;
    if range.start == range.end {
        let text = server
            .documents
            .get_text(&uri)
            .or_else(|| read_small_file(&uri).map(std::sync::Arc::new));
        match text
            .and_then(|text| documents::line_range(&text, range.start.line, server.caps.encoding))
        {
            Some(line) => range = line,
            None => return Ok(Handled::Reply(json!([]))),
        }
    }
    let only = params.context.only.as_deref();
    let actions: Vec<CodeActionOrCommand> = Instruction::ALL
        .into_iter()
        .filter_map(|instruction| {
            let kind = kind_of(instruction);
            if !wanted(only, &kind) {
                return None;
            }
            Some(CodeActionOrCommand::CodeAction(action(
                instruction,
                kind,
                &uri,
                range,
            )))
        })
        .collect();
    Ok(Handled::Reply(
        serde_json::to_value(actions).unwrap_or(Value::Array(Vec::new())),
    ))
}

fn kind_of(instruction: Instruction) -> CodeActionKind {
    match instruction {
        Instruction::Fix => CodeActionKind::QUICKFIX,
        Instruction::Refactor => CodeActionKind::REFACTOR_REWRITE,
        Instruction::Explain | Instruction::Tests | Instruction::Ask => CodeActionKind::REFACTOR,
    }
}

/// `context.only` keeps kinds equal to or under one of its entries (`refactor` keeps
/// `refactor.rewrite`, not the other way round).
fn wanted(only: Option<&[CodeActionKind]>, kind: &CodeActionKind) -> bool {
    let Some(only) = only else { return true };
    only.iter().any(|allowed| {
        let allowed = allowed.as_str();
        let kind = kind.as_str();
        allowed.is_empty()
            || kind == allowed
            || kind
                .strip_prefix(allowed)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn action(instruction: Instruction, kind: CodeActionKind, uri: &str, range: Range) -> CodeAction {
    let argument = json!({"uri": uri, "range": range, "instruction": instruction.name()});
    CodeAction {
        title: instruction.title().to_owned(),
        kind: Some(kind),
        command: Some(Command {
            title: instruction.title().to_owned(),
            command: ASK_COMMAND.to_owned(),
            arguments: Some(vec![argument]),
        }),
        ..CodeAction::default()
    }
}

/// The file behind a document the client did not open, as an editor would show it: without a
/// byte-order mark, which editors do not count in positions, and one character per byte when
/// it is not UTF-8 (a disk write keeps the encoding). Small regular files only, opened without
/// blocking: this runs on the main loop.
pub(crate) fn read_small_file(uri: &str) -> Option<String> {
    let path = crate::workspace::follow_user_links(&crate::lsp::uri::to_path(uri)?);
    crate::features::text::read_file(&path, uri, crate::features::MAX_EDITED_FILE_BYTES).ok()
}
