//! The `openai` engine against a real OpenAI-compatible server: streaming, a stop string, and a
//! cancel in mid-stream after which the next request still works.
//!
//! A check, not a test: it needs a server that the test command does not start (the unit tests
//! in `engine/openai.rs` cover the protocol against a local fixture on every run).
//! `bench/openai_server_check.sh` starts llama-cpp-python's server on the default model and runs
//! it; it exits non-zero, naming the failed check, when the engine misbehaves.
//!
//! ```text
//! cargo run --example openai_check -- http://127.0.0.1:PORT/v1#MODEL
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::{Context, bail, ensure};
use punie::engine::{
    CancelFlag, EngineConfig, EngineHandle, EngineSpec, FinishReason, GenerateRequest, Sampling,
    StreamEvent,
};

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .context("usage: openai_check http://HOST:PORT/v1#MODEL")?;
    let spec = EngineSpec::parse(&format!("openai:{url}")).context("the argument is URL#MODEL")?;
    let engine = EngineHandle::spawn(spec, EngineConfig::default());
    engine.wait_ready().context("the engine did not start")?;
    streams(&engine)?;
    println!("ok: the answer streams in pieces");
    stops(&engine)?;
    println!("ok: a stop string ends the text before it");
    cancels(&engine)?;
    println!("ok: a cancel in mid-stream ends the generation, and the next request answers");
    Ok(())
}

fn streams(engine: &EngineHandle) -> anyhow::Result<()> {
    let mut pieces = 0;
    let generation = engine
        .generate(
            request("Name three colours.", 32, Vec::new()),
            CancelFlag::default(),
        )
        .finish(|_| pieces += 1)?;
    ensure!(pieces > 1, "{pieces} pieces for {:?}", generation.text);
    Ok(())
}

fn stops(engine: &EngineHandle) -> anyhow::Result<()> {
    let generation = engine
        .generate(
            request(
                "Describe the weather in one sentence.",
                64,
                vec!["e".to_owned()],
            ),
            CancelFlag::default(),
        )
        .finish(|_| {})?;
    ensure!(
        generation.finish == FinishReason::Stop,
        "{:?}",
        generation.finish
    );
    ensure!(!generation.text.contains('e'), "{:?}", generation.text);
    Ok(())
}

fn cancels(engine: &EngineHandle) -> anyhow::Result<()> {
    let cancel = CancelFlag::default();
    let stream = engine.generate(
        request("Write a long story about a fox.", 400, Vec::new()),
        cancel.clone(),
    );
    if let StreamEvent::Done(result) = stream.next_event() {
        bail!("ended before any text: {result:?}");
    }
    cancel.cancel();
    let generation = stream.finish(|_| {})?;
    ensure!(
        generation.finish == FinishReason::Cancelled,
        "{:?}",
        generation.finish
    );
    let next = engine
        .generate(request("Say hello.", 8, Vec::new()), CancelFlag::default())
        .finish(|_| {})?;
    ensure!(!next.text.is_empty(), "no answer after the cancel");
    Ok(())
}

fn request(question: &str, max_tokens: usize, stop: Vec<String>) -> GenerateRequest {
    let prompt = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    GenerateRequest {
        prompt,
        quoted: Vec::new(),
        turn: 0,
        sampling: Sampling {
            max_tokens,
            stop,
            ..Sampling::default()
        },
    }
}
