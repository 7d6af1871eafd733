//! The `punie-phase22` profile: the fine-tune's training text, byte for byte.
//!
//! From `fixtures/punie/README.md`, confirmed on every training row: turns
//! `<|im_start|>{role}\n{content}<|im_end|>` joined by exactly one `\n` (no trailing newline, no
//! BOS); the system prompt [`DEFAULT_SYSTEM_PROMPT`] unless the caller gives one; tool results as
//! a user turn `<tool_response>\n{output}\n</tool_response>`; then the generation prompt
//! `\n<|im_start|>assistant\n`. Qwen's own chat template ends every turn with `<|im_end|>\n`,
//! which matches for a system + user prompt but adds a newline after every later turn that the
//! fine-tune never saw, which is why this profile does not use the GGUF's template.

use super::{Message, Role};

/// The system prompt of (all but two of) the Phase 22 training rows.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are Punie, an AI coding assistant that helps with Python development via PyCharm.";

const GENERATION_PROMPT: &str = "\n<|im_start|>assistant\n";

/// The system prompt Punie evaluated its later phases with (Phase 33, `tool_signatures.json`
/// → `system_prompts.phase33_eval`), naming `tools`; without tools, only its first sentences.
pub fn typed_system_prompt(tools: &[String]) -> String {
    const INTRO: &str =
        "You are Punie, an AI coding assistant. Use execute_code(code) to call tools.";
    if tools.is_empty() {
        INTRO.to_owned()
    } else {
        format!("{INTRO} Available tools: {}.", tools.join(", "))
    }
}

/// The prompt for the assistant turn after `messages`.
pub fn render(messages: &[Message]) -> String {
    render_with_system(messages, DEFAULT_SYSTEM_PROMPT)
}

/// [`render`] with `system` as the system prompt when `messages` bring none.
pub fn render_with_system(messages: &[Message], system: &str) -> String {
    let mut res = String::new();
    if messages
        .first()
        .is_none_or(|first| first.role != Role::System)
    {
        push_turn(&mut res, "system", system);
    }
    for message in messages {
        if !res.is_empty() {
            res.push('\n');
        }
        match message.role {
            Role::Tool => push_turn(&mut res, "user", &tool_response(&message.content)),
            role => push_turn(&mut res, role.as_str(), &message.content),
        }
    }
    res.push_str(GENERATION_PROMPT);
    res
}

/// How a tool result is shown to the model: the user turn's content.
pub fn tool_response(output: &str) -> String {
    format!("<tool_response>\n{output}\n</tool_response>")
}

fn push_turn(res: &mut String, role: &str, content: &str) {
    res.push_str("<|im_start|>");
    res.push_str(role);
    res.push('\n');
    res.push_str(content);
    res.push_str("<|im_end|>");
}
