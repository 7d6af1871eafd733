//! End-to-end tests of the Code Mode sandbox: the fixture table from the original Punie,
//! adversarial tests for every guard and limit, a fuzz loop, and `punie sandbox` itself.
//! The sandbox runs its real worker, the built `punie` binary.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use punie::cancel::CancelFlag;
use punie::sandbox::{
    DiskToolHost, Ruling, Sandbox, SandboxLimits, SandboxResult, Tool, ToolError, ToolEvent,
    ToolHost, ToolRequest,
};
use serde_json::Value;

fn punie_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_punie"))
}

fn sandbox(limits: SandboxLimits) -> Sandbox {
    Sandbox::with_worker_exe(limits, punie_exe()).expect("sandbox starts")
}

fn quick_limits() -> SandboxLimits {
    SandboxLimits {
        timeout_ms: 1_000,
        memory_mb: 128,
        ..SandboxLimits::default()
    }
}

fn fixture_json(name: &str) -> Value {
    let path = crate::support::punie_fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A host whose tools answer from a fixture: each tool's calls in order.
struct FakeHost {
    root: PathBuf,
    calls: Mutex<Vec<(String, Value)>>,
}

impl ToolHost for FakeHost {
    fn workspace_root(&self) -> &Path {
        &self.root
    }

    fn permit(&self, request: &ToolRequest, _cancel: &CancelFlag) -> Ruling {
        punie::policy::rule(
            request,
            &punie::policy::Verdict::Allow { session: None },
            None,
        )
    }

    fn call_tool(
        &self,
        tool: Tool,
        _args: &Value,
        _cancel: &CancelFlag,
    ) -> Option<Result<Value, ToolError>> {
        let mut calls = self.calls.lock().unwrap();
        let idx = calls.iter().position(|(name, _)| name == tool.name())?;
        let (_, call) = calls.remove(idx);
        if let Some(raises) = call.get("raises") {
            let type_name = raises["type"].as_str().unwrap_or("RuntimeError");
            return Some(Err(ToolError::new(
                type_name,
                raises["message"].as_str().unwrap_or(""),
            )));
        }
        Some(Ok(call.get("returns").cloned().unwrap_or(Value::Null)))
    }
}

/// Where Punie's sandbox and ours differ on purpose: containment or a clearer refusal.
fn deviation(id: &str) -> Option<(bool, Option<&'static str>, &'static str)> {
    match id {
        "observed/except_specific_unknown_class" => Some((
            true,
            None,
            "Punie bound only five exception classes; ours binds the ones the tools raise, so `except FileNotFoundError:` works",
        )),
        "observed/any_not_available" => Some((true, None, "any/all are harmless and provided")),
        "execute_code/async_bridge_acp" => Some((
            false,
            Some("PermissionError"),
            "run_command's cwd must stay inside the workspace; Punie's ACP bridge handed /tmp to the client",
        )),
        "observed/class_blocked" => Some((
            false,
            Some("PermissionError"),
            "class definitions are refused before the snippet runs, naming the rule",
        )),
        _ => None,
    }
}

fn run_fixture_case(sandbox: &mut Sandbox, root: &Path, case: &Value) -> Result<(), String> {
    let id = case["id"].as_str().unwrap_or("?");
    let expect = &case["expect"];
    match case["kind"].as_str().unwrap_or("") {
        "sandbox" | "execute_code_bridge" => {
            let mut calls = Vec::new();
            if let Some(tools) = case["tools"].as_object() {
                for (name, tool) in tools {
                    for call in tool["calls"].as_array().into_iter().flatten() {
                        calls.push((name.clone(), call.clone()));
                    }
                }
                if let Some(acp) = tools.get("acp_client") {
                    let output = acp["terminal_output"]["returns"]["output"].clone();
                    calls.push((
                        "read_file".to_owned(),
                        serde_json::json!({"returns": acp["read_text_file"]["returns"]["content"]}),
                    ));
                    calls.push((
                        "write_file".to_owned(),
                        serde_json::json!({"returns": "File written successfully"}),
                    ));
                    calls.push((
                        "run_command".to_owned(),
                        serde_json::json!({"returns": output}),
                    ));
                }
            }
            let host = FakeHost {
                root: root.to_path_buf(),
                calls: Mutex::new(calls),
            };
            let code = case["code"].as_str().unwrap_or("");
            let res = sandbox.execute(code, &host, &CancelFlag::default(), &mut |_| {});
            let (want_ok, want_type) = match deviation(id) {
                Some((ok, type_name, why)) => {
                    eprintln!("{id}: deliberate deviation: {why}");
                    (ok, type_name.map(str::to_owned))
                }
                None => (
                    expect["ok"].as_bool().unwrap_or(true),
                    expect["error_type"].as_str().map(str::to_owned),
                ),
            };
            if res.ok != want_ok {
                return Err(format!(
                    "ok={} (want {want_ok}), error={:?}, output={:?}",
                    res.ok, res.error, res.output
                ));
            }
            if let Some(want_type) = want_type {
                let got = res.error.as_ref().map(|err| err.type_name.as_str());
                if got != Some(want_type.as_str()) {
                    return Err(format!("error {:?}, want {want_type}", res.error));
                }
            }
            if !want_ok || deviation(id).is_some() {
                return Ok(());
            }
            check_output(expect, &res)?;
            if let Some(want_calls) = expect["tool_calls"].as_array() {
                let got: Vec<(String, Value)> = res
                    .tool_calls
                    .iter()
                    .map(|call| (call.tool.clone(), call.args.clone()))
                    .collect();
                let want: Vec<(String, Value)> = want_calls
                    .iter()
                    .map(|call| {
                        (
                            call["name"].as_str().unwrap_or("").to_owned(),
                            call["named_args"].clone(),
                        )
                    })
                    .collect();
                if got != want {
                    return Err(format!("tool calls {got:?}, want {want:?}"));
                }
            }
            Ok(())
        }
        "stubs" => {
            let tools: Vec<Tool> = Tool::all().collect();
            let stubs = punie::tools::stubs_text(&tools);
            let instructions = punie::tools::code_mode_instructions(&tools);
            for text in expect["stubs_contains"].as_array().into_iter().flatten() {
                let text = text.as_str().unwrap_or("");
                if !stubs.contains(text) {
                    return Err(format!("stubs lack {text:?}"));
                }
            }
            for text in expect["stubs_not_contains"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let text = text.as_str().unwrap_or("");
                if stubs.contains(text) {
                    return Err(format!("stubs contain {text:?}"));
                }
            }
            for text in expect["instructions_contains"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let text = text.as_str().unwrap_or("");
                if !instructions.contains(text) {
                    return Err(format!("instructions lack {text:?}"));
                }
            }
            if let Some(prefix) = expect["stubs_startswith"].as_str()
                && !stubs.starts_with(prefix)
            {
                return Err(format!("stubs do not start with {prefix:?}"));
            }
            Ok(())
        }
        "command_split" => {
            let input = &case["input"];
            if let Some(line) = input["input"].as_str() {
                let got =
                    punie::workspace::split_command(line, None).map_err(|err| err.to_string())?;
                let want: Vec<String> =
                    serde_json::from_value(expect["shlex_split"].clone()).unwrap_or_default();
                return if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?} != {want:?}"))
                };
            }
            let command = input["command"].as_str().unwrap_or("");
            let args: Option<Vec<String>> = serde_json::from_value(input["args"].clone()).ok();
            let got = punie::workspace::split_command(command, args.as_deref())
                .map_err(|err| err.to_string())?;
            let want_command = expect["command"].as_str().unwrap_or("");
            let want_args: Vec<String> =
                serde_json::from_value(expect["args"].clone()).unwrap_or_default();
            if got[0] != want_command || got[1..] != want_args[..] {
                return Err(format!("{got:?}, want {want_command} {want_args:?}"));
            }
            Ok(())
        }
        "tool_meta" => {
            // These describe `execute_code` itself, the agent's one model-visible tool: its
            // shape is checked where the agent declares it, not in the sandbox.
            eprintln!("{id}: execute_code metadata belongs to the agent's tool declaration");
            Ok(())
        }
        other => Err(format!("unknown case kind {other}")),
    }
}

