//! The same-version anchor for `punie bench --only engine`: llama.cpp itself, driven through its C
//! API (`llama-cpp-sys-2`, the very build Punie links), running the fixed workload of
//! INTERFACES.md §4 with no Punie code in between. `bench/compare_llamacpp.sh` interleaves it with
//! Punie.
//!
//! Workload: the first 512 tokens of the prompt file (special tokens added, not parsed) decoded
//! in one batch with logits for the last position only, then 128 single-token greedy decodes with
//! end-of-generation ignored; `n_ctx = n_batch = n_ubatch = 2048`; the KV cache cleared between
//! repetitions; one warm-up; medians of the repetitions. Flash attention, the KV cache type and
//! weight repacking are set explicitly (`--flash-attn`, `--cache-type`, `--repack`) so the anchor
//! runs with Punie's settings. Prints one JSON object.
//!
//! ```text
//! cargo run --example llamacpp_reference -- --model M.gguf --prompt bench/prompt.txt \
//!     [--threads 2] [--repetitions 5] [--repack 1] [--flash-attn 1] [--cache-type q8_0]
//! ```
//!
//! `--batch-cost N` measures something else: what a decode call of 1, 2, 4, … 32 tokens with
//! logits at every position (a prompt-lookup verification batch) costs after N cached tokens of
//! the prompt file, against a single-token call. Each batch is removed from the cache again.
//! Prints the medians and the ratios: how a model's quantization and the KV cache settings
//! price a draft, whatever the model answers.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use llama_cpp_sys_2 as sys;

const N_PROMPT: usize = 512;
const N_DECODE: usize = 128;
const N_CTX: u32 = 2048;
/// The llama.cpp this measures: the vendored source of the `llama-cpp-sys-2` that server/Cargo.toml
/// pins with `=`.
const LLAMA_CPP: &str = "llama.cpp of llama-cpp-sys-2 0.1.160";

struct Options {
    model: String,
    prompt: String,
    threads: i32,
    repetitions: usize,
    repack: bool,
    flash_attn: bool,
    /// KV cache type as `punie bench` reports its own: `f16`, `q8_0` or `bf16` for keys and
    /// values alike, or `KEYS/VALUES` (`q8_0/f16`).
    cache_type: String,
    /// `--batch-cost`: the cached tokens to measure verification batches over.
    batch_cost_after: Option<usize>,
}

/// The batch sizes `--batch-cost` measures.
const COST_BATCHES: [usize; 6] = [1, 2, 4, 8, 16, 32];

