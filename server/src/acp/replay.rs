//! `session/load`: a saved conversation replayed as `session/update`s, the way the client saw
//! it live: each question as `user_message_chunk`, the model's prose as `agent_message_chunk`,
//! each Code Mode snippet as a completed `execute` tool call with what it printed.

use serde_json::{Value, json};

use crate::agent::Conversation;
use crate::prompt::Role;

use super::wire;

/// The updates that replay `conversation`, in order.
pub(crate) fn replay(conversation: &Conversation) -> Vec<Value> {
    let mut res = Vec::new();
    // Tool responses answer the calls of the assistant turn before them, in order.
    let mut unanswered: Vec<String> = Vec::new();
    for (message_idx, message) in conversation.messages().iter().enumerate() {
        match message.role {
            Role::System => {}
            Role::User => res.push(wire::user_text(&message.content)),
            Role::Assistant => {
                let parsed = crate::toolcall::parse(&message.content);
                if !parsed.text.trim().is_empty() {
                    res.push(wire::agent_text(parsed.text.trim()));
                }
                unanswered.clear();
                for (call_idx, call) in parsed.calls.iter().enumerate() {
                    let id = format!("replay-{message_idx}-{call_idx}");
                    let raw_input = match call.code() {
                        Some(code) => json!({"code": code}),
                        None => Value::Object(call.arguments.clone()),
                    };
                    res.push(json!({
                        "sessionUpdate": "tool_call",
                        "toolCallId": id,
                        "title": if call.code().is_some() { "Run Python".to_owned() } else { call.name.clone() },
                        "kind": "execute",
                        "status": "completed",
                        "rawInput": raw_input,
                    }));
                    unanswered.push(id);
                }
                unanswered.reverse();
            }
            Role::Tool => {
                if let Some(id) = unanswered.pop() {
                    res.push(json!({
                        "sessionUpdate": "tool_call_update",
                        "toolCallId": id,
                        "status": "completed",
                        "rawOutput": {"output": message.content},
                        "content": [{"type": "content", "content": {"type": "text", "text": message.content}}],
                    }));
                }
            }
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Message;

    #[test]
    fn a_conversation_replays_as_the_client_saw_it() {
        let call = "<tool_call><function=execute_code>\n<parameter=code>\nprint(1)\n</parameter>\n</function></tool_call>";
        let conversation = Conversation::from_parts(
            "s".to_owned(),
            vec![
                Message {
                    role: Role::System,
                    content: "sys".to_owned(),
                },
                Message {
                    role: Role::User,
                    content: "How many?".to_owned(),
                },
                Message {
                    role: Role::Assistant,
                    content: format!("Counting.\n{call}"),
                },
                Message {
                    role: Role::Tool,
                    content: "1\n".to_owned(),
                },
                Message {
                    role: Role::Assistant,
                    content: "One.".to_owned(),
                },
            ],
        );
        let kinds: Vec<(String, String)> = replay(&conversation)
            .iter()
            .map(|u| {
                (
                    u["sessionUpdate"].as_str().unwrap().to_owned(),
                    u["toolCallId"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let expect = [
            ("user_message_chunk", ""),
            ("agent_message_chunk", ""),
            ("tool_call", "replay-2-0"),
            ("tool_call_update", "replay-2-0"),
            ("agent_message_chunk", ""),
        ];
        assert_eq!(
            kinds,
            expect.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
        );
    }
}