fn check_output(expect: &Value, res: &SandboxResult) -> Result<(), String> {
    let output = &res.output;
    for text in expect["output_contains"].as_array().into_iter().flatten() {
        let text = text.as_str().unwrap_or("");
        if !output.contains(text) {
            return Err(format!("output {output:?} lacks {text:?}"));
        }
    }
    if let Some(want) = expect["output_strip_equals"].as_str()
        && output.trim() != want
    {
        return Err(format!("output {output:?} != {want:?}"));
    }
    if let Some(want) = expect["output_equals"].as_str()
        && output != want
    {
        return Err(format!("output {output:?} != {want:?}"));
    }
    if let Some(lines) = expect["stripped_lines"].as_object() {
        let got: Vec<&str> = output.trim().lines().collect();
        if Some(got.len() as u64) != lines["count"].as_u64()
            || got.first().copied() != lines["first"].as_str()
            || got.last().copied() != lines["last"].as_str()
        {
            return Err(format!("lines {got:?} != {lines:?}"));
        }
    }
    Ok(())
}

/// Every case of `sandbox_cases.json`: one table, one runner.
#[test]
fn fixture_cases() {
    let cases: Vec<Value> = serde_json::from_value(fixture_json("sandbox_cases.json")).unwrap();
    assert_eq!(cases.len(), 66);
    let root = tempfile::tempdir().unwrap();
    let mut sandbox = sandbox(SandboxLimits::default());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run_fixture_case(&mut sandbox, root.path(), case) {
            failures.push(format!("{}: {why}", case["id"].as_str().unwrap_or("?")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The stub text is byte for byte what Punie showed the model, less the stubs of the
/// framework validators Punie offers and we do not (`docs/typed-tools.md`).
#[test]
fn stubs_match_punie() {
    let signatures = fixture_json("tool_signatures.json");
    let tools: Vec<Tool> = Tool::all().collect();
    let mut punie_stubs = signatures["code_mode"]["stubs_text"]
        .as_str()
        .unwrap()
        .to_owned();
    for function in signatures["sandbox_functions"].as_array().unwrap() {
        let name = function["name"].as_str().unwrap();
        if Tool::by_name(name).is_none() {
            let stub = format!("{}\n", function["stub"].as_str().unwrap());
            assert!(punie_stubs.contains(&stub), "{name}");
            punie_stubs = punie_stubs.replace(&stub, "");
        }
    }
    assert_eq!(punie::tools::stubs_text(&tools), punie_stubs);
    let all_stubs = signatures["code_mode"]["stubs_text"].as_str().unwrap();
    assert_eq!(
        punie::tools::code_mode_instructions(&tools),
        signatures["code_mode"]["instructions_text"]
            .as_str()
            .unwrap()
            .replace(all_stubs, &punie_stubs)
    );
}

struct Workspace {
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
}

fn workspace() -> Workspace {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "alpha\n").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
    Workspace { root, outside }
}

fn run(sandbox: &mut Sandbox, host: &dyn ToolHost, code: &str) -> SandboxResult {
    sandbox.execute(code, host, &CancelFlag::default(), &mut |_| {})
}

#[track_caller]
fn check_error(res: &SandboxResult, types: &[&str]) {
    let got = res
        .error
        .as_ref()
        .map(|err| err.type_name.as_str())
        .unwrap_or("<none>");
    assert!(
        !res.ok && types.contains(&got),
        "want {types:?}, got ok={} {:?} output={:?}",
        res.ok,
        res.error,
        res.output
    );
}

#[track_caller]
fn check_recovers(sandbox: &mut Sandbox, host: &dyn ToolHost) {
    let res = run(sandbox, host, "print(6 * 7)");
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "42\n");
}

/// A refused snippet gets the Python exception it would see, naming the rule (the red-team
/// corpus checks that the attacks fail; this checks what the model is told).
#[test]
fn refusals_name_the_rule() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let cases: &[(&str, &str, &str)] = &[
        ("import os", "ImportError", "except json"),
        ("from json import decoder", "ImportError", "loads, dumps"),
        (
            "class A:\n    pass",
            "PermissionError",
            "class definitions are not allowed",
        ),
        (
            "x = '{0.__class__}'.format(0)",
            "PermissionError",
            "use an f-string",
        ),
        (
            "print((0).__class__)",
            "PermissionError",
            "attribute '.__class__'",
        ),
        (
            "read_file.cache = 1",
            "PermissionError",
            "cannot be changed",
        ),
        ("def g():\n    yield 1", "PermissionError", "generators"),
        ("t = type(0)", "NameError", "name 'type' is not defined"),
        (
            "print(__builtins__)",
            "NameError",
            "belong to the interpreter",
        ),
        ("getattr(0, 'real')", "NameError", "name 'getattr'"),
    ];
    for (code, type_name, text) in cases {
        let res = run(&mut sandbox, &host, code);
        let err = res.error.as_ref().expect(code);
        assert_eq!(err.type_name, *type_name, "{code}: {err}");
        assert!(err.message.contains(text), "{code}: {err}");
        assert!(err.line.is_some(), "{code}: {err:?}");
    }
    let res = run(
        &mut sandbox,
        &host,
        "import json\nfrom json import loads as parse\nprint(parse('[1]'), json.dumps({'a': 1}))",
    );
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "[1] {\"a\": 1}\n");
    check_recovers(&mut sandbox, &host);
}

