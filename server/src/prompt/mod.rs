//! Typed messages → the prompt text the engine tokenizes for the next assistant turn.
//!
//! Two profiles ([`Profile`]):
//!
//! - `punie-phase22` reproduces the Punie fine-tune's training text byte for byte (see
//!   [`phase22`]): ChatML turns joined by exactly one `\n`, tool results as a *user* turn
//!   `<tool_response>\n…\n</tool_response>`, then `\n<|im_start|>assistant\n`. Golden tests compare
//!   it with every row of the training data.
//! - `generic` is for any other model (see [`generic`]): the model's own chat template from its
//!   GGUF metadata, rendered with minijinja, falling back to ChatML; the system prompt carries the
//!   Code Mode instructions and the typed stubs of the registered tools.
//!
//! **KV-prefix reuse.** The agent appends to a conversation instead of re-rendering it, so the
//! engine only evaluates new tokens. [`render_continuation`] gives the text to append and says
//! when that is not possible. For `punie-phase22` the render of a conversation is always a prefix
//! of the render of that conversation plus an assistant reply (the generation prompt is exactly
//! how an assistant turn starts); for `generic` it depends on the template (ChatML and most
//! templates keep it; templates that rewrite earlier turns, e.g. drop old reasoning, do not).
//!
//! This module does no IO: the chat template and the stubs come in as strings.

pub mod generic;
pub mod phase22;

#[cfg(test)]
mod tests;

use std::fmt;

/// Who speaks in a turn. `Tool` is a tool result; each profile decides how the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::System, Role::User, Role::Assistant, Role::Tool];

    /// The wire name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// `None` for anything but the four wire names.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One turn. `content` is used verbatim: an assistant turn is the model's raw output (tool-call
/// text included), a tool turn is the tool's output without any wrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }
    pub fn tool(content: impl Into<String>) -> Message {
        Message::new(Role::Tool, content)
    }
}

/// How to turn messages into a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// The Punie fine-tune's training format, byte for byte.
    PuniePhase22,
    /// Any other model: its own chat template (or ChatML) with Code Mode in the system prompt.
    Generic,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::PuniePhase22, Profile::Generic];

    /// The name used in settings, manifests and `--profile`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::PuniePhase22 => "punie-phase22",
            Profile::Generic => "generic",
        }
    }

    pub fn parse(name: &str) -> Result<Profile, UnknownProfile> {
        Profile::ALL
            .into_iter()
            .find(|profile| profile.name() == name)
            .ok_or_else(|| UnknownProfile {
                name: name.to_owned(),
            })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown prompt profile `{name}`: expected one of {}", Profile::ALL.map(Profile::name).join(", "))]
pub struct UnknownProfile {
    pub name: String,
}

/// What a profile needs from the outside. `punie-phase22` uses none of it: the fine-tune was
/// trained without stubs or a template.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromptConfig<'a> {
    /// The model's chat template (Jinja), e.g. GGUF `tokenizer.chat_template`.
    pub chat_template: Option<&'a str>,
    /// The typed Python stubs of the registered tools, shown in the generic system prompt.
    pub stubs: &'a str,
    /// Passed to the template as `bos_token` / `eos_token` (from the GGUF vocabulary).
    pub bos_token: &'a str,
    pub eos_token: &'a str,
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Exactly the text to tokenize, generation prompt included.
    pub text: String,
    /// Why the model's chat template was not used (it failed to render), for the log.
    pub fallback_reason: Option<String>,
}

/// Renders `messages` for the next assistant turn.
pub fn render(profile: Profile, messages: &[Message], config: &PromptConfig<'_>) -> Prompt {
    match profile {
        Profile::PuniePhase22 => Prompt {
            text: phase22::render(messages),
            fallback_reason: None,
        },
        Profile::Generic => generic::render(messages, config),
    }
}

/// The text to append to `render(before)` to get `render(before ++ new)`, or `None` when the
/// profile renders `before` differently once `new` follows (then re-render the whole prompt and
/// let the engine reuse the common prefix). Appending the model's reply and the tool results
/// (`new` starting with an assistant message) always works for `punie-phase22`.
pub fn render_continuation(
    profile: Profile,
    before: &[Message],
    new: &[Message],
    config: &PromptConfig<'_>,
) -> Option<String> {
    let previous = render(profile, before, config);
    let mut all = before.to_vec();
    all.extend_from_slice(new);
    let next = render(profile, &all, config);
    next.text
        .strip_prefix(previous.text.as_str())
        .map(str::to_owned)
}
