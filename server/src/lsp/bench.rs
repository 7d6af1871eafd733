//! Figures for `punie bench --only lsp` (INTERFACES.md §4 `lsp`): `codeAction` latency while a
//! run is generating, cancel-to-`end` latency, and the server's resident memory.
//!
//! The real server loop runs in-process on in-memory channels, with the scripted engine
//! streaming a long answer, so the figures measure the server, not a model: no weights are
//! loaded (RSS "excluding model weights"), and generation keeps the engine thread and the loop
//! busy the whole time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Message, Notification, Request, RequestId, Response};
use serde_json::{Value, json};

use crate::jsonrpc::{Incoming, Outgoing};

/// What [`bench`] measured, in milliseconds and megabytes.
#[derive(Debug, Clone, PartialEq)]
pub struct LspFigures {
    pub code_action_p50_ms: f64,
    pub code_action_p99_ms: f64,
    /// From sending `punie.cancel` to receiving the run's progress `end`.
    pub cancel_to_end_ms: f64,
    /// Resident memory of the process after the run (Linux `VmRSS`; 0 elsewhere).
    pub rss_mb: f64,
    pub code_actions: usize,
}

/// Runs the measurement: `n_code_actions` `textDocument/codeAction` requests while a run
/// streams its answer, then one cancel.
pub fn bench(n_code_actions: usize) -> anyhow::Result<LspFigures> {
    let dir = std::env::temp_dir().join(format!("punie-lsp-bench-{}", std::process::id()));
    // The bench's client vouches for its settings (`measure`): from one that does not, the
    // server refuses a `scripted:` engine (a cloned repository must not choose the model) and
    // would load the default model instead, which is not what this measures.
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(workspace.join("src")).context("creating the bench workspace")?;
    let source = "def add(a, b):\n    return a - b\n".repeat(50);
    std::fs::write(workspace.join("src/app.py"), &source).context("writing the bench source")?;
    let turn = "Streaming a long answer so that the run keeps generating. ".repeat(2000);
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        json!({"turns": [turn], "chunk_delay_ms": 1}).to_string(),
    )
    .context("writing the bench script")?;
    let res = measure(&workspace, &script, n_code_actions.max(1));
    let _ = std::fs::remove_dir_all(&dir);
    res
}

struct BenchClient {
    to_server: Sender<Incoming>,
    from_server: Receiver<Outgoing>,
    next_id: i32,
}

impl BenchClient {
    fn send(&self, message: Message) -> anyhow::Result<()> {
        self.to_server
            .send(Incoming::Message(message))
            .context("the server stopped")
    }

    fn request(&mut self, method: &str, params: Value) -> anyhow::Result<RequestId> {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.send(Message::Request(Request::new(
            id.clone(),
            method.to_owned(),
            params,
        )))?;
        Ok(id)
    }

    fn notify(&self, method: &str, params: Value) -> anyhow::Result<()> {
        self.send(Message::Notification(Notification::new(
            method.to_owned(),
            params,
        )))
    }

    /// Waits for a message matching `pred`, accepting the server's requests on the way.
    fn wait(&self, what: &str, pred: impl Fn(&Message) -> bool) -> anyhow::Result<Message> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outgoing = self
                .from_server
                .recv_timeout(left)
                .with_context(|| format!("waiting for {what}"))?;
            let Outgoing::Message(message) = outgoing else {
                continue;
            };
            // An error shown to the user (a refused engine, bad settings) means the figures
            // would not be the ones this bench claims.
            if let Message::Notification(note) = &message
                && note.method == "window/showMessage"
                && note.params["type"] == 1
            {
                anyhow::bail!("the server reported an error: {}", note.params["message"]);
            }
            if let Message::Request(request) = &message {
                self.send(Message::Response(Response::new_ok(
                    request.id.clone(),
                    Value::Null,
                )))?;
            }
            if pred(&message) {
                return Ok(message);
            }
        }
    }

    fn response(&self, id: &RequestId) -> anyhow::Result<Response> {
        match self.wait(
            "a response",
            |m| matches!(m, Message::Response(r) if &r.id == id),
        )? {
            Message::Response(response) => Ok(response),
            _ => anyhow::bail!("not a response"),
        }
    }
}