/// Each bomb is stopped (a timeout, memory or recursion error, not a hang) and the next
/// snippet runs. The bound on the time is a guard against a hang, not a timing claim: with the
/// whole suite on two cores a 1 s limit was once seen to end after 1.30 s; how soon a snippet
/// is stopped is measured by `punie bench --only sandbox` (docs/benchmarks.md).
#[test]
fn resource_bombs_are_stopped() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let limits = quick_limits();
    let budget = Duration::from_millis(limits.timeout_ms + 5_000);
    let mut sandbox = sandbox(limits);
    let bombs: &[(&str, &[&str])] = &[
        ("while True:\n    pass", &["TimeoutError"]),
        (
            "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass",
            &["TimeoutError"],
        ),
        ("x = 'a' * 10**10", &["MemoryError", "OverflowError"]),
        ("x = [0] * 10**9", &["MemoryError", "OverflowError"]),
        (
            "x = 10**10**10",
            &["MemoryError", "TimeoutError", "OverflowError"],
        ),
        (
            "l = []\nwhile True:\n    l.append('x' * 1000000)",
            &["MemoryError", "TimeoutError"],
        ),
        ("def f():\n    return f()\nf()", &["RecursionError"]),
        (
            "x = []\nfor i in range(10**6):\n    x = [x]\nprint(len(str(x)))",
            &["RecursionError", "MemoryError", "TimeoutError"],
        ),
        (&"(".repeat(100_000), &["SyntaxError"]),
        ("while True:\n    print('flood' * 100)", &["TimeoutError"]),
    ];
    for (code, types) in bombs {
        let start = Instant::now();
        let res = run(&mut sandbox, &host, code);
        let elapsed = start.elapsed();
        check_error(&res, types);
        assert!(elapsed <= budget, "{:.40}: took {elapsed:?}", code);
        check_recovers(&mut sandbox, &host);
    }
}

/// The nesting limits are CPython's (200 brackets, f-strings' fields included; 99 blocks; an
/// expression 3,000 deep), checked on the tokens before any parser recurses: the deepest
/// snippet they accept runs, one level more is a `SyntaxError` that names the limit, and the
/// worker never overflows its stack.
#[test]
fn snippets_nest_as_deep_as_cpython_allows() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let snippet = |blocks: usize, fields: usize, minuses: usize| {
        let nested: String = (0..blocks)
            .map(|level| format!("{}if True:\n", " ".repeat(level)))
            .collect();
        format!(
            "{nested}{}print({}{}1{})\n",
            " ".repeat(blocks),
            "f\"{".repeat(fields),
            "-".repeat(minuses),
            "}\"".repeat(fields),
        )
    };
    let deepest = run(&mut sandbox, &host, &snippet(99, 199, 2_800 - 199));
    assert!(deepest.ok, "{:?}", deepest.error);
    assert_eq!(deepest.output, "-1\n");
    for (code, limit) in [
        (snippet(100, 1, 1), "too many levels of indentation"),
        (snippet(0, 200, 1), "too many nested parentheses"),
        (snippet(0, 1, 3_000), "expression too deeply nested"),
    ] {
        let res = run(&mut sandbox, &host, &code);
        let error = res.error.expect("refused");
        assert_eq!(error.type_name, "SyntaxError");
        assert!(error.message.starts_with(limit), "{}", error.message);
        check_recovers(&mut sandbox, &host);
    }
}

#[test]
fn output_and_tool_calls_are_capped() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(SandboxLimits {
        output_kb: 1,
        max_tool_calls: 5,
        ..quick_limits()
    });
    let res = run(
        &mut sandbox,
        &host,
        "for i in range(10000):\n    print('0123456789')",
    );
    assert!(res.ok && res.output_truncated, "{:?}", res.error);
    assert!(
        res.output.len() < 1200 && res.output.ends_with("KB]"),
        "{}",
        res.output
    );
    let res = run(
        &mut sandbox,
        &host,
        "for i in range(10):\n    read_file('a.txt')",
    );
    check_error(&res, &["RuntimeError"]);
    assert_eq!(res.tool_calls.iter().filter(|call| call.ok).count(), 5);
}

