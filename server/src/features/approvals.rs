//! [`SessionApprovals`]: what the user allowed or denied "for this session", shared by the
//! runs of one server (or one ACP session) until the policy setting changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::front_end::PermissionRequest;

/// Remembered answers by the scope they cover. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionApprovals(Arc<Mutex<HashMap<String, bool>>>);

impl SessionApprovals {
    /// `Some(true)` when a remembered "allow" covers `request`, `Some(false)` for a
    /// remembered "deny", `None` when the user must be asked.
    pub fn lookup(&self, request: &PermissionRequest) -> Option<bool> {
        self.lock().get(&scope(request)).copied()
    }

    pub fn remember(&self, request: &PermissionRequest, allowed: bool) {
        self.lock().insert(scope(request), allowed);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one remembered answer covers: the tool, as "Allow for this session" has meant so
/// far (issue 14 narrows it to the file or the command prefix shown).
fn scope(request: &PermissionRequest) -> String {
    request.tool.name().to_owned()
}
