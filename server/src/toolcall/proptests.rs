//! Property tests: on any text the parser does not panic and loses nothing, and the stream
//! scanner reports the same events however the text is chunked.

use proptest::prelude::*;

use super::tests::assert_covers_input;
use super::{CallForm, ScanEvent, StreamScanner, parse};

/// Text made of the pieces that matter to the parser (tags, fences, quotes, entities, newlines,
/// multi-byte characters) mixed with arbitrary strings.
fn model_output() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "<tool_call>",
        "</tool_call>",
        "<function=execute_code>",
        "<function=",
        "</function>",
        "<parameter=code>",
        "<parameter=",
        "</parameter>",
        ">",
        "<",
        "\n",
        " ",
        "```json",
        "```",
        "{",
        "}",
        "\"name\": \"f\"",
        "\"arguments\": {}",
        "\"",
        "'",
        "\\",
        "&lt;",
        "&amp;",
        "&",
        "&quot;",
        "print(1)",
        "#",
        "é",
        "✓",
        "<|im_end|>",
        "print(\"</tool_call>\")",
        "<tool_call><function=execute_code>\n<parameter=code>\n",
        "\n</parameter>\n</function></tool_call>",
        "\n</tool_call>",
    ];
    let piece = prop_oneof![
        3 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Pushes `text` in chunks cut at `cuts` (moved to char boundaries); returns all events.
fn scan_in_chunks(text: &str, cuts: &[usize]) -> Vec<ScanEvent> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| {
            let mut point = cut % (text.len() + 1);
            while !text.is_char_boundary(point) {
                point -= 1;
            }
            point
        })
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    let mut scanner = StreamScanner::default();
    let mut res = Vec::new();
    for pair in points.windows(2) {
        res.extend(scanner.push(&text[pair[0]..pair[1]]));
    }
    assert_eq!(scanner.text(), text);
    res
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_loses_text(input in model_output()) {
        let parsed = parse(&input);
        assert_covers_input(&input, &parsed);
    }

    #[test]
    fn scanning_does_not_depend_on_chunking(
        input in model_output(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = scan_in_chunks(&input, &[]);
        let chunked = scan_in_chunks(&input, &cuts);
        prop_assert_eq!(&whole, &chunked);
        // A finished call is a call (or a failed block) that `parse` sees with the same span,
        // unless it sits inside a ```json fence, which only `parse` knows about.
        let parsed = parse(&input);
        for event in &whole {
            if let ScanEvent::CallFinished { span, .. } = event {
                let is_call = parsed.calls.iter().any(|call| call.span == *span);
                let is_problem = parsed.errors.iter().any(|problem| problem.span.start == span.start);
                let in_fence = parsed.calls.iter().any(|call| {
                    call.form == CallForm::JsonFence && call.span.contains(&span.start)
                }) || parsed.errors.iter().any(|problem| {
                    input[problem.span.clone()].starts_with("```json") && problem.span.contains(&span.start)
                });
                prop_assert!(is_call || is_problem || in_fence, "{:?} is neither a call nor a problem", span);
            }
        }
    }
}

#[test]
fn scanner_reports_start_and_finish_as_they_stream() {
    let text = "I'll use the run_command tool.\n\n<tool_call><function=execute_code>\n<parameter=code>\nprint(\"</tool_call>\")\n</parameter>\n</function></tool_call><|im_end|>";
    let mut scanner = StreamScanner::default();
    let mut seen = Vec::new();
    // Three bytes at a time, as a tokenizer might; the text is ASCII.
    for (chunk_idx, chunk) in text.as_bytes().chunks(3).enumerate() {
        for event in scanner.push(std::str::from_utf8(chunk).unwrap()) {
            seen.push((chunk_idx * 3 + chunk.len(), event));
        }
    }
    let start = text.find("<tool_call>").unwrap();
    let end = text.find("<|im_end|>").unwrap();
    // The event comes with the chunk that completes the tag.
    let chunk_end = |pos: usize| pos.div_ceil(3) * 3;
    assert_eq!(
        seen,
        vec![
            // Known as soon as the tag is complete, and not before its end.
            (
                chunk_end(start + 11),
                ScanEvent::CallStarted {
                    call_idx: 0,
                    offset: start
                }
            ),
            (
                chunk_end(end),
                ScanEvent::CallFinished {
                    call_idx: 0,
                    span: start..end
                }
            ),
        ]
    );
    assert!(!scanner.in_call());
    assert_eq!(
        scanner.finish().calls[0].code(),
        Some("print(\"</tool_call>\")")
    );
}
