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

#[test]
fn multi_step_call_without_preface() {
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n</parameter>\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        "#,
    );
}

#[test]
fn raw_code_with_xml_like_text() {
    // `<`, `>`, `&` and a `</parameter>` inside a string literal are all part of the code.
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nif a < b and c & d > 0:\n    print(\"</parameter>\")\n    print('<b>&amp;</b>')\n</parameter>\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="if a < b and c & d > 0:\n    print(\"</parameter>\")\n    print('<b>&amp;</b>')"
        "#,
    );
}

#[test]
fn several_calls_with_text_between() {
    check(
        "First.\n<tool_call><function=execute_code>\n<parameter=code>\na()\n</parameter>\n</function></tool_call>\nThen.\n<tool_call><function=execute_code>\n<parameter=code>\nb()\n</parameter>\n</function></tool_call>\nDone.",
        r#"
        text "First.\n\nThen.\n\nDone."
        call execute_code Xml
          code="a()"
        call execute_code Xml
          code="b()"
        "#,
    );
}

#[test]
fn missing_closing_tags() {
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n</parameter>\n</function>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        Note: missing `</tool_call>` at the end of the output
        "#,
    );
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n</parameter>\n</tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        Note: missing `</function>`
        "#,
    );
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        Note: missing `</parameter>` after parameter `code`
        "#,
    );
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        Note: missing `</parameter>` after parameter `code`
        Note: missing `</function>`
        Note: missing `</tool_call>` at the end of the output
        "#,
    );
    // Prose after a call whose `</tool_call>` is missing stays text.
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nx()\n</parameter>\n</function>\nLet me check.",
        r#"
        text "\nLet me check."
        call execute_code Xml
          code="x()"
        Note: missing `</tool_call>`
        "#,
    );
}

#[test]
fn a_later_call_does_not_lend_its_closing_tags() {
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\na()\n</function></tool_call><tool_call><function=execute_code>\n<parameter=code>\nb()\n</parameter>\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="a()"
        call execute_code Xml
          code="b()"
        Note: missing `</parameter>` after parameter `code`
        "#,
    );
}

#[test]
fn whitespace_variants() {
    // Other Qwen models put newlines after `<tool_call>` and before `</tool_call>`.
    check(
        "<tool_call>\n<function=execute_code>\n<parameter=code>\nprint(1)\n</parameter>\n</function>\n</tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        "#,
    );
    // The compact form of later Punie data sets, and no newlines at all.
    check(
        "<tool_call><function=execute_code><parameter=code>\nprint(1)\n</parameter></function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        "#,
    );
    check(
        "<tool_call>  <function= execute_code ><parameter=code>print(1)</parameter></function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        "#,
    );
    // Windows newlines and indentation of the first line are kept apart from blank lines.
    check(
        "<tool_call><function=execute_code>\r\n<parameter=code>\r\n\r\nfor i in x:\r\n    f(i)\r\n</parameter>\r\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="for i in x:\r\n    f(i)"
        "#,
    );
}

#[test]
fn other_tools_and_parameters() {
    check(
        "<tool_call>\n<function=read_file>\n<parameter=path>\nREADME.md\n</parameter>\n<parameter=limit>\n10\n</parameter>\n</function>\n</tool_call>",
        r#"
        text ""
        call read_file Xml
          limit="10"
          path="README.md"
        "#,
    );
    check(
        "<tool_call><function=execute_code>\nprint(1)\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(1)"
        Note: the code is not inside `<parameter=code>`
        "#,
    );
    check(
        "<tool_call><function=execute_code\n<parameter=code>\nprint(1)\n</parameter>\n</function></tool_call> after",
        r#"
        text "<tool_call><function=execute_code\n<parameter=code>\nprint(1)\n</parameter>\n</function></tool_call> after"
        Error: a `<function=NAME>` tag is malformed: expected `>` after the name
        "#,
    );
}

