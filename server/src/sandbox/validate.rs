//! Checks on a snippet before it runs. First size and nesting pre-checks on its tokens (the
//! parser and compiler recurse, and 100k nested brackets overflow the native stack); then the
//! parsed AST against an allowlist:
//!
//! * **syntax**: statements and expressions a snippet needs (assignments, loops, `if`,
//!   `try`, functions and lambdas, comprehensions, f-strings, `import json`); no classes,
//!   decorators, generators (`yield`), async code, `with`, `match`, type parameters or type
//!   aliases. Every kind is named in a `match` with no catch-all, so a kind the parser gains
//!   is refused until someone decides otherwise.
//! * **names**: every name read is provided (`allowlist::name_provided`) or bound by the
//!   snippet itself; no name starting with `__` is read or bound.
//! * **attributes**: read only, and only those in `allowlist::attribute_allowed`; never
//!   assigned or deleted (so builtins, tool functions and the `json` module cannot be changed).
//! * **imports**: `json` (and its public names) only.
//!
//! A refusal is the Python exception the snippet would have seen, naming the rule:
//! `PermissionError` for syntax and attributes, `NameError` for names, `ImportError` for
//! imports; `SyntaxError` for the pre-checks.

use std::collections::HashSet;

use rustpython_vm::compiler::ast::{self, visitor::Visitor};

use super::PyError;
use super::allowlist;

/// Largest snippet accepted (bytes). The longest training snippet is a few KB.
pub(crate) const MAX_SOURCE_BYTES: usize = 512 * 1024;

fn syntax_error(message: String, line: Option<u32>) -> PyError {
    PyError {
        type_name: "SyntaxError".to_owned(),
        message,
        line,
    }
}

/// The size check, then the nesting CPython itself accepts, measured on the tokens of ruff's
/// lexer, which RustPython's parser is built on (`typed::check_python_nesting`; the snippet as
/// a whole is refused, so the error names no line).
pub(crate) fn precheck(code: &str) -> Result<(), PyError> {
    if code.len() > MAX_SOURCE_BYTES {
        return Err(syntax_error(
            format!(
                "snippet too large: {} bytes (limit {MAX_SOURCE_BYTES})",
                code.len()
            ),
            None,
        ));
    }
    crate::typed::check_python_nesting(code).map_err(|message| syntax_error(message, None))
}

/// The names a snippet reads without binding them and the names it binds (scopes are not
/// told apart), as far as the allowlist walk got.
#[derive(Debug, Default)]
pub(crate) struct SnippetNames {
    pub(crate) free: Vec<String>,
    pub(crate) bound: HashSet<String>,
}

fn walk<'s>(module: &ast::ModModule, source: &'s str) -> Checker<'s> {
    let mut checker = Checker {
        source,
        error: None,
        bound: HashSet::new(),
        loaded: Vec::new(),
    };
    checker.visit_body(&module.body);
    checker
}

/// The names of a snippet, for the coverage figures.
pub(crate) fn snippet_names(module: &ast::ModModule, source: &str) -> SnippetNames {
    let checker = walk(module, source);
    let free = checker
        .loaded
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !checker.bound.contains(name))
        .collect();
    SnippetNames {
        free,
        bound: checker.bound,
    }
}

/// Validates the module's AST against the allowlist; `source` gives line numbers.
pub(crate) fn validate_module(module: &ast::ModModule, source: &str) -> Result<(), PyError> {
    let checker = walk(module, source);
    if let Some(err) = checker.error {
        return Err(err);
    }
    // Scopes are not told apart: a name bound anywhere may be read anywhere (a wrong guess
    // is a NameError at run time, as in Python).
    let unknown = checker
        .loaded
        .iter()
        .find(|(name, _)| !allowlist::name_provided(name) && !checker.bound.contains(name));
    match unknown {
        Some((name, offset)) => Err(PyError {
            type_name: "NameError".to_owned(),
            message: format!(
                "name '{name}' is not defined (the sandbox provides a fixed set of builtins, \
                 the tool functions and json)"
            ),
            line: line_of(source, *offset),
        }),
        None => Ok(()),
    }
}

