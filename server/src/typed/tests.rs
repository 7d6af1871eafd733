//! The parsers of the programs' reports, on output recorded from the real programs (ruff
//! 0.17, ty 1.0, pytest 9, git 2); the e2e tests run the programs themselves.

use std::path::Path;

#[test]
fn ruff_json_becomes_violations() {
    let stdout = r#"[{"cell": null, "code": "F401", "end_location": {"column": 10, "row": 3},
        "filename": "/ws/src/a.py", "fix": {"applicability": "safe", "edits": [], "message": "Remove"},
        "location": {"column": 8, "row": 3}, "message": "`os` imported but unused",
        "name": "unused-import", "noqa_row": 3, "severity": "error", "url": null},
        {"cell": null, "code": null, "end_location": {"column": 1, "row": 9}, "filename": "/ws/b.py",
        "fix": null, "location": {"column": 1, "row": 9}, "message": "SyntaxError: bad",
        "noqa_row": null, "severity": "error", "url": null}]"#;
    let res =
        super::ruff::parse(stdout, &|file| file.trim_start_matches("/ws/").to_owned()).unwrap();
    assert_eq!(res.violation_count, 2);
    assert_eq!(res.fixable_count, 1);
    assert!(!res.success);
    let first = &res.violations[0];
    assert_eq!(
        (
            first.file.as_str(),
            first.line,
            first.column,
            first.code.as_str(),
            first.fixable
        ),
        ("src/a.py", 3, 8, "F401", true)
    );
    assert_eq!(res.violations[1].code, "syntax-error");
    assert!(super::ruff::parse("[]", &|f| f.to_owned()).unwrap().success);
    assert!(super::ruff::parse("error: oops", &|f| f.to_owned()).is_err());
}

#[test]
fn ty_sarif_becomes_errors() {
    let stdout = r#"{"runs": [{"results": [{"level": "error", "locations": [{"physicalLocation":
        {"artifactLocation": {"uri": "file:///ws/src/a%20b.py"}, "region": {"startLine": 4, "startColumn": 10,
        "endLine": 4, "endColumn": 13}}}], "message": {"text": "Object is not assignable"},
        "ruleId": "invalid-assignment"}, {"level": "warning", "locations": [], "message": {"text": "w"},
        "ruleId": "redundant-cast"}], "tool": {"driver": {"name": "ty"}}}], "version": "2.1.0"}"#;
    let res = super::ty::parse(stdout, &|path: &Path| {
        path.strip_prefix("/ws").unwrap().display().to_string()
    })
    .unwrap();
    assert_eq!(
        (res.error_count, res.warning_count, res.success),
        (1, 1, false)
    );
    let error = &res.errors[0];
    assert_eq!(
        (
            error.file.as_str(),
            error.line,
            error.column,
            error.severity.as_str(),
            error.code.as_str()
        ),
        ("src/a b.py", 4, 10, "error", "invalid-assignment")
    );
}

/// mypy's JSON lines, the fallback checker's report (captured from mypy 2.4.1).
#[test]
fn mypy_json_becomes_errors() {
    let stdout = concat!(
        r#"{"file": "src/geometry/report.py", "line": 14, "column": 17, "end_line": 14, "end_column": 25, "message": "Incompatible types in assignment (expression has type \"str\", variable has type \"int\")", "hint": null, "code": "assignment", "severity": "error"}"#,
        "\n",
        r#"{"file": "src/a.py", "line": 2, "column": -1, "end_line": 2, "end_column": -1, "message": "Revealed type is \"int\"", "hint": "See the docs", "code": null, "severity": "note"}"#,
        "\n",
    );
    let res = super::ty::parse_mypy(stdout).unwrap();
    assert_eq!(
        (res.error_count, res.warning_count, res.success, res.checker),
        (1, 0, false, "mypy")
    );
    let error = &res.errors[0];
    assert_eq!(
        (
            error.file.as_str(),
            error.line,
            error.column,
            error.severity.as_str(),
            error.code.as_str()
        ),
        ("src/geometry/report.py", 14, 18, "error", "assignment")
    );
    let note = &res.errors[1];
    assert_eq!(
        (note.column, note.severity.as_str(), note.code.as_str()),
        (0, "info", "unknown")
    );
    assert_eq!(note.message, "Revealed type is \"int\"\nSee the docs");
    assert!(super::ty::parse_mypy("").unwrap().success);
    assert!(super::ty::parse_mypy("mypy: can't read file").is_err());
}

#[test]
fn junit_xml_becomes_test_cases() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.031"><testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="4" time="0.001" /><testcase classname="tests.test_a.TestB" name="test_bad" file="tests/test_a.py" line="8" time="0.002"><failure message="assert 5 == 6&#10; +  where 5 = f()">def test_bad():
&gt;       assert f() == 6</failure></testcase><testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py" line="9" time="0.000"><skipped type="pytest.skip" message="later">tests/test_a.py:9: later</skipped></testcase></testsuite></testsuites>"#;
    let res = super::pytest::parse(xml).unwrap();
    assert_eq!(
        (res.passed, res.failed, res.errors, res.skipped),
        (1, 1, 0, 1)
    );
    assert!(!res.success);
    assert!((res.duration - 0.031).abs() < 1e-9);
    assert_eq!(res.tests[0].name, "tests/test_a.py::test_ok");
    assert_eq!(res.tests[0].message, None);
    assert_eq!(res.tests[1].name, "tests/test_a.py::TestB::test_bad");
    assert_eq!(res.tests[1].outcome, "failed");
    assert_eq!(
        res.tests[1].message.as_deref(),
        Some("assert 5 == 6\n +  where 5 = f()")
    );
    assert_eq!(res.tests[2].outcome, "skipped");
    assert!(super::pytest::parse("").is_err());
    assert!(super::pytest::parse("<html/>").is_err());
}

