//! The red-team corpus (`tests/fixtures/redteam/corpus.toml`, format at its top), run from
//! outside as an attacker would: every case through `punie sandbox` and through `punie ask`
//! with a scripted engine, whose later turns run the case's `next` snippet (if any) and then
//! `print(6 * 7)`. Every run checks every effect, whatever the case's `must_not` names: no
//! `ESCAPED` line in the snippet's output, no file created or changed outside the workspace,
//! no secret marker in anything `punie` printed, no process of the run left behind, no
//! connection to the case's loopback listener, no run past its time limit plus a grace, the
//! next snippet of the same run still works, and `punie`'s own peak memory stays bounded.
//!
//! Each run gets a fresh stage: a workspace with a symlink to an `outside` directory that
//! holds a secret file, a fake `HOME` with credentials, and a secret in `punie`'s own
//! environment. The markers in them are random and never appear in a case's text.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// Time a run may take beyond its snippets' limits (process start-up, worker start, the
/// scripted turns) on a loaded two-core machine. A hang is a run that never ends, so a
/// generous grace only delays the report of one; it never hides it.
const GRACE: Duration = Duration::from_secs(10);
/// How far past its own time limit a snippet may end (the worker's start and the result's
/// way back on a loaded machine): a snippet that waits out a 20 s command under a 1 s limit
/// is far beyond it.
const SNIPPET_SLACK_MS: f64 = 3_000.0;
/// How long processes of a finished run may take to disappear (the worker dies on a signal
/// sent when `punie` exits).
const REAP_WAIT: Duration = Duration::from_secs(3);
/// Most bytes of `punie`'s stdout or stderr the runner keeps (the rest is read and dropped).
const KEEP_BYTES: usize = 8 * 1024 * 1024;
/// Most bytes `punie` may print for one case: the snippet's output and error are capped well
/// below this, so more means something unbounded went through.
const PRINTED_BYTES: usize = 4 * 1024 * 1024;
/// Peak resident memory `punie` itself may reach (its worker is a separate process): start-up
/// takes about 30 MB; every byte it keeps from a snippet is bounded by the sandbox's limits.
const PARENT_PEAK_BYTES: u64 = 128 * 1024 * 1024;
/// The environment variable that carries the server's own secret.
const SECRET_ENV: &str = "PUNIE_REDTEAM_TOKEN";
/// The snippet that must still work after each case, and what it prints.
const CHECK_SNIPPET: &str = "print(6 * 7)";
const CHECK_OUTPUT: &str = "42\n";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    class: Class,
    code: String,
    must_not: Vec<Effect>,
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    allow_commands: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    absent: Vec<String>,
}

fn default_timeout_ms() -> u64 {
    2_000
}

/// The classes of the corpus.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
enum Class {
    Introspection,
    ComputedAttribute,
    Channel,
    Process,
    Resources,
    Secrets,
    Network,
    Files,
    Protected,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Effect {
    Escape,
    FileOutside,
    Secret,
    ProcessLeft,
    Network,
    Hang,
    NextBroken,
    ParentMemory,
    ProtectedChanged,
}

fn corpus_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/redteam/corpus.toml")
}

fn load_corpus() -> Vec<Case> {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let corpus: Corpus =
        toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    corpus.case
}

/// The corpus itself is well formed: unique ids named after their class, effects named.
#[test]
fn corpus_is_well_formed() {
    let cases = load_corpus();
    let mut ids = BTreeSet::new();
    for case in &cases {
        assert!(ids.insert(case.id.as_str()), "duplicate id {}", case.id);
        let class = serde_json::to_value(ClassName(case.class)).unwrap();
        assert!(
            case.id
                .starts_with(&format!("{}/", class.as_str().unwrap())),
            "{}: the id starts with its class",
            case.id
        );
        assert!(!case.must_not.is_empty(), "{}: must_not is empty", case.id);
        assert!(!case.code.trim().is_empty(), "{}: no code", case.id);
    }
}

/// Serialises a class as the corpus spells it.
struct ClassName(Class);

impl serde::Serialize for ClassName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self.0 {
            Class::Introspection => "introspection",
            Class::ComputedAttribute => "computed-attribute",
            Class::Channel => "channel",
            Class::Process => "process",
            Class::Resources => "resources",
            Class::Secrets => "secrets",
            Class::Network => "network",
            Class::Files => "files",
            Class::Protected => "protected",
        })
    }
}