fn line_of(source: &str, offset: usize) -> Option<u32> {
    let offset = offset.min(source.len());
    let line = source.as_bytes()[..offset]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1;
    u32::try_from(line).ok()
}

struct Checker<'a> {
    source: &'a str,
    error: Option<PyError>,
    /// Names the snippet binds (assignments, parameters, functions, imports, `except … as`).
    bound: HashSet<String>,
    /// Names the snippet reads, with their offsets, in source order.
    loaded: Vec<(String, usize)>,
}

impl Checker<'_> {
    /// Refuses a kind of syntax the sandbox does not run; `what` ends in "is" or "are".
    fn refuse_syntax(&mut self, what: &str, at: usize) {
        self.refuse_syntax_because(what, "", at);
    }

    fn refuse_syntax_because(&mut self, what: &str, why: &str, at: usize) {
        if self.error.is_none() {
            self.error = Some(PyError {
                type_name: "PermissionError".to_owned(),
                message: format!("{what} not allowed in the sandbox{why}"),
                line: line_of(self.source, at),
            });
        }
    }

    fn refuse_import(&mut self, message: String, at: usize) {
        if self.error.is_none() {
            self.error = Some(PyError {
                type_name: "ImportError".to_owned(),
                message,
                line: line_of(self.source, at),
            });
        }
    }

    /// A name the snippet binds: never one of the interpreter's own.
    fn bind(&mut self, name: &str, at: usize) {
        if allowlist::name_reserved(name) {
            self.reserved(name, at);
        }
        self.bound.insert(name.to_owned());
    }

    fn reserved(&mut self, name: &str, at: usize) {
        if self.error.is_none() {
            self.error = Some(PyError {
                type_name: "NameError".to_owned(),
                message: format!(
                    "name '{name}' is not available in the sandbox (names starting with '__' \
                     belong to the interpreter)"
                ),
                line: line_of(self.source, at),
            });
        }
    }

    fn check_import(&mut self, module: &str, at: usize) {
        if module != allowlist::MODULE {
            self.refuse_import(
                format!(
                    "import of '{module}' is not allowed in the sandbox: no modules are \
                     available except json (already imported); use the provided tool \
                     functions instead"
                ),
                at,
            );
        }
    }
}

