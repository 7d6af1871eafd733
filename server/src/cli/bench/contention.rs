//! `punie bench --contention`: decode speed with the default thread choice against every fixed
//! thread count, on a quiet machine and with one competing busy process (started here), the
//! conditions and thread counts interleaved so drifting load hits all alike.
//!
//! The workload is the engine section's (INTERFACES.md §4); each measurement creates a fresh
//! context, so the default's tuner starts from scratch and learns during the warm-up repetition,
//! as it would in the first request of a server.

use std::process::{Child, Command, Stdio};

use super::figures::{median, round1, round3};
use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::engine::EngineConfig;
use crate::engine::llama::{self, LlamaModel};

/// Interleaved rounds per condition; each round measures every thread choice once. With a busy
/// process, one thread's decode speed varies by ±8% from round to round here, so fewer rounds
/// make the ratio a matter of luck.
const ROUNDS: usize = 5;

/// A process that keeps one core busy until dropped.
struct BusyProcess(Child);

impl BusyProcess {
    fn start() -> anyhow::Result<BusyProcess> {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the busy process (sh)")?;
        Ok(BusyProcess(child))
    }
}

impl Drop for BusyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn run(
    model: &LlamaModel,
    config: &EngineConfig,
    text: &str,
    n_prompt: usize,
    n_decode: usize,
) -> anyhow::Result<Value> {
    let max = llama::default_threads();
    let choices: Vec<(String, Option<i32>)> = std::iter::once(("default".to_owned(), None))
        .chain((1..=max).map(|n| (format!("threads_{n}"), Some(n as i32))))
        .collect();
    let mut conditions = Map::new();
    for busy in [false, true] {
        let _busy = busy.then(BusyProcess::start).transpose()?;
        let mut decode: Vec<Vec<f64>> = vec![Vec::new(); choices.len()];
        let mut settled = Vec::new();
        for _ in 0..ROUNDS {
            for (idx, (_, threads)) in choices.iter().enumerate() {
                let config = EngineConfig {
                    threads: *threads,
                    ..config.clone()
                };
                let figures = llama::run_workload(model, &config, text, n_prompt, n_decode, 1)?;
                decode[idx].push(figures.n_decode as f64 / figures.decode.as_secs_f64());
                if threads.is_none() {
                    settled.push(figures.decode_threads);
                }
            }
        }
        let medians: Vec<f64> = decode.iter_mut().map(|values| median(values)).collect();
        let best_fixed = medians[1..].iter().copied().fold(0.0, f64::max);
        let mut figures = Map::new();
        for ((name, _), value) in choices.iter().zip(&medians) {
            figures.insert(format!("{name}_decode_tok_s"), json!(round1(*value)));
        }
        figures.insert(
            "default_vs_best_fixed".to_owned(),
            json!(round3(medians[0] / best_fixed)),
        );
        figures.insert("default_settled_threads".to_owned(), json!(settled));
        conditions.insert(
            if busy { "busy" } else { "quiet" }.to_owned(),
            Value::Object(figures),
        );
    }
    conditions.insert("busy_processes".to_owned(), json!(1));
    conditions.insert("rounds".to_owned(), json!(ROUNDS));
    Ok(Value::Object(conditions))
}
