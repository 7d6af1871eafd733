//! The llama.cpp engine: a GGUF model run in-process through `llama-cpp-2`.
//!
//! This module and its submodules under `engine/llama/` are the only code that imports llama.cpp
//! (`llama_cpp_2`, and `llama_cpp_sys_2` where the safe crate has no wrapper): `context.rs`
//! calls llama.cpp's context, batch and sampler directly; [`parity`] and [`quantize`] are the
//! tools of `punie models` that need llama.cpp. The model and its context live on the
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
//! **CPU choices**, measured in docs/benchmarks.md and switchable through [`EngineConfig`]:
//! llama.cpp repacks weights into CPU-specific layouts (its default; see [`load_model`]), and
//! flash attention is on except where llama.cpp runs AMX kernels ([`FlashAttention`]), with an
//! 8-bit keys in the KV cache where it is on ([`cache_type`]).
//! Generation steps choose their thread count from measured step times (`threads.rs`), so a
//! busy machine does not make ggml's threads wait for each other.
//!
//! **Prompt lookup** (`lookup.rs`): greedy generation evaluates a guess of the next tokens, taken
//! from the prompt, in the same batch as the sampled token and keeps what the model agrees with.
//! The output is exactly plain greedy decoding's only if a batch computes each position's logits
//! exactly as a single-token step does; that depends on the model, the CPU and the kernels: the
//! engine uses lookup only where its settings make attention row-exact and a check of the model's
//! own kernels, run once when it is created ([`LlamaEngine::new`]), finds the logits bit for bit
//! equal.

mod context;
mod lookup;
pub mod parity;
pub mod quantize;
mod quoting;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use llama_cpp_2::llama_backend::LlamaBackend;
pub use llama_cpp_2::model::LlamaModel;
pub use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;

pub use self::context::CacheType;
use self::context::{Batch, Context, ContextParams, Sampler};
pub use self::lookup::LookupStats;
use self::lookup::PromptLookup;
use self::quoting::ControlTexts;
use self::threads::ThreadTuner;
use super::stop::{StopMatcher, Utf8Assembler};
use super::{
    CancelFlag, Engine, EngineConfig, EngineError, EngineSpec, FinishReason, GenerateRequest,
    Generation, Sampling,
};
use crate::models::{self, gguf};

/// Context size when neither the caller nor a smaller model limit says otherwise.
const DEFAULT_MAX_CTX: u32 = 8192;
/// Tokens per prompt-evaluation call: large enough for full-speed matrix products, small enough
/// that a cancel is seen within about a second on a 2-core CPU.
const PREFILL_CHUNK: usize = 256;
/// Tokens per [`Engine::prepare`] call into llama.cpp: a request that arrives meanwhile stops the
/// preparation after the call in progress, so it waits at most this many tokens' evaluation
/// (about 0.2 s for the default model on two cores).
const PREPARE_CHUNK: usize = 64;
/// Batch capacity: the largest prompt chunk a single decode call may take.
const MAX_BATCH: u32 = 2048;
/// What the engine evaluates to check that a batch computes each position exactly as a single
/// step does (see [`LlamaEngine::batches_are_exact`]): ordinary code, as a rewrite copies.
const EXACTNESS_PROBE: &str = "def mean(values):\n    total = 0\n    for value in values:\n        total += value\n    return total / len(values)\n";
/// Positions checked in one batch: enough for every kernel variant a draft batch meets.
const EXACTNESS_BATCH: usize = 8;

/// llama.cpp's global backend, initialised once per process (a second init is an error).
pub(crate) fn init_backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        // llama.cpp logs to stderr by default; route it through tracing so `PUNIE_LOG` controls it.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("the backend is initialised only here")
    })
}

/// The GGUF file an engine SPEC names. The default model, and a model of the catalog named
/// by its path, lie in the model directory, which no one chose file by file: they are refused
/// when another local user could have planted them there ([`models::check_not_planted`]). A
/// path the user names is the user's choice.
pub fn model_path(spec: &EngineSpec, config: &EngineConfig) -> Result<PathBuf, EngineError> {
    let path = match spec {
        EngineSpec::Llama { path } => path.clone(),
        EngineSpec::Default => match &config.default_model {
            Some(path) => path.clone(),
            None => models::default_model_path().map_err(|err| EngineError::ModelMissing {
                path: format!("the default model ({err})"),
            })?,
        },
        other => {
            return Err(EngineError::Backend(format!(
                "{other} is not a llama.cpp engine"
            )));
        }
    };
    refuse_planted(spec, &path).map_err(|reason| EngineError::ModelInvalid {
        path: path.display().to_string(),
        reason,
    })?;
    Ok(path)
}

