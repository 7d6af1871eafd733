//! `punie bench --only rewrite`: prompt-lookup decoding against plain greedy decoding on the
//! fixed rewrite workload of `bench/rewrite/` (INTERFACES.md §4 `rewrite`).
//!
//! Each task's prompt is what a run sends the engine: the features layer's question for a Fix or
//! Refactor of a whole fixture file, rendered with the model's profile and system prompt. Two
//! engines share the loaded model, one with prompt lookup and one without; every task runs on
//! both, the order alternating, and the repetitions interleave, so machine load hits both alike.
//! Decode speed is generated tokens after the first over the time after the first token.
//! `no_overlap` questions (answers that share nothing with their prompt) are the control:
//! lookup must cost nearly nothing there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::figures::{median, round1, round3};
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent;
use crate::engine::llama::{self, LlamaEngine, LookupStats};
use crate::engine::{CancelFlag, Engine, EngineConfig, EngineSpec, GenerateRequest, Sampling};
use crate::features::{Ask, DocumentSnapshot, Instruction, Selection, language_from_path};
use crate::prompt::{self, Message, Role};

/// Context of both engines: the longest prompt and answer fit.
const N_CTX: u32 = 4096;

#[derive(Debug, Deserialize)]
struct Tasks {
    rewrite: Vec<RewriteTask>,
    no_overlap: Vec<QuestionTask>,
}

#[derive(Debug, Deserialize)]
struct RewriteTask {
    file: String,
    instruction: String,
}

#[derive(Debug, Deserialize)]
struct QuestionTask {
    question: String,
}

/// One prompt decoded both ways, summed over the repetitions.
#[derive(Debug, Default)]
struct Totals {
    plain_tokens: usize,
    plain_time: Duration,
    lookup_tokens: usize,
    lookup_time: Duration,
    lookup: LookupStats,
    identical: bool,
}

