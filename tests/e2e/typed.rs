//! The typed tools end to end through `punie sandbox`, against the real ruff, ty, mypy, pytest
//! and git (`scripts/bootstrap.sh` installs all but git into `.venv/`; a missing one fails
//! these tests). The fixture workspace `tests/fixtures/typed` has a lint error, a type error,
//! a passing and a failing test and a class used across files; each test copies it, makes it
//! a git repository and leaves an uncommitted change.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{git, output_with_input};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `PATH` with the set-up's `.venv/bin` first; fails when ruff, ty or pytest is missing.
fn tools_path() -> OsString {
    let bin = repo_root().join(".venv/bin");
    for tool in ["ruff", "ty", "mypy", "pytest"] {
        assert!(
            bin.join(tool).is_file(),
            "{tool} is not installed in {}: run scripts/bootstrap.sh",
            bin.display()
        );
    }
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

fn run(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("PATH", tools_path())
        .output()
        .unwrap_or_else(|err| panic!("{program} could not run: {err}"));
    String::from_utf8(out.stdout).unwrap()
}

/// A copy of the fixture workspace as a git repository with one commit, then a line added
/// to `src/geometry/report.py` and an untracked `notes.txt`.
fn fixture_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dir(&repo_root().join("tests/fixtures/typed"), dir.path());
    git(&["init", "-q", "-b", "main"], dir.path());
    git(&["add", "."], dir.path());
    git(&["commit", "-q", "-m", "Shapes and a report"], dir.path());
    let report = dir.path().join("src/geometry/report.py");
    let mut text = std::fs::read_to_string(&report).unwrap();
    text.push_str("\n\nUNIT = \"cm\"\n");
    std::fs::write(&report, text).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "to do\n").unwrap();
    dir
}

/// Runs `code` with `punie sandbox --allow-commands` and `PATH`; returns its result object.
fn sandbox(workspace: &Path, code: &str, path: &OsString) -> Value {
    sandbox_with_timeout(workspace, code, path, 20_000)
}

fn sandbox_with_timeout(workspace: &Path, code: &str, path: &OsString, timeout_ms: u64) -> Value {
    let timeout_ms = timeout_ms.to_string();
    let args = [
        "sandbox",
        "--allow-commands",
        "--timeout-ms",
        &timeout_ms,
        "--workspace",
        workspace.to_str().unwrap(),
    ];
    serde_json::from_slice(&punie(&args, code, path).stdout).unwrap()
}

/// `punie ARGS` with `input` on stdin and `PATH`; what it printed and how it ended.
fn punie(args: &[&str], input: &str, path: &OsString) -> std::process::Output {
    let mut command = crate::support::punie();
    command.args(args).env("PATH", path);
    output_with_input(command, input)
}

/// The snippet's printed JSON, after checking that it ran.
fn printed(res: &Value) -> Value {
    assert_eq!(res["ok"], json!(true), "{res:#}");
    serde_json::from_str(res["output"].as_str().unwrap().trim()).unwrap()
}

#[test]
fn program_tools_report_what_the_programs_report() {
    let ws = fixture_repository();
    let root = ws.path();
    let res = sandbox(
        root,
        r#"
r = ruff_check(".")
t = typecheck("src/")
p = pytest_run("tests/")
s = git_status(".")
d = git_diff(".")
l = git_log(".", count=5)
print(json.dumps({
    "ruff": [r.success, r.violation_count, r.fixable_count, r.parse_error,
             [[v.file, v.line, v.column, v.code, v.message, v.fixable] for v in r.violations]],
    "ty": [t.success, t.error_count, t.warning_count, t.parse_error,
           [[e.file, e.line, e.column, e.severity, e.code, e.message] for e in t.errors]],
    "checker": t.checker,
    "pytest": [p.success, p.passed, p.failed, p.errors, p.skipped,
               [[c.name, c.outcome, c.message] for c in p.tests]],
    "status": [s.success, s.clean, s.file_count, [[f.file, f.status, f.staged] for f in s.files]],
    "diff": [d.success, d.file_count, d.additions, d.deletions,
             [[f.file, f.additions, f.deletions, f.hunks] for f in d.files]],
    "log": [l.success, l.commit_count, [[c.message, c.author] for c in l.commits]],
}))
"#,
        &tools_path(),
    );
    let got = printed(&res);

    // ruff, field by field against its own JSON report.
    let report: Value = serde_json::from_str(&run(
        "ruff",
        &["check", "--no-cache", "--output-format", "json", "."],
        root,
    ))
    .unwrap();
    let expected: Vec<Value> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|diag| {
            let file = Path::new(diag["filename"].as_str().unwrap());
            json!([
                file.strip_prefix(root.canonicalize().unwrap())
                    .unwrap()
                    .to_str()
                    .unwrap(),
                diag["location"]["row"],
                diag["location"]["column"],
                diag["code"],
                diag["message"],
                diag["fix"]["applicability"] == json!("safe"),
            ])
        })
        .collect();
    assert_eq!(
        expected.len(),
        1,
        "the fixture has one lint error: {report:#}"
    );
    assert_eq!(got["ruff"], json!([false, 1, 1, null, expected]));

    // ty, against its SARIF report.
    let sarif: Value = serde_json::from_str(&run(
        "ty",
        &["check", "--output-format", "sarif", "src/"],
        root,
    ))
    .unwrap();
    let expected: Vec<Value> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|diag| {
            let location = &diag["locations"][0]["physicalLocation"];
            let uri = location["artifactLocation"]["uri"].as_str().unwrap();
            let file = Path::new(uri.strip_prefix("file://").unwrap());
            json!([
                file.strip_prefix(root.canonicalize().unwrap())
                    .unwrap()
                    .to_str()
                    .unwrap(),
                location["region"]["startLine"],
                location["region"]["startColumn"],
                diag["level"],
                diag["ruleId"],
                diag["message"]["text"],
            ])
        })
        .collect();
    assert_eq!(
        expected.len(),
        1,
        "the fixture has one type error: {sarif:#}"
    );
    assert_eq!(expected[0][4], json!("invalid-assignment"));
    assert_eq!(got["ty"], json!([false, 1, 0, null, expected]));
    assert_eq!(got["checker"], json!("ty"));

    // pytest: the fixture's one passing and one failing test.
    let pytest = &got["pytest"];
    assert_eq!(
        pytest.as_array().unwrap()[0..5],
        [json!(false), json!(1), json!(1), json!(0), json!(0)]
    );
    assert_eq!(
        pytest[5][0],
        json!(["tests/test_shapes.py::test_area", "passed", null])
    );
    assert_eq!(pytest[5][1][0], "tests/test_shapes.py::test_total_area");
    assert_eq!(pytest[5][1][1], "failed");
    assert!(
        pytest[5][1][2]
            .as_str()
            .unwrap()
            .starts_with("assert 5 == 6"),
        "{pytest}"
    );

    // git, against its porcelain and numstat.
    assert_eq!(
        run("git", &["status", "--porcelain=v1"], root),
        " M src/geometry/report.py\n?? notes.txt\n"
    );
    assert_eq!(
        got["status"],
        json!([
            true,
            false,
            2,
            [
                ["src/geometry/report.py", "modified", false],
                ["notes.txt", "untracked", false]
            ]
        ])
    );
    assert_eq!(
        run("git", &["diff", "--numstat"], root),
        "3\t0\tsrc/geometry/report.py\n"
    );
    assert_eq!(
        got["diff"].as_array().unwrap()[0..4],
        [json!(true), json!(1), json!(3), json!(0)]
    );
    let hunks = &got["diff"][4][0][3];
    assert!(
        hunks[0].as_str().unwrap().starts_with("@@ -13,3 +13,6 @@"),
        "{hunks}"
    );
    assert_eq!(
        got["log"],
        json!([true, 1, [["Shapes and a report", "Punie Test"]]])
    );
}

