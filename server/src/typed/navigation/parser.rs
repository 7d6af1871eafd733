//! Code navigation answered in-process from the workspace's Python files, parsed with
//! RustPython's parser, when no language server is installed. Every result says so in
//! `answered_by` (`"punie-parser"`).
//!
//! What the parser can know: the definitions in a file (classes, functions, methods,
//! module and class variables), where a name is bound (a definition in the same file, or an
//! import that resolves to a workspace file, `src/` layouts included), and every place a
//! name is spelled. It has no types: `find_references` matches by name, and a method found
//! through `obj.method` is every definition of that name in the workspace.
//!
//! Positions are Punie's: 1-based lines and columns (characters).

use std::path::{Path, PathBuf};

use ruff_python_ast::visitor::source_order::{SourceOrderVisitor, TraversalSignal};
use ruff_python_ast::{AnyNodeRef, Identifier, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};
use serde_json::Value;

use super::{
    Context, DefinitionLocation, DocumentSymbolsResult, FindReferencesResult, GotoDefinitionResult,
    HoverResult, MAX_RESULTS, Position, ReferenceLocation, SymbolInfo, WorkspaceSymbol,
    WorkspaceSymbolsResult, to_value, workspace_text,
};
use crate::typed::source::SourceFile;
use crate::workspace::ToolError;

/// Who answered, as results report it.
pub(super) const ANSWERED_BY: &str = "punie-parser";
/// Files a workspace-wide search reads at most.
const MAX_FILES: usize = 5000;
/// Directories, and directory entries, the walk for them looks at at most.
const MAX_DIRS: usize = 10_000;
const MAX_ENTRIES: usize = 200_000;
/// Bytes of Python a workspace-wide search reads at most (a file is at most
/// `MAX_FILE_BYTES`). The parser takes about 50 ms a megabyte in a debug build: 2,000 links
/// to one 1 MB file kept a search going for 94 s.
const MAX_SEARCH_BYTES: usize = 32 * 1024 * 1024;

// LSP `SymbolKind` numbers, as Punie's results carry them.
const KIND_CLASS: u32 = 5;
const KIND_METHOD: u32 = 6;
const KIND_FUNCTION: u32 = 12;
const KIND_VARIABLE: u32 = 13;

/// A definition in a file: its name's range, the whole statement's, and its members.
struct Definition {
    name: String,
    kind: u32,
    name_range: TextRange,
    range: TextRange,
    children: Vec<Definition>,
    /// The statement, for hover.
    docstring: Option<String>,
}

/// The definitions of `body`; a class's members become its children.
fn definitions(body: &[Stmt], in_class: bool) -> Vec<Definition> {
    let mut res = Vec::new();
    for stmt in body {
        match stmt {
            Stmt::ClassDef(class) => res.push(Definition {
                name: class.name.to_string(),
                kind: KIND_CLASS,
                name_range: class.name.range,
                range: class.range,
                children: definitions(&class.body, true),
                docstring: docstring(&class.body),
            }),
            Stmt::FunctionDef(def) => res.push(Definition {
                name: def.name.to_string(),
                kind: if in_class { KIND_METHOD } else { KIND_FUNCTION },
                name_range: def.name.range,
                range: def.range,
                children: Vec::new(),
                docstring: docstring(&def.body),
            }),
            Stmt::Assign(assign) => {
                for target in &assign.targets {
                    if let Some(name) = target.as_name_expr() {
                        res.push(variable(name.id.as_str(), name.range, stmt.range()));
                    }
                }
            }
            Stmt::AnnAssign(assign) => {
                if let Some(name) = assign.target.as_name_expr() {
                    res.push(variable(name.id.as_str(), name.range, stmt.range()));
                }
            }
            // Definitions under `if TYPE_CHECKING:`, `try:` and the like are still top level.
            Stmt::If(stmt_if) => {
                res.extend(definitions(&stmt_if.body, in_class));
                for clause in &stmt_if.elif_else_clauses {
                    res.extend(definitions(&clause.body, in_class));
                }
            }
            Stmt::Try(stmt_try) => {
                res.extend(definitions(&stmt_try.body, in_class));
                res.extend(definitions(&stmt_try.orelse, in_class));
            }
            _ => {}
        }
    }
    res
}

fn variable(name: &str, name_range: TextRange, range: TextRange) -> Definition {
    Definition {
        name: name.to_owned(),
        kind: KIND_VARIABLE,
        name_range,
        range,
        children: Vec::new(),
        docstring: None,
    }
}

