//! The `punie` subcommands: argument types and the code that runs each one.
//!
//! Each file owns one subcommand's `Args` struct (clap derive) and its `run` function.
//! `main.rs` only routes; exit codes are decided there.

pub mod acp;
pub mod ask;
pub mod bench;
pub mod eval;
pub mod lsp;
pub mod models;
pub mod parse;
pub mod render_prompt;
pub mod sandbox;
