//! A minimal LSP client for benchmarks that measure the server from the outside: it starts
//! `punie lsp` as a child process, frames JSON-RPC over its stdio, timestamps every message the
//! server sends, and answers the server's own requests as a passive editor would (no
//! configuration, edits not applied, permissions denied).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Value, json};

pub(super) struct LspClient {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<(Instant, Value)>,
    next_id: i64,
}

impl LspClient {
    /// Starts `punie lsp` (this executable) in `workspace` with `env` added, and initializes it.
    pub(super) fn start(workspace: &Path, env: &[(&str, &str)]) -> anyhow::Result<LspClient> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("lsp")
            .current_dir(workspace)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting punie lsp")?;
        let stdin = child.stdin.take().context("the server's stdin")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (sender, messages) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_frame(&mut reader) {
                if sender.send((Instant::now(), message)).is_err() {
                    break;
                }
            }
        });
        let mut client = LspClient {
            child,
            stdin,
            messages,
            next_id: 0,
        };
        let root = url(workspace);
        let id = client.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root,
                "workspaceFolders": [{"uri": root, "name": "bench"}],
                "capabilities": {
                    "window": {"workDoneProgress": true},
                    "workspace": {"applyEdit": true},
                    "experimental": {"punieAnswer": true},
                },
            }),
        )?;
        client.wait_for(Duration::from_secs(60), |msg| msg["id"] == id)?;
        client.notify("initialized", json!({}))?;
        Ok(client)
    }

    pub(super) fn request(&mut self, method: &str, params: Value) -> anyhow::Result<i64> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    pub(super) fn notify(&mut self, method: &str, params: Value) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// The first message from the server that `matches`, with when it arrived; the server's
    /// requests met on the way are answered, other messages dropped.
    pub(super) fn wait_for(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let (at, message) = match self
                .messages
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => bail!("the server did not answer in {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("the server exited"),
            };
            if message.get("method").is_some() && message.get("id").is_some() {
                self.answer(&message)?;
            }
            if matches(&message) {
                return Ok((at, message));
            }
        }
    }

    fn answer(&mut self, request: &Value) -> anyhow::Result<()> {
        let result = match request["method"].as_str().unwrap_or("") {
            "workspace/configuration" => json!([]),
            "workspace/applyEdit" => json!({"applied": false}),
            "punie/permission" => json!({"answer": "deny"}),
            _ => Value::Null,
        };
        self.send(&json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
    }

    fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .and_then(|()| self.stdin.flush())
            .context("writing to the server")
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `Content-Length` framed JSON message; `None` at the end of the stream or on a bad frame.
fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A `file://` URL for an absolute path.
pub(super) fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}
