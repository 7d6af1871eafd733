//! Prompt tests: hand-written cases through one `check`, and golden tests over the training rows.

use super::*;

/// Renders `messages` (role name, content) with the profile named `profile` and compares the
/// bytes with `expect`.
#[track_caller]
fn check(profile: &str, template: Option<&str>, messages: &[(&str, &str)], expect: &str) {
    let profile = match Profile::parse(profile).unwrap() {
        Profile::Generic(_) => Profile::Generic(GenericConfig {
            chat_template: template.map(str::to_owned),
            stubs: "def read_file(path: str) -> str: ...".to_owned(),
            ..GenericConfig::default()
        }),
        it => it,
    };
    let messages: Vec<Message> = messages
        .iter()
        .map(|(role, content)| Message::new(Role::parse(role).unwrap(), *content))
        .collect();
    let prompt = render(&profile, &messages);
    assert_eq!(
        prompt, expect,
        "
--- got ---
{prompt}"
    );
}

const PHASE22_SYSTEM: &str = "<|im_start|>system\nYou are Punie, an AI coding assistant that helps with Python development via PyCharm.<|im_end|>";

#[test]
fn phase22_default_system_prompt() {
    check(
        "punie-phase22",
        None,
        &[("user", "Hi")],
        &format!("{PHASE22_SYSTEM}\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
    );
    check(
        "punie-phase22",
        None,
        &[],
        &format!("{PHASE22_SYSTEM}\n<|im_start|>assistant\n"),
    );
}

#[test]
fn phase22_tool_result_is_a_user_turn() {
    check(
        "punie-phase22",
        None,
        &[
            ("system", "S"),
            ("user", "Q"),
            ("assistant", "<tool_call>x</tool_call>"),
            ("tool", "out\n"),
        ],
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<tool_call>x</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nout\n\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
    );
}

#[test]
fn profile_names() {
    assert_eq!(
        Profile::parse("generic"),
        Ok(Profile::Generic(GenericConfig::default()))
    );
    assert_eq!(
        Profile::parse("qwen").unwrap_err().to_string(),
        "unknown prompt profile `qwen`: expected one of punie-phase22, generic"
    );
}

/// One row of the training data split back into turns.
struct Turn<'a> {
    role: &'a str,
    content: &'a str,
    /// Offset of the turn's `<|im_start|>` in the row.
    start: usize,
}

fn split_row(row: &str) -> Vec<Turn<'_>> {
    let mut res = Vec::new();
    let mut pos = 0;
    while pos < row.len() {
        let start = pos;
        let header = row[pos..]
            .strip_prefix("<|im_start|>")
            .expect("a turn starts with <|im_start|>");
        let newline = header.find('\n').unwrap();
        let role = &header[..newline];
        let body = &header[newline + 1..];
        let end = body.find("<|im_end|>").unwrap();
        res.push(Turn {
            role,
            content: &body[..end],
            start,
        });
        pos = row.len() - body.len() + end + "<|im_end|>".len();
        if pos < row.len() {
            assert_eq!(&row[pos..pos + 1], "\n", "turns are joined by one newline");
            pos += 1;
        }
    }
    res
}

/// A training turn as a message; a tool-response user turn as `tool` when `tool_role` is set.
fn to_message(turn: &Turn<'_>, tool_role: bool) -> Message {
    let inner = turn
        .content
        .strip_prefix("<tool_response>\n")
        .and_then(|it| it.strip_suffix("\n</tool_response>"));
    match (turn.role, inner) {
        ("user", Some(output)) if tool_role => Message::tool(output),
        (role, _) => Message::new(Role::parse(role).unwrap(), turn.content),
    }
}

/// Every assistant turn of every row of `phase22_merged/{train,valid}.jsonl`: the messages before
/// it, rendered as `punie render-prompt --profile punie-phase22` renders them, equal the row's
/// bytes up to that turn plus the generation prompt; with tool results given as `tool` or as the
/// user turn they were trained as. Appending the rest of the row continues the prompt exactly.
#[test]
fn phase22_golden_training_rows() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/punie/phase22_merged");
    if !dir.exists() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "skipping phase22_golden_training_rows: {} is not there",
                dir.display()
            );
        }
        return;
    }
    let profile = Profile::parse("punie-phase22").unwrap();
    let mut n_rows = 0;
    let mut n_prompts = 0;
    for file in ["train.jsonl", "valid.jsonl"] {
        // Test-only IO: the fixtures are data files outside the crate.
        let data = std::fs::read_to_string(dir.join(file)).unwrap();
        for (line_idx, line) in data.lines().enumerate() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = row["text"].as_str().unwrap();
            let turns = split_row(text);
            n_rows += 1;
            for tool_role in [false, true] {
                let messages: Vec<Message> = turns
                    .iter()
                    .map(|turn| to_message(turn, tool_role))
                    .collect();
                for (turn_idx, turn) in turns.iter().enumerate() {
                    if turn.role != "assistant" {
                        continue;
                    }
                    let expected = format!("{}<|im_start|>assistant\n", &text[..turn.start]);
                    let prompt = render(&profile, &messages[..turn_idx]);
                    assert!(
                        prompt == expected,
                        "{file}:{} turn {turn_idx} (tool role: {tool_role}) differs\n--- expected ---\n{expected}\n--- got ---\n{}",
                        line_idx + 1,
                        prompt
                    );
                    n_prompts += 1;
                    let continuation =
                        render_continuation(&profile, &messages[..turn_idx], &messages[turn_idx..]);
                    assert!(
                        continuation.is_some(),
                        "{file}:{} turn {turn_idx}: not a prefix",
                        line_idx + 1
                    );
                }
                let whole = render(&profile, &messages);
                assert_eq!(whole, format!("{text}\n<|im_start|>assistant\n"));
            }
        }
    }
    assert_eq!(n_rows, 635, "the fixture files changed");
    assert!(n_prompts > 2 * 635);
}