/// The fixture plus a component that breaks tdom's rules and a function that shares the
/// class's name; the position of `Square` in `total_area`'s signature.
fn navigation_workspace() -> (tempfile::TempDir, usize, usize) {
    let ws = fixture_repository();
    let root = ws.path();
    std::fs::write(
        root.join("src/geometry/view.py"),
        "class Badge:\n    def __call__(self):\n        return html(f\"<b>{self.text}</b>\")\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/geometry/other.py"),
        "def Square():\n    return 0\n",
    )
    .unwrap();
    let report_py = std::fs::read_to_string(root.join("src/geometry/report.py")).unwrap();
    let (line, text) = report_py
        .lines()
        .enumerate()
        .find(|(_, line)| line.starts_with("def total_area"))
        .unwrap();
    let column = text.find("Square").unwrap() + 1;
    (ws, line + 1, column)
}

/// The five navigation calls at `Square`, printed as JSON.
fn navigation_snippet(line: usize, column: usize) -> String {
    format!(
        r#"
g = goto_definition("src/geometry/report.py", {line}, {column}, "Square")
f = find_references("src/geometry/report.py", {line}, {column}, "Square")
h = hover("src/geometry/report.py", {line}, {column}, "Square")
ds = document_symbols("src/geometry/shapes.py")
ws = workspace_symbols("squ")
print(json.dumps({{
    "answered_by": sorted(set([g.answered_by, f.answered_by, h.answered_by, ds.answered_by, ws.answered_by])),
    "goto": [g.success, [[l.file, l.line, l.column, l.end_line, l.end_column, l.preview] for l in g.locations]],
    "refs": [f.reference_count, sorted([r.file + ":" + str(r.line) + ":" + str(r.column) for r in f.references])],
    "hover": [h.success, h.language, h.content],
    "symbols": [ds.symbol_count, [[s.name, s.kind, s.line, s.end_line, [c.name for c in s.children]] for s in ds.symbols]],
    "workspace": sorted([[s.name, s.kind, s.file, s.line] for s in ws.symbols]),
}}))
"#
    )
}

/// The references both back ends find: every use of the class `Square`.
const CLASS_REFERENCES: [&str; 8] = [
    "src/geometry/report.py:13:22",
    "src/geometry/report.py:5:29",
    "src/geometry/report.py:8:29",
    "src/geometry/shapes.py:4:7",
    "tests/test_shapes.py:10:24",
    "tests/test_shapes.py:10:35",
    "tests/test_shapes.py:2:29",
    "tests/test_shapes.py:6:12",
];

/// With ty installed, `ty server` answers, inside the jail: references are those of the
/// class (not the function that shares its name), hover is ty's, the server sees files the
/// snippet writes, and it answers a definition in the standard library.
#[test]
fn navigation_is_answered_by_the_language_server() {
    let (ws, line, column) = navigation_workspace();
    let root = ws.path();
    let code = format!(
        r#"{}
write_file("src/geometry/extra.py", "class Squid:\n    pass\n")
after = workspace_symbols("squ")
builtin = goto_definition("src/geometry/report.py", {line}, {}, "list")
print(json.dumps([sorted([s.name + ":" + s.file for s in after.symbols]),
                  [[l.file, l.preview] for l in builtin.locations]]))
"#,
        navigation_snippet(line, column),
        column - 5,
    );
    let res = sandbox(root, &code, &tools_path());
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    let mut lines = output.lines();
    let got: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(got["answered_by"], json!(["ty server"]));
    assert_eq!(
        got["goto"],
        json!([
            true,
            [["src/geometry/shapes.py", 4, 7, 4, 13, "class Square:"]]
        ])
    );
    assert_eq!(got["refs"], json!([8, CLASS_REFERENCES]));
    assert_eq!(
        got["hover"],
        json!([
            true,
            "plaintext",
            "Square\n---------------------------------------------\nA square with sides of `side`.\n"
        ])
    );
    assert_eq!(
        got["symbols"],
        json!([3, [["Square", 5, 4, 11, ["__init__", "area"]]]])
    );
    assert_eq!(
        got["workspace"],
        json!([
            ["Square", 5, "src/geometry/shapes.py", 4],
            ["Square", 12, "src/geometry/other.py", 1]
        ])
    );
    let later: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        later,
        json!([
            [
                "Square:src/geometry/other.py",
                "Square:src/geometry/shapes.py",
                "Squid:src/geometry/extra.py"
            ],
            [["typeshed/stdlib/builtins.pyi", null]]
        ])
    );
    assert_no_process(None, root);
}

