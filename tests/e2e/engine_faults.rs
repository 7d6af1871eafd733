//! The `openai` engine against servers that misbehave (`fake_openai.rs`), through the built
//! binary: a protocol fault is a clear failure, never an empty `done`; a stalled stream is
//! given up on after the idle timeout, and a cancel closes the connection at once; switching
//! engines in the language server never waits on the old one. The `llama` engine given a path
//! that holds no model file (a FIFO, a device) fails at once instead of waiting on it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_openai::{FakeOpenAi, Reply};
use crate::lsp_client::{Client, Launch, range};
use crate::support::{fixture_workspace, wait_within};

fn punie_ask(server: &FakeOpenAi) -> Command {
    let mut command = crate::support::punie();
    command
        .env_remove("PUNIE_ENGINE")
        .env("PUNIE_LOG", "warn")
        .arg("ask")
        .arg("--engine")
        .arg(server.spec())
        .arg("--json");
    command
}

/// `punie ask` against a server answering `reply`: the exit status, its JSON and stderr.
fn ask(reply: Reply) -> (Output, Value, String) {
    let server = FakeOpenAi::start(reply);
    let workspace = fixture_workspace();
    let output = punie_ask(&server)
        .arg("--workspace")
        .arg(workspace.path())
        .arg("Say hello.")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let out = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}); stderr: {stderr}"));
    (output, out, stderr)
}

#[track_caller]
fn check_failed(reply: Reply, expected: &[&str]) {
    let (output, out, stderr) = ask(reply);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let status = out["status"].as_str().unwrap();
    assert!(
        status.starts_with("failed: server http://127.0.0.1:"),
        "{status}"
    );
    for part in expected {
        assert!(status.contains(part), "{part:?} not in {status}");
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    assert_eq!(out["answer"], "", "no answer from a broken server");
}

#[test]
fn a_well_behaved_server_answers() {
    let (output, out, stderr) = ask(Reply::Stream(vec!["Hel".into(), "lo!".into()]));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        (out["status"].as_str(), out["answer"].as_str()),
        (Some("done"), Some("Hello!"))
    );
}

#[test]
fn an_html_login_page_with_status_200_is_a_clear_failure() {
    check_failed(
        Reply::HtmlLogin,
        &[
            "HTTP 200 with Content-Type text/html, not an event stream",
            "/v1 the API root",
            "Please log in to continue.",
        ],
    );
}

#[test]
fn a_wrong_content_type_is_a_clear_failure() {
    check_failed(
        Reply::WrongType("text/plain"),
        &["HTTP 200 with Content-Type text/plain, not an event stream"],
    );
}

#[test]
fn a_body_without_line_breaks_is_refused_at_the_line_limit() {
    check_failed(
        Reply::NoNewlines,
        &["the server sent more than 1048576 bytes without a line break"],
    );
}

#[test]
fn chunk_framing_that_dwarfs_the_body_is_refused_at_the_wire_limit() {
    check_failed(
        Reply::PaddedChunks,
        &["the response is larger than 32 MiB with its headers and chunk framing"],
    );
}

#[test]
fn a_stalled_stream_is_given_up_on_after_the_idle_timeout() {
    let server = FakeOpenAi::start(Reply::StallAfter(vec!["Hel".into()]));
    let workspace = fixture_workspace();
    let started = Instant::now();
    let output = punie_ask(&server)
        .env("PUNIE_ENGINE_IDLE_TIMEOUT", "1")
        .arg("--workspace")
        .arg(workspace.path())
        .arg("Say hello.")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server sent nothing for 1.0 s"),
        "{stderr}"
    );
    // Generous: the point is that it is not the default 120 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        server.wait_closed(Duration::from_secs(5)).is_some(),
        "the connection was closed"
    );
}

#[test]
fn ctrl_c_during_a_stalled_stream_closes_the_connection_at_once() {
    let server = FakeOpenAi::start(Reply::StallAfter(vec!["Hel".into()]));
    let workspace = fixture_workspace();
    let mut child = punie_ask(&server)
        .arg("--workspace")
        .arg(workspace.path())
        .arg("Say hello.")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_request();
    // The first piece has been sent; the progress line says the turn is generating.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("punie ended early").unwrap();
        if line.contains("generating") {
            break;
        }
    }
    let sent = Instant::now();
    // SAFETY: signals the child we spawned, by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let closed_at = server
        .wait_closed(Duration::from_secs(10))
        .expect("the connection was closed");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    // Generous for a loaded CI machine: what it catches is a run that waits for the stalled
    // server (the idle timeout, two minutes) before it lets the process end.
    assert!(
        closed_at.saturating_duration_since(sent) < Duration::from_secs(3),
        "the socket closed {:?} after the cancel",
        closed_at.saturating_duration_since(sent)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["status"], "cancelled");
}

