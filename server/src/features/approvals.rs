//! [`SessionApprovals`]: what the user allowed or denied "for this session", shared by the
//! runs of one workspace folder of the LSP server (or of one ACP session) until the policy
//! setting changes: paths and working directories in an answer are relative to the folder, so
//! one set never serves two. What one answer covers is the policy's business
//! (`policy::Scope`: one exact command, a file, never a tool).

use crate::sync;
use std::sync::{Arc, Mutex};

/// The session's remembered answers. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionApprovals(Arc<Mutex<crate::policy::SessionApprovals>>);

impl SessionApprovals {
    /// The answers, for `policy::permit`.
    pub fn shared(&self) -> &Mutex<crate::policy::SessionApprovals> {
        &self.0
    }

    pub fn clear(&self) {
        sync::lock(&self.0).clear();
    }
}
