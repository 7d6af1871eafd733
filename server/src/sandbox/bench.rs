//! [`overhead_bench`]: what [`Sandbox::execute`] costs on a warm worker, and what the
//! pre-warmed worker saves a run's first snippet. [`cancel_bench`]: how long `execute` takes
//! to return once its run is cancelled. For `punie bench` and the figures in
//! `docs/sandbox.md` and `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{DiskToolHost, Sandbox, ToolEvent};
use crate::cancel::CancelFlag;

/// Overhead figures of [`Sandbox::execute`], in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct OverheadFigures {
    /// A trivial snippet (`x = 1`) on a warm worker.
    pub trivial_p50_ms: f64,
    pub trivial_p99_ms: f64,
    /// A snippet with three `read_file` calls, host IO included (tiny files).
    pub tool_snippet_p50_ms: f64,
    pub tool_snippet_p99_ms: f64,
    pub iterations: usize,
    /// A new sandbox's first snippet: the worker's start-up (process, interpreter) included.
    pub cold_first_snippet_p50_ms: f64,
    /// The first snippet of a second run, whose worker a first run pre-warmed on a thread
    /// that has ended since (as each LSP run has its own thread).
    pub second_run_first_snippet_p50_ms: f64,
    /// Runs behind each start-up figure.
    pub start_runs: usize,
}

/// Runs behind each start-up figure: each starts a worker process.
const START_RUNS: usize = 15;

/// Measures the overhead of `execute` on a warm worker: `iterations` runs of a trivial
/// snippet and of a three-tool snippet, after a warm-up; then the first snippet of new
/// sandboxes, cold and as a second run.
pub fn overhead_bench(sandbox: &mut Sandbox, iterations: usize) -> anyhow::Result<OverheadFigures> {
    let dir = tempfile::Builder::new()
        .prefix("punie-bench-")
        .tempdir()
        .context("creating the bench workspace")?;
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(dir.path().join(name), "hello\n").context("writing a bench file")?;
    }
    let host = DiskToolHost {
        root: dir.path().to_path_buf(),
        allow_commands: false,
    };
    let cancel = CancelFlag::default();
    let trivial = "x = 1";
    let tools = "a = read_file('a.txt')\nb = read_file('b.txt')\nc = read_file('c.txt')\nprint(len(a + b + c))";
    let timed = |sandbox: &mut Sandbox, code: &str| -> anyhow::Result<f64> {
        let start = Instant::now();
        let out = sandbox.execute(code, &host, &cancel, &mut |_| {});
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(out.ok, "bench snippet failed: {:?}", out.error);
        Ok(ms)
    };
    let mut measure = |code: &str| -> anyhow::Result<Vec<f64>> {
        for _ in 0..5 {
            timed(sandbox, code)?;
        }
        (0..iterations.max(1))
            .map(|_| timed(sandbox, code))
            .collect::<anyhow::Result<Vec<f64>>>()
    };
    let trivial_ms = sorted(measure(trivial)?);
    let tool_ms = sorted(measure(tools)?);

    let fresh = || Sandbox::with_worker_exe(sandbox.limits().clone(), &sandbox.worker_exe);
    let mut cold = Vec::with_capacity(START_RUNS);
    let mut second = Vec::with_capacity(START_RUNS);
    for _ in 0..START_RUNS {
        let start = Instant::now();
        let mut first_run = fresh()?;
        timed(&mut first_run, trivial)?;
        cold.push(start.elapsed().as_secs_f64() * 1000.0);
        // The first run ends with its thread; the second runs on this one.
        let mut second_run = std::thread::scope(|scope| {
            scope
                .spawn(|| -> anyhow::Result<Sandbox> {
                    let mut run = fresh()?;
                    timed(&mut run, trivial)?;
                    Ok(run)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the first run's thread panicked"))?
        })?;
        second.push(timed(&mut second_run, trivial)?);
    }
    let cold = sorted(cold);
    let second = sorted(second);
    Ok(OverheadFigures {
        trivial_p50_ms: percentile(&trivial_ms, 0.5),
        trivial_p99_ms: percentile(&trivial_ms, 0.99),
        tool_snippet_p50_ms: percentile(&tool_ms, 0.5),
        tool_snippet_p99_ms: percentile(&tool_ms, 0.99),
        iterations: trivial_ms.len(),
        cold_first_snippet_p50_ms: percentile(&cold, 0.5),
        second_run_first_snippet_p50_ms: percentile(&second, 0.5),
        start_runs: START_RUNS,
    })
}

/// Cancel to `execute` returned, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelFigures {
    /// A snippet that computes: `while True: pass` (the worker is killed).
    pub compute_p50_ms: f64,
    pub compute_max_ms: f64,
    /// A snippet waiting on a command: `run_command("sleep", args=["60"])` (the jailed
    /// command and the worker are stopped).
    pub command_p50_ms: f64,
    pub command_max_ms: f64,
    pub iterations: usize,
}

/// How long a snippet runs before it is cancelled: long enough that it is inside its loop,
/// or its command has started.
const RUNNING_FOR: Duration = Duration::from_millis(300);

/// Cancels `iterations` computing snippets and as many snippets waiting on a command, each
/// [`RUNNING_FOR`] after it began (after its tool call began, for the command), and times
/// cancel → `execute` returned.
pub fn cancel_bench(sandbox: &mut Sandbox, iterations: usize) -> anyhow::Result<CancelFigures> {
    let dir = tempfile::Builder::new()
        .prefix("punie-bench-")
        .tempdir()
        .context("creating the bench workspace")?;
    let host = DiskToolHost {
        root: dir.path().to_path_buf(),
        allow_commands: true,
    };
    let mut timed = |code: &str, waits_on_tool: bool| -> anyhow::Result<f64> {
        // A ready worker, so the clock starts with the snippet itself.
        let warm = sandbox.execute("x = 1", &host, &CancelFlag::default(), &mut |_| {});
        anyhow::ensure!(warm.ok, "warm-up snippet failed: {:?}", warm.error);
        let cancel = CancelFlag::default();
        let (started_sender, started) = crossbeam_channel::bounded::<()>(1);
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                let _ = started.recv();
                std::thread::sleep(RUNNING_FOR);
                let at = Instant::now();
                cancel.cancel();
                at
            })
        };
        if !waits_on_tool {
            let _ = started_sender.send(());
        }
        let out = sandbox.execute(code, &host, &cancel, &mut |event| {
            if matches!(event, ToolEvent::Started { .. }) {
                let _ = started_sender.try_send(());
            }
        });
        let returned = Instant::now();
        drop(started_sender);
        let cancelled_at = canceller
            .join()
            .map_err(|_| anyhow::anyhow!("the canceller panicked"))?;
        anyhow::ensure!(
            out.error
                .as_ref()
                .is_some_and(|err| err.type_name == "KeyboardInterrupt"),
            "the snippet was not cancelled: {out:?}"
        );
        Ok(returned
            .saturating_duration_since(cancelled_at)
            .as_secs_f64()
            * 1000.0)
    };
    let compute = (0..iterations.max(1))
        .map(|_| timed("while True:\n    pass", false))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let command = (0..iterations.max(1))
        .map(|_| timed("run_command('sleep', args=['60'])", true))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let compute = sorted(compute);
    let command = sorted(command);
    Ok(CancelFigures {
        compute_p50_ms: percentile(&compute, 0.5),
        compute_max_ms: compute[compute.len() - 1],
        command_p50_ms: percentile(&command, 0.5),
        command_max_ms: command[command.len() - 1],
        iterations: compute.len(),
    })
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
