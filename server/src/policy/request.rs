//! [`ToolRequest`]: one tool call as it will really happen, resolved before anyone judges it.
//!
//! The sandbox's dispatch builds it from the snippet's arguments: paths normalised and
//! resolved through symlinks by the workspace (`workspace::resolve_target`), the command split
//! into its argv, the current text of a file read for the diff. The policy judges this, the
//! prompt shows this, and the tool then does exactly this.

use crate::tools::Tool;

use super::diff::Before;

/// A workspace path after normalisation and symlink resolution, with the facts the policy
/// judges it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The workspace root `rel` is relative to: canonical, absolute; empty where there is no
    /// file system (tests). The protected rules match the two together, so a root that is or
    /// lies in a protected path (a `.github`, a `.vscode` opened as the folder) protects
    /// everything in it.
    pub root: String,
    /// Relative to the workspace root, `/`-separated, without `.` or `..`; `.` for the root.
    pub rel: String,
    /// The path as the snippet wrote it (shown when it differs from `rel`).
    pub spelled: String,
    pub exists: bool,
    pub is_dir: bool,
    /// An existing file with any execute bit.
    pub executable: bool,
    /// Links to the existing file (1 for a plain file).
    pub hard_links: u64,
    /// Beneath a directory that is a Python environment (`protected::VIRTUAL_ENV_MARKERS`),
    /// or will be once the path exists: one of the workspace, the root or one above it
    /// (`jail::in_virtual_env`).
    pub in_virtual_env: bool,
    /// Beneath a directory that looks like a git directory, whatever its name
    /// (`jail::is_git_dir`), or will once the path exists: one of the workspace, the root or
    /// one above it, but for the bare repository a root worktree lies in
    /// (`jail::in_git_dir`).
    pub in_git_dir: bool,
    /// The user's own configuration or beneath it, wherever it lies (`jail::user_config_in`).
    pub user_config: bool,
    /// What marks the file as a secret by its name (`.env`, a private key, `.aws/…`:
    /// `jail::secret_name`); a read of it asks every time.
    pub secret: Option<&'static str>,
}

impl Target {
    /// A path that does not exist yet (tests and callers without a file system).
    pub fn new_file(rel: &str) -> Target {
        Target {
            root: String::new(),
            rel: rel.to_owned(),
            spelled: rel.to_owned(),
            exists: false,
            is_dir: false,
            executable: false,
            hard_links: 0,
            in_virtual_env: false,
            in_git_dir: false,
            user_config: false,
            secret: None,
        }
    }

    /// An existing regular file.
    pub fn existing_file(rel: &str) -> Target {
        Target {
            exists: true,
            hard_links: 1,
            ..Target::new_file(rel)
        }
    }
}

/// What a call will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reads one file.
    Read { target: Target },
    /// Replaces the whole content of one file, or creates it.
    Write {
        target: Target,
        before: Before,
        after: String,
    },
    /// Runs one program: `argv[0]` with the rest as its arguments, never through a shell.
    Execute {
        argv: Vec<String>,
        /// The working directory, workspace-relative (`.` for the root).
        cwd: String,
    },
    /// A typed tool (ruff, pytest, git, …): its named arguments as the snippet gave them.
    Call { args: Vec<(String, String)> },
}

/// One tool call, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRequest {
    pub tool: Tool,
    pub action: Action,
}

impl ToolRequest {
    /// The file the call reads or writes, if it is about one.
    pub fn target(&self) -> Option<&Target> {
        match &self.action {
            Action::Read { target } | Action::Write { target, .. } => Some(target),
            Action::Execute { .. } | Action::Call { .. } => None,
        }
    }
}
