//! Server settings (INTERFACES.md §2 "Settings"): parsing, validation and key-by-key merging.
//!
//! Sources arrive in order: `initializationOptions`, then each `workspace/configuration` pull
//! or `didChangeConfiguration` payload. Each is merged into the previous values key by key
//! (`toolPolicy` and `sandbox` one level deeper); `null` changes nothing. A bad value is
//! reported once, naming its key (`sandbox.timeoutMs`), and that key falls back to its default.
//! The defaults are what the user's policy file gives (its policy, its `[limits]`), else the
//! built-in ones. Unless the client vouches that its settings are the user's alone, they may be
//! a project's (Zed merges `.zed/settings.json` in): then they may tighten the policy, lower the
//! limits and narrow what commands reach, never the reverse, and a value that would is reported
//! the same way, naming the policy file as the place to set it.

#[cfg(test)]
mod declaration;
#[cfg(test)]
mod sourcegen;

use serde_json::{Map, Value};

use crate::engine::EngineSpec;
use crate::features::Settings;
use crate::policy::Decision;

/// The raw merged settings object plus its validated form.
#[derive(Debug, Clone, Default)]
pub(crate) struct SettingsStore {
    raw: Map<String, Value>,
    settings: Settings,
    /// What the user's policy file gives: what every key not set here (or set and refused)
    /// falls back to.
    users: Settings,
    /// The client vouches that its settings are the user's alone (`experimental.punieUserSettings`).
    users_settings: bool,
}

impl SettingsStore {
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The client vouches that its settings are the user's alone.
    pub(crate) fn users_settings(&self) -> bool {
        self.users_settings
    }

    /// What the editor's settings apply over: what the user's policy file gives
    /// (`features::load_policy_file`), and whether the client vouches that its settings cannot
    /// come from a workspace (then they may loosen the policy and raise the limits past it).
    pub(crate) fn set_users(&mut self, users: Settings, users_settings: bool) {
        self.users = users;
        self.users_settings = users_settings;
        self.settings = Settings {
            tool_policy_is_users: users_settings,
            ..self.users.clone()
        };
    }

    /// Merges one source and returns the problems found in it, each naming its key.
    /// A payload that is not an object (other than `null`) is itself a problem.
    pub(crate) fn apply(&mut self, source: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        match source {
            Value::Null => return problems,
            Value::Object(object) => merge(&mut self.raw, object),
            _ => problems.push("punie settings: expected an object".to_owned()),
        }
        let (mut settings, mut bad) = validate(&mut self.raw, &self.users);
        settings.tool_policy_is_users = self.users_settings;
        // A project's settings (Zed's `.zed/settings.json`) arrive the same way as the user's:
        // a looser value is ignored, once, and the way to set it is named.
        for tool in settings.ignored_loosening() {
            let value = settings
                .tool_policy
                .remove(&tool)
                .map_or("", Decision::as_str);
            if let Some(Value::Object(policies)) = self.raw.get_mut("toolPolicy") {
                policies.remove(&tool);
            }
            let file = policy_file_name();
            bad.push(format!(
                "toolPolicy.{tool}: \"{value}\" is ignored because a project's settings could send it; \
                 set it in {file} ([tools] {tool} = \"{value}\")"
            ));
        }
        if !self.users_settings {
            bad.extend(self.keep_within_users(&mut settings));
        }
        self.settings = settings;
        problems.append(&mut bad);
        problems
    }

