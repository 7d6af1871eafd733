//! Exact approvals: what "Allow for this session" covers, and the session's list of them.
//!
//! An approval covers what the prompt showed, never a whole tool: for a command, that
//! program with those leading arguments in that working directory (`pytest -q …` covers
//! `pytest -q tests/test_a.py`, not `pytest`, not `rm`); for a file, that one file for that
//! tool; for a typed tool, those exact arguments.

use super::request::{Action, ToolRequest};
use super::show::{shell_line, shell_word};

/// What one session approval covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One file (workspace-relative), for one tool.
    File { tool: &'static str, path: String },
    /// Commands whose argv begins with `argv` (whole words), run in `cwd`.
    CommandPrefix {
        tool: &'static str,
        argv: Vec<String>,
        cwd: String,
    },
    /// A typed tool with exactly these arguments.
    Call {
        tool: &'static str,
        args: Vec<(String, String)>,
    },
}

impl Scope {
    /// The scope a session approval of `request` would have.
    pub fn of(request: &ToolRequest) -> Scope {
        let tool = request.tool.name();
        match &request.action {
            Action::Read { target } | Action::Write { target, .. } => Scope::File {
                tool,
                path: target.rel.clone(),
            },
            Action::Execute { argv, cwd } => Scope::CommandPrefix {
                tool,
                argv: argv.clone(),
                cwd: cwd.clone(),
            },
            Action::Call { args } => Scope::Call {
                tool,
                args: args.clone(),
            },
        }
    }

    /// Does this approval cover `request`?
    pub fn covers(&self, request: &ToolRequest) -> bool {
        let name = request.tool.name();
        match (self, &request.action) {
            (
                Scope::File { tool, path },
                Action::Read { target } | Action::Write { target, .. },
            ) => *tool == name && *path == target.rel,
            (
                Scope::CommandPrefix { tool, argv, cwd },
                Action::Execute {
                    argv: called,
                    cwd: called_cwd,
                },
            ) => *tool == name && cwd == called_cwd && called.starts_with(argv),
            (Scope::Call { tool, args }, Action::Call { args: called }) => {
                *tool == name && args == called
            }
            _ => false,
        }
    }

    /// For the prompt and the transcript, escaped: `write_file on src/app.py`,
    /// `commands that begin with pytest -q … (in .)`.
    pub fn describe(&self) -> String {
        match self {
            Scope::File { tool, path } => format!("{tool} on {}", shell_word(path)),
            Scope::CommandPrefix { argv, cwd, .. } => format!(
                "commands that begin with {} … in {}",
                shell_line(argv),
                shell_word(cwd)
            ),
            Scope::Call { tool, args } => {
                format!(
                    "{} with these arguments only",
                    super::prompt::call_text(tool, args)
                )
            }
        }
    }
}

/// The approvals given "for this session". A front end keeps one per session (per editor
/// connection, per ACP session, per `punie ask` run) and clears it when the policy settings
/// change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionApprovals {
    scopes: Vec<Scope>,
}

impl SessionApprovals {
    /// The approval that covers `request`, if any.
    pub fn covering(&self, request: &ToolRequest) -> Option<&Scope> {
        self.scopes.iter().find(|scope| scope.covers(request))
    }

    pub fn grant(&mut self, scope: Scope) {
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
    }

    pub fn clear(&mut self) {
        self.scopes.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}
