//! `run_command`: one program, argv only (never a shell), in a confined working directory,
//! inside the jail (`crate::jail`), with its own deadline and output cap.
//!
//! A workspace whose root is itself protected (a bare repository, a `.github` or `.vscode`
//! folder, a Python environment opened as the folder, or one inside such: `jail::root_rule`)
//! is read-only to commands as a whole, rather than refusing them: `git log`, ruff, pytest
//! and navigation's language server only read, and a write fails in the command with the
//! reason noted on its stderr. Protected paths in an ordinary workspace stay read-only one
//! by one, the rest writable.

use std::path::Path;
use std::time::{Duration, Instant};

use super::ToolError;
use crate::cancel::CancelFlag;
use crate::jail;

/// Limits of one command: how long, how much output, and what it may reach beyond the
/// workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLimits {
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr each; a command that prints more is stopped.
    pub output_bytes: usize,
    pub access: jail::Access,
}

impl Default for CommandLimits {
    fn default() -> CommandLimits {
        // Punie's bridge waited 30 s for each host call.
        CommandLimits {
            timeout: Duration::from_secs(30),
            output_bytes: 256 * 1024,
            access: jail::Access::default(),
        }
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    /// `None` when a signal ended it, or it was stopped at the output limit.
    pub exit_code: Option<i32>,
    /// It printed more than the limit and was stopped; the output is the first part.
    pub truncated: bool,
}

impl CommandOutput {
    /// The text `run_command` returns to the snippet: stdout, then stderr, as a terminal
    /// shows them; a non-zero exit is noted on a last line (`[exit code: 1]`) so that the
    /// model can tell "no matches" from success.
    pub fn to_tool_text(&self) -> String {
        let mut res = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !res.is_empty() && !res.ends_with('\n') {
                res.push('\n');
            }
            res.push_str(&self.stderr);
        }
        if self.truncated {
            if !res.ends_with('\n') {
                res.push('\n');
            }
            res.push_str(
                "[output truncated: the command printed more than the limit and was stopped]",
            );
            return res;
        }
        match self.exit_code {
            Some(0) => {}
            Some(code) => {
                if !res.is_empty() && !res.ends_with('\n') {
                    res.push('\n');
                }
                res.push_str(&format!("[exit code: {code}]"));
            }
            None => {
                if !res.is_empty() && !res.ends_with('\n') {
                    res.push('\n');
                }
                res.push_str("[killed by a signal]");
            }
        }
        res
    }
}

/// The argv for a call: `command` split with POSIX shell quoting when `args` is `None`
/// (`run_command("grep -rn 'class' .")`), else `[command, *args]`. Shell operators (`|`,
/// `;`, `>`) stay plain arguments: there is no shell.
pub fn split_command(command: &str, args: Option<&[String]>) -> Result<Vec<String>, ToolError> {
    let res = match args {
        Some(args) => {
            let mut res = vec![command.to_owned()];
            res.extend(args.iter().cloned());
            res
        }
        None => split_posix(command).map_err(|why| {
            ToolError::new(
                "ValueError",
                format!(
                    "cannot split the command line ({why}): {command}; \
                     pass the program and args=[...] separately"
                ),
            )
        })?,
    };
    if res.first().is_none_or(|program| program.is_empty()) {
        return Err(ToolError::new("ValueError", "empty command"));
    }
    if res.iter().any(|arg| arg.contains('\0')) {
        return Err(ToolError::new(
            "ValueError",
            "embedded null byte in command",
        ));
    }
    Ok(res)
}

/// Python's `shlex.split(text)` (POSIX mode, no comments), which the original Punie's
/// `run_command` used and the model learned to write for; checked on every training call
/// (`tests/fixtures/punie/run_command_splits.json`). Not the `shlex` crate: it reads an
/// unquoted `#` as a comment (`grep -rn # .` would lose its pattern and path), honours
/// `\$` and `` \` `` inside double quotes, and drops a backslash-newline, where Python keeps
/// them all.
fn split_posix(text: &str) -> Result<Vec<String>, &'static str> {
    let mut res = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    res.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => word.push(escaped),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("no closing quotation"),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(escaped) => word.push(escaped),
                    None => return Err("no escaped character"),
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        res.push(word);
    }
    Ok(res)
}

