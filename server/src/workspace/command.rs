//! `run_command`: one program, argv only (never a shell), confined working directory,
//! scrubbed environment, its own timeout and output cap, killed with its process group.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ToolError;
use crate::cancel::CancelFlag;

/// Limits of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLimits {
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr each; the rest is read and dropped.
    pub output_bytes: usize,
}

impl Default for CommandLimits {
    fn default() -> CommandLimits {
        // Punie's bridge waited 30 s for each host call.
        CommandLimits {
            timeout: Duration::from_secs(30),
            output_bytes: 256 * 1024,
        }
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    /// `None` when a signal ended it.
    pub exit_code: Option<i32>,
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
            res.push_str("[output truncated]");
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

/// Python's `shlex.split(text)` (POSIX mode, no comments).
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

/// The environment a command sees: enough to find programs and speak UTF-8, nothing else
/// (no tokens or keys from the editor's environment).
fn scrubbed_env() -> Vec<(String, String)> {
    const KEEP: &[&str] = &[
        "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER",
    ];
    let mut res: Vec<(String, String)> = KEEP
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| ((*name).to_owned(), value))
        })
        .collect();
    if !res.iter().any(|(name, _)| name == "PATH") {
        res.push(("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()));
    }
    res.push(("TERM".to_owned(), "dumb".to_owned()));
    res.push(("NO_COLOR".to_owned(), "1".to_owned()));
    res
}

/// Runs `argv` in `cwd` (already confined) and waits, at most `limits.timeout`, stopping at
/// once when `cancel` is set. The command and everything it started run in their own
/// process group, which is killed when the command ends, times out or is cancelled.
pub fn run_command(
    argv: &[String],
    cwd: &Path,
    limits: &CommandLimits,
    cancel: &CancelFlag,
) -> Result<CommandOutput, ToolError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| ToolError::new("ValueError", "empty command"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(scrubbed_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ToolError::new(
            "FileNotFoundError",
            format!("command not found: '{program}'"),
        ),
        std::io::ErrorKind::PermissionDenied => {
            ToolError::permission(format!("cannot execute '{program}': Permission denied"))
        }
        _ => ToolError::new("OSError", format!("cannot run '{program}': {err}")),
    })?;
    let cap = limits.output_bytes;
    let stdout = child
        .stdout
        .take()
        .map(|pipe| std::thread::spawn(move || read_capped(pipe, cap)));
    let stderr = child
        .stderr
        .take()
        .map(|pipe| std::thread::spawn(move || read_capped(pipe, cap)));

    let start = Instant::now();
    let mut stopped: Option<ToolError> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if cancel.is_cancelled() {
            stopped = Some(ToolError::new("KeyboardInterrupt", "the run was cancelled"));
        } else if start.elapsed() >= limits.timeout {
            stopped = Some(ToolError::new(
                "TimeoutError",
                format!(
                    "command timed out after {} s: {}",
                    limits.timeout.as_secs_f32(),
                    argv.join(" ")
                ),
            ));
        }
        if stopped.is_some() {
            kill_group(&mut child);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever the command left running dies with it, so that the pipes close.
    kill_group(&mut child);
    let (stdout, out_truncated) = stdout.and_then(|it| it.join().ok()).unwrap_or_default();
    let (stderr, err_truncated) = stderr.and_then(|it| it.join().ok()).unwrap_or_default();
    if let Some(err) = stopped {
        return Err(err);
    }
    Ok(CommandOutput {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        exit_code: status.and_then(|status| status.code()),
        truncated: out_truncated || err_truncated,
    })
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let pgid = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we created for the
        // child; it touches no memory of ours.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Reads everything, keeping the first `cap` bytes.
fn read_capped(mut pipe: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut res = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n_read) => {
                let room = cap.saturating_sub(res.len());
                if n_read > room {
                    truncated = true;
                }
                res.extend_from_slice(&buf[..n_read.min(room)]);
            }
        }
    }
    (res, truncated)
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
