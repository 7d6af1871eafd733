//! Saved ACP sessions, so `session/load` and `session/list` work after a restart: each session
//! is its conversation (`agent::save_session`, `<id>.json`) plus what the session list shows
//! (`<id>.meta.json`: working directory, title, model, last update), in `$PUNIE_SESSION_DIR`,
//! else `<data dir>/sessions` (`~/.local/share/punie/sessions`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::agent::{self, Conversation, SavedSession};

/// What the session list shows of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionMeta {
    pub session_id: String,
    pub cwd: PathBuf,
    pub title: String,
    /// The model selector's value when the session was saved.
    pub model: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    pub(crate) fn open() -> anyhow::Result<SessionStore> {
        Ok(SessionStore {
            dir: crate::own_dirs::session_dir()?,
        })
    }

    /// Saves the conversation, then its metadata (the list shows only complete sessions).
    pub(crate) fn save(
        &self,
        meta: &SessionMeta,
        conversation: &Conversation,
        profile: &str,
    ) -> anyhow::Result<()> {
        let (conversation_path, meta_path) = self.paths(&meta.session_id)?;
        agent::save_session(&conversation_path, conversation, profile)?;
        // A store an earlier version made readable to others becomes the user's alone.
        crate::own_dirs::keep_private(&self.dir);
        agent::write_stored(&meta_path, &serde_json::to_vec_pretty(meta)?)
    }

    /// The saved session `session_id`, or `None` when there is none.
    pub(crate) fn load(
        &self,
        session_id: &str,
    ) -> anyhow::Result<Option<(SessionMeta, SavedSession)>> {
        let (conversation_path, meta_path) = self.paths(session_id)?;
        let Some(meta) = read_meta(&meta_path)? else {
            return Ok(None);
        };
        let Some(saved) = agent::load_session(&conversation_path)? else {
            return Ok(None);
        };
        Ok(Some((meta, saved)))
    }

    /// Saved sessions, newest first; only those in `cwd` when given.
    pub(crate) fn list(&self, cwd: Option<&Path>) -> Vec<SessionMeta> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut res: Vec<SessionMeta> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".meta.json"))
            .filter_map(|entry| match read_meta(&entry.path()) {
                Ok(meta) => meta,
                Err(err) => {
                    tracing::warn!("a saved session is left out of the list: {err:#}");
                    None
                }
            })
            .filter(|meta| cwd.is_none_or(|cwd| meta.cwd == cwd))
            .collect();
        res.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        res
    }

    /// The two files of a session; a session id that is not a plain file name is refused.
    fn paths(&self, session_id: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let plain = !session_id.is_empty()
            && session_id.len() <= 128
            && !session_id.starts_with('.')
            && session_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !plain {
            anyhow::bail!("sessionId {session_id:?} is not a Punie session id");
        }
        Ok((
            self.dir.join(format!("{session_id}.json")),
            self.dir.join(format!("{session_id}.meta.json")),
        ))
    }
}

/// The largest metadata file read: a few hundred bytes in practice.
const MAX_META_BYTES: u64 = 64 * 1024;

fn read_meta(path: &Path) -> anyhow::Result<Option<SessionMeta>> {
    let Some(bytes) = agent::read_stored(path, MAX_META_BYTES)? else {
        return Ok(None);
    };
    let meta =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?;
    Ok(Some(meta))
}

/// A session's title: the first line of its first question, shortened.
pub(crate) fn title_of(question: &str) -> String {
    let line = question
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let line = line.trim();
    match line.char_indices().nth(80) {
        Some((idx, _)) => format!("{}…", &line[..idx]),
        None => line.to_owned(),
    }
}

/// Now, as RFC 3339 in UTC (`2026-12-06T16:00:00Z`).
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs_of_day = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_573_130), "2026-12-06T16:05:30Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn titles_are_the_first_line() {
        assert_eq!(title_of("\n  What is this?\nMore"), "What is this?");
        assert_eq!(title_of(&"x".repeat(100)), format!("{}…", "x".repeat(80)));
    }

    #[test]
    fn session_ids_are_plain_file_names() {
        let store = SessionStore {
            dir: PathBuf::from("/s"),
        };
        assert!(store.paths("session-1-2-3").is_ok());
        for bad in ["../x", "a/b", "", ".hidden", "a\u{0}b"] {
            assert!(store.paths(bad).is_err(), "{bad:?}");
        }
    }
}