/// A line or column the model cannot mean (below 1, `-2**63`, a line past the end of the
/// file) is a `ValueError` naming it, from the three position tools alike, where `-2**63`
/// once overflowed a subtraction and aborted the server; a column past the end of its line
/// still finds the symbol on that line, and the server answers afterwards.
#[test]
fn out_of_range_positions_are_clear_errors() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("app.py"), "x = 1\nprint(x)\n").unwrap();
    let code = r#"
out = []
for line, column in [(1, -2**63), (-2**63, 1), (1, -1), (0, 1), (1, 0), (2**63 - 1, 1), (3, 1)]:
    for tool in [goto_definition, find_references, hover]:
        try:
            tool("app.py", line, column, "x")
            out.append("answered")
        except ValueError as err:
            out.append(str(err))
print(json.dumps(out))
print(json.dumps([hover("app.py", 1, 2**63 - 1, "x").content, hover("app.py", 2, 7, "x").content]))
"#;
    let res = sandbox(ws.path(), code, &tools_path());
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    let mut lines = output.lines();
    let errors: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let expected: Vec<String> = [
        "column must be 1 or more (lines and columns count from 1), not -9223372036854775808",
        "line must be 1 or more (lines and columns count from 1), not -9223372036854775808",
        "column must be 1 or more (lines and columns count from 1), not -1",
        "line must be 1 or more (lines and columns count from 1), not 0",
        "column must be 1 or more (lines and columns count from 1), not 0",
        "line 9223372036854775807 is past the end of 'app.py' (2 lines)",
        "line 3 is past the end of 'app.py' (2 lines)",
    ]
    .iter()
    .flat_map(|error| [error.to_string(), error.to_string(), error.to_string()])
    .collect();
    assert_eq!(errors, expected, "{res:#}");
    let answers: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(answers, json!(["Literal[1]", "Literal[1]"]), "{res:#}");
    assert_no_process(None, ws.path());
}

/// `PATH` without the set-up's `.venv/bin`: git and the system's programs only.
fn system_path() -> OsString {
    OsString::from("/usr/local/bin:/usr/bin:/bin")
}

/// Without a language server the parser answers, and says so; the concrete-syntax tools and
/// the validators need no program at all.
#[test]
fn navigation_without_a_language_server_uses_the_parser() {
    let (ws, line, column) = navigation_workspace();
    let root = ws.path();
    let report_py = std::fs::read_to_string(root.join("src/geometry/report.py")).unwrap();
    let code = format!(
        r#"{}
cf = cst_find_pattern("src/geometry/shapes.py", "FunctionDef")
rn = cst_rename("src/geometry/shapes.py", "Square", "Box")
written = write_file("src/geometry/shapes.py", rn.modified_source)
ai = cst_add_import("src/geometry/report.py", "from typing import Optional")
vc = validate_component("src/geometry/view.py")
ve = validate_escape_context("src/geometry/view.py")
print(json.dumps({{
    "find": [[m.line, m.column, m.code_snippet, m.node_type] for m in cf.matches],
    "rename": [rn.success, rn.rename_count, written],
    "import": [ai.success, ai.import_added, ai.modified_source],
    "component": [vc.valid, vc.domain, [[i.rule, i.severity] for i in vc.issues]],
    "escape": [ve.valid, [i.rule for i in ve.issues]],
}}))
"#,
        navigation_snippet(line, column)
    );
    let res = sandbox(root, &code, &system_path());
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    let mut lines = output.lines();
    let got: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(got["answered_by"], json!(["punie-parser"]));
    assert_eq!(
        got["goto"],
        json!([
            true,
            [["src/geometry/shapes.py", 4, 7, 4, 13, "class Square:"]]
        ])
    );
    // Every spelling of the name: the class's uses and the function that shares its name.
    let mut refs: Vec<&str> = CLASS_REFERENCES.to_vec();
    refs.push("src/geometry/other.py:1:5");
    refs.sort_unstable();
    assert_eq!(got["refs"], json!([9, refs]));
    assert_eq!(
        got["hover"],
        json!([
            true,
            "python",
            "class Square:\n\nA square with sides of `side`."
        ])
    );
    assert_eq!(
        got["symbols"],
        json!([3, [["Square", 5, 4, 11, ["__init__", "area"]]]])
    );
    assert_eq!(
        got["workspace"],
        json!([
            ["Square", 5, "src/geometry/shapes.py", 4],
            ["Square", 12, "src/geometry/other.py", 1]
        ])
    );
    let got: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        got["find"],
        json!([
            [
                7,
                4,
                "def __init__(self, side: float) -> None:",
                "FunctionDef"
            ],
            [10, 4, "def area(self) -> float:", "FunctionDef"]
        ])
    );
    // The rename reached the disk through write_file, everything else byte for byte.
    assert_eq!(got["rename"], json!([true, 1, "File written successfully"]));
    let original =
        std::fs::read_to_string(repo_root().join("tests/fixtures/typed/src/geometry/shapes.py"))
            .unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("src/geometry/shapes.py")).unwrap(),
        original.replace("class Square:", "class Box:")
    );
    assert_eq!(
        got["import"],
        json!([
            true,
            true,
            report_py.replace(
                "from geometry.shapes import Square\n",
                "from geometry.shapes import Square\nfrom typing import Optional\n"
            )
        ])
    );
    assert_eq!(
        got["component"],
        json!([
            false,
            "tdom",
            [
                ["component-must-have-dataclass", "error"],
                ["component-callable-must-return-node", "warning"],
                ["component-no-fstring-in-html", "error"]
            ]
        ])
    );
    assert_eq!(got["escape"], json!([false, ["no-fstring-in-html"]]));
}

