//! The llama.cpp engine: a GGUF model run in-process through `llama-cpp-2`.
//!
//! This is the only module that imports `llama_cpp_2`. The model and its context live on the
//! engine thread (see `handle.rs`): the context borrows the model and is not `Sync`, so
//! [`run`] loads both on that thread and serves requests until the handle is dropped.
//!
//! **Prompt reuse.** [`LlamaEngine`] remembers the tokens in its KV cache. A request is
//! tokenized whole and compared with them; the cache is cut after the longest common prefix
//! (`kv_cache_seq_rm`) and only the remaining tokens are evaluated. An agent turn after a tool
//! result therefore pays only for the tool result and the new turn. Tokenizing the whole prompt
//! each time (instead of trusting the caller to append) keeps this correct whatever the caller
//! sends: a divergence anywhere just means more tokens are evaluated.
//!
//! **Cancellation** is checked between decode calls (llama.cpp 0.1.160 has no abort callback).
//! The prompt is evaluated in chunks of at most [`PREFILL_CHUNK`] tokens so a long prompt can
//! be cancelled part-way.
//!
//! **CPU choices**, both measured in docs/benchmarks.md and switchable through [`EngineConfig`]:
//! llama.cpp repacks weights into CPU-specific layouts (its default; see [`load_model`]), and
//! flash attention is off in CPU-only builds ([`FlashAttention`]).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
pub use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::stop::{StopMatcher, Utf8Assembler};
use super::{
    CancelFlag, Engine, EngineConfig, EngineError, EngineSpec, FinishReason, GenerateRequest,
    Generation, Sampling,
};
use crate::models::gguf;

/// Context size when neither the caller nor a smaller model limit says otherwise.
const DEFAULT_MAX_CTX: u32 = 8192;
/// Tokens per prompt-evaluation call: large enough for full-speed matrix products, small enough
/// that a cancel is seen within about a second on a 2-core CPU.
const PREFILL_CHUNK: usize = 256;
/// Batch capacity: the largest prompt chunk a single decode call may take.
const MAX_BATCH: u32 = 2048;

/// llama.cpp's global backend, initialised once per process (a second init is an error).
pub(crate) fn init_backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        // llama.cpp logs to stderr by default; route it through tracing so `PUNIE_LOG` controls it.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("the backend is initialised only here")
    })
}

/// The GGUF file an engine SPEC names.
pub fn model_path(spec: &EngineSpec, config: &EngineConfig) -> Result<PathBuf, EngineError> {
    match spec {
        EngineSpec::Llama { path } => Ok(path.clone()),
        EngineSpec::Default => match &config.default_model {
            Some(path) => Ok(path.clone()),
            None => crate::models::default_model_path().map_err(|err| EngineError::ModelMissing {
                path: format!("the default model ({err})"),
            }),
        },
        other => Err(EngineError::Backend(format!(
            "{other} is not a llama.cpp engine"
        ))),
    }
}

/// Threads for llama.cpp: the configured number, else the number of physical cores.
pub fn default_threads() -> i32 {
    physical_cores().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        as i32
}

/// Physical cores from `/proc/cpuinfo` (hyper-threads slow llama.cpp down); `None` elsewhere.
fn physical_cores() -> Option<usize> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut cores = std::collections::HashSet::new();
    let mut physical_id = "";
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "physical id" => physical_id = value.trim(),
            "core id" => {
                cores.insert((physical_id.to_owned(), value.trim().to_owned()));
            }
            _ => {}
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// Checks the file, loads the model (weights are memory-mapped) and returns it, with llama.cpp's
/// weight repacking unless `config.repack_weights` turns it off.
pub fn load_model(path: &Path, config: &EngineConfig) -> Result<LlamaModel, EngineError> {
    load_checked(path, false, repacks_weights(config), None)
}

/// Whether llama.cpp repacks the weights: as configured, else yes (llama.cpp's default).
pub fn repacks_weights(config: &EngineConfig) -> bool {
    config.repack_weights.unwrap_or(true)
}

/// How llama.cpp is asked to use flash attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttention {
    On,
    Off,
    /// llama.cpp decides per device.
    Auto,
}

