//! The `openai` engine against a real OpenAI-compatible server.
//!
//! Runs only when `PUNIE_OPENAI_URL` names a server (`http://127.0.0.1:PORT/v1#MODEL`);
//! `bench/openai_server_check.sh` starts llama-cpp-python's server on the default model and runs
//! it. Unit tests in `engine/openai.rs` cover the protocol against a local fixture on every run.

use std::time::{Duration, Instant};

use punie::engine::{
    CancelFlag, EngineConfig, EngineHandle, EngineSpec, FinishReason, GenerateRequest, Sampling,
    StreamEvent,
};

fn server() -> Option<EngineHandle> {
    let Ok(spec) = std::env::var("PUNIE_OPENAI_URL") else {
        eprintln!(
            "PUNIE_OPENAI_URL is not set: run bench/openai_server_check.sh to test against a real server"
        );
        return None;
    };
    let spec = EngineSpec::parse(&format!("openai:{spec}")).expect("PUNIE_OPENAI_URL is URL#MODEL");
    let handle = EngineHandle::spawn(spec, EngineConfig::default());
    handle.wait_ready().unwrap();
    Some(handle)
}

fn request(question: &str, sampling: Sampling) -> GenerateRequest {
    let prompt = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    GenerateRequest {
        prompt,
        turn: 0,
        sampling,
    }
}

#[test]
fn streams_stops_and_cancels_against_a_real_server() {
    let _model = crate::support::real_model_lock();
    let Some(engine) = server() else { return };

    // Streaming: the answer arrives in several pieces.
    let mut pieces = 0;
    let generation = engine
        .generate(
            request(
                "Name three colours.",
                Sampling {
                    max_tokens: 32,
                    ..Sampling::default()
                },
            ),
            CancelFlag::default(),
        )
        .finish(|_| pieces += 1)
        .unwrap();
    assert!(pieces > 1, "{pieces} pieces for {:?}", generation.text);

    // A stop string ends the text just before it.
    let stop_e = Sampling {
        max_tokens: 64,
        stop: vec!["e".to_owned()],
        ..Sampling::default()
    };
    let generation = engine
        .generate(
            request("Describe the weather in one sentence.", stop_e),
            CancelFlag::default(),
        )
        .finish(|_| {})
        .unwrap();
    assert_eq!(generation.finish, FinishReason::Stop);
    assert!(!generation.text.contains('e'), "{:?}", generation.text);

    // Cancel mid-stream: prompt, and the next request works.
    let cancel = CancelFlag::default();
    let long = Sampling {
        max_tokens: 400,
        stop: Vec::new(),
        ..Sampling::default()
    };
    let stream = engine.generate(
        request("Write a long story about a fox.", long),
        cancel.clone(),
    );
    match stream.next_event() {
        StreamEvent::Text(_) => {}
        StreamEvent::Done(result) => panic!("ended before any text: {result:?}"),
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let generation = stream.finish(|_| {}).unwrap();
    assert_eq!(generation.finish, FinishReason::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(500),
        "{:?}",
        cancelled_at.elapsed()
    );
    let next = engine
        .generate(
            request(
                "Say hello.",
                Sampling {
                    max_tokens: 8,
                    ..Sampling::default()
                },
            ),
            CancelFlag::default(),
        )
        .finish(|_| {})
        .unwrap();
    assert!(!next.text.is_empty());
}
