//! End-to-end tests on micro-Punie (`models/micro/micro-punie-q5_k_m.gguf`): a tiny `qwen3_moe`
//! with the real Qwen3 tokenizer, trained on Punie's Phase 22 data and converted by the
//! production path (`models/convert/convert.sh`). It is committed, so these tests need no
//! download; they exercise what SmolLM2 cannot: Qwen's special tokens, the `punie-phase22`
//! prompt, and llama.cpp generating a real `<tool_call>` that the parser reads and the sandbox
//! runs. Its code is usually nonsense: the tests assert structure, never content.

use std::path::{Path, PathBuf};
use std::process::Output;

use punie::engine::llama::{GgufTokenizer, LlamaEngine, load_model};
use punie::engine::{CancelFlag, Engine, EngineConfig, FinishReason, GenerateRequest, Sampling};
use serde_json::{Value, json};

use crate::lsp_client::{Answers, Client, Launch, range};
use crate::support::fixture_workspace as workspace;

const GGUF: &str = "models/micro/micro-punie-q5_k_m.gguf";
const TOKENIZER: &str = "models/micro/tokenizer.json";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gguf() -> PathBuf {
    let path = repo().join(GGUF);
    assert!(path.is_file(), "{} is committed", path.display());
    path
}

fn punie(args: &[&str]) -> Output {
    crate::support::punie()
        .env_remove("PUNIE_ENGINE")
        .env("PUNIE_LOG", "warn")
        .args(args)
        .output()
        .expect("running punie")
}

fn text_of(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The prompt of the first assistant turn of a training row: its system and user turns and the
/// assistant header, exactly as the model saw them in training.
fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_committed_file_matches_its_manifest_entry() {
    let manifest = punie::models::Manifest::builtin();
    let entry = manifest.find("micro-punie").expect("a micro-punie entry");
    assert_eq!(entry.profile, "punie-phase22");
    assert_eq!(
        entry.source,
        punie::models::ModelSource::Repo { path: GGUF.into() }
    );
    let path = gguf();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), entry.size);
    assert!(entry.size <= 25 * 1024 * 1024, "the fixture stays small");
    assert_eq!(sha256_hex(&path), entry.sha256);
    // `punie models list` shows where the committed file is.
    let output = punie(&["models", "list"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("micro-punie\t"))
        .expect(&stdout);
    assert!(
        line.contains("\tinstalled\t") && line.ends_with(GGUF),
        "{line}"
    );
}

