//! `punie bench --only strategies`: Code Mode vs tool-per-turn on the Task 9 multi-step
//! queries (see `eval::strategy`). Token counts per turn from a real tokenizer, seconds at
//! the production model's published M1 Max rates with and without KV prefix reuse, and wall
//! time of the same turns replayed on this machine's engine, interleaved and reported as
//! medians, plus the ratio Code Mode / tool-per-turn (the target is ≤ 0.5).

use std::path::Path;
use std::time::Duration;

use super::figures::{median, round2, round3};
use anyhow::Context;
use serde_json::{Value, json};

use crate::agent::Strategy;
use crate::engine::{EngineConfig, EngineHandle, EngineSpec};
use crate::eval::strategy::{self, ChartRow, M1_MAX_PRODUCTION, Modelled, StrategyRun, TurnTokens};
use crate::sandbox::{Sandbox, SandboxLimits};

/// Context for the replay: the longest tool-per-turn prompt is about 2,500 tokens.
const REPLAY_N_CTX: u32 = 8192;

struct Measured {
    run: StrategyRun,
    /// Counted with the engine's tokenizer (replay) and the model tokenizer (latency model).
    engine_tokens: Vec<TurnTokens>,
    model_tokens: Vec<TurnTokens>,
    modelled: Modelled,
    /// Replayed wall time per turn, one vector per repetition.
    replays: Vec<Vec<Duration>>,
}

pub(super) fn run(
    spec: &EngineSpec,
    threads: Option<i32>,
    repetitions: usize,
    tokenizer: Option<&Path>,
    chart: Option<&Path>,
) -> anyhow::Result<Value> {
    let mut sandbox = Sandbox::new(SandboxLimits::default()).context("cannot start the sandbox")?;
    let runs = strategy::scripted_runs(&mut sandbox)?;

    let engine = EngineHandle::spawn(
        spec.clone(),
        EngineConfig {
            n_ctx: Some(REPLAY_N_CTX),
            threads,
            ..EngineConfig::from_env().map_err(anyhow::Error::msg)?
        },
    );
    let engine_name = engine
        .wait_ready()
        .map_err(|err| anyhow::anyhow!("cannot start the engine: {err}"))?;
    let hf_tokenizer = match tokenizer {
        Some(path) => Some(
            tokenizers::Tokenizer::from_file(path)
                .map_err(|err| anyhow::anyhow!("reading --tokenizer {}: {err}", path.display()))?,
        ),
        None => None,
    };

    let mut measured = Vec::new();
    for run in runs {
        let engine_tokens = strategy::count_tokens(&run.turns, &mut |text| {
            engine
                .count_tokens(text)
                .map_err(|err| anyhow::anyhow!("counting tokens: {err}"))
        })?;
        let model_tokens = match &hf_tokenizer {
            Some(hf) => strategy::count_tokens(&run.turns, &mut |text| {
                Ok(hf
                    .encode(text, false)
                    .map_err(|err| anyhow::anyhow!("tokenizing: {err}"))?
                    .len())
            })?,
            None => engine_tokens.clone(),
        };
        let modelled = strategy::model_latency(&model_tokens, &run.sandbox, M1_MAX_PRODUCTION);
        measured.push(Measured {
            run,
            engine_tokens,
            model_tokens,
            modelled,
            replays: Vec::new(),
        });
    }

    // Interleaved: each repetition replays every query under both strategies, so load on a
    // shared machine hits both alike; one warm-up pass first.
    for rep in 0..=repetitions.max(1) {
        for item in &mut measured {
            let replay = strategy::replay_on_engine(&engine, &item.run.turns, &item.engine_tokens)?;
            if rep > 0 {
                item.replays.push(replay);
            }
        }
    }

    let queries = paired(&measured)
        .map(|(code_mode, tool_per_turn)| {
            let cm = strategy_json(code_mode);
            let tpt = strategy_json(tool_per_turn);
            json!({
                "id": code_mode.run.query_id,
                "code_mode": cm,
                "tool_per_turn": tpt,
                "ratio_model_reuse": ratio(&cm["model_s_reuse"], &tpt["model_s_reuse"]),
                "ratio_model_no_reuse": ratio(&cm["model_s_no_reuse"], &tpt["model_s_no_reuse"]),
                "ratio_wall": ratio(&cm["wall_ms_median"], &tpt["wall_ms_median"]),
            })
        })
        .collect::<Vec<_>>();
    let sum = |strategy: Strategy, key: &str| -> f64 {
        queries
            .iter()
            .map(|q| q[field(strategy)][key].as_f64().unwrap_or(0.0))
            .sum()
    };
    let totals = json!({
        "code_mode_model_s_reuse": round2(sum(Strategy::CodeMode, "model_s_reuse")),
        "tool_per_turn_model_s_reuse": round2(sum(Strategy::ToolPerTurn, "model_s_reuse")),
        "code_mode_model_s_no_reuse": round2(sum(Strategy::CodeMode, "model_s_no_reuse")),
        "tool_per_turn_model_s_no_reuse": round2(sum(Strategy::ToolPerTurn, "model_s_no_reuse")),
        "code_mode_wall_ms": round2(sum(Strategy::CodeMode, "wall_ms_median")),
        "tool_per_turn_wall_ms": round2(sum(Strategy::ToolPerTurn, "wall_ms_median")),
        "ratio_model_reuse": round3(sum(Strategy::CodeMode, "model_s_reuse") / sum(Strategy::ToolPerTurn, "model_s_reuse")),
        "ratio_model_no_reuse": round3(sum(Strategy::CodeMode, "model_s_no_reuse") / sum(Strategy::ToolPerTurn, "model_s_no_reuse")),
        "ratio_wall": round3(sum(Strategy::CodeMode, "wall_ms_median") / sum(Strategy::ToolPerTurn, "wall_ms_median")),
    });

    if let Some(path) = chart {
        // A scripted engine's replay times say nothing about a model: leave that panel out.
        let with_replay = !matches!(spec, EngineSpec::Scripted { .. });
        let svg = chart_svg(&measured, with_replay);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("--chart {}", path.display()))?;
        }
        std::fs::write(path, svg).with_context(|| format!("writing --chart {}", path.display()))?;
    }

    Ok(json!({
        "rates": {
            "prefill_tok_s": M1_MAX_PRODUCTION.prefill_tok_s,
            "decode_tok_s": M1_MAX_PRODUCTION.decode_tok_s,
            "what": "Qwen3-Coder-30B-A3B Q5_K_M in llama.cpp on Apple M1 Max (published figures)",
        },
        "model_tokenizer": tokenizer.map_or_else(|| format!("engine ({engine_name})"), |p| p.display().to_string()),
        "replay_engine": engine_name,
        "repetitions": repetitions.max(1),
        "queries": queries,
        "totals": totals,
        "chart": chart.map(|p| p.display().to_string()),
    }))
}

