//! Typed messages → the prompt text the engine tokenizes for the next assistant turn.
//!
//! Three profiles ([`Profile`]):
//!
//! - `punie-phase22` reproduces the Punie fine-tune's training text byte for byte (see
//!   [`phase22`]): ChatML turns joined by exactly one `\n`, tool results as a *user* turn
//!   `<tool_response>\n…\n</tool_response>`, then `\n<|im_start|>assistant\n`. Golden tests compare
//!   it with every row of the training data. Its prompt names no tools: the model was trained
//!   on the three core tools without stubs.
//! - `punie-typed` is for Punie's later phases, trained on the typed tools: the same text, with
//!   the system prompt Punie evaluated them with (Phase 33), which names the tools offered.
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
mod quote;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// The Punie fine-tune's training format, byte for byte.
    PuniePhase22,
    /// Punie's later phases: the Phase 22 format, with a system prompt naming `tools`, the
    /// tools offered (from the tool registry and what is installed; none by default).
    PunieTyped { tools: Vec<String> },
    /// Any other model: its own chat template (or ChatML) with Code Mode in the system prompt.
    Generic(GenericConfig),
}

/// What the `generic` profile needs from outside this module: the model's chat template (from
/// the engine) and the tool stubs (from the tool registry). The default renders ChatML with the
/// Code Mode instructions but no stubs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenericConfig {
    /// The model's chat template (Jinja), e.g. GGUF `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// The typed Python stubs of the registered tools, shown in the system prompt.
    pub stubs: String,
    /// Passed to the template as `bos_token` / `eos_token` (from the model's vocabulary).
    pub bos_token: String,
    pub eos_token: String,
}

impl Profile {
    /// Every profile name, in the order error messages list them.
    pub const NAMES: [&'static str; 3] = ["punie-phase22", "punie-typed", "generic"];

    /// The name used in settings, manifests and `--profile`.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::PuniePhase22 => Profile::NAMES[0],
            Profile::PunieTyped { .. } => Profile::NAMES[1],
            Profile::Generic(_) => Profile::NAMES[2],
        }
    }

    /// The profile called `name`; `generic` comes with [`GenericConfig::default`],
    /// `punie-typed` with no tools.
    pub fn parse(name: &str) -> Result<Profile, UnknownProfile> {
        match name {
            "punie-phase22" => Ok(Profile::PuniePhase22),
            "punie-typed" => Ok(Profile::PunieTyped { tools: Vec::new() }),
            "generic" => Ok(Profile::Generic(GenericConfig::default())),
            _ => Err(UnknownProfile {
                name: name.to_owned(),
            }),
        }
    }

    /// [`Profile::parse`] for callers that word their own error.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::parse(name).ok()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of [`Profile::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown prompt profile `{name}`: expected one of {}", Profile::NAMES.join(", "))]
pub struct UnknownProfile {
    pub name: String,
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Exactly the text to tokenize, generation prompt included.
    pub text: String,
    /// Why the model's chat template was not used (it failed to render), for the log.
    pub fallback_reason: Option<String>,
    /// The byte ranges of `text` that are the messages' words rather than the template's
    /// (see [`quote`]): an engine tokenizes control tokens' text there as plain text. `None`
    /// when the template changes the words, so where they are is unknown.
    pub quoted: Option<Vec<Range<usize>>>,
}

/// The prompt text for the next assistant turn after `messages`.
pub fn render(profile: &Profile, messages: &[Message]) -> String {
    render_text(profile, &quote::inert(messages)).text
}

/// [`render`], also saying whether the model's chat template had to be replaced by ChatML,
/// and which ranges quote the messages' words (one more render, two for a template that
/// rewrites the model's answers).
pub fn render_prompt(profile: &Profile, messages: &[Message]) -> Prompt {
    let messages = quote::inert(messages);
    let mut prompt = render_text(profile, &messages);
    // Every message's words, else all but the model's answers (which some templates rewrite).
    const QUOTED: [&[Role]; 2] = [&Role::ALL, &[Role::System, Role::User, Role::Tool]];
    prompt.quoted = QUOTED.iter().find_map(|roles| {
        quote::unmark(&render_text(profile, &quote::marked(&messages, roles)).text)
            .filter(|(text, _)| *text == prompt.text)
            .map(|(_, ranges)| ranges)
    });
    prompt
}

/// The prompt for `messages`, which carry no marks of [`quote`] unless to find the ranges.
fn render_text(profile: &Profile, messages: &[Message]) -> Prompt {
    match profile {
        Profile::PuniePhase22 => Prompt {
            text: phase22::render(messages),
            fallback_reason: None,
            quoted: None,
        },
        Profile::PunieTyped { tools } => Prompt {
            text: phase22::render_with_system(messages, &phase22::typed_system_prompt(tools)),
            fallback_reason: None,
            quoted: None,
        },
        Profile::Generic(config) => generic::render(messages, config),
    }
}

/// The system message a new conversation starts with. Every profile also supplies it when the
/// conversation has none; `generic` adds the Code Mode instructions to whatever system prompt it
/// gets, so they are never stored in the conversation.
pub fn system_prompt(profile: &Profile) -> Option<String> {
    Some(match profile {
        Profile::PuniePhase22 => phase22::DEFAULT_SYSTEM_PROMPT.to_owned(),
        Profile::PunieTyped { tools } => phase22::typed_system_prompt(tools),
        Profile::Generic(_) => generic::DEFAULT_SYSTEM_PROMPT.to_owned(),
    })
}

/// The text to append to `render(before)` to get `render(before ++ new)`, or `None` when the
/// profile renders `before` differently once `new` follows (then re-render the whole prompt and
/// let the engine reuse the common prefix). Appending the model's reply and the tool results
/// (`new` starting with an assistant message) always works for `punie-phase22` and ChatML.
pub fn render_continuation(
    profile: &Profile,
    before: &[Message],
    new: &[Message],
) -> Option<String> {
    let previous = render(profile, before);
    let mut all = before.to_vec();
    all.extend_from_slice(new);
    let next = render(profile, &all);
    next.strip_prefix(previous.as_str()).map(str::to_owned)
}

/// What every prompt for a new user turn after `messages` starts with: the conversation
/// rendered up to where that turn's words begin (`…<|im_end|>\n<|im_start|>user\n` in ChatML),
/// with the quoted ranges within it. An engine can evaluate it while the user is still reading
/// the answer. `None` when the profile does not show a user's words verbatim.
pub fn next_user_turn_start(profile: &Profile, messages: &[Message]) -> Option<Prompt> {
    // A private-use character no template adds or changes.
    const MARK: &str = "\u{E000}next user turn\u{E000}";
    let mut all = messages.to_vec();
    all.push(Message::user(MARK));
    let mut prompt = render_prompt(profile, &all);
    let at = prompt.text.find(MARK)?;
    prompt.text.truncate(at);
    if let Some(quoted) = &mut prompt.quoted {
        quoted.retain(|range| range.start < at);
        for range in quoted.iter_mut() {
            range.end = range.end.min(at);
        }
    }
    Some(prompt)
}
