//! End-to-end tests of `punie eval`: the scorer passes correct scripted transcripts and fails
//! deliberately wrong ones for the right reasons (`tests/fixtures/eval/wrong/`), so a pass
//! means something. `--engine scripted:DIR` runs each query on `DIR/<query id>.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// `punie eval --json` from a directory outside the repository (the suite and the workspace
/// are compiled in).
fn eval(suite: &str, script_dir: &Path, extra: &[&str]) -> Value {
    let cwd = tempfile::tempdir().unwrap();
    let output = crate::support::punie()
        .env_remove("PUNIE_ENGINE")
        .env("PUNIE_LOG", "warn")
        .current_dir(cwd.path())
        .args(["eval", "--suite", suite, "--json", "--engine"])
        .arg(format!("scripted:{}", script_dir.display()))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "punie eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// One line per query: id, pass, and the reasons a failure was found.
fn summary(report: &Value) -> String {
    report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            format!(
                "{} passed={} tool={} snippet_ok={} code_missing={} facts_missing={}",
                q["id"].as_str().unwrap(),
                q["passed"],
                q["tool_as_expected"],
                q["snippet_ok"],
                q["code_missing"],
                q["facts_missing"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn correct_scripts_pass_every_query() {
    for suite in ["task9-single", "task9-multi"] {
        let report = eval(suite, &fixtures().join("scripts"), &[]);
        assert_eq!(report["suite"], suite);
        assert_eq!(report["total"], 5);
        assert_eq!(report["passed"], 5, "{}", summary(&report));
        for query in report["queries"].as_array().unwrap() {
            // The §4 fields.
            for key in [
                "id",
                "query",
                "passed",
                "expected_tool",
                "used_tools",
                "snippet_ok",
                "facts_found",
                "turns",
                "tokens_in",
                "tokens_out",
                "wall_ms",
            ] {
                assert!(query.get(key).is_some(), "{key} missing in {query}");
            }
        }
        let first = &report["queries"][0];
        if suite == "task9-single" {
            assert_eq!(first["expected_tool"], "read_file");
            assert_eq!(first["used_tools"], serde_json::json!(["read_file"]));
            assert_eq!(first["turns"], 2);
            assert_eq!(report["queries"][2]["expected_tool"], Value::Null);
        }
    }
}

#[test]
fn wrong_scripts_fail_for_the_right_reasons() {
    let wrong = fixtures().join("eval/wrong");
    let single = eval("task9-single", &wrong, &[]);
    assert_eq!(single["passed"], 0);
    assert_eq!(
        summary(&single),
        r#"p22-single-01 passed=false tool=false snippet_ok=true code_missing=["read_file"] facts_missing=["README title"]
p22-single-02 passed=false tool=true snippet_ok=false code_missing=[] facts_missing=["number of Python files"]
p22-single-03 passed=false tool=false snippet_ok=true code_missing=[] facts_missing=[]
p22-single-04 passed=false tool=true snippet_ok=true code_missing=[] facts_missing=["class ConfigError"]
p22-single-05 passed=false tool=true snippet_ok=true code_missing=[] facts_missing=["topic"]"#
    );
    let multi = eval("task9-multi", &wrong, &[]);
    assert_eq!(multi["passed"], 0);
    assert_eq!(
        summary(&multi),
        r#"p22-multi-01 passed=false tool=true snippet_ok=true code_missing=[] facts_missing=["total lines"]
p22-multi-02 passed=false tool=true snippet_ok=true code_missing=[] facts_missing=["test functions"]
p22-multi-03 passed=false tool=true snippet_ok=true code_missing=["try","read_file","except"] facts_missing=["config.py content"]
p22-multi-04 passed=false tool=true snippet_ok=false code_missing=[] facts_missing=["files with docstrings"]
p22-multi-05 passed=false tool=false snippet_ok=true code_missing=["run_command","for","read_file","total","print"] facts_missing=["directory scripts","directory src/inventory","directory tests","total lines"]"#
    );
}

/// The tool-per-turn transcripts run under the tool-per-turn strategy: every call runs (none
/// is rejected), N operations take N + 1 turns, and the answers state the facts. They fail
/// Punie's code rule (no loop, no `split`), which is about Code Mode snippets.
#[test]
fn tool_per_turn_transcripts_take_one_turn_per_call() {
    let report = eval(
        "task9-multi",
        &fixtures().join("eval/tool-per-turn"),
        &["--strategy", "tool-per-turn"],
    );
    assert_eq!(report["strategy"], "tool-per-turn");
    let turns: Vec<u64> = report["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            assert_eq!(q["facts_missing"], serde_json::json!([]), "{q}");
            assert_eq!(q["snippet_ok"], true, "{q}");
            q["turns"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(turns, [11, 4, 2, 11, 11]);
}

#[test]
fn a_missing_script_fails_its_query_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("scripts/p22-single-03.json"),
        dir.path().join("p22-single-03.json"),
    )
    .unwrap();
    let report = eval("task9-single", dir.path(), &[]);
    assert_eq!(report["passed"], 1);
    let status = report["queries"][0]["status"].as_str().unwrap();
    assert!(
        status.starts_with("failed: scripted engine: cannot read"),
        "{status}"
    );
}

#[test]
fn usage_errors_are_one_line() {
    let output = crate::support::punie()
        .args(["eval", "--suite", "nope"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown suite `nope`: expected one of task9-single, task9-multi"),
        "{stderr}"
    );
}
