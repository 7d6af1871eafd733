//! `punie parse`: raw model output on stdin → text, tool calls and problems as one JSON object.
//!
//! The wire shape is INTERFACES.md §1: `{"text", "tool_calls": [{"name", "arguments"}],
//! "errors"}`, extended with each call's `form` and byte `span`, and `notes` for what was
//! repaired (a missing closing tag) as opposed to `errors`, which lost a call.

use std::io::{Read, Write};

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::Outcome;
use crate::toolcall::{self, CallForm, ParseProblem, Parsed, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading model output from stdin")?;
    let wire = to_wire(&toolcall::parse(&input));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{wire}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}

/// The JSON object `punie parse` prints.
pub fn to_wire(parsed: &Parsed) -> Value {
    let tool_calls: Vec<Value> = parsed
        .calls
        .iter()
        .map(|call| {
            json!({
                "name": call.name,
                "arguments": call.arguments,
                "form": form_name(call.form),
                "span": [call.span.start, call.span.end],
            })
        })
        .collect();
    let problems = |severity: Severity| -> Vec<Value> {
        parsed
            .errors
            .iter()
            .filter(|it| it.severity == severity)
            .map(problem_to_wire)
            .collect()
    };
    json!({
        "text": parsed.text,
        "tool_calls": tool_calls,
        "errors": problems(Severity::Error),
        "notes": problems(Severity::Note),
    })
}

fn problem_to_wire(problem: &ParseProblem) -> Value {
    json!({"message": problem.message, "span": [problem.span.start, problem.span.end]})
}

fn form_name(form: CallForm) -> &'static str {
    match form {
        CallForm::Xml => "xml",
        CallForm::Bare => "bare",
        CallForm::JsonTag => "json",
        CallForm::JsonFence => "json_fence",
    }
}
