//! `ruff_check(path)` → `RuffResult`, from `ruff check --output-format json`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Context;
use crate::tools::Program;
use crate::workspace::ToolError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct RuffViolation {
    pub(super) file: String,
    pub(super) line: u64,
    pub(super) column: u64,
    pub(super) code: String,
    pub(super) message: String,
    pub(super) fixable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct RuffResult {
    pub(super) success: bool,
    pub(super) violation_count: usize,
    pub(super) fixable_count: usize,
    pub(super) violations: Vec<RuffViolation>,
    pub(super) parse_error: Option<String>,
}

pub(super) fn check(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let target = ctx.existing(raw)?;
    // `--no-cache`: a check leaves nothing behind in the user's workspace.
    let args = [
        "check",
        "--output-format",
        "json",
        "--no-cache",
        "--exit-zero",
        "--",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([ctx.program_arg(&target)])
    .collect::<Vec<_>>();
    let out = ctx.run(Program::Ruff, &args, ctx.root())?;
    let parsed = match out.exit_code {
        // `--exit-zero`: any other exit is ruff failing (a bad configuration, say).
        Some(0) => parse(&out.stdout, &|file| ctx.shown(Path::new(file))),
        code => Err(format!("exit code {code:?}")),
    };
    let res = parsed.unwrap_or_else(|why| RuffResult {
        success: false,
        violation_count: 0,
        fixable_count: 0,
        violations: Vec::new(),
        parse_error: Some(super::unreadable_output(Program::Ruff, &out, &why)),
    });
    Ok(serde_json::to_value(res).unwrap_or_default())
}

#[derive(Deserialize)]
struct JsonDiagnostic {
    code: Option<String>,
    filename: String,
    location: JsonLocation,
    message: String,
    fix: Option<JsonFix>,
}

#[derive(Deserialize)]
struct JsonLocation {
    row: u64,
    column: u64,
}

#[derive(Deserialize)]
struct JsonFix {
    applicability: String,
}

/// Parses ruff's JSON report. A fix counts as fixable when `ruff check --fix` would apply it
/// (applicability `safe`), as the `[*]` marker of ruff's text output does.
pub(super) fn parse(stdout: &str, relative: &dyn Fn(&str) -> String) -> Result<RuffResult, String> {
    let diagnostics: Vec<JsonDiagnostic> = serde_json::from_str(stdout.trim())
        .map_err(|err| format!("not ruff's JSON report: {err}"))?;
    let violations: Vec<RuffViolation> = diagnostics
        .into_iter()
        .map(|diag| RuffViolation {
            file: relative(&diag.filename),
            line: diag.location.row,
            column: diag.location.column,
            // Syntax errors have no rule code.
            code: diag.code.unwrap_or_else(|| "syntax-error".to_owned()),
            message: diag.message,
            fixable: diag.fix.is_some_and(|fix| fix.applicability == "safe"),
        })
        .collect();
    let fixable_count = violations.iter().filter(|v| v.fixable).count();
    Ok(RuffResult {
        success: violations.is_empty(),
        violation_count: violations.len(),
        fixable_count,
        violations,
        parse_error: None,
    })
}