#[test]
fn check_shows_qwen3moe_with_its_template_and_tool_call_tokens() {
    let output = punie(&["models", "check", gguf().to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", text_of(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["architecture"], "qwen3moe");
    assert_eq!(report["quantization"], "Q5_K_M");
    assert_eq!(report["chat_template"], true);
    for token in [
        "<tool_call>",
        "</tool_call>",
        "<tool_response>",
        "</tool_response>",
        "<|im_end|>",
    ] {
        assert_eq!(report["tool_call_tokens"][token], true, "{token}: {report}");
    }
}

#[test]
fn special_tokens_are_single_tokens() {
    let tokenizer = GgufTokenizer::load(&gguf()).unwrap();
    for (token, id) in [
        ("<tool_call>", 151657),
        ("</tool_call>", 151658),
        ("<tool_response>", 151665),
        ("</tool_response>", 151666),
        ("<|im_start|>", 151644),
        ("<|im_end|>", 151645),
    ] {
        assert_eq!(tokenizer.encode(token), vec![id], "{token}");
    }
}

#[test]
fn tokenizer_parity_on_every_training_row() {
    let _model = crate::support::real_model_lock();
    let tokenizer = repo().join(TOKENIZER);
    let gguf = gguf();
    let mut args = vec![
        "models".to_owned(),
        "parity".into(),
        "--tokenizer".into(),
        tokenizer.display().to_string(),
        "--gguf".into(),
        gguf.display().to_string(),
    ];
    let dir = crate::support::punie_fixtures().join("phase22_merged");
    for file in ["train.jsonl", "valid.jsonl"] {
        args.extend(["--texts".into(), dir.join(file).display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = punie(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(stdout.contains("635/635 texts identical"), "{stdout}");
}

/// Greedy generation from the first turn of a training row ends on the model's own
/// `<|im_end|>` (no stop strings: only the end-of-generation token can stop it) with a tool call.
#[test]
fn generation_stops_at_im_end_after_a_tool_call() {
    let _model = crate::support::real_model_lock();
    let path = gguf();
    let config = EngineConfig {
        n_ctx: Some(2048),
        threads: Some(1),
        ..EngineConfig::default()
    };
    let model = load_model(&path, &config).unwrap();
    let mut engine = LlamaEngine::new(&model, &path, &config).unwrap();
    let prompt = "<|im_start|>system\nYou are Punie, an AI coding assistant that helps with Python \
                  development via PyCharm.<|im_end|>\n<|im_start|>user\nFind all classes that \
                  inherit from Exception<|im_end|>\n<|im_start|>assistant\n";
    let request = GenerateRequest {
        prompt: prompt.to_owned(),
        quoted: Vec::new(),
        turn: 0,
        sampling: Sampling {
            max_tokens: 400,
            stop: Vec::new(),
            ..Sampling::default()
        },
    };
    let mut streamed = String::new();
    let generation = engine
        .generate(&request, &CancelFlag::default(), &mut |t| {
            streamed.push_str(t)
        })
        .unwrap();
    assert_eq!(generation.finish, FinishReason::Stop, "{}", generation.text);
    assert!(generation.n_generated < 400);
    assert!(
        !generation.text.contains("<|im_end|>"),
        "{}",
        generation.text
    );
    let parsed = punie::toolcall::parse(&generation.text);
    assert_eq!(parsed.calls.len(), 1, "{}", generation.text);
    assert!(
        parsed.calls[0].code().is_some_and(|c| !c.trim().is_empty()),
        "{}",
        generation.text
    );
}

/// The agent loop on the real model: the model's call is parsed and run in the sandbox, its
/// output goes back as a `<tool_response>` turn, and the run ends with an answer.
#[test]
fn ask_runs_the_models_tool_call_and_answers() {
    let _model = crate::support::real_model_lock();
    for question in [
        "Find all classes that inherit from Exception",
        "Find all Python files in the project",
    ] {
        let ws = workspace();
        let engine = format!("llama:{}", gguf().display());
        let output = punie(&[
            "ask",
            "--workspace",
            ws.path().to_str().unwrap(),
            "--engine",
            &engine,
            "--profile",
            "punie-phase22",
            "--allow-commands",
            "--max-turns",
            "3",
            "--json",
            question,
        ]);
        assert!(output.status.success(), "{}", text_of(&output));
        let out: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{err}: {}", text_of(&output)));
        assert_eq!(out["status"], "done", "{out}");
        let calls = out["tool_calls"].as_array().expect("tool_calls");
        assert!(
            !calls.is_empty(),
            "{question}: the model made no call: {out}"
        );
        let answer = out["answer"].as_str().expect("an answer");
        assert!(!answer.trim().is_empty(), "{out}");
        // The transcript shows the model's call and the sandbox's response going back to it.
        let transcript = std::fs::read_to_string(out["transcript"].as_str().unwrap()).unwrap();
        assert!(transcript.contains("<tool_call>"), "{transcript}");
        assert!(
            transcript.contains(r#""event":"tool_result""#),
            "{transcript}"
        );
    }
}

/// The figures `models/micro/run.sh` records come from two hidden commands: the logits at a
/// prompt's last position (one per vocabulary entry, after the prompt's own token ids) and
/// greedy first turns as JSON lines with the parsed calls.
#[test]
fn the_figure_tools_of_run_sh_write_their_data() {
    let _model = crate::support::real_model_lock();
    let dir = tempfile::tempdir().unwrap();
    let row = std::fs::read_to_string(
        crate::support::punie_fixtures().join("phase22_merged/valid.jsonl"),
    )
    .unwrap()
    .lines()
    .next()
    .unwrap()
    .to_owned();
    let data = dir.path().join("one.jsonl");
    std::fs::write(&data, format!("{row}\n")).unwrap();
    let request = dir.path().join("logits-in.json");
    let gguf = gguf();
    std::fs::write(
        &request,
        json!({"ggufs": [gguf], "prompts": ["<|im_start|>user\nhi<|im_end|>"]}).to_string(),
    )
    .unwrap();

    let output = punie(&["models", "logits", request.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text_of(&output));
    let logits: Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<i64> = serde_json::from_value(logits[0]["ids"].clone()).unwrap();
    let expected = GgufTokenizer::load(&gguf)
        .unwrap()
        .encode("<|im_start|>user\nhi<|im_end|>");
    assert_eq!(ids, expected.into_iter().map(i64::from).collect::<Vec<_>>());
    assert!(logits[0]["logits"].as_array().unwrap().len() > 150_000);

    let output = punie(&[
        "models",
        "first-turns",
        "--gguf",
        gguf.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text_of(&output));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["expects_call"].is_boolean(), "{}", lines[0]);
    assert!(lines[0]["calls"].is_array(), "{}", lines[0]);
    assert!(
        !lines[0]["text"].as_str().unwrap().is_empty(),
        "{}",
        lines[0]
    );
}

/// The same run through `punie lsp`, driven as an editor would (the harness of `lsp_client.rs`):
/// code action → `punie.ask` → `$/progress` reports that include the model's code running →
/// `end` → `punie/answer`.
#[test]
fn lsp_code_action_runs_the_models_tool_call_and_answers() {
    let _model = crate::support::real_model_lock();
    let mut client = Client::start_with(
        &format!("llama:{}", gguf().display()),
        json!({"window": {"workDoneProgress": true}, "experimental": {"punieAnswer": true}}),
        json!({"profile": "punie-phase22", "toolPolicy": {"run_command": "allow"}}),
        Launch {
            workspace: workspace(),
            answers: Answers {
                permission: Some("Allow"),
                ..Answers::default()
            },
            env: vec![("PUNIE_LOG", "warn")],
            env_remove: vec!["PUNIE_ENGINE"],
        },
    );

    // An empty scratch file: the question then reads like a training prompt (the instruction and
    // a `File:` line, no selection), which is what this tiny model answers with a tool call.
    let uri = client.open("notes.py", "");
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": range(0, 0, 0, 0), "context": {"diagnostics": []}}),
    );
    let action = actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["command"]["command"] == "punie.ask")
        .expect("an Ask Punie action")
        .clone();
    let mut runs_with_code = 0;
    let questions = [
        "Find all classes that inherit from Exception",
        "Find all Python files in the project",
    ];
    for question in questions {
        let mut arguments = action["command"]["arguments"].clone();
        arguments[0]["instruction"] = Value::from("ask");
        arguments[0]["question"] = Value::from(question);
        let started = client.request(
            "workspace/executeCommand",
            json!({"command": "punie.ask", "arguments": arguments}),
        );
        let token = started["result"]["token"].clone();
        let run_id = started["result"]["runId"].clone();
        assert!(token.is_string(), "{started}");
        let answer = client.wait_answer(&run_id);
        let progress = client.progress_on(&token);
        eprintln!("{question}: {progress:?}");
        if progress.iter().any(|p| p == "report running code") {
            runs_with_code += 1;
        }
        assert_eq!(
            progress.last().map(String::as_str),
            Some("end done"),
            "{progress:?}"
        );
        assert_eq!(answer["status"], "done", "{answer}");
        assert!(
            answer["markdown"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "{answer}"
        );
    }
    assert!(
        runs_with_code > 0,
        "no run reported the model's code running"
    );
    client.shutdown();
}
