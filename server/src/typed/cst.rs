//! `cst_find_pattern`, `cst_rename`, `cst_add_import`: Punie's LibCST tools, computed from a
//! lossless parse. Searches report LibCST's node names and positions (1-based line, 0-based
//! column); edits are byte-range replacements on the file's text, so everything else
//! (formatting, comments, blank lines) is kept byte for byte. The edits are returned as
//! `modified_source`, never written: the snippet applies them with `write_file`, which asks
//! the same permission and makes the same editor edit as any other write.

use ruff_python_ast::visitor::source_order::{SourceOrderVisitor, TraversalSignal};
use ruff_python_ast::{AnyNodeRef, Expr, Identifier, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};
use serde::Serialize;
use serde_json::Value;

use super::Context;
use super::source::{SourceFile, is_identifier};
use crate::workspace::ToolError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CstMatch {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) code_snippet: String,
    pub(super) node_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CstFindResult {
    pub(super) success: bool,
    pub(super) match_count: usize,
    pub(super) matches: Vec<CstMatch>,
    pub(super) parse_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CstRenameResult {
    pub(super) success: bool,
    pub(super) rename_count: usize,
    pub(super) modified_source: Option<String>,
    pub(super) parse_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CstAddImportResult {
    pub(super) success: bool,
    pub(super) import_added: bool,
    pub(super) modified_source: Option<String>,
    pub(super) parse_error: Option<String>,
}

fn to_value(res: impl Serialize) -> Result<Value, ToolError> {
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// What `cst_find_pattern` looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Every node of a LibCST node type.
    Node(&'static str),
    /// `call:name`: calls of the plain name `name`.
    CallTo(String),
    /// `decorator:name`: `@name` (not `@name(...)`, as LibCST's matcher).
    DecoratorNamed(String),
    /// `import:name`: `from … import` whose module is, or ends with, `name`.
    ImportFromModule(String),
}

const NODE_TYPES: [&str; 8] = [
    "FunctionDef",
    "ClassDef",
    "Call",
    "Decorator",
    "Import",
    "ImportFrom",
    "Name",
    "Attribute",
];

impl Pattern {
    fn parse(pattern: &str) -> Result<Pattern, String> {
        if let Some(name) = pattern.strip_prefix("call:") {
            return Ok(Pattern::CallTo(name.to_owned()));
        }
        if let Some(name) = pattern.strip_prefix("decorator:") {
            return Ok(Pattern::DecoratorNamed(name.to_owned()));
        }
        if let Some(name) = pattern.strip_prefix("import:") {
            return Ok(Pattern::ImportFromModule(name.to_owned()));
        }
        NODE_TYPES
            .into_iter()
            .find(|node| *node == pattern)
            .map(Pattern::Node)
            .ok_or_else(|| {
                format!(
                    "Unknown pattern: '{pattern}'. Use one of {}, 'call:name', 'decorator:name', 'import:name'",
                    NODE_TYPES.join(", ")
                )
            })
    }
}

pub(super) fn find_pattern(
    ctx: &Context<'_>,
    raw: &str,
    pattern: &str,
) -> Result<Value, ToolError> {
    let (_, text) = ctx.read(raw)?;
    let failed = |why: String| CstFindResult {
        success: false,
        match_count: 0,
        matches: Vec::new(),
        parse_error: Some(why),
    };
    let file = match SourceFile::parse(text) {
        Ok(file) => file,
        Err(why) => return to_value(failed(why)),
    };
    let pattern = match Pattern::parse(pattern) {
        Ok(pattern) => pattern,
        Err(why) => return to_value(failed(why)),
    };
    let matches = find(&file, &pattern);
    to_value(CstFindResult {
        success: true,
        match_count: matches.len(),
        matches,
        parse_error: None,
    })
}

fn find(file: &SourceFile, pattern: &Pattern) -> Vec<CstMatch> {
    let mut finder = Finder {
        file,
        pattern,
        found: Vec::new(),
    };
    finder.visit_body(file.body());
    finder.found
}

struct Finder<'f> {
    file: &'f SourceFile,
    pattern: &'f Pattern,
    found: Vec<CstMatch>,
}

impl Finder<'_> {
    fn hit(&mut self, range: TextRange, node_type: &'static str) {
        let (line, column) = self.file.line_col(range.start());
        self.found.push(CstMatch {
            line,
            column,
            code_snippet: self.file.snippet(range),
            node_type,
        });
    }
}

/// The LibCST type of a node, for the node types `cst_find_pattern` knows.
fn node_type(node: AnyNodeRef<'_>) -> Option<&'static str> {
    Some(match node {
        AnyNodeRef::StmtFunctionDef(_) => "FunctionDef",
        AnyNodeRef::StmtClassDef(_) => "ClassDef",
        AnyNodeRef::ExprCall(_) => "Call",
        AnyNodeRef::Decorator(_) => "Decorator",
        AnyNodeRef::StmtImport(_) => "Import",
        AnyNodeRef::StmtImportFrom(_) => "ImportFrom",
        AnyNodeRef::ExprName(_) => "Name",
        AnyNodeRef::ExprAttribute(_) => "Attribute",
        _ => return None,
    })
}

impl<'a> SourceOrderVisitor<'a> for Finder<'_> {
    fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
        let matched = match (self.pattern, node) {
            (Pattern::Node(wanted), node) => node_type(node).filter(|found| found == wanted),
            (Pattern::CallTo(name), AnyNodeRef::ExprCall(call)) => {
                matches!(&*call.func, Expr::Name(func) if func.id.as_str() == name)
                    .then_some("Call")
            }
            (Pattern::DecoratorNamed(name), AnyNodeRef::Decorator(decorator)) => {
                matches!(&decorator.expression, Expr::Name(dec) if dec.id.as_str() == name)
                    .then_some("Decorator")
            }
            (Pattern::ImportFromModule(name), AnyNodeRef::StmtImportFrom(import)) => import
                .module
                .as_ref()
                .is_some_and(|module| module.as_str().rsplit('.').next() == Some(name))
                .then_some("ImportFrom"),
            _ => None,
        };
        if let Some(node_type) = matched {
            self.hit(node.range(), node_type);
        }
        TraversalSignal::Traverse
    }

    fn visit_identifier(&mut self, identifier: &'a Identifier) {
        // LibCST's `Name` is also every identifier that is not an expression: definitions,
        // parameters, attributes, keywords, the parts of a dotted import.
        if self.pattern == &Pattern::Node("Name") {
            for (range, _) in name_parts(identifier) {
                self.hit(range, "Name");
            }
        }
    }
}