/// Refuses the model file `spec` runs at `path` when it comes from the model directory (the
/// default model, an installed catalog model) and another local user could have put it there
/// or could swap it ([`models::check_not_planted`]); a file the user named elsewhere is theirs.
/// Before anything reads the file: its loading, its chat template.
pub(crate) fn refuse_planted(spec: &EngineSpec, path: &Path) -> Result<(), String> {
    if *spec == EngineSpec::Default || models::installed_entry(path).is_some() {
        models::check_not_planted(path).map_err(|planted| planted.to_string())?;
    }
    Ok(())
}

/// The number of physical cores: llama.cpp's thread count when none is configured.
pub fn default_threads() -> usize {
    physical_cores().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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

/// Whether llama.cpp was built with its AMX kernels (a native build on a CPU with AMX).
pub fn cpu_runs_amx() -> bool {
    init_backend();
    // SAFETY: a plain query of how ggml's CPU backend was compiled.
    unsafe { llama_cpp_sys_2::ggml_cpu_has_amx_int8() != 0 }
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
    /// As configured, else `Auto` where a GPU backend is built in, and on the CPU as measured
    /// per CPU (docs/benchmarks.md): off where llama.cpp runs AMX kernels (on a Sapphire Rapids
    /// Xeon it made single-token decode 2.3 times slower and small prompt batches 4 times
    /// slower), on elsewhere (on an AMD EPYC with AVX-512 and no AMX it made prompts 1.3 and
    /// decode 1.1 times faster, and its kernel computes a batch row by row exactly as single
    /// steps, which prompt lookup needs).
    pub fn for_config(config: &EngineConfig) -> FlashAttention {
        match config.flash_attention {
            Some(true) => FlashAttention::On,
            Some(false) => FlashAttention::Off,
            None if cfg!(any(feature = "metal", feature = "cuda")) => FlashAttention::Auto,
            None if cpu_runs_amx() => FlashAttention::Off,
            None => FlashAttention::On,
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
fn context_params(
    model: &LlamaModel,
    config: &EngineConfig,
    n_ctx: u32,
    n_batch: u32,
) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch,
        threads: threads(config) as i32,
        flash_attention: FlashAttention::for_config(config),
        cache: cache_type(model, config),
    }
}

/// How the KV cache stores keys and values. Where flash attention is on (llama.cpp needs it
/// for a quantized cache): keys in 8-bit blocks (`q8_0`) and values in f16 if the model's key
/// heads allow, else bfloat16. The key type decides the kernel: llama.cpp's CPU flash attention
/// splits a single token's attention over 512 or more cached positions across threads (and
/// tiles batches of 64 rows or more) only when keys are f16 or f32, summing in another order,
/// so a batch's logits would differ from single steps' (by up to 1.0 on SmolLM2) and prompt
/// lookup could not promise plain decoding's output. With `q8_0` keys every query row goes
/// through one kernel whether it comes alone or in a batch. The values' type only changes that
/// kernel's inner loop: f16 values are added as they are, where `q8_0` ones are first converted
/// row by row, which made a lookup batch of 17 tokens over 1,500 cached ones 20% cheaper at
/// the same single-step speed (docs/benchmarks.md). Elsewhere f16, llama.cpp's default.
pub fn cache_type(model: &LlamaModel, config: &EngineConfig) -> CacheType {
    if FlashAttention::for_config(config) != FlashAttention::On {
        return CacheType::F16;
    }
    if key_head_size(model) % 32 == 0 {
        CacheType::Q8_0KeysF16Values
    } else {
        CacheType::Bf16
    }
}

/// The size of the model's key heads: the GGUF's `<arch>.attention.key_length`, else the
/// embedding size over the heads.
fn key_head_size(model: &LlamaModel) -> i64 {
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    model
        .meta_val_str(&format!("{arch}.attention.key_length"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| i64::from(model.n_embd()) / i64::from(model.n_head().max(1)))
}

/// Whether llama.cpp's kernels compute a batch's rows exactly as single steps on any context
/// length: the CPU backend, flash attention on, and a cache other than f16 (see
/// [`cache_type`]). The weights' kernels are checked on the model itself
/// ([`LlamaEngine::batches_are_exact`]).
fn attention_is_row_exact(params: &ContextParams) -> bool {
    !cfg!(any(feature = "metal", feature = "cuda"))
        && params.flash_attention == FlashAttention::On
        && params.cache != CacheType::F16
}

/// Threads for prompt evaluation, and the most a generation step uses: as configured, else the
/// physical cores.
fn threads(config: &EngineConfig) -> usize {
    config
        .threads
        .map_or_else(default_threads, |threads| threads.max(1) as usize)
}

/// A configured thread count is used as it is; without one, generation steps adapt between one
/// thread and the physical cores to what the machine gives them (`threads.rs`).
fn thread_tuner(config: &EngineConfig) -> ThreadTuner {
    match config.threads {
        Some(threads) => ThreadTuner::fixed(threads.max(1) as usize),
        None => ThreadTuner::adaptive(default_threads()),
    }
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
    let (checked, header) = match gguf::open(path) {
        Ok(opened) => opened,
        Err(gguf::GgufError::Missing { .. }) => {
            return Err(EngineError::ModelMissing { path: path_str });
        }
        Err(err) => {
            return Err(EngineError::ModelInvalid {
                path: path_str,
                reason: err.to_string(),
            });
        }
    };
    let loaded = load_with_llama_cpp(
        &path_of_checked(path, &checked, &header),
        vocab_only,
        repack_weights,
        cancel,
    );
    // Open until llama.cpp has opened it again through `/proc/self/fd`.
    drop(checked);
    loaded.map_err(|reason| EngineError::ModelInvalid {
        path: path_str,
        reason: format!("{reason}; run with PUNIE_LOG=debug for llama.cpp's log"),
    })
}

/// The path llama.cpp is to open for the model `checked` at `path`: on Linux the checked file
/// itself (`/proc/self/fd/N` opens the very file the descriptor holds), so that a FIFO or a
/// device put at `path` after the check is never what llama.cpp opens and waits on. A model
/// split in parts is opened by its path: llama.cpp finds the other parts by the first one's name.
#[cfg(target_os = "linux")]
fn path_of_checked(path: &Path, checked: &std::fs::File, header: &gguf::GgufHeader) -> PathBuf {
    use std::os::fd::AsRawFd;
    if header
        .get_uint("split.count")
        .is_some_and(|parts| parts > 1)
    {
        return path.to_owned();
    }
    PathBuf::from(format!("/proc/self/fd/{}", checked.as_raw_fd()))
}

#[cfg(not(target_os = "linux"))]
fn path_of_checked(path: &Path, _checked: &std::fs::File, _header: &gguf::GgufHeader) -> PathBuf {
    path.to_owned()
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
    context: Context<'m>,
    // Invariant: exactly the tokens whose keys and values are in the KV cache of sequence 0,
    // at positions 0..cached.len().
    cached: Vec<LlamaToken>,
    batch: Batch,
    /// Threads for prompt evaluation; generation steps ask `tuner`.
    threads: usize,
    tuner: ThreadTuner,
    /// Whether greedy generation drafts by prompt lookup (configured, and exact here).
    prompt_lookup: bool,
    lookup_stats: LookupStats,
    /// Read as plain text where a prompt quotes a message's words.
    controls: ControlTexts,
    description: String,
}

/// What happened to one generated token.
enum Emitted {
    Continue,
    /// Generation ends with this finish reason.
    Finish(FinishReason),
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
        let threads = threads(config);
        let params = context_params(model, config, n_ctx, n_batch);
        let context = Context::new(model, params).map_err(|reason| EngineError::ModelInvalid {
            path: path.display().to_string(),
            reason,
        })?;
        let description = format!(
            "llama:{} (n_ctx {}, {} threads)",
            path.display(),
            context.n_ctx(),
            threads
        );
        let mut engine = LlamaEngine {
            model,
            context,
            cached: Vec::new(),
            batch: Batch::new(n_batch as usize),
            threads,
            tuner: thread_tuner(config),
            prompt_lookup: false,
            lookup_stats: LookupStats::default(),
            controls: ControlTexts::of(&model.vocab()),
            description,
        };
        if config.prompt_lookup.unwrap_or(true) {
            let exact = attention_is_row_exact(&params) && engine.batches_are_exact()?;
            engine.prompt_lookup = exact;
            if exact {
                tracing::debug!("prompt lookup on: batched logits equal single-step logits");
            } else {
                tracing::info!(
                    "prompt lookup off: on this CPU and model a batch's logits differ from single steps'"
                );
            }
        }
        Ok(engine)
    }

    /// Whether a batch computes every position's logits bit for bit as single-token steps do,
    /// also with another thread count: then drafts verified in a batch give exactly plain greedy
    /// decoding's output. llama.cpp's kernels guarantee it for some models and settings and not
    /// others (without flash attention, SmolLM2's logits differed by 0.3 from the third position
    /// of a batch on; AMX kernels differ between one row and many), so the engine measures it on
    /// its own context, on a short prompt (attention over long contexts is
    /// [`attention_is_row_exact`]'s part); the cache is empty after.
    fn batches_are_exact(&mut self) -> Result<bool, EngineError> {
        let tokens = self.tokenize_prompt(EXACTNESS_PROBE);
        if tokens.len() <= EXACTNESS_BATCH || tokens.len() >= self.n_ctx() {
            return Ok(false);
        }
        let (prefix, probe) = tokens.split_at(tokens.len() - EXACTNESS_BATCH);
        self.truncate_cache(0);
        self.context.set_threads(self.threads as i32);
        self.decode(prefix, Logits::None)?;
        let mut single_steps = Vec::with_capacity(probe.len());
        for token in probe {
            self.decode(&[*token], Logits::Last)?;
            single_steps.push(self.context.logits(0).to_vec());
        }
        self.truncate_cache(prefix.len());
        self.context.set_threads(1);
        self.decode(probe, Logits::All)?;
        let exact = single_steps.iter().enumerate().all(|(idx, logits)| {
            !logits.is_empty() && self.context.logits(idx as i32) == logits.as_slice()
        });
        self.truncate_cache(0);
        Ok(exact)
    }

    /// Whether greedy generation uses prompt-lookup drafts (configured, and exact here).
    pub fn prompt_lookup(&self) -> bool {
        self.prompt_lookup
    }

    pub fn n_ctx(&self) -> usize {
        self.context.n_ctx()
    }

    /// Tokens of `text` as a chat prompt: special tokens parsed, BOS added if the model wants it.
    pub fn tokenize_prompt(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), true, true)
    }

    /// The tokens the KV cache holds, in order.
    pub fn cached_tokens(&self) -> &[LlamaToken] {
        &self.cached
    }

    /// The first and last position the KV cache holds, as llama.cpp reports them (`None` when
    /// empty): `(0, cached_tokens().len() - 1)` whenever the cache mirrors the token list.
    pub fn cached_positions(&self) -> Option<(i32, i32)> {
        self.context.cached_positions()
    }

    /// How the last generation's prompt-lookup drafts fared.
    pub fn lookup_stats(&self) -> LookupStats {
        self.lookup_stats
    }

    /// The thread count generation steps use now.
    pub fn decode_threads(&self) -> usize {
        self.tuner.settled()
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
        self.context.set_threads(self.threads as i32);
        for (chunk_idx, chunk) in to_evaluate.chunks(PREFILL_CHUNK).enumerate() {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let is_last_chunk = (chunk_idx + 1) * PREFILL_CHUNK >= to_evaluate.len();
            self.decode(
                chunk,
                if is_last_chunk {
                    Logits::Last
                } else {
                    Logits::None
                },
            )?;
        }
        Ok(Some(to_evaluate.len()))
    }

    /// Keeps the first `keep` cached tokens, or none if the cache cannot drop a suffix.
    fn truncate_cache(&mut self, keep: usize) {
        if keep < self.cached.len() {
            if self.context.truncate(keep) {
                self.cached.truncate(keep);
            } else {
                // Some caches (recurrent models) cannot drop a suffix: start from scratch.
                self.context.clear();
                self.cached.clear();
            }
        }
    }

    /// Appends `tokens` at the end of the cache, with logits where `logits` says.
    fn decode(&mut self, tokens: &[LlamaToken], logits: Logits) -> Result<(), EngineError> {
        self.batch.clear();
        let start = self.cached.len();
        for (idx, token) in tokens.iter().enumerate() {
            let wants_logits = match logits {
                Logits::None => false,
                Logits::Last => idx + 1 == tokens.len(),
                Logits::All => true,
            };
            self.batch
                .push(*token, start + idx, wants_logits)
                .map_err(|err| EngineError::Backend(format!("batch: {err}")))?;
        }
        if let Err(err) = self.context.decode(&self.batch) {
            // The cache may hold part of the batch now: forget it rather than trust it.
            self.context.clear();
            self.cached.clear();
            return Err(EngineError::Backend(format!("llama_decode failed: {err}")));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// One generation step: `token` and the `draft` after it in one batch, on the thread count
    /// the tuner picks, with logits at every position.
    fn decode_step(&mut self, token: LlamaToken, draft: &[LlamaToken]) -> Result<(), EngineError> {
        let mut tokens = Vec::with_capacity(1 + draft.len());
        tokens.push(token);
        tokens.extend_from_slice(draft);
        let threads = self.tuner.threads();
        self.context.set_threads(threads as i32);
        let started = Instant::now();
        self.decode(&tokens, Logits::All)?;
        self.tuner.record(threads, tokens.len(), started.elapsed());
        Ok(())
    }

    fn sampler(sampling: &Sampling) -> Sampler {
        if sampling.temperature <= 0.0 {
            Sampler::greedy()
        } else {
            Sampler::random(
                sampling.top_k,
                sampling.top_p,
                sampling.temperature,
                sampling.seed,
            )
        }
    }
}

/// Which positions of a batch get logits.
#[derive(Clone, Copy)]
enum Logits {
    None,
    Last,
    All,
}

/// The streaming state of one generation: counts, text assembly, stop strings.
struct Output<'a> {
    res: Generation,
    max_tokens: usize,
    /// The finish reason when `max_tokens` is reached.
    cut: FinishReason,
    ignore_eog: bool,
    utf8: Utf8Assembler,
    stops: StopMatcher,
    first_token_at: Option<Duration>,
    started: Instant,
    on_text: &'a mut dyn FnMut(&str),
}

impl Output<'_> {
    /// Takes one generated token: counts it, streams its text, says whether generation ends.
    fn push(&mut self, vocab: &LlamaVocab, token: LlamaToken) -> Emitted {
        self.first_token_at
            .get_or_insert_with(|| self.started.elapsed());
        self.res.n_generated += 1;
        if vocab.is_eog(token) && !self.ignore_eog {
            return Emitted::Finish(FinishReason::Stop);
        }
        // Special tokens are rendered: `<tool_call>` is one in Qwen's vocabulary.
        let piece = self.utf8.push(&vocab.token_to_piece(token, true, None));
        let step = self.stops.push(&piece);
        if !step.emit.is_empty() {
            (self.on_text)(&step.emit);
            self.res.text.push_str(&step.emit);
        }
        if step.stopped {
            Emitted::Finish(FinishReason::Stop)
        } else if self.res.n_generated >= self.max_tokens {
            Emitted::Finish(self.cut)
        } else {
            Emitted::Continue
        }
    }

    fn finish(mut self, finish: FinishReason) -> Generation {
        self.res.finish = finish;
        if finish != FinishReason::Stop {
            let rest = self.stops.push(&self.utf8.finish()).emit + &self.stops.finish();
            if !rest.is_empty() {
                (self.on_text)(&rest);
                self.res.text.push_str(&rest);
            }
        }
        let ttft = self
            .first_token_at
            .unwrap_or_else(|| self.started.elapsed());
        self.res.timings.time_to_first_token = ttft;
        self.res.timings.decode = self.started.elapsed().saturating_sub(ttft);
        self.res
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
        let tokens = self
            .controls
            .tokenize(&self.model.vocab(), &request.prompt, &request.quoted);
        let tokenized_at = started.elapsed();
        let n_ctx = self.n_ctx();
        if tokens.is_empty() || tokens.len() >= n_ctx {
            return Err(EngineError::ContextOverflow {
                n_prompt: tokens.len(),
                n_ctx,
            });
        }
        self.lookup_stats = LookupStats::default();
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
        let mut out = Output {
            res,
            max_tokens,
            // Where generation stops if the model does not: the caller's cap, or the context's end.
            cut: if max_tokens < request.sampling.max_tokens {
                FinishReason::ContextFull
            } else {
                FinishReason::Length
            },
            ignore_eog: request.sampling.ignore_eog,
            utf8: Utf8Assembler::default(),
            stops: StopMatcher::new(&request.sampling.stop),
            first_token_at: None,
            started,
            on_text,
        };
        if out.max_tokens == 0 {
            let cut = out.cut;
            return Ok(out.finish(cut));
        }
        let finish = self.generate_tokens(request, tokens, cancel, &mut out)?;
        let stats = self.lookup_stats;
        tracing::debug!(
            "generated {} tokens; {} drafts, {} of {} drafted tokens accepted; decode threads {}",
            out.res.n_generated,
            stats.drafts,
            stats.accepted_tokens,
            stats.drafted_tokens,
            self.tuner.settled()
        );
        Ok(out.finish(finish))
    }

    fn prepare(
        &mut self,
        prompt_start: &str,
        quoted: &[std::ops::Range<usize>],
        cancel: &CancelFlag,
    ) -> Result<usize, EngineError> {
        let tokens = self
            .controls
            .tokenize(&self.model.vocab(), prompt_start, quoted);
        // Only an extension of what the cache holds: cutting the cache for a guess could throw
        // away what the next request needs.
        if !tokens.starts_with(&self.cached) || tokens.len() >= self.n_ctx() {
            return Ok(0);
        }
        self.context.set_threads(self.threads as i32);
        let mut evaluated = 0;
        for chunk in tokens[self.cached.len()..].chunks(PREPARE_CHUNK) {
            if cancel.is_cancelled() {
                break;
            }
            self.decode(chunk, Logits::None)?;
            evaluated += chunk.len();
        }
        Ok(evaluated)
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

impl LlamaEngine<'_> {
    /// The decode loop after the prompt: sample, stream, and evaluate the sampled token together
    /// with a prompt-lookup draft, keeping the drafted tokens the model agrees with.
    ///
    /// Invariant between iterations: `next` is the token sampled after everything in the cache;
    /// it is not in the cache yet (the last token generated never is: nothing reads its logits).
    fn generate_tokens(
        &mut self,
        request: &GenerateRequest,
        prompt: Vec<LlamaToken>,
        cancel: &CancelFlag,
        out: &mut Output<'_>,
    ) -> Result<FinishReason, EngineError> {
        let model = self.model;
        let vocab = model.vocab();
        let mut sampler = Self::sampler(&request.sampling);
        // Drafts are verified by comparing with the greedy choice; a sampled token has no single
        // right answer to compare with, so sampling decodes one token at a time.
        let mut lookup =
            (self.prompt_lookup && request.sampling.temperature <= 0.0).then(PromptLookup::default);
        let mut history = prompt;
        let mut next = sampler.sample(&mut self.context, -1);
        loop {
            if cancel.is_cancelled() {
                return Ok(FinishReason::Cancelled);
            }
            if let Emitted::Finish(finish) = out.push(&vocab, next) {
                return Ok(finish);
            }
            history.push(next);
            let room = out.max_tokens - out.res.n_generated;
            let draft: Vec<LlamaToken> = match &mut lookup {
                Some(lookup) => lookup.draft(&history, room).to_vec(),
                None => Vec::new(),
            };
            let step_start = self.cached.len();
            self.decode_step(next, &draft)?;
            // Batch index i holds the model's choice after `next` and the first i draft tokens.
            let mut accepted = 0;
            let mut finish = None;
            loop {
                let choice = sampler.sample(&mut self.context, accepted as i32);
                if accepted < draft.len() && choice == draft[accepted] {
                    accepted += 1;
                    history.push(choice);
                    if let Emitted::Finish(reason) = out.push(&vocab, choice) {
                        finish = Some(reason);
                        break;
                    }
                } else {
                    next = choice;
                    break;
                }
            }
            // Drop the rejected draft tokens: the cache keeps `next`'s predecessor and what the
            // model agreed with, exactly as if they had been decoded one by one; and, as there,
            // not the token that ended generation.
            self.truncate_cache(step_start + 1 + accepted - usize::from(finish.is_some()));
            if let Some(lookup) = &mut lookup
                && !draft.is_empty()
            {
                lookup.feedback(draft.len(), accepted);
                self.lookup_stats.drafts += 1;
                self.lookup_stats.drafted_tokens += draft.len();
                self.lookup_stats.accepted_tokens += accepted;
            }
            if let Some(finish) = finish {
                return Ok(finish);
            }
        }
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
    /// The thread count generation settled on (the configured one when fixed).
    pub decode_threads: usize,
}

/// The fixed benchmark workload: the first `n_prompt` tokens of `text` (special tokens added,
/// not parsed) in one batch with logits for the last position, then `n_decode` single-token
/// greedy decodes ignoring end-of-generation; `n_ctx = n_batch = 2048`; the KV cache cleared
/// between repetitions; one warm-up; medians of `repetitions`. Decode steps take their thread
/// count from the engine's tuner, as generation does (fixed when `config.threads` is set); the
/// tuner lives as long as the context, across repetitions, as it does in the engine.
pub fn run_workload(
    model: &LlamaModel,
    config: &EngineConfig,
    text: &str,
    n_prompt: usize,
    n_decode: usize,
    repetitions: usize,
) -> Result<WorkloadFigures, EngineError> {
    let mut context = Context::new(model, context_params(model, config, MAX_BATCH, MAX_BATCH))
        .map_err(EngineError::Backend)?;
    let threads = threads(config);
    let mut tuner = thread_tuner(config);
    let mut tokens = model.vocab().tokenize(text.as_bytes(), true, false);
    tokens.truncate(n_prompt);
    let mut batch = Batch::new(MAX_BATCH as usize);
    let mut sampler = Sampler::greedy();
    let mut prefill_times = Vec::new();
    let mut decode_times = Vec::new();
    for rep in 0..=repetitions {
        context.clear();
        batch.clear();
        for (position, token) in tokens.iter().enumerate() {
            batch
                .push(*token, position, position + 1 == tokens.len())
                .map_err(EngineError::Backend)?;
        }
        context.set_threads(threads as i32);
        let started = Instant::now();
        context.decode(&batch).map_err(EngineError::Backend)?;
        let prefill = started.elapsed();
        let started = Instant::now();
        for position in tokens.len()..tokens.len() + n_decode {
            let token = sampler.sample(&mut context, -1);
            batch.clear();
            batch
                .push(token, position, true)
                .map_err(EngineError::Backend)?;
            let step_threads = tuner.threads();
            context.set_threads(step_threads as i32);
            let step_started = Instant::now();
            context.decode(&batch).map_err(EngineError::Backend)?;
            tuner.record(step_threads, 1, step_started.elapsed());
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
        decode_threads: tuner.settled(),
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

/// A GGUF model's tokenizer alone (vocabulary only, no weights), for tokenizer parity checks
/// and for counting a prompt's tokens while the engine decodes.
pub struct GgufTokenizer {
    model: LlamaModel,
    controls: ControlTexts,
}

impl GgufTokenizer {
    pub fn load(path: &Path) -> Result<GgufTokenizer, EngineError> {
        let model = load_vocab(path)?;
        let controls = ControlTexts::of(&model.vocab());
        Ok(GgufTokenizer { model, controls })
    }

    /// How many tokens the engine makes of `text`, a chat prompt whose `quoted` ranges are
    /// read with control tokens as plain text (`LlamaEngine` does the same).
    pub fn count(&self, text: &str, quoted: &[std::ops::Range<usize>]) -> usize {
        self.controls
            .tokenize(&self.model.vocab(), text, quoted)
            .len()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The model is swapped for a FIFO between the check and llama.cpp's open: llama.cpp opens
    /// the checked file, and never waits on the FIFO for a writer.
    #[cfg(target_os = "linux")]
    #[test]
    fn llama_cpp_loads_the_checked_file_not_what_replaced_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        let micro =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/micro/micro-punie-q5_k_m.gguf");
        std::fs::copy(micro, &path).unwrap();
        let (checked, header) = gguf::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let loaded_path = path_of_checked(&path, &checked, &header);
        let (sender, loaded) = crossbeam_channel::bounded(1);
        // On a thread of its own, so that a load waiting on the FIFO fails the test instead of
        // hanging it.
        std::thread::spawn(move || {
            let model = load_with_llama_cpp(&loaded_path, true, false, None);
            let _ = sender.send(model.map(|model| model.n_vocab()));
        });
        let n_vocab = loaded
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("llama.cpp waits on the FIFO")
            .unwrap();
        assert!(n_vocab > 0);
        drop(checked);
    }
}
