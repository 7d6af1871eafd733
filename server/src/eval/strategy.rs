//! Code Mode vs tool-per-turn, measured on the same questions (the five Task 9 multi-step
//! queries) with scripted transcripts of each strategy run through the real agent loop and
//! sandbox: token counts per turn from a real tokenizer, latency modelled at given engine
//! rates with and without KV prefix reuse, and wall time replayed on a real engine.
//!
//! The transcripts are `tests/fixtures/scripts/p22-multi-*.json` (Code Mode: one snippet, then
//! the answer) and `tests/fixtures/eval/tool-per-turn/p22-multi-*.json` (one direct
//! `read_file`/`run_command` call per turn, as before Code Mode, then the answer), compiled in.
//! Both use the same profile and system prompt, so only the strategy differs.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::agent::{CodeRunner, RunOutcome, Strategy};
use crate::engine::{EngineConfig, EngineHandle, EngineSpec, GenerateRequest, Sampling};
use crate::prompt::{self, Profile, Role};

use super::runner::{EngineChoice, EvalOptions, run_query};
use super::score::QueryScore;
use super::suite::Suite;

macro_rules! scripts {
    ($dir:literal) => {
        &[
            (
                "p22-multi-01",
                include_str!(concat!($dir, "p22-multi-01.json")),
            ),
            (
                "p22-multi-02",
                include_str!(concat!($dir, "p22-multi-02.json")),
            ),
            (
                "p22-multi-03",
                include_str!(concat!($dir, "p22-multi-03.json")),
            ),
            (
                "p22-multi-04",
                include_str!(concat!($dir, "p22-multi-04.json")),
            ),
            (
                "p22-multi-05",
                include_str!(concat!($dir, "p22-multi-05.json")),
            ),
        ]
    };
}

const CODE_MODE_SCRIPTS: &[(&str, &str)] = scripts!("../../../tests/fixtures/scripts/");
const TOOL_PER_TURN_SCRIPTS: &[(&str, &str)] =
    scripts!("../../../tests/fixtures/eval/tool-per-turn/");

/// Turns a tool-per-turn transcript may take (nine reads, a find and the answer fit).
const MAX_TURNS: usize = 16;

/// Engine speeds for the latency model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
}

/// The production model (Qwen3-Coder-30B-A3B Q5_K_M) in llama.cpp on an Apple M1 Max, the
/// published figures the issue names.
pub const M1_MAX_PRODUCTION: Rates = Rates {
    prefill_tok_s: 590.0,
    decode_tok_s: 50.0,
};

/// One model turn of a transcript: the prompt the engine saw and what the model wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnText {
    pub prompt: String,
    pub output: String,
}

/// A scripted run of one query under one strategy.
#[derive(Debug, Clone)]
pub struct StrategyRun {
    pub query_id: String,
    pub strategy: Strategy,
    pub turns: Vec<TurnText>,
    /// Time in the sandbox, per turn (zero for the answer turn).
    pub sandbox: Vec<Duration>,
    /// The eval scorer's view of the run (the facts must be found under both strategies).
    pub score: QueryScore,
}

/// Token counts of one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnTokens {
    /// The whole prompt.
    pub prompt: usize,
    /// Prompt tokens that are new since the previous turn's prompt and output: what an engine
    /// with KV prefix reuse evaluates.
    pub new: usize,
    pub output: usize,
}

/// Modelled seconds per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Modelled {
    /// Prefill of the new tokens only, plus decode and sandbox.
    pub with_reuse: Vec<f64>,
    /// Prefill of the whole prompt every turn, plus decode and sandbox.
    pub without_reuse: Vec<f64>,
}

impl Modelled {
    pub fn total_with_reuse(&self) -> f64 {
        self.with_reuse.iter().sum()
    }

    pub fn total_without_reuse(&self) -> f64 {
        self.without_reuse.iter().sum()
    }
}

/// Runs the compiled-in transcripts of both strategies for every multi-step query, Code Mode
/// first for each query. Each run gets a fresh workspace and the real sandbox.
pub fn scripted_runs(runner: &mut dyn CodeRunner) -> anyhow::Result<Vec<StrategyRun>> {
    let script_dir = tempfile::Builder::new()
        .prefix("punie-strategies-")
        .tempdir()
        .context("creating a directory for the scripts")?;
    let mut res = Vec::new();
    for query in Suite::Task9Multi.queries() {
        for (strategy, scripts) in [
            (Strategy::CodeMode, CODE_MODE_SCRIPTS),
            (Strategy::ToolPerTurn, TOOL_PER_TURN_SCRIPTS),
        ] {
            let script = scripts
                .iter()
                .find(|(id, _)| *id == query.id)
                .map(|(_, text)| *text)
                .context("a transcript for every multi-step query")?;
            let path = script_dir
                .path()
                .join(format!("{}-{}.json", strategy.name(), query.id));
            std::fs::write(&path, script).context("writing a script")?;
            let options = options(strategy, &path);
            let engine = EngineHandle::spawn(
                EngineSpec::Scripted { path: path.clone() },
                EngineConfig::default(),
            );
            let (score, outcome) = run_query(&engine, runner, &query, &options)?;
            res.push(StrategyRun {
                query_id: query.id.clone(),
                strategy,
                turns: turn_texts(&options.profile, &outcome),
                sandbox: sandbox_per_turn(&outcome),
                score,
            });
        }
    }
    Ok(res)
}

