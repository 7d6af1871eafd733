//! The fake editor of the `punie lsp` tests: starts the built binary in a temporary workspace
//! (through the library's one client of `punie lsp`, `LspProcess`, which frames the messages)
//! and answers the server's requests. Tests wait on messages
//! (progress `end`, `punie/answer`), never on sleeps; every wait has a generous deadline so a
//! broken server fails instead of hanging.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use punie::cli::bench::lsp_client::LspProcess;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A guard against hangs, not a timing assertion: runs on the real model on a loaded 2-core
/// machine can take minutes.
const WAIT: Duration = Duration::from_secs(600);

pub(crate) fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// How the fake editor answers the server's requests.
#[derive(Clone)]
pub(crate) struct Answers {
    /// Accept `window/workDoneProgress/create`.
    pub(crate) progress: bool,
    /// The button pressed in `window/showMessageRequest`; `None` dismisses it.
    pub(crate) permission: Option<&'static str>,
    /// When set, chooses the button from the dialog's message (as a Markdown client shows
    /// it) instead of `permission`.
    pub(crate) permission_for: Option<fn(&str) -> Option<&'static str>>,
    /// `applied` of `workspace/applyEdit`.
    pub(crate) apply_edit: bool,
    /// Leave `workspace/applyEdit` unanswered (a preview the user is still reading).
    pub(crate) ignore_apply_edit: bool,
    /// Never answer anything (a client that ignores server requests).
    pub(crate) silent: bool,
    /// Notifications sent just before the permission answers, one per dialog in order: what
    /// the user does in the editor while the dialog is open (`textDocument/didChange`).
    pub(crate) before_answers: Vec<Value>,
}

impl Default for Answers {
    fn default() -> Answers {
        Answers {
            progress: true,
            permission: Some("Deny"),
            permission_for: None,
            apply_edit: true,
            ignore_apply_edit: false,
            silent: false,
            before_answers: Vec::new(),
        }
    }
}

/// How the server is started, beyond its engine and its `initialize` parameters.
pub(crate) struct Launch {
    /// The workspace root; the client owns it, so it lives as long as the server.
    pub(crate) workspace: TempDir,
    pub(crate) answers: Answers,
    /// Variables set in the server's environment.
    pub(crate) env: Vec<(&'static str, &'static str)>,
    /// Variables removed from the server's environment.
    pub(crate) env_remove: Vec<&'static str>,
}

impl Default for Launch {
    /// A workspace with `src/calc.py`, the default answers, the test's own environment.
    fn default() -> Launch {
        let workspace = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(workspace.path().join("src")).unwrap();
        std::fs::write(
            workspace.path().join("src/calc.py"),
            "def add(a, b):\n    return a - b\n",
        )
        .unwrap();
        Launch {
            workspace,
            answers: Answers::default(),
            env: Vec::new(),
            env_remove: Vec::new(),
        }
    }
}

pub(crate) struct Client {
    process: LspProcess,
    /// Messages received and not yet consumed by a `wait_for`.
    unseen: VecDeque<Value>,
    /// Every message received, for failure reports.
    pub(crate) log: Vec<Value>,
    next_id: i64,
    answers: Answers,
    /// The workspace root, canonical.
    pub(crate) root: PathBuf,
    _workspace: TempDir,
}

impl Client {
    /// Starts the server with [`Launch::default`] and initializes it.
    pub(crate) fn start(engine: &str, capabilities: Value, options: Value) -> Client {
        Client::start_with(engine, capabilities, options, Launch::default())
    }