#[test]
fn bare_form() {
    check(
        "<tool_call>\nprint(read_file(\"a.py\"))\n</tool_call>",
        r#"
        text ""
        call execute_code Bare
          code="print(read_file(\"a.py\"))"
        "#,
    );
    check(
        "<tool_call>\nprint(\"</tool_call>\")\nx = 1\n</tool_call>",
        r#"
        text ""
        call execute_code Bare
          code="print(\"</tool_call>\")\nx = 1"
        "#,
    );
    check(
        "<tool_call>\nprint(1)",
        r#"
        text ""
        call execute_code Bare
          code="print(1)"
        Note: missing `</tool_call>`
        "#,
    );
    check(
        "a <tool_call>\n \n</tool_call> b",
        r#"
        text "a <tool_call>\n \n</tool_call> b"
        Error: a `<tool_call>` block is empty
        "#,
    );
}

#[test]
fn json_in_tool_call() {
    check(
        "<tool_call>\n{\"name\": \"execute_code\", \"arguments\": {\"code\": \"print('}')\"}}\n</tool_call>",
        r#"
        text ""
        call execute_code JsonTag
          code="print('}')"
        "#,
    );
    check(
        r#"<tool_call>{"function": {"name": "read_file", "arguments": "{\"path\": \"a.py\"}"}}</tool_call>"#,
        r#"
        text ""
        call read_file JsonTag
          path="a.py"
        "#,
    );
    check(
        "<tool_call>\n{\"name\": \"execute_code\", \"arguments\": {\"code\": 'x'}}\n</tool_call>",
        r#"
        text "<tool_call>\n{\"name\": \"execute_code\", \"arguments\": {\"code\": 'x'}}\n</tool_call>"
        Error: the JSON in a `<tool_call>` is not valid: expected value at line 1 column 48
        "#,
    );
    check(
        "<tool_call>{\"arguments\": {}}</tool_call>",
        r#"
        text "<tool_call>{\"arguments\": {}}</tool_call>"
        Error: a JSON tool call has no `name` string
        "#,
    );
}

#[test]
fn legacy_json_fence() {
    // Verbatim from phase22_merged/train.jsonl.
    check(
        "I'll use the read_file tool.\n\n```json\n{\n  \"name\": \"read_file\",\n  \"arguments\": {\n    \"path\": \"models.py\"\n  }\n}```",
        r#"
        text "I'll use the read_file tool.\n\n"
        call read_file JsonFence
          path="models.py"
        "#,
    );
    // One of the two rows that are not valid JSON (`\{` is no JSON escape).
    check(
        "I'll use the run_command tool.\n\n```json\n{\n  \"name\": \"run_command\",\n  \"arguments\": {\"command\": \"grep -rn '^.\\{101,\\}$' src/\"}\n}\n```",
        r#"
        text "I'll use the run_command tool.\n\n```json\n{\n  \"name\": \"run_command\",\n  \"arguments\": {\"command\": \"grep -rn '^.\\{101,\\}$' src/\"}\n}\n```"
        Error: the tool call in a ```json block is not valid JSON: invalid escape at line 3 column 42
        "#,
    );
    // An ordinary JSON example in an answer is text.
    check(
        "Use this config:\n```json\n{\"debug\": true}\n```",
        r#"text "Use this config:\n```json\n{\"debug\": true}\n```""#,
    );
}

#[test]
fn xml_entities() {
    // Consistently escaped, with entities in code position: unescaped.
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nif a &lt; b &amp;&amp; c:\n    print(&quot;x &gt; y&quot;)\n</parameter>\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="if a < b && c:\n    print(\"x > y\")"
        Note: the value of `code` was XML-escaped; it was unescaped
        "#,
    );
    // Entities only inside a string literal: a real program printing entities, kept raw.
    check(
        "<tool_call><function=execute_code>\n<parameter=code>\nprint(\"&lt;b&gt;\")\n</parameter>\n</function></tool_call>",
        r#"
        text ""
        call execute_code Xml
          code="print(\"&lt;b&gt;\")"
        "#,
    );
    // A raw `<` next to an entity: not escaped, kept raw.
    check(
        "<tool_call>\nif a < b: print(x &amp; y)\n</tool_call>",
        r#"
        text ""
        call execute_code Bare
          code="if a < b: print(x &amp; y)"
        "#,
    );
}

