//! Every setting, declared once: its key, type, default, bounds and description
//! (INTERFACES.md §2 "Settings").
//!
//! The defaults are read from [`Settings::default`] and the policy's defaults, the bounds are
//! the ones `validate` enforces, so this table cannot disagree with the server. The other
//! copies are generated from it by the test in `sourcegen.rs`: VS Code's `settings.decl.json`
//! and `package.json` configuration, and the settings tables of `docs/INTERFACES.md` and the
//! VS Code README. It is compiled for tests only: the server validates with `Settings`' own
//! bounds and defaults, which this table reads.

use std::ops::RangeInclusive;

use crate::features::Settings;
use crate::policy::{PolicySettings, check};
use crate::tools::Tool;

/// One setting.
#[derive(Debug, Clone)]
pub(crate) struct Declaration {
    /// Dotted, under the section `punie`: `sandbox.timeoutMs` is
    /// `{"sandbox": {"timeoutMs": …}}` on the wire.
    pub(crate) key: &'static str,
    pub(crate) kind: Kind,
    /// `false`: VS Code's own setting, never sent to the server.
    pub(crate) server: bool,
    /// How VS Code offers it; `None`: VS Code does not (the server still reads it).
    pub(crate) vscode: Option<VsCode>,
    /// Markdown: what it does, for every client.
    pub(crate) description: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A string; for the server, empty means "the default" and is not sent.
    Text {
        default: &'static str,
    },
    /// One of `choices`.
    Choice {
        default: &'static str,
        choices: &'static [Choice],
    },
    Integer {
        default: u64,
        range: RangeInclusive<u64>,
    },
    Boolean {
        default: bool,
    },
    /// A list of paths; the default is described, not listed.
    Paths {
        default: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    pub(crate) value: &'static str,
    pub(crate) description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct VsCode {
    /// VS Code's configuration scope: what decides which program runs, where code goes, what
    /// runs without asking and how much of the machine a run may use is `machine` or
    /// `application`, so a workspace cannot set it (the extension vouches for its settings).
    pub(crate) scope: &'static str,
    /// Appended to the description in VS Code (what the scope means for the user).
    pub(crate) note: &'static str,
}

const POLICY_CHOICES: &[Choice] = &[
    Choice {
        value: "allow",
        description: "Run without asking",
    },
    Choice {
        value: "ask",
        description: "Ask with a dialog each time (Allow, Allow for this session, Deny)",
    },
    Choice {
        value: "deny",
        description: "Never: the tool raises PermissionError",
    },
];

/// `""` first: the profile is the model's unless the user picks one.
const PROFILE_CHOICES: &[Choice] = &[
    Choice {
        value: "",
        description: "The one the model was made for (its manifest entry; `generic` for a model the manifest does not know)",
    },
    Choice {
        value: "punie-phase22",
        description: "The fine-tune's training text, byte for byte (names no tools)",
    },
    Choice {
        value: "punie-typed",
        description: "The same text with the system prompt of Punie's later phases, naming the tools offered",
    },
    Choice {
        value: "generic",
        description: "The model's own chat template, with the tools' stubs",
    },
];

/// Every setting, in the order editors show them.
pub(crate) fn declarations() -> Vec<Declaration> {
    let defaults = Settings::default();
    let policy = PolicySettings::default();
    let tool_policy = |key: &'static str, description: &'static str, note: &'static str| {
        let tool = key.strip_prefix("toolPolicy.").and_then(Tool::by_name);
        let default = check(&policy.tools, tool.expect("a tool's key"));
        Declaration {
            key,
            kind: Kind::Choice {
                default: default.as_str(),
                choices: POLICY_CHOICES,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "application",
                note,
            }),
            description,
        }
    };
    vec![
        Declaration {
            key: "serverPath",
            kind: Kind::Text { default: "" },
            server: false,
            vscode: Some(VsCode {
                scope: "machine",
                note: "Only user (or remote machine) settings count: a workspace cannot choose the program Punie starts.",
            }),
            description: "Path of the `punie` binary. Empty: the binary bundled with the extension if any, else `punie` on `PATH`. `~` and `${workspaceFolder}` are expanded. Changing it restarts the server.",
        },
        Declaration {
            key: "engine",
            kind: Kind::Text { default: "" },
            server: true,
            vscode: Some(VsCode {
                scope: "machine",
                note: "Only user (or remote machine) settings count: a workspace cannot choose where your code is sent.",
            }),
            description: "Model engine SPEC. Empty: the default embedded model (install it with `punie models fetch`). `llama:/path/model.gguf` runs any GGUF in-process, `openai:http://host:port/v1#model` uses an OpenAI-compatible server, `scripted:/path/turns.json` is the deterministic test engine. Relative paths are resolved against the server's working directory (VS Code starts it in the first workspace folder). From a client that does not vouch for its settings (`experimental.punieUserSettings`), only an installed model of Punie's catalog counts (`punie models list` names them and their paths): neither an `openai:` server, even on this machine, nor a `scripted:` script, nor any other GGUF: set those with `PUNIE_ENGINE`.",
        },
        Declaration {
            key: "profile",
            kind: Kind::Choice {
                default: "",
                choices: PROFILE_CHOICES,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "resource",
                note: "",
            }),
            description: "Prompt profile: the system prompt and chat template the model is prompted with. Empty: the one the model was made for.",
        },
        Declaration {
            key: "maxTurns",
            kind: Kind::Integer {
                default: defaults.max_turns as u64,
                range: Settings::MAX_TURNS,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "application",
                note: "A user setting: a workspace's settings cannot change it. VS Code always sends it, so it decides over the policy file's `[limits]`.",
            }),
            description: "Most model turns in one run. A run that reaches it ends with an answer that says so. Unset: the user's policy file's `[limits] max_turns`, else the default; from a client that does not vouch for its settings (`experimental.punieUserSettings`), only a value up to that counts.",
        },
        tool_policy(
            "toolPolicy.read_file",
            "Whether the agent may read files of the workspace.",
            "A user setting: a workspace's settings cannot change it.",
        ),
        tool_policy(
            "toolPolicy.write_file",
            "Whether the agent may write files of the workspace. Edits go through the editor, so one Undo reverts them. Protected files (`.git/`, `.vscode/`, CI workflows, executables, …) are refused whatever this says.",
            "A user setting: a workspace's settings cannot change it, and in Restricted Mode every write asks.",
        ),
        tool_policy(
            "toolPolicy.run_command",
            "Whether the agent may run commands (tests, linters, git) in the workspace folder.",
            "A user setting: a workspace's settings cannot change it, and in Restricted Mode every command asks.",
        ),
        Declaration {
            key: "sandbox.timeoutMs",
            kind: Kind::Integer {
                default: defaults.sandbox_timeout_ms,
                range: Settings::SANDBOX_TIMEOUT_MS,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "application",
                note: "A user setting: a workspace's settings cannot change it. VS Code always sends it, so it decides over the policy file's `[limits]`.",
            }),
            description: "Wall-clock limit of one Code Mode snippet and its tool calls, in milliseconds. Unset: the policy file's `[limits] timeout_ms`, else the default; from a client that does not vouch for its settings, only a value up to that counts.",
        },
        Declaration {
            key: "sandbox.memoryMb",
            kind: Kind::Integer {
                default: defaults.sandbox_memory_mb,
                range: Settings::SANDBOX_MEMORY_MB,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "application",
                note: "A user setting: a workspace's settings cannot change it. VS Code always sends it, so it decides over the policy file's `[limits]`.",
            }),
            description: "Memory limit of one Code Mode snippet, in MiB. Unset: the policy file's `[limits] memory_mb`, else the default; from a client that does not vouch for its settings, only a value up to that counts.",
        },
        Declaration {
            key: "sandbox.outputKb",
            kind: Kind::Integer {
                default: defaults.sandbox_output_kb,
                range: Settings::SANDBOX_OUTPUT_KB,
            },
            server: true,
            vscode: Some(VsCode {
                scope: "application",
                note: "A user setting: a workspace's settings cannot change it. VS Code always sends it, so it decides over the policy file's `[limits]`.",
            }),
            description: "Most output one snippet may print, in KiB; the rest is cut. Unset: the policy file's `[limits] output_kb`, else the default; from a client that does not vouch for its settings, only a value up to that counts.",
        },
        Declaration {
            key: "sandbox.network",
            kind: Kind::Boolean {
                default: defaults.command_access.network,
            },
            server: true,
            vscode: None,
            description: "Whether commands may use the network. From a client that does not vouch for its settings (`experimental.punieUserSettings`), only `false` counts.",
        },
        Declaration {
            key: "sandbox.readable",
            kind: Kind::Paths {
                default: "the system directories of docs/sandbox.md",
            },
            server: true,
            vscode: None,
            description: "What commands may read outside the workspace: absolute or `~/…` paths, replacing the default list; secrets stay unreadable either way. From a client that does not vouch for its settings, only a narrower list counts.",
        },
        Declaration {
            key: "untrustedWorkspace",
            kind: Kind::Boolean {
                default: defaults.untrusted_workspace,
            },
            server: true,
            vscode: None,
            description: "The editor does not trust the workspace: every write and command asks, whatever the tool policy allows. VS Code sends it in Restricted Mode.",
        },
        Declaration {
            key: "trace.server",
            kind: Kind::Choice {
                default: "off",
                choices: &[
                    Choice {
                        value: "off",
                        description: "",
                    },
                    Choice {
                        value: "messages",
                        description: "",
                    },
                    Choice {
                        value: "verbose",
                        description: "",
                    },
                ],
            },
            server: false,
            vscode: Some(VsCode {
                scope: "resource",
                note: "",
            }),
            description: "Trace the LSP messages between VS Code and the server into the `Punie` output channel.",
        },
    ]
}

impl Declaration {
    /// The description as VS Code shows it: with the bounds, and what its scope means.
    pub(crate) fn vscode_description(&self) -> String {
        let mut res = self.description.to_owned();
        if let Kind::Integer { range, .. } = &self.kind {
            res.push_str(&format!(" From {} to {}.", range.start(), range.end()));
        }
        if let Some(VsCode { note, .. }) = self.vscode
            && !note.is_empty()
        {
            res.push(' ');
            res.push_str(note);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profiles_offered_are_the_prompt_profiles() {
        let offered: Vec<&str> = PROFILE_CHOICES[1..]
            .iter()
            .map(|choice| choice.value)
            .collect();
        assert_eq!(offered, crate::prompt::Profile::NAMES);
        assert_eq!(Settings::default().profile, None, "the model's profile");
    }
}
