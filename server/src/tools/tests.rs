//! Tests of the registry: stub rendering and progress labels.

use super::*;

#[track_caller]
fn check_signature(name: &str, expect: &str) {
    let tool = Tool::by_name(name).expect("tool in registry");
    assert_eq!(tool.signature(), expect);
}

#[test]
fn signatures_render_like_punie() {
    check_signature("read_file", "def read_file(path: str) -> str:");
    check_signature(
        "run_command",
        "def run_command(command: str, args: list[str] | None = None, cwd: str | None = None) -> str:",
    );
    check_signature(
        "git_diff",
        "def git_diff(path: str, staged: bool = False) -> GitDiffResult:",
    );
    check_signature(
        "git_log",
        "def git_log(path: str, count: int = 10) -> GitLogResult:",
    );
}

#[test]
fn names_are_unique() {
    let mut names: Vec<&str> = Tool::all().map(Tool::name).collect();
    let n_tools = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n_tools);
    assert_eq!(Tool::core().count(), 3);
}

#[test]
fn labels_name_the_argument_whole() {
    let run = Tool::by_name("run_command").unwrap();
    assert_eq!(run.label_showing("pytest -q"), "run_command pytest -q");
    let read = Tool::by_name("read_file").unwrap();
    assert_eq!(read.label_showing("README.md"), "read_file README.md");
    let long = "x".repeat(500);
    assert_eq!(read.label_showing(&long), format!("read_file {long}"));
}

#[test]
fn stubs_start_with_header_and_have_no_ctx() {
    let tools: Vec<Tool> = Tool::all().collect();
    let stubs = stubs_text(&tools);
    assert!(stubs.starts_with("# External functions available in sandbox"));
    assert!(!stubs.contains("ctx:"));
    assert!(code_mode_instructions(&tools).contains("No classes allowed"));
}
