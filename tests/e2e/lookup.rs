//! Prompt-lookup decoding (`engine/llama/lookup.rs`) on the real default model and on
//! micro-Punie: greedy output byte for byte as plain decoding gives it, a KV cache that mirrors
//! the engine's token list after rejected drafts, reuse of that cache by the next request, and
//! cancellation in the middle of drafting. Correctness only: the speed is `punie bench --only
//! rewrite`'s business.
//!
//! The engines run with flash attention on and weights not repacked, the settings under which
//! llama.cpp's CPU kernels compute a batch's rows exactly as single steps on every CPU the tests
//! run on (with AMX, repacked weights take other kernels, and the engine then turns lookup off
//! by itself, which these tests would report as a failure).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use punie::engine::llama::{LlamaEngine, LlamaModel, load_model};
use punie::engine::{
    CancelFlag, Engine, EngineConfig, FinishReason, GenerateRequest, Generation, Sampling,
};
use punie::features::{Ask, DocumentSnapshot, Instruction, Selection};
use punie::prompt::{self, Message, Profile, Role};

use crate::support::installed_default_model;

/// Long enough for the default model to copy code, draft, and have drafts rejected.
const ANSWER_TOKENS: usize = 160;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(lookup: bool) -> EngineConfig {
    EngineConfig {
        n_ctx: Some(4096),
        threads: Some(1),
        flash_attention: Some(true),
        repack_weights: Some(false),
        prompt_lookup: Some(lookup),
        ..EngineConfig::default()
    }
}

/// A Fix run's prompt on `bench/rewrite/inventory.py`, as the features layer and the default
/// model's profile render it: an answer that copies much of its prompt.
fn fix_prompt() -> String {
    let path = repo().join("bench/rewrite/inventory.py");
    let text = std::fs::read_to_string(&path).expect("bench/rewrite/inventory.py is committed");
    let end = text.len();
    let ask = Ask {
        instruction: Instruction::Fix,
        question: None,
        selection: Some(Selection {
            document: DocumentSnapshot {
                id: "inventory.py".to_owned(),
                path: Some(path.clone()),
                text: Arc::new(text),
                version: None,
                language_id: "python".to_owned(),
            },
            start: 0,
            end,
        }),
        root: path.parent().unwrap().to_owned(),
    };
    let mut profile = punie::agent::resolve_profile(
        &punie::engine::EngineSpec::Default,
        Some(&installed_default_model()),
        None,
    )
    .unwrap();
    // A fixed set of tools (the core ones, pytest and git), not what this machine has on
    // PATH: the stubs are part of the prompt, and the drafts this test needs (some accepted,
    // some rejected) depend on every token of it.
    if let Profile::Generic(config) = &mut profile {
        let tools = punie::tools::offered(|program| {
            matches!(
                program,
                punie::tools::Program::Pytest | punie::tools::Program::Git
            )
        });
        config.stubs = punie::tools::compact_stubs_text(&tools);
    }
    render(&profile, &ask.question())
}

fn render(profile: &Profile, question: &str) -> String {
    let mut messages = Vec::new();
    if let Some(system) = prompt::system_prompt(profile) {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(Role::User, question));
    prompt::render(profile, &messages)
}

fn generate(engine: &mut LlamaEngine<'_>, prompt: &str, max_tokens: usize) -> Generation {
    let request = GenerateRequest {
        prompt: prompt.to_owned(),
        quoted: Vec::new(),
        turn: 0,
        sampling: Sampling {
            max_tokens,
            ..Sampling::default()
        },
    };
    engine
        .generate(&request, &CancelFlag::default(), &mut |_| {})
        .expect("generation")
}

/// The cache holds exactly the engine's token list: positions 0..len, the prompt first.
#[track_caller]
fn assert_cache_mirrors(engine: &LlamaEngine<'_>, prompt: &str) {
    let cached = engine.cached_tokens();
    assert_eq!(
        engine.cached_positions(),
        Some((0, cached.len() as i32 - 1)),
        "the KV cache holds other positions than the {} tokens the engine lists",
        cached.len()
    );
    let prompt_tokens = engine.tokenize_prompt(prompt);
    assert_eq!(&cached[..prompt_tokens.len()], prompt_tokens.as_slice());
}

fn engines<'m>(model: &'m LlamaModel, path: &Path) -> (LlamaEngine<'m>, LlamaEngine<'m>) {
    let plain = LlamaEngine::new(model, path, &config(false)).unwrap();
    let lookup = LlamaEngine::new(model, path, &config(true)).unwrap();
    assert!(!plain.prompt_lookup());
    assert!(
        lookup.prompt_lookup(),
        "the engine found batched logits unequal to single steps' and turned lookup off"
    );
    (plain, lookup)
}

