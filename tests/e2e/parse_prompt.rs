//! End-to-end tests of `punie parse` and `punie render-prompt` (INTERFACES.md §1): the binary,
//! stdin to stdout, byte for byte, and its one-line errors.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

/// Runs `punie ARGS` with `stdin`, returning its output.
fn punie(args: &[&str], stdin: &str) -> Output {
    let mut child = crate::support::punie()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("punie starts");
    // A command that fails on its arguments exits before it reads stdin: the pipe is then
    // closed, which is its answer, not the test's failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(err) => panic!("writing to punie's stdin: {err}"),
    }
    child.wait_with_output().unwrap()
}

#[track_caller]
fn stdout_of(args: &[&str], stdin: &str) -> String {
    let output = punie(args, stdin);
    assert!(
        output.status.success(),
        "punie {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Fails with exactly one stderr line that contains `expected`.
#[track_caller]
fn check_error(args: &[&str], stdin: &str, expected: &str) {
    let output = punie(args, stdin);
    assert!(!output.status.success(), "punie {args:?} should fail");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{stderr:?} lacks {expected:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn parse_prints_text_calls_and_errors() {
    let output = "I'll use the run_command tool.\n\n<tool_call><function=execute_code>\n<parameter=code>\nif a < b:\n    print(\"</parameter>\")\n</parameter>\n</function></tool_call>";
    let parsed: Value = serde_json::from_str(&stdout_of(&["parse"], output)).unwrap();
    assert_eq!(parsed["text"], "I'll use the run_command tool.\n\n");
    assert_eq!(parsed["tool_calls"][0]["name"], "execute_code");
    assert_eq!(
        parsed["tool_calls"][0]["arguments"],
        json!({"code": "if a < b:\n    print(\"</parameter>\")"})
    );
    assert_eq!(parsed["errors"], json!([]));

    let broken =
        "```json\n{\"name\": \"run_command\", \"arguments\": {\"command\": \"grep '\\{'\"}}\n```";
    let parsed: Value = serde_json::from_str(&stdout_of(&["parse"], broken)).unwrap();
    assert_eq!(parsed["text"], broken);
    assert_eq!(parsed["tool_calls"], json!([]));
    assert!(
        parsed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[test]
fn render_prompt_prints_exact_bytes() {
    let request = json!({"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<tool_call>\nprint(1)\n</tool_call>"},
        {"role": "tool", "content": "1"},
    ]});
    let prompt = stdout_of(
        &["render-prompt", "--profile", "punie-phase22"],
        &request.to_string(),
    );
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Punie, an AI coding assistant that helps with Python development via PyCharm.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<tool_call>\nprint(1)\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n1\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    );
    // `generic` without a model: ChatML with Code Mode and the registered tools' stubs.
    let prompt = stdout_of(
        &["render-prompt", "--profile", "generic"],
        &request.to_string(),
    );
    assert!(prompt.starts_with("<|im_start|>system\nYou are Punie"));
    assert!(prompt.contains("def read_file(path: str) -> str:"));
    assert!(prompt.ends_with("</tool_response><|im_end|>\n<|im_start|>assistant\n"));
}

#[test]
fn render_prompt_uses_a_chat_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.jinja");
    std::fs::write(&template, "{% for m in messages %}[{{ m.role }}]{% endfor %}{% if add_generation_prompt %}[gen]{% endif %}").unwrap();
    let request = json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let args = [
        "render-prompt",
        "--profile",
        "generic",
        "--chat-template",
        template.to_str().unwrap(),
    ];
    assert_eq!(stdout_of(&args, &request), "[system][user][gen]");
}

#[test]
fn render_prompt_errors_are_one_line() {
    let request = json!({"messages": []}).to_string();
    check_error(
        &["render-prompt", "--profile", "qwen"],
        &request,
        "expected one of punie-phase22, punie-typed, generic",
    );
    check_error(
        &["render-prompt", "--profile", "punie-phase22"],
        "{\"messages\": [",
        "stdin is not",
    );
    check_error(
        &["render-prompt", "--profile", "punie-phase22"],
        &json!({"messages": [{"role": "bot", "content": "x"}]}).to_string(),
        "unknown role `bot`",
    );
    check_error(
        &[
            "render-prompt",
            "--profile",
            "generic",
            "--chat-template",
            "/nonexistent/t.jinja",
        ],
        &request,
        "reading chat template",
    );
}

/// The same comparison as the crate's golden test, through the binary: every distinct prompt
/// before an assistant turn in the training rows, with tool results given as `tool` messages.
#[test]
fn render_prompt_matches_every_training_row() {
    let dir = crate::support::punie_fixtures().join("phase22_merged");
    let mut seen = HashSet::new();
    for file in ["train.jsonl", "valid.jsonl"] {
        for line in std::fs::read_to_string(dir.join(file)).unwrap().lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            let text = row["text"].as_str().unwrap();
            let mut messages = Vec::new();
            let mut offset = 0;
            for turn in text.split("<|im_end|>").filter(|turn| !turn.is_empty()) {
                let turn_start = offset + usize::from(turn.starts_with('\n'));
                offset += turn.len() + "<|im_end|>".len();
                let (role, content) = turn
                    .trim_start_matches('\n')
                    .trim_start_matches("<|im_start|>")
                    .split_once('\n')
                    .unwrap();
                if role == "assistant" && seen.insert(text[..turn_start].to_owned()) {
                    let request = json!({"messages": messages}).to_string();
                    let prompt =
                        stdout_of(&["render-prompt", "--profile", "punie-phase22"], &request);
                    assert_eq!(
                        prompt,
                        format!("{}<|im_start|>assistant\n", &text[..turn_start])
                    );
                }
                let tool_output = content
                    .strip_prefix("<tool_response>\n")
                    .and_then(|it| it.strip_suffix("\n</tool_response>"));
                messages.push(match (role, tool_output) {
                    ("user", Some(output)) => json!({"role": "tool", "content": output}),
                    _ => json!({"role": role, "content": content}),
                });
            }
        }
    }
    assert!(seen.len() > 500, "only {} prompts", seen.len());
}