    /// A project's settings arrive the same way as the user's, so from a client that does not
    /// vouch for its settings every limit may only be lowered and what commands reach only
    /// narrowed: a cloned repository must not make Punie run snippets longer, larger or for
    /// more turns, nor commands with more access, than the user's own limits (the policy
    /// file's `[limits]`, else the built-in defaults). A value beyond them is dropped (its key
    /// falls back to the user's limit) and named once, with its key and where to raise it.
    fn keep_within_users(&mut self, settings: &mut Settings) -> Vec<String> {
        let users = &self.users;
        let defaults = Settings::default();
        // Each: the key, what was asked, what such a source may do with it, and where else
        // the user can go past the limit.
        let mut beyond: Vec<(&str, String, String, String)> = Vec::new();
        const VOUCHING: &str =
            "client that vouches for its settings (experimental.punieUserSettings)";
        let file = policy_file_name();
        let mut max_turns = settings.max_turns as u64;
        for (key, file_key, value, limit, default) in [
            (
                "maxTurns",
                "max_turns",
                &mut max_turns,
                users.max_turns as u64,
                defaults.max_turns as u64,
            ),
            (
                "sandbox.timeoutMs",
                "timeout_ms",
                &mut settings.sandbox_timeout_ms,
                users.sandbox_timeout_ms,
                defaults.sandbox_timeout_ms,
            ),
            (
                "sandbox.memoryMb",
                "memory_mb",
                &mut settings.sandbox_memory_mb,
                users.sandbox_memory_mb,
                defaults.sandbox_memory_mb,
            ),
            (
                "sandbox.outputKb",
                "output_kb",
                &mut settings.sandbox_output_kb,
                users.sandbox_output_kb,
                defaults.sandbox_output_kb,
            ),
        ] {
            if *value > limit {
                let whose = if limit == default {
                    format!("the default is {default}")
                } else {
                    format!("your policy file's limit is {limit}")
                };
                beyond.push((
                    key,
                    value.to_string(),
                    format!("lower it ({whose})"),
                    format!(
                        "in {file} ([limits] {file_key} = {value}), in VS Code's user settings \
                         or in another {VOUCHING}"
                    ),
                ));
                *value = limit;
            }
        }
        settings.max_turns = max_turns as usize;
        let (access, dropped) = settings.command_access.within(&users.command_access);
        let (network, readable): (Vec<String>, Vec<String>) =
            dropped.into_iter().partition(|what| what == "network");
        if !network.is_empty() {
            beyond.push((
                "sandbox.network",
                "true".to_owned(),
                "turn it off".to_owned(),
                format!("with punie ask --allow-network, or in a {VOUCHING}"),
            ));
        }
        if !readable.is_empty() {
            let entries = readable.iter().map(|entry| format!("`{entry}`"));
            beyond.push((
                "sandbox.readable",
                entries.collect::<Vec<_>>().join(", "),
                "leave entries of the default list out".to_owned(),
                format!("with punie ask --readable, or in a {VOUCHING}"),
            ));
        }
        settings.command_access = access;
        beyond
            .into_iter()
            .map(|(key, asked, narrow, elsewhere)| {
                let kept = (key == "sandbox.readable")
                    .then(|| Value::from(settings.command_access.readable.clone()));
                set_raw(&mut self.raw, key, kept);
                format!(
                    "{key}: {asked} is ignored: a project's settings could send it, and they may \
                     only {narrow}; set it {elsewhere}"
                )
            })
            .collect()
    }
}

/// Where the user's policy file is, for a message that says to set something there.
fn policy_file_name() -> String {
    crate::features::policy_file_path().map_or_else(
        || "the policy file".to_owned(),
        |path| path.display().to_string(),
    )
}

/// Sets the raw value of a dotted `key` (`sandbox.timeoutMs`) to `value`, or removes it.
fn set_raw(raw: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    let (object, leaf) = match key.split_once('.') {
        None => (raw, key),
        Some((outer, inner)) => match raw.get_mut(outer) {
            Some(Value::Object(object)) => (object, inner),
            _ => return,
        },
    };
    match value {
        Some(value) => object.insert(leaf.to_owned(), value),
        None => object.remove(leaf),
    };
}

