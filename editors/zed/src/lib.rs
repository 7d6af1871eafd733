//! Zed extension for Punie: starts `punie lsp` for the languages in `extension.toml` and passes the
//! user's settings through. Everything Punie does in Zed comes from the server over standard LSP
//! (code actions, `$/progress`, `window/showMessage`, `window/showMessageRequest`, `workspace/applyEdit`).


use zed_extension_api::{self as zed, serde_json, settings::LspSettings, LanguageServerId, Result};

/// The name of the binary looked up on the worktree's PATH.
pub const BINARY: &str = "punie";
/// The language server's id in `extension.toml` and in the user's `lsp` settings.
pub const SERVER_ID: &str = "punie";
/// The configuration section the server pulls with `workspace/configuration`.
pub const CONFIG_SECTION: &str = "punie";

/// What to run. Mirrors `zed::Command` so that the logic is testable on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommand {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The error shown in Zed's language server status when no binary is found.
pub fn not_found_message() -> String {
    format!(
        "`{BINARY}` was not found on PATH. Install Punie (from a checkout: `cargo install --path server`, \
         then `punie models fetch`), or set its path in your Zed settings: \
         {{\"lsp\": {{\"{SERVER_ID}\": {{\"binary\": {{\"path\": \"/path/to/punie\"}}}}}}}}"
    )
}

/// The command that starts the server: the user's `lsp.punie.binary.path` (with its `arguments`,
/// default `["lsp"]`), else `punie` found on the worktree's PATH (`which`), run as `punie lsp`.
/// The environment is the worktree's shell environment plus the user's `binary.env`.
pub fn server_command(
    binary: Option<&zed::settings::CommandSettings>,
    which: Option<String>,
    shell_env: Vec<(String, String)>,
) -> std::result::Result<ServerCommand, String> {
    let user_path = binary.and_then(|b| b.path.clone()).filter(|p| !p.trim().is_empty());
    let command = match user_path.or(which) {
        Some(p) => p,
        None => return Err(not_found_message()),
    };
    let args = binary
        .and_then(|b| b.arguments.clone())
        .unwrap_or_else(|| vec!["lsp".to_string()]);
    let mut env: Vec<(String, String)> = shell_env;
    if let Some(extra) = binary.and_then(|b| b.env.as_ref()) {
        let mut extra: Vec<(&String, &String)> = extra.iter().collect();
        extra.sort();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
    }
    Ok(ServerCommand { command, args, env })
}

/// `initializationOptions`: the user's `lsp.punie.initialization_options`, else their
/// `lsp.punie.settings` (the same keys: engine, profile, maxTurns, toolPolicy, sandbox).
pub fn initialization_options(s: &LspSettings) -> Option<serde_json::Value> {
    s.initialization_options.clone().or_else(|| s.settings.clone())
}

/// The workspace configuration Zed answers `workspace/configuration` (section `punie`) and
/// `workspace/didChangeConfiguration` with: `{"punie": <lsp.punie.settings>}`.
pub fn workspace_configuration(s: &LspSettings) -> Option<serde_json::Value> {
    let settings = s.settings.clone().or_else(|| s.initialization_options.clone())?;
    let mut map = serde_json::Map::new();
    map.insert(CONFIG_SECTION.to_string(), settings);
    Some(serde_json::Value::Object(map))
}

struct PunieExtension;

fn lsp_settings(worktree: &zed::Worktree) -> LspSettings {
    LspSettings::for_worktree(SERVER_ID, worktree).unwrap_or_default()
}

impl zed::Extension for PunieExtension {
    fn new() -> Self {
        PunieExtension
    }

    fn language_server_command(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let settings = lsp_settings(worktree);
        let c = server_command(settings.binary.as_ref(), worktree.which(BINARY), worktree.shell_env())?;
        Ok(zed::Command { command: c.command, args: c.args, env: c.env })
    }

