//! `punie sandbox`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    super::not_yet_available("sandbox")
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

pub fn run_worker(_args: WorkerArgs) -> anyhow::Result<ExitCode> {
    super::not_yet_available("sandbox-worker")
}
