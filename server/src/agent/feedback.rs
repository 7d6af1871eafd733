//! What the model is told: tool responses, rejected calls, and the turn-limit answer.
//!
//! Pure text functions, no IO. The fine-tune saw tool responses as the snippet's printed output
//! only (Punie's training rows hold no failures); Punie's own sandbox answered a failure with
//! `Runtime error: <message>`. We keep the printed output and then add the failure the way a
//! Python traceback ends, `Error: <ExceptionType>: <message>`, because the exception type
//! (`PermissionError`, `FileNotFoundError`, `NameError`) is what tells a model how to correct
//! its code, and every code model has seen that line shape countless times.

use serde_json::{Map, Value};

use crate::policy::markdown_code_block;

use super::types::Strategy;

/// Tools a direct call (the older JSON form) may name; each becomes a one-line snippet.
const DIRECT_TOOLS: &[&str] = &["read_file", "write_file", "run_command"];

/// The content of the tool response turn for a snippet's result.
pub fn tool_response(output: &str, error: Option<&str>) -> String {
    let output = output.trim_end();
    match error {
        None if output.is_empty() => "(no output)".to_owned(),
        None => output.to_owned(),
        Some(error) if output.is_empty() => format!("Error: {error}"),
        Some(error) => format!("{output}\nError: {error}"),
    }
}

/// Whether a tool response (from [`tool_response`] or [`rejected_call_response`]) says its
/// call failed: an `Error:` line. Output the snippet printed may hold one too, so a
/// success can read as a failure, never the other way round.
pub(crate) fn response_says_failed(response: &str) -> bool {
    response.starts_with("Error: ") || response.contains("\nError: ")
}

/// The tool response for a call the agent could not run, so the model can fix its call: the
/// problem, then an example of a call the run's strategy accepts.
pub(crate) fn rejected_call_response(problem: &str, strategy: Strategy) -> String {
    let (how, example) = match strategy {
        Strategy::CodeMode => (
            "Call tools by writing Python in one execute_code call:",
            "<tool_call><function=execute_code>\n<parameter=code>\nprint(read_file(\"README.md\"))\n</parameter>\n</function></tool_call>",
        ),
        Strategy::ToolPerTurn => (
            "Call one tool per turn, directly:",
            "<tool_call><function=read_file>\n<parameter=path>\nREADME.md\n</parameter>\n</function></tool_call>",
        ),
    };
    format!("Error: {problem}\n{how}\n{example}")
}

/// `Type: message`, the one-line form of a Python exception used in events and responses.
pub(crate) fn exception_line(type_name: &str, message: &str) -> String {
    if message.is_empty() {
        type_name.to_owned()
    } else {
        format!("{type_name}: {message}")
    }
}

/// The answer of a run that reached its turn limit: says so, then keeps whatever the model
/// said and the last snippet's output, so the user still sees the work done.
pub(crate) fn turn_limit_answer(
    max_turns: usize,
    prose: &str,
    last_output: Option<&str>,
) -> String {
    let plural = if max_turns == 1 { "" } else { "s" };
    let mut answer = format!(
        "Stopped after {max_turns} turn{plural}: the turn limit (maxTurns = {max_turns}) was reached before the model gave a final answer."
    );
    let prose = prose.trim();
    if !prose.is_empty() {
        answer.push_str("\n\n");
        answer.push_str(prose);
    }
    if let Some(output) = last_output.map(str::trim_end).filter(|o| !o.is_empty()) {
        // Its own fence: a ``` line in the output must not end the block and have the rest
        // (a repository's text) read as Punie's Markdown.
        answer.push_str("\n\nOutput of the last snippet:\n\n");
        answer.push_str(&markdown_code_block(output));
    }
    answer
}

