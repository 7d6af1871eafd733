//! `typecheck(path)` → `TypeCheckResult`, from `ty check --output-format sarif`: ty's
//! standard machine-readable report, whose `level` keeps ty's own severity (`error`,
//! `warning`, `note`) where the GitLab format maps it onto another scale.

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
}

pub(super) fn typecheck(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let target = ctx.existing(raw)?;
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
    .chain([ctx.program_arg(&target)])
    .collect::<Vec<_>>();
    let out = ctx.run(Program::Ty, &args, ctx.root())?;
    let parsed = match out.exit_code {
        Some(0) => parse(&out.stdout, &|path| ctx.shown(path)),
        code => Err(format!("exit code {code:?}")),
    };
    let res = parsed.unwrap_or_else(|why| TypeCheckResult {
        success: false,
        error_count: 0,
        warning_count: 0,
        errors: Vec::new(),
        parse_error: Some(super::unreadable_output(Program::Ty, &out, &why)),
    });
    Ok(serde_json::to_value(res).unwrap_or_default())
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
    let count = |severity: &str| errors.iter().filter(|e| e.severity == severity).count();
    let error_count = count("error");
    Ok(TypeCheckResult {
        success: error_count == 0,
        error_count,
        warning_count: count("warning"),
        errors,
        parse_error: None,
    })
}