    /// Starts the server as `launch` says and initializes it; `engine` (unless empty) becomes
    /// `PUNIE_ENGINE` in its environment, the user's choice: from a client that does not vouch
    /// for its settings, the `engine` setting may name only an installed model of the catalog
    /// (a test about the setting puts it in `options`).
    pub(crate) fn start_with(
        engine: &str,
        capabilities: Value,
        options: Value,
        launch: Launch,
    ) -> Client {
        let root = launch.workspace.path().canonicalize().unwrap();
        let mut command = crate::support::punie();
        command.arg("lsp").stderr(Stdio::inherit());
        // The server must not depend on its working directory for the workspace root.
        command.current_dir(std::env::temp_dir());
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        for key in launch.env_remove {
            command.env_remove(key);
        }
        if !engine.is_empty() {
            assert!(
                !launch.env.iter().any(|(key, _)| *key == "PUNIE_ENGINE"),
                "the engine is given twice"
            );
            command.env("PUNIE_ENGINE", engine);
        }
        let mut client = Client {
            process: LspProcess::spawn(command).unwrap(),
            unseen: VecDeque::new(),
            log: Vec::new(),
            next_id: 0,
            answers: launch.answers,
            root,
            _workspace: launch.workspace,
        };
        let result = client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": file_uri(&client.root),
                "workspaceFolders": [{"uri": file_uri(&client.root), "name": "w"}],
                "capabilities": capabilities,
                "initializationOptions": options,
            }),
        );
        assert!(
            result.get("result").is_some(),
            "initialize failed: {result}"
        );
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        self.process.send(&message).unwrap();
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.process.send_raw(bytes).unwrap();
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its whole response (`result` or `error`).
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait_for(&format!("response to {method}"), |m| {
            m["id"] == id && m.get("method").is_none()
        })
    }

    /// The capabilities the server answered `initialize` with (the first request, id 1).
    pub(crate) fn server_capabilities(&self) -> Value {
        let init = self
            .log
            .iter()
            .find(|m| m["id"] == 1 && m.get("method").is_none())
            .expect("the initialize response");
        init["result"]["capabilities"].clone()
    }

    pub(crate) fn open(&mut self, relative: &str, text: &str) -> String {
        let uri = file_uri(&self.root.join(relative));
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}),
        );
        uri
    }

    pub(crate) fn ask(&mut self, uri: &str, range: Value, instruction: &str) -> Value {
        let response = self.request(
            "workspace/executeCommand",
            json!({"command": "punie.ask", "arguments": [{"uri": uri, "range": range, "instruction": instruction}]}),
        );
        assert!(
            response["result"]["runId"].is_string(),
            "punie.ask failed: {response}"
        );
        response["result"].clone()
    }

    /// The next message from the server; server requests are answered on the way.
    fn next(&mut self, what: &str, deadline: Instant) -> Value {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (_, message) = self
            .process
            .messages()
            .recv_timeout(timeout)
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {what}; messages so far:\n{}",
                    self.log
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
        self.log.push(message.clone());
        self.answer_server_request(&message);
        message
    }

    fn answer_server_request(&mut self, message: &Value) {
        let (Some(method), Some(id)) = (message["method"].as_str(), message.get("id")) else {
            return;
        };
        if self.answers.silent
            || (self.answers.ignore_apply_edit && method == "workspace/applyEdit")
        {
            return;
        }
        if matches!(method, "window/showMessageRequest" | "punie/permission")
            && !self.answers.before_answers.is_empty()
        {
            let message = self.answers.before_answers.remove(0);
            self.send(message);
        }
        let result = match method {
            "window/workDoneProgress/create" if self.answers.progress => json!(null),
            "window/workDoneProgress/create" => {
                self.send(
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}),
                );
                return;
            }
            "window/showMessageRequest" => {
                let chosen = match self.answers.permission_for {
                    Some(choose) => choose(
                        &crate::markdown_view::as_markdown_shows(
                            message["params"]["message"].as_str().unwrap_or(""),
                        )
                        .0,
                    ),
                    None => self.answers.permission,
                };
                match chosen {
                    Some(title) => json!({"title": title}),
                    None => json!(null),
                }
            }
            // Punie's own permission request: the same button, as its answer word.
            "punie/permission" => {
                let answer = match self.answers.permission {
                    Some("Allow") => "allow",
                    Some("Allow for this session") => "allowSession",
                    Some(_) => "deny",
                    None => {
                        self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
                        return;
                    }
                };
                json!({"answer": answer})
            }
            "workspace/applyEdit" => json!({"applied": self.answers.apply_edit}),
            "workspace/configuration" => json!([null]),
            "window/showDocument" => json!({"success": true}),
            _ => json!(null),
        };
        self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    /// Waits for a message matching `pred`, keeping the others for later waits.
    pub(crate) fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(what, WAIT, pred)
    }

    /// Waits for a `window/showMessage` whose text contains `needle`; its text.
    pub(crate) fn wait_for_shown(&mut self, needle: &str) -> String {
        let message = self.wait_for(needle, |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|text| text.contains(needle))
        });
        message["params"]["message"].as_str().unwrap().to_owned()
    }

    /// [`Client::wait_for`] with a deadline of its own, for what must come at once (a run that
    /// fails before any model work): a hang fails the test without waiting [`WAIT`] out.
    pub(crate) fn wait_for_within(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(idx) = self.unseen.iter().position(&pred) {
            return self.unseen.remove(idx).unwrap();
        }
        let deadline = Instant::now() + within;
        loop {
            let message = self.next(what, deadline);
            if pred(&message) {
                return message;
            }
            self.unseen.push_back(message);
        }
    }

    /// The progress messages on `token` so far, as "kind message".
    pub(crate) fn progress_on(&self, token: &Value) -> Vec<String> {
        self.log
            .iter()
            .filter(|m| m["method"] == "$/progress" && &m["params"]["token"] == token)
            .map(|m| {
                let value = &m["params"]["value"];
                format!(
                    "{} {}",
                    value["kind"].as_str().unwrap_or(""),
                    value["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    pub(crate) fn wait_end(&mut self, token: &Value) -> String {
        self.wait_end_within(token, WAIT)
    }

    /// [`Client::wait_end`] with a deadline of its own ([`Client::wait_for_within`]).
    pub(crate) fn wait_end_within(&mut self, token: &Value, within: Duration) -> String {
        let end = self.wait_for_within("progress end", within, |m| {
            m["method"] == "$/progress"
                && &m["params"]["token"] == token
                && m["params"]["value"]["kind"] == "end"
        });
        end["params"]["value"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The transcript of run `run_id` as written (`.punie/transcripts/<id>.jsonl`).
    pub(crate) fn transcript(&self, run_id: &Value) -> String {
        let path = self
            .root
            .join(".punie/transcripts")
            .join(format!("{}.jsonl", run_id.as_str().unwrap()));
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    /// The lines of run `run_id`'s transcript whose event is `event`, in order.
    pub(crate) fn transcript_events(&self, run_id: &Value, event: &str) -> Vec<Value> {
        self.transcript(run_id)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["event"] == event)
            .collect()
    }

    /// The first line of run `run_id`'s transcript whose event is `event`.
    pub(crate) fn transcript_event(&self, run_id: &Value, event: &str) -> Value {
        self.transcript_events(run_id, event)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {event} line in {}", self.transcript(run_id)))
    }

    pub(crate) fn wait_answer(&mut self, run_id: &Value) -> Value {
        let answer = self.wait_for("punie/answer", |m| {
            m["method"] == "punie/answer" && &m["params"]["runId"] == run_id
        });
        answer["params"].clone()
    }

    /// `shutdown`, `exit`, and the exit code.
    pub(crate) fn shutdown(mut self) -> i32 {
        let response = self.request("shutdown", json!(null));
        assert!(
            response.get("error").is_none(),
            "shutdown failed: {response}"
        );
        self.notify("exit", json!(null));
        self.wait_exit()
    }

    pub(crate) fn wait_exit(&mut self) -> i32 {
        self.process.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            // Draining stdout doubles as the wait: it returns as soon as the server writes or exits.
            let _ = self
                .process
                .messages()
                .recv_timeout(Duration::from_millis(20));
        }
    }
}

pub(crate) fn range(l0: u32, c0: u32, l1: u32, c1: u32) -> Value {
    json!({"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}})
}