impl FlashAttention {
    /// As configured, else `Auto` where a GPU backend is built in and `Off` on the CPU, where
    /// it made single-token decode 2.3 times slower and small prompt batches 4 times slower
    /// (docs/benchmarks.md).
    pub fn for_config(config: &EngineConfig) -> FlashAttention {
        match config.flash_attention {
            Some(true) => FlashAttention::On,
            Some(false) => FlashAttention::Off,
            None if cfg!(any(feature = "metal", feature = "cuda")) => FlashAttention::Auto,
            None => FlashAttention::Off,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FlashAttention::On => "on",
            FlashAttention::Off => "off",
            FlashAttention::Auto => "auto",
        }
    }

    fn policy(self) -> llama_cpp_sys_2::llama_flash_attn_type {
        match self {
            FlashAttention::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttention::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            FlashAttention::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
        }
    }
}

/// Context parameters shared by the engine and the benchmark workload.
fn context_params(config: &EngineConfig, n_ctx: u32, n_batch: u32) -> LlamaContextParams {
    let threads = config.threads.unwrap_or_else(default_threads);
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(FlashAttention::for_config(config).policy())
}

/// Loads only the vocabulary of a GGUF model (no weights), for tokenization.
pub fn load_vocab(path: &Path) -> Result<LlamaModel, EngineError> {
    load_checked(path, true, false, None)
}

/// Loads the model unless `cancel` is set before it is done (llama.cpp asks between tensors).
fn load_checked(
    path: &Path,
    vocab_only: bool,
    repack_weights: bool,
    cancel: Option<&CancelFlag>,
) -> Result<LlamaModel, EngineError> {
    let path_str = path.display().to_string();
    match gguf::read_header(path) {
        Ok(_) => {}
        Err(gguf::GgufError::Missing { .. }) => {
            return Err(EngineError::ModelMissing { path: path_str });
        }
        Err(err) => {
            return Err(EngineError::ModelInvalid {
                path: path_str,
                reason: err.to_string(),
            });
        }
    }
    load_with_llama_cpp(path, vocab_only, repack_weights, cancel).map_err(|reason| {
        EngineError::ModelInvalid {
            path: path_str,
            reason: format!("{reason}; run with PUNIE_LOG=debug for llama.cpp's log"),
        }
    })
}

/// Loads a model with llama.cpp's default parameters plus our two choices.
///
/// `repack_weights` is llama.cpp's `use_extra_bufts`: weights are copied into a CPU-specific
/// layout (AMX tiles, AVX2/NEON interleaving). On the AMX CPU measured it made prompt evaluation
/// 2.9 times and decode 1.5 times faster (docs/benchmarks.md); the switch exists for CPUs where
/// it does not pay. `llama-cpp-2` 0.1.160 keeps that field private, so this calls llama.cpp
/// itself and hands the model to `LlamaModel`, which owns and frees it.
fn load_with_llama_cpp(
    path: &Path,
    vocab_only: bool,
    repack_weights: bool,
    cancel: Option<&CancelFlag>,
) -> Result<LlamaModel, String> {
    init_backend();
    let c_path = path
        .to_str()
        .and_then(|text| std::ffi::CString::new(text).ok())
        .ok_or_else(|| "llama.cpp needs a UTF-8 path without NUL bytes".to_owned())?;
    // SAFETY: a plain C call that returns a struct by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_default_params() };
    params.vocab_only = vocab_only;
    params.use_extra_bufts = repack_weights;
    if let Some(cancel) = cancel {
        params.progress_callback = Some(continue_loading);
        params.progress_callback_user_data = std::ptr::from_ref(cancel).cast_mut().cast();
    }
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `params` holds only llama.cpp's
    // own defaults besides the two flags set above.
    let raw = unsafe { llama_cpp_sys_2::llama_model_load_from_file(c_path.as_ptr(), params) };
    let raw =
        std::ptr::NonNull::new(raw).ok_or_else(|| "llama.cpp could not load it".to_owned())?;
    // SAFETY: `LlamaModel` is `#[repr(transparent)]` over `Ptr`, itself `#[repr(transparent)]`
    // over `NonNull<llama_model>` (llama-cpp-2 is pinned to =0.1.160; `transmute` also refuses
    // to compile if the sizes ever differ). It takes ownership and frees the model on drop,
    // exactly as after `LlamaModel::load_from_file`.
    Ok(unsafe {
        std::mem::transmute::<std::ptr::NonNull<llama_cpp_sys_2::llama_model>, LlamaModel>(raw)
    })
}

