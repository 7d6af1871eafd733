//! `punie ask`'s arguments and run: check every argument, start the engine, run the features'
//! run with the terminal as its front end, print the answer (or `--json`), save the session
//! for `--continue`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::agent::{self, Conversation, RunStatus};
use crate::cancel::CancelFlag;
use crate::cli::Outcome;
use crate::engine::{EngineConfig, EngineHandle, EngineSpec};
use crate::features::{
    self, Ask, DocumentSnapshot, Instruction, RunInput, RunResources, Selection, Settings,
    language_from_path, text,
};
use crate::policy::{self, Decision};
use crate::prompt::Profile;
use crate::tools::{PermissionClass, Tool};

use super::front_end::TerminalFrontEnd;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace the tools may read and change (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Engine SPEC: llama:PATH.gguf, openai:URL#MODEL or scripted:FILE.json (default: the
    /// installed default model).
    #[arg(long, value_name = "SPEC", env = "PUNIE_ENGINE")]
    pub engine: Option<String>,
    /// Prompt profile (punie-phase22, punie-typed, generic); default: the model's manifest entry.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print one JSON object instead of the markdown answer.
    #[arg(long)]
    pub json: bool,
    /// Let commands run without asking. Without it they are asked about on a terminal and
    /// refused (PermissionError) when stdin or stderr is not one.
    #[arg(long)]
    pub allow_commands: bool,
    /// Let files be written without asking. Without it writes are asked about on a terminal
    /// and refused when stdin or stderr is not one. Protected paths are refused either way.
    #[arg(long)]
    pub allow_writes: bool,
    /// Both --allow-writes and --allow-commands.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub access: crate::cli::sandbox::CommandAccessArgs,
    /// Continue the workspace's last conversation instead of starting a new one.
    #[arg(long = "continue")]
    pub continue_session: bool,
    /// Model turns at most (1 to 10000, as the `maxTurns` setting; default: the policy file's
    /// `[limits] max_turns`, else 8).
    #[arg(long, value_name = "N")]
    pub max_turns: Option<usize>,
    /// Tokens the model may write in one turn (1..=1000000); a longer answer ends `truncated`.
    #[arg(long, value_name = "N", default_value_t = crate::engine::Sampling::default().max_tokens)]
    pub max_tokens: usize,
    /// Where run transcripts go (default: <workspace>/.punie/transcripts).
    #[arg(long, value_name = "DIR")]
    pub transcript_dir: Option<PathBuf>,
    /// Time limit of one snippet, in milliseconds (default: the policy file's
    /// `[limits] timeout_ms`, else 10000).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Explain FILE, or lines of it (FILE:12 or FILE:12-30).
    #[arg(long, value_name = "FILE[:LINES]", group = "instruction")]
    pub explain: Option<String>,
    /// Fix the bugs in FILE[:LINES]; the fixed code replaces those lines.
    #[arg(long, value_name = "FILE[:LINES]", group = "instruction")]
    pub fix: Option<String>,
    /// Write tests for FILE[:LINES] into the test file the language's convention names.
    #[arg(long, value_name = "FILE[:LINES]", group = "instruction")]
    pub tests: Option<String>,
    /// Refactor FILE[:LINES]; the new code replaces those lines.
    #[arg(long, value_name = "FILE[:LINES]", group = "instruction")]
    pub refactor: Option<String>,
    /// The question (optional with --explain, --fix, --tests or --refactor); several words are
    /// joined with spaces.
    #[arg(value_name = "QUESTION", num_args = 0..)]
    pub question: Vec<String>,
}

impl Args {
    /// The instruction flag given, with its `FILE[:LINES]`.
    fn instruction(&self) -> Option<(Instruction, &str)> {
        [
            (Instruction::Explain, &self.explain),
            (Instruction::Fix, &self.fix),
            (Instruction::Tests, &self.tests),
            (Instruction::Refactor, &self.refactor),
        ]
        .into_iter()
        .find_map(|(instruction, target)| Some((instruction, target.as_deref()?)))
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let setup = Setup::from_args(&args)?;
    let engine = EngineHandle::spawn(setup.settings.engine.clone(), engine_config()?);
    let terminal = std::io::stderr().is_terminal();
    let front_end = TerminalFrontEnd::new(terminal, terminal && std::io::stdin().is_terminal());
    front_end.loading(&setup.settings.engine);
    engine
        .wait_ready()
        .map_err(|err| anyhow::anyhow!("cannot start the engine: {err}"))?;

    let cancel = CancelFlag::default();
    interrupt::cancel_on_ctrl_c(&cancel);
    let input = RunInput {
        run_id: agent::new_run_id(),
        ask: setup.ask.clone(),
        settings: setup.settings.clone(),
        profile: setup.profile.clone(),
        conversation: setup.conversation.clone(),
        remember_as: None,
        follow_ups: false,
        transcript_dir: Some(
            args.transcript_dir
                .clone()
                .unwrap_or_else(|| agent::default_transcript_dir(&setup.workspace)),
        ),
    };
    let finished = features::execute(
        input,
        &engine,
        &RunResources::default(),
        &front_end,
        &cancel,
    );
    front_end.finish();
    let outcome = &finished.outcome;

    if outcome.status.keeps_conversation()
        && let Err(err) = agent::save_workspace_session(
            &setup.workspace,
            &outcome.conversation,
            setup.profile.name(),
        )
    {
        tracing::warn!("the session was not saved, --continue will not see this run: {err:#}");
    }

    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(
            &mut stdout,
            &super::wire::outcome_json(outcome, &finished.markdown),
        )?;
        writeln!(stdout)?;
    } else if !finished.markdown.is_empty() {
        // On a terminal the model's escape sequences would act (set the title or clipboard,
        // move the cursor, conceal text); into a pipe the answer goes as it is.
        if stdout.is_terminal() {
            writeln!(stdout, "{}", policy::escape_lines(&finished.markdown))?;
        } else {
            writeln!(stdout, "{}", finished.markdown)?;
        }
    }
    stdout.flush()?;
    match &outcome.status {
        RunStatus::Done | RunStatus::TurnLimit { .. } | RunStatus::Truncated(_) => {
            Ok(Outcome::Success)
        }
        RunStatus::Cancelled => Ok(Outcome::Cancelled),
        RunStatus::Failed(reason) => bail!("the run failed: {reason}"),
    }
}