/// Runs `argv` in `cwd` (already confined to `workspace`) inside the jail (`crate::jail`:
/// writes only in the workspace and a private directory, no network unless allowed, no
/// secrets, no other processes, a clean environment) and waits at most `limits.timeout`,
/// stopping at once when `cancel` is set. Everything the command started is gone when this
/// returns. The one way a program runs on behalf of the model: `run_command` and the typed
/// tools alike.
pub fn run_command(
    argv: &[String],
    cwd: &Path,
    workspace: &Path,
    limits: &CommandLimits,
    cancel: &CancelFlag,
) -> Result<CommandOutput, ToolError> {
    let program = argv
        .first()
        .ok_or_else(|| ToolError::new("ValueError", "empty command"))?;
    let started = Instant::now();
    let run_limits = jail::RunLimits {
        deadline: started + limits.timeout,
        output_bytes: limits.output_bytes,
    };
    // Nothing runs where the protected paths cannot all be found.
    let found = jail::protected_for_command(workspace)
        .map_err(|failure| ToolError::permission(format!("cannot run '{program}': {failure}")))?;
    // The command's own flag: the caller's, or a watcher's when it fills the disk or makes a
    // protected path.
    let command_cancel = CancelFlag::joined(&[cancel], None);
    let protected_watch = super::protected_watch::ProtectedWatch::start(
        workspace,
        &found.dirs,
        &found.paths,
        &command_cancel,
    )
    .map_err(|why| ToolError::permission(format!("cannot run '{program}': {why}")))?;
    let read_only_root = found.root_rule;
    let protected_at_start = super::quarantine::Before::new(found.paths);
    let disk_guard = super::disk_guard::DiskGuard::watch(workspace, &command_cancel);
    let ran = jail::run(
        argv,
        cwd,
        workspace,
        protected_at_start.paths(),
        &limits.access,
        &run_limits,
        &command_cancel,
    );
    let filled_the_disk = disk_guard.stopped_because();
    drop(disk_guard);
    // After the run: every process is gone, so every event it caused is queued.
    let made_protected = protected_watch.finish();
    // Everything the command started is gone (a helper that died took its namespace with it):
    // nothing can create another one now. A failed run is swept too: its command may have
    // written before the helper died.
    let moved_aside = super::quarantine::sweep(workspace, &protected_at_start);
    let with_note = |mut error: ToolError| {
        if let Some(note) = &moved_aside {
            error.message = format!("{}\n{note}", error.message);
        }
        error
    };
    let finished = ran.map_err(|failure| {
        with_note(match failure {
            jail::Failure::NotFound(message) => ToolError::new("FileNotFoundError", message),
            jail::Failure::NotPermitted(message) | jail::Failure::Refused(message) => {
                ToolError::permission(message)
            }
            jail::Failure::Helper(message) => {
                ToolError::new("OSError", format!("cannot run '{program}': {message}"))
            }
        })
    })?;
    // However it ended, stopped or first: what it did is the same.
    if let Some(why) = made_protected {
        return Err(with_note(ToolError::permission(why)));
    }
    let exit_code = match finished.end {
        jail::End::Cancelled if let Some(why) = filled_the_disk => {
            return Err(with_note(ToolError::new("OSError", why)));
        }
        jail::End::Exited(code) => Some(code),
        jail::End::Signalled(_) | jail::End::OutputLimit => None,
        // A flag whose own deadline passed is the caller's time limit (the snippet's time
        // running out), not the user cancelling.
        jail::End::Cancelled if !cancel.deadline_passed() => {
            return Err(with_note(ToolError::new(
                "KeyboardInterrupt",
                "the run was cancelled",
            )));
        }
        jail::End::TimedOut | jail::End::Cancelled => {
            return Err(with_note(timed_out(
                argv,
                limits.timeout.min(started.elapsed()),
            )));
        }
    };
    let mut stderr = String::from_utf8_lossy(&finished.stderr).into_owned();
    if let Some(rule) = read_only_root
        && exit_code != Some(0)
    {
        // What a write there said (`Read-only file system`) does not say why.
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&format!(
            "[the workspace folder is protected ({}): commands may read it, not change it]\n",
            rule.reason
        ));
    }
    if let Some(note) = moved_aside {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&note);
        stderr.push('\n');
    }
    Ok(CommandOutput {
        stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
        stderr,
        exit_code,
        truncated: finished.end == jail::End::OutputLimit,
    })
}

/// The error of a command stopped at its time limit: the limit, and the command as it would
/// be typed (cut short when long: the model wrote it and already has it).
fn timed_out(argv: &[String], limit: Duration) -> ToolError {
    const MAX_SHOWN: usize = 200;
    let mut shown = argv.join(" ");
    if shown.len() > MAX_SHOWN {
        shown.truncate(shown.floor_char_boundary(MAX_SHOWN));
        shown.push('…');
    }
    ToolError::new(
        "TimeoutError",
        format!(
            "command timed out after {:.1} s: {shown}",
            limit.as_secs_f32()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_split(input: &str, expect: &[&str]) {
        assert_eq!(split_command(input, None).unwrap(), expect);
    }

    #[test]
    fn splits_like_python_shlex() {
        check_split("grep -r pattern .", &["grep", "-r", "pattern", "."]);
        check_split(
            "grep -r \"class.*Protocol\" . --include \"*.py\"",
            &["grep", "-r", "class.*Protocol", ".", "--include", "*.py"],
        );
        check_split("echo 'hello world'", &["echo", "hello world"]);
        check_split("grep -rn '#' .", &["grep", "-rn", "#", "."]);
        check_split(
            "echo a|b ; rm -rf x",
            &["echo", "a|b", ";", "rm", "-rf", "x"],
        );
        check_split(r#"echo "a\"b" c\ d"#, &["echo", "a\"b", "c d"]);
    }

    #[test]
    fn splits_every_training_call_as_python_did() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/punie/run_command_splits.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let splits: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_str(&text).unwrap();
        assert!(splits.len() > 200, "{} commands in {path}", splits.len());
        for (command, python) in &splits {
            assert_eq!(&split_command(command, None).unwrap(), python, "{command}");
        }
    }

    #[test]
    fn an_unquoted_hash_is_a_word_not_a_comment() {
        check_split("grep -rn # .", &["grep", "-rn", "#", "."]);
        check_split("echo a\\\nb", &["echo", "a\nb"]);
    }

    #[test]
    fn unbalanced_quotes_are_a_clear_error() {
        let err = split_command("grep 'oops .", None).unwrap_err();
        assert_eq!(err.type_name, "ValueError");
        assert!(err.message.contains("no closing quotation"), "{err}");
    }

    #[test]
    fn argv_form_is_kept() {
        let args = vec!["-r".to_owned(), "pattern".to_owned()];
        assert_eq!(
            split_command("grep", Some(&args)).unwrap(),
            ["grep", "-r", "pattern"]
        );
        assert_eq!(split_command("ls", None).unwrap(), ["ls"]);
        assert!(split_command("", None).is_err());
    }
}