/// llama.cpp's load progress callback: `false` stops the load.
unsafe extern "C" fn continue_loading(_progress: f32, cancel: *mut std::ffi::c_void) -> bool {
    // SAFETY: `cancel` is the `&CancelFlag` given to `load_with_llama_cpp`, which outlives the
    // load call that calls this.
    let cancel = unsafe { &*cancel.cast::<CancelFlag>() };
    !cancel.is_cancelled()
}

/// Loads the model on this thread (giving up if `cancel` is set meanwhile), reports the
/// outcome, then serves requests until the handle is dropped. Returns an error only if loading
/// failed (before `report_load` was called).
pub(crate) fn run(
    spec: &EngineSpec,
    config: &EngineConfig,
    cancel: &CancelFlag,
    report_load: impl FnOnce(Result<String, EngineError>),
    serve_jobs: impl FnOnce(&mut dyn Engine),
) -> Result<(), EngineError> {
    let path = model_path(spec, config)?;
    let started = Instant::now();
    let model = load_checked(&path, false, repacks_weights(config), Some(cancel))?;
    let mut engine = LlamaEngine::new(&model, &path, config)?;
    tracing::info!("loaded {} in {:?}", engine.describe(), started.elapsed());
    report_load(Ok(engine.describe()));
    serve_jobs(&mut engine);
    Ok(())
}

/// A loaded model with its context and the bookkeeping for prompt reuse.
pub struct LlamaEngine<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    // Invariant: exactly the tokens whose keys and values are in the KV cache of sequence 0,
    // at positions 0..cached.len().
    cached: Vec<LlamaToken>,
    batch: LlamaBatch<'static>,
    description: String,
}

