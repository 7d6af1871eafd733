//! The user's own policy file (`~/.config/punie/policy.toml`), parsed. It is the one settings
//! source a workspace cannot write, so it is where the policy may be loosened (a tool set to
//! `allow`, a protected rule turned into ask-every-time) and the limits of runs raised.
//!
//! ```toml
//! [tools]              # allow | ask | deny, by tool name
//! run_command = "allow"
//!
//! [protected]          # refuse (the default) | ask, by rule id (see `PROTECTED`)
//! executable = "ask"
//!
//! [limits]             # the user's own limits in place of the built-in defaults
//! max_turns = 16
//! timeout_ms = 60000
//! memory_mb = 1024
//! output_kb = 1024
//! ```

use super::{Decision, PROTECTED, PolicySettings};

/// What the user's policy file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPolicy {
    pub settings: PolicySettings,
    pub limits: UserLimits,
}

/// The policy file's `[limits]`: each a whole number, or `None` where the file says nothing.
/// Whether a number is within what the limit accepts is the settings' business (their bounds
/// are the sandbox's and the agent's), so it is checked where the limits are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub max_turns: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub output_kb: Option<u64>,
}

impl UserLimits {
    /// The keys of `[limits]`, in the order the docs list them.
    pub const KEYS: [&'static str; 4] = ["max_turns", "timeout_ms", "memory_mb", "output_kb"];

    /// The value of the limit called `key` (one of [`UserLimits::KEYS`]).
    fn slot(&mut self, key: &str) -> Option<&mut Option<u64>> {
        match key {
            "max_turns" => Some(&mut self.max_turns),
            "timeout_ms" => Some(&mut self.timeout_ms),
            "memory_mb" => Some(&mut self.memory_mb),
            "output_kb" => Some(&mut self.output_kb),
            _ => None,
        }
    }
}

/// What a policy file's `text` says, and its problems, each naming its key. A bad entry is
/// left out (the default applies); the rest still counts.
pub fn parse_user_policy(text: &str) -> (UserPolicy, Vec<String>) {
    let mut res = UserPolicy::default();
    let mut problems = Vec::new();
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(err) => return (res, vec![format!("not valid TOML: {}", err.message())]),
    };
    for (section, value) in &table {
        let Some(entries) = value.as_table() else {
            problems.push(format!("{section}: expected a table ([{section}])"));
            continue;
        };
        match section.as_str() {
            "tools" => {
                for (tool, value) in entries {
                    match value.as_str().and_then(Decision::parse) {
                        Some(decision) => res.settings.tools.set(tool, decision),
                        None => problems.push(format!(
                            "tools.{tool}: expected \"allow\", \"ask\" or \"deny\", got {value}"
                        )),
                    }
                }
            }
            "protected" => {
                for (rule, value) in entries {
                    match value.as_str() {
                        Some("ask") if res.settings.ask_for_protected(rule) => {}
                        Some("refuse") if PROTECTED.iter().any(|known| known.id == rule) => {}
                        Some("ask" | "refuse") => problems.push(format!(
                            "protected.{rule}: no such rule; the rules are {}",
                            PROTECTED
                                .iter()
                                .map(|known| known.id)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        _ => problems.push(format!(
                            "protected.{rule}: expected \"refuse\" or \"ask\", got {value}"
                        )),
                    }
                }
            }
            "limits" => {
                for (key, value) in entries {
                    let Some(slot) = res.limits.slot(key) else {
                        problems.push(format!(
                            "limits.{key}: unknown key; expected {}",
                            UserLimits::KEYS.join(", ")
                        ));
                        continue;
                    };
                    match value.as_integer().and_then(|n| u64::try_from(n).ok()) {
                        Some(n) => *slot = Some(n),
                        None => problems.push(format!(
                            "limits.{key}: expected a whole number, got {value}"
                        )),
                    }
                }
            }
            other => problems.push(format!(
                "[{other}]: unknown section; expected [tools], [protected] or [limits]"
            )),
        }
    }
    (res, problems)
}
