//! The user's own policy file (`~/.config/punie/policy.toml`), parsed. It is the one settings
//! source a workspace cannot write, so it is where the policy may be loosened: a tool set to
//! `allow`, a protected rule turned into ask-every-time.
//!
//! ```toml
//! [tools]              # allow | ask | deny, by tool name
//! run_command = "allow"
//!
//! [protected]          # refuse (the default) | ask, by rule id (see `PROTECTED`)
//! executable = "ask"
//! ```

use super::{Decision, PROTECTED, PolicySettings};

/// The settings a policy file's `text` gives, and its problems, each naming its key. A bad
/// entry is left out (the default applies); the rest still counts.
pub fn parse_user_policy(text: &str) -> (PolicySettings, Vec<String>) {
    let mut res = PolicySettings::default();
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
                        Some(decision) => res.tools.set(tool, decision),
                        None => problems.push(format!(
                            "tools.{tool}: expected \"allow\", \"ask\" or \"deny\", got {value}"
                        )),
                    }
                }
            }
            "protected" => {
                for (rule, value) in entries {
                    match value.as_str() {
                        Some("ask") if res.ask_for_protected(rule) => {}
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
            other => problems.push(format!(
                "[{other}]: unknown section; expected [tools] or [protected]"
            )),
        }
    }
    (res, problems)
}