#[test]
fn git_formats_become_results() {
    let status =
        super::git::parse_status(" M src/a.py\0R  new.py\0old.py\0?? notes.txt\0A  b.py\0");
    let files: Vec<(&str, &str, bool)> = status
        .files
        .iter()
        .map(|f| (f.file.as_str(), f.status.as_str(), f.staged))
        .collect();
    assert_eq!(
        files,
        [
            ("src/a.py", "modified", false),
            ("new.py", "renamed", true),
            ("notes.txt", "untracked", false),
            ("b.py", "added", true)
        ]
    );
    assert!(super::git::parse_status("").clean);

    let diff = super::git::parse_diff(
        "diff --git a/src/a.py b/src/a.py\nindex 1..2 100644\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1,2 +1,2 @@\n-old\n+new\n--- not a header\n ctx\ndiff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n",
    );
    assert_eq!((diff.file_count, diff.additions, diff.deletions), (2, 1, 3));
    assert_eq!(diff.files[0].file, "src/a.py");
    assert_eq!(
        diff.files[0].hunks,
        ["@@ -1,2 +1,2 @@\n-old\n+new\n--- not a header\n ctx"]
    );
    assert_eq!(diff.files[1].file, "gone.py");

    let log = super::git::parse_log(
        "abc1234\u{1f}Ann\u{1f}Sun Dec 6 16:41:07 2026 +0000\u{1f}init | first\u{1e}\n",
    );
    assert_eq!(log.commit_count, 1);
    assert_eq!(log.commits[0].hash, "abc1234");
    assert_eq!(log.commits[0].message, "init | first");
    assert_eq!(log.commits[0].author.as_deref(), Some("Ann"));
}

/// A host for calls that ask no permission (in-process tools) over a directory.
struct DirectoryHost(std::path::PathBuf);

impl crate::workspace::ToolHost for DirectoryHost {
    fn workspace_root(&self) -> &Path {
        &self.0
    }

    fn permit(
        &self,
        _request: &crate::policy::ToolRequest,
        _cancel: &crate::cancel::CancelFlag,
    ) -> crate::policy::Ruling {
        unreachable!("a typed call asks no permission itself")
    }
}

/// The deepest source `nesting::check` accepts needs more stack than an LSP or ACP run thread
/// has (2 MB); parsing it from such a thread works, because the parse has a thread of its own.
#[test]
fn python_is_parsed_on_a_stack_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let blocks: String = (0..super::nesting::MAX_INDENT_LEVELS)
        .map(|level| format!("{}if x:\n", " ".repeat(level)))
        .collect();
    let fields = super::nesting::MAX_BRACKETS;
    let deepest = format!(
        "{blocks}{}x = {}{}1{}\n",
        " ".repeat(super::nesting::MAX_INDENT_LEVELS),
        "f\"{".repeat(fields),
        "-".repeat(super::nesting::MAX_EXPRESSION_DEPTH - fields - 1),
        "}\"".repeat(fields),
    );
    std::fs::write(dir.path().join("deep.py"), deepest).unwrap();
    let host = DirectoryHost(dir.path().to_path_buf());
    let run_thread = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let args = serde_json::json!({"file_path": "deep.py", "pattern": "Name"});
            let cancel = crate::cancel::CancelFlag::default();
            super::call(&host, crate::tools::Typed::CstFindPattern, &args, &cancel)
        })
        .unwrap();
    let res = run_thread.join().unwrap().unwrap();
    assert_eq!(res["parse_error"], serde_json::Value::Null, "{res}");
    assert_eq!(res["match_count"], 100);
}

/// A workspace-wide search stops when the snippet's time is up or the run is cancelled: it
/// looks at the flag before each file, and says which of the two ended it.
#[test]
fn searches_stop_at_the_deadline_and_on_cancel() {
    use crate::cancel::CancelFlag;
    use crate::tools::Typed;
    let dir = tempfile::tempdir().unwrap();
    for idx in 0..3 {
        let text = format!("def used_{idx}():\n    return helper()\n");
        std::fs::write(dir.path().join(format!("m{idx}.py")), text).unwrap();
    }
    let host = DirectoryHost(dir.path().to_path_buf());
    let timed_out = CancelFlag::joined(&[], Some(std::time::Instant::now()));
    let cancelled = CancelFlag::default();
    cancelled.cancel();
    let at_helper =
        serde_json::json!({"file_path": "m0.py", "line": 2, "column": 12, "symbol": "helper"});
    let calls = [
        (
            Typed::WorkspaceSymbols,
            serde_json::json!({"query": "used"}),
        ),
        (Typed::FindReferences, at_helper.clone()),
        (Typed::GotoDefinition, at_helper.clone()),
        (Typed::Hover, at_helper),
    ];
    for (typed, args) in calls {
        let fresh = CancelFlag::default();
        let answered = super::call(&host, typed, &args, &fresh);
        assert!(answered.is_ok(), "{typed:?}: {answered:?}");
        for (flag, expected) in [
            (&timed_out, "TimeoutError"),
            (&cancelled, "KeyboardInterrupt"),
        ] {
            let err = super::call(&host, typed, &args, flag).expect_err("stopped");
            assert_eq!(err.type_name, expected, "{typed:?}: {}", err.message);
        }
    }
}
