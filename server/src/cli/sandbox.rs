//! `punie sandbox` (one snippet from stdin, JSON result on stdout; `--explain`: what this
//! machine enforces for commands) and the hidden `punie sandbox-worker` (the sandbox's
//! worker process; see `punie::sandbox`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;

use crate::cancel::CancelFlag;
use crate::cli::Outcome;
use crate::jail;
use crate::sandbox::{
    CommandLimits, DiskToolHost, Ruling, Sandbox, SandboxLimits, SandboxResult, ToolHost,
    ToolRequest,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace the snippet's tools are confined to.
    #[arg(long, required_unless_present = "explain")]
    workspace: Option<PathBuf>,
    /// Print what this machine enforces for commands (each containment layer, what commands
    /// may read) and exit.
    #[arg(long)]
    explain: bool,
    /// Wall-clock limit of everything the snippet does, its tool calls included, in
    /// milliseconds.
    #[arg(long, default_value_t = SandboxLimits::default().timeout_ms)]
    timeout_ms: u64,
    /// Memory limit of the worker, in MB.
    #[arg(long, default_value_t = SandboxLimits::default().memory_mb)]
    memory_mb: u64,
    /// Output kept, in KB.
    #[arg(long, default_value_t = SandboxLimits::default().output_kb)]
    output_kb: u64,
    /// Let `run_command` run without asking (the terminal has no permission dialog).
    #[arg(long)]
    allow_commands: bool,
    #[command(flatten)]
    access: CommandAccessArgs,
}

/// What commands may reach beyond the workspace (`punie sandbox`, `punie ask`).
#[derive(Debug, Clone, clap::Args)]
pub struct CommandAccessArgs {
    /// Let commands use the network (Internet sockets; Unix-domain sockets stay closed).
    #[arg(long)]
    pub allow_network: bool,
    /// A path commands may read outside the workspace: absolute or `~/…`, repeatable. Given
    /// at least once, it replaces the default list (see --explain); secrets stay unreadable.
    #[arg(long, value_name = "PATH")]
    pub readable: Vec<String>,
}

impl CommandAccessArgs {
    pub fn access(&self) -> anyhow::Result<jail::Access> {
        let mut res = jail::Access {
            network: self.allow_network,
            ..jail::Access::default()
        };
        if !self.readable.is_empty() {
            for entry in &self.readable {
                jail::check_readable_entry(entry)
                    .map_err(|why| anyhow::anyhow!("--readable: {why}"))?;
            }
            res.readable = self.readable.clone();
        }
        Ok(res)
    }

    /// Limits of `run_command` with this access.
    pub fn command_limits(&self) -> anyhow::Result<CommandLimits> {
        Ok(CommandLimits {
            access: self.access()?,
            ..CommandLimits::default()
        })
    }
}

/// `punie sandbox`'s host: the disk's, with what the flags let commands reach.
struct SandboxHost {
    disk: DiskToolHost,
    commands: CommandLimits,
}

impl ToolHost for SandboxHost {
    fn workspace_root(&self) -> &std::path::Path {
        self.disk.workspace_root()
    }

    fn permit(&self, request: &ToolRequest, cancel: &CancelFlag) -> Ruling {
        self.disk.permit(request, cancel)
    }

    fn command_limits(&self) -> CommandLimits {
        self.commands.clone()
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.explain {
        print!("{}", jail::explain(&args.access.access()?));
        return Ok(Outcome::Success);
    }
    let workspace = args
        .workspace
        .as_deref()
        .context("--workspace is required")?;
    let root = workspace.canonicalize().with_context(|| {
        format!(
            "workspace {} is not an accessible directory",
            workspace.display()
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
    super::check_range(
        "--timeout-ms",
        args.timeout_ms,
        1..=SandboxLimits::MAX_TIMEOUT_MS,
    )?;
    super::check_range(
        "--memory-mb",
        args.memory_mb,
        1..=SandboxLimits::MAX_MEMORY_MB,
    )?;
    super::check_range(
        "--output-kb",
        args.output_kb,
        1..=SandboxLimits::MAX_OUTPUT_KB,
    )?;
    let limits = SandboxLimits {
        timeout_ms: args.timeout_ms,
        memory_mb: args.memory_mb,
        output_kb: args.output_kb,
        ..SandboxLimits::default()
    };
    let mut sandbox = Sandbox::new(limits)?;
    let host = SandboxHost {
        disk: DiskToolHost {
            root,
            allow_commands: args.allow_commands,
        },
        commands: args.access.command_limits()?,
    };
    let res = sandbox.execute(&code, &host, &CancelFlag::default(), &mut |_| {});
    println!("{}", result_json(&res));
    Ok(Outcome::Success)
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
    #[arg(long, default_value_t = SandboxLimits::default().memory_mb)]
    memory_mb: u64,
}

pub fn run_worker(args: WorkerArgs) -> anyhow::Result<Outcome> {
    crate::sandbox::worker::run_worker(crate::sandbox::worker::WorkerOptions {
        memory_mb: args.memory_mb,
    })?;
    Ok(Outcome::Success)
}
