//! `punie eval`: the Task 9 suites of the original Punie, run through the real agent loop and
//! scored against facts computed from a fixture workspace; and the Code Mode vs tool-per-turn
//! comparison behind `punie bench --only strategies`.
//!
//! - [`Suite`] holds the queries (`task9.json`, embedded: Phase 22 Task 9 of
//!   pauleveritt/punie, MIT).
//! - [`workspace`] writes the fixture workspace (embedded from `tests/fixtures/workspace/`)
//!   into a fresh temporary directory for every query, so a query that writes files cannot
//!   change the next one, and the binary works outside the repository.
//! - [`facts`] computes what a correct answer must state (line counts, class names…) from the
//!   embedded files, so the expectations cannot drift from the fixture.
//! - [`score`] is pure: a query, its facts and the run's outcome give a [`QueryScore`].
//! - [`run_suite`] runs every query with one engine, or, for `--engine scripted:DIR`, with the
//!   script `DIR/<query id>.json` of each query.
//! - [`strategy`] turns transcripts of both strategies into token counts and modelled latency.
//!
//! Nothing here prints; the CLI renders the report.

pub mod facts;
mod runner;
pub mod score;
pub mod strategy;
mod suite;
pub mod workspace;

pub use runner::{EngineChoice, EvalOptions, SuiteReport, run_query, run_suite};
pub use score::{Fact, QueryScore, RunFacts};
pub use suite::{Expected, Query, Suite};
