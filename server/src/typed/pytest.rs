//! `pytest_run(path)` → `TestResult`, from pytest's JUnit XML report (parsed with quick-xml).
//!
//! The report goes to `/dev/stdout` with pytest's terminal reporter off, so the run writes no
//! file and stdout holds exactly the XML; `--capture=fd` keeps a test's own prints out of it
//! even when the project's `addopts` say `-s`. `junit_family=xunit1` adds each test's `file`,
//! from which the test's node id (`tests/test_a.py::TestX::test_y`) is rebuilt.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use serde_json::Value;

use super::Context;
use crate::tools::Program;
use crate::workspace::ToolError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct TestCase {
    pub(super) name: String,
    /// `passed`, `failed`, `error` or `skipped`.
    pub(super) outcome: String,
    pub(super) duration: f64,
    pub(super) message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct TestResult {
    pub(super) success: bool,
    pub(super) passed: usize,
    pub(super) failed: usize,
    pub(super) errors: usize,
    pub(super) skipped: usize,
    pub(super) duration: f64,
    pub(super) tests: Vec<TestCase>,
    pub(super) parse_error: Option<String>,
}

pub(super) fn run(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let target = ctx.existing(raw)?;
    let args = [
        "-p",
        "no:terminal",
        "-p",
        "no:cacheprovider",
        "--capture=fd",
        "-o",
        "junit_family=xunit1",
        "-o",
        "junit_logging=no",
        "--junit-xml=/dev/stdout",
        "--rootdir=.",
        "--",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([ctx.program_arg(&target)])
    .collect::<Vec<_>>();
    let out = ctx.run(Program::Pytest, &args, ctx.root())?;
    // 0: all passed, 1: some failed, 2: interrupted (collection errors), 5: nothing collected;
    // each still writes the report. 3 and 4 (internal and usage errors) may not.
    let res = parse(&out.stdout).unwrap_or_else(|why| TestResult {
        success: false,
        passed: 0,
        failed: 0,
        errors: 0,
        skipped: 0,
        duration: 0.0,
        tests: Vec::new(),
        parse_error: Some(super::unreadable_output(Program::Pytest, &out, &why)),
    });
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// One `<testcase>` while it is being read.
struct Case {
    name: String,
    duration: f64,
    outcome: &'static str,
    message: Option<String>,
    /// Text of the failure element, used when it has no `message` attribute.
    text: String,
}

/// Parses pytest's JUnit XML.
pub(super) fn parse(xml: &str) -> Result<TestResult, String> {
    let xml = xml.trim();
    if xml.is_empty() {
        return Err("pytest wrote no report".to_owned());
    }
    let mut reader = Reader::from_str(xml);
    let mut tests: Vec<TestCase> = Vec::new();
    let mut duration = 0.0;
    let mut case: Option<Case> = None;
    let mut in_outcome = false;
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|err| format!("not a JUnit XML report: {err}"))?;
        match event {
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                // An empty element has no end event: it is complete at once.
                let empty = matches!(event, Event::Empty(_));
                match tag.local_name().as_ref() {
                    b"testsuites" => saw_root = true,
                    b"testsuite" => {
                        saw_root = true;
                        duration += attr(tag, "time")?
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(0.0);
                    }
                    b"testcase" => {
                        if let Some(done) = case.take() {
                            tests.push(done.finish());
                        }
                        let started = Case {
                            name: node_id(tag)?,
                            duration: attr(tag, "time")?
                                .and_then(|t| t.parse::<f64>().ok())
                                .unwrap_or(0.0),
                            outcome: "passed",
                            message: None,
                            text: String::new(),
                        };
                        if empty {
                            tests.push(started.finish());
                        } else {
                            case = Some(started);
                        }
                    }
                    name @ (b"failure" | b"error" | b"skipped") => {
                        if let Some(case) = case.as_mut() {
                            let outcome = match name {
                                b"failure" => "failed",
                                b"error" => "error",
                                _ => "skipped",
                            };
                            // A test that fails and then errors in teardown stays failed.
                            if case.outcome == "passed" || case.outcome == "skipped" {
                                case.outcome = outcome;
                                case.message = attr(tag, "message")?;
                            }
                            in_outcome = !empty;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(text) if in_outcome => {
                if let Some(case) = case.as_mut() {
                    case.text.push_str(&text.decode().unwrap_or_default());
                }
            }
            Event::GeneralRef(entity) if in_outcome => {
                if let Some(case) = case.as_mut() {
                    let name = entity.decode().unwrap_or_default();
                    let resolved = match entity.resolve_char_ref() {
                        Ok(Some(ch)) => Some(ch.to_string()),
                        _ => quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned),
                    };
                    case.text.push_str(&resolved.unwrap_or_default());
                }
            }
            Event::CData(data) if in_outcome => {
                if let Some(case) = case.as_mut() {
                    case.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(tag) => match tag.local_name().as_ref() {
                b"failure" | b"error" | b"skipped" => in_outcome = false,
                b"testcase" => {
                    if let Some(done) = case.take() {
                        tests.push(done.finish());
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(done) = case.take() {
        tests.push(done.finish());
    }
    if !saw_root {
        return Err("no <testsuite> in the report".to_owned());
    }
    let count = |outcome: &str| tests.iter().filter(|t| t.outcome == outcome).count();
    let (passed, failed, errors, skipped) = (
        count("passed"),
        count("failed"),
        count("error"),
        count("skipped"),
    );
    Ok(TestResult {
        success: failed == 0 && errors == 0,
        passed,
        failed,
        errors,
        skipped,
        duration,
        tests,
        parse_error: None,
    })
}

impl Case {
    fn finish(self) -> TestCase {
        let message = match self.outcome {
            "passed" => None,
            _ => self
                .message
                .filter(|m| !m.trim().is_empty())
                .or_else(|| Some(self.text.trim().to_owned()).filter(|t| !t.is_empty())),
        };
        TestCase {
            name: self.name,
            outcome: self.outcome.to_owned(),
            duration: self.duration,
            message,
        }
    }
}

fn attr(tag: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    match tag.try_get_attribute(name) {
        Ok(Some(attr)) => attr
            .unescape_value()
            .map(|value| Some(value.into_owned()))
            .map_err(|err| format!("bad attribute {name}: {err}")),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("bad attribute {name}: {err}")),
    }
}

/// pytest's node id from a `<testcase>`: `file::Class::name`, from xunit1's `file` and the
/// dotted `classname` (`tests.test_a.TestX`) less the module's own dotted path.
fn node_id(tag: &BytesStart<'_>) -> Result<String, String> {
    let name = attr(tag, "name")?.unwrap_or_default();
    let classname = attr(tag, "classname")?.unwrap_or_default();
    let Some(file) = attr(tag, "file")?.filter(|file| !file.is_empty()) else {
        // A collection error: `classname` is empty and `name` the module.
        return Ok(if classname.is_empty() {
            name
        } else {
            format!("{classname}::{name}")
        });
    };
    let module = file
        .strip_suffix(".py")
        .unwrap_or(&file)
        .replace(['/', '\\'], ".");
    let mut res = file.clone();
    if let Some(classes) = classname
        .strip_prefix(&module)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        for class in classes.split('.') {
            res.push_str("::");
            res.push_str(class);
        }
    }
    res.push_str("::");
    res.push_str(&name);
    Ok(res)
}