impl<'m> LlamaEngine<'m> {
    pub fn new(
        model: &'m LlamaModel,
        path: &Path,
        config: &EngineConfig,
    ) -> Result<LlamaEngine<'m>, EngineError> {
        let n_ctx = config
            .n_ctx
            .unwrap_or_else(|| model.n_ctx_train().clamp(1, DEFAULT_MAX_CTX));
        let n_batch = n_ctx.min(MAX_BATCH);
        let threads = config.threads.unwrap_or_else(default_threads);
        let params = context_params(config, n_ctx, n_batch);
        let context =
            model
                .new_context(init_backend(), params)
                .map_err(|err| EngineError::ModelInvalid {
                    path: path.display().to_string(),
                    reason: format!("cannot create a context of {n_ctx} tokens: {err}"),
                })?;
        let description = format!(
            "llama:{} (n_ctx {}, {} threads)",
            path.display(),
            context.n_ctx(),
            threads
        );
        Ok(LlamaEngine {
            model,
            context,
            cached: Vec::new(),
            batch: LlamaBatch::new(n_batch as usize, 1),
            description,
        })
    }

    pub fn n_ctx(&self) -> usize {
        self.context.n_ctx() as usize
    }

    /// Tokens of `text` as a chat prompt: special tokens parsed, BOS added if the model wants it.
    pub fn tokenize_prompt(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), true, true)
    }

    /// Makes the KV cache hold exactly `tokens`, evaluating only what is not cached already.
    /// Returns how many tokens were evaluated, or `None` if cancelled part-way.
    fn evaluate_prompt(
        &mut self,
        tokens: &[LlamaToken],
        cancel: &CancelFlag,
    ) -> Result<Option<usize>, EngineError> {
        let mut n_common = common_prefix_len(&self.cached, tokens);
        // The last prompt token must be evaluated again to get logits for the next one.
        if n_common == tokens.len() {
            n_common = n_common.saturating_sub(1);
        }
        self.truncate_cache(n_common);
        // Usually `n_common`, but 0 if the cache could not keep a prefix.
        let to_evaluate = &tokens[self.cached.len()..];
        for (chunk_idx, chunk) in to_evaluate.chunks(PREFILL_CHUNK).enumerate() {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let is_last_chunk = (chunk_idx + 1) * PREFILL_CHUNK >= to_evaluate.len();
            self.decode(chunk, is_last_chunk)?;
        }
        Ok(Some(to_evaluate.len()))
    }

    /// Keeps the first `keep` cached tokens, or none if the cache cannot drop a suffix.
    fn truncate_cache(&mut self, keep: usize) {
        if keep < self.cached.len() {
            if self
                .context
                .kv_cache_seq_rm(0, Some(keep as u32), None)
                .is_ok()
            {
                self.cached.truncate(keep);
            } else {
                // Some caches (recurrent models) cannot drop a suffix: start from scratch.
                self.context.clear_kv_cache();
                self.cached.clear();
            }
        }
    }

    /// Appends `tokens` at the end of the cache; logits only for the last one, if asked.
    fn decode(&mut self, tokens: &[LlamaToken], logits_for_last: bool) -> Result<(), EngineError> {
        self.batch.clear();
        let start = self.cached.len();
        for (idx, token) in tokens.iter().enumerate() {
            let wants_logits = logits_for_last && idx + 1 == tokens.len();
            self.batch
                .add(*token, (start + idx) as i32, &[0], wants_logits)
                .map_err(|err| EngineError::Backend(format!("batch: {err}")))?;
        }
        if let Err(err) = self.context.decode(&mut self.batch) {
            // The cache may hold part of the batch now: forget it rather than trust it.
            self.context.clear_kv_cache();
            self.cached.clear();
            return Err(EngineError::Backend(format!("llama_decode failed: {err}")));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    fn sampler(sampling: &Sampling) -> LlamaSampler {
        if sampling.temperature <= 0.0 {
            return LlamaSampler::greedy();
        }
        let mut samplers = Vec::new();
        if sampling.top_k > 0 {
            samplers.push(LlamaSampler::top_k(sampling.top_k));
        }
        if sampling.top_p < 1.0 {
            samplers.push(LlamaSampler::top_p(sampling.top_p, 1));
        }
        samplers.push(LlamaSampler::temp(sampling.temperature));
        samplers.push(LlamaSampler::dist(sampling.seed));
        LlamaSampler::chain_simple(samplers)
    }
}

impl Engine for LlamaEngine<'_> {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, EngineError> {
        let started = Instant::now();
        let tokens = self.tokenize_prompt(&request.prompt);
        let tokenized_at = started.elapsed();
        let n_ctx = self.n_ctx();
        if tokens.is_empty() || tokens.len() >= n_ctx {
            return Err(EngineError::ContextOverflow {
                n_prompt: tokens.len(),
                n_ctx,
            });
        }
        let mut res = Generation::empty(tokens.len());
        let Some(n_evaluated) = self.evaluate_prompt(&tokens, cancel)? else {
            res.finish = FinishReason::Cancelled;
            return Ok(res);
        };
        res.n_evaluated = n_evaluated;
        res.timings.prefill = started.elapsed();
        tracing::debug!(
            "prompt: {} tokens, {} evaluated; tokenize {:?}, prefill {:?}",
            res.n_prompt,
            res.n_evaluated,
            tokenized_at,
            res.timings.prefill - tokenized_at
        );

        let max_tokens = request.sampling.max_tokens.min(n_ctx - tokens.len());
        // Where generation stops if the model does not: the caller's cap, or the context's end.
        let cut = if max_tokens < request.sampling.max_tokens {
            FinishReason::ContextFull
        } else {
            FinishReason::Length
        };
        let mut sampler = Self::sampler(&request.sampling);
        let mut utf8 = Utf8Assembler::default();
        let mut stops = StopMatcher::new(&request.sampling.stop);
        let vocab = self.model.vocab();
        let mut first_token_at = None;
        res.finish = cut;
        while res.n_generated < max_tokens {
            if cancel.is_cancelled() {
                res.finish = FinishReason::Cancelled;
                break;
            }
            let token = sampler.sample(&self.context, self.batch.n_tokens() - 1);
            sampler.accept(token);
            first_token_at.get_or_insert_with(|| started.elapsed());
            res.n_generated += 1;
            if vocab.is_eog(token) && !request.sampling.ignore_eog {
                res.finish = FinishReason::Stop;
                break;
            }
            // Special tokens are rendered: `<tool_call>` is one in Qwen's vocabulary.
            let piece = utf8.push(&vocab.token_to_piece(token, true, None));
            let step = stops.push(&piece);
            if !step.emit.is_empty() {
                on_text(&step.emit);
                res.text.push_str(&step.emit);
            }
            if step.stopped {
                res.finish = FinishReason::Stop;
                break;
            }
            // The last token is not decoded: nothing will read its logits, and leaving it out
            // keeps the cache equal to the prompt when `max_tokens` is 1.
            if res.n_generated < max_tokens {
                self.decode(&[token], true)?;
            }
        }
        if res.finish != FinishReason::Stop {
            let rest = stops.push(&utf8.finish()).emit + &stops.finish();
            if !rest.is_empty() {
                on_text(&rest);
                res.text.push_str(&rest);
            }
        }
        let ttft = first_token_at.unwrap_or_else(|| started.elapsed());
        res.timings.time_to_first_token = ttft;
        res.timings.decode = started.elapsed().saturating_sub(ttft);
        Ok(res)
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EngineError> {
        Ok(self
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .len())
    }

    fn context_size(&self) -> Option<usize> {
        Some(self.n_ctx())
    }
}