fn options(strategy: Strategy, script: &Path) -> EvalOptions {
    EvalOptions {
        suite: Suite::Task9Multi,
        engine: EngineChoice::Shared(EngineSpec::Scripted {
            path: script.to_owned(),
        }),
        engine_config: EngineConfig::default(),
        profile: Profile::PuniePhase22,
        strategy,
        max_turns: MAX_TURNS,
        sampling: Sampling::default(),
        transcript_dir: None,
    }
}

/// The prompt and output of every model turn, re-rendered from the final conversation (the
/// loop renders each turn's prompt from exactly the messages before that turn).
pub fn turn_texts(profile: &Profile, outcome: &RunOutcome) -> Vec<TurnText> {
    let messages = outcome.conversation.messages();
    messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Assistant)
        .map(|(idx, m)| TurnText {
            prompt: prompt::render(profile, &messages[..idx]),
            output: m.content.clone(),
        })
        .collect()
}

fn sandbox_per_turn(outcome: &RunOutcome) -> Vec<Duration> {
    let mut res = vec![Duration::ZERO; outcome.turns];
    for call in &outcome.tool_calls {
        if let Some(slot) = res.get_mut(call.turn.saturating_sub(1)) {
            *slot += call.elapsed;
        }
    }
    res
}

/// Token counts per turn with `count` (a real tokenizer). `new` counts the tokens of this
/// prompt beyond the previous prompt followed by the previous output, as a KV cache sees it.
pub fn count_tokens(
    turns: &[TurnText],
    count: &mut dyn FnMut(&str) -> anyhow::Result<usize>,
) -> anyhow::Result<Vec<TurnTokens>> {
    let mut res = Vec::with_capacity(turns.len());
    let mut previous: Option<String> = None;
    for turn in turns {
        let prompt = count(&turn.prompt)?;
        let cached = match &previous {
            Some(text) if turn.prompt.starts_with(text.as_str()) => count(text)?,
            _ => 0,
        };
        res.push(TurnTokens {
            prompt,
            new: prompt.saturating_sub(cached),
            output: count(&turn.output)?,
        });
        previous = Some(format!("{}{}", turn.prompt, turn.output));
    }
    Ok(res)
}

/// Seconds per turn at `rates`: prefill (all or only the new tokens), decode of the output
/// (plus its end token), and the sandbox time measured in the scripted run.
pub fn model_latency(tokens: &[TurnTokens], sandbox: &[Duration], rates: Rates) -> Modelled {
    let mut with_reuse = Vec::with_capacity(tokens.len());
    let mut without_reuse = Vec::with_capacity(tokens.len());
    for (idx, turn) in tokens.iter().enumerate() {
        let decode = (turn.output + 1) as f64 / rates.decode_tok_s;
        let sandbox = sandbox.get(idx).map_or(0.0, Duration::as_secs_f64);
        with_reuse.push(turn.new as f64 / rates.prefill_tok_s + decode + sandbox);
        without_reuse.push(turn.prompt as f64 / rates.prefill_tok_s + decode + sandbox);
    }
    Modelled {
        with_reuse,
        without_reuse,
    }
}

/// Replays a transcript's turns on a real engine: each turn's prompt (the engine reuses its KV
/// cache for the common prefix, as in a run) and exactly as many generated tokens as the
/// transcript's output (end-of-generation ignored). Returns the wall time of each turn, sandbox
/// time not included. The generated text differs from the script's, so the next turn
/// re-evaluates the previous output: a little more prefill than a real run.
pub fn replay_on_engine(
    engine: &EngineHandle,
    turns: &[TurnText],
    tokens: &[TurnTokens],
) -> anyhow::Result<Vec<Duration>> {
    let mut res = Vec::with_capacity(turns.len());
    for (turn, counts) in turns.iter().zip(tokens) {
        let request = GenerateRequest {
            prompt: turn.prompt.clone(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling {
                max_tokens: counts.output.max(1),
                ignore_eog: true,
                stop: Vec::new(),
                ..Sampling::default()
            },
        };
        let started = Instant::now();
        engine
            .generate(request, crate::cancel::CancelFlag::default())
            .finish(|_| {})
            .map_err(|err| anyhow::anyhow!("replaying a turn: {err}"))?;
        res.push(started.elapsed());
    }
    Ok(res)
}

/// One bar pair of the chart: a query's per-turn seconds under each strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    pub label: String,
    pub code_mode: Vec<f64>,
    pub tool_per_turn: Vec<f64>,
}

