//! Engine tests on the real default model (SmolLM2-135M through llama.cpp), through the same
//! `EngineHandle` the agent uses. They need the model installed (`punie models fetch`, which the
//! README's test command runs) and fail with that instruction if it is missing.

use std::io::Write;
use std::time::{Duration, Instant};

use punie::engine::{
    CancelFlag, EngineConfig, EngineError, EngineHandle, EngineSpec, FinishReason, GenerateRequest,
    Generation, Sampling, StreamEvent,
};

use crate::support::installed_default_model as default_model;

/// A fresh engine on the default model.
fn engine() -> EngineHandle {
    crate::support::default_model_engine(2048)
}

fn request(prompt: &str, sampling: Sampling) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.to_owned(),
        quoted: Vec::new(),
        turn: 0,
        sampling,
    }
}

fn generate(engine: &EngineHandle, prompt: &str, sampling: Sampling) -> Generation {
    engine
        .generate(request(prompt, sampling), CancelFlag::default())
        .finish(|_| {})
        .expect("generation")
}

fn chat(question: &str) -> String {
    format!(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )
}

#[test]
fn greedy_generation_is_deterministic() {
    let _model = crate::support::real_model_lock();
    let sampling = Sampling {
        max_tokens: 24,
        ..Sampling::default()
    };
    let prompt = chat("Name three colours.");
    let first = generate(&engine(), &prompt, sampling.clone());
    let second_engine = engine();
    let second = generate(&second_engine, &prompt, sampling.clone());
    // Once more on the same engine: now served from its KV cache.
    let third = generate(&second_engine, &prompt, sampling);
    assert!(!first.text.is_empty());
    assert_eq!(first.text, second.text);
    assert_eq!(second.text, third.text);
    assert!(
        third.n_evaluated <= 1,
        "the repeated prompt was evaluated again: {}",
        third.n_evaluated
    );
}

/// Every combination of the two CPU switches (weight repacking, flash attention) loads and
/// generates; on a CPU with AMX the repacked weights run llama.cpp's AMX kernels, which a
/// miscompiled llama.cpp kills with SIGILL (docs/benchmarks.md).
#[test]
fn every_weight_layout_and_attention_kernel_generates() {
    let _model = crate::support::real_model_lock();
    for repack_weights in [false, true] {
        for flash_attention in [false, true] {
            let config = EngineConfig {
                n_ctx: Some(512),
                threads: Some(1),
                default_model: Some(default_model()),
                repack_weights: Some(repack_weights),
                flash_attention: Some(flash_attention),
                ..EngineConfig::default()
            };
            let engine = EngineHandle::spawn(EngineSpec::Default, config);
            engine.wait_ready().expect("the default model loads");
            // A prompt long enough for a batched matrix product, then single-token decodes.
            let prompt = chat(&"Name three colours. ".repeat(20));
            let sampling = Sampling {
                max_tokens: 8,
                ignore_eog: true,
                ..Sampling::default()
            };
            let generation = generate(&engine, &prompt, sampling);
            assert_eq!(
                generation.n_generated, 8,
                "repack {repack_weights}, flash attention {flash_attention}"
            );
        }
    }
}

#[test]
fn a_stop_string_stops_generation() {
    let _model = crate::support::real_model_lock();
    // Almost every English sentence contains an "e"; the output must end just before the first.
    let sampling = Sampling {
        max_tokens: 64,
        stop: vec!["e".to_owned()],
        ..Sampling::default()
    };
    let generation = generate(
        &engine(),
        &chat("Describe the weather today in one sentence."),
        sampling,
    );
    assert_eq!(generation.finish, FinishReason::Stop);
    assert!(!generation.text.contains('e'), "{:?}", generation.text);
    assert!(generation.n_generated < 64);
}

#[test]
fn a_shared_prefix_is_not_evaluated_again() {
    let _model = crate::support::real_model_lock();
    let long_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/prompt.txt"))
            .unwrap();
    let engine = engine();
    // ~500 tokens of prefix ending in a special token, so the longer prompt's tokens start with
    // exactly the shorter prompt's tokens.
    let prefix = format!("<|im_start|>user\n{}<|im_end|>", &long_text[..1800]);
    let one_token = Sampling {
        max_tokens: 1,
        ignore_eog: true,
        stop: Vec::new(),
        ..Sampling::default()
    };
    let cold = generate(&engine, &prefix, one_token.clone());
    assert!(cold.n_prompt >= 450, "prefix of {} tokens", cold.n_prompt);
    assert_eq!(cold.n_evaluated, cold.n_prompt);

    let longer =
        format!("{prefix}\n<|im_start|>user\nAnd now a short follow-up question?<|im_end|>");
    let warm = generate(&engine, &longer, one_token);
    assert_eq!(
        warm.n_evaluated,
        warm.n_prompt - cold.n_prompt,
        "only the new tokens are evaluated"
    );
    assert!(warm.n_evaluated < 20);
}