fn measure(dir: &Path, script: &Path, n_code_actions: usize) -> anyhow::Result<LspFigures> {
    let (to_server, incoming) = crossbeam_channel::unbounded();
    let (outgoing, from_server) = crossbeam_channel::unbounded();
    let server = std::thread::Builder::new()
        .name("punie-lsp-bench".to_owned())
        .spawn(move || super::serve(incoming, outgoing))
        .context("starting the server thread")?;
    let mut client = BenchClient {
        to_server,
        from_server,
        next_id: 0,
    };
    let root = super::uri::from_path(dir).context("workspace URI")?;
    let file = super::uri::from_path(&dir.join("src/app.py")).context("file URI")?;
    let init = client.request(
        "initialize",
        json!({
            "rootUri": root.as_str(),
            "capabilities": {
                "window": {"workDoneProgress": true},
                "experimental": {"punieAnswer": true, "punieUserSettings": true},
            },
            "initializationOptions": {"engine": format!("scripted:{}", script.display())},
        }),
    )?;
    client.response(&init)?;
    client.notify("initialized", json!({}))?;
    let text = std::fs::read_to_string(dir.join("src/app.py"))?;
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file.as_str(), "languageId": "python", "version": 1, "text": text}}),
    )?;
    let selection =
        json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}});
    let ask = client.request(
        "workspace/executeCommand",
        json!({"command": "punie.ask", "arguments": [{"uri": file.as_str(), "range": selection, "instruction": "explain"}]}),
    )?;
    let started = client.response(&ask)?.result.context("punie.ask failed")?;
    let token = started["token"].clone();
    let run_id = started["runId"].clone();
    client.wait("streamed text", |m| {
        matches!(m, Message::Notification(n) if n.method == "$/progress"
            && n.params["value"]["message"].as_str().is_some_and(|s| s.starts_with("generating")))
    })?;

    let mut latencies = Vec::with_capacity(n_code_actions);
    for _ in 0..n_code_actions {
        let sent = Instant::now();
        let id = client.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": file.as_str()}, "range": selection, "context": {"diagnostics": []}}),
        )?;
        client.response(&id)?;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);

    let cancel_sent = Instant::now();
    client.request(
        "workspace/executeCommand",
        json!({"command": "punie.cancel", "arguments": [{"runId": run_id}]}),
    )?;
    client.wait("the run's end", |m| {
        matches!(m, Message::Notification(n) if n.method == "$/progress"
            && n.params["token"] == token && n.params["value"]["kind"] == "end")
    })?;
    let cancel_to_end_ms = cancel_sent.elapsed().as_secs_f64() * 1000.0;
    let rss_mb = rss_mb();

    let shutdown = client.request("shutdown", Value::Null)?;
    client.response(&shutdown)?;
    client.notify("exit", Value::Null)?;
    let _ = server.join();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(LspFigures {
        code_action_p50_ms: percentile(0.5),
        code_action_p99_ms: percentile(0.99),
        cancel_to_end_ms,
        rss_mb,
        code_actions: latencies.len(),
    })
}

/// Resident memory of this process in MB (Linux); 0 where unknown.
fn rss_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    /// The bench completes: every code action is answered while the run generates, and the
    /// cancel ends the run (`bench` fails if a response or the `end` does not come). How fast
    /// is the bench's figure, not a test's.
    #[test]
    fn bench_answers_every_code_action_and_sees_the_cancelled_end() {
        let figures = super::bench(50).unwrap();
        assert_eq!(figures.code_actions, 50);
        if cfg!(target_os = "linux") {
            assert!(figures.rss_mb > 0.0, "{figures:?}");
        }
    }
}
