//! Training-snippet coverage: how many of the Code Mode snippets in the Phase 22 training
//! data pass the sandbox's checks and compile, and how many use only names the sandbox
//! provides. `docs/sandbox.md` records the figures; the e2e test keeps them above 98%.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use anyhow::Context;
use rustpython_vm::compiler::ast::{self, visitor::Visitor};

use super::validate;
use crate::tools::Tool;

/// The figures, and why each snippet that is not runnable is not.
#[derive(Debug, Clone, Default)]
pub struct CoverageReport {
    /// Code Mode snippets found (duplicates included, as the model saw them).
    pub total: usize,
    pub distinct: usize,
    /// Pass the pre-checks and AST validation, and compile.
    pub compiled: usize,
    /// Use only names the sandbox provides or the snippet binds itself.
    pub names_provided: usize,
    /// Both.
    pub runnable: usize,
    /// `(snippet's first line, reason)` for each distinct snippet that is not runnable.
    pub rest: Vec<(String, String)>,
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} snippets ({} distinct): {} compile, {} use only provided names, {} runnable ({:.1}%)",
            self.total,
            self.distinct,
            self.compiled,
            self.names_provided,
            self.runnable,
            100.0 * self.runnable as f64 / self.total.max(1) as f64
        )?;
        for (first_line, reason) in &self.rest {
            writeln!(f, "  {first_line}: {reason}")?;
        }
        Ok(())
    }
}

/// Every snippet inside `<parameter=code>` in the `*.jsonl` files of `dir`.
pub fn training_snippets(dir: &Path) -> anyhow::Result<Vec<String>> {
    const OPEN: &str = "<parameter=code>\n";
    const CLOSE: &str = "\n</parameter>";
    let mut res = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let row: serde_json::Value =
                serde_json::from_str(line).context("a training row is not JSON")?;
            let mut rest = row["text"].as_str().unwrap_or("");
            while let Some(start) = rest.find(OPEN) {
                let after = &rest[start + OPEN.len()..];
                let Some(end) = after.find(CLOSE) else { break };
                res.push(after[..end].to_owned());
                rest = &after[end..];
            }
        }
    }
    Ok(res)
}

/// Checks every training snippet in `dir`.
pub fn report(dir: &Path) -> anyhow::Result<CoverageReport> {
    let snippets = training_snippets(dir)?;
    let mut res = CoverageReport {
        total: snippets.len(),
        ..CoverageReport::default()
    };
    let distinct: HashSet<&str> = snippets.iter().map(String::as_str).collect();
    res.distinct = distinct.len();
    let mut reported = HashSet::new();
    for snippet in &snippets {
        let (compiled, names) = check_snippet(snippet);
        res.compiled += usize::from(compiled.is_ok());
        res.names_provided += usize::from(names.is_ok());
        if compiled.is_ok() && names.is_ok() {
            res.runnable += 1;
        } else if reported.insert(snippet.as_str()) {
            let reason = compiled.err().or(names.err()).unwrap_or_default();
            let first_line = snippet
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            res.rest.push((first_line, reason));
        }
    }
    Ok(res)
}

fn check_snippet(code: &str) -> (Result<(), String>, Result<(), String>) {
    let parsed = match validate::precheck(code)
        .map_err(|err| err.to_string())
        .and_then(|()| {
            rustpython_vm::compiler::parser::parse_module(code)
                .map_err(|err| format!("SyntaxError: {}", err.error))
        }) {
        Ok(parsed) => parsed,
        Err(err) => return (Err(err.clone()), Err(err)),
    };
    let compiled = validate::validate_module(parsed.syntax(), code)
        .map_err(|err| err.to_string())
        .and_then(|()| {
            rustpython_vm::compiler::compile(
                code,
                rustpython_vm::compiler::Mode::Exec,
                "<snippet>",
                Default::default(),
            )
            .map(|_| ())
            .map_err(|err| format!("SyntaxError: {err}"))
        });
    let mut names = Names::default();
    for stmt in &parsed.syntax().body {
        names.visit_stmt(stmt);
    }
    let provided: HashSet<&str> = super::worker::ALLOWED_BUILTINS
        .iter()
        .copied()
        .chain(["print", "type", "json", "True", "False", "None"])
        .chain(Tool::all().map(Tool::name))
        .collect();
    let mut missing: Vec<&String> = names
        .loaded
        .iter()
        .filter(|name| !provided.contains(name.as_str()) && !names.bound.contains(*name))
        .collect();
    missing.sort();
    missing.dedup();
    let names_ok = if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "uses names the sandbox does not provide: {missing:?}"
        ))
    };
    (compiled, names_ok)
}

/// Names read and names bound anywhere in a snippet (scopes are not told apart: a name
/// bound anywhere counts as provided, which is enough for a coverage figure).
#[derive(Default)]
struct Names {
    loaded: Vec<String>,
    bound: HashSet<String>,
}

impl<'a> Visitor<'a> for Names {
    fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
        match stmt {
            ast::Stmt::FunctionDef(def) => {
                self.bound.insert(def.name.to_string());
            }
            ast::Stmt::ClassDef(def) => {
                self.bound.insert(def.name.to_string());
            }
            ast::Stmt::Import(import) => {
                for alias in &import.names {
                    let name = alias.asname.as_ref().unwrap_or(&alias.name);
                    self.bound.insert(name.to_string());
                }
            }
            ast::Stmt::ImportFrom(import) => {
                for alias in &import.names {
                    let name = alias.asname.as_ref().unwrap_or(&alias.name);
                    self.bound.insert(name.to_string());
                }
            }
            ast::Stmt::Try(try_stmt) => {
                for handler in &try_stmt.handlers {
                    let ast::ExceptHandler::ExceptHandler(handler) = handler;
                    if let Some(name) = &handler.name {
                        self.bound.insert(name.to_string());
                    }
                }
            }
            _ => {}
        }
        ast::visitor::walk_stmt(self, stmt);
    }

    fn visit_parameter(&mut self, parameter: &'a ast::Parameter) {
        self.bound.insert(parameter.name.to_string());
        ast::visitor::walk_parameter(self, parameter);
    }

    fn visit_expr(&mut self, expr: &'a ast::Expr) {
        if let ast::Expr::Name(name) = expr {
            if name.ctx.is_load() {
                self.loaded.push(name.id.to_string());
            } else {
                self.bound.insert(name.id.to_string());
            }
        }
        ast::visitor::walk_expr(self, expr);
    }
}
