//! Exact approvals: what "Allow for this session" covers, and the session's list of them.
//!
//! An approval covers what the prompt showed, never a whole tool: for a command, that
//! program with those leading arguments in that working directory (`pytest -q …` covers
//! `pytest -q tests/test_a.py`, not `pytest`, not `rm`); for a file, that one file for that
//! tool; for a typed tool, those exact arguments. A denial "for this session" (ACP's
//! `reject_always`) has the same scope.

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

/// The answers given "for this session". A front end keeps one per session (per editor
/// connection, per ACP session, per `punie ask` run) and clears it when the policy settings
/// change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionApprovals {
    /// Scopes with the answer given, in order; a denial is found before a later allow.
    answers: Vec<(Scope, bool)>,
}

impl SessionApprovals {
    /// The remembered answer that covers `request`, if any: its scope, and whether it allows.
    pub fn covering(&self, request: &ToolRequest) -> Option<(&Scope, bool)> {
        // Denials first: "deny rm for this session" must hold even after an earlier allow.
        let mut covering = self
            .answers
            .iter()
            .filter(|(scope, _)| scope.covers(request));
        let first = covering.clone().find(|(_, allowed)| !allowed);
        first
            .or_else(|| covering.next())
            .map(|(scope, allowed)| (scope, *allowed))
    }

    /// Remembers `allowed` for `scope` (a later answer for the same scope replaces it).
    pub fn remember(&mut self, scope: Scope, allowed: bool) {
        self.answers.retain(|(known, _)| *known != scope);
        self.answers.push((scope, allowed));
    }

    /// Remembers an "Allow for this session" of `scope`.
    pub fn grant(&mut self, scope: Scope) {
        self.remember(scope, true);
    }

    pub fn clear(&mut self) {
        self.answers.clear();
    }
}
