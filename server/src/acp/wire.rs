//! ACP v1's names and shapes (agentclientprotocol.com, schema v1; checked against the Python
//! SDK `agent-client-protocol`'s generated schema): method names, `session/update` kinds, tool
//! kinds, stop reasons, permission options, and builders for the messages Punie sends.

use serde_json::{Value, json};

use crate::agent::RunStatus;
use crate::features::Instruction;
use crate::policy;
use crate::tools::{PermissionClass, Tool};

pub(crate) const PROTOCOL_VERSION: u64 = 1;

/// The model selector's `configId`.
pub(crate) const MODEL_CONFIG_ID: &str = "model";

/// Permission option ids (ours) and kinds (the spec's).
pub(crate) const ALLOW_ONCE: &str = "allow_once";
pub(crate) const ALLOW_ALWAYS: &str = "allow_always";
pub(crate) const REJECT_ONCE: &str = "reject_once";
pub(crate) const REJECT_ALWAYS: &str = "reject_always";

/// `initialize`'s result.
pub(crate) fn initialize_result() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "agentCapabilities": {
            "loadSession": true,
            "promptCapabilities": {"image": false, "audio": false, "embeddedContext": true},
            "mcpCapabilities": {"http": false, "sse": false},
            "sessionCapabilities": {"list": {}},
        },
        "authMethods": [],
        "agentInfo": {"name": "punie", "title": "Punie", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// A `session/update` notification's params.
pub(crate) fn update(session_id: &str, update: Value) -> Value {
    json!({"sessionId": session_id, "update": update})
}

pub(crate) fn agent_text(text: &str) -> Value {
    json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}})
}

pub(crate) fn agent_thought(text: &str) -> Value {
    json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": text}})
}

pub(crate) fn user_text(text: &str) -> Value {
    json!({"sessionUpdate": "user_message_chunk", "content": {"type": "text", "text": text}})
}

/// A tool call's `content` of one text block, which a client renders as Markdown (the spec says
/// it should; Zed does).
pub(crate) fn text_content(markdown: &str) -> Value {
    json!([{"type": "content", "content": {"type": "text", "text": markdown}}])
}

/// A tool call's `content` that shows `text` (what a snippet printed, a tool's call as the
/// model wrote it) as it is: hidden characters escaped, the rest Markdown code.
pub(crate) fn literal_content(text: &str) -> Value {
    text_content(&policy::markdown_literal(&policy::escape_lines(text)))
}

/// What a repository or the client chose (an attachment's URI, the session's folder, a refusal
/// that quotes a file's name) in a JSON-RPC error's message, which a client may render as
/// Markdown as Zed renders its messages: on one line, hidden characters escaped
/// ([`policy::one_line`]), as Markdown code, so that none of it becomes a link, an image or a
/// heading.
pub(crate) fn literal_in_error(text: &str) -> String {
    policy::markdown_literal(&policy::one_line(text))
}

/// The slash commands: the code actions' instructions.
pub(crate) fn available_commands() -> Value {
    let commands: Vec<Value> = Instruction::ALL
        .into_iter()
        .filter(|instruction| *instruction != Instruction::Ask)
        .map(|instruction| {
            json!({
                "name": instruction.name(),
                "description": instruction.description(),
                "input": {"hint": "attach the code (@file or a selection), then an optional note"},
            })
        })
        .collect();
    json!({"sessionUpdate": "available_commands_update", "availableCommands": commands})
}

/// One model the selector offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelChoice {
    pub value: String,
    pub name: String,
    pub description: String,
}

/// `configOptions`: the model selector.
pub(crate) fn config_options(choices: &[ModelChoice], current: &str) -> Value {
    let options: Vec<Value> = choices
        .iter()
        .map(|choice| json!({"value": choice.value, "name": choice.name, "description": choice.description}))
        .collect();
    json!([{
        "id": MODEL_CONFIG_ID,
        "name": "Model",
        "description": "The model that answers in this session",
        "category": "model",
        "type": "select",
        "currentValue": current,
        "options": options,
    }])
}

/// The four permission options, always offered in this order.
pub(crate) fn permission_options() -> Value {
    json!([
        {"optionId": ALLOW_ONCE, "name": "Allow", "kind": "allow_once"},
        {"optionId": ALLOW_ALWAYS, "name": "Allow for this session", "kind": "allow_always"},
        {"optionId": REJECT_ONCE, "name": "Deny", "kind": "reject_once"},
        {"optionId": REJECT_ALWAYS, "name": "Deny for this session", "kind": "reject_always"},
    ])
}

/// The tool kind the client shows an icon for.
pub(crate) fn tool_kind(tool: Option<Tool>) -> &'static str {
    let Some(tool) = tool else { return "other" };
    let name = tool.name();
    if ["definition", "references", "symbols", "hover", "find"]
        .iter()
        .any(|part| name.contains(part))
    {
        return "search";
    }
    match tool.permission() {
        PermissionClass::Read => "read",
        PermissionClass::Write => "edit",
        PermissionClass::Execute => "execute",
    }
}

/// `session/prompt`'s stop reason for how a run ended; `None` for a failure, which is an error
/// response instead (no stop reason means "failed").
pub(crate) fn stop_reason(status: &RunStatus) -> Option<&'static str> {
    match status {
        RunStatus::Done => Some("end_turn"),
        RunStatus::TurnLimit { .. } => Some("max_turn_requests"),
        RunStatus::Truncated(_) => Some("max_tokens"),
        RunStatus::Cancelled => Some("cancelled"),
        RunStatus::Failed(_) => None,
    }
}
