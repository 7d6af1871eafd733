//! `punie ask`'s arguments and run: check every argument, start the engine and the sandbox,
//! run the agent, print the answer (or `--json`), save the session for `--continue`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::agent::{self, Conversation, RunRequest, RunStatus};
use crate::cancel::CancelFlag;
use crate::engine::{EngineConfig, EngineHandle, EngineSpec, Sampling};
use crate::prompt::Profile;
use crate::sandbox::{DiskToolHost, Sandbox, SandboxLimits};

/// Exit status of a cancelled run (Ctrl-C), as shells report a SIGINT death.
const EXIT_CANCELLED: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace the tools may read and change (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Engine SPEC: llama:PATH.gguf, openai:URL#MODEL or scripted:FILE.json (default: the
    /// installed default model).
    #[arg(long, value_name = "SPEC", env = "PUNIE_ENGINE")]
    pub engine: Option<String>,
    /// Prompt profile (punie-phase22, generic); default: the model's manifest entry.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print one JSON object instead of the markdown answer.
    #[arg(long)]
    pub json: bool,
    /// Let run_command run without asking (without it, run_command raises PermissionError).
    #[arg(long)]
    pub allow_commands: bool,
    /// Continue the workspace's last conversation instead of starting a new one.
    #[arg(long = "continue")]
    pub continue_session: bool,
    /// Model turns at most (1..=10000).
    #[arg(long, value_name = "N", default_value_t = agent::DEFAULT_MAX_TURNS)]
    pub max_turns: usize,
    /// Where run transcripts go (default: <workspace>/.punie/transcripts).
    #[arg(long, value_name = "DIR")]
    pub transcript_dir: Option<PathBuf>,
    /// Time limit of one snippet, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// The question; several words are joined with spaces.
    #[arg(required = true, value_name = "QUESTION", num_args = 1..)]
    pub question: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let setup = Setup::from_args(&args)?;
    let engine = EngineHandle::spawn(setup.spec.clone(), engine_config()?);
    let mut progress = super::progress::Progress::new(std::io::stderr().is_terminal(), args.json);
    progress.loading(&setup.spec);
    engine
        .wait_ready()
        .map_err(|err| anyhow::anyhow!("cannot start the engine: {err}"))?;

    let mut limits = SandboxLimits::default();
    if let Some(ms) = args.timeout_ms {
        limits.timeout_ms = ms;
    }
    let mut sandbox = Sandbox::new(limits).context("cannot start the sandbox")?;
    let host = DiskToolHost {
        root: setup.workspace.clone(),
        allow_commands: args.allow_commands,
    };
    let cancel = CancelFlag::default();
    interrupt::cancel_on_ctrl_c(&cancel);

    let request = RunRequest {
        run_id: agent::new_run_id(),
        question: setup.question.clone(),
        conversation: setup.conversation.clone(),
        profile: setup.profile.clone(),
        max_turns: args.max_turns,
        sampling: Sampling::default(),
        transcript_dir: Some(
            args.transcript_dir
                .clone()
                .unwrap_or_else(|| agent::default_transcript_dir(&setup.workspace)),
        ),
    };
    let outcome = agent::run(
        &engine,
        &mut sandbox,
        &host,
        &cancel,
        request,
        &mut |event| progress.event(&event),
    );
    progress.finish();

    if outcome.status.keeps_conversation() {
        let session_path = agent::default_session_path(&setup.workspace);
        if let Err(err) =
            agent::save_session(&session_path, &outcome.conversation, setup.profile.name())
        {
            tracing::warn!("the session was not saved, --continue will not see this run: {err:#}");
        }
    }

    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &super::wire::outcome_json(&outcome))?;
        writeln!(stdout)?;
    } else if !outcome.answer.is_empty() {
        writeln!(stdout, "{}", outcome.answer)?;
    }
    stdout.flush()?;
    match outcome.status {
        RunStatus::Done | RunStatus::Truncated(_) => Ok(ExitCode::SUCCESS),
        RunStatus::Cancelled => Ok(ExitCode::from(EXIT_CANCELLED)),
        RunStatus::Failed(reason) => bail!("the run failed: {reason}"),
    }
}

/// The arguments, checked and resolved, before anything starts.
struct Setup {
    workspace: PathBuf,
    spec: EngineSpec,
    profile: Profile,
    conversation: Conversation,
    question: String,
}

impl Setup {
    fn from_args(args: &Args) -> anyhow::Result<Setup> {
        let question = args.question.join(" ").trim().to_owned();
        if question.is_empty() {
            bail!(
                "the question is empty: write it after the options, e.g. punie ask \"What does main.rs do?\""
            );
        }
        if !(1..=10_000).contains(&args.max_turns) {
            bail!(
                "--max-turns {}: expected a number from 1 to 10000",
                args.max_turns
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
        Ok(Setup {
            workspace,
            spec,
            profile,
            conversation,
            question,
        })
    }
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
    let path = agent::default_session_path(workspace);
    match agent::load_session(&path)? {
        None => {
            tracing::info!(
                "--continue: no saved session in {}, starting a new one",
                path.display()
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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use crate::cancel::CancelFlag;

    static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_sigint(_signal: libc::c_int) {
        // Only an atomic store: nothing else is async-signal-safe.
        INTERRUPTED.store(true, Ordering::SeqCst);
    }

    pub(super) fn cancel_on_ctrl_c(cancel: &CancelFlag) {
        let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGINT, handler);
        }
        let cancel = cancel.clone();
        let _ = std::thread::Builder::new()
            .name("punie-ctrl-c".to_owned())
            .spawn(move || {
                loop {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        cancel.cancel();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
    }
}