/// Runs come in (Code Mode, tool-per-turn) pairs per query, in that order.
fn paired(measured: &[Measured]) -> impl Iterator<Item = (&Measured, &Measured)> {
    measured.chunks(2).filter_map(|pair| match pair {
        [code_mode, tool_per_turn] => Some((code_mode, tool_per_turn)),
        _ => None,
    })
}

fn field(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::CodeMode => "code_mode",
        Strategy::ToolPerTurn => "tool_per_turn",
    }
}

fn strategy_json(item: &Measured) -> Value {
    let total = |tokens: &[TurnTokens], pick: fn(&TurnTokens) -> usize| -> usize {
        tokens.iter().map(pick).sum()
    };
    let per_turn_wall = per_turn_medians(&item.replays);
    let mut walls: Vec<f64> = item
        .replays
        .iter()
        .map(|turns| turns.iter().sum::<Duration>().as_secs_f64() * 1e3)
        .collect();
    json!({
        "turns": item.run.turns.len(),
        "facts_found": item.run.score.facts_missing.is_empty(),
        "prompt_tokens": total(&item.model_tokens, |t| t.prompt),
        "new_tokens": total(&item.model_tokens, |t| t.new),
        "output_tokens": total(&item.model_tokens, |t| t.output),
        "engine_tokenizer": {
            "prompt_tokens": total(&item.engine_tokens, |t| t.prompt),
            "new_tokens": total(&item.engine_tokens, |t| t.new),
            "output_tokens": total(&item.engine_tokens, |t| t.output),
        },
        "per_turn": item.model_tokens.iter().zip(&item.modelled.with_reuse).zip(&item.modelled.without_reuse).zip(&per_turn_wall)
            .map(|(((t, reuse), no_reuse), wall)| json!({
                "prompt": t.prompt, "new": t.new, "output": t.output,
                "model_s_reuse": round3(*reuse), "model_s_no_reuse": round3(*no_reuse),
                "wall_ms_median": round2(*wall),
            }))
            .collect::<Vec<_>>(),
        "sandbox_ms": round2(item.run.sandbox.iter().sum::<Duration>().as_secs_f64() * 1e3),
        "model_s_reuse": round3(item.modelled.total_with_reuse()),
        "model_s_no_reuse": round3(item.modelled.total_without_reuse()),
        "wall_ms_median": round2(median(&mut walls)),
    })
}