#[test]
fn paths_stay_in_the_workspace() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let secret = ws.outside.path().join("secret.txt").display().to_string();
    let escapes = [
        "read_file('../secret.txt')".to_owned(),
        format!("read_file({secret:?})"),
        "read_file('/etc/passwd')".to_owned(),
        "read_file('out/secret.txt')".to_owned(),
        "read_file('newdir/../../x')".to_owned(),
        "write_file('out/new.txt', 'x')".to_owned(),
        "write_file('../escaped.txt', 'x')".to_owned(),
    ];
    for code in &escapes {
        let res = run(&mut sandbox, &host, code);
        check_error(&res, &["PermissionError"]);
        assert!(!res.output.contains("secret"));
    }
    check_error(
        &run(&mut sandbox, &host, "read_file('a\\0b')"),
        &["ValueError"],
    );
    assert!(!ws.outside.path().join("new.txt").exists());
    assert!(
        !ws.root
            .path()
            .parent()
            .unwrap()
            .join("escaped.txt")
            .exists()
    );

    let res = run(
        &mut sandbox,
        &host,
        "print(write_file('src/new.py', 'x = 1\\n'))\nprint(read_file('src/new.py'))",
    );
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "File written successfully\nx = 1\n\n");
    let res = run(
        &mut sandbox,
        &host,
        "try:\n    read_file('missing.txt')\nexcept FileNotFoundError as e:\n    print('missing:', e)",
    );
    assert!(
        res.ok && res.output.contains("missing.txt"),
        "{:?} {}",
        res.error,
        res.output
    );
}

#[cfg(unix)]
#[test]
fn commands_have_no_shell_and_need_permission() {
    let ws = workspace();
    let denied = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let allowed = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: true,
    };
    let mut sandbox = sandbox(quick_limits());
    let res = run(&mut sandbox, &denied, "run_command('ls')");
    check_error(&res, &["PermissionError"]);
    let res = run(
        &mut sandbox,
        &denied,
        "try:\n    run_command('ls')\nexcept PermissionError:\n    print('denied')",
    );
    assert_eq!(res.output, "denied\n");

    let res = run(
        &mut sandbox,
        &allowed,
        "print(run_command(\"echo hi; touch pwned && ls | wc > out.txt $(id) `id`\"))",
    );
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(
        res.output,
        "hi; touch pwned && ls | wc > out.txt $(id) `id`\n\n"
    );
    assert!(!ws.root.path().join("pwned").exists());
    let res = run(
        &mut sandbox,
        &allowed,
        "print(run_command('cat', args=['a.txt'], cwd='.'))",
    );
    assert_eq!(res.output, "alpha\n\n");
    let res = run(&mut sandbox, &allowed, "run_command('ls', cwd='..')");
    check_error(&res, &["PermissionError"]);
    let res = run(
        &mut sandbox,
        &allowed,
        "run_command(\"grep 'unbalanced .\")",
    );
    check_error(&res, &["ValueError"]);
}

/// A host that takes `wait` to answer each permission question (a user reading a dialog),
/// then allows the call.
struct SlowToAnswer {
    disk: DiskToolHost,
    wait: Duration,
}

impl ToolHost for SlowToAnswer {
    fn workspace_root(&self) -> &Path {
        self.disk.workspace_root()
    }

    fn permit(&self, request: &ToolRequest, _cancel: &CancelFlag) -> Ruling {
        std::thread::sleep(self.wait);
        punie::policy::rule(
            request,
            &punie::policy::Verdict::Allow { session: None },
            None,
        )
    }
}

/// The time limit bounds everything the snippet causes: a command that would outlive it is
/// stopped at it, and a snippet that keeps calling tools is stopped at it; only the user's
/// time to answer a permission question does not count.
#[cfg(unix)]
#[test]
fn the_time_limit_bounds_tool_calls() {
    let ws = workspace();
    let disk = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: true,
    };
    let mut sandbox = sandbox(SandboxLimits {
        timeout_ms: 1_000,
        ..quick_limits()
    });
    // Generous against a loaded machine; what it catches is a command's 20 s.
    let bound = Duration::from_secs(6);
    for code in [
        "run_command('sleep 20')",
        "for i in range(3):\n    run_command('sleep', args=['0.4'])",
        "while True:\n    try:\n        read_file('a.txt')\n    except Exception:\n        pass",
    ] {
        let start = Instant::now();
        let res = run(&mut sandbox, &disk, code);
        check_error(&res, &["TimeoutError"]);
        assert!(start.elapsed() < bound, "{code}: {:?}", start.elapsed());
        assert!(
            res.tool_calls.len() <= quick_limits().max_tool_calls + 1,
            "{code}: {} records",
            res.tool_calls.len()
        );
        check_recovers(&mut sandbox, &disk);
    }
    let slow = SlowToAnswer {
        disk,
        wait: Duration::from_millis(1_500),
    };
    let res = run(&mut sandbox, &slow, "print(read_file('a.txt'))");
    assert!(
        res.ok,
        "a permission wait is not the snippet's time: {:?}",
        res.error
    );
    assert_eq!(res.output, "alpha\n\n");
}

/// What the parent keeps of a call is bounded: long arguments as size and digest, errors cut.
#[test]
fn records_keep_sizes_and_digests() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let res = run(
        &mut sandbox,
        &host,
        "write_file('big.txt', 'x' * 100000)\ntry:\n    read_file('missing' * 10000)\nexcept Exception as e:\n    print(len(str(e)) < 9000)",
    );
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.output, "True\n");
    assert_eq!(res.tool_calls[0].args["path"], "big.txt");
    assert_eq!(res.tool_calls[0].args["content"]["bytes"], 100_000);
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest("x".repeat(100_000).as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    assert_eq!(res.tool_calls[0].args["content"]["sha256"], digest);
    assert_eq!(
        std::fs::read(ws.root.path().join("big.txt")).unwrap().len(),
        100_000
    );
    let error = res.tool_calls[1].error.as_deref().unwrap();
    assert!(
        error.len() < 9_000 && error.contains("message truncated"),
        "{error:.200}"
    );
    assert!(res.tool_calls[1].args.to_string().len() < 200);
}

