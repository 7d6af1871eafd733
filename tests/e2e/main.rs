//! End-to-end tests: each module drives the built `punie` binary as a user or editor would.

mod ask;
mod engine;
mod eval;
mod lsp;
mod models;
mod openai;
mod parse_prompt;
mod sandbox;
mod support;