fn docstring(body: &[Stmt]) -> Option<String> {
    let Some(Stmt::Expr(expr)) = body.first() else {
        return None;
    };
    expr.value
        .as_string_literal_expr()
        .map(|literal| literal.value.to_str().trim().to_owned())
}

fn count(symbols: &[SymbolInfo]) -> usize {
    symbols
        .iter()
        .map(|symbol| 1 + count(&symbol.children))
        .sum()
}

fn symbol_info(file: &SourceFile, def: &Definition) -> SymbolInfo {
    SymbolInfo {
        name: def.name.clone(),
        kind: def.kind,
        line: file.line_col(def.name_range.start()).0,
        end_line: file.line_col(def.range.end()).0,
        children: def
            .children
            .iter()
            .map(|child| symbol_info(file, child))
            .collect(),
    }
}

pub(super) fn document_symbols(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let (_, text) = ctx.read(raw)?;
    let res = match SourceFile::parse(text) {
        Ok(file) => {
            let symbols: Vec<SymbolInfo> = definitions(file.body(), false)
                .iter()
                .map(|def| symbol_info(&file, def))
                .collect();
            DocumentSymbolsResult {
                success: !symbols.is_empty(),
                file_path: raw.to_owned(),
                symbol_count: count(&symbols),
                symbols,
                parse_error: None,
                answered_by: ANSWERED_BY,
            }
        }
        Err(why) => DocumentSymbolsResult {
            success: false,
            file_path: raw.to_owned(),
            symbols: Vec::new(),
            symbol_count: 0,
            parse_error: Some(why),
            answered_by: ANSWERED_BY,
        },
    };
    to_value(res)
}

/// The Python files of the workspace, skipping hidden directories, virtual environments,
/// caches and pseudo file systems (`/proc` and `/sys` of a workspace at `/`, whose files are
/// never read: `crate::plain_file::is_on_pseudo_file_system`); at most [`MAX_FILES`], from at most
/// [`MAX_DIRS`] directories and [`MAX_ENTRIES`] entries, in a stable order.
pub(super) fn python_files(root: &Path) -> Vec<PathBuf> {
    const SKIP: &[&str] = &[
        "__pycache__",
        "node_modules",
        "site-packages",
        "venv",
        "build",
        "dist",
    ];
    let mut res = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    let (mut dirs_read, mut entries_left) = (0, MAX_ENTRIES);
    while let Some(dir) = dirs.pop() {
        if dirs_read == MAX_DIRS || entries_left == 0 {
            break;
        }
        if crate::plain_file::is_on_pseudo_file_system(&dir) {
            continue;
        }
        dirs_read += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.take(entries_left).filter_map(Result::ok).collect();
        entries_left -= entries.len();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries.into_iter().rev() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `file_type` does not follow symlinks: a link never leads the walk outside.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && !name.starts_with('.') && !SKIP.contains(&name.as_ref()) {
                dirs.push(entry.path());
            } else if kind.is_file() && name.ends_with(".py") {
                res.push(entry.path());
            }
        }
        if res.len() >= MAX_FILES {
            break;
        }
    }
    res.sort();
    res.truncate(MAX_FILES);
    res
}

/// A workspace file parsed, read as [`workspace_text`] reads it: `None` for a link out of the
/// workspace, a secret, or anything but a small regular file.
fn parse_path(ctx: &Context<'_>, path: &Path) -> Option<SourceFile> {
    SourceFile::parse(workspace_text(ctx, path)?).ok()
}

/// The workspace's Python files, parsed one by one for a workspace-wide search, while the
/// call may go on: an `Err` when the run is cancelled or the snippet's time is up (checked
/// before each file), and no more files once [`MAX_SEARCH_BYTES`] were read. Files that do
/// not parse (a syntax error, or nested deeper than CPython accepts) are skipped, and the
/// result says so.
struct Search<'c, 'a> {
    ctx: &'c Context<'a>,
    files: std::vec::IntoIter<PathBuf>,
    read_bytes: usize,
    /// Files left unread when the byte budget ran out.
    unread: usize,
    /// Files that did not parse, and the first one's error.
    unparsed: usize,
    first_unparsed: Option<String>,
}

impl<'c, 'a> Search<'c, 'a> {
    fn new(ctx: &'c Context<'a>) -> Search<'c, 'a> {
        Search {
            ctx,
            files: python_files(ctx.root()).into_iter(),
            read_bytes: 0,
            unread: 0,
            unparsed: 0,
            first_unparsed: None,
        }
    }

