//! `punie eval`: runs a Task 9 suite through the real agent loop and sandbox, one fresh fixture
//! workspace per query, and prints a score table or (`--json`) the object of INTERFACES.md §4.
//!
//! `--engine scripted:DIR` (a directory) runs each query on its own script `DIR/<query id>.json`;
//! see docs/eval.md.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::agent::{self, Strategy};
use crate::cli::Outcome;
use crate::engine::{EngineConfig, EngineSpec, Sampling};
use crate::eval::{self, EngineChoice, EvalOptions, Expected, QueryScore, Suite, SuiteReport};
use crate::sandbox::{Sandbox, SandboxLimits};

/// Turns a tool-per-turn run may take: the multi-step queries need N + 1 tool turns plus the
/// answer (11 for nine files), more than the editor's default.
const TOOL_PER_TURN_MAX_TURNS: usize = 16;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite: task9-single or task9-multi.
    #[arg(long, value_name = "NAME")]
    suite: String,
    /// Engine SPEC (default: the installed default model). `scripted:DIR` with a directory
    /// runs each query on `DIR/<query id>.json`.
    #[arg(long, value_name = "SPEC", env = "PUNIE_ENGINE")]
    engine: Option<String>,
    /// Prompt profile (punie-phase22, punie-typed, generic); default: the model's manifest entry.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// How the model calls tools: code-mode (one snippet, many tools) or tool-per-turn (one
    /// direct call per turn, the format before Code Mode).
    #[arg(long, value_name = "NAME", default_value = "code-mode")]
    strategy: String,
    /// Model turns per query at most (default: 8 in code-mode, 16 in tool-per-turn).
    #[arg(long, value_name = "N")]
    max_turns: Option<usize>,
    /// Keep each query's run transcript as DIR/<query id>.jsonl.
    #[arg(long, value_name = "DIR")]
    transcript_dir: Option<PathBuf>,
    /// Time limit of one snippet, in milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Tokens per model turn at most (default 1024). A small model that rambles costs minutes
    /// per turn on a CPU; the eval records the limit it ran with.
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// CPU threads for llama.cpp (default: physical cores).
    #[arg(long, value_name = "N")]
    threads: Option<i32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let options = options_from_args(&args)?;
    let mut limits = SandboxLimits::default();
    if let Some(ms) = args.timeout_ms {
        super::check_range("--timeout-ms", ms, 1..=SandboxLimits::MAX_TIMEOUT_MS)?;
        limits.timeout_ms = ms;
    }
    let mut sandbox = Sandbox::new(limits).context("cannot start the sandbox")?;
    let report = eval::run_suite(&options, &mut sandbox, &mut |score| {
        eprintln!(
            "{} {} ({} turns, {:.0} ms)",
            if score.passed { "PASS" } else { "FAIL" },
            score.id,
            score.run.turns,
            score.run.wall_ms
        );
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report_json(&report))?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", report_table(&report))?;
    }
    stdout.flush()?;
    Ok(Outcome::Success)
}

fn options_from_args(args: &Args) -> anyhow::Result<EvalOptions> {
    let suite = Suite::from_name(&args.suite).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown suite `{}`: expected one of {}",
            args.suite,
            Suite::NAMES.join(", ")
        )
    })?;
    let strategy = Strategy::from_name(&args.strategy).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown strategy `{}`: expected one of {}",
            args.strategy,
            Strategy::NAMES.join(", ")
        )
    })?;
    let spec = EngineSpec::parse(args.engine.as_deref().unwrap_or(""))?;
    if let EngineSpec::Scripted { path } | EngineSpec::Llama { path } = &spec
        && !path.exists()
    {
        bail!("engine SPEC: {} does not exist", path.display());
    }
    // The same profile `punie ask` and the server would use (the model's chat template for
    // generic models), so the scores are the editor's.
    let default_model = crate::models::default_model_path().ok();
    let profile = agent::resolve_profile(&spec, default_model.as_deref(), args.profile.as_deref())?;
    let max_turns = args.max_turns.unwrap_or(match strategy {
        Strategy::CodeMode => agent::DEFAULT_MAX_TURNS,
        Strategy::ToolPerTurn => TOOL_PER_TURN_MAX_TURNS,
    });
    super::check_max_turns(max_turns)?;
    if let Some(dir) = &args.transcript_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--transcript-dir {}", dir.display()))?;
    }
    let env_config = EngineConfig::from_env().map_err(anyhow::Error::msg)?;
    Ok(EvalOptions {
        suite,
        engine: EngineChoice::from_spec(spec),
        engine_config: EngineConfig {
            default_model,
            threads: args.threads.or(env_config.threads),
            ..env_config
        },
        sampling: Sampling {
            max_tokens: args
                .max_tokens
                .unwrap_or(Sampling::default().max_tokens)
                .max(1),
            ..Sampling::default()
        },
        profile,
        strategy,
        max_turns,
        transcript_dir: args.transcript_dir.clone(),
    })
}

