//! Saved sessions: a [`Conversation`] in a JSON file, so `punie ask --continue` (or a restarted
//! server) can follow up on the last answer.
//!
//! Format: `{"session_id": "...", "profile": "punie-phase22", "messages": [{"role", "content"}]}`.
//! The profile is stored because a conversation rendered with another profile would not match
//! what the model saw; loading with a different profile is the caller's decision.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::prompt::Message;

use super::conversation::{Conversation, role_from_name, role_name};

/// Where the CLI keeps a workspace's last session (`workspace_session.rs` says who may have
/// written it).
pub fn default_session_path(workspace_root: &Path) -> PathBuf {
    super::workspace_state::state_dir(workspace_root).join("session.json")
}

/// A saved session: its conversation and the profile it was rendered with.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSession {
    pub conversation: Conversation,
    pub profile: String,
}

/// Writes the session ([`write_stored`]).
pub fn save_session(path: &Path, conversation: &Conversation, profile: &str) -> anyhow::Result<()> {
    write_stored(path, &session_bytes(conversation, profile)?)
}

/// The session as [`save_session`] writes it.
pub(super) fn session_bytes(conversation: &Conversation, profile: &str) -> anyhow::Result<Vec<u8>> {
    let messages: Vec<Value> = conversation
        .messages()
        .iter()
        .map(|m| json!({"role": role_name(m.role), "content": m.content}))
        .collect();
    let body =
        json!({"session_id": conversation.session_id(), "profile": profile, "messages": messages});
    Ok(serde_json::to_vec_pretty(&body)?)
}

/// Writes one of Punie's stored files (a saved session, a session's metadata)
/// atomically (`crate::atomic_file`), creating its directory (`0o700`, `.punie`'s rules). A
/// new file is the user's alone (`0o600`); a replaced one keeps its mode.
pub fn write_stored(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        super::workspace_state::create_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::atomic_file::replace(path, |file| {
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// The largest saved session read back: far beyond any conversation a context window holds.
pub(super) const MAX_SESSION_BYTES: u64 = 32 * 1024 * 1024;

/// Reads a session written by [`save_session`]; `Ok(None)` when there is none.
pub fn load_session(path: &Path) -> anyhow::Result<Option<SavedSession>> {
    let Some(bytes) = read_stored(path, MAX_SESSION_BYTES)? else {
        return Ok(None);
    };
    parse_session(path, &bytes).map(Some)
}

/// The session in `bytes`, read from `path`.
pub(super) fn parse_session(path: &Path, bytes: &[u8]) -> anyhow::Result<SavedSession> {
    let bad = || {
        format!(
            "{} is not a saved Punie session; delete it to start afresh",
            path.display()
        )
    };
    let value: Value = serde_json::from_slice(bytes).with_context(bad)?;
    let session_id = value["session_id"].as_str().with_context(bad)?.to_owned();
    let profile = value["profile"].as_str().with_context(bad)?.to_owned();
    let messages = value["messages"]
        .as_array()
        .with_context(bad)?
        .iter()
        .map(|m| {
            let role = m["role"].as_str().and_then(role_from_name)?;
            let content = m["content"].as_str()?.to_owned();
            Some(Message { role, content })
        })
        .collect::<Option<Vec<_>>>()
        .with_context(bad)?;
    Ok(SavedSession {
        conversation: Conversation::from_parts(session_id, messages),
        profile,
    })
}

/// The bytes of one of Punie's stored files (a saved session, a session's metadata), or
/// `Ok(None)` when there is none. A command, or a cloned repository's `.punie/`, may have put
/// anything there, so what is not a plain file is refused rather than followed or waited on:
/// the file is opened following no link (`session.json -> /dev/zero`), only once it is judged
/// a regular file (a device or a FIFO is never opened), and is read up to `max` bytes
/// (`crate::plain_file`).
pub fn read_stored(path: &Path, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
    use crate::plain_file::{IfLonger, Refusal};
    let read = crate::plain_file::open_no_follow(path)
        .and_then(|file| crate::plain_file::read(file, max, IfLonger::Refuse));
    match read {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => anyhow::bail!(
            "{} is a symbolic link, and Punie never follows one to its stored state \
             (a command or a repository may have made it); remove it",
            path.display()
        ),
        Err(err) => match crate::plain_file::refusal(&err) {
            Some(Refusal::Directory | Refusal::NotRegular) => {
                anyhow::bail!("{} is not a regular file; remove it", path.display())
            }
            Some(Refusal::TooLarge { .. }) => anyhow::bail!(
                "{} is larger than {max} bytes, more than Punie ever stores; remove it",
                path.display()
            ),
            Some(refusal @ Refusal::PseudoFileSystem { .. }) => {
                anyhow::bail!("{} {refusal}, where Punie stores nothing", path.display())
            }
            None => Err(err).with_context(|| format!("cannot read {}", path.display())),
        },
    }
}
