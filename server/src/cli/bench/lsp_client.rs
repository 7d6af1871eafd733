//! `punie lsp` as a child process, driven from the outside: [`LspProcess`] starts it, frames
//! JSON-RPC over its stdio and timestamps every message it sends; the benchmarks' passive
//! editor ([`LspClient`]: no configuration, edits not applied, permissions denied) and the e2e
//! tests' fake editor (`tests/e2e/lsp_client.rs`) are built on it, so there is one client-side
//! framing. It reads raw JSON values, not `lsp_server` types (`crate::jsonrpc` is the server's
//! reader), so a test sees exactly what the server wrote.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Value, json};

/// A started `punie lsp` (or any LSP server): its stdin, and its stdout read on a thread into
/// a channel of messages with the time each arrived. Dropping it kills the process.
pub struct LspProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<(Instant, Value)>,
}

impl LspProcess {
    /// Spawns `command` with piped stdin and stdout (its other settings are the caller's).
    pub fn spawn(mut command: Command) -> io::Result<LspProcess> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let (sender, messages) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_frame(&mut reader) {
                if sender.send((Instant::now(), message)).is_err() {
                    break;
                }
            }
        });
        Ok(LspProcess {
            child,
            stdin,
            messages,
        })
    }

    /// Frames and sends one message.
    pub fn send(&mut self, message: &Value) -> io::Result<()> {
        let body = message.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
    }

    /// Sends bytes as they are (broken frames, garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the server's stdin is closed"))?;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// The server's messages, each with when it arrived; disconnected once its stdout closes.
    pub fn messages(&self) -> &Receiver<(Instant, Value)> {
        &self.messages
    }

    /// Closes the server's stdin: the end of input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for LspProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) struct LspClient {
    process: LspProcess,
    next_id: i64,
}

impl LspClient {
    /// Starts `punie lsp` (this executable) in `workspace` with `env` added, and initializes it.
    pub(super) fn start(workspace: &Path, env: &[(&str, &str)]) -> anyhow::Result<LspClient> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("lsp")
            .current_dir(workspace)
            .envs(env.iter().copied())
            .stderr(Stdio::null());
        let process = LspProcess::spawn(command).context("starting punie lsp")?;
        let mut client = LspClient {
            process,
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
                .process
                .messages()
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
        self.process.send(message).context("writing to the server")
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