/// `sandbox.network` (a boolean) and `sandbox.readable` (absolute or `~/…` paths, replacing
/// the default list). `None`: not one of these keys; `Some("")`: applied; else the problem.
fn command_access(key: &str, value: &Value, access: &mut crate::jail::Access) -> Option<String> {
    match key {
        "network" => Some(match value.as_bool() {
            Some(network) => {
                access.network = network;
                String::new()
            }
            None => format!("sandbox.network: expected true or false, got {value}"),
        }),
        "readable" => {
            let entries: Option<Vec<String>> = value.as_array().and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect()
            });
            Some(match entries {
                None => format!(
                    "sandbox.readable: expected a list of paths such as [\"/usr\", \"~/.cargo\"], got {value}"
                ),
                Some(entries) => match entries
                    .iter()
                    .find_map(|entry| crate::jail::check_readable_entry(entry).err())
                {
                    Some(why) => format!("sandbox.readable: {why}"),
                    None => {
                        access.readable = entries;
                        String::new()
                    }
                },
            })
        }
        _ => None,
    }
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (value, into.get_mut(key)) {
            (Value::Null, _) => {}
            (Value::Object(from_inner), Some(Value::Object(into_inner)))
                if key == "toolPolicy" || key == "sandbox" =>
            {
                merge(into_inner, from_inner)
            }
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Validates the merged object over `users` (what the user's policy file gives). Bad keys are
/// removed from `raw` (so they are reported only once and `users`' value applies until a later
/// source sets them again).
fn validate(raw: &mut Map<String, Value>, users: &Settings) -> (Settings, Vec<String>) {
    let mut res = users.clone();
    let mut problems = Vec::new();
    let mut bad_keys: Vec<String> = Vec::new();
    for (key, value) in raw.iter_mut() {
        match key.as_str() {
            "engine" => match value.as_str().map(EngineSpec::parse) {
                Some(Ok(spec)) => res.engine = spec,
                Some(Err(err)) => {
                    problems.push(format!("engine: {err}"));
                    bad_keys.push(key.clone());
                }
                None => {
                    problems.push("engine: expected a string (an engine SPEC)".to_owned());
                    bad_keys.push(key.clone());
                }
            },
            "profile" => match value
                .as_str()
                .map(|name| crate::prompt::Profile::parse(name.trim()))
            {
                Some(Ok(profile)) => res.profile = Some(profile.name().to_owned()),
                Some(Err(err)) => {
                    problems.push(format!("profile: {err}"));
                    bad_keys.push(key.clone());
                }
                None => {
                    problems.push(format!(
                        "profile: expected one of {}",
                        crate::prompt::Profile::NAMES.join(", ")
                    ));
                    bad_keys.push(key.clone());
                }
            },
            // Only ever tightens, so whoever sends it cannot loosen anything.
            "untrustedWorkspace" => match value.as_bool() {
                Some(untrusted) => res.untrusted_workspace = untrusted,
                None => {
                    problems.push(format!(
                        "untrustedWorkspace: expected true or false, got {value}"
                    ));
                    bad_keys.push(key.clone());
                }
            },
            "maxTurns" => match value.as_u64().filter(|n| Settings::MAX_TURNS.contains(n)) {
                Some(n) => res.max_turns = n as usize,
                None => {
                    problems.push(format!(
                        "maxTurns: expected an integer from {} to {}, got {value}",
                        Settings::MAX_TURNS.start(),
                        Settings::MAX_TURNS.end()
                    ));
                    bad_keys.push(key.clone());
                }
            },
            "toolPolicy" => match value {
                Value::Object(policies) => {
                    let mut bad_tools = Vec::new();
                    for (tool, policy) in policies.iter() {
                        let parsed = policy.as_str().and_then(Decision::parse);
                        match parsed {
                            Some(parsed) => {
                                res.tool_policy.insert(tool.clone(), parsed);
                            }
                            None => {
                                problems.push(format!(
                                    "toolPolicy.{tool}: expected \"allow\", \"ask\" or \"deny\", got {policy}"
                                ));
                                bad_tools.push(tool.clone());
                            }
                        }
                    }
                    for tool in bad_tools {
                        policies.remove(&tool);
                    }
                }
                _ => {
                    problems.push(
                        "toolPolicy: expected an object such as {\"run_command\": \"ask\"}"
                            .to_owned(),
                    );
                    bad_keys.push(key.clone());
                }
            },
            "sandbox" => match value {
                Value::Object(limits) => {
                    let mut bad_limits = Vec::new();
                    for (limit, limit_value) in limits.iter() {
                        if let Some(problem) =
                            command_access(limit, limit_value, &mut res.command_access)
                        {
                            if !problem.is_empty() {
                                problems.push(problem);
                                bad_limits.push(limit.clone());
                            }
                            continue;
                        }
                        let (target, range) = match limit.as_str() {
                            "timeoutMs" => {
                                (&mut res.sandbox_timeout_ms, Settings::SANDBOX_TIMEOUT_MS)
                            }
                            "memoryMb" => (&mut res.sandbox_memory_mb, Settings::SANDBOX_MEMORY_MB),
                            "outputKb" => (&mut res.sandbox_output_kb, Settings::SANDBOX_OUTPUT_KB),
                            _ => {
                                problems.push(format!(
                                    "sandbox.{limit}: unknown key (expected timeoutMs, memoryMb, outputKb, network or readable)"
                                ));
                                bad_limits.push(limit.clone());
                                continue;
                            }
                        };
                        match limit_value.as_u64().filter(|n| range.contains(n)) {
                            Some(n) => *target = n,
                            None => {
                                problems.push(format!(
                                    "sandbox.{limit}: expected an integer from {} to {}, got {limit_value}",
                                    range.start(),
                                    range.end()
                                ));
                                bad_limits.push(limit.clone());
                            }
                        }
                    }
                    for limit in bad_limits {
                        limits.remove(&limit);
                    }
                }
                _ => {
                    problems.push(
                        "sandbox: expected an object with timeoutMs, memoryMb, outputKb, network, readable".to_owned(),
                    );
                    bad_keys.push(key.clone());
                }
            },
            // Unknown keys are tolerated: editors send their own keys in the same section.
            _ => {}
        }
    }
    for key in bad_keys {
        raw.remove(&key);
    }
    (res, problems)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::Tool;

    fn tool(name: &str) -> Tool {
        Tool::by_name(name).unwrap()
    }

    #[track_caller]
    fn check(sources: &[Value], expect_problems: &[&str], expect: impl Fn(&Settings)) {
        check_with(SettingsStore::default(), sources, expect_problems, expect)
    }

    /// A store whose client vouches that its settings are the user's.
    fn users_store() -> SettingsStore {
        let mut store = SettingsStore::default();
        store.set_users(Settings::default(), true);
        store
    }

    #[track_caller]
    fn check_with(
        mut store: SettingsStore,
        sources: &[Value],
        expect_problems: &[&str],
        expect: impl Fn(&Settings),
    ) {
        let mut problems = Vec::new();
        for source in sources {
            problems.extend(store.apply(source));
        }
        assert_eq!(problems, expect_problems);
        expect(store.settings());
    }

    #[test]
    fn later_sources_win_key_by_key() {
        check_with(
            users_store(),
            &[
                json!({"maxTurns": 3, "toolPolicy": {"run_command": "deny"}, "sandbox": {"timeoutMs": 500}}),
                json!({"toolPolicy": {"write_file": "allow"}, "sandbox": null, "profile": null}),
                Value::Null,
            ],
            &[],
            |settings| {
                assert_eq!(settings.max_turns, 3);
                assert_eq!(
                    crate::policy::check(&settings.policy_settings().tools, tool("run_command")),
                    Decision::Deny
                );
                assert_eq!(
                    crate::policy::check(&settings.policy_settings().tools, tool("write_file")),
                    Decision::Allow
                );
                assert_eq!(
                    crate::policy::check(&settings.policy_settings().tools, tool("read_file")),
                    Decision::Allow
                );
                assert_eq!(settings.sandbox_timeout_ms, 500);
            },
        );
    }

    #[test]
    fn a_client_that_does_not_vouch_can_only_tighten_the_policy() {
        let mut store = SettingsStore::default();
        let mut users = Settings::default();
        users.user_policy.tools.set("run_command", Decision::Allow);
        store.set_users(users, false);
        let problems = store.apply(
            &json!({"toolPolicy": {"write_file": "allow", "run_command": "ask", "read_file": "deny"}}),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("toolPolicy.write_file: \"allow\" is ignored because a project's settings could send it"),
            "{problems:?}"
        );
        let policy = store.settings().policy_settings();
        assert_eq!(
            crate::policy::check(&policy.tools, tool("write_file")),
            Decision::Ask
        );
        assert_eq!(
            crate::policy::check(&policy.tools, tool("run_command")),
            Decision::Ask
        );
        assert_eq!(
            crate::policy::check(&policy.tools, tool("read_file")),
            Decision::Deny
        );
        assert!(
            store.apply(&json!({"maxTurns": 4})).is_empty(),
            "reported once"
        );
    }

    #[test]
    fn an_untrusted_workspace_asks_for_every_write_and_command() {
        check_with(
            users_store(),
            &[
                json!({"untrustedWorkspace": true, "toolPolicy": {"write_file": "allow", "run_command": "allow", "read_file": "allow"}}),
            ],
            &[],
            |settings| {
                let policy = settings.policy_settings();
                for (name, expect) in [
                    ("write_file", Decision::Ask),
                    ("run_command", Decision::Ask),
                    ("git_status", Decision::Ask),
                    ("read_file", Decision::Allow),
                ] {
                    assert_eq!(
                        crate::policy::check(&policy.tools, tool(name)),
                        expect,
                        "{name}"
                    );
                }
            },
        );
    }

    #[test]
    fn bad_values_are_named_and_fall_back_to_defaults() {
        check(
            &[
                json!({"maxTurns": 3}),
                json!({"maxTurns": 0, "engine": "gguf:x", "toolPolicy": {"run_command": "maybe"},
                       "sandbox": {"memoryMb": "lots"}}),
            ],
            &[
                "engine: engine SPEC `gguf:x`: expected llama:PATH.gguf, openai:URL#MODEL or scripted:FILE.json",
                "maxTurns: expected an integer from 1 to 10000, got 0",
                "sandbox.memoryMb: expected an integer from 16 to 16384, got \"lots\"",
                "toolPolicy.run_command: expected \"allow\", \"ask\" or \"deny\", got \"maybe\"",
            ],
            |settings| {
                assert_eq!(settings.max_turns, 8);
                assert_eq!(settings.engine, EngineSpec::Default);
                assert_eq!(
                    crate::policy::check(&settings.policy_settings().tools, tool("run_command")),
                    Decision::Ask
                );
                assert_eq!(settings.sandbox_memory_mb, 256);
            },
        );
    }

    #[test]
    fn command_access_is_a_setting() {
        check_with(
            users_store(),
            &[json!({"sandbox": {"network": true, "readable": ["/usr", "~/.cargo", "/data"]}})],
            &[],
            |settings| {
                assert!(settings.command_access.network);
                assert_eq!(
                    settings.command_access.readable,
                    ["/usr", "~/.cargo", "/data"]
                );
            },
        );
        // From a source a project could write, only what narrows counts, and that is said once.
        let mut store = SettingsStore::default();
        let problems =
            store.apply(&json!({"sandbox": {"network": true, "readable": ["/usr", "~", "/data"]}}));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("sandbox.network: true is ignored: a project's settings could send it, and they may only turn it off;"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("sandbox.readable: `~`, `/data` is ignored"),
            "{problems:?}"
        );
        assert!(!store.settings().command_access.network);
        assert_eq!(store.settings().command_access.readable, ["/usr"]);
        assert!(store.apply(&json!({"maxTurns": 3})).is_empty());
        assert_eq!(store.settings().command_access.readable, ["/usr"]);
        check(
            &[json!({"sandbox": {"network": "yes", "readable": ["relative/path"]}})],
            &[
                "sandbox.network: expected true or false, got \"yes\"",
                "sandbox.readable: `relative/path` must be an absolute path or start with `~/`",
            ],
            |settings| assert_eq!(settings.command_access, crate::jail::Access::default()),
        );
    }

    #[test]
    fn a_client_that_does_not_vouch_can_only_lower_the_limits() {
        let defaults = Settings::default();
        let raised = json!({"maxTurns": 10_000, "sandbox": {"timeoutMs": 3_600_000, "memoryMb": 16_384, "outputKb": 4_096}});
        let mut store = SettingsStore::default();
        let problems = store.apply(&raised);
        let keys: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(':').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "maxTurns",
                "sandbox.timeoutMs",
                "sandbox.memoryMb",
                "sandbox.outputKb"
            ]
        );
        let file = policy_file_name();
        assert_eq!(
            problems[1],
            format!(
                "sandbox.timeoutMs: 3600000 is ignored: a project's settings could send it, and \
                 they may only lower it (the default is 10000); set it in {file} ([limits] \
                 timeout_ms = 3600000), in VS Code's user settings or in another client that \
                 vouches for its settings (experimental.punieUserSettings)"
            )
        );
        assert_eq!(store.settings(), &defaults);
        // Said once: a later source that does not name them changes nothing and says nothing.
        assert!(store.apply(&json!({"profile": "generic"})).is_empty());
        assert_eq!(
            store.settings().sandbox_timeout_ms,
            defaults.sandbox_timeout_ms
        );
        // The defaults themselves and anything lower count.
        let lowered =
            json!({"maxTurns": 2, "sandbox": {"timeoutMs": 500, "memoryMb": 64, "outputKb": 256}});
        assert!(store.apply(&lowered).is_empty());
        let settings = store.settings();
        assert_eq!(
            (
                settings.max_turns,
                settings.sandbox_timeout_ms,
                settings.sandbox_memory_mb,
                settings.sandbox_output_kb
            ),
            (2, 500, 64, 256)
        );
        // A raise after a lowering is refused too, and its key falls back to the default.
        let problems = store.apply(&json!({"sandbox": {"timeoutMs": 10_001}}));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("sandbox.timeoutMs: 10001 is ignored"));
        assert_eq!(
            store.settings().sandbox_timeout_ms,
            defaults.sandbox_timeout_ms
        );
        assert_eq!(store.settings().sandbox_memory_mb, 64);
        // The user's own settings may raise them.
        check_with(users_store(), &[raised], &[], |settings| {
            assert_eq!(settings.max_turns, 10_000);
            assert_eq!(settings.sandbox_timeout_ms, 3_600_000);
            assert_eq!(settings.sandbox_memory_mb, 16_384);
            assert_eq!(settings.sandbox_output_kb, 4_096);
        });
    }

    /// The user's policy file's `[limits]` take the defaults' place: a key no source sets has
    /// the file's value, a client that does not vouch may lower it but not raise it past the
    /// file's (the refusal names the file's limit), and a vouching client may set any value.
    #[test]
    fn the_policy_files_limits_are_the_users_own() {
        let (users, problems) = Settings::from_user_policy(crate::policy::UserPolicy {
            limits: crate::policy::UserLimits {
                max_turns: Some(20),
                timeout_ms: Some(60_000),
                memory_mb: None,
                output_kb: Some(1_024),
            },
            ..Default::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
        let limits = |settings: &Settings| {
            (
                settings.max_turns,
                settings.sandbox_timeout_ms,
                settings.sandbox_memory_mb,
                settings.sandbox_output_kb,
            )
        };
        let mut store = SettingsStore::default();
        store.set_users(users.clone(), false);
        assert_eq!(limits(store.settings()), (20, 60_000, 256, 1_024));
        // Above the default, within the file's limits: honoured.
        assert!(
            store
                .apply(&json!({"maxTurns": 12, "sandbox": {"timeoutMs": 30_000, "outputKb": 512}}))
                .is_empty()
        );
        assert_eq!(limits(store.settings()), (12, 30_000, 256, 512));
        // Past them: ignored, the file's value used, and the file named as where to raise it.
        let problems = store
            .apply(&json!({"maxTurns": 21, "sandbox": {"timeoutMs": 3_600_000, "memoryMb": 512}}));
        let file = policy_file_name();
        assert_eq!(
            problems,
            [
                format!(
                    "maxTurns: 21 is ignored: a project's settings could send it, and they may \
                     only lower it (your policy file's limit is 20); set it in {file} ([limits] \
                     max_turns = 21), in VS Code's user settings or in another client that \
                     vouches for its settings (experimental.punieUserSettings)"
                ),
                format!(
                    "sandbox.timeoutMs: 3600000 is ignored: a project's settings could send it, \
                     and they may only lower it (your policy file's limit is 60000); set it in \
                     {file} ([limits] timeout_ms = 3600000), in VS Code's user settings or in \
                     another client that vouches for its settings \
                     (experimental.punieUserSettings)"
                ),
                format!(
                    "sandbox.memoryMb: 512 is ignored: a project's settings could send it, and \
                     they may only lower it (the default is 256); set it in {file} ([limits] \
                     memory_mb = 512), in VS Code's user settings or in another client that \
                     vouches for its settings (experimental.punieUserSettings)"
                ),
            ]
        );
        assert_eq!(limits(store.settings()), (20, 60_000, 256, 512));
        // A vouching client's values replace the file's either way; what it leaves out keeps
        // the file's.
        let mut store = SettingsStore::default();
        store.set_users(users, true);
        assert!(
            store
                .apply(&json!({"maxTurns": 40, "sandbox": {"timeoutMs": 500}}))
                .is_empty()
        );
        assert_eq!(limits(store.settings()), (40, 500, 256, 1_024));
    }

    /// The declaration that the editors' settings and the docs are generated from
    /// (`declaration.rs`): the server accepts each setting's default, choices and bounds, and
    /// refuses what lies just outside them, naming the key.
    #[test]
    fn the_declaration_agrees_with_the_server() {
        use declaration::Kind;
        let mut seen = Vec::new();
        for declaration in declaration::declarations() {
            if !declaration.server {
                continue;
            }
            let key = declaration.key;
            seen.push(key);
            // `sandbox.timeoutMs` is `{"sandbox": {"timeoutMs": …}}` on the wire.
            let source = |value: &Value| match key.split_once('.') {
                Some((outer, inner)) => json!({ outer: { inner: value } }),
                None => json!({ key: value }),
            };
            // A client that vouches for its settings, as VS Code does for user settings.
            let accepted = |value: Value| {
                let problems = users_store().apply(&source(&value));
                assert!(problems.is_empty(), "{key} = {value}: {problems:?}");
            };
            let refused = |value: Value| {
                let problems = users_store().apply(&source(&value));
                assert!(
                    problems.len() == 1 && problems[0].starts_with(key),
                    "{key} = {value}: {problems:?}"
                );
            };
            match declaration.kind {
                // Empty is not sent: it means the default.
                Kind::Text { default } => assert_eq!(default, "", "{key}"),
                Kind::Choice { choices, .. } => {
                    for choice in choices.iter().filter(|choice| !choice.value.is_empty()) {
                        accepted(json!(choice.value));
                    }
                    refused(json!("not-one-of-them"));
                }
                Kind::Integer { default, range } => {
                    accepted(json!(default));
                    accepted(json!(range.start()));
                    refused(json!(range.start() - 1));
                    accepted(json!(range.end()));
                    refused(json!(range.end() + 1));
                }
                Kind::Boolean { default } => {
                    accepted(json!(default));
                    refused(json!("yes"));
                }
                Kind::Paths { .. } => {
                    accepted(json!(crate::jail::DEFAULT_READABLE));
                    refused(json!("/usr"));
                }
            }
        }
        assert_eq!(
            seen,
            [
                "engine",
                "profile",
                "maxTurns",
                "toolPolicy.read_file",
                "toolPolicy.write_file",
                "toolPolicy.run_command",
                "sandbox.timeoutMs",
                "sandbox.memoryMb",
                "sandbox.outputKb",
                "sandbox.network",
                "sandbox.readable",
                "untrustedWorkspace",
            ]
        );
    }
}