/// A FIFO in the workspace is refused, not read: reading it would wait forever.
#[cfg(unix)]
#[test]
fn reads_of_fifos_are_refused() {
    let ws = workspace();
    let fifo = ws.root.path().join("pipe");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let res = run(&mut sandbox, &host, "read_file('pipe')");
    check_error(&res, &["PermissionError"]);
    assert!(res.error.unwrap().message.contains("not a regular file"));
    let res = run(&mut sandbox, &host, "print(write_file('pipe', 'x'))");
    assert!(res.ok, "{:?}", res.error);
}

/// Opening a file can act before a byte is read: `/dev/watchdog` starts the countdown to a
/// reboot, a serial port resets the board on it. A FIFO shows whether it was opened: a writer
/// waiting to open it wakes when a reader opens it, even for an instant. `read_file` and
/// `write_file` of a FIFO in the workspace (as of a device node a tarball extracted as root
/// holds) are refused, by the real server, without opening it.
#[cfg(target_os = "linux")]
#[test]
fn what_is_not_a_regular_file_is_never_opened() {
    for call in ["read_file('pipe')", "write_file('pipe', 'x')"] {
        let ws = workspace();
        let fifo = ws.root.path().join("pipe");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // A second name for the FIFO, outside the workspace: `write_file` replaces the first.
        let other_name = ws.outside.path().join("pipe");
        std::fs::hard_link(&fifo, &other_name).unwrap();
        let writer = FifoWriter::wait_on(&other_name);

        let mut command = std::process::Command::new("timeout");
        command
            .arg("60")
            .arg(punie_exe())
            .arg("sandbox")
            .arg("--workspace")
            .arg(ws.root.path());
        let snippet =
            format!("try:\n    print({call})\nexcept Exception as e:\n    print(repr(e))");
        let out = crate::support::output_with_input(command, &snippet);
        assert!(out.status.success(), "{call}: {out:?}");
        let res: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(res["ok"], true, "{call}: {res}");
        if call.starts_with("read_file") {
            let output = res["output"].as_str().unwrap();
            assert!(output.contains("not a regular file: 'pipe'"), "{res}");
        }
        assert!(!writer.woken(), "{call}: the server opened the FIFO: {res}");

        // The probe works: a reader's open wakes the writer.
        writer.release(&other_name);
    }
}

/// A thread blocked in `open(fifo, O_WRONLY)`, which returns once anyone opens the FIFO to
/// read, and only then.
#[cfg(target_os = "linux")]
struct FifoWriter {
    thread: std::thread::JoinHandle<()>,
    tid: libc::pid_t,
    opened: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(target_os = "linux")]
impl FifoWriter {
    /// Starts the writer and returns once it sleeps in its `open`.
    fn wait_on(fifo: &Path) -> FifoWriter {
        use std::sync::atomic::{AtomicBool, Ordering};
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        let opened = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let opened = opened.clone();
            move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                // SAFETY: open reads the NUL-terminated path we own.
                let fd = unsafe { libc::open(name.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                assert!(fd >= 0, "{}", std::io::Error::last_os_error());
                opened.store(true, Ordering::SeqCst);
                // SAFETY: `fd` is ours.
                unsafe { libc::close(fd) };
            }
        });
        let writer = FifoWriter {
            thread,
            tid: rx.recv().unwrap(),
            opened,
        };
        while !writer.sleeps_in_open() {
            std::thread::sleep(Duration::from_millis(1));
        }
        writer
    }

    /// Asleep in `openat`: what the kernel says of the thread (`S` in its `stat`, the system
    /// call it is in in its `syscall`).
    fn sleeps_in_open(&self) -> bool {
        let task = format!("/proc/self/task/{}", self.tid);
        let (Ok(stat), Ok(syscall)) = (
            std::fs::read_to_string(format!("{task}/stat")),
            std::fs::read_to_string(format!("{task}/syscall")),
        ) else {
            return false;
        };
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        state.is_some_and(|state| state.starts_with('S'))
            && syscall.split(' ').next() == Some(&libc::SYS_openat.to_string())
    }

    /// Whether a reader opened the FIFO: the wake-up makes the thread runnable at once, in
    /// the reader's `open`, so this needs no waiting. Once woken it never sleeps in `open`
    /// again, and it says it opened before it does anything else.
    fn woken(&self) -> bool {
        let asleep = self.sleeps_in_open();
        !asleep || self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn release(self, fifo: &Path) {
        use std::os::unix::fs::OpenOptionsExt;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .unwrap();
        assert!(self.woken());
        self.thread.join().unwrap();
        assert!(self.opened.load(std::sync::atomic::Ordering::SeqCst));
        drop(reader);
    }
}

#[test]
fn tool_events_and_records() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let mut sandbox = sandbox(quick_limits());
    let mut events = Vec::new();
    let res = sandbox.execute(
        "print(read_file('a.txt'))\ntry:\n    read_file('nope.txt')\nexcept Exception:\n    pass",
        &host,
        &CancelFlag::default(),
        &mut |event| events.push(event),
    );
    assert!(res.ok);
    assert_eq!(
        events[0],
        ToolEvent::Started {
            tool: "read_file".to_owned(),
            label: "read_file a.txt".to_owned()
        }
    );
    assert!(
        matches!(&events[3], ToolEvent::Finished { ok: false, error: Some(error), .. } if error.starts_with("FileNotFoundError"))
    );
    assert_eq!(res.tool_calls.len(), 2);
    assert_eq!(res.tool_calls[0].args, serde_json::json!({"path": "a.txt"}));
}

