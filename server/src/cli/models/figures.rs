//! The hidden `punie models logits` and `punie models first-turns`: figures that
//! `models/micro/run.sh` compares with the model a GGUF was converted from and records in
//! `models/micro/README.md` and docs/benchmarks.md. Tools, not tests: their output is data.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::Outcome;
use crate::engine::llama::{self, LlamaEngine, parity};
use crate::engine::{CancelFlag, Engine, EngineConfig, GenerateRequest, Sampling};

/// For each GGUF and prompt of `request` (`{"ggufs": [...], "prompts": [...]}`), the prompt's
/// token ids and the logits at its last position, as one JSON array on stdout.
pub(super) fn logits(request: &Path) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(request)
        .with_context(|| format!("reading {}", request.display()))?;
    let request: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", request.display()))?;
    let strings = |key: &str| -> anyhow::Result<Vec<String>> {
        request[key]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .with_context(|| format!("`{key}` is not a list of strings"))
    };
    let (ggufs, prompts) = (strings("ggufs")?, strings("prompts")?);
    let mut results = Vec::new();
    for gguf in &ggufs {
        let model = llama::load_model(Path::new(gguf), &EngineConfig::default())?;
        for prompt in &prompts {
            let (ids, logits) = parity::last_logits(&model, prompt)?;
            results.push(json!({"gguf": gguf, "ids": ids, "logits": logits}));
        }
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &results)?;
    writeln!(stdout)?;
    Ok(Outcome::Success)
}

/// Greedy first turns of every row of `data` (Phase 22 JSON lines) on `gguf`, one JSON line
/// each on stdout: whether the data expects a call, the text, and the calls parsed from it.
/// One llama.cpp thread: on a busy 2-core machine two threads spin in ggml's barrier and run
/// many times slower.
pub(super) fn first_turns(data: &Path, gguf: &Path) -> anyhow::Result<Outcome> {
    let config = EngineConfig {
        n_ctx: Some(4096),
        threads: Some(1),
        ..EngineConfig::default()
    };
    let model = llama::load_model(gguf, &config)?;
    let mut engine = LlamaEngine::new(&model, gguf, &config)?;
    let mut stdout = std::io::stdout().lock();
    for row in parity::read_texts(data)? {
        let header = "<|im_start|>assistant\n";
        let end = row
            .find(header)
            .context("a row without an assistant turn")?
            + header.len();
        let (prompt, expected) = row.split_at(end);
        let expected = &expected[..expected.find("<|im_end|>").unwrap_or(expected.len())];
        let request = GenerateRequest {
            prompt: prompt.to_owned(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling {
                max_tokens: 300,
                ..Sampling::default()
            },
        };
        let generation = engine.generate(&request, &CancelFlag::default(), &mut |_| {})?;
        let parsed = crate::toolcall::parse(&generation.text);
        let calls: Vec<Value> = parsed
            .calls
            .iter()
            .map(|c| json!({"name": c.name, "code": c.code()}))
            .collect();
        let line = json!({
            "expects_call": expected.contains("<tool_call>"),
            "emitted_tool_call_tag": generation.text.contains("<tool_call>"),
            "finish": format!("{:?}", generation.finish),
            "hard_errors": parsed.hard_errors().count(),
            "calls": calls,
            "text": generation.text,
        });
        writeln!(stdout, "{line}")?;
    }
    Ok(Outcome::Success)
}
