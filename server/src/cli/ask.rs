//! `punie ask`: one agent run from the terminal (INTERFACES.md §1).

mod command;
mod progress;
mod wire;

pub use command::{Args, run};
