//! End-to-end tests on micro-Punie (`models/micro/micro-punie-q5_k_m.gguf`): a tiny `qwen3_moe`
//! with the real Qwen3 tokenizer, trained on Punie's Phase 22 data and converted by the
//! production path (`models/convert/convert.sh`). It is committed, so these tests need no
//! download; they exercise what SmolLM2 cannot: Qwen's special tokens, the `punie-phase22`
//! prompt, and llama.cpp generating a real `<tool_call>` that the parser reads and the sandbox
//! runs. Its code is usually nonsense: the tests assert structure, never content.
//!
//! Two tests are also tools of `models/micro/run.sh`: `dump_logits` and `dump_validation` write
//! figures for docs/benchmarks.md when their environment variables are set, and do nothing
//! (saying so) otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// `../shared/fixtures/punie/phase22_merged` next to the repository, if this checkout has it.
fn training_data() -> Option<PathBuf> {
    let dir = repo().join("../shared/fixtures/punie/phase22_merged");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} is absent: using the built-in samples", dir.display());
        None
    }
}

fn punie(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_punie"))
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
fn first_turn_prompt(row: &str) -> String {
    let header = "<|im_start|>assistant\n";
    let end = row.find(header).expect("a row with an assistant turn") + header.len();
    row[..end].to_owned()
}

fn rows(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let value: Value = serde_json::from_str(l).unwrap();
            value["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

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
    let data = training_data();
    if let Some(dir) = &data {
        for file in ["train.jsonl", "valid.jsonl"] {
            args.extend(["--texts".into(), dir.join(file).display().to_string()]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = punie(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(stdout.contains(": OK"), "{stdout}");
    if data.is_some() {
        assert!(stdout.contains("635/635 texts identical"), "{stdout}");
    }
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

/// Tool for `models/micro/run.sh`: for each GGUF and prompt in `$PUNIE_MICRO_LOGITS_IN`
/// (`{"ggufs": [...], "prompts": [...]}`), the prompt's token ids and the logits at its last
/// position, written as JSON to `$PUNIE_MICRO_LOGITS_OUT`. Uses llama.cpp directly (not the
/// engine, which never exposes logits), so it must run alone: `cargo test -p punie --test e2e
/// micro::dump_logits -- --exact`.
#[test]
fn dump_logits() {
    use llama_cpp_2::context::params::LlamaContextParams;
    use llama_cpp_2::llama_backend::LlamaBackend;
    use llama_cpp_2::llama_batch::LlamaBatch;
    use llama_cpp_2::model::LlamaModel;
    use llama_cpp_2::model::params::LlamaModelParams;

    let (Ok(input), Ok(output)) = (
        std::env::var("PUNIE_MICRO_LOGITS_IN"),
        std::env::var("PUNIE_MICRO_LOGITS_OUT"),
    ) else {
        eprintln!("PUNIE_MICRO_LOGITS_IN/OUT not set: nothing to do");
        return;
    };
    let request: Value = serde_json::from_str(&std::fs::read_to_string(input).unwrap()).unwrap();
    let backend = LlamaBackend::init().unwrap();
    let mut results = Vec::new();
    for gguf in request["ggufs"].as_array().unwrap() {
        let gguf = gguf.as_str().unwrap();
        let model =
            LlamaModel::load_from_file(&backend, gguf, &LlamaModelParams::default()).unwrap();
        for prompt in request["prompts"].as_array().unwrap() {
            let tokens = model
                .vocab()
                .tokenize(prompt.as_str().unwrap().as_bytes(), false, true);
            let params = LlamaContextParams::default()
                .with_n_ctx(std::num::NonZeroU32::new(2048))
                .with_n_batch(2048)
                .with_n_ubatch(2048);
            let mut context = model.new_context(&backend, params).unwrap();
            let mut batch = LlamaBatch::new(2048, 1);
            for (i, t) in tokens.iter().enumerate() {
                batch
                    .add(*t, i as i32, &[0], i + 1 == tokens.len())
                    .unwrap();
            }
            context.decode(&mut batch).unwrap();
            let logits = context.get_logits_ith(tokens.len() as i32 - 1).to_vec();
            results.push(serde_json::json!({
                "gguf": gguf,
                "ids": tokens.iter().map(|t| t.0).collect::<Vec<_>>(),
                "logits": logits,
            }));
        }
    }
    std::fs::write(output, serde_json::to_vec(&results).unwrap()).unwrap();
}

/// Tool for `models/micro/run.sh`: greedy first turns of every row of `$PUNIE_MICRO_VALID_IN`
/// (a phase22 `.jsonl`) on `$PUNIE_MICRO_GGUF` (default: the committed file), one JSON line each
/// to `$PUNIE_MICRO_VALID_OUT`: whether the data expects a call, the text, and the parsed calls.
/// One llama.cpp thread: on a busy 2-core machine two threads spin in ggml's barrier and run
/// many times slower.
#[test]
fn dump_validation() {
    let (Ok(input), Ok(output)) = (
        std::env::var("PUNIE_MICRO_VALID_IN"),
        std::env::var("PUNIE_MICRO_VALID_OUT"),
    ) else {
        eprintln!("PUNIE_MICRO_VALID_IN/OUT not set: nothing to do");
        return;
    };
    let path = std::env::var("PUNIE_MICRO_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| gguf());
    let config = EngineConfig {
        n_ctx: Some(4096),
        threads: Some(1),
        ..EngineConfig::default()
    };
    let model = load_model(&path, &config).unwrap();
    let mut engine = LlamaEngine::new(&model, &path, &config).unwrap();
    let mut lines = String::new();
    for row in rows(Path::new(&input)) {
        let prompt = first_turn_prompt(&row);
        let expected = &row[prompt.len()..];
        let expected = &expected[..expected.find("<|im_end|>").unwrap_or(expected.len())];
        let request = GenerateRequest {
            prompt,
            turn: 0,
            sampling: Sampling {
                max_tokens: 300,
                ..Sampling::default()
            },
        };
        let generation = engine
            .generate(&request, &CancelFlag::default(), &mut |_| {})
            .unwrap();
        let parsed = punie::toolcall::parse(&generation.text);
        let calls: Vec<Value> = parsed
            .calls
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "code": c.code()}))
            .collect();
        let line = serde_json::json!({
            "expects_call": expected.contains("<tool_call>"),
            "emitted_tool_call_tag": generation.text.contains("<tool_call>"),
            "finish": format!("{:?}", generation.finish),
            "hard_errors": parsed.hard_errors().count(),
            "calls": calls,
            "text": generation.text,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(output, lines).unwrap();
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
