//! The llama.cpp context, batch and sampler, called through `llama-cpp-sys-2` directly.
//!
//! `llama-cpp-2` 0.1.160 wraps these but keeps their raw pointers private, and the engine needs
//! two calls its wrappers do not offer: `llama_set_n_threads` (the thread count is chosen per
//! decode call, see `threads.rs`) and the logits of several positions of one batch sampled in
//! turn (prompt-lookup verification, see `lookup.rs`). The model, vocabulary and tokenizer stay
//! `llama-cpp-2`'s.
//!
//! Every type here owns its llama.cpp object and frees it on drop; a [`Context`] borrows the
//! model it was made from, so the model outlives it.

use std::marker::PhantomData;
use std::ptr::NonNull;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_sys_2 as sys;

use super::FlashAttention;

/// Sequence 0: the engine keeps one conversation in its cache.
const SEQ: sys::llama_seq_id = 0;

/// The settings a context is created with.
#[derive(Debug, Clone, Copy)]
pub(super) struct ContextParams {
    pub n_ctx: u32,
    /// Largest batch one decode call takes (also the micro-batch: one graph per call).
    pub n_batch: u32,
    pub threads: i32,
    pub flash_attention: FlashAttention,
    pub cache: CacheType,
}

/// How the KV cache stores keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheType {
    /// llama.cpp's default.
    F16,
    /// Keys in 8-bit blocks of 32, values in f16; needs flash attention, and key heads whose
    /// size is a multiple of 32.
    Q8_0KeysF16Values,
    /// bfloat16; needs flash attention to be worth it.
    Bf16,
}

impl CacheType {
    /// `f16`, `bf16`, or `KEYS/VALUES` where they differ.
    pub fn name(self) -> &'static str {
        match self {
            CacheType::F16 => "f16",
            CacheType::Q8_0KeysF16Values => "q8_0/f16",
            CacheType::Bf16 => "bf16",
        }
    }

    /// The ggml types of keys and values.
    fn ggml_types(self) -> (sys::ggml_type, sys::ggml_type) {
        match self {
            CacheType::F16 => (sys::GGML_TYPE_F16, sys::GGML_TYPE_F16),
            CacheType::Q8_0KeysF16Values => (sys::GGML_TYPE_Q8_0, sys::GGML_TYPE_F16),
            CacheType::Bf16 => (sys::GGML_TYPE_BF16, sys::GGML_TYPE_BF16),
        }
    }
}

/// A llama.cpp context: the KV cache of one sequence and the logits of the last decode.
pub(super) struct Context<'m> {
    raw: NonNull<sys::llama_context>,
    model: PhantomData<&'m LlamaModel>,
}

impl<'m> Context<'m> {
    pub(super) fn new(model: &'m LlamaModel, params: ContextParams) -> Result<Context<'m>, String> {
        // SAFETY: returns a plain struct of llama.cpp's defaults.
        let mut raw_params = unsafe { sys::llama_context_default_params() };
        raw_params.n_ctx = params.n_ctx;
        raw_params.n_batch = params.n_batch;
        raw_params.n_ubatch = params.n_batch;
        raw_params.n_threads = params.threads;
        raw_params.n_threads_batch = params.threads;
        raw_params.flash_attn_type = params.flash_attention.policy();
        (raw_params.type_k, raw_params.type_v) = params.cache.ggml_types();
        // SAFETY: the model pointer is valid for 'm (see `model_ptr`); the context keeps a
        // pointer to it, which `PhantomData<&'m LlamaModel>` keeps alive.
        let raw = unsafe { sys::llama_init_from_model(model_ptr(model), raw_params) };
        NonNull::new(raw)
            .map(|raw| Context {
                raw,
                model: PhantomData,
            })
            .ok_or_else(|| {
                format!(
                    "llama.cpp could not create a context of {} tokens",
                    params.n_ctx
                )
            })
    }

    pub(super) fn n_ctx(&self) -> usize {
        // SAFETY: `raw` is a live context.
        unsafe { sys::llama_n_ctx(self.raw.as_ptr()) as usize }
    }

    /// Threads for the following decode calls, whatever their size.
    pub(super) fn set_threads(&mut self, threads: i32) {
        // SAFETY: `raw` is a live context; this only stores the two counts.
        unsafe { sys::llama_set_n_threads(self.raw.as_ptr(), threads, threads) }
    }

    /// Evaluates `batch`, appending its tokens to the KV cache. On failure the cache may hold
    /// part of the batch.
    pub(super) fn decode(&mut self, batch: &Batch) -> Result<(), String> {
        // SAFETY: `batch.raw` was made by `llama_batch_init` with room for its `n_tokens`, each
        // with one sequence id; llama.cpp reads it during the call only.
        match unsafe { sys::llama_decode(self.raw.as_ptr(), batch.raw) } {
            0 => Ok(()),
            1 => Err("no room in the KV cache".to_owned()),
            2 => Err("aborted".to_owned()),
            code => Err(format!("error {code}")),
        }
    }

    /// The logits of batch index `idx` of the last decode; empty if it computed none there.
    pub(super) fn logits(&self, idx: i32) -> &[f32] {
        // SAFETY: `raw` is a live context. llama.cpp returns NULL for an index without logits,
        // else a row of `n_vocab` floats that stays valid until the next decode, which needs
        // `&mut self`.
        unsafe {
            let row = sys::llama_get_logits_ith(self.raw.as_ptr(), idx);
            if row.is_null() {
                return &[];
            }
            let vocab = sys::llama_model_get_vocab(sys::llama_get_model(self.raw.as_ptr()));
            std::slice::from_raw_parts(row, sys::llama_vocab_n_tokens(vocab).max(0) as usize)
        }
    }

    /// Drops the cached positions from `start` on; false if this cache cannot drop a suffix
    /// (recurrent models).
    pub(super) fn truncate(&mut self, start: usize) -> bool {
        // SAFETY: `raw` is a live context, its memory lives as long as it.
        unsafe { sys::llama_memory_seq_rm(self.memory(), SEQ, start as i32, -1) }
    }

    pub(super) fn clear(&mut self) {
        // SAFETY: as in `truncate`.
        unsafe { sys::llama_memory_clear(self.memory(), true) }
    }

    /// The first and last positions in the cache, `None` when it is empty.
    pub(super) fn cached_positions(&self) -> Option<(i32, i32)> {
        // SAFETY: as in `truncate`; both calls only read.
        let (first, last) = unsafe {
            (
                sys::llama_memory_seq_pos_min(self.memory(), SEQ),
                sys::llama_memory_seq_pos_max(self.memory(), SEQ),
            )
        };
        (first >= 0 && last >= first).then_some((first, last))
    }

    fn memory(&self) -> sys::llama_memory_t {
        // SAFETY: `raw` is a live context.
        unsafe { sys::llama_get_memory(self.raw.as_ptr()) }
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `llama_init_from_model` and is freed only here.
        unsafe { sys::llama_free(self.raw.as_ptr()) }
    }
}

/// The raw model pointer behind a `LlamaModel`.
fn model_ptr(model: &LlamaModel) -> *mut sys::llama_model {
    // SAFETY: `LlamaModel` is `#[repr(transparent)]` over `Ptr`, itself `#[repr(transparent)]`
    // over `NonNull<llama_model>` (llama-cpp-2 is pinned to =0.1.160; `load_with_llama_cpp`
    // relies on the same layout). llama.cpp takes the model as `*mut` but does not change it
    // while building a context.
    unsafe { std::mem::transmute::<&LlamaModel, &NonNull<sys::llama_model>>(model).as_ptr() }
}

/// Tokens for one decode call, all in sequence 0.
pub(super) struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
}

