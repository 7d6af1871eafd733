//! The `punie` binary: routes subcommands, sets up logging to stderr, decides exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use punie::cli;

#[derive(Debug, Parser)]
#[command(
    name = "punie",
    version,
    about = "Local AI coding assistant for any LSP or ACP editor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Language server over stdin/stdout (logs go to stderr).
    Lsp(cli::lsp::Args),
    /// Agent Client Protocol agent over stdin/stdout (Zed's agent panel, JetBrains, …).
    Acp(cli::acp::Args),
    /// One agent run from the terminal: the answer on stdout, progress on stderr.
    Ask(cli::ask::Args),
    /// Run one Python snippet from stdin in the Code Mode sandbox; prints a JSON result.
    Sandbox(cli::sandbox::Args),
    /// Print the prompt the engine would see for `{"messages": [...]}` on stdin.
    RenderPrompt(cli::render_prompt::Args),
    /// Parse raw model output from stdin into text and tool calls (JSON).
    Parse(cli::parse::Args),
    /// Run an evaluation suite and print a score table.
    Eval(cli::eval::Args),
    /// Performance figures.
    Bench(cli::bench::Args),
    /// Install, list and inspect models.
    Models(cli::models::Args),
    /// Internal: the sandbox worker process (started by Punie itself).
    #[command(hide = true)]
    SandboxWorker(cli::sandbox::WorkerArgs),
    /// Internal: runs one command inside the jail (started by Punie itself).
    #[command(hide = true)]
    JailExec,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::JailExec = cli.command {
        // Before logging: the helper's stdout and stderr are the command's.
        return punie::jail::helper_main();
    }
    init_logging();
    let result = match cli.command {
        Command::Lsp(args) => cli::lsp::run(args),
        Command::Acp(args) => cli::acp::run(args),
        Command::Ask(args) => cli::ask::run(args),
        Command::Sandbox(args) => cli::sandbox::run(args),
        Command::RenderPrompt(args) => cli::render_prompt::run(args),
        Command::Parse(args) => cli::parse::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Models(args) => cli::models::run(args),
        Command::SandboxWorker(args) => cli::sandbox::run_worker(args),
        Command::JailExec => unreachable!("handled before logging starts"),
    };
    // Language servers started for navigation end with the process anyway; stopping them
    // here also removes their private directories.
    punie::typed::stop_language_servers();
    let code = match result {
        Ok(cli::Outcome::Success) => 0,
        Ok(cli::Outcome::Failure) => 1,
        Ok(cli::Outcome::Cancelled) => 130,
        Err(err) => {
            // One line: what failed and why (the anyhow chain), as INTERFACES.md §1 asks,
            // escaped: errors quote what files said (a saved session's profile, a model's
            // metadata), and an escape sequence or a line break there would act on the terminal.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("punie: {}", punie::policy::one_line(&format!("{err:#}")));
            }
            1
        }
    };
    exit_now(code)
}

/// Ends the process at once, without the C and C++ exit handlers. A dropped `EngineHandle`
/// does not wait for its thread (ARCHITECTURE.md, "Nobody waits on an engine but its own
/// job's caller"), so an engine may still be decoding, preparing the next prompt, when the
/// front end is done; llama.cpp's global objects destroyed under it crashed `punie acp` with
/// a signal at exit on a loaded machine. Everything Punie keeps is written before this.
fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; the streams were flushed above.
    unsafe { libc::_exit(code) }
}

/// Logs go to stderr only: stdout belongs to the LSP stream and to JSON output.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUNIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
