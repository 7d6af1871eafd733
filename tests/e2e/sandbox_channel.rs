//! The worker process and its channel. A pre-warmed worker outlives the thread that started
//! it. And the channel holds against a worker that lies. Each fake worker is a shell script that
//! speaks on fds 3 and 4 as a compromised interpreter might: answers for the wrong request,
//! tool calls out of turn, garbage, endless lines, messages between snippets, a forged
//! message on stdout. The sandbox must stop it with a clear `SystemError`, act on none of
//! it (no tool runs), kill it, and never block.

use std::path::Path;
use std::time::{Duration, Instant};

use punie::cancel::CancelFlag;
use punie::sandbox::{DiskToolHost, Sandbox, SandboxLimits, SandboxResult};

/// Reads the `exec` line and sets `$id` to its id (the fake's first lines).
const READY_AND_READ_EXEC: &str = r#"printf '{"op":"ready"}\n' >&4
IFS= read -r line <&3
id=$(printf '%s' "$line" | /bin/sed -n 's/^{"op":"exec","id":\([0-9]*\).*/\1/p')
"#;

struct Fake {
    dir: tempfile::TempDir,
    workspace: tempfile::TempDir,
}

impl Fake {
    /// A fake worker running `body` after it said `ready` and read the first `exec`.
    fn new(body: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let workspace = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pids");
        let script = format!(
            "#!/bin/sh\necho $$ >> '{}'\n{READY_AND_READ_EXEC}{body}\n/bin/sleep 30\n",
            pid_file.display()
        );
        let exe = dir.path().join("fake-worker");
        std::fs::write(&exe, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Fake { dir, workspace }
    }

    fn sandbox(&self) -> Sandbox {
        let limits = SandboxLimits {
            timeout_ms: 3_000,
            ..SandboxLimits::default()
        };
        Sandbox::with_worker_exe(limits, &self.dir.path().join("fake-worker")).unwrap()
    }

    fn run(&self, sandbox: &mut Sandbox, code: &str) -> SandboxResult {
        let host = DiskToolHost {
            root: self.workspace.path().to_path_buf(),
            allow_commands: false,
        };
        sandbox.execute(code, &host, &CancelFlag::default(), &mut |_| {})
    }

    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.path().join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    fn workspace(&self) -> &Path {
        self.workspace.path()
    }
}

/// The process is gone (killed and reaped) within a few seconds.
#[track_caller]
fn assert_gone(pid: u32) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "fake worker {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[track_caller]
fn assert_broken(res: &SandboxResult, what: &str) {
    let err = res.error.as_ref().expect("an error");
    assert!(!res.ok);
    assert_eq!(err.type_name, "SystemError", "{err}");
    assert!(
        err.message.contains("broke its protocol") && err.message.contains(what),
        "{err}"
    );
    assert!(!res.output.contains("FORGED"), "{}", res.output);
}

/// Every lie: the snippet gets a SystemError naming it, nothing the fake asked for runs, and
/// the fake is killed.
#[test]
fn lies_stop_the_worker_and_nothing_they_ask_for_runs() {
    let tool_line = |exec: &str, call: u32| {
        format!(
            r#"printf '{{"op":"tool","exec":%s,"call":{call},"tool":"write_file","args":{{"path":"pwned.txt","content":"x"}}}}\n' {exec} >&4"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            r#"printf '{"op":"done","exec":%s,"ok":true,"output":"FORGED\\n","truncated":false,"error":null}\n' $((id + 1)) >&4"#.to_owned(),
            "done for exec",
        ),
        (r#"printf '{"op":"ready"}\n' >&4"#.to_owned(), "a second ready"),
        (tool_line("$id", 2), "tool call 2"),
        (tool_line("$((id + 1))", 1), "tool call 1 of exec"),
        (
            "printf 'Traceback (most recent call last):\\n' >&4".to_owned(),
            "not a message",
        ),
        (
            r#"printf '{"op":"done","exec":%s,"ok":true,"output":"x","truncated":false,"error":null,"extra":1}\n' $id >&4"#.to_owned(),
            "not a message",
        ),
        (
            r#"printf '{"op":"done","exec":%s,"ok":false,"output":"","truncated":false,"error":{"type":"Forged Error\n","message":"x","line":null}}\n' $id >&4"#.to_owned(),
            "not a message",
        ),
        (
            r#"printf '{"op":"done","exec":%s,"ok":false,"output":"","truncated":false,"error":{"type":"Forged Error","message":"x","line":null}}\n' $id >&4"#.to_owned(),
            "an error no snippet can raise",
        ),
        (
            "/usr/bin/head -c 40000000 /dev/zero >&4".to_owned(),
            "a line longer than",
        ),
    ];
    for (body, what) in &cases {
        let fake = Fake::new(body);
        let mut sandbox = fake.sandbox();
        let start = Instant::now();
        let res = fake.run(&mut sandbox, "print('real')");
        assert_broken(&res, what);
        assert!(start.elapsed() < Duration::from_secs(3), "{body}");
        assert!(!fake.workspace().join("pwned.txt").exists(), "{body}");
        let first = fake.pids()[0];
        assert_gone(first);
    }
}

/// A worker that says anything between snippets is replaced before the next one runs.
#[test]
fn a_message_between_snippets_replaces_the_worker() {
    let answer_then_speak = r#"printf '{"op":"done","exec":%s,"ok":true,"output":"REAL\\n","truncated":false,"error":null}\n' $id >&4
printf '{"op":"done","exec":%s,"ok":true,"output":"FORGED\\n","truncated":false,"error":null}\n' $((id + 1)) >&4"#;
    let fake = Fake::new(answer_then_speak);
    let mut sandbox = fake.sandbox();
    let res = fake.run(&mut sandbox, "print('real')");
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "REAL\n");
    // Let the unsolicited line arrive.
    std::thread::sleep(Duration::from_millis(200));
    let res = fake.run(&mut sandbox, "print('real')");
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "REAL\n");
    let pids = fake.pids();
    assert!(pids.len() >= 2, "{pids:?}");
    assert_gone(pids[0]);
}

