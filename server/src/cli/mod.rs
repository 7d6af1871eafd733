//! The `punie` subcommands: argument types and the code that runs each one.
//!
//! Each file owns one subcommand's `Args` struct (clap derive) and its `run` function, which
//! returns an [`Outcome`]; `main.rs` routes and turns the outcome into the exit code.

pub mod acp;
pub mod ask;
pub mod bench;
pub mod eval;
pub mod lsp;
pub mod models;
pub mod parse;
pub mod render_prompt;
pub mod sandbox;

/// How a command that did not fail with an error ended. `main.rs` decides the exit code of
/// each (an error is always 1, after one line on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (exit code 0).
    Success,
    /// It ran to the end and reported a failure itself: `models parity` found a mismatch,
    /// the LSP client exited without `shutdown` (exit code 1).
    Failure,
    /// The user cancelled it with Ctrl-C (exit code 130, as shells report a death by SIGINT).
    Cancelled,
}

/// `--max-turns N` within what the `maxTurns` setting accepts.
fn check_max_turns(max_turns: usize) -> anyhow::Result<()> {
    check_range(
        "--max-turns",
        max_turns as u64,
        crate::features::Settings::MAX_TURNS,
    )
}

/// `value` of `flag` within `range` (the settings' and the sandbox's own bounds, never a
/// silent clamp), or one clear line saying what is expected.
fn check_range(flag: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> anyhow::Result<()> {
    if !range.contains(&value) {
        anyhow::bail!(
            "{flag} {value}: expected a number from {} to {}",
            range.start(),
            range.end()
        );
    }
    Ok(())
}