/// Median over repetitions of each turn's wall time, in milliseconds.
fn per_turn_medians(replays: &[Vec<Duration>]) -> Vec<f64> {
    let n_turns = replays.first().map_or(0, Vec::len);
    (0..n_turns)
        .map(|turn| {
            let mut values: Vec<f64> = replays
                .iter()
                .filter_map(|r| r.get(turn))
                .map(|d| d.as_secs_f64() * 1e3)
                .collect();
            median(&mut values)
        })
        .collect()
}

fn ratio(a: &Value, b: &Value) -> Value {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!(round3(a / b)),
        _ => Value::Null,
    }
}

fn chart_svg(measured: &[Measured], with_replay: bool) -> String {
    let rows = |pick: &dyn Fn(&Measured) -> Vec<f64>| -> Vec<ChartRow> {
        paired(measured)
            .map(|(cm, tpt)| ChartRow {
                label: cm.run.query_id.clone(),
                code_mode: pick(cm),
                tool_per_turn: pick(tpt),
            })
            .collect()
    };
    let mut panels = vec![
            (
                "Modelled: production model at M1 Max rates (590 tok/s prefill, 50 tok/s decode), KV prefix reuse".to_owned(),
                rows(&|m| m.modelled.with_reuse.clone()),
            ),
            (
                "Modelled: same rates, whole prompt re-evaluated every turn (no reuse)".to_owned(),
                rows(&|m| m.modelled.without_reuse.clone()),
            ),
    ];
    if with_replay {
        panels.push((
            "Measured here: the same turns replayed on the default model (median per turn)"
                .to_owned(),
            rows(&|m| {
                per_turn_medians(&m.replays)
                    .into_iter()
                    .map(|ms| ms / 1e3)
                    .collect()
            }),
        ));
    }
    strategy::chart_svg(
        "Per-turn latency, Code Mode vs tool-per-turn (Task 9 multi-step queries)",
        &panels,
    )
}

/// The strategies section as text for `punie bench` without `--json`.
pub(super) fn table(strategies: &Value) -> String {
    let mut out = String::from("strategies (Code Mode / tool-per-turn):\n");
    out.push_str(&format!(
        "  {:<13} {:>11} {:>13} {:>13} {:>13} {:>13} {:>9}\n",
        "query", "turns", "tokens in", "tokens out", "M1 reuse s", "M1 no-reuse s", "wall ms"
    ));
    for q in strategies["queries"].as_array().into_iter().flatten() {
        let (cm, tpt) = (&q["code_mode"], &q["tool_per_turn"]);
        let pair = |key: &str| format!("{}/{}", cm[key], tpt[key]);
        out.push_str(&format!(
            "  {:<13} {:>11} {:>13} {:>13} {:>13} {:>13} {:>9}\n",
            q["id"].as_str().unwrap_or(""),
            pair("turns"),
            pair("prompt_tokens"),
            pair("output_tokens"),
            pair("model_s_reuse"),
            pair("model_s_no_reuse"),
            pair("wall_ms_median"),
        ));
    }
    let totals = &strategies["totals"];
    out.push_str(&format!(
        "  ratio Code Mode / tool-per-turn: M1 model with reuse {}, without reuse {}, replayed wall {}\n",
        totals["ratio_model_reuse"], totals["ratio_model_no_reuse"], totals["ratio_wall"]
    ));
    out
}
