//! `punie ask`: one agent run from the terminal (INTERFACES.md §1), a free-form question or an
//! instruction on a file (`--explain|--fix|--tests|--refactor FILE[:LINES]`).

mod command;
mod front_end;
mod prompt;
mod wire;

pub use command::{Args, run};