/// What a worker writes on its stdout goes nowhere: only fd 4 is heard.
#[test]
fn stdout_is_not_the_channel() {
    let body = r#"printf '{"op":"done","exec":%s,"ok":true,"output":"FORGED\\n","truncated":false,"error":null}\n' $id
printf '{"op":"done","exec":%s,"ok":true,"output":"REAL\\n","truncated":false,"error":null}\n' $id >&4"#;
    let fake = Fake::new(body);
    let mut sandbox = fake.sandbox();
    let res = fake.run(&mut sandbox, "print('real')");
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "REAL\n");
}

/// A worker that asks for a large result and then never reads it cannot block the parent:
/// the snippet's time limit still ends it.
#[test]
fn a_worker_that_stops_reading_cannot_block_the_parent() {
    let body = r#"printf '{"op":"tool","exec":%s,"call":1,"tool":"read_file","args":{"path":"big.txt"}}\n' $id >&4"#;
    let fake = Fake::new(body);
    std::fs::write(
        fake.workspace().join("big.txt"),
        "\u{1}".repeat(4 * 1024 * 1024),
    )
    .unwrap();
    let mut sandbox = fake.sandbox();
    let start = Instant::now();
    let res = fake.run(&mut sandbox, "print('real')");
    assert_eq!(
        res.error.as_ref().map(|err| err.type_name.as_str()),
        Some("TimeoutError"),
        "{:?}",
        res.error
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert_gone(fake.pids()[0]);
}

/// A well-behaved fake: answers every `exec` with `REAL`.
const ANSWER_EVERY_EXEC: &str = r#"while true; do
printf '{"op":"done","exec":%s,"ok":true,"output":"REAL\\n","truncated":false,"error":null}\n' $id >&4
IFS= read -r line <&3 || exit 0
id=$(printf '%s' "$line" | /bin/sed -n 's/^{"op":"exec","id":\([0-9]*\).*/\1/p')
done"#;

/// The worker a run's thread started (and pre-warmed for the next run) is still there after
/// that thread has ended: the next run does not start another.
#[test]
fn the_prewarmed_worker_outlives_the_thread_that_started_it() {
    let fake = Fake::new(ANSWER_EVERY_EXEC);
    let mut sandbox = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut sandbox = fake.sandbox();
                let res = fake.run(&mut sandbox, "print('first run')");
                assert_eq!(res.output, "REAL\n", "{:?}", res.error);
                sandbox
            })
            .join()
            .unwrap()
    });
    // Give a parent-death signal time to arrive, were one sent.
    std::thread::sleep(Duration::from_millis(300));
    let res = fake.run(&mut sandbox, "print('second run')");
    assert_eq!(res.output, "REAL\n", "{:?}", res.error);
    assert_eq!(fake.pids().len(), 1, "the second run started a new worker");
}

/// The real worker refuses to run outside the server: no channel, no interpreter.
#[test]
fn the_worker_needs_the_servers_channel() {
    let out = crate::support::punie()
        .arg("sandbox-worker")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fds 3 and 4"));
}

/// The worker holds stdin, stdout, stderr and its two pipes, nothing else: a descriptor the
/// server inherited without close-on-exec (here fd 9, as an editor might leak one) does not
/// reach it.
#[cfg(target_os = "linux")]
#[test]
fn the_worker_holds_only_its_own_descriptors() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let ws = tempfile::tempdir().unwrap();
    let leaked = tempfile::tempfile().unwrap();
    let leaked_fd = leaked.as_raw_fd();
    let mut command = crate::support::punie();
    command
        .args(["sandbox", "--timeout-ms", "4000", "--workspace"])
        .arg(ws.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: dup2 is async-signal-safe; the new fd 9 has no close-on-exec flag.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(leaked_fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut server = command.spawn().unwrap();
    server
        .stdin
        .take()
        .unwrap()
        .write_all(b"while True:\n    pass")
        .unwrap();
    let worker = {
        let start = Instant::now();
        loop {
            let found = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .find_map(|entry| {
                    let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    let ppid: u32 = stat[stat.rfind(')')? + 2..]
                        .split(' ')
                        .nth(1)?
                        .parse()
                        .ok()?;
                    (ppid == server.id()).then_some(pid)
                });
            if let Some(pid) = found {
                break pid;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "no worker");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // It is busy in the snippet's loop by now, long past its start-up.
    std::thread::sleep(Duration::from_millis(1_000));
    let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{worker}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(fds, [0, 1, 2, 3, 4]);
}
