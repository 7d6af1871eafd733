//! What a run does when the model's answer or the conversation outgrows its limits, on the real
//! default model (SmolLM2-135M through llama.cpp) with small contexts: answers cut by the
//! per-turn token cap or by the end of the context end `truncated`, saying which; a tool output
//! larger than the context is cut with a note; long conversations drop their oldest turns and
//! keep answering.
//!
//! SmolLM2 does not call tools, so the large file is read by a scripted turn through the real
//! sandbox, and the real model answers the follow-up about it.
//!
//! The agent-API tests run the library's agent with the real engine and sandbox, the way the
//! language server does; the CLI tests run the built `punie ask` over stdio.

use std::path::Path;

use punie::agent::{self, Conversation, RunEvent, RunRequest, RunStatus, Truncation};
use punie::cancel::CancelFlag;
use punie::engine::{EngineHandle, EngineSpec, Sampling};
use punie::sandbox::{DiskToolHost, Sandbox, SandboxLimits};
use serde_json::Value;

use crate::support::{default_model_engine, fixture_workspace, real_model_lock};

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
    let (out, stderr) = punie_ask_status(workspace, n_ctx, args);
    assert!(
        out["status"] == "done"
            || out["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("truncated: the answer was cut at the limit")),
        "{out}\n{stderr}"
    );
    (out, stderr)
}

/// `punie ask --json` on the default model with a context of `n_ctx`: its output and stderr.
fn punie_ask_status(workspace: &Path, n_ctx: u32, args: &[&str]) -> (Value, String) {
    let output = crate::support::punie()
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
    let engine = default_model_engine(2048);
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
    // The system prompt and the question take about 900 of the 1280 tokens (llama.cpp rounds
    // the context up to a multiple of 256).
    let (out, stderr) = punie_ask_status(
        workspace.path(),
        1280,
        &["Write a long essay about the history of Rome."],
    );
    assert_eq!(
        out["status"],
        "truncated: the answer was cut where the model's context of 1280 tokens ran out",
        "{out}"
    );
    assert!(!out["answer"].as_str().unwrap().is_empty(), "{out}");
    assert!(stderr.contains("punie: truncated: "), "{stderr}");
    let session = workspace.path().join(".punie/session.json");
    assert!(session.is_file(), "a cut answer is kept for --continue");
}

/// Whether the model's answer is one: finished, or cut by the per-turn cap (SmolLM2 rambles).
fn answered(outcome: &agent::RunOutcome) -> bool {
    matches!(
        outcome.status,
        RunStatus::Done | RunStatus::Truncated(Truncation::TokenCap { .. })
    ) && !outcome.answer.trim().is_empty()
}

#[test]
fn a_large_file_read_is_cut_to_fit_and_the_real_model_answers_a_follow_up() {
    let _model = real_model_lock();
    let workspace = fixture_workspace();
    let big: String = (0..600)
        .map(|n| {
            format!(
                "def function_{n}(x):\n    \"\"\"Return x plus {n}.\"\"\"\n    return x + {n}\n\n"
            )
        })
        .collect();
    std::fs::write(workspace.path().join("big.py"), &big).unwrap();
    let script = workspace.path().join("read.json");
    let call = "<tool_call><function=execute_code>\n<parameter=code>\nprint(read_file('big.py'))\n</parameter>\n</function></tool_call>";
    std::fs::write(
        &script,
        serde_json::json!([call, "It defines 600 functions."]).to_string(),
    )
    .unwrap();
    let engine = format!("scripted:{}", script.display());
    let (out, _) = punie_ask(
        workspace.path(),
        2048,
        &[
            "--engine",
            &engine,
            "--profile",
            "generic",
            "What is in big.py?",
        ],
    );
    let response = out["tool_calls"][0]["response"].as_str().unwrap();
    assert!(response.len() < big.len() / 4, "{} bytes", response.len());
    assert!(response.starts_with("def function_0(x):"), "{response}");
    assert!(
        response.contains("cut here to fit the model's context"),
        "{response}"
    );
    assert!(
        response.trim_end().ends_with("return x + 599"),
        "{response}"
    );

    // The real model, in a smaller context still: the file's output goes first.
    let (out, stderr) = punie_ask(
        workspace.path(),
        1024,
        &[
            "--continue",
            "--max-tokens",
            "48",
            "What does function_3 return?",
        ],
    );
    assert!(!out["answer"].as_str().unwrap().trim().is_empty(), "{out}");
    assert!(
        stderr.contains("dropped to fit the model's context"),
        "{stderr}"
    );
}

#[test]
fn twenty_follow_ups_through_punie_ask_continue_all_answer() {
    let _model = real_model_lock();
    let workspace = fixture_workspace();
    let mut trimmed = 0;
    for n in 1..=20 {
        let question = format!("Question {n}: in two sentences, why is the sky blue?");
        let mut args = vec!["--max-tokens", "48", question.as_str()];
        if n > 1 {
            args.insert(0, "--continue");
        }
        let (out, stderr) = punie_ask(workspace.path(), 1024, &args);
        assert!(
            !out["answer"].as_str().unwrap().trim().is_empty(),
            "{n}: {out}"
        );
        if stderr.contains("dropped to fit the model's context") {
            trimmed += 1;
        }
    }
    assert!(
        trimmed >= 1,
        "twenty follow-ups in 1024 tokens drop earlier turns"
    );
    let session: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.path().join(".punie/session.json")).unwrap(),
    )
    .unwrap();
    let messages = session["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(messages.len() < 40, "{} messages kept", messages.len());
    assert!(
        messages
            .iter()
            .any(|m| m["content"] == "Question 20: in two sentences, why is the sky blue?")
    );
}

#[test]
fn twenty_follow_ups_through_the_agent_api_all_answer_and_reuse_the_cache() {
    let _model = real_model_lock();
    let workspace = fixture_workspace();
    let engine = default_model_engine(1024);
    let sampling = Sampling {
        max_tokens: 48,
        ..Sampling::default()
    };
    let mut conversation = Conversation::new();
    let (mut trimmed, mut reused) = (0, 0);
    for n in 1..=20 {
        let question = format!("Question {n}: in two sentences, why is the sky blue?");
        let (outcome, events) = ask(
            &engine,
            workspace.path(),
            &question,
            conversation,
            sampling.clone(),
        );
        assert!(answered(&outcome), "{n}: {outcome:?}");
        let was_trimmed = events
            .iter()
            .any(|e| matches!(e, RunEvent::ContextTrimmed { .. }));
        let first_turn = events.iter().find_map(|e| match e {
            RunEvent::TurnFinished { stats, .. } => Some(*stats),
            _ => None,
        });
        let stats = first_turn.expect("a turn");
        assert!(stats.n_prompt < 1024, "{n}: {stats:?}");
        if was_trimmed {
            trimmed += 1;
        } else if n > 1 {
            // The conversation so far is in the KV cache: only the new turn is evaluated.
            assert!(stats.n_evaluated * 4 < stats.n_prompt, "{n}: {stats:?}");
            reused += 1;
        }
        conversation = outcome.conversation;
    }
    assert!(
        trimmed >= 1 && reused >= 10,
        "{trimmed} trimmed, {reused} reused"
    );
}