/// A hand-written SVG: for each panel (title, rows), two stacked horizontal bars per query,
/// one segment per model turn, total seconds at the end of each bar.
pub fn chart_svg(title: &str, panels: &[(String, Vec<ChartRow>)]) -> String {
    const WIDTH: f64 = 900.0;
    const LEFT: f64 = 170.0;
    const RIGHT: f64 = 70.0;
    const BAR: f64 = 14.0;
    const GAP: f64 = 10.0;
    let max_total = panels
        .iter()
        .flat_map(|(_, rows)| rows)
        .flat_map(|row| {
            [
                row.code_mode.iter().sum::<f64>(),
                row.tool_per_turn.iter().sum(),
            ]
        })
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let scale = (WIDTH - LEFT - RIGHT) / max_total;
    let mut body = String::new();
    let mut y = 40.0;
    body.push_str(&format!(
        r##"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    ));
    for (panel_title, rows) in panels {
        y += 12.0;
        body.push_str(&format!(
            r##"<text x="10" y="{y:.0}" font-size="13" font-weight="bold">{}</text>"##,
            escape(panel_title)
        ));
        y += 10.0;
        for row in rows {
            body.push_str(&format!(
                r##"<text x="10" y="{:.0}" font-size="12">{}</text>"##,
                y + BAR + 4.0,
                escape(&row.label)
            ));
            for (turns, colours, name) in [
                (&row.code_mode, ["#1f77b4", "#6baed6"], "Code Mode"),
                (&row.tool_per_turn, ["#d62728", "#fc9272"], "tool-per-turn"),
            ] {
                let mut x = LEFT;
                for (idx, seconds) in turns.iter().enumerate() {
                    let w = seconds * scale;
                    body.push_str(&format!(
                        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.2}" height="{BAR}" fill="{}"><title>{name} turn {}: {seconds:.2} s</title></rect>"##,
                        colours[idx % 2],
                        idx + 1
                    ));
                    x += w;
                }
                let total: f64 = turns.iter().sum();
                body.push_str(&format!(
                    r##"<text x="{:.1}" y="{:.1}" font-size="11">{total:.1} s ({} turns)</text>"##,
                    x + 4.0,
                    y + BAR - 3.0,
                    turns.len()
                ));
                y += BAR + 2.0;
            }
            y += GAP;
        }
    }
    y += 6.0;
    body.push_str(&format!(
        r##"<rect x="10" y="{y:.0}" width="12" height="12" fill="#1f77b4"/><text x="28" y="{:.0}" font-size="12">Code Mode</text><rect x="120" y="{y:.0}" width="12" height="12" fill="#d62728"/><text x="138" y="{:.0}" font-size="12">tool-per-turn (alternating shades = successive model turns)</text>"##,
        y + 11.0,
        y + 11.0
    ));
    y += 24.0;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{y:.0}" viewBox="0 0 {WIDTH:.0} {y:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>{body}</svg>
"##
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_what_follows_the_cached_prefix() {
        let turns = [
            TurnText {
                prompt: "a b c".to_owned(),
                output: " d".to_owned(),
            },
            TurnText {
                prompt: "a b c d e f".to_owned(),
                output: " g".to_owned(),
            },
        ];
        let mut words = |text: &str| Ok(text.split_whitespace().count());
        let tokens = count_tokens(&turns, &mut words).unwrap();
        assert_eq!(
            tokens,
            [
                TurnTokens {
                    prompt: 3,
                    new: 3,
                    output: 1
                },
                TurnTokens {
                    prompt: 6,
                    new: 2,
                    output: 1
                }
            ]
        );
        let modelled = model_latency(
            &tokens,
            &[],
            Rates {
                prefill_tok_s: 1.0,
                decode_tok_s: 2.0,
            },
        );
        assert_eq!(modelled.with_reuse, [4.0, 3.0]);
        assert_eq!(modelled.without_reuse, [4.0, 7.0]);
    }

    #[test]
    fn chart_has_a_segment_per_turn() {
        let svg = chart_svg(
            "t",
            &[(
                "p".to_owned(),
                vec![ChartRow {
                    label: "q".to_owned(),
                    code_mode: vec![1.0, 2.0],
                    tool_per_turn: vec![1.0, 1.0, 1.0],
                }],
            )],
        );
        assert_eq!(svg.matches("<rect x=").count(), 5 + 2);
        assert!(svg.contains("3.0 s (2 turns)"));
    }
}
