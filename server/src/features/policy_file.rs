//! The user's own policy file: where it is, and reading it into the settings every front end
//! starts from. What it may say is `policy::parse_user_policy`'s business, what its limits may
//! be [`Settings::from_user_policy`]'s.
//!
//! `PUNIE_POLICY_FILE` names it; else `$XDG_CONFIG_HOME/punie/policy.toml`; else
//! `~/.config/punie/policy.toml` (on every OS, so that one path is documented). A missing file
//! is the default policy. Where it is (`jail::policy_file_path`) is the jail's to know too: the
//! file is protected wherever it resolves, from the write tools and commands alike.

use super::Settings;
pub use crate::jail::policy_file_path;
use crate::policy::parse_user_policy;

/// The settings the user's policy file gives (its policy, its limits; the defaults for the
/// rest), and its problems, each naming the file and the key.
pub fn load_policy_file() -> (Settings, Vec<String>) {
    let Some(path) = policy_file_path() else {
        return (Settings::default(), Vec::new());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (user, mut problems) = parse_user_policy(&text);
            let (settings, out_of_range) = Settings::from_user_policy(user);
            problems.extend(out_of_range);
            let problems = problems
                .into_iter()
                .map(|problem| format!("{}: {problem}", path.display()))
                .collect();
            (settings, problems)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (Settings::default(), Vec::new()),
        Err(err) => (
            Settings::default(),
            vec![format!("{}: cannot read it: {err}", path.display())],
        ),
    }
}
