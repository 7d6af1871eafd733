//! `punie bench`: performance figures as one JSON object (INTERFACES.md §4) or a short table.
//!
//! The engine section runs the fixed workload that `bench/compare_llamacpp.sh` also runs with
//! llama.cpp's own reference, plus cold and warm time-to-first-token through the real engine
//! (warm = the same ~500-token prefix plus 50 new tokens, served from the KV cache).
//!
//! The other sections: `sandbox` (overhead of a snippet on a warm worker,
//! `sandbox::overhead_bench`; cancel to a snippet's end, `sandbox::cancel_bench`), `lsp` (codeAction latency while a run generates, cancel to
//! `end`, RSS: `lsp::bench`), and `strategies` (Code Mode vs tool-per-turn on the Task 9
//! multi-step queries: token counts, a latency model at the production model's M1 Max rates,
//! and replayed wall time on the engine; `--chart` writes the per-turn latency SVG), `rewrite`
//! (prompt-lookup decoding against plain decoding, `rewrite.rs`), `followup` (a follow-up's time
//! to first token through `punie lsp`, `followup.rs`); `--contention` adds decode with one busy
//! process to the engine section (`contention.rs`). With no `--only`, every section runs, so one
//! command gives every figure of docs/benchmarks.md; `--report` writes them into that file as a
//! generated section (`report.rs`), with the llama.cpp anchors' figures from
//! `bench/compare_llamacpp.sh` when `--reference` names them. `bench/report.sh` runs both.

mod contention;
mod figures;
mod followup;
pub mod lsp_client;
mod report;
mod rewrite;
mod strategies;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use self::figures::{round1, round2};

use crate::cli::Outcome;
use crate::engine::llama::{self, LlamaEngine};
use crate::engine::{CancelFlag, Engine, EngineConfig, EngineSpec, GenerateRequest, Sampling};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Engine,
    Sandbox,
    Lsp,
    Strategies,
    Rewrite,
    Followup,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only this section (default: all).
    #[arg(long)]
    only: Option<Section>,
    /// Engine SPEC (default: the default model). The engine section needs a llama engine.
    #[arg(long, default_value = "")]
    engine: String,
    /// CPU threads for llama.cpp (default: the physical cores for prompts, and as many as
    /// measured step times say for generation).
    #[arg(long)]
    threads: Option<i32>,
    /// The workload text (default: bench/prompt.txt of this repository).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Repetitions per measurement (medians are reported).
    #[arg(long, default_value_t = 5)]
    repetitions: usize,
    #[arg(long)]
    json: bool,
    /// Engine section: also measure decode with one competing busy process (started and
    /// stopped by the benchmark) against every fixed thread count, interleaved with the quiet
    /// machine.
    #[arg(long)]
    contention: bool,
    /// Strategies section: write the per-turn latency chart (SVG) here.
    #[arg(long, value_name = "PATH")]
    chart: Option<PathBuf>,
    /// Strategies section: count tokens for the latency model with this Hugging Face
    /// tokenizer.json (the production model's) instead of the engine's tokenizer.
    #[arg(long, value_name = "JSON")]
    tokenizer: Option<PathBuf>,
    /// Write the figures as a Markdown section into this file (e.g. docs/benchmarks.md),
    /// replacing the section a previous run wrote there.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// With --report: the llama.cpp anchors' figures (same version, and the older build), as
    /// `bench/compare_llamacpp.sh` writes them (its fourth argument).
    #[arg(long, value_name = "JSON", requires = "report")]
    reference: Option<PathBuf>,
}

/// Snippets per sandbox measurement, and codeAction requests per LSP measurement.
const SANDBOX_ITERATIONS: usize = 200;
const LSP_CODE_ACTIONS: usize = 200;
/// Commands per jail start-up measurement (`true`, jailed and plain).
const COMMAND_ITERATIONS: usize = 100;
/// Cancelled snippets per kind (each costs a worker start).
const CANCEL_ITERATIONS: usize = 10;

