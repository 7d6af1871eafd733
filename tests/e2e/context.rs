//! What a run does when the model's answer or the conversation outgrows its limits, on the real
//! default model (SmolLM2-135M through llama.cpp): answers cut by the per-turn token cap or by
//! the end of the context end `truncated`, saying which.
//!
//! The agent-API tests run the library's agent with the real engine and sandbox, the way the
//! language server does; the CLI tests run the built `punie ask` over stdio.

use std::path::Path;
use std::process::Command;

use punie::agent::{self, Conversation, RunEvent, RunRequest, RunStatus, Truncation};
use punie::cancel::CancelFlag;
use punie::engine::{EngineConfig, EngineHandle, EngineSpec, Sampling};
use punie::sandbox::{DiskToolHost, Sandbox, SandboxLimits};
use serde_json::Value;

use crate::support::{fixture_workspace, installed_default_model, real_model_lock};

/// The default model with a context of `n_ctx` tokens, one thread (tests share two cores).
fn engine(n_ctx: u32) -> EngineHandle {
    let config = EngineConfig {
        n_ctx: Some(n_ctx),
        threads: Some(1),
        default_model: Some(installed_default_model()),
        ..EngineConfig::default()
    };
    let engine = EngineHandle::spawn(EngineSpec::Default, config);
    engine.wait_ready().expect("the default model loads");
    engine
}

/// One run through the agent API on `workspace`, as the language server makes it.
fn ask(
    engine: &EngineHandle,
    workspace: &Path,
    question: &str,
    conversation: Conversation,
    sampling: Sampling,
) -> (agent::RunOutcome, Vec<RunEvent>) {
    let profile = agent::resolve_profile(&EngineSpec::Default, None, None).unwrap();
    let request = RunRequest {
        run_id: agent::new_run_id(),
        question: question.to_owned(),
        conversation,
        profile,
        max_turns: 3,
        sampling,
        transcript_dir: Some(agent::default_transcript_dir(workspace)),
    };
    let mut sandbox = Sandbox::new(SandboxLimits::default()).unwrap();
    let host = DiskToolHost {
        root: workspace.to_owned(),
        allow_commands: false,
    };
    let mut events = Vec::new();
    let outcome = agent::run(
        engine,
        &mut sandbox,
        &host,
        &CancelFlag::default(),
        request,
        &mut |event| events.push(event),
    );
    (outcome, events)
}

fn punie_ask(workspace: &Path, n_ctx: u32, args: &[&str]) -> (Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_punie"))
        .env_remove("PUNIE_ENGINE")
        .env("PUNIE_LOG", "warn")
        .env("PUNIE_CTX_SIZE", n_ctx.to_string())
        .env("PUNIE_THREADS", "1")
        .arg("ask")
        .arg("--workspace")
        .arg(workspace)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let out = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}); stderr: {stderr}"));
    (out, stderr)
}

#[test]
fn an_answer_cut_by_the_token_cap_is_truncated() {
    let _model = real_model_lock();
    let workspace = fixture_workspace();
    let engine = engine(2048);
    let sampling = Sampling {
        max_tokens: 8,
        ..Sampling::default()
    };
    let (outcome, events) = ask(
        &engine,
        workspace.path(),
        "Write a long essay about the history of Rome.",
        Conversation::new(),
        sampling,
    );
    let truncation = Truncation::TokenCap { max_tokens: 8 };
    assert_eq!(
        outcome.status,
        RunStatus::Truncated(truncation),
        "{outcome:?}"
    );
    assert_eq!(outcome.tokens_out, 8);
    assert!(!outcome.answer.is_empty());
    assert_eq!(
        events.last(),
        Some(&RunEvent::Truncated {
            text: outcome.answer.clone(),
            truncation
        })
    );
    // Kept for a follow-up: the question and the cut turn.
    assert_eq!(outcome.conversation.messages().len(), 3);
}

#[test]
fn an_answer_cut_by_the_context_says_so_and_can_be_continued() {
    let _model = real_model_lock();
    let workspace = fixture_workspace();
    // The system prompt and the question take about 520 of the 768 tokens (llama.cpp rounds
    // the context up to a multiple of 256).
    let (out, stderr) = punie_ask(
        workspace.path(),
        768,
        &["Write a long essay about the history of Rome."],
    );
    assert_eq!(
        out["status"],
        "truncated: the answer was cut where the model's context of 768 tokens ran out",
        "{out}"
    );
    assert!(!out["answer"].as_str().unwrap().is_empty(), "{out}");
    assert!(stderr.contains("punie: truncated: "), "{stderr}");
    let session = workspace.path().join(".punie/session.json");
    assert!(session.is_file(), "a cut answer is kept for --continue");
}