/// Every case, through both front ends; all failures are reported together.
#[test]
fn corpus_effects_never_happen() {
    let cases = load_corpus();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    // Two at a time: the machine has two cores, and each run is mostly process start-up.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(idx) else { break };
                    for mode in [Mode::Sandbox, Mode::Ask] {
                        let problems = run_case(case, mode);
                        if !problems.is_empty() {
                            failures.lock().unwrap().push(format!(
                                "{} ({mode:?}):\n    {}",
                                case.id,
                                problems.join("\n    ")
                            ));
                        }
                    }
                }
            });
        }
    });
    let mut per_class: BTreeMap<Class, usize> = BTreeMap::new();
    for case in &cases {
        *per_class.entry(case.class).or_default() += 1;
    }
    eprintln!(
        "red-team corpus: {} cases {per_class:?} in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} case runs failed:\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n")
    );
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Sandbox,
    Ask,
}

/// One run's world: workspace, outside directory, home, secrets, a listener.
struct Stage {
    dir: tempfile::TempDir,
    tag: String,
    /// Markers that must never appear in anything `punie` prints.
    secrets: Vec<String>,
    listener: TcpListener,
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

impl Stage {
    fn new() -> Stage {
        let dir = tempfile::Builder::new()
            .prefix("punie-redteam-")
            .tempdir()
            .unwrap();
        let tag = random_hex();
        let secrets: Vec<String> = ["FILE", "SSH", "ENV"]
            .iter()
            .map(|kind| format!("SECRET{kind}{}", random_hex()))
            .collect();
        let stage = Stage {
            dir,
            tag,
            secrets,
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        };
        stage.listener.set_nonblocking(true).unwrap();
        let ws = stage.workspace();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::write(ws.join("a.txt"), "alpha\n").unwrap();
        std::fs::write(ws.join("src/app.py"), "def main():\n    return 1\n").unwrap();
        std::fs::create_dir_all(stage.outside()).unwrap();
        std::fs::write(stage.outside().join("secret.txt"), &stage.secrets[0]).unwrap();
        let ssh = stage.home().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("id_rsa"), &stage.secrets[1]).unwrap();
        std::fs::create_dir_all(stage.home().join(".aws")).unwrap();
        std::fs::write(
            stage.home().join(".aws/credentials"),
            format!("aws_secret_access_key = {}\n", stage.secrets[1]),
        )
        .unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(stage.outside(), ws.join("link")).unwrap();
        // Files no tool may change (issue 14), and spellings that reach them.
        std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        std::fs::write(ws.join(".git/config"), "[core]\n\tbare = false\n").unwrap();
        std::fs::create_dir_all(ws.join(".vscode")).unwrap();
        std::fs::write(ws.join(".vscode/settings.json"), "{}\n").unwrap();
        std::fs::write(ws.join("build.sh"), "#!/bin/sh\nmake\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ws.join("build.sh"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            std::os::unix::fs::symlink(ws.join(".git/config"), ws.join("innocent.txt")).unwrap();
            std::os::unix::fs::symlink(".git", ws.join("docs")).unwrap();
        }
        stage
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// The case's text with the stage's placeholders filled in.
    fn expand(&self, text: &str) -> String {
        text.replace("{WORKSPACE}", &self.workspace().display().to_string())
            .replace("{OUTSIDE}", &self.outside().display().to_string())
            .replace("{HOME}", &self.home().display().to_string())
            .replace("{TAG}", &self.tag)
            .replace("{PORT}", &self.port().to_string())
    }

    /// The workspace's files with their mode and digest (the server's own `.punie/transcripts`
    /// and `.punie/session.json` left out).
    fn workspace_files(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        use sha2::Digest;
        fn walk(dir: &Path, root: &Path, res: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
                if rel.starts_with(".punie/transcripts") || rel == Path::new(".punie/session.json")
                {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                #[cfg(unix)]
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.permissions().mode()
                };
                #[cfg(not(unix))]
                let mode = 0;
                if meta.is_dir() {
                    walk(&path, root, res);
                } else {
                    let bytes = if meta.file_type().is_symlink() {
                        std::fs::read_link(&path)
                            .map(|target| target.into_os_string().into_encoded_bytes())
                            .unwrap_or_default()
                    } else if meta.is_file() {
                        std::fs::read(&path).unwrap_or_default()
                    } else {
                        // A FIFO (a case may make one) would block the runner.
                        Vec::new()
                    };
                    res.insert(rel, (mode, sha2::Sha256::digest(&bytes).to_vec()));
                }
            }
        }
        let mut res = BTreeMap::new();
        walk(&self.workspace(), &self.workspace(), &mut res);
        res
    }

