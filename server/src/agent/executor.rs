//! [`CodeRunner`]: how the agent runs a snippet, and its implementation for the real sandbox.
//!
//! The loop only needs "run this Python with these tools, tell me what each tool did, give me
//! the output or the exception". Keeping that behind a small trait keeps the sandbox's own
//! types out of the loop (one file adapts them) and lets callers hand in a pool or a fake.

use std::time::Duration;

use crate::cancel::CancelFlag;
use crate::policy::Ruling;
use crate::sandbox::{Sandbox, ToolEvent, ToolHost};

use super::feedback::exception_line;

/// Runs Code Mode snippets.
pub trait CodeRunner {
    /// Runs `code` with the tools of `host`, reporting each tool call to `on_tool` as it starts
    /// and ends. Must return promptly (within 100 ms) once `cancel` is set.
    fn run_code(
        &mut self,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_tool: &mut dyn FnMut(ToolActivity),
    ) -> CodeResult;
}

/// A tool call inside a snippet starting or ending.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolActivity {
    Started {
        tool: String,
        label: String,
    },
    /// `error` is `PythonExceptionType: message` when the tool raised; `permission`: how the
    /// call was decided (allowed or refused, by whom, with what scope).
    Finished {
        tool: String,
        error: Option<String>,
        permission: Option<Ruling>,
    },
}

/// What a snippet did.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeResult {
    /// What it printed.
    pub output: String,
    /// `(ExceptionType, message)` when it raised.
    pub error: Option<(String, String)>,
    pub elapsed: Duration,
}

impl CodeRunner for Sandbox {
    fn run_code(
        &mut self,
        code: &str,
        host: &dyn ToolHost,
        cancel: &CancelFlag,
        on_tool: &mut dyn FnMut(ToolActivity),
    ) -> CodeResult {
        let result = self.execute(code, host, cancel, &mut |event: ToolEvent| {
            on_tool(match event {
                ToolEvent::Started { tool, label } => ToolActivity::Started { tool, label },
                ToolEvent::Finished {
                    tool,
                    ok,
                    error,
                    permission,
                } => ToolActivity::Finished {
                    tool,
                    permission,
                    // A failed call always has a reason to show; fall back to a generic one.
                    error: if ok {
                        None
                    } else {
                        Some(error.unwrap_or_else(|| "Error: the tool failed".to_owned()))
                    },
                },
            })
        });
        CodeResult {
            output: result.output,
            error: result.error.map(|error| (error.type_name, error.message)),
            elapsed: result.elapsed,
        }
    }
}

/// `Type: message` of a result's error.
pub(crate) fn error_line(result: &CodeResult) -> Option<String> {
    result
        .error
        .as_ref()
        .map(|(type_name, message)| exception_line(type_name, message))
}
