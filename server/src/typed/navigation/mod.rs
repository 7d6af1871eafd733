//! Code navigation (`goto_definition`, `find_references`, `hover`, `document_symbols`,
//! `workspace_symbols`): answered by a Python language server when one is installed
//! (`ty server`, as Punie did, through the client in `client.rs`, one jailed server per
//! workspace kept by `server.rs`), else in-process from RustPython's parser (`parser.rs`).
//! Every result says which in `answered_by`: [`server::ANSWERED_BY`] or
//! [`parser::ANSWERED_BY`].
//!
//! The language server knows types: references are those of the symbol, not of its
//! spelling; hover shows the inferred type. The parser knows definitions, imports of
//! workspace files and spellings (see `parser.rs`). A server that cannot answer (it failed to
//! start, crashed, or went past the deadline) leaves the call to the parser; a cancelled run
//! stops the call.
//!
//! Results are Punie's (`fixtures/punie/tool_signatures.json` → `result_types`) plus
//! `answered_by`; positions are 1-based lines and columns (characters).

mod client;
mod convert;
mod parser;
mod server;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{Context, Position};
use crate::cancel::CancelFlag;
use crate::workspace::{self, ToolError};

pub(super) fn goto_definition(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    match server::goto_definition(ctx, pos)? {
        Some(res) => to_value(res),
        None => parser::goto_definition(ctx, pos),
    }
}

pub(super) fn find_references(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    match server::find_references(ctx, pos)? {
        Some(res) => to_value(res),
        None => parser::find_references(ctx, pos),
    }
}

pub(super) fn hover(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    match server::hover(ctx, pos)? {
        Some(res) => to_value(res),
        None => parser::hover(ctx, pos),
    }
}

pub(super) fn document_symbols(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    match server::document_symbols(ctx, raw)? {
        Some(res) => to_value(res),
        None => parser::document_symbols(ctx, raw),
    }
}

pub(super) fn workspace_symbols(ctx: &Context<'_>, query: &str) -> Result<Value, ToolError> {
    match server::workspace_symbols(ctx, query)? {
        Some(res) => to_value(res),
        None => parser::workspace_symbols(ctx, query),
    }
}

/// Stops every language server this process started (their private directories go with
/// them); the next navigation call starts one again.
pub fn stop_language_servers() {
    server::stop_all();
}

/// Results a workspace-wide search returns at most.
const MAX_RESULTS: usize = 200;
/// The largest file navigation reads on its own.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The text of a file navigation reads on its own (an import's target, each file a search
/// walks, a location the language server names), reached as the read tools reach a path:
/// resolved by `workspace::resolve` (canonical, inside the workspace, not a secret), the
/// editor's buffer first, else read by `workspace::read_bounded` (a regular file, opened
/// without blocking, at most [`MAX_FILE_BYTES`] read). `None` for anything else: a link out
/// of the workspace (a cloned repository can ship `settings.py -> ~/.aws/credentials`), a
/// secret, a file named like one (`.env`: `read_file` asks before reading it, and these
/// reads ask nobody), a FIFO, a `/proc` file, a file too large or not UTF-8. Navigation is in
/// the read class, so only what `read_file` may read without asking is read: here, and by the
/// language server, whose jail allows no more (`server.rs`, `jail::Reach::Reader`).
fn workspace_text(ctx: &Context<'_>, path: &Path) -> Option<String> {
    let shown = path.to_str()?;
    let resolved = workspace::resolve(ctx.root(), shown).ok()?;
    if crate::jail::secret_name(&ctx.shown(&resolved)).is_some() {
        return None;
    }
    if let Some(text) = ctx.host.read_document(&resolved, ctx.cancel) {
        return Some(text);
    }
    let bytes = workspace::read_bounded(&resolved, shown, MAX_FILE_BYTES).ok()?;
    String::from_utf8(bytes).ok()
}

/// The run cancelled, or the snippet's time running out (a flag whose own deadline passed), as
/// `run_command` tells them apart: a time limit that ends the wait is a `TimeoutError`
/// whichever of the tool and the sandbox notices it first. `what` did not finish in time.
fn interrupted(cancel: &CancelFlag, what: &str) -> ToolError {
    if cancel.deadline_passed() {
        ToolError::new(
            "TimeoutError",
            format!("{what} within the snippet's time limit"),
        )
    } else {
        ToolError::new("KeyboardInterrupt", "the run was cancelled")
    }
}

fn to_value(res: impl Serialize) -> Result<Value, ToolError> {
    Ok(serde_json::to_value(res).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DefinitionLocation {
    pub(super) file: String,
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) end_line: usize,
    pub(super) end_column: usize,
    pub(super) preview: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GotoDefinitionResult {
    pub(super) success: bool,
    pub(super) symbol: String,
    pub(super) locations: Vec<DefinitionLocation>,
    pub(super) parse_error: Option<String>,
    pub(super) answered_by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct ReferenceLocation {
    pub(super) file: String,
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) preview: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct FindReferencesResult {
    pub(super) success: bool,
    pub(super) symbol: String,
    pub(super) reference_count: usize,
    pub(super) references: Vec<ReferenceLocation>,
    pub(super) parse_error: Option<String>,
    pub(super) answered_by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct HoverResult {
    pub(super) success: bool,
    pub(super) symbol: String,
    pub(super) content: Option<String>,
    pub(super) language: Option<String>,
    pub(super) parse_error: Option<String>,
    pub(super) answered_by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct SymbolInfo {
    pub(super) name: String,
    pub(super) kind: u32,
    pub(super) line: usize,
    pub(super) end_line: usize,
    pub(super) children: Vec<SymbolInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DocumentSymbolsResult {
    pub(super) success: bool,
    pub(super) file_path: String,
    pub(super) symbols: Vec<SymbolInfo>,
    pub(super) symbol_count: usize,
    pub(super) parse_error: Option<String>,
    pub(super) answered_by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct WorkspaceSymbol {
    pub(super) name: String,
    pub(super) kind: u32,
    pub(super) file: String,
    pub(super) line: usize,
    pub(super) container_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct WorkspaceSymbolsResult {
    pub(super) success: bool,
    pub(super) query: String,
    pub(super) symbols: Vec<WorkspaceSymbol>,
    pub(super) symbol_count: usize,
    pub(super) parse_error: Option<String>,
    pub(super) answered_by: &'static str,
}