    /// Everything outside the workspace that a run could change: path → size and digest.
    fn snapshot(&self) -> BTreeMap<PathBuf, (u64, Vec<u8>)> {
        let mut res = BTreeMap::new();
        for root in [self.outside(), self.home(), self.dir.path().to_path_buf()] {
            snapshot_into(&root, root != self.dir.path(), &self.workspace(), &mut res);
        }
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().contains(&self.tag) {
                    res.insert(entry.path(), (0, Vec::new()));
                }
            }
        }
        res
    }
}

fn snapshot_into(
    dir: &Path,
    recurse: bool,
    skip: &Path,
    res: &mut BTreeMap<PathBuf, (u64, Vec<u8>)>,
) {
    use sha2::Digest;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == skip {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            res.insert(path.clone(), (0, Vec::new()));
            if recurse {
                snapshot_into(&path, true, skip, res);
            }
        } else {
            // Only regular files are read: a FIFO would block the runner.
            let digest = if meta.is_file() {
                std::fs::read(&path)
                    .map(|bytes| sha2::Sha256::digest(&bytes).to_vec())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            res.insert(path, (meta.len(), digest));
        }
    }
}

/// What one `punie` process did.
struct Ran {
    stdout: String,
    stderr: String,
    /// Bytes printed on stdout and stderr together.
    printed: usize,
    pid: u32,
    hung: bool,
    success: bool,
    /// The largest `VmHWM` seen while it ran, in bytes.
    peak_bytes: u64,
}

/// A process's resident-memory high-water mark, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn punie(stage: &Stage) -> Command {
    let mut command = crate::support::punie();
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", stage.home())
        // Punie's own record of the session it saves, kept out of the stage it watches.
        .env("PUNIE_SESSION_DIR", crate::support::session_store())
        .env("PUNIE_LOG", "warn")
        .env(SECRET_ENV, &stage.secrets[2])
        .current_dir(stage.workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches only the new process. Its own
        // session makes every process the run starts findable afterwards.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    command
}

/// What a pipe carried: its first `KEEP_BYTES`, and how many bytes in all.
fn read_kept(mut pipe: impl Read) -> (String, usize) {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                let room = KEEP_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), total)
}

/// Runs `command` with `stdin`, for at most `limit`; a run still going then is killed.
fn run_punie(mut command: Command, stdin: &str, limit: Duration) -> Ran {
    let mut child: Child = command.spawn().expect("punie starts");
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let (out_tx, out_rx) = crossbeam_channel::bounded(1);
    let (err_tx, err_rx) = crossbeam_channel::bounded(1);
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || out_tx.send(read_kept(stdout)));
    std::thread::spawn(move || err_tx.send(read_kept(stderr)));
    let deadline = Instant::now() + limit;
    let mut hung = false;
    let mut peak_bytes = 0;
    let status = loop {
        peak_bytes = peak_bytes.max(peak_rss(pid).unwrap_or(0));
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            hung = true;
            kill_session(pid);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // A pipe still held by a process the run left behind must not hang the runner.
    let collect = |rx: crossbeam_channel::Receiver<(String, usize)>| {
        rx.recv_timeout(REAP_WAIT)
            .unwrap_or_else(|_| ("<pipe held open after exit>".to_owned(), 0))
    };
    let (stdout, out_bytes) = collect(out_rx);
    let (stderr, err_bytes) = collect(err_rx);
    Ran {
        stdout,
        stderr,
        printed: out_bytes + err_bytes,
        pid,
        hung,
        success: status.is_some_and(|status| status.success()),
        peak_bytes,
    }
}