impl<'a> Visitor<'a> for Checker<'_> {
    fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
        if self.error.is_some() {
            return;
        }
        use ast::Stmt;
        match stmt {
            Stmt::FunctionDef(def) => {
                let at = def.range.start().to_usize();
                if def.is_async {
                    self.refuse_syntax("async functions are", at);
                } else if !def.decorator_list.is_empty() {
                    self.refuse_syntax("decorators are", at);
                } else if def.type_params.is_some() {
                    self.refuse_syntax("type parameters are", at);
                }
                self.bind(def.name.as_str(), at);
            }
            Stmt::ClassDef(def) => self.refuse_syntax_because(
                "class definitions are",
                ": snippets use functions only",
                def.range.start().to_usize(),
            ),
            Stmt::For(stmt_for) if stmt_for.is_async => {
                self.refuse_syntax("async for loops are", stmt_for.range.start().to_usize());
            }
            Stmt::Try(stmt_try) if stmt_try.is_star => {
                self.refuse_syntax("except* clauses are", stmt_try.range.start().to_usize());
            }
            Stmt::With(with) => {
                self.refuse_syntax("with statements are", with.range.start().to_usize())
            }
            Stmt::Match(stmt_match) => {
                self.refuse_syntax("match statements are", stmt_match.range.start().to_usize())
            }
            Stmt::TypeAlias(alias) => {
                self.refuse_syntax("type alias statements are", alias.range.start().to_usize())
            }
            Stmt::IpyEscapeCommand(command) => self.refuse_syntax(
                "IPython escape commands are",
                command.range.start().to_usize(),
            ),
            Stmt::Import(import) => {
                let at = import.range.start().to_usize();
                for alias in &import.names {
                    self.check_import(alias.name.as_str(), at);
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name);
                    self.bind(bound.as_str(), at);
                }
            }
            Stmt::ImportFrom(import) => {
                let at = import.range.start().to_usize();
                let module = import.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                if import.level > 0 || module.is_empty() {
                    self.refuse_import(
                        "relative imports are not allowed in the sandbox".to_owned(),
                        at,
                    );
                }
                self.check_import(module, at);
                for alias in &import.names {
                    let name = alias.name.as_str();
                    if !allowlist::JSON_NAMES.contains(&name) {
                        self.refuse_import(
                            format!(
                                "cannot import name '{name}' from 'json' (the sandbox's json \
                                 has {})",
                                allowlist::JSON_NAMES.join(", ")
                            ),
                            at,
                        );
                    }
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name);
                    self.bind(bound.as_str(), at);
                }
            }
            Stmt::Global(global) => {
                for name in &global.names {
                    self.bind(name.as_str(), global.range.start().to_usize());
                }
            }
            Stmt::Nonlocal(nonlocal) => {
                for name in &nonlocal.names {
                    self.bind(name.as_str(), nonlocal.range.start().to_usize());
                }
            }
            Stmt::For(_)
            | Stmt::Try(_)
            | Stmt::Return(_)
            | Stmt::Delete(_)
            | Stmt::Assign(_)
            | Stmt::AugAssign(_)
            | Stmt::AnnAssign(_)
            | Stmt::While(_)
            | Stmt::If(_)
            | Stmt::Raise(_)
            | Stmt::Assert(_)
            | Stmt::Expr(_)
            | Stmt::Pass(_)
            | Stmt::Break(_)
            | Stmt::Continue(_) => {}
        }
        if self.error.is_none() {
            ast::visitor::walk_stmt(self, stmt);
        }
    }

    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        if self.error.is_some() {
            return;
        }
        use ast::Expr;
        match expr {
            Expr::Attribute(attribute) => {
                let at = attribute.range.start().to_usize();
                let name = attribute.attr.as_str();
                if !attribute.ctx.is_load() {
                    self.refuse_syntax_because(
                        "assigning or deleting attributes is",
                        ": builtins, tool functions and json cannot be changed",
                        at,
                    );
                } else if !allowlist::attribute_allowed(name) {
                    let hint = match name {
                        "format" | "format_map" => "; use an f-string",
                        _ => "",
                    };
                    if self.error.is_none() {
                        self.error = Some(PyError {
                            type_name: "PermissionError".to_owned(),
                            message: format!(
                                "attribute '.{name}' is not allowed in the sandbox: only common \
                                 str, list, dict and set methods, json's functions and the \
                                 fields of tool results can be used{hint}"
                            ),
                            line: line_of(self.source, at),
                        });
                    }
                }
            }
            Expr::Name(name) => {
                let at = name.range.start().to_usize();
                let id = name.id.as_str();
                if name.ctx.is_load() {
                    if allowlist::name_reserved(id) {
                        self.reserved(id, at);
                    }
                    self.loaded.push((id.to_owned(), at));
                } else {
                    self.bind(id, at);
                }
            }
            Expr::Await(node) => {
                self.refuse_syntax("async code is", node.range.start().to_usize());
            }
            Expr::Yield(node) => {
                self.refuse_syntax("generators (yield) are", node.range.start().to_usize())
            }
            Expr::YieldFrom(node) => {
                self.refuse_syntax("generators (yield from) are", node.range.start().to_usize())
            }
            Expr::TString(node) => {
                self.refuse_syntax("template strings are", node.range.start().to_usize());
            }
            Expr::IpyEscapeCommand(node) => {
                self.refuse_syntax("IPython escape commands are", node.range.start().to_usize())
            }
            Expr::BoolOp(_)
            | Expr::Named(_)
            | Expr::BinOp(_)
            | Expr::UnaryOp(_)
            | Expr::Lambda(_)
            | Expr::If(_)
            | Expr::Dict(_)
            | Expr::Set(_)
            | Expr::ListComp(_)
            | Expr::SetComp(_)
            | Expr::DictComp(_)
            | Expr::Generator(_)
            | Expr::Compare(_)
            | Expr::Call(_)
            | Expr::FString(_)
            | Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::NumberLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_)
            | Expr::Subscript(_)
            | Expr::Starred(_)
            | Expr::List(_)
            | Expr::Tuple(_)
            | Expr::Slice(_) => {}
        }
        if self.error.is_none() {
            ast::visitor::walk_expr(self, expr);
        }
    }

    fn visit_comprehension(&mut self, comprehension: &'a ast::Comprehension) {
        if comprehension.is_async {
            self.refuse_syntax(
                "async comprehensions are",
                comprehension.range.start().to_usize(),
            );
            return;
        }
        ast::visitor::walk_comprehension(self, comprehension);
    }

    fn visit_except_handler(&mut self, handler: &'a ast::ExceptHandler) {
        let ast::ExceptHandler::ExceptHandler(inner) = handler;
        if let Some(name) = &inner.name {
            self.bind(name.as_str(), inner.range.start().to_usize());
        }
        ast::visitor::walk_except_handler(self, handler);
    }

    fn visit_parameter(&mut self, parameter: &'a ast::Parameter) {
        self.bind(parameter.name.as_str(), parameter.range.start().to_usize());
        ast::visitor::walk_parameter(self, parameter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(code: &str, expect: Option<&str>) {
        let res = precheck(code).and_then(|()| {
            let parsed = rustpython_vm::compiler::parser::parse_module(code)
                .map_err(|err| syntax_error(err.to_string(), Some(1)))?;
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
        check("from json import loads as parse\nprint(parse('1'))", None);
        check("x = '__class__'\nprint(x)", None);
        check("print(\"((((\" * 500)", None);
        check(
            "try:\n    pass\nexcept Exception as e:\n    print(e.args)",
            None,
        );
        check(
            "def f(a, *rest, k=1, **kw):\n    return [x for x in rest if x]\nprint(f(1))",
            None,
        );
        check("total = 0\nfor _ in range(3):\n    total += 1", None);
        check("r = ruff_check('src')\nprint(r.violation_count)", None);
        check("print(f'{1!r:>4}')", None);
        check("d = {}\nd['k'] = 1\ndel d['k']", None);
    }

    #[test]
    fn syntax_outside_the_allowlist_is_refused() {
        for code in [
            "class A:\n    pass",
            "def g():\n    yield 1",
            "g = (lambda: (yield))",
            "async def f():\n    pass",
            "with x:\n    pass",
            "match 1:\n    case int(real=r):\n        pass",
            "@print\ndef f():\n    pass",
            "def f[T](x):\n    return x",
            "type X = int",
            "read_file.x = 1",
            "del json.loads",
            "print(json.loads.__self__)",
            "'{0.__class__}'.format(0)",
            "'{a}'.format_map({})",
            "b''.decode('rot13')",
            "(x for x in []).gi_frame",
        ] {
            check(code, Some("PermissionError"));
        }
    }

    #[test]
    fn names_outside_the_allowlist_are_refused() {
        for code in [
            "type(0)",
            "getattr(0, 'real')",
            "print(__builtins__)",
            "__import__('os')",
            "print(__name__)",
            "eval('1')",
            "object",
            "__x = 1",
            "def f(__a):\n    pass",
            "import json as __j",
        ] {
            check(code, Some("NameError"));
        }
    }

    #[test]
    fn imports_outside_the_allowlist_are_refused() {
        for code in [
            "import os",
            "from os import path",
            "import json.decoder",
            "from . import x",
            "from json import *",
            "from json import decoder",
            "def f():\n    import sys",
        ] {
            check(code, Some("ImportError"));
        }
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
        // Brackets inside f-strings' replacement fields nest too: a scan that skipped strings
        // let them through to the parser.
        check(
            &format!("x = f\"{{{}1{}}}\"", "(".repeat(5_000), ")".repeat(5_000)),
            Some("SyntaxError"),
        );
        check(
            &format!("x = f\"{{{}1}}\"", "-".repeat(5_000)),
            Some("SyntaxError"),
        );
    }
}