#[test]
fn default_model_rewrite_is_identical_and_rejected_drafts_leave_an_exact_cache() {
    let _model = crate::support::real_model_lock();
    let path = installed_default_model();
    let model = load_model(&path, &config(true)).unwrap();
    let (mut plain, mut lookup) = engines(&model, &path);
    let prompt = fix_prompt();

    let expected = generate(&mut plain, &prompt, ANSWER_TOKENS);
    let got = generate(&mut lookup, &prompt, ANSWER_TOKENS);
    assert_eq!(got.text, expected.text);
    assert_eq!(got.n_generated, expected.n_generated);
    let stats = lookup.lookup_stats();
    assert!(
        stats.accepted_tokens > 0 && stats.accepted_tokens < stats.drafted_tokens,
        "drafts both accepted and rejected: {stats:?}"
    );
    assert_cache_mirrors(&lookup, &prompt);
    assert!(
        lookup.cached_tokens() == plain.cached_tokens(),
        "the cache holds other tokens than after plain decoding"
    );

    // A follow-up reuses the cache the drafts left, and still decodes exactly as from scratch.
    let follow_up = format!(
        "{prompt}{}<|im_end|>\n<|im_start|>user\nAnd now without the comments.<|im_end|>\n<|im_start|>assistant\n",
        got.text
    );
    let reused = generate(&mut lookup, &follow_up, 120);
    assert!(
        reused.n_evaluated < reused.n_prompt / 2,
        "the cached prefix was evaluated again: {} of {}",
        reused.n_evaluated,
        reused.n_prompt
    );
    let mut fresh = LlamaEngine::new(&model, &path, &config(false)).unwrap();
    assert_eq!(reused.text, generate(&mut fresh, &follow_up, 120).text);
    assert_cache_mirrors(&lookup, &follow_up);
}

#[test]
fn cancelling_while_drafting_leaves_an_exact_cache_and_a_usable_engine() {
    let _model = crate::support::real_model_lock();
    let path = installed_default_model();
    let model = load_model(&path, &config(true)).unwrap();
    let (mut plain, mut lookup) = engines(&model, &path);
    let prompt = fix_prompt();

    // Cancel from inside the stream, after the lookup has had drafts to verify: the engine sees
    // the flag before its next decode call, whatever the machine's speed.
    let cancel = CancelFlag::default();
    let request = GenerateRequest {
        prompt: prompt.clone(),
        quoted: Vec::new(),
        turn: 0,
        sampling: Sampling {
            max_tokens: ANSWER_TOKENS,
            ..Sampling::default()
        },
    };
    let mut pieces = 0;
    let cancelled = lookup
        .generate(&request, &cancel, &mut |_| {
            pieces += 1;
            if pieces == ANSWER_TOKENS * 4 / 5 {
                cancel.cancel();
            }
        })
        .unwrap();
    assert_eq!(cancelled.finish, FinishReason::Cancelled);
    assert!(
        lookup.lookup_stats().drafts > 0,
        "{:?}",
        lookup.lookup_stats()
    );
    assert_cache_mirrors(&lookup, &prompt);

    let expected = generate(&mut plain, &prompt, ANSWER_TOKENS);
    assert!(expected.text.starts_with(&cancelled.text));
    assert_eq!(
        generate(&mut lookup, &prompt, ANSWER_TOKENS).text,
        expected.text
    );
}

#[test]
fn micro_punie_tool_call_is_identical_with_lookup() {
    let _model = crate::support::real_model_lock();
    let path = repo().join("models/micro/micro-punie-q5_k_m.gguf");
    let model = load_model(&path, &config(true)).unwrap();
    let (mut plain, mut lookup) = engines(&model, &path);
    let code = std::fs::read_to_string(repo().join("bench/rewrite/stats.py")).unwrap();
    let prompt = format!(
        "<|im_start|>system\nYou are Punie, an AI coding assistant that helps with Python development via \
         PyCharm.<|im_end|>\n<|im_start|>user\nFind the bug in stats.py:\n```python\n{code}```<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    let expected = generate(&mut plain, &prompt, 300);
    let got = generate(&mut lookup, &prompt, 300);
    assert!(!expected.text.is_empty());
    assert_eq!(got.text, expected.text);
    assert!(
        lookup.lookup_stats().drafts > 0,
        "{:?}",
        lookup.lookup_stats()
    );
    assert_cache_mirrors(&lookup, &prompt);
}