    /// What the result says when not every file was searched.
    fn note(&self) -> Option<String> {
        let skipped = self.first_unparsed.as_ref().map(|first| {
            format!(
                "skipped {} files that do not parse (the first, {first})",
                self.unparsed
            )
        });
        let unread = (self.unread > 0).then(|| {
            format!(
                "searched {} MB of Python files, the most one search reads; {} files were not read",
                MAX_SEARCH_BYTES / (1024 * 1024),
                self.unread
            )
        });
        let notes: Vec<String> = skipped.into_iter().chain(unread).collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

impl Iterator for Search<'_, '_> {
    type Item = Result<(PathBuf, SourceFile), ToolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ctx.cancel.is_cancelled() {
                return Some(Err(super::interrupted(
                    self.ctx.cancel,
                    "the search of the workspace's files did not finish",
                )));
            }
            if self.read_bytes >= MAX_SEARCH_BYTES {
                self.unread = self.files.len();
                return None;
            }
            let path = self.files.next()?;
            let Some(text) = super::workspace_text(self.ctx, &path) else {
                continue;
            };
            self.read_bytes += text.len();
            match SourceFile::parse(text) {
                Ok(file) => return Some(Ok((path, file))),
                Err(why) => {
                    self.unparsed += 1;
                    if self.first_unparsed.is_none() {
                        self.first_unparsed = Some(format!("{}: {why}", self.ctx.shown(&path)));
                    }
                }
            }
        }
    }
}

pub(super) fn workspace_symbols(ctx: &Context<'_>, query: &str) -> Result<Value, ToolError> {
    let wanted = query.to_lowercase();
    let mut symbols = Vec::new();
    let mut search = Search::new(ctx);
    'files: for found in &mut search {
        let (path, file) = found?;
        let shown = ctx.shown(&path);
        let mut stack: Vec<(Option<String>, &Definition)> = Vec::new();
        let defs = definitions(file.body(), false);
        stack.extend(defs.iter().rev().map(|def| (None, def)));
        while let Some((container, def)) = stack.pop() {
            if def.name.to_lowercase().contains(&wanted) {
                symbols.push(WorkspaceSymbol {
                    name: def.name.clone(),
                    kind: def.kind,
                    file: shown.clone(),
                    line: file.line_col(def.name_range.start()).0,
                    container_name: container.clone(),
                });
                if symbols.len() >= MAX_RESULTS {
                    break 'files;
                }
            }
            stack.extend(
                def.children
                    .iter()
                    .rev()
                    .map(|child| (Some(def.name.clone()), child)),
            );
        }
    }
    to_value(WorkspaceSymbolsResult {
        success: !symbols.is_empty(),
        query: query.to_owned(),
        symbol_count: symbols.len(),
        symbols,
        parse_error: search.note(),
        answered_by: ANSWERED_BY,
    })
}

/// Every spelling of a name in a file: expression names and identifiers (definitions,
/// parameters, attributes, keywords, the parts of dotted imports).
fn name_occurrences(file: &SourceFile) -> Vec<(TextRange, String)> {
    struct Names {
        found: Vec<(TextRange, String)>,
    }
    impl<'a> SourceOrderVisitor<'a> for Names {
        fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
            if let AnyNodeRef::ExprName(expr) = node {
                self.found.push((expr.range, expr.id.to_string()));
            }
            TraversalSignal::Traverse
        }

        fn visit_identifier(&mut self, identifier: &'a Identifier) {
            let mut start = identifier.range.start();
            for part in identifier.as_str().split('.') {
                let len = TextSize::try_from(part.len()).unwrap_or_default();
                self.found
                    .push((TextRange::at(start, len), part.to_owned()));
                start += len + TextSize::from(1);
            }
        }
    }
    let mut names = Names { found: Vec::new() };
    names.visit_body(file.body());
    names.found
}

/// The name the model points at, and where it is spelled: the name under (`line`, `column`)
/// when it is `symbol` (or no `symbol` is given, or the line does not spell it), else
/// `symbol`'s spelling on that line nearest the column.
pub(super) fn aim(file: &SourceFile, pos: &Position<'_>) -> Option<(TextRange, String)> {
    let line = usize::try_from(pos.line).ok()?;
    let column = usize::try_from(pos.column).ok()?;
    let offset = file.offset(line, column.saturating_sub(1))?;
    let occurrences = name_occurrences(file);
    let under = occurrences
        .iter()
        .find(|(range, _)| range.contains_inclusive(offset));
    if let Some((range, name)) = under
        && (pos.symbol.is_empty()
            || pos.symbol == name
            || !file.line_text(line).contains(pos.symbol))
    {
        return Some((*range, name.clone()));
    }
    occurrences
        .into_iter()
        .filter(|(range, name)| name == pos.symbol && file.line_col(range.start()).0 == line)
        .min_by_key(|(range, _)| usize::from(range.start()).abs_diff(usize::from(offset)))
}