/// The language server keeps answering while a run waits on a stalled server, switching the
/// engine does not wait for the old one, and `shutdown` + `exit` end the server promptly.
#[test]
fn the_language_server_never_waits_on_a_stalled_engine() {
    let server = FakeOpenAi::start(Reply::StallAfter(vec!["Thinking".into()]));
    // A client that vouches for its settings: a project's may not choose an `openai:` engine.
    let vouching = json!({"experimental": {"punieUserSettings": true}});
    let mut client = Client::start(&server.spec(), vouching, json!({}));
    let uri = client.open("src/calc.py", "def add(a, b):\n    return a - b\n");
    let run = client.ask(&uri, range(0, 0, 1, 16), "explain");
    server.wait_request();

    let scripted = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(scripted.path(), r#"["Scripted."]"#).unwrap();
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"punie": {"engine": format!("scripted:{}", scripted.path().display())}}}),
    );
    let asked = Instant::now();
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": range(0, 0, 1, 16), "context": {"diagnostics": []}}),
    );
    let answered = asked.elapsed();
    assert!(actions["result"].is_array(), "{actions}");
    assert!(
        answered < Duration::from_secs(1),
        "code actions took {answered:?}"
    );

    let started = Instant::now();
    let code = client.shutdown();
    assert_eq!(code, 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        started.elapsed()
    );
    assert!(
        server.wait_closed(Duration::from_secs(2)).is_some(),
        "the stalled connection was closed"
    );
    drop(run);
}

/// A model that is still loading is dropped at once: the load stops between tensors on the
/// engine's own thread, and nobody waits for it.
#[test]
fn dropping_an_engine_while_its_model_loads_returns_at_once() {
    let _model = crate::support::real_model_lock();
    let config = punie::engine::EngineConfig {
        threads: Some(1),
        default_model: Some(crate::support::installed_default_model()),
        ..punie::engine::EngineConfig::default()
    };
    // A whole load first, on this machine and under its current load, as the yardstick.
    let started = Instant::now();
    let loaded =
        punie::engine::EngineHandle::spawn(punie::engine::EngineSpec::Default, config.clone());
    loaded.wait_ready().unwrap();
    let full_load = started.elapsed();
    drop(loaded);

    let engine = punie::engine::EngineHandle::spawn(punie::engine::EngineSpec::Default, config);
    assert!(engine.load_state().is_none(), "still loading");
    let started = Instant::now();
    drop(engine);
    // A drop that waited for the load would take about a whole load.
    assert!(
        started.elapsed() < full_load / 2,
        "dropping took {:?}; a whole load takes {full_load:?}",
        started.elapsed()
    );
}

/// What a `llama:` path may name that is no model file: a FIFO no writer opens (a plain `open`
/// would wait for one for ever) and `/dev/zero` (which never ends).
fn model_paths_that_are_no_file(dir: &Path) -> [PathBuf; 2] {
    let fifo = dir.join("model.gguf");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    [fifo, PathBuf::from("/dev/zero")]
}

/// How long a run on a path that is no model file may take: it fails before any model work,
/// so this only tells a hang from an answer on a loaded machine.
const NO_MODEL_WAIT: Duration = Duration::from_secs(60);

/// `punie ask` judges the path before the run (the engine judges the file it opens again, for
/// one swapped in meanwhile).
#[test]
fn ask_with_a_model_path_that_is_no_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = fixture_workspace();
    for path in model_paths_that_are_no_file(dir.path()) {
        let mut child = crate::support::punie()
            .env_remove("PUNIE_ENGINE")
            .env("PUNIE_LOG", "warn")
            .arg("ask")
            .arg("--engine")
            .arg(format!("llama:{}", path.display()))
            .arg("--workspace")
            .arg(workspace.path())
            .arg("Say hello.")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_within(
            &mut child,
            NO_MODEL_WAIT,
            &format!("punie ask with the model {}", path.display()),
        );
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{} is not a file", path.display())),
            "{stderr}"
        );
    }
}

/// The language server's run on such a path fails at once, says why, and the server goes on
/// answering (a second run fails the same way) and exits when asked.
#[test]
fn the_language_server_fails_a_run_on_a_model_path_that_is_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for path in model_paths_that_are_no_file(dir.path()) {
        let spec: &'static str = Box::leak(format!("llama:{}", path.display()).into());
        let launch = Launch {
            env: vec![("PUNIE_ENGINE", spec)],
            ..Launch::default()
        };
        let mut client = Client::start_with(
            "",
            json!({"window": {"workDoneProgress": true}}),
            json!({}),
            launch,
        );
        let uri = client.open("src/calc.py", "def add(a, b):\n    return a - b\n");
        for _ in 0..2 {
            let run = client.ask(&uri, range(0, 0, 1, 16), "explain");
            let end = client.wait_end_within(&run["token"], NO_MODEL_WAIT);
            assert!(end.starts_with("failed: "), "{end}");
            let refused = format!("{}: not a regular file", path.display());
            assert!(end.contains(&refused), "{end}");
        }
        assert_eq!(client.shutdown(), 0);
    }
}