/// The names in an identifier with their ranges: one, or each part of `a.b.c` in an import.
fn name_parts(identifier: &Identifier) -> Vec<(TextRange, &str)> {
    let text = identifier.as_str();
    let mut res = Vec::new();
    let mut start = identifier.range.start();
    for part in text.split('.') {
        let len = TextSize::try_from(part.len()).unwrap_or_default();
        res.push((TextRange::at(start, len), part));
        start += len + TextSize::from(1);
    }
    res
}

pub(super) fn rename(
    ctx: &Context<'_>,
    raw: &str,
    old_name: &str,
    new_name: &str,
) -> Result<Value, ToolError> {
    let (_, text) = ctx.read(raw)?;
    let failed = |why: String| CstRenameResult {
        success: false,
        rename_count: 0,
        modified_source: None,
        parse_error: Some(why),
    };
    if !is_identifier(new_name) {
        return to_value(failed(format!("'{new_name}' is not a Python identifier")));
    }
    let file = match SourceFile::parse(text) {
        Ok(file) => file,
        Err(why) => return to_value(failed(why)),
    };
    let ranges = name_ranges(&file, old_name);
    let edits: Vec<(TextRange, &str)> = ranges.iter().map(|range| (*range, new_name)).collect();
    to_value(CstRenameResult {
        success: true,
        rename_count: ranges.len(),
        modified_source: Some(apply(&file.text, edits)),
        parse_error: None,
    })
}

/// Every `Name` (in LibCST's sense) spelled `name`.
fn name_ranges(file: &SourceFile, name: &str) -> Vec<TextRange> {
    struct Names<'n> {
        name: &'n str,
        found: Vec<TextRange>,
    }
    impl<'a> SourceOrderVisitor<'a> for Names<'_> {
        fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
            if let AnyNodeRef::ExprName(expr) = node
                && expr.id.as_str() == self.name
            {
                self.found.push(expr.range);
            }
            TraversalSignal::Traverse
        }

        fn visit_identifier(&mut self, identifier: &'a Identifier) {
            for (range, part) in name_parts(identifier) {
                if part == self.name {
                    self.found.push(range);
                }
            }
        }
    }
    let mut names = Names {
        name,
        found: Vec::new(),
    };
    names.visit_body(file.body());
    names.found
}

