//! Checks on a snippet before it runs: size and nesting pre-checks on the raw text (cheap,
//! no parser: the parser and compiler recurse, and 100k nested brackets overflow the native
//! stack), then a walk over the parsed AST that refuses imports other than `json`, dunder
//! names, private attributes and the attributes that lead to frames, code objects and
//! generator internals.

use rustpython_vm::compiler::ast::{self, visitor::Visitor};

use super::PyError;

/// Largest snippet accepted (bytes). The longest training snippet is a few KB.
pub(crate) const MAX_SOURCE_BYTES: usize = 512 * 1024;
/// Deepest bracket nesting accepted (CPython's parser stops at 200).
pub(crate) const MAX_BRACKET_DEPTH: usize = 100;
/// Deepest indentation accepted, in levels (CPython stops at 100).
pub(crate) const MAX_INDENT_LEVELS: usize = 100;
/// Most operators in one logical line: a long `a+a+...` chain nests as deep as it is long.
pub(crate) const MAX_LINE_OPERATORS: usize = 5_000;

/// The import statements a snippet may use (the modules are pre-bound anyway).
pub(crate) const ALLOWED_IMPORTS: &[&str] = &["json"];

fn syntax_error(message: String, line: usize) -> PyError {
    PyError {
        type_name: "SyntaxError".to_owned(),
        message,
        line: u32::try_from(line).ok(),
    }
}