/// The Python to run for a parsed call: `execute_code`'s `code`, or a direct tool call turned
/// into `print(tool(...))`. The error says what is wrong, for [`rejected_call_response`].
pub(crate) fn code_for_call(name: &str, arguments: &Map<String, Value>) -> Result<String, String> {
    if name == "execute_code" {
        return match arguments.get("code") {
            Some(Value::String(code)) if !code.trim().is_empty() => Ok(code.clone()),
            Some(Value::String(_)) => Err("execute_code was called with empty code".to_owned()),
            Some(_) => Err("the code parameter of execute_code must be a string".to_owned()),
            None => Err("execute_code needs a `code` parameter".to_owned()),
        };
    }
    if !DIRECT_TOOLS.contains(&name) {
        return Err(format!(
            "unknown function `{name}`; the only function is execute_code"
        ));
    }
    let args = arguments
        .iter()
        .map(|(key, value)| {
            if is_identifier(key) {
                Ok(format!("{key}={}", python_literal(value)))
            } else {
                Err(format!("`{key}` is not a valid argument name for {name}"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("print({name}({}))", args.join(", ")))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A Python literal for a JSON value. JSON strings are valid Python string literals
/// (serde_json escapes quotes, backslashes and control characters the same way).
fn python_literal(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(python_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check_code(name: &str, arguments: Value, expect: Result<&str, &str>) {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let got = code_for_call(name, &arguments);
        assert_eq!(got.as_deref().map_err(String::as_str), expect);
    }

    #[test]
    fn execute_code_passes_its_code() {
        check_code("execute_code", json!({"code": "print(1)"}), Ok("print(1)"));
        check_code(
            "execute_code",
            json!({"code": "  "}),
            Err("execute_code was called with empty code"),
        );
        check_code(
            "execute_code",
            json!({}),
            Err("execute_code needs a `code` parameter"),
        );
    }

    #[test]
    fn direct_calls_become_snippets() {
        check_code(
            "read_file",
            json!({"path": "a \"b\".py"}),
            Ok(r#"print(read_file(path="a \"b\".py"))"#),
        );
        check_code(
            "run_command",
            json!({"command": "find", "args": [".", "-name", "*.py"], "cwd": null}),
            Ok(r#"print(run_command(args=[".", "-name", "*.py"], command="find", cwd=None))"#),
        );
        check_code(
            "rm_rf",
            json!({}),
            Err("unknown function `rm_rf`; the only function is execute_code"),
        );
        check_code(
            "read_file",
            json!({"a-b": 1}),
            Err("`a-b` is not a valid argument name for read_file"),
        );
    }

    #[test]
    fn responses_keep_output_and_add_the_error() {
        assert_eq!(tool_response("hello\n", None), "hello");
        assert_eq!(tool_response("", None), "(no output)");
        assert_eq!(
            tool_response("", Some("NameError: name 'x' is not defined")),
            "Error: NameError: name 'x' is not defined"
        );
        assert_eq!(
            tool_response("a\n", Some("ZeroDivisionError: division by zero")),
            "a\nError: ZeroDivisionError: division by zero"
        );
        for failed in [
            tool_response("", Some("NameError: x")),
            tool_response("a\n", Some("OSError: y")),
            rejected_call_response("unknown function `x`", Strategy::CodeMode),
        ] {
            assert!(response_says_failed(&failed), "{failed}");
        }
        for succeeded in ["hello", "(no output)", "no Error: here"] {
            assert!(!response_says_failed(&tool_response(succeeded, None)));
        }
    }

    /// The example in a rejection is a call the same strategy runs: the model can copy it.
    #[test]
    fn rejections_show_a_call_the_strategy_accepts() {
        for (strategy, expected_code) in [
            (Strategy::CodeMode, "print(read_file(\"README.md\"))"),
            (
                Strategy::ToolPerTurn,
                "print(read_file(path=\"README.md\"))",
            ),
        ] {
            let response = rejected_call_response("bad call", strategy);
            assert!(response.starts_with("Error: bad call\n"), "{response}");
            let parsed = crate::toolcall::parse(&response);
            let [call] = parsed.calls.as_slice() else {
                panic!("one call expected in {response}");
            };
            assert_eq!(
                super::super::run::strategy_problem(strategy, 0, &call.name),
                None,
                "{strategy:?}"
            );
            assert_eq!(
                code_for_call(&call.name, &call.arguments).as_deref(),
                Ok(expected_code),
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn turn_limit_answer_says_why() {
        assert_eq!(
            turn_limit_answer(1, "", Some("x\n")),
            "Stopped after 1 turn: the turn limit (maxTurns = 1) was reached before the model gave a final answer.\n\nOutput of the last snippet:\n\n```\nx\n```"
        );
    }

    #[test]
    fn turn_limit_answer_keeps_output_with_fences_inside_its_block() {
        let output = "a\n```\n# Not Punie's heading\n````\nb\n";
        let answer = turn_limit_answer(2, "", Some(output));
        assert!(
            answer.ends_with("Output of the last snippet:\n\n`````\na\n```\n# Not Punie's heading\n````\nb\n`````"),
            "{answer}"
        );
    }
}
