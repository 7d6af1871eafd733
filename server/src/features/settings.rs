//! [`Settings`]: what the user chose for runs (engine, profile, turn limit, tool policy, sandbox
//! limits), in one protocol-free type. The LSP server merges them from its settings sources
//! (`lsp::settings`); ACP and the CLI fill them from flags.

use std::collections::BTreeMap;

use crate::engine::EngineSpec;
use crate::policy::{Decision, PolicySettings};
use crate::sandbox::SandboxLimits;

/// Effective settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub engine: EngineSpec,
    /// A prompt profile name; `None`: the one the model was made for.
    pub profile: Option<String>,
    pub max_turns: usize,
    /// Per-tool overrides of the policy defaults.
    pub tool_policy: BTreeMap<String, Decision>,
    pub sandbox_timeout_ms: u64,
    pub sandbox_memory_mb: u64,
    pub sandbox_output_kb: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        let limits = SandboxLimits::default();
        Settings {
            engine: EngineSpec::Default,
            profile: None,
            max_turns: crate::agent::DEFAULT_MAX_TURNS,
            tool_policy: BTreeMap::new(),
            sandbox_timeout_ms: limits.timeout_ms,
            sandbox_memory_mb: limits.memory_mb,
            sandbox_output_kb: limits.output_kb,
        }
    }
}

impl Settings {
    /// The permission policy these settings give.
    pub fn policy_settings(&self) -> PolicySettings {
        let mut res = PolicySettings::default();
        for (name, decision) in &self.tool_policy {
            res.tools.set(name, *decision);
        }
        res
    }

    pub fn sandbox_limits(&self) -> SandboxLimits {
        SandboxLimits {
            timeout_ms: self.sandbox_timeout_ms,
            memory_mb: self.sandbox_memory_mb,
            output_kb: self.sandbox_output_kb,
            ..SandboxLimits::default()
        }
    }
}
