//! Punie's own per-user directories: the data directory (`$XDG_DATA_HOME/punie`,
//! `~/.local/share/punie`; on macOS `~/Library/Application Support/punie`), the model
//! directory (`PUNIE_MODEL_DIR`, else `<data dir>/models`) and the session store
//! (`PUNIE_SESSION_DIR`, else `<data dir>/sessions`: ACP's sessions, and in `workspaces/` the
//! records of which `.punie/session.json` Punie wrote, `agent::load_workspace_session`).
//!
//! Below everything that names them: `models` finds models here, `acp` its session store,
//! and the jail keeps all of them out of reach of commands and tools ([`protected`]), for a
//! workspace that holds them (the home folder, or `/`, opened as the workspace): a command
//! that planted a FIFO among the saved sessions would hang the agent at its next start, one
//! that replaced a model would choose what the model says. They are created private
//! ([`create`]): another local user reads none of it.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Punie's per-user data directory (see the module doc).
pub fn data_dir() -> anyhow::Result<PathBuf> {
    let data_home = if cfg!(target_os = "macos") {
        home_dir()?.join("Library/Application Support")
    } else if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(xdg)
    } else {
        home_dir()?.join(".local/share")
    };
    Ok(data_home.join("punie"))
}

/// The model directory: `PUNIE_MODEL_DIR`, else `<data dir>/models`.
pub fn model_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PUNIE_MODEL_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(data_dir()?.join("models"))
}

/// The ACP session store: `PUNIE_SESSION_DIR`, else `<data dir>/sessions`.
pub(crate) fn session_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PUNIE_SESSION_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(data_dir()?.join("sessions"))
}

/// Every directory above that this process would use, absolute, as spelled and as resolved
/// (where it exists): what neither a command nor a tool may touch.
pub(crate) fn protected() -> Vec<PathBuf> {
    let mut res: Vec<PathBuf> = [data_dir(), model_dir(), session_dir()]
        .into_iter()
        .flatten()
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| {
            let resolved = dir.canonicalize().ok();
            [Some(dir), resolved]
        })
        .flatten()
        .collect();
    res.sort();
    res.dedup();
    res
}

/// Creates `dir` and its missing parents for Punie's own data (the directories above, a
/// workspace's `.punie`): `0o700`, since what they hold (prompts, file contents, answers) is
/// the user's alone. A directory that exists is left as it is.
pub(crate) fn create(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Takes the group's and others' access from `dir` (made `0o755` by an earlier version or a
/// `mkdir`): what it holds is the user's alone. Best effort: a directory someone else owns is
/// logged and used as it is; a link is left alone.
pub(crate) fn keep_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    let mode = meta.permissions().mode();
    if meta.is_dir() && mode & 0o077 != 0 {
        let private = std::fs::Permissions::from_mode(mode & 0o700);
        if let Err(err) = std::fs::set_permissions(dir, private) {
            tracing::warn!("cannot make {} private: {err}", dir.display());
        }
    }
}

fn home_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "HOME is not set: set PUNIE_MODEL_DIR (and for ACP PUNIE_SESSION_DIR) to choose \
                 where Punie keeps its data"
            )
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn punies_directories_are_made_private_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("share/punie/sessions");
        create(&store).unwrap();
        for dir in [root.path().join("share/punie"), store] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
    }
}
