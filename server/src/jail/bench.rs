//! What the jail adds to a command's start: `true` through [`super::run`] against `true`
//! spawned plainly, in milliseconds. For `punie bench --only sandbox`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Access, RunLimits, run};
use crate::cancel::CancelFlag;

/// Start-up figures of a command, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupFigures {
    /// `true` through the jail (helper, namespaces, Landlock, seccomp, private directory).
    pub jailed_p50_ms: f64,
    pub jailed_p99_ms: f64,
    /// `true` spawned with piped output and waited for, nothing else.
    pub unconfined_p50_ms: f64,
    pub iterations: usize,
}

/// Runs `true` `iterations` times each way, after a warm-up.
pub fn startup_bench(iterations: usize) -> anyhow::Result<StartupFigures> {
    let workspace = tempfile::tempdir()?;
    let access = Access::default();
    let cancel = CancelFlag::default();
    let argv = ["true".to_owned()];
    let jailed = measure(iterations, || {
        let limits = RunLimits {
            deadline: Instant::now() + Duration::from_secs(30),
            output_bytes: 4096,
        };
        // The walk for protected paths is part of every command's start.
        super::protected_for_command(workspace.path())
            .and_then(|protected| {
                run(
                    &argv,
                    workspace.path(),
                    workspace.path(),
                    &protected.paths,
                    &access,
                    &limits,
                    &cancel,
                )
            })
            .map(drop)
            .map_err(|err| anyhow::anyhow!("the jail could not run `true`: {err}"))
    })?;
    let unconfined = measure(iterations, || {
        Command::new("true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map(drop)
            .map_err(anyhow::Error::from)
    })?;
    Ok(StartupFigures {
        jailed_p50_ms: percentile(&jailed, 0.5),
        jailed_p99_ms: percentile(&jailed, 0.99),
        unconfined_p50_ms: percentile(&unconfined, 0.5),
        iterations: jailed.len(),
    })
}

/// Sorted wall times of `iterations` calls, in milliseconds, after five unmeasured ones.
fn measure(
    iterations: usize,
    mut once: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..5 {
        once()?;
    }
    let mut res = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        once()?;
        res.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    res.sort_by(f64::total_cmp);
    Ok(res)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
