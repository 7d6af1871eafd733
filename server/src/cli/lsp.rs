//! `punie lsp`: the language server on stdin/stdout. Logs go to stderr (`PUNIE_LOG=info`).

use crate::cli::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accepted for editors that pass it by habit; stdio is the only transport.
    #[arg(long, hide = true)]
    stdio: bool,
}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    let exit = crate::lsp::run_stdio()?;
    // LSP: exit code 0 after `shutdown`, 1 without.
    Ok(if exit.clean {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
