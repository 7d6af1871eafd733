//! Who a jailed program runs for, which decides what it may read beyond the workspace.
//!
//! A command (`run_command`, the typed tools that run ruff, ty, pytest or git) was approved by
//! the user, or is in a class the user let run: it reads what [`Access`] lists, and a file
//! named like a secret in the workspace too. The language server behind navigation answers
//! read-class tools, which run without a question, and whatever it reads can reach the model
//! (a hover shows `Literal["sk-live-…"]` for a name bound in `.env` reached through
//! `settings_local.py -> .env`). So it reads only what `read_file` reads without asking, the
//! workspace without its secrets ([`WorkspaceSecrets`]), and what it needs to run: the
//! installations on `PATH` (ty itself, the Python environment it resolves imports from) and
//! the system's libraries; not [`Access::readable`] (`~/.cargo/config.toml` can hold a
//! registry token) and never the network.

use std::path::{Path, PathBuf};

use super::{Access, Host, Plan, WorkspaceSecrets};

/// What a reader may read outside the workspace besides the installations on `PATH`: the
/// dynamic loader, the system's libraries and the loader's cache.
const SYSTEM_LIBRARIES: &[&str] = &[
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/etc/ld.so.cache",
];

/// Who a jailed program runs for.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// A command: the user's access.
    Command(&'a Access),
    /// A program answering read-class tools, in a workspace holding these secrets.
    Reader(&'a WorkspaceSecrets),
}

impl Reach<'_> {
    /// The plan of `argv` for this reach.
    pub(super) fn plan(
        &self,
        argv: &[String],
        cwd: &Path,
        workspace: &Path,
        host: &Host,
        private_dir: &Path,
    ) -> Plan {
        match self {
            Reach::Command(access) => Plan::new(argv, cwd, workspace, access, host, private_dir),
            Reach::Reader(secrets) => {
                let nothing_listed = Access {
                    network: false,
                    readable: Vec::new(),
                };
                let mut plan = Plan::new(argv, cwd, workspace, &nothing_listed, host, private_dir);
                plan.readable
                    .extend(SYSTEM_LIBRARIES.iter().map(PathBuf::from));
                plan.readable.sort();
                plan.readable.dedup();
                plan.secrets.extend(secrets.paths().iter().cloned());
                // ty lists the directories it resolves modules in; names are not contents.
                plan.listable
                    .extend(secrets.granted_one_by_one().map(Path::to_path_buf));
                plan
            }
        }
    }
}
