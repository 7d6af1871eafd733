//! [`Settings`]: what the user chose for runs (engine, profile, turn limit, tool policy, sandbox
//! limits), in one protocol-free type. The LSP server merges them from its settings sources
//! (`lsp::settings`); ACP and the CLI fill them from flags.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::engine::EngineSpec;
use crate::policy::{Decision, PolicySettings, check};
use crate::sandbox::SandboxLimits;
use crate::tools::{PermissionClass, Tool};

/// Effective settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub engine: EngineSpec,
    /// A prompt profile name; `None`: the one the model was made for.
    pub profile: Option<String>,
    pub max_turns: usize,
    /// Tokens the model may write in one turn (`Sampling::max_tokens`).
    pub max_tokens: usize,
    /// Per-tool overrides of the policy defaults, from the front end's settings.
    pub tool_policy: BTreeMap<String, Decision>,
    /// The user's own policy file ([`super::load_policy_file`]): what `tool_policy` starts
    /// from, and the protected rules turned into ask-every-time.
    pub user_policy: PolicySettings,
    /// `tool_policy` is the user's alone (the command line, a client that vouches for its
    /// settings), so it may loosen `user_policy`; otherwise a workspace could have written
    /// it, and only what tightens counts.
    pub tool_policy_is_users: bool,
    /// The editor does not trust the workspace (VS Code's restricted mode): every write and
    /// command asks, whatever allowed it.
    pub untrusted_workspace: bool,
    pub sandbox_timeout_ms: u64,
    pub sandbox_memory_mb: u64,
    pub sandbox_output_kb: u64,
    /// What commands may reach beyond the workspace (`sandbox.network`, `sandbox.readable`).
    pub command_access: crate::jail::Access,
}

impl Default for Settings {
    fn default() -> Settings {
        let limits = SandboxLimits::default();
        Settings {
            engine: EngineSpec::Default,
            profile: None,
            max_turns: crate::agent::DEFAULT_MAX_TURNS,
            max_tokens: crate::engine::Sampling::default().max_tokens,
            tool_policy: BTreeMap::new(),
            user_policy: PolicySettings::default(),
            tool_policy_is_users: false,
            untrusted_workspace: false,
            sandbox_timeout_ms: limits.timeout_ms,
            sandbox_memory_mb: limits.memory_mb,
            sandbox_output_kb: limits.output_kb,
            command_access: crate::jail::Access::default(),
        }
    }
}

impl Settings {
    /// The values each number accepts; any other is a bad setting, never silently clamped.
    /// The sandbox's own caps are the upper bounds of its limits.
    pub const MAX_TURNS: RangeInclusive<u64> = 1..=10_000;
    pub const SANDBOX_TIMEOUT_MS: RangeInclusive<u64> = 1..=SandboxLimits::MAX_TIMEOUT_MS;
    pub const SANDBOX_MEMORY_MB: RangeInclusive<u64> = 16..=SandboxLimits::MAX_MEMORY_MB;
    pub const SANDBOX_OUTPUT_KB: RangeInclusive<u64> = 1..=SandboxLimits::MAX_OUTPUT_KB;

    /// The permission policy in force: the user's policy file, then `tool_policy` over it
    /// (only where it tightens, unless it is the user's).
    pub fn policy_settings(&self) -> PolicySettings {
        let mut res = self.user_policy.clone();
        if self.tool_policy_is_users {
            res.override_tools(&self.tool_policy);
        } else {
            res.tighten_tools(&self.tool_policy);
        }
        if self.untrusted_workspace {
            for tool in Tool::all() {
                let changes = matches!(
                    tool.permission(),
                    PermissionClass::Write | PermissionClass::Execute
                );
                if changes && check(&res.tools, tool) == Decision::Allow {
                    res.tools.set(tool.name(), Decision::Ask);
                }
            }
        }
        res
    }

    /// The tools whose `tool_policy` value is ignored because it would loosen the policy from
    /// a source a workspace can write.
    pub fn ignored_loosening(&self) -> Vec<String> {
        if self.tool_policy_is_users {
            return Vec::new();
        }
        self.user_policy.clone().tighten_tools(&self.tool_policy)
    }

    /// Limits of `run_command` and the typed tools' programs.
    pub fn command_limits(&self) -> crate::workspace::CommandLimits {
        crate::workspace::CommandLimits {
            access: self.command_access.clone(),
            ..Default::default()
        }
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
