//! `punie bench --only followup`: time to first token of a follow-up question in the language
//! server, against the conversation's first question, measured from the outside through the
//! `punie lsp` binary as an editor drives it.
//!
//! Each round starts a fresh server on a copy of `bench/rewrite/` and, a few seconds later
//! ([`FIRST_QUESTION_AFTER`]), asks it an unrelated question, whose time to first token is the
//! server's first (`start_ttft_ms`). That leaves a server in use, the system prompt in its KV
//! cache. Then it starts a new conversation, asks "Ask Punie…" about a whole file, waits for the
//! answer, and asks a follow-up in the same conversation a second later ([`READING_TIME`]).
//! Time to first token is from sending `punie.ask` to the first `$/progress` report that
//! carries generated text (what an editor sees); the run transcripts add the engine's own
//! figure and how many prompt tokens it evaluated rather than took from the cache.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::figures::{self, round1, round3};
use super::lsp_client::{LspClient, url};

/// The file the questions are about, in `bench/rewrite/`.
const FILE: &str = "inventory.py";
const FIRST_QUESTION: &str = "What does this class do?";
const FOLLOW_UP: &str = "Which of its methods can raise an error?";
/// Between the server's start and its first question: a person opens a file, selects code and
/// types the question, which takes longer. The server loads the model and evaluates the system
/// prompt meanwhile.
const FIRST_QUESTION_AFTER: Duration = Duration::from_secs(5);
/// Between the answer and the follow-up: a person reads the answer and types the next question,
/// which never takes less. The server may use the time, as it would in an editor.
const READING_TIME: Duration = Duration::from_secs(1);
/// Longest wait for one answer (a 1024-token answer on a slow, busy machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// One question's figures.
struct Asked {
    /// From `punie.ask` to the first streamed text, seen from the client.
    ttft: Duration,
    /// From the transcript: the engine's time to first token, and the prompt tokens it
    /// evaluated of those it was given.
    engine_ttft_ms: f64,
    n_evaluated: u64,
    n_prompt: u64,
}

pub(super) fn run(workload: &Path, rounds: usize) -> anyhow::Result<Value> {
    let mut after_start = Vec::new();
    let mut first = Vec::new();
    let mut follow_up = Vec::new();
    for _ in 0..rounds.max(1) {
        let (start, one, two) = round(workload)?;
        after_start.push(start.as_secs_f64() * 1e3);
        first.push(one);
        follow_up.push(two);
    }
    let median = |asked: &[Asked], get: &dyn Fn(&Asked) -> f64| {
        let mut values: Vec<f64> = asked.iter().map(get).collect();
        figures::median(&mut values)
    };
    let ratio = |part: f64, whole: f64| {
        if whole > 0.0 {
            round3(part / whole)
        } else {
            0.0
        }
    };
    let client = |a: &Asked| a.ttft.as_secs_f64() * 1e3;
    let engine = |a: &Asked| a.engine_ttft_ms;
    let (client_first, client_follow_up) = (median(&first, &client), median(&follow_up, &client));
    let (engine_first, engine_follow_up) = (median(&first, &engine), median(&follow_up, &engine));
    Ok(json!({
        "rounds": first.len(),
        "start_ttft_ms": round1(figures::median(&mut after_start)),
        "start_wait_ms": FIRST_QUESTION_AFTER.as_millis(),
        "reading_time_ms": READING_TIME.as_millis(),
        "first_ttft_ms": round1(client_first),
        "followup_ttft_ms": round1(client_follow_up),
        "ratio": ratio(client_follow_up, client_first),
        "engine_first_ttft_ms": round1(engine_first),
        "engine_followup_ttft_ms": round1(engine_follow_up),
        "engine_ratio": ratio(engine_follow_up, engine_first),
        "first_prompt_tokens": first[0].n_prompt,
        "first_tokens_evaluated": first[0].n_evaluated,
        "followup_prompt_tokens": follow_up[0].n_prompt,
        "followup_tokens_evaluated": follow_up[0].n_evaluated,
    }))
}