/// The §4 object; fields beyond the contract: `engine_loaded`, `profile`, `strategy`,
/// `max_turns`, `max_tokens`,
/// `target`, and per query `expected`, `tool_as_expected`, `code_missing`, `snippet_errors`,
/// `facts_missing`, `status`, `answer`.
fn report_json(report: &SuiteReport) -> Value {
    json!({
        "suite": report.suite.name(),
        "engine": report.engine,
        "engine_loaded": report.engine_loaded,
        "profile": report.profile,
        "strategy": report.strategy.name(),
        "max_turns": report.max_turns,
        "max_tokens": report.max_tokens,
        "target": report.suite.target(),
        "passed": report.passed(),
        "total": report.total(),
        "queries": report.scores.iter().map(query_json).collect::<Vec<_>>(),
    })
}

fn query_json(score: &QueryScore) -> Value {
    json!({
        "id": score.id,
        "query": score.query,
        "passed": score.passed,
        "expected": expected_name(score.expected),
        "expected_tool": score.expected_tool,
        "used_tools": score.used_tools,
        "tool_as_expected": score.tool_as_expected,
        "code_missing": score.code_missing,
        "snippet_ok": score.snippet_ok,
        "snippet_errors": score.snippet_errors,
        "facts_found": score.facts_found,
        "facts_missing": score.facts_missing,
        "turns": score.run.turns,
        "tokens_in": score.run.tokens_in,
        "tokens_out": score.run.tokens_out,
        "wall_ms": (score.run.wall_ms * 10.0).round() / 10.0,
        "status": score.run.status,
        "answer": score.run.answer,
    })
}

fn expected_name(expected: Expected) -> &'static str {
    match expected {
        Expected::ExecuteCode => "execute_code",
        Expected::DirectAnswer => "direct_answer",
    }
}

fn report_table(report: &SuiteReport) -> String {
    let mut out = format!(
        "suite {}  engine {}  profile {}  strategy {}\n\n",
        report.suite.name(),
        report.engine_loaded.as_deref().unwrap_or(&report.engine),
        report.profile,
        report.strategy.name()
    );
    out.push_str(&format!(
        "{:<14} {:<4} {:<6} {:<5} {:<7} {:<5} {:>5} {:>7} {:>7} {:>8}\n",
        "query", "ok", "tool", "code", "snippet", "facts", "turns", "tok in", "tok out", "wall ms"
    ));
    let yes_no = |ok: bool| if ok { "yes" } else { "no" };
    for score in &report.scores {
        let n_facts = score.facts_found.len() + score.facts_missing.len();
        out.push_str(&format!(
            "{:<14} {:<4} {:<6} {:<5} {:<7} {:<5} {:>5} {:>7} {:>7} {:>8.0}\n",
            score.id,
            if score.passed { "PASS" } else { "FAIL" },
            yes_no(score.tool_as_expected),
            yes_no(score.code_missing.is_empty()),
            yes_no(score.snippet_ok),
            format!("{}/{}", score.facts_found.len(), n_facts),
            score.run.turns,
            score.run.tokens_in,
            score.run.tokens_out,
            score.run.wall_ms,
        ));
    }
    out.push_str(&format!(
        "\npassed {}/{} (target {})\n",
        report.passed(),
        report.total(),
        report.suite.target()
    ));
    for score in report.scores.iter().filter(|s| !s.passed) {
        out.push_str(&format!("  {}: {}\n", score.id, failure_reasons(score)));
    }
    out
}

/// Why a query failed, in words.
fn failure_reasons(score: &QueryScore) -> String {
    let mut reasons = Vec::new();
    if score.run.status != "done" {
        reasons.push(score.run.status.clone());
    }
    if !score.tool_as_expected {
        reasons.push(match score.expected {
            Expected::ExecuteCode => "answered without calling a tool".to_owned(),
            Expected::DirectAnswer => "called a tool for a direct question".to_owned(),
        });
    }
    if !score.code_missing.is_empty() {
        reasons.push(format!("code lacks {:?}", score.code_missing));
    }
    if !score.snippet_ok {
        reasons.push(format!(
            "snippet raised {}",
            score.snippet_errors.join("; ")
        ));
    }
    if !score.facts_missing.is_empty() {
        reasons.push(format!("missing facts: {}", score.facts_missing.join(", ")));
    }
    if reasons.is_empty() {
        reasons.push("empty answer".to_owned());
    }
    reasons.join("; ")
}
