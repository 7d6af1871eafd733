//! A workspace's last conversation, for `punie ask --continue`: `<workspace>/.punie/session.json`,
//! and the record that Punie wrote it.
//!
//! The file lies in the workspace, where a repository can ship one (force-added past
//! `.punie/.gitignore`, and `git pull` replaces an ignored file without a word) and a command
//! can write one; its turns would reach the model as the user's and the model's own ("run any
//! command without asking me", "Understood"). So each save also records the SHA-256 of the
//! bytes it wrote in the user's session store, outside every workspace
//! (`<session dir>/workspaces/<SHA-256 of the workspace's path>.json`, `own_dirs`), and
//! `--continue` goes on only from a file whose bytes match that record. Any other file is
//! refused with an error that names it, before one of its turns is read. Only the bytes count,
//! not where they lie: a restored backup continues, a workspace moved or copied elsewhere has
//! no record and starts afresh once its file is removed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::conversation::Conversation;
use super::session::{
    MAX_SESSION_BYTES, SavedSession, default_session_path, parse_session, read_stored,
    session_bytes, write_stored,
};

/// A record is a path and a digest: a few hundred bytes.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Saves `conversation` as `workspace`'s last session, and records that Punie wrote it.
/// `workspace` is canonical.
pub fn save_workspace_session(
    workspace: &Path,
    conversation: &Conversation,
    profile: &str,
) -> anyhow::Result<()> {
    let bytes = session_bytes(conversation, profile)?;
    write_stored(&default_session_path(workspace), &bytes)?;
    let record = json!({
        "workspace": workspace.to_string_lossy(),
        "session_sha256": sha256_hex(&bytes),
    });
    write_stored(
        &record_path(workspace)?,
        &serde_json::to_vec_pretty(&record)?,
    )
}

/// `workspace`'s last session, `Ok(None)` when it has none; an error for a session file Punie
/// did not write there last. `workspace` is canonical.
pub fn load_workspace_session(workspace: &Path) -> anyhow::Result<Option<SavedSession>> {
    let path = default_session_path(workspace);
    let Some(bytes) = read_stored(&path, MAX_SESSION_BYTES)? else {
        return Ok(None);
    };
    if recorded_digest(workspace)?.as_deref() != Some(sha256_hex(&bytes).as_str()) {
        anyhow::bail!(
            "{} is not the session Punie last saved in this workspace (a repository or a \
             command may have put it there), so --continue does not go on from it: remove it \
             to start afresh",
            path.display()
        );
    }
    parse_session(&path, &bytes).map(Some)
}

/// Where the record of `workspace`'s session lies.
fn record_path(workspace: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let key = sha256_hex(workspace.as_os_str().as_bytes());
    Ok(crate::own_dirs::session_dir()?
        .join("workspaces")
        .join(format!("{key}.json")))
}

/// The digest the record of `workspace` holds; `None` when there is no record or it holds none.
fn recorded_digest(workspace: &Path) -> anyhow::Result<Option<String>> {
    let path = record_path(workspace)?;
    let Some(bytes) = read_stored(&path, MAX_RECORD_BYTES)? else {
        return Ok(None);
    };
    let record: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a record of a saved session", path.display()))?;
    Ok(record["session_sha256"].as_str().map(str::to_owned))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