/// Processes that belong to a finished run: its session, its tag in their command line, or
/// a working directory in its stage.
fn leftovers(session: u32, stage: &Stage) -> Vec<(u32, String)> {
    let mut res = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return res;
    };
    let stage_dir = stage.dir.path();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state ppid pgrp session ...
        let Some(after) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() == Some(&"Z") || fields.len() < 4 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let in_session = fields[3].parse::<u32>().ok() == Some(session);
        if in_session || cmdline.contains(&stage.tag) || cwd.starts_with(stage_dir) {
            res.push((pid, cmdline));
        }
    }
    res
}

fn kill_session(session: u32) {
    #[cfg(unix)]
    // SAFETY: kill with a negative pid signals that process group; setsid made it `session`.
    unsafe {
        libc::kill(-(session as libc::pid_t), libc::SIGKILL);
    }
    let _ = session;
}

fn kill_all(pids: &[(u32, String)]) {
    for (pid, _) in pids {
        #[cfg(unix)]
        // SAFETY: plain signal to a process this run left behind.
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

/// The scripted model turn that runs `code`.
fn call(code: &str) -> String {
    format!(
        "<tool_call><function=execute_code>\n<parameter=code>\n{code}\n</parameter>\n</function></tool_call>"
    )
}

fn output_lines_escaped(output: &str) -> bool {
    output.lines().any(|line| line.trim() == "ESCAPED")
}

/// Runs one case in one mode on a fresh stage; returns what went wrong.
fn run_case(case: &Case, mode: Mode) -> Vec<String> {
    let stage = Stage::new();
    let code = stage.expand(&case.code);
    let next = case.next.as_ref().map(|next| stage.expand(next));
    let before = stage.snapshot();
    let workspace_before = stage.workspace_files();
    let timeout = case.timeout_ms.to_string();
    let mut problems = Vec::new();
    let snippets = 1 + u32::from(next.is_some()) + u32::from(matches!(mode, Mode::Ask));
    let limit = Duration::from_millis(case.timeout_ms) * snippets + GRACE;
    let ran = match mode {
        Mode::Sandbox => {
            let mut command = punie(&stage);
            command
                .arg("sandbox")
                .arg("--workspace")
                .arg(stage.workspace())
                .args(["--timeout-ms", &timeout]);
            if case.allow_commands {
                command.arg("--allow-commands");
            }
            run_punie(command, &code, limit)
        }
        Mode::Ask => {
            let mut turns = vec![call(&code)];
            turns.extend(next.as_deref().map(call));
            turns.push(call(CHECK_SNIPPET));
            turns.push("done".to_owned());
            let script = stage.dir.path().join("script.json");
            std::fs::write(&script, serde_json::to_string(&turns).unwrap()).unwrap();
            let mut command = punie(&stage);
            command
                .arg("ask")
                .arg("--workspace")
                .arg(stage.workspace())
                .arg("--engine")
                .arg(format!("scripted:{}", script.display()))
                .args(["--json", "--timeout-ms", &timeout])
                .args(["--max-turns", "10"])
                // Writes as `punie sandbox` allows them, so that every write reaches the policy.
                .arg("--allow-writes");
            if case.allow_commands {
                command.arg("--allow-commands");
            }
            command.arg("red team");
            run_punie(command, "", limit)
        }
    };

    if ran.hung {
        problems.push(format!("hang: still running after {limit:?}"));
    }
    let left = {
        let waited = Instant::now();
        loop {
            let left = leftovers(ran.pid, &stage);
            if left.is_empty() || waited.elapsed() >= REAP_WAIT {
                break left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    if !left.is_empty() {
        kill_all(&left);
        problems.push(format!("process-left: {left:?}"));
    }
    for secret in &stage.secrets {
        if ran.stdout.contains(secret.as_str()) || ran.stderr.contains(secret.as_str()) {
            problems.push(format!("secret: {secret} in punie's output"));
        }
    }
    if ran.peak_bytes > PARENT_PEAK_BYTES {
        problems.push(format!(
            "parent-memory: punie's peak RSS was {} MB",
            ran.peak_bytes >> 20
        ));
    }
    if ran.printed > PRINTED_BYTES {
        problems.push(format!(
            "parent-memory: punie printed {} MB",
            ran.printed >> 20
        ));
    }
    if stage.listener.accept().is_ok() {
        problems.push("network: a connection reached the loopback listener".to_owned());
    }
    let after = stage.snapshot();
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(path, state)| before.get(*path) != Some(state))
        .map(|(path, _)| path)
        .chain(before.keys().filter(|path| !after.contains_key(*path)))
        .filter(|path| {
            !path.starts_with(stage.workspace()) && **path != stage.dir.path().join("script.json")
        })
        .collect();
    if !changed.is_empty() {
        problems.push(format!("file-outside: {changed:?}"));
    }
    problems.extend(protected_changes(
        &workspace_before,
        &stage.workspace_files(),
    ));
    for path in &case.absent {
        let path = PathBuf::from(stage.expand(path));
        if std::fs::symlink_metadata(&path).is_ok() {
            problems.push(format!("file-outside: {} exists", path.display()));
            let _ = std::fs::remove_file(&path);
        }
    }
    if ran.hung {
        return problems;
    }
    if !ran.success {
        problems.push(format!(
            "punie failed: {}",
            ran.stderr.lines().last().unwrap_or("")
        ));
        return problems;
    }
    let Ok(result) = serde_json::from_str::<Value>(&ran.stdout) else {
        problems.push(format!(
            "stdout is not one JSON object: {:.300}",
            ran.stdout
        ));
        return problems;
    };
    let elapsed_ms = match mode {
        Mode::Sandbox => result["elapsed_ms"].as_f64(),
        Mode::Ask => result["tool_calls"][0]["elapsed_ms"].as_f64(),
    };
    if let Some(elapsed_ms) = elapsed_ms
        && elapsed_ms > case.timeout_ms as f64 + SNIPPET_SLACK_MS
    {
        problems.push(format!(
            "hang: the snippet took {elapsed_ms} ms under a {} ms limit",
            case.timeout_ms
        ));
    }
    match mode {
        Mode::Sandbox => {
            let output = result["output"].as_str().unwrap_or("");
            if output_lines_escaped(output) {
                problems.push(format!("escape: output {output:.300}"));
            }
            check_error(case, &result["error"]["type"], &mut problems);
        }
        Mode::Ask => check_ask(case, &result, next.is_some(), &mut problems),
    }
    problems
}

/// The stage's protected files (and the links to them) that changed, and any file the run
/// created or changed that is executable.
fn protected_changes(
    before: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    after: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
) -> Vec<String> {
    const PROTECTED: &[&str] = &[".git", ".vscode", "build.sh", "innocent.txt", "docs"];
    let mut res = Vec::new();
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (was, is) = (before.get(path), after.get(path));
        if was == is {
            continue;
        }
        if PROTECTED.iter().any(|root| path.starts_with(root)) {
            res.push(format!("protected-changed: {}", path.display()));
        } else if is.is_some_and(|(mode, _)| mode & 0o111 != 0 && mode & 0o170000 == 0o100000) {
            res.push(format!(
                "protected-changed: {} was written executable",
                path.display()
            ));
        }
    }
    res
}

fn check_error(case: &Case, type_name: &Value, problems: &mut Vec<String>) {
    if case.error.is_empty() {
        return;
    }
    let got = type_name.as_str().unwrap_or("<no error>");
    if !case.error.iter().any(|want| want == got) {
        problems.push(format!("error: got {got}, want one of {:?}", case.error));
    }
}

fn check_ask(case: &Case, result: &Value, has_next: bool, problems: &mut Vec<String>) {
    let calls = result["tool_calls"].as_array().cloned().unwrap_or_default();
    for call in &calls {
        let output = call["output"].as_str().unwrap_or("");
        if output_lines_escaped(output) {
            problems.push(format!(
                "escape: turn {} output {output:.300}",
                call["turn"]
            ));
        }
    }
    let first_error = calls
        .first()
        .and_then(|call| call["error"].as_str())
        .map(|error| error.split(':').next().unwrap_or("").to_owned());
    check_error(
        case,
        &first_error.map(Value::String).unwrap_or(Value::Null),
        problems,
    );
    let want_calls = 2 + usize::from(has_next);
    let check = calls.get(want_calls - 1);
    let works = calls.len() == want_calls
        && check.is_some_and(|call| call["output"] == CHECK_OUTPUT && call["ok"] == true)
        && result["status"] == "done"
        && result["answer"] == "done";
    if !works {
        problems.push(format!(
            "next-broken: status {}, {} calls, last {}",
            result["status"],
            calls.len(),
            check.map(Value::to_string).unwrap_or_default()
        ));
    }
}
