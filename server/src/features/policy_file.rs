//! The user's own policy file: where it is, and reading it. What it may say is
//! `policy::parse_user_policy`'s business.
//!
//! `PUNIE_POLICY_FILE` names it; else `$XDG_CONFIG_HOME/punie/policy.toml`; else
//! `~/.config/punie/policy.toml` (on every OS, so that one path is documented). A missing file
//! is the default policy. Where it is (`jail::policy_file_path`) is the jail's to know too: the
//! file is protected wherever it resolves, from the write tools and commands alike.

pub use crate::jail::policy_file_path;
use crate::policy::{PolicySettings, parse_user_policy};

/// The user's policy and its problems, each naming the file and the key.
pub fn load_policy_file() -> (PolicySettings, Vec<String>) {
    let Some(path) = policy_file_path() else {
        return (PolicySettings::default(), Vec::new());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (settings, problems) = parse_user_policy(&text);
            let problems = problems
                .into_iter()
                .map(|problem| format!("{}: {problem}", path.display()))
                .collect();
            (settings, problems)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (PolicySettings::default(), Vec::new())
        }
        Err(err) => (
            PolicySettings::default(),
            vec![format!("{}: cannot read it: {err}", path.display())],
        ),
    }
}
