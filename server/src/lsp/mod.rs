//! The language server: `punie lsp` over stdio, "Ask Punie" code actions, background runs
//! with `$/progress`, cancellation, permission dialogs and edits (INTERFACES.md §2).
//!
//! # Library choice: `lsp-server` + `lsp-types`, not tower-lsp
//!
//! The design card names tower-lsp. We use rust-analyzer's synchronous `lsp-server` 0.7 (for
//! its message types) with `lsp-types` 0.97, and our own main loop, because:
//!
//! - tower-lsp 0.20 is unmaintained, and neither it nor its fork `tower-lsp-server` 0.24 routes
//!   `window/workDoneProgress/cancel` to the server or lets a handler await an arbitrary
//!   server→client request (`window/showMessageRequest`, `workspace/applyEdit`) with our own
//!   timeout and cancel handling. Here a request to the client is a message on the loop and a
//!   channel back to the run thread that asked for it.
//! - async handlers interleave at every `.await` and can see stale document text
//!   (ebkalderon/tower-lsp#284, astral-sh/ruff `ruff_server/CONTRIBUTING.md`). With one loop,
//!   `didChange` is applied before the next request is even read, and a run gets an owned
//!   snapshot of its document.
//! - Runs are long and blocking (llama.cpp, a sandbox process); they want threads, not a
//!   runtime. Nothing here needs tokio.
//!
//! We do not use `lsp-server`'s stdio transport: its reader thread ends on the first malformed
//! frame, after which the server can no longer hear `exit`. `crate::jsonrpc` reads frames itself
//! and we answer bad ones with JSON-RPC errors. `lsp-server` 0.7.9 is the newest release and builds
//! with rustc 1.95.
//!
//! # Shape
//!
//! The features (instructions, questions, edits from answers, conversations, permissions, the
//! run queue) live in `crate::features`; this module converts between them and LSP.
//!
//! - `main_loop`: the one `select!` over `Event` (client messages, run tasks, a tick), with
//!   the dispatch table; `global_state`: the `Server` state it owns and the ways to talk to
//!   the client; `scheduling`: runs from `punie.ask` to their `end` and answer, and shutdown;
//!   `engine_lifecycle`: starting and watching the engine.
//! - `handlers/`: one file per LSP method.
//! - `run`: a run's thread (the features' run with this client as its front end);
//!   `front_end`: the features' `FrontEnd` over the editor (buffers, `workspace/applyEdit`,
//!   permission dialogs).
//! - `progress`: `$/progress` rules (begin after create is accepted, exactly one end).
//! - `documents`, `settings`, `edits`, `uri`, `transport`: data and conversions.
//! - `ext`: every `punie/*` method and `punie.*` command.
//! - `bench`: latency and memory figures for `punie bench`.

pub mod bench;
mod documents;
mod edits;
mod engine_lifecycle;
pub mod ext;
mod front_end;
mod global_state;
mod handlers;
mod main_loop;
mod progress;
mod run;
mod scheduling;
mod settings;
pub(crate) mod uri;

use std::io::{BufReader, BufWriter};

use crossbeam_channel::{Receiver, Sender};

use crate::jsonrpc as transport;
pub use crate::jsonrpc::{Incoming, Outgoing};

/// How the server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerExit {
    /// `shutdown` was received before `exit` or the end of input (exit code 0; else 1).
    pub clean: bool,
}

/// Serves LSP on stdin/stdout until `exit` or the end of stdin.
pub fn run_stdio() -> anyhow::Result<ServerExit> {
    let (incoming_sender, incoming) = crossbeam_channel::unbounded::<Incoming>();
    let (outgoing, outgoing_receiver) = crossbeam_channel::unbounded::<Outgoing>();
    let reader = std::thread::Builder::new()
        .name("punie-lsp-reader".to_owned())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = BufReader::new(stdin.lock());
            read_loop(&mut input, &incoming_sender);
        })?;
    let (writer_done_sender, writer_done) = crossbeam_channel::bounded::<()>(1);
    let writer = std::thread::Builder::new()
        .name("punie-lsp-writer".to_owned())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut output = BufWriter::new(stdout.lock());
            for message in outgoing_receiver {
                if let Err(err) = transport::write_frame(&mut output, &message) {
                    // The client is gone; the reader will see the end of input.
                    tracing::info!("cannot write to the client: {err}");
                    break;
                }
            }
            let _ = writer_done_sender.send(());
        })?;
    let exit = serve(incoming, outgoing);
    // Everything the loop sent is flushed before we return, unless the client stopped reading
    // (then we do not wait for it).
    if writer_done
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_ok()
    {
        let _ = writer.join();
    }
    // The reader stops after `exit` or at the end of input, whichever ended the loop; after an
    // `exit` with stdin still open it may be blocked in a read, so it is not joined then.
    if reader.is_finished() {
        let _ = reader.join();
    }
    Ok(exit)
}

/// Reads frames until the end of input or an `exit` notification.
fn read_loop(input: &mut dyn std::io::BufRead, incoming: &Sender<Incoming>) {
    loop {
        match transport::read_frame(input) {
            Ok(Some(frame)) => {
                let is_exit = matches!(&frame, Incoming::Message(lsp_server::Message::Notification(n)) if n.method == "exit");
                if incoming.send(frame).is_err() || is_exit {
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
}

/// Runs the server on in-memory channels (tests and benchmarks): client messages in on
/// `incoming`, server messages out on `outgoing`. Returns at `exit` or when `incoming` closes.
pub fn serve(incoming: Receiver<Incoming>, outgoing: Sender<Outgoing>) -> ServerExit {
    main_loop::main_loop(incoming, outgoing)
}
