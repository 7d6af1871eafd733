//! A language server's answers as Punie's navigation results, and Punie's positions as the
//! server's (pure: files come through [`Files`]).
//!
//! Positions: Punie's are 1-based lines and columns in characters; LSP's are 0-based with
//! columns in UTF-16 code units (ty does not offer UTF-32), converted with the line's text.
//! A file outside the workspace (the standard library's stubs, an installed package) is shown
//! by its path, without a preview: the server reads only workspace files.

use std::path::{Path, PathBuf};

use lsp_types::{
    DocumentSymbol, DocumentSymbolResponse, GotoDefinitionResponse, Hover, HoverContents, Location,
    MarkedString, SymbolInformation, SymbolKind, WorkspaceSymbolResponse,
};

use super::server::ANSWERED_BY;
use super::{
    DefinitionLocation, DocumentSymbolsResult, FindReferencesResult, GotoDefinitionResult,
    HoverResult, MAX_RESULTS, ReferenceLocation, SymbolInfo, WorkspaceSymbol,
    WorkspaceSymbolsResult,
};

/// What conversions need from the workspace.
pub(super) trait Files {
    /// The text of a workspace file (the editor's buffer when it has one); `None` outside the
    /// workspace or when it cannot be read.
    fn text(&self, path: &Path) -> Option<String>;
    /// `path` as results show it: relative inside the workspace.
    fn shown(&self, path: &Path) -> String;
}

/// The LSP position of 1-based `line` and 0-based character `column` in `text`.
pub(super) fn lsp_position(text: &str, line: usize, column: usize) -> lsp_types::Position {
    let line_text = text.split('\n').nth(line.saturating_sub(1)).unwrap_or("");
    let utf16: usize = line_text.chars().take(column).map(char::len_utf16).sum();
    lsp_types::Position {
        line: u32::try_from(line.saturating_sub(1)).unwrap_or(u32::MAX),
        character: u32::try_from(utf16).unwrap_or(u32::MAX),
    }
}

/// A 1-based line and column (characters) of an LSP position in `path`.
fn punie_position(files: &Lines<'_>, path: &Path, position: lsp_types::Position) -> (usize, usize) {
    let line = position.line as usize;
    let utf16 = position.character as usize;
    let column = match files.line(path, line) {
        Some(text) => {
            let mut units = 0;
            text.chars()
                .take_while(|ch| {
                    units += ch.len_utf16();
                    units <= utf16
                })
                .count()
        }
        None => utf16,
    };
    (line + 1, column + 1)
}

/// [`Files`] with each file read once per answer.
struct Lines<'a> {
    files: &'a dyn Files,
    read: std::cell::RefCell<Vec<(PathBuf, Option<String>)>>,
}

