//! Permission questions on the terminal: the prompt's text and the change (diff, argv) on
//! stderr, the answer from stdin: `y` once, `n` no, `a` always for this session (only where
//! the prompt offers it), `d` the whole text. Without a terminal there is no one to ask, and
//! the answer says which flag allows the call instead.

use std::io::{BufRead, Write};
use std::time::Duration;

use crate::cancel::CancelFlag;
use crate::policy::{Answer, Prompt, PromptKind};

/// How much of a command line or path the question shows before offering `d`.
const SUBJECT_CHARS: usize = 2_000;
/// How many lines of a diff the question shows before offering `d`.
const DIFF_LINES: usize = 60;

/// The flag that allows what `prompt` asks about without a terminal.
pub(super) fn flag_for(prompt: &Prompt) -> &'static str {
    match prompt.kind {
        PromptKind::Write => "--allow-writes",
        PromptKind::Execute | PromptKind::Call => "--allow-commands",
        // Reads ask only when the user's own policy file says so.
        PromptKind::Read => "read_file = \"allow\" in the policy file",
    }
}

/// What the terminal shows for `prompt`: the message, then the diff up to [`DIFF_LINES`]
/// lines with a note of what is left, then the question.
pub(super) fn question_text(prompt: &Prompt) -> String {
    let mut res = format!("\n{}\n", prompt.message(SUBJECT_CHARS));
    let mut cut = prompt.is_cut(SUBJECT_CHARS);
    if let Some(diff) = prompt
        .change
        .as_ref()
        .and_then(|change| change.diff.unified.as_ref())
    {
        let lines: Vec<&str> = diff.lines().collect();
        res.push('\n');
        for line in lines.iter().take(DIFF_LINES) {
            res.push_str(line);
            res.push('\n');
        }
        if lines.len() > DIFF_LINES {
            cut = true;
            res.push_str(&format!(
                "… [{} more lines of the diff not shown]\n",
                lines.len() - DIFF_LINES
            ));
        }
    }
    res.push_str(&choices(prompt, cut));
    res
}

fn choices(prompt: &Prompt, cut: bool) -> String {
    let mut res = String::from("Allow? [y]es once, [n]o");
    if prompt.session.is_some() {
        res.push_str(", [a]lways for this session");
    }
    if cut {
        res.push_str(", [d]etails (the whole text)");
    }
    res.push_str(": ");
    res
}

/// What an answer line means; `None` asks again.
pub(super) fn parse_answer(line: &str, prompt: &Prompt) -> Option<Reply> {
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(Reply::Answer(Answer::AllowOnce)),
        "n" | "no" | "" => Some(Reply::Answer(Answer::Deny)),
        "a" | "always" if prompt.session.is_some() => Some(Reply::Answer(Answer::AllowForSession)),
        "d" | "details" => Some(Reply::Details),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    Answer(Answer),
    Details,
}

/// Asks `prompt` on the terminal and waits for an answer, giving up when `cancel` is set
/// (Ctrl-C) or stdin ends.
pub(super) fn ask(prompt: &Prompt, cancel: &CancelFlag) -> Answer {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{}", question_text(prompt));
    let _ = stderr.flush();
    loop {
        let Some(line) = read_line(cancel) else {
            let _ = writeln!(stderr);
            return Answer::NoAnswer;
        };
        match parse_answer(&line, prompt) {
            Some(Reply::Answer(answer)) => return answer,
            Some(Reply::Details) => {
                let _ = write!(stderr, "\n{}\n{}", prompt.details(), choices(prompt, false));
            }
            None => {
                let _ = write!(stderr, "{}", choices(prompt, prompt.is_cut(SUBJECT_CHARS)));
            }
        }
        let _ = stderr.flush();
    }
}

/// One line from stdin, waiting in short polls so that Ctrl-C (which sets `cancel`) ends
/// the wait; `None` on cancel, end of input or an error.
fn read_line(cancel: &CancelFlag) -> Option<String> {
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        let mut fds = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = Duration::from_millis(50).as_millis() as libc::c_int;
        // SAFETY: one valid pollfd on our own stdin, for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, timeout_ms) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if ready == 0 {
            continue;
        }
        // A terminal in canonical mode reports input only once a whole line is typed.
        let mut line = String::new();
        return match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Before, Target, default_prompt};

    #[test]
    fn the_question_shows_the_change_and_the_choices() {
        let old: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        let prompt = default_prompt(
            Action::Write {
                target: Target::existing_file("notes.txt"),
                before: Before::Text(old),
                after: "short\n".to_owned(),
            },
            "write_file",
        );
        let text = question_text(&prompt);
        assert!(text.contains("Punie wants to write notes.txt"), "{text}");
        assert!(text.contains("-line 1\n"), "{text}");
        assert!(text.contains("more lines of the diff not shown]"), "{text}");
        assert!(text.ends_with(
            "Allow? [y]es once, [n]o, [a]lways for this session, [d]etails (the whole text): "
        ));
        assert_eq!(flag_for(&prompt), "--allow-writes");

        let command = default_prompt(
            Action::Execute {
                argv: vec!["pytest".into(), "-q".into()],
                cwd: ".".into(),
            },
            "run_command",
        );
        let text = question_text(&command);
        assert!(text.contains("Punie wants to run: pytest -q"), "{text}");
        assert!(text.ends_with("Allow? [y]es once, [n]o, [a]lways for this session: "));
        assert_eq!(flag_for(&command), "--allow-commands");
    }

    #[test]
    fn answers() {
        let prompt = default_prompt(
            Action::Execute {
                argv: vec!["ls".into()],
                cwd: ".".into(),
            },
            "run_command",
        );
        assert_eq!(
            parse_answer("y\n", &prompt),
            Some(Reply::Answer(Answer::AllowOnce))
        );
        assert_eq!(
            parse_answer(" Always ", &prompt),
            Some(Reply::Answer(Answer::AllowForSession))
        );
        assert_eq!(
            parse_answer("\n", &prompt),
            Some(Reply::Answer(Answer::Deny))
        );
        assert_eq!(parse_answer("d", &prompt), Some(Reply::Details));
        assert_eq!(parse_answer("maybe", &prompt), None);
        let mut no_session = prompt.clone();
        no_session.session = None;
        assert_eq!(parse_answer("a", &no_session), None, "not offered");
    }
}