/// One fresh server: the time to first token of its first question (asked
/// [`FIRST_QUESTION_AFTER`] its start), then a new conversation's first question and its
/// follow-up.
fn round(workload: &Path) -> anyhow::Result<(Duration, Asked, Asked)> {
    let workspace = tempfile::tempdir().context("creating the bench workspace")?;
    for entry in std::fs::read_dir(workload)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "py") {
            std::fs::copy(
                &path,
                workspace.path().join(path.file_name().unwrap_or_default()),
            )?;
        }
    }
    let mut client = LspClient::start(workspace.path(), &[])?;
    let file = workspace.path().join(FILE);
    let text = std::fs::read_to_string(&file)?;
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": url(&file), "languageId": "python", "version": 1, "text": text}}),
    )?;
    let whole_file = json!({
        "start": {"line": 0, "character": 0},
        "end": {"line": text.lines().count(), "character": 0},
    });

    // A server in use: the model loaded, the system prompt cached by an unrelated question.
    std::thread::sleep(FIRST_QUESTION_AFTER);
    let warm_up = ask(&mut client, &file, &whole_file, "Say hello.")?;
    client.request(
        "workspace/executeCommand",
        json!({"command": "punie.cancel", "arguments": [{"runId": warm_up.0}]}),
    )?;
    wait_answer(&mut client, &warm_up.0)?;
    client.request(
        "workspace/executeCommand",
        json!({"command": "punie.newConversation", "arguments": []}),
    )?;

    // Both run to their end: a cancelled turn leaves no figures in the transcript. The first
    // must be done, since the conversation keeps only finished runs; the follow-up may stop at
    // the token limit.
    let mut answered = |question: &str, ends: &[&str]| -> anyhow::Result<(String, Duration)> {
        let (run_id, ttft) = ask(&mut client, &file, &whole_file, question)?;
        let status = wait_answer(&mut client, &run_id)?;
        anyhow::ensure!(
            ends.contains(&status.as_str()),
            "{question:?} ended {status}"
        );
        Ok((run_id, ttft))
    };
    let (first_id, first_ttft) = answered(FIRST_QUESTION, &["done"])?;
    std::thread::sleep(READING_TIME);
    let (second_id, second_ttft) = answered(FOLLOW_UP, &["done", "truncated"])?;
    drop(client);

    let transcripts = workspace.path().join(".punie/transcripts");
    Ok((
        warm_up.1,
        asked(&transcripts, &first_id, first_ttft)?,
        asked(&transcripts, &second_id, second_ttft)?,
    ))
}

/// Sends "Ask Punie…" with `question` on `range` of `file`; returns the run id and the time to
/// its first streamed text.
fn ask(
    client: &mut LspClient,
    file: &Path,
    range: &Value,
    question: &str,
) -> anyhow::Result<(String, Duration)> {
    let sent = Instant::now();
    let id = client.request(
        "workspace/executeCommand",
        json!({"command": "punie.ask", "arguments": [{
            "uri": url(file), "range": range, "instruction": "ask", "question": question,
        }]}),
    )?;
    let (_, reply) = client.wait_for(ANSWER_TIMEOUT, |msg| msg["id"] == id)?;
    let run_id = reply["result"]["runId"]
        .as_str()
        .with_context(|| format!("punie.ask answered {reply}"))?
        .to_owned();
    let token = reply["result"]["token"].clone();
    let (first_text, _) = client.wait_for(ANSWER_TIMEOUT, |msg| {
        msg["method"] == "$/progress"
            && msg["params"]["token"] == token
            && msg["params"]["value"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("generating: "))
    })?;
    Ok((run_id, first_text - sent))
}

/// Waits for the run's `punie/answer`; returns its status.
fn wait_answer(client: &mut LspClient, run_id: &str) -> anyhow::Result<String> {
    let (_, answer) = client.wait_for(ANSWER_TIMEOUT, |msg| {
        msg["method"] == "punie/answer" && msg["params"]["runId"] == run_id
    })?;
    Ok(answer["params"]["status"].as_str().unwrap_or("").to_owned())
}

/// The first model turn's figures from the run's transcript.
fn asked(transcripts: &Path, run_id: &str, ttft: Duration) -> anyhow::Result<Asked> {
    let path = transcripts.join(format!("{run_id}.jsonl"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let output = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["event"] == "output")
        .with_context(|| format!("{} has no model output", path.display()))?;
    Ok(Asked {
        ttft,
        engine_ttft_ms: output["time_to_first_token_ms"].as_f64().unwrap_or(0.0),
        n_evaluated: output["n_evaluated"].as_u64().unwrap_or(0),
        n_prompt: output["n_prompt"].as_u64().unwrap_or(0),
    })
}