fn common_prefix_len(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Figures of the fixed engine workload (INTERFACES.md §4).
#[derive(Debug, Clone)]
pub struct WorkloadFigures {
    pub n_prompt: usize,
    pub n_decode: usize,
    /// Medians over the repetitions.
    pub prefill: Duration,
    pub decode: Duration,
}

/// The fixed benchmark workload: the first `n_prompt` tokens of `text` (special tokens added,
/// not parsed) in one batch with logits for the last position, then `n_decode` single-token
/// greedy decodes ignoring end-of-generation; `n_ctx = n_batch = 2048`; the KV cache cleared
/// between repetitions; one warm-up; medians of `repetitions`.
pub fn run_workload(
    model: &LlamaModel,
    config: &EngineConfig,
    text: &str,
    n_prompt: usize,
    n_decode: usize,
    repetitions: usize,
) -> Result<WorkloadFigures, EngineError> {
    let params = context_params(config, MAX_BATCH, MAX_BATCH);
    let mut context = model
        .new_context(init_backend(), params)
        .map_err(|err| EngineError::Backend(format!("context: {err}")))?;
    let mut tokens = model.vocab().tokenize(text.as_bytes(), true, false);
    tokens.truncate(n_prompt);
    let mut batch = LlamaBatch::new(MAX_BATCH as usize, 1);
    let mut prefill_times = Vec::new();
    let mut decode_times = Vec::new();
    let backend_err = |err: &dyn std::fmt::Display| EngineError::Backend(err.to_string());
    for rep in 0..=repetitions {
        context.clear_kv_cache();
        batch.clear();
        batch
            .add_sequence(&tokens, 0, false)
            .map_err(|e| backend_err(&e))?;
        let started = Instant::now();
        context.decode(&mut batch).map_err(|e| backend_err(&e))?;
        let prefill = started.elapsed();
        let mut sampler = LlamaSampler::greedy();
        let first_position = tokens.len() as i32;
        let started = Instant::now();
        for position in first_position..first_position + n_decode as i32 {
            let token = sampler.sample(&context, batch.n_tokens() - 1);
            batch.clear();
            batch
                .add(token, position, &[0], true)
                .map_err(|e| backend_err(&e))?;
            context.decode(&mut batch).map_err(|e| backend_err(&e))?;
        }
        let decode = started.elapsed();
        // Repetition 0 is the warm-up.
        if rep > 0 {
            prefill_times.push(prefill);
            decode_times.push(decode);
        }
    }
    Ok(WorkloadFigures {
        n_prompt: tokens.len(),
        n_decode,
        prefill: median(&mut prefill_times),
        decode: median(&mut decode_times),
    })
}

/// The text of the first `n_tokens` tokens of `text`, to build prompts of a known size.
pub fn text_of_first_tokens(model: &LlamaModel, text: &str, n_tokens: usize) -> String {
    let vocab = model.vocab();
    let mut bytes = Vec::new();
    for token in vocab
        .tokenize(text.as_bytes(), false, false)
        .into_iter()
        .take(n_tokens)
    {
        bytes.extend(vocab.token_to_piece(token, false, None));
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// A GGUF model's tokenizer alone (vocabulary only, no weights), for tokenizer parity checks.
pub struct GgufTokenizer {
    model: LlamaModel,
}

impl GgufTokenizer {
    pub fn load(path: &Path) -> Result<GgufTokenizer, EngineError> {
        Ok(GgufTokenizer {
            model: load_vocab(path)?,
        })
    }

    /// Token ids of `text`, special tokens parsed, nothing added.
    pub fn encode(&self, text: &str) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }
}