fn main() {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("llamacpp_reference: {message}");
            std::process::exit(2);
        }
    };
    match run(&options) {
        Ok(json) => println!("{json}"),
        Err(message) => {
            eprintln!("llamacpp_reference: {message}");
            std::process::exit(1);
        }
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        model: String::new(),
        prompt: String::new(),
        threads: 2,
        repetitions: 5,
        repack: true,
        flash_attn: true,
        cache_type: "q8_0/f16".to_owned(),
        batch_cost_after: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag} {value}"))
        };
        match flag.as_str() {
            "--model" => options.model = value.clone(),
            "--prompt" => options.prompt = value.clone(),
            "--threads" => options.threads = number()? as i32,
            "--repetitions" => options.repetitions = number()?,
            "--repack" => options.repack = number()? != 0,
            "--flash-attn" => options.flash_attn = number()? != 0,
            "--cache-type" => options.cache_type = value.clone(),
            "--batch-cost" => options.batch_cost_after = Some(number()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.model.is_empty() || options.prompt.is_empty() {
        return Err("--model and --prompt are required".to_owned());
    }
    Ok(options)
}

/// The ggml types of keys and values a `--cache-type` names.
fn cache_types(name: &str) -> Result<(sys::ggml_type, sys::ggml_type), String> {
    let ggml_type = |name: &str| match name {
        "f16" => Ok(sys::GGML_TYPE_F16),
        "q8_0" => Ok(sys::GGML_TYPE_Q8_0),
        "bf16" => Ok(sys::GGML_TYPE_BF16),
        other => Err(format!(
            "--cache-type {other}: expected f16, q8_0 or bf16, or KEYS/VALUES"
        )),
    };
    let (keys, values) = name.split_once('/').unwrap_or((name, name));
    Ok((ggml_type(keys)?, ggml_type(values)?))
}

fn run(options: &Options) -> Result<String, String> {
    let text = std::fs::read_to_string(&options.prompt).map_err(|e| format!("prompt: {e}"))?;
    let model_path = CString::new(options.model.as_str()).map_err(|e| e.to_string())?;
    // SAFETY: plain llama.cpp C API calls in the documented order (backend, model, context,
    // batch, decode; everything freed at the end). Pointers are checked for NULL on creation and
    // every buffer passed is large enough for the counts passed with it.
    unsafe {
        sys::llama_backend_init();
        let mut model_params = sys::llama_model_default_params();
        model_params.use_extra_bufts = options.repack;
        let model = NonNull::new(sys::llama_model_load_from_file(
            model_path.as_ptr(),
            model_params,
        ))
        .ok_or("cannot load the model")?;
        let vocab = sys::llama_model_get_vocab(model.as_ptr());

        let mut ctx_params = sys::llama_context_default_params();
        ctx_params.n_ctx = N_CTX;
        ctx_params.n_batch = N_CTX;
        ctx_params.n_ubatch = N_CTX;
        ctx_params.n_threads = options.threads;
        ctx_params.n_threads_batch = options.threads;
        ctx_params.flash_attn_type = if options.flash_attn {
            sys::LLAMA_FLASH_ATTN_TYPE_ENABLED
        } else {
            sys::LLAMA_FLASH_ATTN_TYPE_DISABLED
        };
        (ctx_params.type_k, ctx_params.type_v) = cache_types(&options.cache_type)?;
        let ctx = NonNull::new(sys::llama_init_from_model(model.as_ptr(), ctx_params))
            .ok_or("cannot create the context")?;

        let mut tokens = vec![0; text.len() + 16];
        let n_tokens = sys::llama_tokenize(
            vocab,
            text.as_ptr().cast(),
            text.len() as i32,
            tokens.as_mut_ptr(),
            tokens.len() as i32,
            true,
            false,
        );
        if n_tokens < 0 {
            return Err("cannot tokenize the prompt".to_owned());
        }
        tokens.truncate(n_tokens as usize);
        if let Some(cached) = options.batch_cost_after {
            let largest = COST_BATCHES[COST_BATCHES.len() - 1];
            if cached + largest > tokens.len() || cached + largest > N_CTX as usize {
                return Err(format!(
                    "--batch-cost {cached}: the prompt file has {} tokens and the context {N_CTX}; {largest} more are needed",
                    tokens.len()
                ));
            }
        } else {
            tokens.truncate(N_PROMPT);
        }

        let mut batch = sys::llama_batch_init(N_CTX as i32, 0, 1);
        let set_batch = |batch: &mut sys::llama_batch, items: &[(i32, i32, bool)]| {
            batch.n_tokens = items.len() as i32;
            for (i, &(token, pos, logits)) in items.iter().enumerate() {
                *batch.token.add(i) = token;
                *batch.pos.add(i) = pos;
                *batch.n_seq_id.add(i) = 1;
                *(*batch.seq_id.add(i)) = 0;
                *batch.logits.add(i) = i8::from(logits);
            }
        };
        let sampler = sys::llama_sampler_init_greedy();
        let memory = sys::llama_get_memory(ctx.as_ptr());
        let prompt_items: Vec<(i32, i32, bool)> = (0..tokens.len())
            .map(|i| (tokens[i], i as i32, i + 1 == tokens.len()))
            .collect();

        if let Some(cached) = options.batch_cost_after {
            let cached_items: Vec<(i32, i32, bool)> =
                (0..cached).map(|i| (tokens[i], i as i32, false)).collect();
            set_batch(&mut batch, &cached_items);
            if sys::llama_decode(ctx.as_ptr(), batch) != 0 {
                return Err("llama_decode failed on the cached tokens".to_owned());
            }
            let mut medians = Vec::new();
            for n in COST_BATCHES {
                let items: Vec<(i32, i32, bool)> = (cached..cached + n)
                    .map(|i| (tokens[i], i as i32, true))
                    .collect();
                let mut times = Vec::new();
                for rep in 0..=options.repetitions {
                    set_batch(&mut batch, &items);
                    let started = Instant::now();
                    if sys::llama_decode(ctx.as_ptr(), batch) != 0 {
                        return Err(format!("llama_decode failed on a batch of {n}"));
                    }
                    let elapsed = started.elapsed();
                    sys::llama_memory_seq_rm(memory, 0, cached as i32, -1);
                    // Repetition 0 is the warm-up.
                    if rep > 0 {
                        times.push(elapsed);
                    }
                }
                medians.push(median(&mut times).as_secs_f64() * 1e3);
            }
            let figures: Vec<String> = COST_BATCHES
                .iter()
                .zip(&medians)
                .map(|(n, ms)| {
                    format!(
                        "{{\"tokens\": {n}, \"ms\": {ms:.2}, \"steps\": {:.2}}}",
                        ms / medians[0]
                    )
                })
                .collect();
            sys::llama_sampler_free(sampler);
            sys::llama_batch_free(batch);
            sys::llama_free(ctx.as_ptr());
            sys::llama_model_free(model.as_ptr());
            return Ok(format!(
                "{{\"engine\": \"{LLAMA_CPP}\", \"threads\": {}, \"repack_weights\": {}, \"flash_attention\": {}, \"cache_type\": \"{}\", \"cached_tokens\": {cached}, \"batches\": [{}]}}",
                options.threads,
                options.repack,
                options.flash_attn,
                options.cache_type,
                figures.join(", ")
            ));
        }

        let mut prefill_times = Vec::new();
        let mut decode_times = Vec::new();
        for rep in 0..=options.repetitions {
            sys::llama_memory_clear(memory, true);
            set_batch(&mut batch, &prompt_items);
            let started = Instant::now();
            if sys::llama_decode(ctx.as_ptr(), batch) != 0 {
                return Err("llama_decode failed on the prompt".to_owned());
            }
            let prefill = started.elapsed();
            let started = Instant::now();
            for position in tokens.len()..tokens.len() + N_DECODE {
                let token = sys::llama_sampler_sample(sampler, ctx.as_ptr(), -1);
                set_batch(&mut batch, &[(token, position as i32, true)]);
                if sys::llama_decode(ctx.as_ptr(), batch) != 0 {
                    return Err("llama_decode failed on a token".to_owned());
                }
            }
            let decode = started.elapsed();
            // Repetition 0 is the warm-up.
            if rep > 0 {
                prefill_times.push(prefill);
                decode_times.push(decode);
            }
        }
        sys::llama_sampler_free(sampler);
        sys::llama_batch_free(batch);
        sys::llama_free(ctx.as_ptr());
        sys::llama_model_free(model.as_ptr());

        let prefill = median(&mut prefill_times).as_secs_f64();
        let decode = median(&mut decode_times).as_secs_f64();
        Ok(format!(
            "{{\"engine\": \"{LLAMA_CPP}\", \"threads\": {}, \"repack_weights\": {}, \"flash_attention\": {}, \"cache_type\": \"{}\", \"prefill_tok_s\": {:.1}, \"decode_tok_s\": {:.1}, \"prompt_tokens\": {}}}",
            options.threads,
            options.repack,
            options.flash_attn,
            options.cache_type,
            tokens.len() as f64 / prefill,
            N_DECODE as f64 / decode,
            tokens.len(),
        ))
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}