/// Navigation reads only what `read_file` may. A cloned repository's links out of the
/// workspace (a module linked to the credentials in the home, a package linked to another
/// project) are no definition: their text is in nothing printed. Links to `/proc` files that
/// never end or block, and to a FIFO, are no definition either, not a read: the snippet ends
/// within its limit, the server stays within a capped address space (a read that grows past
/// it fails the run instead of the machine), and a definition inside the workspace is still
/// found after them.
#[cfg(target_os = "linux")]
#[test]
fn navigation_reads_nothing_a_link_leads_to() {
    use std::os::unix::fs::symlink;
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    let outside = tempfile::tempdir().unwrap();
    let secret = "SECRET7c41b2d9e0";
    let other = "OTHERPROJ5a8e3f";
    let aws = outside.path().join("home/.aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!("aws_secret_access_key = \"{secret}\"\n"),
    )
    .unwrap();
    let project = outside.path().join("otherproj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("settings.py"), format!("X = \"{other}\"\n")).unwrap();
    symlink(aws.join("credentials"), root.join("aws_cfg.py")).unwrap();
    symlink(&project, root.join("pkg")).unwrap();
    symlink("/proc/self/pagemap", root.join("pm.py")).unwrap();
    symlink("/proc/kmsg", root.join("kmsg.py")).unwrap();
    let fifo = std::ffi::CString::new(root.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    symlink("pipe", root.join("fifo.py")).unwrap();
    std::fs::write(
        root.join("app.py"),
        "from aws_cfg import aws_secret_access_key\nfrom pkg.settings import X\nfrom pm import pages\nfrom kmsg import k\nfrom fifo import data\n\ndef local():\n    return 1\n",
    )
    .unwrap();
    // Where each import's name is spelled in app.py: line, column, name.
    let secrets = [(1, 21, "aws_secret_access_key"), (2, 26, "X")];
    let specials = [(3, 16, "pages"), (4, 18, "k"), (5, 18, "data")];
    for (names, markers) in [
        (&secrets[..], &[secret, other][..]),
        (&specials[..], &[][..]),
    ] {
        let calls: Vec<String> = names
            .iter()
            .map(|(line, column, name)| format!("({line}, {column}, {name:?})"))
            .collect();
        let code = format!(
            r#"
for line, column, name in [{}]:
    g = goto_definition("app.py", line, column, name)
    h = hover("app.py", line, column, name)
    print(json.dumps([name, g.success, [l.file for l in g.locations], h.success, h.content]))
print(goto_definition("app.py", 7, 5, "local").success)
"#,
            calls.join(", ")
        );
        let started = std::time::Instant::now();
        let (res, printed) = sandbox_in_bounds(root, &code);
        for marker in markers {
            assert!(!printed.contains(marker), "{marker} leaked: {printed}");
        }
        // A guard against a hang (the snippet's own limit is 5 s), not a benchmark.
        assert!(started.elapsed().as_secs() < 60, "{res:#}");
        assert_eq!(res["ok"], json!(true), "{res:#}");
        let mut lines: Vec<&str> = res["output"].as_str().unwrap().lines().collect();
        assert_eq!(lines.pop(), Some("True"), "{res:#}");
        let found: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let nothing: Vec<Value> = names
            .iter()
            .map(|(_, _, name)| json!([name, false, [], false, null]))
            .collect();
        assert_eq!(found, nothing, "{res:#}");
    }
}

/// `punie sandbox` with the system's `PATH` (the parser answers), at most
/// [`MAX_ADDRESS_SPACE`] of memory and two minutes: its result, and everything it printed.
#[cfg(target_os = "linux")]
fn sandbox_in_bounds(workspace: &Path, code: &str) -> (Value, String) {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new("timeout");
    command
        .args(["120", env!("CARGO_BIN_EXE_punie")])
        .args(["sandbox", "--timeout-ms", "5000", "--workspace"])
        .arg(workspace)
        .env("PATH", system_path())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit only reads the struct; it is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MAX_ADDRESS_SPACE,
                rlim_max: MAX_ADDRESS_SPACE,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let out = output_with_input(command, code);
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{:?}: {printed}", out.status);
    (serde_json::from_slice(&out.stdout).unwrap(), printed)
}

/// The address space `punie sandbox` may map in [`sandbox_in_bounds`]:
/// far above what it uses, far below what reading `/proc/self/pagemap` to its end takes.
#[cfg(target_os = "linux")]
const MAX_ADDRESS_SPACE: libc::rlim_t = 4 << 30;