/// The name the model points at ([`aim`]), else `symbol` itself.
fn name_at(file: &SourceFile, pos: &Position<'_>) -> String {
    aim(file, pos).map_or_else(|| pos.symbol.to_owned(), |(_, name)| name)
}

fn location(
    ctx: &Context<'_>,
    path: &Path,
    file: &SourceFile,
    range: TextRange,
) -> DefinitionLocation {
    let (line, column) = file.line_col(range.start());
    let (end_line, end_column) = file.line_col(range.end());
    DefinitionLocation {
        file: ctx.shown(path),
        line,
        column: column + 1,
        end_line,
        end_column: end_column + 1,
        preview: Some(file.line_text(line).trim().to_owned()),
    }
}

/// Where `name`, as used in `file` at `path`, is defined: a definition in the file, the
/// workspace file an import of it names, or else every workspace definition of that name.
fn find_definitions(
    ctx: &Context<'_>,
    path: &Path,
    file: &SourceFile,
    name: &str,
) -> Result<Vec<(PathBuf, Definition, DefinitionLocation)>, ToolError> {
    let mut local: Vec<Definition> = Vec::new();
    collect_named(definitions(file.body(), false), name, &mut local);
    if let Some(def) = local.into_iter().next() {
        let loc = location(ctx, path, file, def.name_range);
        return Ok(vec![(path.to_path_buf(), def, loc)]);
    }
    if let Some(module) = imported_from(file, name)
        && let Some(target) = module_file(ctx.root(), path, &module.0)
        && let Some(target_file) = parse_path(ctx, &target)
    {
        let mut found = Vec::new();
        collect_named(
            definitions(target_file.body(), false),
            &module.1,
            &mut found,
        );
        if let Some(def) = found.into_iter().next() {
            let loc = location(ctx, &target, &target_file, def.name_range);
            return Ok(vec![(target, def, loc)]);
        }
    }
    let mut res = Vec::new();
    for searched in Search::new(ctx) {
        let (other, other_file) = searched?;
        let mut found = Vec::new();
        collect_named(definitions(other_file.body(), false), name, &mut found);
        for def in found {
            let loc = location(ctx, &other, &other_file, def.name_range);
            res.push((other.clone(), def, loc));
        }
        if res.len() >= MAX_RESULTS {
            break;
        }
    }
    Ok(res)
}

fn collect_named(defs: Vec<Definition>, name: &str, out: &mut Vec<Definition>) {
    for mut def in defs {
        let children = std::mem::take(&mut def.children);
        if def.name == name {
            out.push(def);
        }
        collect_named(children, name, out);
    }
}

/// `(module, original name)` of a top-level `from module import original as name`.
fn imported_from(file: &SourceFile, name: &str) -> Option<(String, String)> {
    file.body().iter().find_map(|stmt| {
        let Stmt::ImportFrom(import) = stmt else {
            return None;
        };
        import.names.iter().find_map(|alias| {
            let bound = alias.asname.as_ref().unwrap_or(&alias.name);
            (bound.as_str() == name).then(|| {
                let dots = ".".repeat(usize::try_from(import.level).unwrap_or(0));
                let module = import.module.as_ref().map_or("", Identifier::as_str);
                (format!("{dots}{module}"), alias.name.to_string())
            })
        })
    })
}

/// The file of `module` imported from `from`: relative to the importing file's package for
/// `.module`, else from the workspace root or its `src/`. Only its name: whether it may be
/// read (a link can lead anywhere) is [`parse_path`]'s to decide.
fn module_file(root: &Path, from: &Path, module: &str) -> Option<PathBuf> {
    let level = module.chars().take_while(|ch| *ch == '.').count();
    let dotted = &module[level..];
    let bases: Vec<PathBuf> = if level > 0 {
        let mut base = from.parent()?.to_path_buf();
        for _ in 1..level {
            base = base.parent()?.to_path_buf();
        }
        vec![base]
    } else {
        vec![root.to_path_buf(), root.join("src")]
    };
    let rel: PathBuf = dotted.split('.').filter(|part| !part.is_empty()).collect();
    bases.into_iter().find_map(|base| {
        let dir = base.join(&rel);
        [dir.with_extension("py"), dir.join("__init__.py")]
            .into_iter()
            .find(|candidate| candidate.is_file())
    })
}

/// The file of a position request, parsed; `Err` is the result's `parse_error`.
fn position_file(
    ctx: &Context<'_>,
    pos: &Position<'_>,
) -> Result<Result<(PathBuf, SourceFile), String>, ToolError> {
    let (path, text) = ctx.read(pos.file_path)?;
    Ok(SourceFile::parse(text).map(|file| (path, file)))
}