/// `text` with each range replaced (ranges do not overlap).
fn apply(text: &str, mut edits: Vec<(TextRange, &str)>) -> String {
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start()));
    let mut res = text.to_owned();
    for (range, replacement) in edits {
        res.replace_range(std::ops::Range::<usize>::from(range), replacement);
    }
    res
}

pub(super) fn add_import(
    ctx: &Context<'_>,
    raw: &str,
    import_stmt: &str,
) -> Result<Value, ToolError> {
    let (_, text) = ctx.read(raw)?;
    let res = match add_import_to(text, import_stmt) {
        Ok((source, added)) => CstAddImportResult {
            success: true,
            import_added: added,
            modified_source: Some(source),
            parse_error: None,
        },
        Err(why) => CstAddImportResult {
            success: false,
            import_added: false,
            modified_source: None,
            parse_error: Some(why),
        },
    };
    to_value(res)
}

/// One name an import binds: `module` (`from` imports: with its leading dots), the imported
/// `name` (`None` for `import module`), and its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Imported {
    module: String,
    name: Option<String>,
    asname: Option<String>,
}

fn module_of(level: u32, module: Option<&Identifier>) -> String {
    let dots = ".".repeat(usize::try_from(level).unwrap_or(0));
    format!("{dots}{}", module.map_or("", Identifier::as_str))
}

