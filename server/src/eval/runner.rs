//! Running a suite: one fresh workspace per query, the real agent loop and sandbox, then the
//! scorer.

use std::path::PathBuf;

use anyhow::Context;

use crate::agent::{self, CodeRunner, Conversation, RunEvent, RunOutcome, RunRequest, Strategy};
use crate::cancel::CancelFlag;
use crate::engine::{EngineConfig, EngineHandle, EngineSpec, Sampling};
use crate::prompt::Profile;
use crate::sandbox::DiskToolHost;

use super::facts::expected_facts;
use super::score::{QueryScore, RunFacts, score};
use super::suite::{Query, Suite};
use super::workspace;

/// Which engine answers the queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// One engine for every query, loaded once (its KV cache carries over between queries,
    /// as in an editor session; only the system prompt is shared, so answers do not leak).
    Shared(EngineSpec),
    /// `--engine scripted:DIR`: each query runs the scripted engine on `DIR/<query id>.json`.
    /// A query without its file fails with the engine's "cannot read" message.
    ScriptDir(PathBuf),
}

impl EngineChoice {
    /// `scripted:DIR` with a directory becomes [`EngineChoice::ScriptDir`].
    pub fn from_spec(spec: EngineSpec) -> EngineChoice {
        match spec {
            EngineSpec::Scripted { path } if path.is_dir() => EngineChoice::ScriptDir(path),
            spec => EngineChoice::Shared(spec),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            EngineChoice::Shared(spec) => spec.to_string(),
            EngineChoice::ScriptDir(dir) => format!("scripted:{}/<query id>.json", dir.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub suite: Suite,
    pub engine: EngineChoice,
    pub engine_config: EngineConfig,
    pub profile: Profile,
    pub strategy: Strategy,
    pub max_turns: usize,
    /// Sampling of every turn (greedy; `max_tokens` bounds a rambling model).
    pub sampling: Sampling,
    /// Where run transcripts go (`<dir>/<query id>.jsonl`); `None` keeps none.
    pub transcript_dir: Option<PathBuf>,
}

/// A suite's scores.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    pub suite: Suite,
    /// The engine as the user named it, and as it described itself once loaded.
    pub engine: String,
    pub engine_loaded: Option<String>,
    pub profile: String,
    pub strategy: Strategy,
    pub max_turns: usize,
    pub max_tokens: usize,
    pub scores: Vec<QueryScore>,
}

impl SuiteReport {
    pub fn passed(&self) -> usize {
        self.scores.iter().filter(|s| s.passed).count()
    }

    pub fn total(&self) -> usize {
        self.scores.len()
    }
}

/// Runs every query of the suite in order; `on_query` sees each score as it is known.
/// Fails only when a shared engine cannot load; a query's own failure is a failed score.
pub fn run_suite(
    options: &EvalOptions,
    runner: &mut dyn CodeRunner,
    on_query: &mut dyn FnMut(&QueryScore),
) -> anyhow::Result<SuiteReport> {
    let shared = match &options.engine {
        EngineChoice::Shared(spec) => {
            let engine = EngineHandle::spawn(spec.clone(), options.engine_config.clone());
            let loaded = engine
                .wait_ready()
                .map_err(|err| anyhow::anyhow!("cannot start the engine: {err}"))?;
            Some((engine, loaded))
        }
        EngineChoice::ScriptDir(_) => None,
    };
    let mut scores = Vec::new();
    for query in options.suite.queries() {
        let score = match (&shared, &options.engine) {
            (Some((engine, _)), _) => run_query(engine, runner, &query, options)?.0,
            (None, EngineChoice::ScriptDir(dir)) => {
                let spec = EngineSpec::Scripted {
                    path: dir.join(format!("{}.json", query.id)),
                };
                let engine = EngineHandle::spawn(spec, options.engine_config.clone());
                run_query(&engine, runner, &query, options)?.0
            }
            (None, EngineChoice::Shared(_)) => unreachable!("a shared engine was started above"),
        };
        on_query(&score);
        scores.push(score);
    }
    Ok(SuiteReport {
        suite: options.suite,
        engine: options.engine.describe(),
        engine_loaded: shared.map(|(_, loaded)| loaded),
        profile: options.profile.name().to_owned(),
        strategy: options.strategy,
        max_turns: options.max_turns,
        max_tokens: options.sampling.max_tokens,
        scores,
    })
}

/// Runs one query in a fresh copy of the fixture workspace and scores it. Also returns the
/// outcome (its conversation feeds the strategy comparison). Errors only when the temporary
/// workspace cannot be made.
pub fn run_query(
    engine: &EngineHandle,
    runner: &mut dyn CodeRunner,
    query: &Query,
    options: &EvalOptions,
) -> anyhow::Result<(QueryScore, RunOutcome)> {
    let workspace_dir = workspace::materialize()?;
    let root = workspace_dir
        .path()
        .canonicalize()
        .context("resolving the temporary workspace")?;
    // Commands are allowed: the queries ask for `find` and `grep`, and the workspace is a
    // throw-away copy.
    let host = DiskToolHost {
        root,
        allow_commands: true,
    };
    let request = RunRequest {
        run_id: query.id.clone(),
        question: query.query.clone(),
        conversation: Conversation::new(),
        profile: options.profile.clone(),
        max_turns: options.max_turns,
        sampling: options.sampling.clone(),
        transcript_dir: options.transcript_dir.clone(),
    };
    let mut rejected_calls = 0;
    let outcome = agent::run_with_strategy(
        engine,
        runner,
        &host,
        &CancelFlag::default(),
        request,
        options.strategy,
        &mut |event| {
            if let RunEvent::CallRejected { .. } = event {
                rejected_calls += 1;
            }
        },
    );
    let facts = expected_facts(&query.id, workspace::FILES);
    let score = score(
        query,
        &facts,
        RunFacts::from_outcome(&outcome, rejected_calls),
    );
    Ok((score, outcome))
}
