//! `punie sandbox` (one snippet from stdin, JSON result on stdout) and the hidden
//! `punie sandbox-worker` (the sandbox's worker process; see `punie::sandbox`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cancel::CancelFlag;
use crate::sandbox::{DiskToolHost, Sandbox, SandboxLimits, SandboxResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace the snippet's tools are confined to.
    #[arg(long)]
    workspace: PathBuf,
    /// Wall-clock limit of the snippet's own code, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Memory limit of the worker, in MB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u64,
    /// Output kept, in KB.
    #[arg(long, default_value_t = 256)]
    output_kb: u64,
    /// Let `run_command` run without asking (the terminal has no permission dialog).
    #[arg(long)]
    allow_commands: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.workspace.canonicalize().with_context(|| {
        format!(
            "workspace {} is not an accessible directory",
            args.workspace.display()
        )
    })?;
    anyhow::ensure!(
        root.is_dir(),
        "workspace {} is not a directory",
        root.display()
    );
    let mut code = String::new();
    std::io::stdin()
        .read_to_string(&mut code)
        .context("reading the snippet from stdin (it must be UTF-8)")?;
    let limits = SandboxLimits {
        timeout_ms: args.timeout_ms,
        memory_mb: args.memory_mb,
        output_kb: args.output_kb,
        ..SandboxLimits::default()
    };
    let mut sandbox = Sandbox::new(limits)?;
    let host = DiskToolHost {
        root,
        allow_commands: args.allow_commands,
    };
    let res = sandbox.execute(&code, &host, &CancelFlag::default(), &mut |_| {});
    println!("{}", result_json(&res));
    Ok(ExitCode::SUCCESS)
}

/// The §3 result object.
pub fn result_json(res: &SandboxResult) -> serde_json::Value {
    let tool_calls: Vec<serde_json::Value> = res
        .tool_calls
        .iter()
        .map(|call| {
            let mut obj = serde_json::json!({"tool": call.tool, "args": call.args, "ok": call.ok});
            if let Some(error) = &call.error {
                obj["error"] = serde_json::Value::String(error.clone());
            }
            obj
        })
        .collect();
    let error = res.error.as_ref().map(|err| {
        let mut obj = serde_json::json!({"type": err.type_name, "message": err.message});
        if let Some(line) = err.line {
            obj["line"] = serde_json::Value::from(line);
        }
        obj
    });
    serde_json::json!({
        "ok": res.ok,
        "output": res.output,
        "error": error,
        "tool_calls": tool_calls,
        "elapsed_ms": res.elapsed.as_millis() as u64,
    })
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Memory the snippet may add to the worker's address space, in MB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u64,
}

pub fn run_worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    crate::sandbox::worker::run_worker(crate::sandbox::worker::WorkerOptions {
        memory_mb: args.memory_mb,
    })?;
    Ok(ExitCode::SUCCESS)
}