/// The names `stmt` imports; `None` for other statements.
fn imports_of(stmt: &Stmt) -> Option<Vec<Imported>> {
    match stmt {
        Stmt::Import(import) => Some(
            import
                .names
                .iter()
                .map(|alias| Imported {
                    module: alias.name.to_string(),
                    name: None,
                    asname: alias.asname.as_ref().map(ToString::to_string),
                })
                .collect(),
        ),
        Stmt::ImportFrom(import) => {
            let module = module_of(import.level, import.module.as_ref());
            Some(
                import
                    .names
                    .iter()
                    .map(|alias| Imported {
                        module: module.clone(),
                        name: Some(alias.name.to_string()),
                        asname: alias.asname.as_ref().map(ToString::to_string),
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Adds what `import_stmt` imports and `text` does not yet import at module level: a name
/// joins an existing `from module import …` of the same module, anything else becomes a
/// new statement after the last top-level import (after the docstring when there is none).
fn add_import_to(text: String, import_stmt: &str) -> Result<(String, bool), String> {
    let stmt = import_stmt.trim();
    let wanted = super::nesting::check(stmt)
        .ok()
        .and_then(|()| ruff_python_parser::parse_module(stmt).ok())
        .and_then(|parsed| match parsed.syntax().body.as_slice() {
            [stmt] => imports_of(stmt),
            _ => None,
        })
        .ok_or_else(|| {
            format!("Import must be one 'import …' or 'from … import …' statement: '{import_stmt}'")
        })?;
    let file = SourceFile::parse(text)?;
    let existing: Vec<(&Stmt, Vec<Imported>)> = file
        .body()
        .iter()
        .filter_map(|stmt| imports_of(stmt).map(|names| (stmt, names)))
        .collect();
    let present = |want: &Imported| {
        existing.iter().flat_map(|(_, names)| names).any(|have| {
            have == want
                || (want.name.is_some()
                    && have.module == want.module
                    && have.name.as_deref() == Some("*"))
        })
    };
    let missing: Vec<&Imported> = wanted.iter().filter(|want| !present(want)).collect();
    if missing.is_empty() {
        return Ok((file.text.clone(), false));
    }
    let mut edits: Vec<(TextRange, String)> = Vec::new();
    let mut new_lines: Vec<String> = Vec::new();
    for want in missing {
        let spelled = match &want.asname {
            Some(asname) => format!(
                "{} as {asname}",
                want.name.as_deref().unwrap_or(&want.module)
            ),
            None => want.name.clone().unwrap_or_else(|| want.module.clone()),
        };
        let joinable = want.name.as_ref().and_then(|_| {
            existing.iter().find_map(|(stmt, names)| match stmt {
                Stmt::ImportFrom(import)
                    if names.iter().all(|have| have.module == want.module)
                        && !names.iter().any(|have| have.name.as_deref() == Some("*")) =>
                {
                    import.names.last().map(|alias| alias.range.end())
                }
                _ => None,
            })
        });
        match joinable {
            Some(end) => edits.push((TextRange::empty(end), format!(", {spelled}"))),
            None if want.name.is_some() => {
                new_lines.push(format!("from {} import {spelled}", want.module));
            }
            None => new_lines.push(format!("import {spelled}")),
        }
    }
    if !new_lines.is_empty() {
        let anchor = existing.last().map(|(stmt, _)| stmt.range()).or_else(|| {
            file.body()
                .first()
                .filter(|stmt| ruff_python_ast::helpers::is_docstring_stmt(stmt))
                .map(Ranged::range)
        });
        let block = new_lines.join("\n");
        let edit = match anchor {
            Some(range) => {
                let line_end = file.text[usize::from(range.end())..]
                    .find('\n')
                    .map(|idx| usize::from(range.end()) + idx + 1);
                match line_end {
                    Some(at) => (at, format!("{block}\n")),
                    None => (file.text.len(), format!("\n{block}\n")),
                }
            }
            None => (0, format!("{block}\n")),
        };
        let at = TextSize::try_from(edit.0).unwrap_or_default();
        edits.push((TextRange::empty(at), edit.1));
    }
    let edits = edits
        .iter()
        .map(|(range, text)| (*range, text.as_str()))
        .collect();
    Ok((apply(&file.text, edits), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_add(before: &str, stmt: &str, expect: &str) {
        let (after, added) = add_import_to(before.to_owned(), stmt).unwrap();
        assert_eq!(after, expect);
        assert_eq!(added, before != expect);
    }

    #[test]
    fn add_import_keeps_everything_else() {
        check_add(
            "\"\"\"Doc.\"\"\"\n\n# keep me\nimport os  # and me\n\nx = 1\n",
            "from typing import Optional",
            "\"\"\"Doc.\"\"\"\n\n# keep me\nimport os  # and me\nfrom typing import Optional\n\nx = 1\n",
        );
        check_add(
            "from typing import List\n\nx: List[int] = []\n",
            "from typing import Optional",
            "from typing import List, Optional\n\nx: List[int] = []\n",
        );
        check_add("import os\n", "import os", "import os\n");
        check_add(
            "\"\"\"Doc.\"\"\"\nx = 1\n",
            "import os",
            "\"\"\"Doc.\"\"\"\nimport os\nx = 1\n",
        );
        check_add("x = 1\n", "import os", "import os\nx = 1\n");
        check_add("from a import *\n", "from a import b", "from a import *\n");
    }

    #[test]
    fn rename_touches_names_only() {
        let file = SourceFile::parse(
            "class Square:  # Square stays in comments\n    pass\n\ns = Square()\nlabel = \"Square\"\nimport geometry.Square\n"
                .to_owned(),
        )
        .unwrap();
        let ranges = name_ranges(&file, "Square");
        assert_eq!(ranges.len(), 3);
        let edits = ranges.iter().map(|range| (*range, "Box")).collect();
        assert_eq!(
            apply(&file.text, edits),
            "class Box:  # Square stays in comments\n    pass\n\ns = Box()\nlabel = \"Square\"\nimport geometry.Box\n"
        );
    }

    #[test]
    fn patterns_find_libcst_nodes() {
        let file = SourceFile::parse(
            "from pkg.dom import html\n\n@component\nclass A:\n    def f(self):\n        return html(x)\n"
                .to_owned(),
        )
        .unwrap();
        let found = |pattern: &str| find(&file, &Pattern::parse(pattern).unwrap());
        let calls = found("call:html");
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].line, calls[0].column), (6, 15));
        assert_eq!(calls[0].code_snippet, "html(x)");
        assert_eq!(found("decorator:component")[0].line, 3);
        assert_eq!(found("import:dom").len(), 1);
        assert_eq!(found("FunctionDef")[0].code_snippet, "def f(self):");
        assert!(Pattern::parse("Nope").is_err());
    }
}
