//! Helpers shared by the end-to-end modules.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that run a real model take this lock, so they run one at a time: llama.cpp's threads
/// spin while they wait for each other, and two models decoding at once on a 2-core machine are
/// many times slower than two in a row.
pub(crate) fn real_model_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh copy of the fixture workspace (`tests/fixtures/workspace`): tools may write to it.
pub(crate) fn fixture_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workspace");
    copy_dir(&fixture, dir.path());
    dir
}

/// Punie's reference data, vendored (`tests/fixtures/punie/README.md`); a checkout without it
/// fails here rather than skipping the fidelity checks.
/// The binary under test, its session store in this test build's temporary directory:
/// `punie ask` records there the session it saves, and no test may write into the user's.
pub(crate) fn punie() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_punie"));
    command.env("PUNIE_SESSION_DIR", session_store());
    command
}

/// The session store of [`punie`].
pub(crate) fn session_store() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sessions")
}

pub(crate) fn punie_fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/punie");
    assert!(dir.is_dir(), "{} is committed", dir.display());
    dir
}

/// Runs `command` with `input` on stdin; what it printed (stdout, and stderr unless the
/// command sends it elsewhere) and how it ended.
pub(crate) fn output_with_input(mut command: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{command:?} could not run: {err}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `git ARGS` in `cwd` as a test user, which must succeed.
pub(crate) fn git(args: &[&str], cwd: &Path) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=Punie Test",
            "-c",
            "user.email=test@punie.invalid",
        ])
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .status()
        .expect("git is installed");
    assert!(status.success(), "git {args:?} failed");
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The default model's path; fails with the fix if it is not installed (the README's test
/// command installs it with `punie models fetch`).
pub(crate) fn installed_default_model() -> PathBuf {
    let path = punie::models::default_model_path().expect("the model directory");
    assert!(
        path.is_file(),
        "the default model is not installed at {}: run `punie models fetch` (the README's test command does)",
        path.display()
    );
    path
}

/// An engine on the default model with a context of `n_ctx` tokens and one thread (tests run
/// in parallel on two cores), loaded.
pub(crate) fn default_model_engine(n_ctx: u32) -> punie::engine::EngineHandle {
    let config = punie::engine::EngineConfig {
        n_ctx: Some(n_ctx),
        threads: Some(1),
        default_model: Some(installed_default_model()),
        ..punie::engine::EngineConfig::default()
    };
    let engine = punie::engine::EngineHandle::spawn(punie::engine::EngineSpec::Default, config);
    engine.wait_ready().expect("the default model loads");
    engine
}

/// Waits for `child` to exit, at most `limit`: past it the child is killed and the test fails
/// saying that `what` hangs, so a regression fails in bounded time instead of hanging the suite.
pub(crate) fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A GGUF with no tensors whose metadata is `strings`, each a string value.
pub(crate) fn gguf_with_strings(strings: &[(&str, &str)]) -> Vec<u8> {
    const STRING: u32 = 8;
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // tensors
    out.extend_from_slice(&(strings.len() as u64).to_le_bytes());
    for (key, value) in strings {
        string(&mut out, key);
        out.extend_from_slice(&STRING.to_le_bytes());
        string(&mut out, value);
    }
    out
}
