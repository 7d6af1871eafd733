//! The fake ACP client of the `punie acp` tests: starts the built binary, writes one JSON-RPC
//! message per line, reads every line it writes (each must be JSON: nothing else may reach
//! stdout), and answers the agent's requests (`session/request_permission`,
//! `fs/read_text_file`, `fs/write_text_file`) with a handler the test chooses. Waits have a
//! generous deadline so a broken agent fails instead of hanging; none is a timing assertion.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(600);

/// A handler's `Err` that sends no answer at all.
pub(crate) const NO_ANSWER: Value = Value::Null;

/// Answers one request of the agent: the `result`, or `Err(error object)`; [`NO_ANSWER`]
/// leaves it unanswered (a client that never answers).
pub(crate) type Handler = Box<dyn FnMut(&str, &Value) -> Result<Value, Value>>;

pub(crate) struct AcpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every message the agent sent, in order.
    pub(crate) log: Vec<Value>,
    next_id: i64,
    handler: Handler,
}

/// A handler that reads files from disk, refuses writes, and picks `option` in every
/// permission dialog (`None`: the dialog is cancelled).
pub(crate) fn default_handler(option: Option<&'static str>) -> Handler {
    Box::new(move |method, params| match method {
        "session/request_permission" => Ok(match option {
            Some(option) => json!({"outcome": {"outcome": "selected", "optionId": option}}),
            None => json!({"outcome": {"outcome": "cancelled"}}),
        }),
        "fs/read_text_file" => std::fs::read_to_string(params["path"].as_str().unwrap())
            .map(|content| json!({"content": content}))
            .map_err(|err| json!({"code": -32002, "message": err.to_string()})),
        _ => Err(json!({"code": -32601, "message": format!("no {method} here")})),
    })
}

impl AcpClient {
    /// `punie acp` with `args`, saved sessions in `session_dir`.
    pub(crate) fn start(args: &[&str], session_dir: &Path, handler: Handler) -> AcpClient {
        AcpClient::start_with_env(args, session_dir, handler, &[])
    }

    pub(crate) fn start_with_env(
        args: &[&str],
        session_dir: &Path,
        handler: Handler,
        env: &[(&str, &str)],
    ) -> AcpClient {
        AcpClient::spawn(args, session_dir, handler, env, Stdio::inherit())
    }

    /// [`AcpClient::start_with_env`], with the agent's log lines (stderr) handed to the test.
    pub(crate) fn start_reading_log(
        args: &[&str],
        session_dir: &Path,
        handler: Handler,
        env: &[(&str, &str)],
    ) -> (AcpClient, Receiver<String>) {
        let mut client = AcpClient::spawn(args, session_dir, handler, env, Stdio::piped());
        let stderr = client.child.stderr.take().expect("stderr piped");
        (client, read_lines(stderr))
    }

    fn spawn(
        args: &[&str],
        session_dir: &Path,
        handler: Handler,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> AcpClient {
        let mut command = crate::support::punie();
        command
            .arg("acp")
            .args(args)
            .env_remove("PUNIE_ENGINE")
            .env("PUNIE_LOG", "warn")
            .env("PUNIE_SESSION_DIR", session_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting punie acp");
        let stdin = child.stdin.take();
        let lines = read_lines(child.stdout.take().unwrap());
        AcpClient {
            child,
            stdin,
            lines,
            log: Vec::new(),
            next_id: 0,
            handler,
        }
    }

    /// Caps the agent's address space at `bytes`: an unbounded read fails the agent (and the
    /// test) instead of filling the machine's memory.
    #[cfg(target_os = "linux")]
    pub(crate) fn limit_address_space(&self, bytes: u64) {
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: prlimit reads the struct we pass and changes only the agent's limit.
        let res = unsafe {
            libc::prlimit(
                self.child.id() as libc::pid_t,
                libc::RLIMIT_AS,
                &limit,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(res, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// The agent's resident-memory high-water mark (`VmHWM`), in bytes.
    #[cfg(target_os = "linux")]
    pub(crate) fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    pub(crate) fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub(crate) fn send(&mut self, message: &Value) {
        self.send_raw(&message.to_string());
    }

    /// Sends a request; returns its id.
    pub(crate) fn start_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and waits for its response (result or error object).
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.wait_response(id)
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The response to request `id`.
    pub(crate) fn wait_response(&mut self, id: i64) -> Value {
        self.wait_for(&format!("the response to {id}"), |m| {
            m["id"] == id && m.get("method").is_none()
        })
    }

    /// Reads messages (answering the agent's requests) until one matches; returns it.
    pub(crate) fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        if let Some(found) = self.log.iter().find(|m| matches(m)) {
            return found.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "waiting for {what}: nothing more came; log: {:#?}",
                    self.log
                )
            });
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("a line of stdout is not JSON ({err}): {line:?}"));
            self.log.push(message.clone());
            if let (Some(method), Some(id)) = (message["method"].as_str(), message.get("id")) {
                match (self.handler)(method, &message["params"]) {
                    Ok(result) => self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result})),
                    Err(NO_ANSWER) => {}
                    Err(error) => self.send(&json!({"jsonrpc": "2.0", "id": id, "error": error})),
                }
            }
            if matches(&message) {
                return message;
            }
        }
    }

    /// `initialize` with the client's `fs` capabilities.
    pub(crate) fn initialize(&mut self, read: bool, write: bool) -> Value {
        self.request(
            "initialize",
            json!({"protocolVersion": 1, "clientCapabilities": {"fs": {"readTextFile": read, "writeTextFile": write}}}),
        )
    }

    /// `session/new` in `cwd`; returns the session id.
    pub(crate) fn new_session(&mut self, cwd: &Path) -> String {
        let response = self.request("session/new", json!({"cwd": cwd, "mcpServers": []}));
        response["result"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId: {response}"))
            .to_owned()
    }

    /// A text prompt; returns the response.
    pub(crate) fn prompt(&mut self, session_id: &str, text: &str) -> Value {
        self.request(
            "session/prompt",
            json!({"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}),
        )
    }

    /// The `session/update`s of `session_id` received so far, after message `from`.
    pub(crate) fn updates(&self, session_id: &str, from: usize) -> Vec<Value> {
        self.log[from..]
            .iter()
            .filter(|m| m["method"] == "session/update" && m["params"]["sessionId"] == session_id)
            .map(|m| m["params"]["update"].clone())
            .collect()
    }

    /// All `agent_message_chunk` text after message `from`.
    pub(crate) fn agent_text(&self, session_id: &str, from: usize) -> String {
        self.updates(session_id, from)
            .iter()
            .filter(|u| u["sessionUpdate"] == "agent_message_chunk")
            .map(|u| u["content"]["text"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Closes stdin and waits for the agent to exit; returns its exit code.
    pub(crate) fn close(&mut self) -> i32 {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // A signal that ended the agent shows as its negated number.
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| -status.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < deadline,
                "punie acp did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AcpClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines `from` writes, as a thread reads them.
fn read_lines(from: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// A scripted engine file of `turns` in `dir`.
pub(crate) fn script(dir: &Path, turns: &[String], chunk_delay_ms: u64) -> PathBuf {
    let path = dir.join(format!("script-{}.json", turns.len()));
    std::fs::write(
        &path,
        json!({"turns": turns, "chunk_delay_ms": chunk_delay_ms}).to_string(),
    )
    .unwrap();
    path
}

pub(crate) fn call(code: &str) -> String {
    format!(
        "<tool_call><function=execute_code>\n<parameter=code>\n{code}\n</parameter>\n</function></tool_call>"
    )
}