impl Batch {
    pub(super) fn new(capacity: usize) -> Batch {
        // SAFETY: allocates arrays for `capacity` tokens with one sequence id each.
        let raw = unsafe { sys::llama_batch_init(capacity as i32, 0, 1) };
        Batch { raw, capacity }
    }

    pub(super) fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    pub(super) fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    /// Appends `token` at `position`; `logits` asks for its output row.
    pub(super) fn push(
        &mut self,
        token: LlamaToken,
        position: usize,
        logits: bool,
    ) -> Result<(), String> {
        let idx = self.len();
        if idx >= self.capacity {
            return Err(format!("a batch holds at most {} tokens", self.capacity));
        }
        // SAFETY: `idx < capacity`, the size `llama_batch_init` allocated every array with, and
        // `seq_id[idx]` points to an array of one sequence id.
        unsafe {
            *self.raw.token.add(idx) = token.0;
            *self.raw.pos.add(idx) = position as i32;
            *self.raw.n_seq_id.add(idx) = 1;
            *(*self.raw.seq_id.add(idx)) = SEQ;
            *self.raw.logits.add(idx) = i8::from(logits);
        }
        self.raw.n_tokens += 1;
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `llama_batch_init` and is freed only here.
        unsafe { sys::llama_batch_free(self.raw) }
    }
}

/// A llama.cpp sampler (chain).
pub(super) struct Sampler {
    raw: NonNull<sys::llama_sampler>,
}

impl Sampler {
    /// The most likely token, the first of equals.
    pub(super) fn greedy() -> Sampler {
        // SAFETY: returns a new sampler that `Drop` frees.
        Sampler::from_raw(unsafe { sys::llama_sampler_init_greedy() })
    }

    /// top-k (when `top_k > 0`), then top-p (when `top_p < 1`), then temperature, then a
    /// seeded draw.
    pub(super) fn random(top_k: i32, top_p: f32, temperature: f32, seed: u32) -> Sampler {
        // SAFETY: the chain takes ownership of every sampler added to it and frees them with
        // itself; each init returns a new sampler.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            if top_k > 0 {
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_top_k(top_k));
            }
            if top_p < 1.0 {
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_top_p(top_p, 1));
            }
            sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_temp(temperature));
            sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_dist(seed));
            Sampler::from_raw(chain)
        }
    }

    fn from_raw(raw: *mut sys::llama_sampler) -> Sampler {
        Sampler {
            raw: NonNull::new(raw).expect("llama.cpp returns a sampler or aborts"),
        }
    }

    /// Samples (and accepts) a token from the output row of batch index `idx` of the last
    /// decode; `-1` is the last row.
    pub(super) fn sample(&mut self, context: &mut Context<'_>, idx: i32) -> LlamaToken {
        // SAFETY: both pointers are live; llama.cpp checks `idx` against the last batch's
        // outputs and aborts on a bad index, which the engine never passes (it asks for the
        // logits of every index it samples).
        LlamaToken(unsafe {
            sys::llama_sampler_sample(self.raw.as_ptr(), context.raw.as_ptr(), idx)
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: `raw` is owned by this sampler and freed only here.
        unsafe { sys::llama_sampler_free(self.raw.as_ptr()) }
    }
}