/// The arguments, checked and resolved, before anything starts.
struct Setup {
    workspace: PathBuf,
    settings: Settings,
    profile: Profile,
    conversation: Conversation,
    ask: Ask,
}

impl Setup {
    fn from_args(args: &Args) -> anyhow::Result<Setup> {
        let question = args.question.join(" ").trim().to_owned();
        let instruction = args.instruction();
        if question.is_empty() && instruction.is_none() {
            bail!(
                "the question is empty: write it after the options, e.g. punie ask \"What does main.rs do?\", \
                 or name code with --explain, --fix, --tests or --refactor FILE[:LINES]"
            );
        }
        if let Some(max_turns) = args.max_turns {
            crate::cli::check_max_turns(max_turns)?;
        }
        if !(1..=1_000_000).contains(&args.max_tokens) {
            bail!(
                "--max-tokens {}: expected a number from 1 to 1000000",
                args.max_tokens
            );
        }
        let workspace = resolve_workspace(args.workspace.as_deref())?;
        let spec = EngineSpec::parse(args.engine.as_deref().unwrap_or(""))?;
        if let EngineSpec::Scripted { path } | EngineSpec::Llama { path } = &spec
            && !path.is_file()
        {
            bail!("engine SPEC: {} is not a file", path.display());
        }
        let profile = agent::resolve_profile(&spec, None, args.profile.as_deref())?;
        let conversation = if args.continue_session {
            continued_conversation(&workspace, profile.name())?
        } else {
            Conversation::new()
        };
        let ask = match instruction {
            None => Ask {
                instruction: Instruction::Ask,
                question: Some(question),
                selection: None,
                root: workspace.clone(),
            },
            Some((instruction, target)) => Ask {
                instruction,
                question: (!question.is_empty()).then_some(question),
                selection: Some(selection(&workspace, target)?),
                root: workspace.clone(),
            },
        };
        // The policy file's policy and limits; the flags, the user's own command line, go
        // either way from there.
        let (users, problems) = features::load_policy_file();
        if let Some(problem) = problems.first() {
            bail!("the policy file: {problem}");
        }
        let mut settings = Settings {
            engine: spec,
            profile: args.profile.clone(),
            max_turns: args.max_turns.unwrap_or(users.max_turns),
            tool_policy_is_users: true,
            command_access: args.access.access()?,
            max_tokens: args.max_tokens,
            ..users
        };
        if let Some(ms) = args.timeout_ms {
            crate::cli::check_range(
                "--timeout-ms",
                ms,
                1..=crate::sandbox::SandboxLimits::MAX_TIMEOUT_MS,
            )?;
            settings.sandbox_timeout_ms = ms;
        }
        for (allowed, class) in [
            (args.allow_writes || args.yes, PermissionClass::Write),
            (args.allow_commands || args.yes, PermissionClass::Execute),
        ] {
            if allowed {
                for tool in Tool::all().filter(|tool| tool.permission() == class) {
                    settings
                        .tool_policy
                        .insert(tool.name().to_owned(), Decision::Allow);
                }
            }
        }
        Ok(Setup {
            workspace,
            settings,
            profile,
            conversation,
            ask,
        })
    }
}