pub(super) fn goto_definition(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    let res = match position_file(ctx, pos)? {
        Ok((path, file)) => {
            let name = name_at(&file, pos);
            let locations: Vec<DefinitionLocation> = find_definitions(ctx, &path, &file, &name)?
                .into_iter()
                .map(|(_, _, loc)| loc)
                .collect();
            GotoDefinitionResult {
                success: !locations.is_empty(),
                symbol: pos.symbol.to_owned(),
                locations,
                parse_error: None,
                answered_by: ANSWERED_BY,
            }
        }
        Err(why) => GotoDefinitionResult {
            success: false,
            symbol: pos.symbol.to_owned(),
            locations: Vec::new(),
            parse_error: Some(why),
            answered_by: ANSWERED_BY,
        },
    };
    to_value(res)
}

pub(super) fn find_references(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    let res = match position_file(ctx, pos)? {
        Ok((_, file)) => {
            let name = name_at(&file, pos);
            let mut references = Vec::new();
            let mut search = Search::new(ctx);
            'files: for searched in &mut search {
                let (path, other) = searched?;
                for (range, found) in name_occurrences(&other) {
                    if found != name {
                        continue;
                    }
                    let (line, column) = other.line_col(range.start());
                    references.push(ReferenceLocation {
                        file: ctx.shown(&path),
                        line,
                        column: column + 1,
                        preview: Some(other.line_text(line).trim().to_owned()),
                    });
                    if references.len() >= MAX_RESULTS {
                        break 'files;
                    }
                }
            }
            FindReferencesResult {
                success: !references.is_empty(),
                symbol: pos.symbol.to_owned(),
                reference_count: references.len(),
                references,
                parse_error: search.note(),
                answered_by: ANSWERED_BY,
            }
        }
        Err(why) => FindReferencesResult {
            success: false,
            symbol: pos.symbol.to_owned(),
            reference_count: 0,
            references: Vec::new(),
            parse_error: Some(why),
            answered_by: ANSWERED_BY,
        },
    };
    to_value(res)
}

pub(super) fn hover(ctx: &Context<'_>, pos: &Position<'_>) -> Result<Value, ToolError> {
    let res = match position_file(ctx, pos)? {
        Ok((path, file)) => {
            let name = name_at(&file, pos);
            let content = find_definitions(ctx, &path, &file, &name)?
                .into_iter()
                .next()
                .and_then(|(def_path, def, _)| {
                    if def_path == path {
                        return hover_text(&file, &def);
                    }
                    hover_text(&parse_path(ctx, &def_path)?, &def)
                });
            HoverResult {
                success: content.is_some(),
                symbol: pos.symbol.to_owned(),
                language: content.as_ref().map(|_| "python".to_owned()),
                content,
                parse_error: None,
                answered_by: ANSWERED_BY,
            }
        }
        Err(why) => HoverResult {
            success: false,
            symbol: pos.symbol.to_owned(),
            content: None,
            language: None,
            parse_error: Some(why),
            answered_by: ANSWERED_BY,
        },
    };
    to_value(res)
}

/// A definition's header (`class A(Base):`, `def f(x: int) -> str:`, `x: int = 1`) and its
/// docstring.
fn hover_text(file: &SourceFile, def: &Definition) -> Option<String> {
    let start = usize::from(def.name_range.start());
    let stmt_start = usize::from(def.range.start());
    // From the keyword's line (past any decorators) to the `:` that ends the header.
    let header_start = match def.kind {
        KIND_CLASS | KIND_FUNCTION | KIND_METHOD => {
            let line_start = file.text.get(..start)?.rfind('\n').map_or(0, |idx| idx + 1);
            line_start.max(stmt_start)
        }
        _ => stmt_start,
    };
    let rest = file.text.get(header_start..usize::from(def.range.end()))?;
    let header = match def.kind {
        KIND_VARIABLE => rest.lines().next().unwrap_or("").trim().to_owned(),
        _ => header_of(rest),
    };
    Some(match &def.docstring {
        Some(doc) if !doc.is_empty() => format!("{header}\n\n{doc}"),
        _ => header,
    })
}

/// The text of a `def`/`class` header up to its closing `:` at bracket depth zero.
fn header_of(text: &str) -> String {
    let mut depth = 0i32;
    for (idx, ch) in text.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ':' if depth == 0 => return text[..=idx].trim().to_owned(),
            _ => {}
        }
    }
    text.lines().next().unwrap_or("").trim().to_owned()
}