pub(super) fn run(
    spec: &EngineSpec,
    threads: Option<i32>,
    repetitions: usize,
) -> anyhow::Result<Value> {
    let dir = workload_dir();
    let tasks: Tasks = serde_json::from_str(
        &std::fs::read_to_string(dir.join("tasks.json"))
            .with_context(|| format!("reading {}", dir.join("tasks.json").display()))?,
    )
    .context("bench/rewrite/tasks.json")?;
    let config = EngineConfig {
        threads,
        n_ctx: Some(N_CTX),
        ..EngineConfig::from_env().map_err(anyhow::Error::msg)?
    };
    let path =
        llama::model_path(spec, &config).context("the rewrite benchmark needs a llama engine")?;
    let profile = agent::resolve_profile(spec, config.default_model.as_deref(), None)?;
    let model = llama::load_model(&path, &config)?;
    let engine_with = |lookup: bool| {
        LlamaEngine::new(
            &model,
            &path,
            &EngineConfig {
                prompt_lookup: Some(lookup),
                ..config.clone()
            },
        )
    };
    let mut plain = engine_with(false)?;
    let mut lookup = engine_with(true)?;

    let render = |question: String| {
        let mut messages = Vec::new();
        if let Some(system) = prompt::system_prompt(&profile) {
            messages.push(Message::new(Role::System, system));
        }
        messages.push(Message::new(Role::User, question));
        prompt::render(&profile, &messages)
    };
    let rewrite_prompts = tasks
        .rewrite
        .iter()
        .map(|task| Ok(render(rewrite_question(&dir, task)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let control_prompts: Vec<String> = tasks
        .no_overlap
        .iter()
        .map(|task| render(task.question.clone()))
        .collect();

    let mut rewrite = Vec::new();
    let mut control = Vec::new();
    for rep in 0..repetitions.max(1) {
        rewrite.push(decode_both(&mut plain, &mut lookup, &rewrite_prompts, rep)?);
        control.push(decode_both(&mut plain, &mut lookup, &control_prompts, rep)?);
    }
    let rewrite = summarize(&rewrite);
    let no_overlap = summarize(&control);
    Ok(json!({
        "model": path.display().to_string(),
        "lookup_active": lookup.prompt_lookup(),
        "cache_type": llama::cache_type(&model, &config).name(),
        "tasks": tasks.rewrite.len(),
        "repetitions": repetitions.max(1),
        "plain_decode_tok_s": rewrite["plain_decode_tok_s"],
        "lookup_decode_tok_s": rewrite["lookup_decode_tok_s"],
        "speedup": rewrite["speedup"],
        "acceptance": rewrite["acceptance"],
        "drafts": rewrite["drafts"],
        "drafted_tokens": rewrite["drafted_tokens"],
        "generated_tokens": rewrite["generated_tokens"],
        "identical": rewrite["identical"].as_bool() == Some(true)
            && no_overlap["identical"].as_bool() == Some(true),
        "no_overlap": {
            "tasks": tasks.no_overlap.len(),
            "plain_decode_tok_s": no_overlap["plain_decode_tok_s"],
            "lookup_decode_tok_s": no_overlap["lookup_decode_tok_s"],
            "speedup": no_overlap["speedup"],
            "acceptance": no_overlap["acceptance"],
            "drafts": no_overlap["drafts"],
            "drafted_tokens": no_overlap["drafted_tokens"],
            "generated_tokens": no_overlap["generated_tokens"],
        },
    }))
}

/// bench/rewrite of this repository.
pub(super) fn workload_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/rewrite")
}

/// The user turn of a run of `task` on its whole file, as the features layer builds it.
fn rewrite_question(dir: &Path, task: &RewriteTask) -> anyhow::Result<String> {
    let instruction = Instruction::parse(&task.instruction)
        .with_context(|| format!("unknown instruction {:?}", task.instruction))?;
    let path = dir.join(&task.file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let end = text.len();
    let ask = Ask {
        instruction,
        question: None,
        selection: Some(Selection {
            document: DocumentSnapshot {
                id: task.file.clone(),
                language_id: language_from_path(Some(&path)),
                path: Some(path),
                text: Arc::new(text),
                version: None,
            },
            start: 0,
            end,
        }),
        root: dir.to_owned(),
    };
    Ok(ask.question())
}

/// Every prompt on both engines (the order alternating by prompt and repetition).
fn decode_both(
    plain: &mut LlamaEngine<'_>,
    lookup: &mut LlamaEngine<'_>,
    prompts: &[String],
    rep: usize,
) -> anyhow::Result<Totals> {
    let mut totals = Totals {
        identical: true,
        ..Totals::default()
    };
    for (idx, prompt) in prompts.iter().enumerate() {
        let request = GenerateRequest {
            prompt: prompt.clone(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling::default(),
        };
        let generate = |engine: &mut LlamaEngine<'_>| {
            engine.generate(&request, &CancelFlag::default(), &mut |_| {})
        };
        let (plain_out, lookup_out) = if (idx + rep).is_multiple_of(2) {
            let first = generate(plain)?;
            (first, generate(lookup)?)
        } else {
            let second = generate(lookup)?;
            (generate(plain)?, second)
        };
        totals.plain_tokens += plain_out.n_generated.saturating_sub(1);
        totals.plain_time += plain_out.timings.decode;
        totals.lookup_tokens += lookup_out.n_generated.saturating_sub(1);
        totals.lookup_time += lookup_out.timings.decode;
        let stats = lookup.lookup_stats();
        totals.lookup.drafts += stats.drafts;
        totals.lookup.drafted_tokens += stats.drafted_tokens;
        totals.lookup.accepted_tokens += stats.accepted_tokens;
        totals.identical &= plain_out.text == lookup_out.text;
    }
    Ok(totals)
}

/// Medians over the repetitions of each side's decode speed and of their ratio.
fn summarize(reps: &[Totals]) -> Value {
    let rate = |tokens: usize, time: Duration| {
        if time.is_zero() {
            0.0
        } else {
            tokens as f64 / time.as_secs_f64()
        }
    };
    let mut plain: Vec<f64> = reps
        .iter()
        .map(|r| rate(r.plain_tokens, r.plain_time))
        .collect();
    let mut lookup: Vec<f64> = reps
        .iter()
        .map(|r| rate(r.lookup_tokens, r.lookup_time))
        .collect();
    let mut ratios: Vec<f64> = plain
        .iter()
        .zip(&lookup)
        .map(|(plain, lookup)| if *plain > 0.0 { lookup / plain } else { 0.0 })
        .collect();
    let drafts: usize = reps.iter().map(|r| r.lookup.drafts).sum();
    let drafted: usize = reps.iter().map(|r| r.lookup.drafted_tokens).sum();
    let accepted: usize = reps.iter().map(|r| r.lookup.accepted_tokens).sum();
    let generated: usize = reps.iter().map(|r| r.lookup_tokens).sum();
    json!({
        "plain_decode_tok_s": round1(median(&mut plain)),
        "lookup_decode_tok_s": round1(median(&mut lookup)),
        "speedup": round3(median(&mut ratios)),
        "acceptance": if drafted == 0 { 0.0 } else { round3(accepted as f64 / drafted as f64) },
        "drafts": drafts,
        "drafted_tokens": drafted,
        "generated_tokens": generated,
        "identical": reps.iter().all(|r| r.identical),
    })
}
