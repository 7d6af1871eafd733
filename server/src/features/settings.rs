//! [`Settings`]: what the user chose for runs (engine, profile, turn limit, tool policy, sandbox
//! limits), in one protocol-free type. Every front end starts from what the user's policy file
//! gives ([`Settings::from_user_policy`]: its policy, its limits in place of the built-in
//! defaults); the LSP server merges its settings sources over that (`lsp::settings`), ACP and
//! the CLI their flags.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::engine::EngineSpec;
use crate::policy::{Decision, PolicySettings, UserLimits, UserPolicy, check};
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

    /// The settings the user's policy file gives: its permission policy, and its `[limits]`
    /// in place of the built-in defaults. A limit outside what its setting accepts is a
    /// problem, named by its key as the file spells it, and the default stays.
    pub fn from_user_policy(user: UserPolicy) -> (Settings, Vec<String>) {
        let mut res = Settings {
            user_policy: user.settings,
            ..Settings::default()
        };
        let UserLimits {
            max_turns,
            timeout_ms,
            memory_mb,
            output_kb,
        } = user.limits;
        let mut turns = res.max_turns as u64;
        let mut problems = Vec::new();
        for (key, value, target, range) in [
            ("max_turns", max_turns, &mut turns, Settings::MAX_TURNS),
            (
                "timeout_ms",
                timeout_ms,
                &mut res.sandbox_timeout_ms,
                Settings::SANDBOX_TIMEOUT_MS,
            ),
            (
                "memory_mb",
                memory_mb,
                &mut res.sandbox_memory_mb,
                Settings::SANDBOX_MEMORY_MB,
            ),
            (
                "output_kb",
                output_kb,
                &mut res.sandbox_output_kb,
                Settings::SANDBOX_OUTPUT_KB,
            ),
        ] {
            match value {
                None => {}
                Some(n) if range.contains(&n) => *target = n,
                Some(n) => problems.push(format!(
                    "limits.{key}: expected an integer from {} to {}, got {n}",
                    range.start(),
                    range.end()
                )),
            }
        }
        res.max_turns = turns as usize;
        (res, problems)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_files_limits_replace_the_defaults_within_the_settings_bounds() {
        let (settings, problems) = Settings::from_user_policy(UserPolicy {
            limits: UserLimits {
                max_turns: Some(0),
                timeout_ms: Some(60_000),
                memory_mb: Some(8),
                output_kb: Some(SandboxLimits::MAX_OUTPUT_KB + 1),
            },
            ..UserPolicy::default()
        });
        assert_eq!(
            problems,
            [
                "limits.max_turns: expected an integer from 1 to 10000, got 0",
                "limits.memory_mb: expected an integer from 16 to 16384, got 8",
                "limits.output_kb: expected an integer from 1 to 4096, got 4097",
            ]
        );
        let defaults = Settings::default();
        assert_eq!(
            settings,
            Settings {
                sandbox_timeout_ms: 60_000,
                ..defaults
            }
        );
    }
}