/// A language server that never answers is stopped with the snippet, and nothing it started
/// is left.
#[test]
fn a_language_server_that_hangs_is_stopped() {
    let (ws, line, column) = navigation_workspace();
    let bin = tempfile::tempdir().unwrap();
    let ty = bin.path().join("ty");
    std::fs::write(&ty, "#!/bin/sh\nexec sleep 4242\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ty, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path =
        std::env::join_paths([bin.path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let started = std::time::Instant::now();
    let res = sandbox_with_timeout(
        ws.path(),
        &format!("goto_definition('src/geometry/report.py', {line}, {column}, 'Square')"),
        &path,
        2_000,
    );
    assert_eq!(res["ok"], json!(false), "{res:#}");
    assert_eq!(res["error"]["type"], json!("TimeoutError"), "{res:#}");
    // A guard against a hang, not a benchmark.
    assert!(started.elapsed().as_secs() < 15, "{res:#}");
    assert_no_process(Some("sleep 4242"), ws.path());
}

/// A hostile workspace's code runs when pytest imports its `conftest.py`. It runs in the jail:
/// it leaves a mark in the workspace, which shows that it ran, but no file outside it, and no
/// process it started outlives the call. Git's filters and mypy's plugins do not run at all
/// (see `typecheck_runs_no_code_of_the_repository`).
#[test]
fn hostile_workspace_code_stays_in_the_jail() {
    let ws = fixture_repository();
    let root = ws.path();
    let outside = tempfile::tempdir().unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let home_marks: Vec<PathBuf> = ["conftest", "filter"]
        .iter()
        .map(|from| home.join(format!(".punie-redteam-{from}")))
        .collect();
    for mark in &home_marks {
        let _ = std::fs::remove_file(mark);
    }
    let escape = |from: &str, sleep: u32| {
        format!(
            "import os, subprocess\nopen('ran-{from}', 'w').write('x')\nfor target in ['{outside}/{from}', os.path.expanduser('~/.punie-redteam-{from}')]:\n    try:\n        open(target, 'w').write('x')\n    except OSError:\n        pass\nsubprocess.Popen(['sleep', '{sleep}'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n",
            outside = outside.path().display()
        )
    };
    std::fs::write(root.join("tests/conftest.py"), escape("conftest", 4343)).unwrap();
    std::fs::write(root.join(".gitattributes"), "*.py filter=evil\n").unwrap();
    let filter = format!(
        "sh -c 'touch ran-filter; touch {outside}/filter ~/.punie-redteam-filter; (sleep 4345 >/dev/null 2>&1 &); cat'",
        outside = outside.path().display()
    );
    git(&["config", "filter.evil.clean", &filter], root);
    git(&["config", "filter.evil.required", "false"], root);

    let res = sandbox(
        root,
        "print(pytest_run('tests/').passed)\nprint(git_status('.').file_count)\nprint(git_diff('.').file_count)\n",
        &tools_path(),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");

    assert!(root.join("ran-conftest").exists(), "conftest did not run");
    // The git tools run no program the repository configures, not even jailed.
    assert!(!root.join("ran-filter").exists(), "git ran the filter");
    let escaped: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(escaped.is_empty(), "written outside: {escaped:?}");
    for mark in &home_marks {
        assert!(!mark.exists(), "written outside: {}", mark.display());
    }
    for sleep in ["sleep 4343", "sleep 4345"] {
        assert_no_process(Some(sleep), root);
    }
}

/// `typecheck` runs no code of the repository: mypy reads no configuration file, so a plugin
/// named in any file it would read (`mypy.ini`, `.mypy.ini`, `setup.cfg`, `pyproject.toml`)
/// is not imported; such a plugin would leave a mark and forge a clean report by ending mypy
/// early. A configuration ty rejects is reported as ty's, not handed to mypy.
#[test]
fn typecheck_runs_no_code_of_the_repository() {
    let ws = fixture_repository();
    let root = ws.path();
    std::fs::write(
        root.join("evil_plugin.py"),
        "import os\nopen('ran-plugin', 'a').write('x')\nos._exit(0)\n",
    )
    .unwrap();
    let pyproject = std::fs::read_to_string(root.join("pyproject.toml")).unwrap();
    let ini = "[mypy]\nplugins = evil_plugin.py\n";
    let configs = [
        ("mypy.ini", ini.to_owned()),
        (".mypy.ini", ini.to_owned()),
        ("setup.cfg", ini.to_owned()),
        (
            "pyproject.toml",
            format!("{pyproject}\n[tool.mypy]\nplugins = [\"evil_plugin.py\"]\n"),
        ),
    ];
    let code = "t = typecheck('src/')\nprint(json.dumps([t.checker, t.success, t.error_count, t.parse_error]))\n";
    let (_bin, mypy_only) = path_with(&["mypy"], false);
    for (name, config) in &configs {
        std::fs::write(root.join(name), config).unwrap();
        let res = sandbox(root, code, &mypy_only);
        assert_eq!(
            printed(&res),
            json!(["mypy", false, 1, null]),
            "{name}: {res:#}"
        );
        assert!(!root.join("ran-plugin").exists(), "{name}: the plugin ran");
        if *name == "pyproject.toml" {
            std::fs::write(root.join(name), &pyproject).unwrap();
        } else {
            std::fs::remove_file(root.join(name)).unwrap();
        }
    }

    std::fs::write(root.join("mypy.ini"), ini).unwrap();
    std::fs::write(
        root.join("pyproject.toml"),
        format!("{pyproject}\n[tool.ty]\nbogus_key = 1\n"),
    )
    .unwrap();
    let res = sandbox(root, code, &tools_path());
    let got = printed(&res);
    assert_eq!(
        got.as_array().unwrap()[..3],
        [json!("ty"), json!(false), json!(0)],
        "{res:#}"
    );
    let why = got[3].as_str().unwrap_or_default();
    assert!(
        why.contains("exit code 2") && why.contains("bogus_key"),
        "{res:#}"
    );
    assert!(!root.join("ran-plugin").exists(), "the plugin ran");
}

/// A repository's configuration cannot make `git_status`, `git_diff` or `git_log` run a
/// program, not even in the jail: a required filter on a file changed without changing its
/// size (so `status` must read it), a submodule whose own configuration has such a filter,
/// submodules whose own text conversion and external diff `diff.submodule=diff` would run, and
/// `log.showSignature` with a `gpg.program` over a signed commit. Each program would leave a
/// marker in the workspace, where the jail lets it write.
#[test]
fn git_tools_run_no_program_the_repository_configures() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let sub = root.join("sub");
    let sub2 = root.join("sub2");
    std::fs::create_dir(&sub).unwrap();
    std::fs::create_dir(&sub2).unwrap();
    for (repo, file, driver) in [
        (&sub2, "s2.txt", "sub2evil"),
        (&root, "a.txt", "evil"),
        (&sub, "s.txt", "subevil"),
    ] {
        git(&["init", "-q", "-b", "main"], repo);
        std::fs::write(repo.join(file), "hello\n").unwrap();
        std::fs::write(
            repo.join(".gitattributes"),
            format!("{file} filter={driver}\n"),
        )
        .unwrap();
        git(&["add", file, ".gitattributes"], repo);
        git(&["commit", "-q", "-m", file], repo);
    }
    git(&["add", "sub", "sub2"], &root);
    git(&["commit", "-q", "-m", "sub"], &root);
    // Both submodules move on a commit, which `diff.submodule=diff` would show by running
    // `git diff` inside each, under its own text conversion or external diff.
    for repo in [&sub, &sub2] {
        std::fs::write(repo.join("t.txt"), "t\n").unwrap();
        std::fs::write(repo.join(".gitattributes"), "* diff=x\n").unwrap();
        git(&["add", "t.txt", ".gitattributes"], repo);
        git(&["commit", "-q", "-m", "t.txt"], repo);
    }
    // A signed commit that changes something (the signature need not verify: git asks
    // gpg.program to): a commit, remade with a signature.
    std::fs::write(root.join("b.txt"), "b\n").unwrap();
    git(&["add", "b.txt"], &root);
    git(&["commit", "-q", "-m", "b.txt"], &root);
    let parent = git_output(&["rev-parse", "HEAD^"], &root, "");
    let tree = git_output(&["rev-parse", "HEAD^{tree}"], &root, "");
    let commit = format!(
        "tree {tree}\nparent {parent}\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\
         gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nsigned\n"
    );
    let signed = git_output(
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        &root,
        &commit,
    );
    git(&["update-ref", "refs/heads/main", &signed], &root);

    let bin = root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let program = |name: &str, then: &str| {
        let path = bin.join(name);
        let marker = root.join(format!("ran-{name}"));
        std::fs::write(
            &path,
            format!("#!/bin/sh\ntouch '{}'\n{then}\n", marker.display()),
        )
        .unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, executable).unwrap();
        path.display().to_string()
    };
    let filter = program("filter", "cat");
    let sub_filter = program("sub-filter", "cat");
    let gpg = program("gpg", "exit 1");
    git(&["config", "filter.evil.clean", &filter], &root);
    git(&["config", "filter.evil.required", "true"], &root);
    git(&["config", "log.showSignature", "true"], &root);
    git(&["config", "gpg.program", &gpg], &root);
    git(&["config", "filter.subevil.clean", &sub_filter], &sub);
    let textconv = program("textconv", "cat \"$1\"");
    let external = program("external", "exit 0");
    git(&["config", "diff.submodule", "diff"], &root);
    git(&["config", "diff.x.textconv", &textconv], &sub);
    git(&["config", "diff.external", &external], &sub2);
    // Same sizes: only the content tells, so git must read both files.
    std::fs::write(root.join("a.txt"), "jello\n").unwrap();
    std::fs::write(sub.join("s.txt"), "jello\n").unwrap();

    let res = sandbox(
        &root,
        r#"
s = git_status(".")
d = git_diff(".")
l = git_log(".", count=5)
print(json.dumps({
    "status": [s.success, s.parse_error, [[f.file, f.status] for f in s.files]],
    "diff": [d.success, d.parse_error, [f.file for f in d.files]],
    "log": [l.success, l.parse_error, [c.message for c in l.commits]],
}))
"#,
        &system_path(),
    );
    let got = printed(&res);

    for name in ["filter", "sub-filter", "gpg", "textconv", "external"] {
        assert!(
            !root.join(format!("ran-{name}")).exists(),
            "git ran the repository's {name} program: {got:#}"
        );
    }
    assert_eq!(
        got["status"],
        json!([
            true,
            null,
            [
                ["a.txt", "modified"],
                ["sub", "modified"],
                ["sub2", "modified"],
                ["bin/external", "untracked"],
                ["bin/filter", "untracked"],
                ["bin/gpg", "untracked"],
                ["bin/sub-filter", "untracked"],
                ["bin/textconv", "untracked"]
            ]
        ])
    );
    assert_eq!(got["diff"], json!([true, null, ["a.txt", "sub", "sub2"]]));
    assert_eq!(got["log"], json!([true, null, ["signed", "sub", "a.txt"]]));
}

/// `git ARGS` in `cwd` with `input` on stdin; its stdout, trimmed.
fn git_output(args: &[&str], cwd: &Path, input: &str) -> String {
    let mut command = Command::new("git");
    command.args(args).current_dir(cwd);
    let out = output_with_input(command, input);
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// No process runs in `cwd` or has `needle` in its command line (arguments joined by spaces).
fn assert_no_process(needle: Option<&str>, cwd: &Path) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let in_workspace =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|dir| dir.starts_with(cwd));
        assert!(
            !needle.is_some_and(|needle| cmdline.contains(needle)) && !in_workspace,
            "left behind: {cmdline}"
        );
    }
}