#[test]
fn text_around_calls_is_kept() {
    check(
        "Héllo ✓ <tool_call>\nprint('ü')\n</tool_call><|im_end|>",
        r#"
        text "Héllo ✓ <|im_end|>"
        call execute_code Bare
          code="print('ü')"
        "#,
    );
    check(
        "A stray </tool_call> and </parameter> stay.",
        r#"text "A stray </tool_call> and </parameter> stay.""#,
    );
}

/// Every assistant turn of the Phase 22 data with a call in it parses as trained: all 439
/// `<tool_call>`s cleanly, with the code as written and the tool the prose names called in
/// it; of the 7 legacy ```json fences, the 5 that are JSON. The snapshot lists each call on
/// one line (`file:row.turn form name arg=value`, a newline in a value shown as ` ⏎ `).
#[test]
fn every_training_call_parses() {
    use std::collections::BTreeMap;
    use std::fmt::Write;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/punie/phase22_merged");
    let mut listing = String::new();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    let mut n_calls = 0;
    let mut n_fences = 0;
    for file in ["train.jsonl", "valid.jsonl"] {
        // Test-only IO: the fixtures are data files outside the crate.
        let data = std::fs::read_to_string(dir.join(file)).unwrap();
        for (row, line) in data.lines().enumerate() {
            let row_value: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = row_value["text"].as_str().unwrap();
            for (turn, rest) in text.split("<|im_start|>assistant\n").skip(1).enumerate() {
                let output = &rest[..rest.find("<|im_end|>").unwrap()];
                let parsed = parse(output);
                assert_covers_input(output, &parsed);
                let expected_calls = output.matches("<tool_call>").count();
                n_fences += output.matches("```json").count();
                if expected_calls > 0 {
                    assert!(parsed.errors.is_empty(), "{output}\n{:?}", parsed.errors);
                    assert_eq!(parsed.calls.len(), expected_calls);
                    for call in &parsed.calls {
                        let code = call.code().unwrap();
                        assert!(
                            output.contains(&format!("<parameter=code>\n{code}\n</parameter>"))
                        );
                    }
                    assert!(!parsed.text.contains("<tool_call>"));
                }
                // "I'll use the read_file tool." is followed by a call to it (where the call
                // parses at all).
                if let Some(tool) = parsed
                    .text
                    .strip_prefix("I'll use the ")
                    .and_then(|prose| prose.split_once(" tool."))
                    .map(|(tool, _)| tool)
                    .filter(|_| !parsed.calls.is_empty())
                {
                    assert!(
                        parsed
                            .calls
                            .iter()
                            .any(|call| call.code().map_or(call.name == tool, |code| code
                                .contains(&format!("{tool}(")))),
                        "{file}:{}: the prose names {tool}: {output}",
                        row + 1
                    );
                }
                let at = format!(
                    "{}:{}.{}",
                    file.trim_end_matches(".jsonl"),
                    row + 1,
                    turn + 1
                );
                for call in &parsed.calls {
                    let names: Vec<&str> = call.arguments.keys().map(String::as_str).collect();
                    *shapes
                        .entry(format!(
                            "{:?} {}({})",
                            call.form,
                            call.name,
                            names.join(", ")
                        ))
                        .or_default() += 1;
                    let _ = write!(listing, "{at} {:?} {}", call.form, call.name);
                    for (name, value) in &call.arguments {
                        let value = value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned);
                        let _ = write!(listing, " {name}={}", value.replace('\n', " ⏎ "));
                    }
                    listing.push('\n');
                }
                for problem in &parsed.errors {
                    let _ = writeln!(listing, "{at} {:?}: {}", problem.severity, problem.message);
                }
                n_calls += parsed.calls.len();
            }
        }
    }
    // 439 Code Mode calls plus the 5 legacy fences that are valid JSON.
    assert_eq!((n_calls, n_fences), (444, 7));
    let summary: Vec<String> = shapes
        .iter()
        .map(|(shape, n)| format!("{n} {shape}"))
        .collect();
    insta::assert_snapshot!(
        "training_calls",
        format!("{}\n\n{listing}", summary.join("\n"))
    );
}
