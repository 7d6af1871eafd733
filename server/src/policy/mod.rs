//! Tool policy as data, and the pure [`check`] that decides allow, ask or deny for a call.
//!
//! The defaults follow each tool's [`PermissionClass`]: reads are allowed, writes and
//! commands ask. A setting (`toolPolicy` in the server's settings, `--allow-commands` in
//! the CLI) overrides a tool by name. Asking is the host's business (a dialog in the editor;
//! the terminal has none, so the CLI turns `ask` into its flag's answer).
//!
//! **Architecture invariant:** pure: no IO.

use std::collections::HashMap;

use crate::tools::{PermissionClass, Tool};

/// What the policy says about one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    /// Parses a setting value: `allow`, `ask` or `deny`.
    pub fn parse(text: &str) -> Option<Decision> {
        match text {
            "allow" => Some(Decision::Allow),
            "ask" => Some(Decision::Ask),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// Overrides by tool name; tools without one get their class's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    overrides: HashMap<String, Decision>,
}

impl ToolPolicy {
    /// Sets the decision for the tool called `name` (unknown names are kept, so that a
    /// setting written for a newer Punie is not an error).
    pub fn set(&mut self, name: &str, decision: Decision) {
        self.overrides.insert(name.to_owned(), decision);
    }

    /// Sets the decision for every tool of `class`.
    pub fn set_class(&mut self, class: PermissionClass, decision: Decision) {
        for tool in Tool::all().filter(|tool| tool.permission() == class) {
            self.set(tool.name(), decision);
        }
    }
}

/// The default decision for a permission class.
pub fn default_for(class: PermissionClass) -> Decision {
    match class {
        PermissionClass::Read => Decision::Allow,
        PermissionClass::Write | PermissionClass::Execute => Decision::Ask,
    }
}

/// What the policy says about a call of `tool`.
pub fn check(policy: &ToolPolicy, tool: Tool) -> Decision {
    policy
        .overrides
        .get(tool.name())
        .copied()
        .unwrap_or_else(|| default_for(tool.permission()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_decision(policy: &ToolPolicy, name: &str, expect: Decision) {
        assert_eq!(check(policy, Tool::by_name(name).unwrap()), expect);
    }

    #[test]
    fn defaults_follow_the_permission_class() {
        let policy = ToolPolicy::default();
        check_decision(&policy, "read_file", Decision::Allow);
        check_decision(&policy, "write_file", Decision::Ask);
        check_decision(&policy, "run_command", Decision::Ask);
    }

    #[test]
    fn overrides_win() {
        let mut policy = ToolPolicy::default();
        policy.set("run_command", Decision::Deny);
        policy.set_class(PermissionClass::Write, Decision::Allow);
        check_decision(&policy, "run_command", Decision::Deny);
        check_decision(&policy, "write_file", Decision::Allow);
        assert_eq!(Decision::parse("ask"), Some(Decision::Ask));
        assert_eq!(Decision::parse("maybe"), None);
    }
}