/// A cancel stops a snippet wherever it is: computing (the worker is killed) or waiting on a
/// command (the command and what it started are stopped, none is left). The time limit is two
/// minutes away, so a snippet that returns well before it was stopped by the cancel.
#[test]
fn cancel_stops_a_running_snippet() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: true,
    };
    let time_limit = Duration::from_secs(120);
    let mut sandbox = sandbox(SandboxLimits {
        timeout_ms: time_limit.as_millis() as u64,
        ..quick_limits()
    });
    for (code, command) in [
        ("while True:\n    pass", None),
        (
            "run_command('sh', args=['-c', 'setsid sleep 86561 & sleep 86562'])",
            Some("sleep 8656"),
        ),
    ] {
        let cancel = CancelFlag::default();
        let start = Instant::now();
        let res = std::thread::scope(|scope| {
            scope.spawn(|| {
                // Once the snippet runs: for a command, once its processes are there.
                std::thread::sleep(Duration::from_millis(200));
                while command.is_some_and(|needle| {
                    crate::jail::processes_matching(needle).is_empty()
                        && start.elapsed() < time_limit / 2
                }) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                cancel.cancel();
            });
            sandbox.execute(code, &host, &cancel, &mut |_| {})
        });
        check_error(&res, &["KeyboardInterrupt"]);
        assert!(
            start.elapsed() < time_limit / 2,
            "{code}: {:?}",
            start.elapsed()
        );
        if let Some(needle) = command {
            assert_eq!(res.tool_calls.len(), 1, "{code}");
            assert_eq!(
                crate::jail::processes_matching(needle),
                Vec::<String>::new()
            );
        }
        check_recovers(&mut sandbox, &host);
    }
}

/// Arbitrary bytes and token soup as snippets never panic or hang the host.
#[test]
fn fuzz_snippets_never_hang_or_panic() {
    let ws = workspace();
    let host = DiskToolHost {
        root: ws.root.path().to_path_buf(),
        allow_commands: false,
    };
    let limits = SandboxLimits {
        timeout_ms: 500,
        ..quick_limits()
    };
    let budget = Duration::from_millis(limits.timeout_ms + 5_000);
    let mut sandbox = sandbox(limits);
    const TOKENS: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ":",
        "\n",
        "    ",
        "x",
        "=",
        "1",
        "'a'",
        "\"\\x\"",
        "+",
        "*",
        "**",
        "for",
        "in",
        "while",
        "if",
        "else",
        "def",
        "lambda",
        "return",
        "yield",
        "try",
        "except",
        "print",
        "read_file",
        "json",
        ".",
        ",",
        "__",
        "class",
        "import",
        "not",
        "#",
        "\\",
        "f'{x}'",
        "10**9",
        "None",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..60 {
        let len = (next() % 200) as usize;
        let code = if round % 2 == 0 {
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..len)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let start = Instant::now();
        let res = run(&mut sandbox, &host, &code);
        assert!(
            start.elapsed() <= budget,
            "{code:?} took {:?}",
            start.elapsed()
        );
        assert!(res.ok || res.error.is_some());
    }
    check_recovers(&mut sandbox, &host);
}

