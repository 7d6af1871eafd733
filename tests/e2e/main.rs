//! End-to-end tests: each module drives the built `punie` binary as a user or editor would;
//! `tidy` checks the repository's own rules on its source.

// Tests say on stderr what they saw beside their assertions (deliberate deviations, counts).
#![allow(clippy::print_stderr)]

mod acp;
mod acp_client;
mod ask;
mod context;
mod engine;
mod engine_faults;
mod eval;
mod fake_openai;
mod jail;
mod lookup;
mod lsp;
mod lsp_client;
mod lsp_edits;
mod markdown_view;
mod micro;
mod models;
mod parse_prompt;
mod permissions;
mod protected;
mod quoting;
mod redteam;
mod sandbox;
mod sandbox_channel;
mod sandbox_grammar;
mod support;
mod tidy;
mod typed;
