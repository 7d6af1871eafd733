//! `punie acp`: Punie as an ACP agent (Agent Client Protocol v1, INTERFACES.md §5) for Zed's
//! agent panel, JetBrains and other ACP clients: JSON-RPC 2.0 over stdin/stdout, one message
//! per line, nothing else on stdout.
//!
//! # Library choice: our own framing, no ACP crate
//!
//! The `agent-client-protocol` crate (Zed's) is async (futures + an executor) and its schema
//! types move quickly between versions; the protocol we speak is small (eight methods, a few
//! update kinds), and the server is otherwise threads and channels like the LSP server. So the
//! messages are built in `wire` (checked against the Python SDK's generated schema, which the
//! end-to-end test drives us with) and framed in `transport`.
//!
//! # Shape
//!
//! - `main_loop`: one `select!` over client messages and prompt threads' tasks; sessions, the
//!   engine, the prompt queue and the dispatch table (`initialize`, `session/new|load|list`,
//!   `session/set_config_option`, `session/prompt`, `session/cancel`).
//! - `prompts`: a prompt as a features run (queued on the engine, on its own thread) and its
//!   `stopReason`; `prompt`: content blocks → a features `Ask` (slash commands, attachments).
//! - `front_end`: the features' `FrontEnd` over the client (`session/update`s,
//!   `fs/read_text_file`, `fs/write_text_file`, `session/request_permission`).
//! - `sessions`: saved sessions for `session/load` and `session/list`; `replay`: a saved
//!   conversation as updates; `models`: the model selector.
//! - `transport`, `wire`: framing and the protocol's shapes.

mod front_end;
mod main_loop;
mod models;
mod prompt;
mod prompts;
mod replay;
mod sessions;
mod transport;
mod wire;

use std::io::{BufReader, BufWriter};

use serde_json::Value;

use crate::engine::EngineSpec;

/// What `punie acp` was started with.
#[derive(Debug, Clone, Default)]
pub struct AcpOptions {
    /// `--engine` / `PUNIE_ENGINE`: offered first in the model selector.
    pub engine: Option<EngineSpec>,
    /// `--profile`: the prompt profile of every run (default: the model's own).
    pub profile: Option<String>,
}

/// Serves ACP on stdin/stdout until stdin ends.
pub fn run_stdio(options: AcpOptions) -> anyhow::Result<()> {
    let (incoming_sender, incoming) = crossbeam_channel::unbounded();
    let (outgoing, outgoing_receiver) = crossbeam_channel::unbounded::<Value>();
    std::thread::Builder::new()
        .name("punie-acp-reader".to_owned())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = BufReader::new(stdin.lock());
            loop {
                match transport::read_message(&mut input) {
                    Ok(Some(message)) => {
                        if incoming_sender.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::info!("cannot read from the client: {err}");
                        return;
                    }
                }
            }
        })?;
    let writer = std::thread::Builder::new()
        .name("punie-acp-writer".to_owned())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut output = BufWriter::new(stdout.lock());
            for message in outgoing_receiver {
                if let Err(err) = transport::write_message(&mut output, &message) {
                    tracing::info!("cannot write to the client: {err}");
                    break;
                }
            }
        })?;
    main_loop::main_loop(incoming, outgoing, options);
    // Everything sent is flushed before the process ends.
    let _ = writer.join();
    Ok(())
}
