//! [`Conversation`]: the messages of one session, kept between runs so a follow-up question
//! continues where the last answer left off.
//!
//! The messages are stored exactly as the model saw them (the assistant's raw output, tool
//! calls included), so re-rendering the conversation for the next question reproduces the
//! previous prompt byte for byte and the engine reuses its KV cache.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::prompt::{Message, Role};

/// One session's messages. The system message, when the profile has one, comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    session_id: String,
    messages: Vec<Message>,
}

impl Conversation {
    /// A new, empty session; the run adds the profile's system prompt.
    pub fn new() -> Conversation {
        Conversation {
            session_id: new_id("session"),
            messages: Vec::new(),
        }
    }

    /// A session restored from storage.
    pub fn from_parts(session_id: String, messages: Vec<Message>) -> Conversation {
        Conversation {
            session_id,
            messages,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub(crate) fn push(&mut self, role: Role, content: impl Into<String>) {
        self.messages.push(Message {
            role,
            content: content.into(),
        });
    }

    /// Makes `system` the one system message, first; `None` leaves none. A conversation
    /// restored from a file (`.punie/session.json` is in the workspace, where a repository can
    /// ship one) keeps its turns but never chooses its own system prompt.
    pub(crate) fn set_system_prompt(&mut self, system: Option<String>) {
        self.messages.retain(|message| message.role != Role::System);
        if let Some(system) = system {
            self.messages.insert(0, Message::new(Role::System, system));
        }
    }

    /// The messages, for context management to drop and condense earlier ones.
    pub(crate) fn messages_mut(&mut self) -> &mut Vec<Message> {
        &mut self.messages
    }
}

impl Default for Conversation {
    fn default() -> Conversation {
        Conversation::new()
    }
}

/// A fresh run id: unique within this machine, sortable by start time, safe as a file name.
pub fn new_run_id() -> String {
    new_id("run")
}

/// `<prefix>-<unix ms>-<pid>-<counter>`: no two ids repeat within a process, and processes
/// differ by pid; sorting by name sorts by start time.
fn new_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{millis}-{}-{n}", std::process::id())
}

/// The wire name of a role (`system`, `user`, `assistant`, `tool`), as in `render-prompt`'s input.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// The role named `name`, if it is one.
pub fn role_from_name(name: &str) -> Option<Role> {
    match name {
        "system" => Some(Role::System),
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        "tool" => Some(Role::Tool),
        _ => None,
    }
}
