//! [`Conversations`]: the conversation each front end keeps between runs, by a key the front
//! end chooses (the LSP server: the workspace folder; ACP: the session), so a follow-up
//! question can refer to the previous answer.

use crate::sync;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::agent::Conversation;

use super::instruction::Instruction;

/// Conversations by key. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Conversations(Arc<Mutex<HashMap<String, Conversation>>>);

impl Conversations {
    /// The conversation a run of `instruction` starts from: a free-form question continues
    /// the one kept under `key`; the other instructions start afresh.
    pub fn for_run(&self, key: &str, instruction: Instruction) -> Conversation {
        if !instruction.continues_conversation() {
            return Conversation::new();
        }
        self.get(key).unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<Conversation> {
        self.lock().get(key).cloned()
    }

    /// Keeps `conversation` as the one a follow-up under `key` continues.
    pub fn set(&self, key: &str, conversation: Conversation) {
        self.lock().insert(key.to_owned(), conversation);
    }

    /// Forgets every conversation; returns how many there were.
    pub fn forget_all(&self) -> usize {
        let mut conversations = self.lock();
        let n_conversations = conversations.len();
        conversations.clear();
        n_conversations
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conversation>> {
        sync::lock(&self.0)
    }
}