/// Each tool's own docstring example, the style Punie's later phases were trained on, runs
/// unchanged in a workspace that has the files the examples name.
#[test]
fn every_docstring_example_runs() {
    let ws = fixture_repository();
    let root = ws.path();
    let service = format!(
        "{}class UserService:\n    \"\"\"Users.\"\"\"\n\n    def get(self, user_id: int) -> str:\n        return str(user_id)\n",
        "\n".repeat(19)
    );
    let app = format!(
        "from services.user import UserService\n{}user = UserService()\n",
        "\n".repeat(13)
    );
    // A component that breaks the rules, so that the validators' examples have issues to print.
    let component =
        "class Greeting:\n    def __call__(self):\n        return html(f\"<p>{self.name}</p>\")\n";
    for (path, text) in [
        ("src/services/user.py", service.as_str()),
        ("src/services.py", service.as_str()),
        ("src/app.py", app.as_str()),
        ("src/components.py", component),
        ("src/components/greeting.py", component),
        ("src/components/template.py", component),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(&["add", "src/app.py"], root);
    let mut ran = 0;
    for tool in punie::tools::Tool::all().filter(|tool| !tool.spec().core) {
        let doc = tool.spec().doc;
        let example = doc
            .split("Example:\n")
            .nth(1)
            .expect("every typed stub has an example");
        let code: String = example
            .lines()
            .map(|line| line.strip_prefix("        ").unwrap_or(line.trim()))
            .collect::<Vec<_>>()
            .join("\n");
        let res = sandbox(root, &code, &tools_path());
        assert_eq!(res["ok"], json!(true), "{}: {res:#}", tool.name());
        assert_eq!(
            res["tool_calls"][0]["ok"],
            json!(true),
            "{}: {res:#}",
            tool.name()
        );
        assert!(
            !res["output"].as_str().unwrap().is_empty(),
            "{}: {res:#}",
            tool.name()
        );
        ran += 1;
    }
    assert_eq!(ran, punie::tools::Tool::all().count() - 3);
}

/// A directory of links to the set-up's programs named in `programs`, and a `ty` that crashes
/// (exits 101, as a Rust panic does) when `failing_ty`; as `PATH` with the system's
/// directories after it (git). `.venv` itself is on it too, where no program is, so that the
/// jail lets commands read the links' targets (it grants the installations on `PATH`).
fn path_with(programs: &[&str], failing_ty: bool) -> (tempfile::TempDir, OsString) {
    let bin = tempfile::tempdir().unwrap();
    let venv = repo_root().join(".venv/bin");
    for program in programs {
        std::os::unix::fs::symlink(venv.join(program), bin.path().join(program)).unwrap();
    }
    if failing_ty {
        let ty = bin.path().join("ty");
        std::fs::write(&ty, "#!/bin/sh\necho 'ty: panicked' >&2\nexit 101\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ty, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = std::env::join_paths([
        bin.path(),
        &repo_root().join(".venv"),
        Path::new("/usr/bin"),
        Path::new("/bin"),
    ])
    .unwrap();
    (bin, path)
}

/// Without ty, or with a ty that crashes, mypy checks and the result says so; its report is
/// mypy's own, the fixture's one type error, columns 1-based like ty's. Nothing of mypy's
/// cache is left in the workspace.
#[test]
fn typecheck_falls_back_to_mypy() {
    let ws = fixture_repository();
    let root = ws.path();
    let code = "t = typecheck('src/')\nprint(json.dumps([t.checker, t.success, t.error_count, t.parse_error, [[e.file, e.line, e.column, e.severity, e.code] for e in t.errors]]))\n";
    let report = run(
        "mypy",
        &["-O", "json", "--cache-dir=/dev/null", "src/"],
        root,
    );
    let diag: Value = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    let expected = json!([
        "mypy",
        false,
        1,
        null,
        [[
            diag["file"],
            diag["line"],
            diag["column"].as_i64().unwrap() + 1,
            "error",
            "assignment"
        ]]
    ]);
    for failing_ty in [false, true] {
        let (_bin, path) = path_with(&["mypy"], failing_ty);
        let res = sandbox(root, code, &path);
        assert_eq!(printed(&res), expected, "ty failing: {failing_ty}");
    }
    assert!(!root.join(".mypy_cache").exists());
    assert_eq!(
        run("git", &["status", "--porcelain=v1"], root),
        " M src/geometry/report.py\n?? notes.txt\n"
    );
}

/// `punie render-prompt --profile NAME` of one question with `PATH`.
fn rendered_prompt(profile: &str, path: &OsString) -> String {
    let out = punie(
        &["render-prompt", "--profile", profile],
        r#"{"messages": [{"role": "user", "content": "Q"}]}"#,
        path,
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Without ruff on `PATH`, `ruff_check` raises a clear error and is not offered.
#[test]
fn a_missing_program_is_a_clear_error() {
    let ws = fixture_repository();
    let empty = tempfile::tempdir().unwrap();
    let path = std::env::join_paths([empty.path()]).unwrap();
    let res = sandbox(
        ws.path(),
        "try:\n    ruff_check('.')\nexcept FileNotFoundError as err:\n    print(err)\n",
        &path,
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    assert_eq!(
        res["output"].as_str().unwrap().trim(),
        "ruff is not installed (pip install ruff)"
    );
    assert!(!ws.path().join(".ruff_cache").exists());
    // What the model is shown: every tool whose program is installed, none whose is not
    // (`generic`: the core tools' stubs, the others' signatures).
    let (_bin, without_ruff) = path_with(&["ty", "pytest"], false);
    let generic = rendered_prompt("generic", &without_ruff);
    assert!(generic.contains("def run_command("), "{generic}");
    assert!(!generic.contains("ruff_check("), "{generic}");
    for shown in ["\ntypecheck(", "\npytest_run(", "\ngit_status(", "\nhover("] {
        assert!(generic.contains(shown), "{shown}: {generic}");
    }
    assert!(
        rendered_prompt("generic", &tools_path()).contains("\nruff_check(path: str) -> RuffResult")
    );
    let typed = rendered_prompt("punie-typed", &without_ruff);
    assert!(
        typed.contains("Available tools: read_file, write_file, run_command, typecheck, pytest_run, goto_definition"),
        "{typed}"
    );
    assert!(!typed.contains("ruff_check"), "{typed}");
}

/// A workspace of Python files nested far deeper than CPython accepts (the red team's three
/// shapes, each of which overflowed the server's stack and aborted it) beside an ordinary one.
fn deeply_nested_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let parens = format!("x = {}1{}\n", "(".repeat(5000), ")".repeat(5000));
    std::fs::write(root.join("parens.py"), parens).unwrap();
    std::fs::write(
        root.join("minus.py"),
        format!("x = {}1\n", "-".repeat(500_000)),
    )
    .unwrap();
    std::fs::write(
        root.join("sum.py"),
        format!("x = 1{}\n", " + 1".repeat(200_000)),
    )
    .unwrap();
    std::fs::write(root.join("ok.py"), "x = 1\n\n\nclass Fine:\n    pass\n").unwrap();
    dir
}

/// The scripted turn that runs `code`.
fn code_turn(code: &str) -> String {
    format!(
        "<tool_call><function=execute_code>\n<parameter=code>\n{code}\n</parameter>\n</function></tool_call>"
    )
}

/// Deeply nested files are refused before they are parsed: each navigation call ends with a
/// parse error (or skips them), `punie ask` ends normally, and the next snippet still runs.
#[test]
fn deeply_nested_python_does_not_abort_the_server() {
    let ws = deeply_nested_workspace();
    let first = r#"for name in ["parens.py", "minus.py", "sum.py"]:
    print(name, document_symbols(name).parse_error)
    print(name, goto_definition(name, 1, 1, "x").parse_error)
    print(name, cst_find_pattern(name, "Name").parse_error)
found = workspace_symbols("x")
print("workspace_symbols", [symbol.file for symbol in found.symbols], found.parse_error)
print("import", cst_add_import("ok.py", "(" * 100000 + ")" * 100000).parse_error[:30])"#;
    let second = r#"print("then", document_symbols("ok.py").symbol_count)"#;
    let script = ws.path().join("script.json");
    let turns = json!([code_turn(first), code_turn(second), "Done."]);
    std::fs::write(&script, turns.to_string()).unwrap();
    let output = crate::support::punie()
        .args(["ask", "--json", "--workspace"])
        .arg(ws.path())
        .arg("--engine")
        .arg(format!("scripted:{}", script.display()))
        .arg("Where is x defined?")
        .env("PATH", system_path())
        .env_remove("PUNIE_ENGINE")
        .env("PUNIE_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["status"], "done", "{out:#}");
    let responses: Vec<&str> = out["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| call["response"].as_str().unwrap())
        .collect();
    assert_eq!(responses.len(), 2, "{out:#}");
    for expected in [
        "parens.py too many nested parentheses (more than 200)",
        "minus.py expression too deeply nested (more than 3000 levels)",
        "sum.py expression too deeply nested (more than 3000 levels)",
    ] {
        assert_eq!(
            responses[0].matches(expected).count(),
            3,
            "{expected}: {}",
            responses[0]
        );
    }
    let skipped = "workspace_symbols ['ok.py'] skipped 3 files that do not parse (the first, \
        minus.py: expression too deeply nested (more than 3000 levels))";
    assert!(responses[0].contains(skipped), "{}", responses[0]);
    let refused_import = "import Import must be one 'import";
    assert!(responses[0].contains(refused_import), "{}", responses[0]);
    assert!(responses[1].contains("then 2"), "{}", responses[1]);
}

/// A search through many large files stops at the snippet's time limit, not when it has read
/// them all: 2,000 links to one 1 MB file kept `workspace_symbols` going for 98 s under a
/// 1 s limit.
#[test]
fn a_workspace_search_stops_at_the_time_limit() {
    let ws = tempfile::tempdir().unwrap();
    let mut big = String::new();
    for idx in 0.. {
        if big.len() > 1000 * 1024 {
            break;
        }
        big.push_str(&format!("def f_{idx}(x):\n    return x + 1\n"));
    }
    let original = ws.path().join("big.py");
    std::fs::write(&original, big).unwrap();
    let pkg = ws.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    for idx in 0..2000 {
        std::fs::hard_link(&original, pkg.join(format!("m{idx}.py"))).unwrap();
    }
    let code = "print(workspace_symbols('zzzz_nothing'))";
    let res = sandbox_with_timeout(ws.path(), code, &system_path(), 1000);
    assert!(res["elapsed_ms"].as_u64().unwrap() < 10_000, "{res:#}");
    let call = &res["tool_calls"][0];
    assert_eq!(call["tool"], "workspace_symbols", "{res:#}");
    // The time limit ends it, or on a machine fast enough to parse 32 MB first, the cap on
    // what one search reads, which says so.
    let timed_out = call["error"]
        .as_str()
        .is_some_and(|err| err.starts_with("TimeoutError: the search of the workspace's files"));
    let capped = res["output"]
        .as_str()
        .is_some_and(|out| out.contains("files were not read"));
    assert!(timed_out || capped, "{res:#}");
}

/// The same over LSP, whose runs have threads of 2 MB of stack: the hostile files are
/// refused, the deepest file accepted (which needs more than 2 MB to parse) is parsed, and
/// the server answers a second run and shuts down cleanly.
#[test]
fn deeply_nested_python_over_lsp_leaves_the_server_serving() {
    use crate::lsp_client::{Client, Launch, range};
    let launch = Launch {
        workspace: deeply_nested_workspace(),
        env: vec![("PATH", "/usr/local/bin:/usr/bin:/bin")],
        ..Launch::default()
    };
    let blocks: String = (0..99)
        .map(|level| format!("{}if x:\n", " ".repeat(level)))
        .collect();
    let deepest = format!(
        "{blocks}{}x = {}{}1{}\n",
        " ".repeat(99),
        "f\"{".repeat(200),
        "-".repeat(2799),
        "}\"".repeat(200),
    );
    std::fs::write(launch.workspace.path().join("deepest.py"), deepest).unwrap();
    let snippet = r#"for name in ["parens.py", "minus.py", "sum.py", "deepest.py"]:
    print(name, document_symbols(name).parse_error, cst_find_pattern(name, "Name").match_count)
print("workspace_symbols", sorted(symbol.file for symbol in workspace_symbols("x").symbols))"#;
    // Outside the workspace: a project may not choose the engine.
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("script.json");
    std::fs::write(&script, json!([code_turn(snippet), "Done."]).to_string()).unwrap();
    let engine = format!("scripted:{}", script.display());
    let caps = json!({"window": {"workDoneProgress": true}, "experimental": {"punieAnswer": true}});
    let mut client = Client::start_with(&engine, caps, json!({}), launch);
    let uri = client.open("ok.py", "x = 1\n");
    for _ in 0..2 {
        let started = client.ask(&uri, range(0, 0, 1, 0), "explain");
        let ended = client.wait_end(&started["token"]);
        let transcript = client.transcript(&started["runId"]);
        assert_eq!(ended, "done", "{transcript}");
        for expected in [
            "parens.py too many nested parentheses (more than 200) 0",
            "minus.py expression too deeply nested (more than 3000 levels) 0",
            "sum.py expression too deeply nested (more than 3000 levels) 0",
            "deepest.py None 100",
            "workspace_symbols ['deepest.py', 'ok.py']",
        ] {
            assert!(transcript.contains(expected), "{expected}: {transcript}");
        }
    }
    assert_eq!(client.shutdown(), 0);
}