#[test]
fn the_next_turn_prepared_while_idle_is_not_evaluated_again() {
    let _model = crate::support::real_model_lock();
    let engine = engine();
    let sampling = Sampling {
        max_tokens: 96,
        ..Sampling::default()
    };
    let first_prompt = chat("Name three colours.");
    let first = generate(&engine, &first_prompt, sampling.clone());
    assert_eq!(first.finish, FinishReason::Stop, "{:?}", first.text);
    let opening = format!("{first_prompt}{}<|im_end|>\n<|im_start|>user\n", first.text);
    let follow_up = format!("{opening}And a fourth one?<|im_end|>\n<|im_start|>assistant\n");
    let plain = generate(&engine, &follow_up, sampling.clone());

    // Back to the first answer, then the opening of the next turn prepared: the follow-up
    // evaluates only its own words and gives the same answer. A guess that does not extend the
    // cache is not evaluated, and cuts nothing from it.
    assert_eq!(
        generate(&engine, &first_prompt, sampling.clone()).text,
        first.text
    );
    let prepared = |text: String| engine.prepare(text, Vec::new()).recv().unwrap().unwrap();
    assert_eq!(prepared(chat("Something else entirely.")), 0);
    // `<|im_end|>`, `\n`, `<|im_start|>`, `user`, `\n`.
    assert_eq!(prepared(opening), 5);
    let after = generate(&engine, &follow_up, sampling);
    assert_eq!(after.text, plain.text);
    assert_eq!(after.n_evaluated + 5, plain.n_evaluated);
}

#[test]
fn a_request_goes_before_a_preparation_and_gets_the_same_answer() {
    let _model = crate::support::real_model_lock();
    let sampling = Sampling {
        max_tokens: 24,
        ..Sampling::default()
    };
    let long_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/prompt.txt"))
            .unwrap();
    let system = format!("<|im_start|>system\n{}<|im_end|>\n", &long_text[..4000]);
    let prompt = format!("{system}<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n");
    let plain = generate(&engine(), &prompt, sampling.clone());

    // About a thousand tokens to prepare; the request sent right after stops the preparation
    // (or finds it not started) and answers as a fresh engine does, from a cache that holds
    // exactly what was evaluated.
    let engine = engine();
    let preparing = engine.prepare(format!("{system}<|im_start|>user\n"), Vec::new());
    let answered = generate(&engine, &prompt, sampling.clone());
    assert_eq!(answered.text, plain.text);
    let prepared = preparing.recv().unwrap().unwrap();
    assert_eq!(answered.n_evaluated + prepared, answered.n_prompt);
    // Served from the cache now.
    assert!(generate(&engine, &prompt, sampling).n_evaluated <= 1);
}

#[test]
fn cancel_mid_generation_is_prompt_and_the_engine_stays_usable() {
    let _model = crate::support::real_model_lock();
    let engine = engine();
    let cancel = CancelFlag::default();
    let long = Sampling {
        max_tokens: 400,
        ignore_eog: true,
        stop: Vec::new(),
        ..Sampling::default()
    };
    let stream = engine.generate(
        request(&chat("Write a long story about a fox."), long),
        cancel.clone(),
    );
    // Wait for the first text, then cancel.
    if let StreamEvent::Done(result) = stream.next_event() {
        panic!("ended before any text: {result:?}");
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let generation = stream
        .finish(|_| {})
        .expect("a cancelled generation is not an error");
    let latency = cancelled_at.elapsed();
    assert_eq!(generation.finish, FinishReason::Cancelled);
    assert!(generation.n_generated < 400);
    // The flag is seen within one decode step (milliseconds on a 135M model). The bound is
    // generous for a loaded two-core CI machine; what it catches is a cancel seen only at the
    // end (400 tokens take seconds), or not at all (then `n_generated` is 400).
    assert!(latency < Duration::from_secs(2), "cancel took {latency:?}");

    let next = generate(
        &engine,
        &chat("Say hello."),
        Sampling {
            max_tokens: 8,
            ..Sampling::default()
        },
    );
    assert!(next.n_generated > 0);
}

#[test]
fn a_prompt_larger_than_the_context_is_a_clear_error() {
    let _model = crate::support::real_model_lock();
    let config = EngineConfig {
        n_ctx: Some(256),
        threads: Some(1),
        default_model: Some(default_model()),
        ..EngineConfig::default()
    };
    let engine = EngineHandle::spawn(EngineSpec::Default, config);
    let prompt = "word ".repeat(600);
    let err = engine
        .generate(request(&prompt, Sampling::default()), CancelFlag::default())
        .finish(|_| {})
        .unwrap_err();
    match &err {
        EngineError::ContextOverflow { n_prompt, n_ctx } => {
            assert!(*n_prompt > 256 && *n_ctx == 256)
        }
        other => panic!("expected a context overflow, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("does not fit the context of 256 tokens"),
        "{err}"
    );
}

#[test]
fn missing_and_corrupt_model_files_are_clear_errors() {
    let missing = EngineHandle::spawn(
        EngineSpec::Llama {
            path: "/nonexistent/model.gguf".into(),
        },
        EngineConfig::default(),
    );
    let err = missing.wait_ready().unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/model.gguf") && err.contains("punie models fetch"),
        "{err}"
    );

    // The first megabyte of the real model: a valid start, then nothing.
    let real = std::fs::read(default_model()).unwrap();
    let mut truncated = tempfile::NamedTempFile::new().unwrap();
    truncated.write_all(&real[..1 << 20]).unwrap();
    let mut garbage = tempfile::NamedTempFile::new().unwrap();
    garbage.write_all(b"this is not a model at all").unwrap();
    for (file, expect) in [(&truncated, "truncated"), (&garbage, "not a GGUF file")] {
        let engine = EngineHandle::spawn(
            EngineSpec::Llama {
                path: file.path().to_owned(),
            },
            EngineConfig::default(),
        );
        let err = engine.wait_ready().unwrap_err();
        assert!(matches!(err, EngineError::ModelInvalid { .. }), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
        // Every later request fails fast with the same reason.
        let again = engine
            .generate(request("hi", Sampling::default()), CancelFlag::default())
            .finish(|_| {});
        assert_eq!(again.unwrap_err().to_string(), err.to_string());
    }
}