/// `punie sandbox --workspace WORKSPACE EXTRA…` with `code` on stdin (and `HOME`, when
/// given): its whole output.
fn sandbox_cli(
    workspace: &Path,
    code: &str,
    extra: &[&str],
    home: Option<&Path>,
) -> std::process::Output {
    use std::io::Write;
    let mut command = std::process::Command::new(punie_exe());
    command
        .arg("sandbox")
        .arg("--workspace")
        .arg(workspace)
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(home) = home {
        command.env("HOME", home);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `punie sandbox` prints the §3 object and exits 0 whether the snippet succeeded or not.
#[test]
fn cli_prints_the_result_object() {
    let ws = workspace();
    let run_cli = |code: &str, extra: &[&str]| -> Value {
        let out = sandbox_cli(ws.root.path(), code, extra, None);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let res = run_cli("print(read_file('a.txt'))", &[]);
    assert_eq!(res["ok"], true);
    assert_eq!(res["output"], "alpha\n\n");
    assert_eq!(res["error"], Value::Null);
    assert_eq!(
        res["tool_calls"][0],
        serde_json::json!({"tool": "read_file", "args": {"path": "a.txt"}, "ok": true})
    );
    assert!(res["elapsed_ms"].is_u64());
    let res = run_cli("while True: pass", &["--timeout-ms", "300"]);
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["type"], "TimeoutError");
    let res = run_cli("run_command('ls')", &[]);
    assert_eq!(res["error"]["type"], "PermissionError");
    let res = run_cli("print(run_command('ls'))", &["--allow-commands"]);
    assert!(res["output"].as_str().unwrap().contains("a.txt"));
    // A limit past the sandbox's own cap is refused, not quietly lowered.
    let out = sandbox_cli(ws.root.path(), "", &["--memory-mb", "65536"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--memory-mb 65536: expected a number from 1 to 16384"),
        "{stderr}"
    );
}

/// With the home folder as the workspace (an editor opened on `~`), the secrets the command
/// jail never shows are not handed over by the tools either: not read, in any spelling or
/// through a link, and not written.
#[test]
fn secrets_in_a_home_workspace_are_never_read_or_written() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    std::fs::create_dir_all(root.join(".ssh")).unwrap();
    std::fs::create_dir_all(root.join(".aws")).unwrap();
    std::fs::write(root.join(".ssh/id_rsa"), "SSH-KEY-d41d8cd9\n").unwrap();
    std::fs::write(root.join(".aws/credentials"), "AWS-SECRET-8f00b204\n").unwrap();
    std::fs::write(root.join("notes.txt"), "ordinary\n").unwrap();
    std::os::unix::fs::symlink(root.join(".ssh/id_rsa"), root.join("key-link")).unwrap();
    let absolute = root.join(".aws/credentials");
    let code = format!(
        "for p in ['.ssh/id_rsa', './.ssh/../.ssh/id_rsa', 'key-link', {absolute:?}, '.SSH/id_rsa']:\n    try:\n        print(read_file(p))\n    except PermissionError:\n        print('PermissionError')\n    except FileNotFoundError:\n        print('FileNotFoundError')\ntry:\n    write_file('.ssh/authorized_keys', 'ssh-ed25519 AAAA attacker')\nexcept PermissionError:\n    print('PermissionError')\nprint(read_file('notes.txt'))",
        absolute = absolute.display().to_string()
    );
    let out = sandbox_cli(root, &code, &[], Some(root));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains("SSH-KEY-d41d8cd9"), "{printed}");
    assert!(!printed.contains("AWS-SECRET-8f00b204"), "{printed}");
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    let output = res["output"].as_str().unwrap();
    // `.SSH` is another directory on Linux (it does not exist), but its name marks a secret
    // (names compare without case): refused before anyone looks whether it exists.
    assert_eq!(
        output
            .lines()
            .filter(|line| *line == "PermissionError")
            .count(),
        6,
        "{res}"
    );
    assert!(output.contains("ordinary"), "{output}");
    assert!(!root.join(".ssh/authorized_keys").exists());
}

/// With `/` as the workspace (ACP allows it), `/proc` and `/sys` lie inside it, and their
/// files are the kernel's view of every process: the server's environment (the editor's
/// tokens), its memory map. No tool reads them and none writes there, with an error that says
/// why; the server's own environment appears in nothing the run prints.
#[cfg(target_os = "linux")]
#[test]
fn files_of_pseudo_file_systems_are_never_read_or_written() {
    use std::io::Write;
    let marker = format!("ghp_PUNIE_MARKER_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let note = dir.path().canonicalize().unwrap().join("note.txt");
    std::fs::write(&note, "ordinary\n").unwrap();
    let note = note.strip_prefix("/").unwrap().display().to_string();
    let code = format!(
        "for p in ['proc/self/environ', '/proc/self/environ', 'proc/thread-self/environ', \
         'proc/1/environ', 'proc/self/maps', 'sys/kernel/address_bits']:\n    \
         try:\n        print(read_file(p))\n    except PermissionError as e:\n        \
         print('refused', e)\nfor p in ['proc/self/punie-probe', 'sys/kernel/punie-probe/x']:\n    \
         try:\n        write_file(p, 'x')\n    except PermissionError as e:\n        \
         print('refused', e)\nprint(read_file({note:?}))"
    );
    let mut child = std::process::Command::new(punie_exe())
        .args(["sandbox", "--workspace", "/"])
        .env("PUNIE_TEST_MARKER", &marker)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(code.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(&marker), "{printed}");
    assert!(out.status.success(), "{printed}");
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    let output = res["output"].as_str().unwrap();
    let refused: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("refused"))
        .collect();
    assert_eq!(refused.len(), 8, "{output}");
    for line in &refused[..5] {
        assert!(line.contains("is on a pseudo file system (proc)"), "{line}");
    }
    for line in [refused[5], refused[7]] {
        assert!(
            line.contains("is on a pseudo file system (sysfs)"),
            "{line}"
        );
    }
    assert!(
        refused[6].contains("is on a pseudo file system (proc)"),
        "{output}"
    );
    // The workspace itself is readable: the refusals are the file systems', not the root's.
    assert!(output.ends_with("ordinary\n\n"), "{output}");
    assert!(!Path::new("/sys/kernel/punie-probe").exists());
}

/// A command that fills the disk is stopped long before its deadline, with an error saying
/// so. The workspace is a 64 MiB tmpfs in a mount namespace of its own (`unshare`), so
/// the test fills nothing real and needs no root (Linux: `unshare` and tmpfs).
#[cfg(target_os = "linux")]
#[test]
fn a_command_that_fills_the_disk_is_stopped() {
    let res = sandbox_with_a_small_disk(
        "print(run_command('sh', args=['-c', 'while true; do head -c 1048576 /dev/zero >> big; done']))",
        |small, snippet| {
            format!(
                "{punie} sandbox --workspace {small} --allow-commands --timeout-ms 60000 < {snippet}",
                punie = punie_exe().display(),
            )
        },
    );
    // Without the guard the loop runs to the 60 s limit: a TimeoutError.
    assert_eq!(res["error"]["type"], "OSError", "{res}");
    let message = res["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the command was stopped: it took"),
        "{message}"
    );
}

