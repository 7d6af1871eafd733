//! Exact approvals: what "Allow for this session" covers, and the session's list of them.
//!
//! An approval covers what the prompt showed, never a whole tool: for a command, exactly that
//! argv in that working directory; for a file, that one file for that tool; for a typed tool,
//! those exact arguments. A denial "for this session" (ACP's `reject_always`) has the same
//! scope.
//!
//! A command's approval is an allowlist of one argv, not a prefix: words appended to an
//! approved command change what it does (`find . -name '*.pyc'` + `-o -name '*.py' -delete`
//! deletes, `git log` + `--output=app.py` writes, `sed -n 1p f` + `-i` edits, and `rm a` +
//! `b` removes another file), so any other argv is asked about again.

use super::request::{Action, ToolRequest};
use super::show::{shell_line, shell_word};

/// What one session approval covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One file (workspace-relative), for one tool.
    File { tool: &'static str, path: String },
    /// Exactly the command `argv` (every word, nothing appended), run in `cwd`.
    ExactCommand {
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
            Action::Execute { argv, cwd } => Scope::ExactCommand {
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
                Scope::ExactCommand { tool, argv, cwd },
                Action::Execute {
                    argv: called,
                    cwd: called_cwd,
                },
            ) => *tool == name && cwd == called_cwd && called == argv,
            (Scope::Call { tool, args }, Action::Call { args: called }) => {
                *tool == name && args == called
            }
            _ => false,
        }
    }

    /// For the prompt and the transcript, escaped: `write_file on src/app.py`,
    /// ``exactly `pytest -q` in `.`, with no other arguments``.
    pub fn describe(&self) -> String {
        match self {
            Scope::File { tool, path } => format!("{tool} on {}", shell_word(path)),
            Scope::ExactCommand { argv, cwd, .. } => format!(
                "exactly `{}` in `{}`, with no other arguments",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Tool;

    fn run_in(cwd: &str, command: &str) -> ToolRequest {
        ToolRequest {
            tool: Tool::by_name("run_command").unwrap(),
            action: Action::Execute {
                argv: command.split(' ').map(str::to_owned).collect(),
                cwd: cwd.to_owned(),
            },
        }
    }

    fn run(command: &str) -> ToolRequest {
        run_in(".", command)
    }

    #[test]
    fn a_command_approval_covers_that_argv_only() {
        for (approved, called) in [
            // Appended words that write or delete.
            (
                "find . -name *.pyc",
                "find . -name *.pyc -o -name *.py -delete",
            ),
            ("git log", "git log --output=app.py"),
            ("sed -n 1p f", "sed -n 1p f -i"),
            // Appended operands: another file.
            ("rm a", "rm a b"),
            // Fewer words, another word, another program.
            ("pytest -q", "pytest"),
            ("pytest -q", "pytest -qx"),
            ("pytest -q", "rm -q"),
        ] {
            let scope = Scope::of(&run(approved));
            assert!(scope.covers(&run(approved)), "{approved}");
            assert!(!scope.covers(&run(called)), "{approved} → {called}");
        }
        let scope = Scope::of(&run("pytest -q"));
        assert!(
            !scope.covers(&run_in("sub", "pytest -q")),
            "another directory"
        );
    }

    #[test]
    fn the_description_names_the_whole_command_and_says_exactly() {
        let scope = Scope::of(&run("find . -name *.pyc"));
        assert_eq!(
            scope.describe(),
            "exactly `find . -name '*.pyc'` in `.`, with no other arguments"
        );
    }

    #[test]
    fn a_session_denial_covers_what_an_approval_would() {
        let mut answers = SessionApprovals::default();
        answers.grant(Scope::of(&run("rm a")));
        answers.remember(Scope::of(&run("rm b")), false);
        assert_eq!(answers.covering(&run("rm a")).map(|(_, ok)| ok), Some(true));
        assert_eq!(
            answers.covering(&run("rm b")).map(|(_, ok)| ok),
            Some(false)
        );
        assert_eq!(answers.covering(&run("rm a b")), None, "asked again");
    }
}