impl<'a> Lines<'a> {
    fn new(files: &'a dyn Files) -> Lines<'a> {
        Lines {
            files,
            read: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// 0-based line `line` of `path`, without its line break.
    fn line(&self, path: &Path, line: usize) -> Option<String> {
        let mut read = self.read.borrow_mut();
        let idx = match read.iter().position(|(seen, _)| seen == path) {
            Some(idx) => idx,
            None => {
                read.push((path.to_path_buf(), self.files.text(path)));
                read.len() - 1
            }
        };
        let text = read[idx].1.as_deref()?;
        text.split('\n')
            .nth(line)
            .map(|line| line.trim_end_matches('\r').to_owned())
    }

    fn preview(&self, path: &Path, line: usize) -> Option<String> {
        self.line(path, line).map(|text| text.trim().to_owned())
    }
}

fn path_of(uri: &lsp_types::Uri) -> Option<PathBuf> {
    crate::uri::to_path(uri.as_str())
}

/// A file as results show it; the server's copy of the standard library's stubs (in its
/// private directory) as `typeshed/…`.
fn shown(files: &Lines<'_>, path: &Path) -> String {
    let text = path.to_string_lossy();
    if let Some((_, rest)) = text.split_once("/vendored/typeshed/")
        && let Some((_, inside)) = rest.split_once('/')
    {
        return format!("typeshed/{inside}");
    }
    files.files.shown(path)
}

pub(super) fn definitions(
    files: &dyn Files,
    symbol: &str,
    response: Option<GotoDefinitionResponse>,
) -> GotoDefinitionResult {
    let files = Lines::new(files);
    let targets: Vec<(lsp_types::Uri, lsp_types::Range)> = match response {
        None => Vec::new(),
        Some(GotoDefinitionResponse::Scalar(location)) => vec![(location.uri, location.range)],
        Some(GotoDefinitionResponse::Array(locations)) => locations
            .into_iter()
            .map(|location| (location.uri, location.range))
            .collect(),
        Some(GotoDefinitionResponse::Link(links)) => links
            .into_iter()
            .map(|link| (link.target_uri, link.target_selection_range))
            .collect(),
    };
    let locations: Vec<DefinitionLocation> = targets
        .into_iter()
        .filter_map(|(uri, range)| {
            let path = path_of(&uri)?;
            let (line, column) = punie_position(&files, &path, range.start);
            let (end_line, end_column) = punie_position(&files, &path, range.end);
            Some(DefinitionLocation {
                file: shown(&files, &path),
                line,
                column,
                end_line,
                end_column,
                preview: files.preview(&path, line - 1),
            })
        })
        .take(MAX_RESULTS)
        .collect();
    GotoDefinitionResult {
        success: !locations.is_empty(),
        symbol: symbol.to_owned(),
        locations,
        parse_error: None,
        answered_by: ANSWERED_BY,
    }
}

pub(super) fn references(
    files: &dyn Files,
    symbol: &str,
    response: Option<Vec<Location>>,
) -> FindReferencesResult {
    let files = Lines::new(files);
    let references: Vec<ReferenceLocation> = response
        .unwrap_or_default()
        .into_iter()
        .filter_map(|location| {
            let path = path_of(&location.uri)?;
            let (line, column) = punie_position(&files, &path, location.range.start);
            Some(ReferenceLocation {
                file: shown(&files, &path),
                line,
                column,
                preview: files.preview(&path, line - 1),
            })
        })
        .take(MAX_RESULTS)
        .collect();
    FindReferencesResult {
        success: !references.is_empty(),
        symbol: symbol.to_owned(),
        reference_count: references.len(),
        references,
        parse_error: None,
        answered_by: ANSWERED_BY,
    }
}

/// Hover text and its language, as Punie read them: markup's kind (`plaintext`,
/// `markdown`), a marked string's language, `plaintext` for plain strings.
pub(super) fn hover(symbol: &str, response: Option<Hover>) -> HoverResult {
    let content = response.map(|hover| match hover.contents {
        HoverContents::Markup(markup) => {
            let kind = serde_json::to_value(&markup.kind)
                .ok()
                .and_then(|kind| kind.as_str().map(str::to_owned))
                .unwrap_or_else(|| "plaintext".to_owned());
            (markup.value, kind)
        }
        HoverContents::Scalar(MarkedString::LanguageString(code)) => (code.value, code.language),
        HoverContents::Scalar(MarkedString::String(text)) => (text, "plaintext".to_owned()),
        HoverContents::Array(parts) => {
            let parts: Vec<String> = parts
                .into_iter()
                .map(|part| match part {
                    MarkedString::String(text) => text,
                    MarkedString::LanguageString(code) => code.value,
                })
                .collect();
            (parts.join("\n\n"), "plaintext".to_owned())
        }
    });
    let content = content.filter(|(text, _)| !text.trim().is_empty());
    HoverResult {
        success: content.is_some(),
        symbol: symbol.to_owned(),
        language: content.as_ref().map(|(_, language)| language.clone()),
        content: content.map(|(text, _)| text),
        parse_error: None,
        answered_by: ANSWERED_BY,
    }
}

fn kind_number(kind: SymbolKind) -> u32 {
    serde_json::to_value(kind)
        .ok()
        .and_then(|kind| kind.as_u64())
        .and_then(|kind| u32::try_from(kind).ok())
        .unwrap_or(0)
}

fn count(symbols: &[SymbolInfo]) -> usize {
    symbols
        .iter()
        .map(|symbol| 1 + count(&symbol.children))
        .sum()
}

/// A symbol's lines are those of its whole range (decorators included), as in Punie.
fn symbol_info(symbol: DocumentSymbol) -> SymbolInfo {
    SymbolInfo {
        name: symbol.name,
        kind: kind_number(symbol.kind),
        line: symbol.range.start.line as usize + 1,
        end_line: symbol.range.end.line as usize + 1,
        children: symbol
            .children
            .unwrap_or_default()
            .into_iter()
            .map(symbol_info)
            .collect(),
    }
}

pub(super) fn document_symbols(
    file_path: &str,
    response: Option<DocumentSymbolResponse>,
) -> DocumentSymbolsResult {
    let symbols: Vec<SymbolInfo> = match response {
        None => Vec::new(),
        Some(DocumentSymbolResponse::Nested(symbols)) => {
            symbols.into_iter().map(symbol_info).collect()
        }
        Some(DocumentSymbolResponse::Flat(symbols)) => symbols
            .into_iter()
            .map(|symbol: SymbolInformation| SymbolInfo {
                name: symbol.name,
                kind: kind_number(symbol.kind),
                line: symbol.location.range.start.line as usize + 1,
                end_line: symbol.location.range.end.line as usize + 1,
                children: Vec::new(),
            })
            .collect(),
    };
    DocumentSymbolsResult {
        success: !symbols.is_empty(),
        file_path: file_path.to_owned(),
        symbol_count: count(&symbols),
        symbols,
        parse_error: None,
        answered_by: ANSWERED_BY,
    }
}

pub(super) fn workspace_symbols(
    files: &dyn Files,
    query: &str,
    response: Option<WorkspaceSymbolResponse>,
) -> WorkspaceSymbolsResult {
    let files = Lines::new(files);
    let symbol = |name: String, kind, uri: &lsp_types::Uri, line: Option<u32>, container_name| {
        let path = path_of(uri)?;
        Some(WorkspaceSymbol {
            name,
            kind: kind_number(kind),
            file: shown(&files, &path),
            line: line.map_or(0, |line| line as usize + 1),
            container_name,
        })
    };
    let symbols: Vec<WorkspaceSymbol> = match response {
        None => Vec::new(),
        Some(WorkspaceSymbolResponse::Flat(symbols)) => symbols
            .into_iter()
            .filter_map(|found| {
                let location = found.location;
                let line = Some(location.range.start.line);
                symbol(
                    found.name,
                    found.kind,
                    &location.uri,
                    line,
                    found.container_name,
                )
            })
            .take(MAX_RESULTS)
            .collect(),
        Some(WorkspaceSymbolResponse::Nested(symbols)) => symbols
            .into_iter()
            .filter_map(|found| {
                let (uri, line) = match found.location {
                    lsp_types::OneOf::Left(location) => {
                        (location.uri, Some(location.range.start.line))
                    }
                    lsp_types::OneOf::Right(location) => (location.uri, None),
                };
                symbol(found.name, found.kind, &uri, line, found.container_name)
            })
            .take(MAX_RESULTS)
            .collect(),
    };
    WorkspaceSymbolsResult {
        success: !symbols.is_empty(),
        query: query.to_owned(),
        symbol_count: symbols.len(),
        symbols,
        parse_error: None,
        answered_by: ANSWERED_BY,
    }
}

#[cfg(test)]
mod tests;