/// The run's private directory (`TMPDIR`, `HOME`) is made in the server's temporary
/// directory, often a tmpfs (memory): a command that fills it is stopped like one that fills
/// the workspace, before the file system is full. Here that directory is a 64 MiB tmpfs
/// and the workspace is elsewhere; the command leaves a mark there if a write ever fails for
/// want of space, and then waits for its deadline.
#[cfg(target_os = "linux")]
#[test]
fn a_command_that_fills_its_temporary_directory_is_stopped() {
    let ws = tempfile::tempdir().unwrap();
    let res = sandbox_with_a_small_disk(
        "print(run_command('sh', args=['-c', 'while head -c 1048576 /dev/zero >> \"$TMPDIR/big\"; do :; done; echo > tmpdir-full; sleep 60']))",
        |small, snippet| {
            format!(
                "TMPDIR={small} {punie} sandbox --workspace {ws} --allow-commands --timeout-ms 20000 < {snippet}",
                punie = punie_exe().display(),
                ws = ws.path().display(),
            )
        },
    );
    // Without the guard: the file system fills, then a TimeoutError at 20 s.
    assert!(!ws.path().join("tmpdir-full").exists(), "{res}");
    assert_eq!(res["error"]["type"], "OSError", "{res}");
    let message = res["error"]["message"].as_str().unwrap();
    let taken: u64 = message
        .strip_prefix("the command was stopped: it took ")
        .and_then(|rest| rest.split_once(" MiB of space in its temporary directory"))
        .and_then(|(taken, _)| taken.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(taken < 64, "the file system filled: {message}");
}

/// Runs `code` through the shell line `command(small, snippet)` in a mount namespace of its
/// own (`unshare`) where `small` is a fresh 64 MiB tmpfs; the result object `punie sandbox`
/// printed.
#[cfg(target_os = "linux")]
fn sandbox_with_a_small_disk(code: &str, command: impl Fn(&str, &str) -> String) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let snippet = dir.path().join("snippet.py");
    std::fs::write(&snippet, code).unwrap();
    let small = dir.path().join("small-disk");
    std::fs::create_dir(&small).unwrap();
    let small = small.display().to_string();
    let script = format!(
        "mount -t tmpfs -o size=64m tmpfs {small} && {}",
        command(&small, &snippet.display().to_string())
    );
    let out = std::process::Command::new("unshare")
        .args(["-Urm", "sh", "-c", &script])
        .output()
        .expect("unshare runs (util-linux, installed by scripts/bootstrap.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Coverage over the training snippets (figures in docs/sandbox.md): every one passes the
/// allowlist and compiles; none relies on a variable an earlier snippet set (so running each
/// snippet fresh is what the model was trained on); none uses `type`.
#[test]
fn training_snippets_are_runnable() {
    let report =
        punie::sandbox::coverage::report(&crate::support::punie_fixtures().join("phase22_merged"))
            .unwrap();
    eprintln!("{report}");
    assert_eq!(report.total, 439, "{report}");
    assert_eq!(report.runnable, report.total, "{report}");
    assert_eq!(report.multi_snippet_rows, 3, "{report}");
    assert_eq!(report.carried_over, 0, "{report}");
    assert!(!report.names_read.contains_key("type"), "{report}");
}

/// A host that answers every call with plausible text, allows everything, and counts the
/// calls that reached it, by tool.
struct PlausibleTools {
    root: PathBuf,
    calls: Mutex<std::collections::BTreeMap<&'static str, usize>>,
}

impl ToolHost for PlausibleTools {
    fn workspace_root(&self) -> &Path {
        &self.root
    }

    fn permit(&self, request: &ToolRequest, _cancel: &CancelFlag) -> Ruling {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(request.tool.name())
            .or_default() += 1;
        punie::policy::rule(
            request,
            &punie::policy::Verdict::Allow { session: None },
            None,
        )
    }

    fn call_tool(
        &self,
        tool: Tool,
        _args: &Value,
        _cancel: &CancelFlag,
    ) -> Option<Result<Value, ToolError>> {
        let text = match tool.name() {
            "write_file" => "File written successfully",
            "read_file" => "import os\n\ndef main():\n    return 1\n",
            _ => "src/app.py:1:import os\nsrc/util.py:3:def helper():\n",
        };
        Some(Ok(Value::String(text.to_owned())))
    }
}

/// Every distinct training snippet runs, with tools that answer plausibly: none meets a
/// sandbox rule (a refused name, attribute, import or syntax) at run time either. A tool
/// counts as provided only when a call to it ran: every registered tool the snippets name
/// was called through the host.
#[test]
fn training_snippets_run() {
    let rows = punie::sandbox::coverage::training_rows(
        &crate::support::punie_fixtures().join("phase22_merged"),
    )
    .unwrap();
    let mut distinct: Vec<&String> = rows.iter().flatten().collect();
    distinct.sort();
    distinct.dedup();
    let root = tempfile::tempdir().unwrap();
    let host = PlausibleTools {
        root: root.path().to_path_buf(),
        calls: Mutex::default(),
    };
    let mut sandbox = sandbox(SandboxLimits::default());
    let mut refused = Vec::new();
    let mut failed = 0;
    for code in &distinct {
        let res = run(&mut sandbox, &host, code);
        match &res.error {
            None => {}
            Some(err)
                if [
                    "PermissionError",
                    "NameError",
                    "ImportError",
                    "SyntaxError",
                    "SystemError",
                ]
                .contains(&err.type_name.as_str()) =>
            {
                refused.push(format!("{err}: {}", code.lines().next().unwrap_or("")));
            }
            // The canned outputs do not fit every snippet (an int() of a line, an index).
            Some(_) => failed += 1,
        }
    }
    eprintln!(
        "{} distinct training snippets: {} ran to the end, {} raised on the canned outputs, {} met a sandbox rule",
        distinct.len(),
        distinct.len() - failed - refused.len(),
        failed,
        refused.len()
    );
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    let calls = host.calls.into_inner().unwrap();
    let report =
        punie::sandbox::coverage::report(&crate::support::punie_fixtures().join("phase22_merged"))
            .unwrap();
    let named: Vec<&String> = report
        .names_read
        .keys()
        .filter(|name| Tool::by_name(name).is_some())
        .collect();
    eprintln!("tool calls that ran: {calls:?}");
    for name in named {
        assert!(
            calls.get(name.as_str()).is_some_and(|&n| n > 0),
            "{name} is named by the training snippets but no call to it ran: {calls:?}"
        );
    }
}

/// The attribute allowlist's tool-result fields are exactly the fields of Punie's result types.
#[test]
fn result_fields_match_punie_result_types() {
    let signatures = fixture_json("tool_signatures.json");
    let mut fields: Vec<&str> = signatures["result_types"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ty| ty["fields"].as_array().unwrap())
        .map(|field| field["name"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    fields.dedup();
    assert_eq!(fields, punie::sandbox::allowlist::RESULT_FIELDS);
}

/// Overhead of `execute` on a warm worker (the figures `punie bench` reports; the debug
/// build's numbers are in docs/sandbox.md).
#[test]
fn overhead_is_small() {
    let mut sandbox = sandbox(SandboxLimits::default());
    let figures = punie::sandbox::overhead_bench(&mut sandbox, 200).unwrap();
    eprintln!("{figures:?}");
    assert!(figures.trivial_p50_ms < 50.0, "{figures:?}");
}
