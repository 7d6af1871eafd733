//! `initialize`: read what the client can do, pick the position encoding, find the workspace
//! roots, take `initializationOptions` as the first settings source, start loading the model.

use std::path::PathBuf;

use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, ExecuteCommandOptions, OneOf,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextDocumentSyncOptions, WorkspaceFoldersServerCapabilities, WorkspaceServerCapabilities,
};
use serde_json::Value;

use crate::lsp::documents::PositionEncoding;
use crate::lsp::ext::{
    ANSWER_CAPABILITY, COMMANDS, PERMISSION_CAPABILITY, USER_SETTINGS_CAPABILITY,
};
use crate::lsp::global_state::{ClientCaps, Handled, HandlerError, HandlerResult, Server};

pub(crate) fn handle_initialize(server: &mut Server, params: Value) -> HandlerResult {
    if server.initialized {
        return Err(HandlerError::new(
            lsp_server::ErrorCode::InvalidRequest,
            "initialize was already called",
        ));
    }
    if !params.is_object() {
        return Err(HandlerError::invalid_params(
            "initialize: params must be an object",
        ));
    }
    let caps = &params["capabilities"];
    let flag = |value: &Value| value.as_bool() == Some(true);
    let offered: Vec<&str> = caps["general"]["positionEncodings"]
        .as_array()
        .map(|kinds| kinds.iter().filter_map(|k| k.as_str()).collect())
        .unwrap_or_default();
    let encoding = PositionEncoding::negotiate(&offered);
    let edit = &caps["workspace"]["workspaceEdit"];
    server.caps = ClientCaps {
        work_done_progress: flag(&caps["window"]["workDoneProgress"]),
        show_document: flag(&caps["window"]["showDocument"]["support"]),
        apply_edit: flag(&caps["workspace"]["applyEdit"]),
        document_changes: flag(&edit["documentChanges"]),
        create_files: edit["resourceOperations"]
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "create")),
        change_annotations: edit["changeAnnotationSupport"].is_object(),
        configuration: flag(&caps["workspace"]["configuration"]),
        punie_answer: flag(&caps["experimental"][ANSWER_CAPABILITY]),
        punie_permission: flag(&caps["experimental"][PERMISSION_CAPABILITY]),
        encoding,
    };
    server.roots = workspace_roots(&params);
    server.initialized = true;
    let (users, problems) = crate::features::load_policy_file();
    for problem in problems {
        server.show_message(
            lsp_types::MessageType::ERROR,
            &format!("Punie policy file: {problem}; that entry is left out"),
        );
    }
    server
        .settings
        .set_users(users, flag(&caps["experimental"][USER_SETTINGS_CAPABILITY]));
    server.apply_settings(&params["initializationOptions"]);
    // The model starts loading now; its progress is shown once the client is `initialized`.
    server.ensure_engine();

    let capabilities = ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                ..TextDocumentSyncOptions::default()
            },
        )),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![
                CodeActionKind::QUICKFIX,
                CodeActionKind::REFACTOR,
                CodeActionKind::REFACTOR_REWRITE,
            ]),
            resolve_provider: Some(false),
            ..CodeActionOptions::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
            ..ExecuteCommandOptions::default()
        }),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..ServerCapabilities::default()
    };
    let result = serde_json::json!({
        "capabilities": capabilities,
        "serverInfo": ServerInfo { name: "punie".to_owned(), version: Some(env!("CARGO_PKG_VERSION").to_owned()) },
    });
    Ok(Handled::Reply(result))
}

/// The first `workspaceFolders` entry (all of them, in order), else `rootUri`, else `rootPath`.
/// Never the process's working directory.
fn workspace_roots(params: &Value) -> Vec<PathBuf> {
    let folders: Vec<PathBuf> = params["workspaceFolders"]
        .as_array()
        .map(|folders| {
            folders
                .iter()
                .filter_map(|f| f["uri"].as_str())
                .filter_map(crate::lsp::uri::to_path)
                .collect()
        })
        .unwrap_or_default();
    if !folders.is_empty() {
        return folders;
    }
    if let Some(root) = params["rootUri"]
        .as_str()
        .and_then(crate::lsp::uri::to_path)
    {
        return vec![root];
    }
    params["rootPath"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(|p| vec![PathBuf::from(p)])
        .unwrap_or_default()
}
