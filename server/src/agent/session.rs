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

/// Where the CLI keeps a workspace's last session.
pub fn default_session_path(workspace_root: &Path) -> PathBuf {
    super::workspace_state::state_dir(workspace_root).join("session.json")
}

/// A saved session: its conversation and the profile it was rendered with.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSession {
    pub conversation: Conversation,
    pub profile: String,
}

/// Writes the session atomically (`crate::atomic_file`), creating the directory.
pub fn save_session(path: &Path, conversation: &Conversation, profile: &str) -> anyhow::Result<()> {
    let messages: Vec<Value> = conversation
        .messages()
        .iter()
        .map(|m| json!({"role": role_name(m.role), "content": m.content}))
        .collect();
    let body =
        json!({"session_id": conversation.session_id(), "profile": profile, "messages": messages});
    if let Some(dir) = path.parent() {
        super::workspace_state::create_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(&body)?;
    crate::atomic_file::replace(path, |file| file.write_all(&bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a session written by [`save_session`]; `Ok(None)` when there is none.
pub fn load_session(path: &Path) -> anyhow::Result<Option<SavedSession>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let bad = || {
        format!(
            "{} is not a saved Punie session; delete it to start afresh",
            path.display()
        )
    };
    let value: Value = serde_json::from_str(&text).with_context(bad)?;
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
    Ok(Some(SavedSession {
        conversation: Conversation::from_parts(session_id, messages),
        profile,
    }))
}