    fn language_server_initialization_options(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(initialization_options(&lsp_settings(worktree)))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(workspace_configuration(&lsp_settings(worktree)))
    }
}

zed::register_extension!(PunieExtension);


#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use zed::settings::CommandSettings;

    fn env() -> Vec<(String, String)> {
        vec![("PATH".into(), "/usr/bin".into()), ("HOME".into(), "/home/me".into())]
    }

    #[test]
    fn uses_punie_from_path_with_lsp_argument() {
        let c = server_command(None, Some("/usr/local/bin/punie".into()), env()).unwrap();
        assert_eq!(c.command, "/usr/local/bin/punie");
        assert_eq!(c.args, vec!["lsp"]);
        assert_eq!(c.env, env());
    }

    #[test]
    fn settings_path_wins_over_path_and_keeps_lsp_argument() {
        let b = CommandSettings { path: Some("/opt/punie/bin/punie".into()), arguments: None, env: None };
        let c = server_command(Some(&b), Some("/usr/local/bin/punie".into()), env()).unwrap();
        assert_eq!(c.command, "/opt/punie/bin/punie");
        assert_eq!(c.args, vec!["lsp"]);
    }

    #[test]
    fn user_arguments_and_env_are_passed() {
        let b = CommandSettings {
            path: None,
            arguments: Some(vec!["lsp".into(), "--verbose".into()]),
            env: Some(HashMap::from([("RUST_LOG".into(), "debug".into()), ("HOME".into(), "/tmp/h".into())])),
        };
        let c = server_command(Some(&b), Some("/usr/bin/punie".into()), env()).unwrap();
        assert_eq!(c.command, "/usr/bin/punie");
        assert_eq!(c.args, vec!["lsp", "--verbose"]);
        assert!(c.env.contains(&("RUST_LOG".into(), "debug".into())));
        assert!(c.env.contains(&("HOME".into(), "/tmp/h".into())));
        assert!(!c.env.contains(&("HOME".into(), "/home/me".into())));
    }

    #[test]
    fn missing_binary_says_what_to_do() {
        let e = server_command(None, None, env()).unwrap_err();
        assert!(e.contains("was not found on PATH"), "{e}");
        assert!(e.contains("cargo install --path server"), "{e}");
        assert!(e.contains("\"binary\": {\"path\""), "{e}");
        let blank = CommandSettings { path: Some("  ".into()), arguments: None, env: None };
        assert!(server_command(Some(&blank), None, env()).is_err());
    }

    #[test]
    fn initialization_options_come_from_the_user_settings() {
        let opts = serde_json::json!({"engine": "llama:/m.gguf", "maxTurns": 4,
            "toolPolicy": {"run_command": "deny"}});
        let s = LspSettings { binary: None, initialization_options: Some(opts.clone()), settings: None };
        assert_eq!(initialization_options(&s), Some(opts.clone()));
        assert_eq!(workspace_configuration(&s), Some(serde_json::json!({"punie": opts})));
        let s2 = LspSettings { binary: None, initialization_options: None, settings: Some(serde_json::json!({"profile": "p"})) };
        assert_eq!(initialization_options(&s2), Some(serde_json::json!({"profile": "p"})));
        assert_eq!(workspace_configuration(&s2), Some(serde_json::json!({"punie": {"profile": "p"}})));
        assert_eq!(initialization_options(&LspSettings::default()), None);
        assert_eq!(workspace_configuration(&LspSettings::default()), None);
    }

    #[test]
    fn extension_toml_registers_python_first_and_the_common_languages() {
        let toml = include_str!("../extension.toml");
        assert!(toml.contains("[language_servers.punie]"));
        let langs = toml.split("languages = [").nth(1).unwrap();
        let first = langs.trim_start().split(',').next().unwrap().trim();
        assert_eq!(first, "\"Python\"");
        for l in ["Rust", "TypeScript", "JavaScript", "Go", "Markdown", "TOML"] {
            assert!(langs.contains(&format!("\"{l}\"")), "{l}");
        }
    }
}
