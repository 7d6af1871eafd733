//! The permission policy, pure: who may do what to the workspace, and what the user is shown
//! when asked.
//!
//! * [`ToolRequest`] (`request`): a tool call resolved before it is judged (the real path,
//!   the argv, the change).
//! * [`decide`] / [`permit`] (`decide`): the one decision, a table of rules in order;
//!   [`Ruling`]: how a call was decided, for the snippet's `PermissionError` and the
//!   transcript.
//! * [`PROTECTED`] (`protected`): paths refused before any prompt, as data.
//! * [`Prompt`] (`prompt`): the question as data; `show` escapes and quotes what it shows,
//!   `diff` computes a write's change.
//! * [`Scope`], [`SessionApprovals`] (`scope`): what "Allow for this session" covers.
//! * [`parse_user_policy`] (`user`): the user's own policy file, the one place (with the
//!   command line and clients that vouch for their settings) that may loosen the policy or
//!   raise the limits of runs ([`UserLimits`]).
//!
//! A tool's setting (allow, ask, deny; `toolPolicy` in the server's settings) defaults to its
//! [`PermissionClass`]'s: reads are allowed, writes and commands ask. Front ends only show the
//! prompt they are given and return the answer.
//!
//! **Architecture invariant:** pure: no IO.

mod decide;
mod diff;
mod prompt;
mod protected;
mod request;
mod scope;
mod show;
/// What a Markdown client shows of a text, for the tests of every module that sends one.
#[cfg(test)]
pub(crate) use show::markdown_view;
mod user;

pub use decide::{Answer, PolicySettings, Refusal, RuledBy, Ruling, Verdict, decide, permit, rule};
pub use diff::{Before, Diff, DiffStat, FileStamp, MAX_DIFF_LINES};
pub use prompt::{Change, DIALOG_SUBJECT_CHARS, Prompt, PromptKind};
pub use protected::{
    PROTECTED, Pattern, ProtectedRule, VIRTUAL_ENV_MARKERS, protected_rule, rule_by_id,
};
pub use request::{Action, Target, ToolRequest};
pub use scope::{Scope, SessionApprovals};
pub use show::{
    Shown, cut, escape, escape_lines, has_hidden, markdown_code_block, markdown_literal, one_line,
    shell_line, shell_word,
};
pub use user::{UserLimits, UserPolicy, parse_user_policy};

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

    /// Is `self` at least as strict as `other` (deny > ask > allow)?
    pub fn at_least_as_strict_as(self, other: Decision) -> bool {
        let rank = |decision| match decision {
            Decision::Allow => 0,
            Decision::Ask => 1,
            Decision::Deny => 2,
        };
        rank(self) >= rank(other)
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

impl PolicySettings {
    /// Applies `overrides` (tool name → decision) from a source that may loosen the policy:
    /// the user's own command line, or a client whose settings are the user's alone.
    pub fn override_tools<'a>(
        &mut self,
        overrides: impl IntoIterator<Item = (&'a String, &'a Decision)>,
    ) {
        for (name, decision) in overrides {
            self.tools.set(name, *decision);
        }
    }

    /// Applies `overrides` from a source that a workspace can write (an editor's merged
    /// settings): only where they are at least as strict as what is in force. Returns the
    /// names whose looser value was ignored.
    pub fn tighten_tools<'a>(
        &mut self,
        overrides: impl IntoIterator<Item = (&'a String, &'a Decision)>,
    ) -> Vec<String> {
        let mut ignored = Vec::new();
        for (name, decision) in overrides {
            let in_force = match Tool::by_name(name) {
                Some(tool) => check(&self.tools, tool),
                // A tool this Punie does not know: nothing to loosen.
                None => Decision::Deny,
            };
            if decision.at_least_as_strict_as(in_force) {
                self.tools.set(name, *decision);
            } else if Tool::by_name(name).is_some() {
                ignored.push(name.clone());
            }
        }
        ignored
    }
}

/// The dialog [`decide`] asks `action` of `tool` with under the default policy and no
/// session approvals, for tests of how dialogs read.
#[cfg(test)]
pub(crate) fn default_prompt(action: Action, tool: &str) -> Prompt {
    let request = ToolRequest {
        tool: Tool::by_name(tool).unwrap(),
        action,
    };
    match decide(
        &request,
        &PolicySettings::default(),
        &SessionApprovals::default(),
    ) {
        Verdict::Ask(prompt) => *prompt,
        other => panic!("expected ask, got {other:?}"),
    }
}

#[cfg(test)]
mod tests;
