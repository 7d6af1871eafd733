//! `punie acp`: the ACP agent on stdin/stdout (INTERFACES.md §5). Logs go to stderr.

use crate::acp::AcpOptions;
use crate::cli::Outcome;
use crate::engine::EngineSpec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Engine SPEC: llama:PATH.gguf, openai:URL#MODEL or scripted:FILE.json; offered first in
    /// the model selector (default: the installed models).
    #[arg(long, value_name = "SPEC", env = "PUNIE_ENGINE")]
    pub engine: Option<String>,
    /// Prompt profile (punie-phase22, punie-typed, generic); default: the model's own.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let engine = match args.engine.as_deref().filter(|spec| !spec.is_empty()) {
        Some(spec) => Some(EngineSpec::parse(spec)?),
        None => None,
    };
    if let Some(profile) = &args.profile {
        crate::prompt::Profile::parse(profile)?;
    }
    crate::acp::run_stdio(AcpOptions {
        engine,
        profile: args.profile,
    })?;
    Ok(Outcome::Success)
}