/// The code `FILE[:LINES]` names: a regular file inside the workspace, at most
/// `workspace::MAX_READ_BYTES`, all of it or lines `N` or `N-M` (1-based, inclusive, whole
/// lines).
fn selection(workspace: &Path, target: &str) -> anyhow::Result<Selection> {
    let (file, lines) = match target.rsplit_once(':') {
        Some((file, lines))
            if !lines.is_empty() && lines.chars().all(|c| c.is_ascii_digit() || c == '-') =>
        {
            (file, Some(lines))
        }
        _ => (target, None),
    };
    let path = Path::new(file);
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let path = path
        .canonicalize()
        .with_context(|| format!("{file}: no such file"))?;
    if !path.starts_with(workspace) {
        bail!(
            "{file} is outside the workspace {}: pass --workspace DIR",
            workspace.display()
        );
    }
    // As a tool reads it: a repository may ship a FIFO, a device or a huge file by that name,
    // and a read that waits for a writer or never ends would hang the command.
    let bytes = crate::workspace::read_bounded(&path, file, crate::workspace::MAX_READ_BYTES)
        .map_err(|err| anyhow::anyhow!("{}", err.message))?;
    // Not UTF-8: one character per byte, and the edit keeps the file's bytes.
    let (text, _) = crate::features::text::decode(&bytes)
        .with_context(|| format!("{file}: a binary file, not text"))?;
    let (start, end) = match lines {
        None => (0, text.len()),
        Some(lines) => line_range(&text, lines).with_context(|| {
            format!("{target}: expected LINES as N or N-M within the file's lines")
        })?,
    };
    Ok(Selection {
        document: DocumentSnapshot {
            id: path.display().to_string(),
            language_id: language_from_path(Some(&path)),
            path: Some(path),
            text: Arc::new(text),
            version: None,
        },
        start,
        end,
    })
}

/// Byte offsets of 1-based lines `N` or `N-M`, line breaks of the last line included.
fn line_range(text: &str, lines: &str) -> Option<(usize, usize)> {
    let (first, last) = match lines.split_once('-') {
        Some((first, last)) => (first.parse::<usize>().ok()?, last.parse::<usize>().ok()?),
        None => {
            let line = lines.parse::<usize>().ok()?;
            (line, line)
        }
    };
    if first == 0 || last < first {
        return None;
    }
    let starts = text::line_starts(text);
    let n_lines = if text.ends_with(['\n', '\r']) {
        starts.len() - 1
    } else {
        starts.len()
    };
    if last > n_lines {
        return None;
    }
    let end = starts.get(last).copied().unwrap_or(text.len());
    Some((starts[first - 1], end))
}

fn resolve_workspace(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(dir) => dir.to_owned(),
        None => std::env::current_dir()
            .context("cannot read the current directory: pass --workspace DIR")?,
    };
    if !dir.is_dir() {
        bail!("--workspace {}: no such directory", dir.display());
    }
    dir.canonicalize()
        .with_context(|| format!("--workspace {}", dir.display()))
}

fn continued_conversation(workspace: &Path, profile: &str) -> anyhow::Result<Conversation> {
    match agent::load_workspace_session(workspace)? {
        None => {
            tracing::info!(
                "--continue: no saved session in {}, starting a new one",
                agent::default_session_path(workspace).display()
            );
            Ok(Conversation::new())
        }
        Some(saved) if saved.profile != profile => bail!(
            "--continue: the saved session used profile `{}`, not `{profile}`: pass --profile {} or drop --continue",
            saved.profile,
            saved.profile
        ),
        Some(saved) => Ok(saved.conversation),
    }
}

fn engine_config() -> anyhow::Result<EngineConfig> {
    EngineConfig::from_env().map_err(anyhow::Error::msg)
}

/// Ctrl-C cancels the run instead of killing the process, so the transcript gets its `end` line.
mod interrupt {
    use std::io::Read;
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::sync::atomic::{AtomicI32, Ordering};

    use crate::cancel::CancelFlag;

    /// The write end of the pipe the handler wakes the watcher thread through; -1 before.
    static WAKE: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_sigint(_signal: libc::c_int) {
        // Only an atomic load and write(2): nothing else is async-signal-safe.
        let fd = WAKE.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: writes one byte from a valid buffer; the pipe does not block (a full
            // pipe has woken the watcher already).
            unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
        }
    }

    pub(super) fn cancel_on_ctrl_c(cancel: &CancelFlag) {
        let (mut woken, wake) = match std::io::pipe() {
            Ok(pipe) => pipe,
            Err(err) => {
                tracing::warn!("Ctrl-C will stop punie without an end line: {err}");
                return;
            }
        };
        // SAFETY: fcntl on a descriptor we own, with integer arguments.
        unsafe {
            let flags = libc::fcntl(wake.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(wake.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        // Kept open for the life of the process: the handler may run at any time.
        WAKE.store(wake.into_raw_fd(), Ordering::SeqCst);
        let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installs a handler that only loads an atomic and writes to a pipe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
        }
        let cancel = cancel.clone();
        let _ = std::thread::Builder::new()
            .name("punie-ctrl-c".to_owned())
            .spawn(move || {
                // Blocks until the handler writes (`read_exact` retries an interrupted read).
                if woken.read_exact(&mut [0u8]).is_ok() {
                    cancel.cancel();
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::line_range;

    #[test]
    fn lines_are_one_based_and_whole() {
        let text = "a\nbb\nccc\n";
        assert_eq!(line_range(text, "1"), Some((0, 2)));
        assert_eq!(line_range(text, "2-3"), Some((2, 9)));
        assert_eq!(line_range(text, "3-4"), None);
        assert_eq!(line_range(text, "0"), None);
        assert_eq!(line_range(text, "3-2"), None);
        assert_eq!(line_range("a\nb", "2"), Some((2, 3)));
    }
}
