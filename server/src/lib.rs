//! Punie: a local AI coding assistant behind the Language Server Protocol.
//!
//! See `ARCHITECTURE.md` at the repository root for the codemap and the invariants.
//! The pure modules (`toolcall`, `prompt`, `policy`, `tools`) do no IO; the others own one
//! kind of IO each (`engine`: llama.cpp and HTTP, `sandbox`: the worker process, `workspace`:
//! files and commands, `jail`: the containment of commands, `lsp`: the JSON-RPC stream,
//! `models`: model files on disk).

// The CLI's output is its product, so it alone may print.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;

pub mod acp;
pub mod agent;
mod atomic_file;
pub mod cancel;
pub mod engine;
pub mod eval;
pub mod features;
pub mod jail;
mod jsonrpc;
pub mod lsp;
pub mod models;
mod own_dirs;
mod plain_file;
mod plantable;
pub mod policy;
pub mod prompt;
pub mod sandbox;
mod sync;
pub mod toolcall;
pub mod tools;
pub mod typed;
mod uri;
pub mod workspace;