/// Workload sizes fixed by INTERFACES.md §4.
const WORKLOAD_PROMPT_TOKENS: usize = 512;
const WORKLOAD_DECODE_TOKENS: usize = 128;
const WARM_NEW_TOKENS: usize = 50;
/// Fresh servers the follow-up section starts (each answers three questions). Five, as its
/// ratio compares times taken tens of seconds apart on a shared machine.
const FOLLOWUP_ROUNDS: usize = 5;

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let spec = EngineSpec::parse(&args.engine)?;
    let threads = args.threads;
    // Before any section writes a file (the chart), so `-dirty` means the code, not our output.
    let commit = args.report.as_ref().and_then(|_| git_commit());
    let mut report = json!({
        "machine": {
            "cpu": cpu_name(),
            "threads": threads.map_or(llama::default_threads(), |n| n.max(1) as usize),
            "cpu_features": cpu_features(),
            "os": format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            "build": build_description(),
        }
    });
    let wants = |section: Section| args.only.is_none_or(|only| only == section);
    // First: the server's RSS is read in this process, before a model or a sandbox adds to it.
    if wants(Section::Lsp) {
        report["lsp"] = bench_lsp()?;
    }
    if wants(Section::Engine) {
        let prompt_path = args.prompt.clone().unwrap_or_else(default_prompt_path);
        let text = std::fs::read_to_string(&prompt_path)
            .with_context(|| format!("reading the workload prompt {}", prompt_path.display()))?;
        report["engine"] = bench_engine(&spec, threads, &text, args.repetitions, args.contention)?;
    }
    if wants(Section::Sandbox) {
        report["sandbox"] = bench_sandbox()?;
    }
    if wants(Section::Followup) {
        report["followup"] = followup::run(&rewrite::workload_dir(), FOLLOWUP_ROUNDS)?;
    }
    if wants(Section::Rewrite) {
        report["rewrite"] = rewrite::run(&spec, threads, args.repetitions)?;
    }
    if wants(Section::Strategies) {
        report["strategies"] = strategies::run(
            &spec,
            threads,
            args.repetitions,
            args.tokenizer.as_deref(),
            args.chart.as_deref(),
        )?;
    }
    if let Some(path) = &args.report {
        write_report(path, args.reference.as_deref(), commit.as_deref(), &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(Outcome::Success)
}

/// Splices the figures into `path` as its generated section (atomically; other text is kept).
fn write_report(
    path: &Path,
    reference: Option<&Path>,
    commit: Option<&str>,
    figures: &Value,
) -> anyhow::Result<()> {
    let reference: Option<Value> = reference
        .map(|file| -> anyhow::Result<Value> {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading --reference {}", file.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("--reference {} is not JSON", file.display()))
        })
        .transpose()?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let command = std::iter::once("punie".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let places = machine_places();
    let context = report::ReportContext {
        command: &command,
        date: &report::utc_date(now),
        commit,
        places: &places,
    };
    let section = report::render(figures, reference.as_ref(), &context);
    let path = crate::workspace::follow_user_links(path);
    crate::workspace::write_atomic(&path, report::splice(&existing, &section))
        .map_err(|err| anyhow::anyhow!("writing {}: {err}", path.display()))
}

/// The directories a report names portably, longest first: the repository (where the bench
/// runs) becomes relative, the home directory `~`, the temporary directory `$TMPDIR`.
fn machine_places() -> Vec<(String, String)> {
    let dir = |path: std::path::PathBuf| {
        let text = path.to_string_lossy().trim_end_matches('/').to_owned();
        format!("{text}/")
    };
    let mut places = Vec::new();
    if let Ok(repo) = std::env::current_dir() {
        places.push((dir(repo), String::new()));
    }
    if let Some(home) = std::env::var_os("HOME") {
        places.push((dir(home.into()), "~/".to_owned()));
    }
    places.push((dir(std::env::temp_dir()), "$TMPDIR/".to_owned()));
    places.sort_by_key(|(dir, _)| std::cmp::Reverse(dir.len()));
    places
}

/// The checked-out commit of this repository (`-dirty` with uncommitted changes), when git can
/// tell.
fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

fn bench_engine(
    spec: &EngineSpec,
    threads: Option<i32>,
    text: &str,
    repetitions: usize,
    contention: bool,
) -> anyhow::Result<Value> {
    let config = EngineConfig {
        threads,
        ..EngineConfig::from_env().map_err(anyhow::Error::msg)?
    };
    let path =
        llama::model_path(spec, &config).context("the engine benchmark needs a llama engine")?;
    let started = Instant::now();
    let model = llama::load_model(&path, &config)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;

    let workload = llama::run_workload(
        &model,
        &config,
        text,
        WORKLOAD_PROMPT_TOKENS,
        WORKLOAD_DECODE_TOKENS,
        repetitions,
    )?;
    let prefill_tok_s = workload.n_prompt as f64 / workload.prefill.as_secs_f64();
    let decode_tok_s = workload.n_decode as f64 / workload.decode.as_secs_f64();

    // Time to first token through the engine the agent uses: cold on an empty cache, then warm
    // with the same prefix and 50 more tokens.
    let mut ttft_cold = Vec::new();
    let mut ttft_warm = Vec::new();
    let mut warm_tokens_evaluated = 0;
    let (cold_prompt, warm_prompt) = ttft_prompts(&model, text);
    for _ in 0..repetitions {
        let mut engine = LlamaEngine::new(
            &model,
            &path,
            &EngineConfig {
                n_ctx: Some(2048),
                ..config.clone()
            },
        )?;
        let one_token = |prompt: &str| GenerateRequest {
            prompt: prompt.to_owned(),
            quoted: Vec::new(),
            turn: 0,
            sampling: Sampling {
                max_tokens: 1,
                ignore_eog: true,
                stop: Vec::new(),
                ..Sampling::default()
            },
        };
        let cold = engine.generate(
            &one_token(&cold_prompt),
            &CancelFlag::default(),
            &mut |_| {},
        )?;
        let warm = engine.generate(
            &one_token(&warm_prompt),
            &CancelFlag::default(),
            &mut |_| {},
        )?;
        ttft_cold.push(cold.timings.time_to_first_token);
        ttft_warm.push(warm.timings.time_to_first_token);
        warm_tokens_evaluated = warm.n_evaluated;
    }
    let mut figures = json!({
        "model": path.display().to_string(),
        "repack_weights": llama::repacks_weights(&config),
        "flash_attention": llama::FlashAttention::for_config(&config).name(),
        "cache_type": llama::cache_type(&model, &config).name(),
        "decode_threads": threads.map_or_else(
            || format!("adaptive (settled on {})", workload.decode_threads),
            |n| n.to_string()
        ),
        "load_ms": round1(load_ms),
        "prefill_tok_s": round1(prefill_tok_s),
        "decode_tok_s": round1(decode_tok_s),
        "ttft_cold_ms": round1(llama::median(&mut ttft_cold).as_secs_f64() * 1e3),
        "ttft_warm_ms": round1(llama::median(&mut ttft_warm).as_secs_f64() * 1e3),
        "warm_tokens_evaluated": warm_tokens_evaluated,
        "workload": {"prompt_tokens": workload.n_prompt, "decode_tokens": workload.n_decode, "repetitions": repetitions},
    });
    if contention {
        figures["contention"] = contention::run(
            &model,
            &config,
            text,
            WORKLOAD_PROMPT_TOKENS,
            WORKLOAD_DECODE_TOKENS,
        )?;
    }
    Ok(figures)
}

fn bench_sandbox() -> anyhow::Result<Value> {
    let mut sandbox = crate::sandbox::Sandbox::new(crate::sandbox::SandboxLimits::default())
        .context("cannot start the sandbox")?;
    let figures = crate::sandbox::overhead_bench(&mut sandbox, SANDBOX_ITERATIONS)?;
    let command = crate::jail::startup_bench(COMMAND_ITERATIONS)?;
    let cancel = crate::sandbox::cancel_bench(&mut sandbox, CANCEL_ITERATIONS)?;
    Ok(json!({
        "overhead_p50_ms": round2(figures.trivial_p50_ms),
        "overhead_p99_ms": round2(figures.trivial_p99_ms),
        "tool_snippet_p50_ms": round2(figures.tool_snippet_p50_ms),
        "tool_snippet_p99_ms": round2(figures.tool_snippet_p99_ms),
        "iterations": figures.iterations,
        "command_jailed_p50_ms": round2(command.jailed_p50_ms),
        "command_jailed_p99_ms": round2(command.jailed_p99_ms),
        "command_unconfined_p50_ms": round2(command.unconfined_p50_ms),
        "command_iterations": command.iterations,
        "cancel_compute_p50_ms": round2(cancel.compute_p50_ms),
        "cancel_compute_max_ms": round2(cancel.compute_max_ms),
        "cancel_command_p50_ms": round2(cancel.command_p50_ms),
        "cancel_command_max_ms": round2(cancel.command_max_ms),
        "cancel_iterations": cancel.iterations,
    }))
}

fn bench_lsp() -> anyhow::Result<Value> {
    let figures = crate::lsp::bench::bench(LSP_CODE_ACTIONS)?;
    Ok(json!({
        "code_action_p50_ms": round2(figures.code_action_p50_ms),
        "code_action_p99_ms": round2(figures.code_action_p99_ms),
        "cancel_to_end_ms": round2(figures.cancel_to_end_ms),
        "rss_mb": round1(figures.rss_mb),
        "code_actions": figures.code_actions,
    }))
}

/// A ~500-token prompt and the same prompt with about 50 more tokens.
fn ttft_prompts(model: &llama::LlamaModel, text: &str) -> (String, String) {
    let cold = llama::text_of_first_tokens(model, text, WORKLOAD_PROMPT_TOKENS);
    let warm = llama::text_of_first_tokens(model, text, WORKLOAD_PROMPT_TOKENS + WARM_NEW_TOKENS);
    (cold, warm)
}

fn default_prompt_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/prompt.txt")
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// The CPU features llama.cpp's kernels depend on, as the machine reports them (`/proc/cpuinfo`
/// flags on Linux): whether weight repacking has AMX tiles to use, and the widest vectors.
fn cpu_features() -> Vec<&'static str> {
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("flags")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    [
        "avx2",
        "fma",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_int8",
    ]
    .into_iter()
    .filter(|feature| flags.contains(feature))
    .collect()
}

/// Which SIMD the build of llama.cpp can use: the figures depend on it.
fn build_description() -> String {
    let native = cfg!(target_feature = "avx2") && cfg!(target_feature = "fma");
    if native {
        "native (AVX2+FMA)".to_owned()
    } else {
        "baseline SIMD (no AVX2/FMA)".to_owned()
    }
}

fn print_table(report: &Value) {
    let machine = &report["machine"];
    println!(
        "machine: {} ({} threads, {}), build {}",
        machine["cpu"], machine["threads"], machine["os"], machine["build"]
    );
    if let Some(engine) = report.get("engine") {
        println!("engine:  {}", engine["model"]);
        for key in [
            "repack_weights",
            "flash_attention",
            "load_ms",
            "prefill_tok_s",
            "decode_tok_s",
            "ttft_cold_ms",
            "ttft_warm_ms",
            "warm_tokens_evaluated",
        ] {
            println!("  {key:<22} {}", engine[key]);
        }
    }
    for section in ["sandbox", "lsp", "rewrite", "followup"] {
        if let Some(Value::Object(figures)) = report.get(section) {
            println!("{section}:");
            for (key, value) in figures {
                println!("  {key:<22} {value}");
            }
        }
    }
    if let Some(strategies) = report.get("strategies") {
        print!("{}", strategies::table(strategies));
    }
}
