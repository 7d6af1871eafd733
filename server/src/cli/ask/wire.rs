//! The `--json` output of `punie ask` (INTERFACES.md §1): the agent's outcome in wire form.

use serde_json::{Value, json};

use crate::agent::{RunOutcome, ruling_json};

fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// `{"answer", "turns", "tool_calls": [{"tool","code","ok","output","error"}], "timings": {...}}`
/// plus `status`, ids, token counts and the transcript path, and `refused`: every tool call the
/// permission step refused, with who refused it and the protected rule. `answer` is the markdown shown to
/// the user: the model's answer and notes about the edits made from it.
pub(super) fn outcome_json(outcome: &RunOutcome, answer: &str) -> Value {
    let status = outcome.status.to_string();
    let tool_calls: Vec<Value> = outcome
        .tool_calls
        .iter()
        .map(|call| {
            json!({
                "tool": call.tool,
                "code": call.code,
                "ok": call.ok,
                "output": call.output,
                "error": call.error,
                "response": call.response,
                "turn": call.turn,
                "tools": call.tools.iter().map(|t| json!({
                    "tool": t.tool, "label": t.label, "ok": t.ok, "error": t.error,
                    "permission": t.permission.as_ref().map(ruling_json),
                })).collect::<Vec<_>>(),
                "elapsed_ms": millis(call.elapsed),
            })
        })
        .collect();
    let refused: Vec<Value> = outcome
        .tool_calls
        .iter()
        .flat_map(|call| &call.tools)
        .filter_map(|used| {
            let ruling = used.permission.as_ref().filter(|ruling| !ruling.allowed)?;
            let mut res = ruling_json(ruling);
            res["tool"] = Value::from(used.tool.as_str());
            res["message"] = Value::from(ruling.refusal_message());
            Some(res)
        })
        .collect();
    let timings = &outcome.timings;
    json!({
        "refused": refused,
        "answer": answer,
        "status": status,
        "turns": outcome.turns,
        "tool_calls": tool_calls,
        "timings": {
            "wall_ms": millis(timings.wall),
            "first_token_ms": timings.first_token.map(millis),
            "prefill_ms": millis(timings.prefill),
            "decode_ms": millis(timings.decode),
            "sandbox_ms": millis(timings.sandbox),
        },
        "tokens_in": outcome.tokens_in,
        "tokens_evaluated": outcome.tokens_evaluated,
        "tokens_out": outcome.tokens_out,
        "run_id": outcome.run_id,
        "session_id": outcome.conversation.session_id(),
        "transcript": outcome.transcript.as_ref().map(|p| p.display().to_string()),
    })
}
