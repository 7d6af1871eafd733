//! Table-driven parser tests: each case is one `check(input, expected)` call.

use super::*;

/// Renders `parse(input)` as one line per item and compares it with `expect`; also checks the
/// no-lost-text invariant on every case.
#[track_caller]
fn check(input: &str, expect: &str) {
    let parsed = parse(input);
    assert_covers_input(input, &parsed);
    let mut res = format!("text {:?}\n", parsed.text);
    for call in &parsed.calls {
        res.push_str(&format!("call {} {:?}\n", call.name, call.form));
        for (name, value) in &call.arguments {
            match value.as_str() {
                Some(text) => res.push_str(&format!("  {name}={text:?}\n")),
                None => res.push_str(&format!("  {name}={value}\n")),
            }
        }
    }
    for problem in &parsed.errors {
        res.push_str(&format!("{:?}: {}\n", problem.severity, problem.message));
    }
    // Indentation and blank lines in `expect` are layout only.
    let normalize = |text: &str| -> String {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        normalize(&res),
        normalize(expect),
        "\ninput: {input:?}\n--- got ---\n{res}"
    );
}

/// The text plus the calls' raw spans are the input, in order.
#[track_caller]
pub(super) fn assert_covers_input(input: &str, parsed: &Parsed) {
    let mut rebuilt = String::new();
    let mut text_pos = 0;
    let mut prev_end = 0;
    for call in &parsed.calls {
        assert!(
            prev_end <= call.span.start && call.span.start <= call.span.end,
            "spans out of order"
        );
        let gap = call.span.start - prev_end;
        rebuilt.push_str(&parsed.text[text_pos..text_pos + gap]);
        text_pos += gap;
        rebuilt.push_str(&input[call.span.clone()]);
        prev_end = call.span.end;
    }
    rebuilt.push_str(&parsed.text[text_pos..]);
    assert_eq!(
        rebuilt, input,
        "text and call spans do not rebuild the input"
    );
    for problem in &parsed.errors {
        assert!(
            input.get(problem.span.clone()).is_some(),
            "problem span not on char boundaries"
        );
    }
}

#[test]
fn plain_text() {
    check("Hello, world.", r#"text "Hello, world.""#);
    check("", r#"text """#);
}

#[test]
fn trained_form_with_preface() {
    check(
        "I'll use the run_command tool.\n\n<tool_call><function=execute_code>\n<parameter=code>\nresult = run_command(\"grep -r 'x' .\")\nprint(result)\n</parameter>\n</function></tool_call>",
        r#"
        text "I'll use the run_command tool.\n\n"
        call execute_code Xml
          code="result = run_command(\"grep -r 'x' .\")\nprint(result)"
        "#,
    );
}
