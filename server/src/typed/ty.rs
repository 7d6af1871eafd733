//! `typecheck(path)` → `TypeCheckResult`, from `ty check --output-format sarif`: ty's
//! standard machine-readable report, whose `level` keeps ty's own severity (`error`,
//! `warning`, `note`) where the GitLab format maps it onto another scale.
//!
//! When ty is not installed, or fails (a crash; a report that is not SARIF), mypy checks
//! instead, with its JSON lines (`-O json`), no cache (`--cache-dir=/dev/null`: nothing
//! written in the workspace) and no configuration file (`--config-file=`): a repository's
//! `mypy.ini`, `.mypy.ini`, `setup.cfg` or `pyproject.toml` names plugins, Python code mypy
//! imports, and checking a file must not run the repository's code (nor let it forge the
//! report). ty's exit code 2 (it rejects the repository's configuration or its arguments) is
//! reported, not handed to mypy: its answer would hide the broken configuration. The result's
//! `checker` says which ran.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Context;
use crate::tools::Program;
use crate::workspace::ToolError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct TypeCheckError {
    pub(super) file: String,
    pub(super) line: u64,
    pub(super) column: u64,
    pub(super) severity: String,
    pub(super) code: String,
    pub(super) message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct TypeCheckResult {
    pub(super) success: bool,
    pub(super) error_count: usize,
    pub(super) warning_count: usize,
    pub(super) errors: Vec<TypeCheckError>,
    pub(super) parse_error: Option<String>,
    /// The checker that ran: `ty`, or `mypy` (the fallback).
    pub(super) checker: &'static str,
}

impl TypeCheckResult {
    fn unreadable(program: Program, why: String) -> TypeCheckResult {
        TypeCheckResult {
            success: false,
            error_count: 0,
            warning_count: 0,
            errors: Vec::new(),
            parse_error: Some(why),
            checker: program.command(),
        }
    }

    fn from_errors(errors: Vec<TypeCheckError>, checker: Program) -> TypeCheckResult {
        let count = |severity: &str| errors.iter().filter(|e| e.severity == severity).count();
        let error_count = count("error");
        TypeCheckResult {
            success: error_count == 0,
            error_count,
            warning_count: count("warning"),
            errors,
            parse_error: None,
            checker: checker.command(),
        }
    }
}

pub(super) fn typecheck(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let target = ctx.existing(raw)?;
    let res = if super::installed(Program::Ty) {
        match run_ty(ctx, &target)? {
            Ok(res) => res,
            Err(why) if super::installed(Program::Mypy) => {
                tracing::warn!("typecheck: ty failed, mypy checks instead: {why}");
                run_mypy(ctx, &target)?
            }
            Err(why) => TypeCheckResult::unreadable(Program::Ty, why),
        }
    } else if super::installed(Program::Mypy) {
        run_mypy(ctx, &target)?
    } else {
        return Err(ToolError::new(
            "FileNotFoundError",
            format!(
                "ty is not installed ({}), nor is mypy ({})",
                Program::Ty.install_hint(),
                Program::Mypy.install_hint()
            ),
        ));
    };
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// ty's report (its refusal of a configuration included), or why it cannot be had and mypy
/// may answer instead.
fn run_ty(ctx: &Context<'_>, target: &Path) -> Result<Result<TypeCheckResult, String>, ToolError> {
    let args = [
        "check",
        "--output-format",
        "sarif",
        "--exit-zero",
        "--no-progress",
        "--color",
        "never",
        "--",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([ctx.program_arg(target)])
    .collect::<Vec<_>>();
    let out = ctx.run(Program::Ty, &args, ctx.root())?;
    let parsed = match out.exit_code {
        Some(0) => parse(&out.stdout, &|path| ctx.shown(path)),
        Some(2) => {
            let why = "exit code 2: ty rejects the configuration, mypy was not asked";
            let said = super::unreadable_output(Program::Ty, &out, why);
            return Ok(Ok(TypeCheckResult::unreadable(Program::Ty, said)));
        }
        code => Err(format!("exit code {code:?}")),
    };
    Ok(parsed.map_err(|why| super::unreadable_output(Program::Ty, &out, &why)))
}

/// mypy's report: exit code 0 (clean) or 1 (errors found) with JSON lines; 2 is a failure.
fn run_mypy(ctx: &Context<'_>, target: &Path) -> Result<TypeCheckResult, ToolError> {
    let args = [
        "-O",
        "json",
        "--cache-dir=/dev/null",
        // Empty: no configuration file at all, neither the workspace's nor the user's (mypy
        // documents the empty name for this), so no plugin of the repository is imported.
        "--config-file=",
        "--no-error-summary",
        "--hide-error-context",
        "--no-pretty",
        "--no-color-output",
        "--",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([ctx.program_arg(target)])
    .collect::<Vec<_>>();
    let out = ctx.run(Program::Mypy, &args, ctx.root())?;
    let parsed = match out.exit_code {
        Some(0 | 1) => parse_mypy(&out.stdout),
        code => Err(format!("exit code {code:?}")),
    };
    Ok(parsed.unwrap_or_else(|why| {
        TypeCheckResult::unreadable(
            Program::Mypy,
            super::unreadable_output(Program::Mypy, &out, &why),
        )
    }))
}

#[derive(Deserialize)]
struct Sarif {
    runs: Vec<SarifRun>,
}

#[derive(Deserialize)]
struct SarifRun {
    #[serde(default)]
    results: Vec<SarifResult>,
}

#[derive(Deserialize)]
struct SarifResult {
    #[serde(rename = "ruleId")]
    rule_id: Option<String>,
    level: Option<String>,
    message: SarifMessage,
    #[serde(default)]
    locations: Vec<SarifLocation>,
}

#[derive(Deserialize)]
struct SarifMessage {
    text: String,
}

#[derive(Deserialize)]
struct SarifLocation {
    #[serde(rename = "physicalLocation")]
    physical: SarifPhysical,
}

#[derive(Deserialize)]
struct SarifPhysical {
    #[serde(rename = "artifactLocation")]
    artifact: SarifArtifact,
    region: Option<SarifRegion>,
}

#[derive(Deserialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(Deserialize)]
struct SarifRegion {
    #[serde(rename = "startLine")]
    start_line: Option<u64>,
    #[serde(rename = "startColumn")]
    start_column: Option<u64>,
}

/// Parses ty's SARIF report; `relative` turns a file path into the one results show.
/// SARIF's `note` level is ty's `info`.
pub(super) fn parse(
    stdout: &str,
    relative: &dyn Fn(&Path) -> String,
) -> Result<TypeCheckResult, String> {
    let sarif: Sarif = serde_json::from_str(stdout.trim())
        .map_err(|err| format!("not ty's SARIF report: {err}"))?;
    let mut errors = Vec::new();
    for result in sarif.runs.into_iter().flat_map(|run| run.results) {
        let location = result.locations.first();
        let file = location
            .map(|loc| {
                let uri = &loc.physical.artifact.uri;
                match crate::uri::to_path(uri) {
                    Some(path) => relative(&path),
                    None => uri.clone(),
                }
            })
            .unwrap_or_default();
        let region = location.and_then(|loc| loc.physical.region.as_ref());
        errors.push(TypeCheckError {
            file,
            line: region.and_then(|r| r.start_line).unwrap_or(0),
            column: region.and_then(|r| r.start_column).unwrap_or(0),
            severity: match result.level.as_deref() {
                Some("note") => "info".to_owned(),
                Some(level) => level.to_owned(),
                None => "warning".to_owned(),
            },
            code: result.rule_id.unwrap_or_else(|| "unknown".to_owned()),
            message: result.message.text,
        });
    }
    Ok(TypeCheckResult::from_errors(errors, Program::Ty))
}

/// One line of mypy's `-O json` report.
#[derive(Deserialize)]
struct MypyLine {
    file: String,
    line: i64,
    /// 0-based; -1 when mypy has none.
    column: i64,
    message: String,
    hint: Option<String>,
    code: Option<String>,
    severity: String,
}

/// Parses mypy's JSON lines (paths are already relative to the workspace, where it runs).
/// Columns become 1-based like ty's; a hint joins its message; mypy's `note` is `info`.
pub(super) fn parse_mypy(stdout: &str) -> Result<TypeCheckResult, String> {
    let mut errors = Vec::new();
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        let item: MypyLine =
            serde_json::from_str(line).map_err(|err| format!("not mypy's JSON report: {err}"))?;
        errors.push(TypeCheckError {
            file: item.file,
            line: u64::try_from(item.line).unwrap_or(0),
            column: u64::try_from(item.column + 1).unwrap_or(0),
            severity: match item.severity.as_str() {
                "note" => "info".to_owned(),
                other => other.to_owned(),
            },
            code: item.code.unwrap_or_else(|| "unknown".to_owned()),
            message: match item.hint {
                Some(hint) if !hint.is_empty() => format!("{}\n{hint}", item.message),
                _ => item.message,
            },
        });
    }
    Ok(TypeCheckResult::from_errors(errors, Program::Mypy))
}