/// Size and depth checks on the raw source, outside string literals and comments.
pub(crate) fn precheck(code: &str) -> Result<(), PyError> {
    if code.len() > MAX_SOURCE_BYTES {
        return Err(syntax_error(
            format!(
                "snippet too large: {} bytes (limit {MAX_SOURCE_BYTES})",
                code.len()
            ),
            1,
        ));
    }
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut operators = 0usize;
    let mut at_line_start = true;
    let mut indent = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let byte = bytes[i];
        if at_line_start {
            match byte {
                b' ' => {
                    indent += 1;
                    i += 1;
                    continue;
                }
                b'\t' => {
                    indent += 8;
                    i += 1;
                    continue;
                }
                _ => {
                    // A tab or 4 spaces per level is generous; CPython counts levels.
                    if depth == 0 && indent / 2 > MAX_INDENT_LEVELS * 2 {
                        return Err(syntax_error(
                            "too many levels of indentation".to_owned(),
                            line,
                        ));
                    }
                    at_line_start = false;
                }
            }
        }
        match byte {
            b'\n' => {
                line += 1;
                if depth == 0 {
                    operators = 0;
                }
                at_line_start = true;
                indent = 0;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' => {
                let triple = i + 2 < bytes.len() && bytes[i + 1] == byte && bytes[i + 2] == byte;
                i += if triple { 3 } else { 1 };
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'\n' => line += 1,
                        quote if quote == byte => {
                            if !triple {
                                break;
                            }
                            if i + 2 < bytes.len() && bytes[i + 1] == byte && bytes[i + 2] == byte {
                                i += 2;
                                break;
                            }
                        }
                        _ => {}
                    }
                    if !triple && i < bytes.len() && bytes[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BRACKET_DEPTH {
                    return Err(syntax_error("too many nested parentheses".to_owned(), line));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'@' | b'&' | b'|' | b'^' | b'~' | b'<' | b'>'
            | b'.' | b',' => {
                operators += 1;
                if operators > MAX_LINE_OPERATORS {
                    return Err(syntax_error(
                        "expression too long or too deeply nested".to_owned(),
                        line,
                    ));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Validates the module's AST; `source` gives line numbers.
pub(crate) fn validate_module(module: &ast::ModModule, source: &str) -> Result<(), PyError> {
    let mut checker = Checker {
        source,
        error: None,
    };
    for stmt in &module.body {
        checker.visit_stmt(stmt);
        if checker.error.is_some() {
            break;
        }
    }
    match checker.error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Attribute names a snippet may not use, besides every name that starts with `_`: they
/// reach frames, code objects and the interpreter's internals.
fn attribute_refused(name: &str) -> bool {
    const PREFIXES: &[&str] = &["_", "gi_", "cr_", "ag_", "f_", "tb_", "co_"];
    const NAMES: &[&str] = &["mro", "with_traceback"];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix)) || NAMES.contains(&name)
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

struct Checker<'a> {
    source: &'a str,
    error: Option<PyError>,
}

impl Checker<'_> {
    fn line_of(&self, offset: usize) -> Option<u32> {
        let offset = offset.min(self.source.len());
        let line = self.source.as_bytes()[..offset]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1;
        u32::try_from(line).ok()
    }

    fn refuse(&mut self, type_name: &str, message: String, offset: usize) {
        if self.error.is_none() {
            let line = self.line_of(offset);
            self.error = Some(PyError {
                type_name: type_name.to_owned(),
                message,
                line,
            });
        }
    }

    fn check_import(&mut self, module: &str, offset: usize) {
        let top = module.split('.').next().unwrap_or(module);
        if !ALLOWED_IMPORTS.contains(&top) || module != top {
            self.refuse(
                "ImportError",
                format!(
                    "import of '{module}' is not allowed in the sandbox: no modules are available \
                     except json (already imported); use the provided tool functions instead"
                ),
                offset,
            );
        }
    }
}

impl<'a> Visitor<'a> for Checker<'_> {
    fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
        if self.error.is_some() {
            return;
        }
        match stmt {
            ast::Stmt::Import(import) => {
                for alias in &import.names {
                    self.check_import(alias.name.as_str(), import.range.start().to_usize());
                }
            }
            ast::Stmt::ImportFrom(import) => {
                let module = import
                    .module
                    .as_ref()
                    .map(|module| module.as_str())
                    .unwrap_or("");
                if import.level > 0 || module.is_empty() {
                    self.refuse(
                        "ImportError",
                        "relative imports are not allowed in the sandbox".to_owned(),
                        import.range.start().to_usize(),
                    );
                } else {
                    self.check_import(module, import.range.start().to_usize());
                }
            }
            ast::Stmt::FunctionDef(def) if is_dunder(def.name.as_str()) => {
                self.refuse(
                    "PermissionError",
                    format!(
                        "defining '{}' is not allowed in the sandbox",
                        def.name.as_str()
                    ),
                    def.range.start().to_usize(),
                );
            }
            _ => {}
        }
        ast::visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        if self.error.is_some() {
            return;
        }
        match expr {
            ast::Expr::Attribute(attribute) if attribute_refused(attribute.attr.as_str()) => {
                self.refuse(
                    "PermissionError",
                    format!(
                        "access to the attribute '{}' is not allowed in the sandbox",
                        attribute.attr.as_str()
                    ),
                    attribute.range.start().to_usize(),
                );
            }
            ast::Expr::Name(name) if is_dunder(name.id.as_str()) => {
                self.refuse(
                    "NameError",
                    format!("name '{}' is not defined", name.id.as_str()),
                    name.range.start().to_usize(),
                );
            }
            _ => {}
        }
        ast::visitor::walk_expr(self, expr);
    }

    fn visit_pattern_keyword(&mut self, keyword: &'a ast::PatternKeyword) {
        if attribute_refused(keyword.attr.as_str()) {
            self.refuse(
                "PermissionError",
                format!(
                    "access to the attribute '{}' is not allowed in the sandbox",
                    keyword.attr.as_str()
                ),
                keyword.range.start().to_usize(),
            );
        }
        ast::visitor::walk_pattern_keyword(self, keyword);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(code: &str, expect: Option<&str>) {
        let res = precheck(code).and_then(|()| {
            let parsed = rustpython_vm::compiler::parser::parse_module(code)
                .map_err(|err| syntax_error(err.to_string(), 1))?;
            validate_module(parsed.syntax(), code)
        });
        match (res, expect) {
            (Ok(()), None) => {}
            (Err(err), Some(expect)) => assert_eq!(err.type_name, expect, "{code}: {err}"),
            (res, expect) => panic!("{code}: got {res:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn ordinary_snippets_pass() {
        check("print(read_file('README.md'))", None);
        check("import json\nprint(json.dumps({'a': 1}))", None);
        check("x = '__class__'\nprint(x)", None);
        check("print(\"((((\" * 500)", None);
        check("try:\n    pass\nexcept Exception as e:\n    print(e)", None);
    }

    #[test]
    fn guards_refuse() {
        check("import os", Some("ImportError"));
        check("from os import path", Some("ImportError"));
        check("import json.decoder", Some("ImportError"));
        check("from . import x", Some("ImportError"));
        check(
            "().__class__.__base__.__subclasses__()",
            Some("PermissionError"),
        );
        check("print.__self__", Some("PermissionError"));
        check("x = (i for i in [])\nx.gi_frame", Some("PermissionError"));
        check("def f(): pass\nf.__globals__", Some("PermissionError"));
        check("print(__builtins__)", Some("NameError"));
        check("__import__('os')", Some("NameError"));
        check("def __del__(): pass", Some("PermissionError"));
        check(
            "match 1:\n    case int(_x=y): pass",
            Some("PermissionError"),
        );
    }

    #[test]
    fn depth_prechecks_refuse_before_the_parser() {
        check(&"(".repeat(100_000), Some("SyntaxError"));
        check(&format!("x = {}", "[".repeat(5_000)), Some("SyntaxError"));
        check(
            &format!("x = 1{}", "+1".repeat(10_000)),
            Some("SyntaxError"),
        );
        check(&"x".repeat(MAX_SOURCE_BYTES + 1), Some("SyntaxError"));
    }
}
