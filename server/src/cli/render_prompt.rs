//! `punie render-prompt`: `{"messages": [...]}` on stdin → the exact prompt bytes on stdout.
//!
//! The bytes are what the engine would tokenize for the next assistant turn, generation prompt
//! included, with no newline added. `--chat-template FILE` gives `generic` a model's template;
//! without one `generic` renders ChatML. The tools shown (`generic`'s stubs, `punie-typed`'s
//! names) are those offered on this machine, as in a real run.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::Outcome;
use crate::prompt::{self, Message, Profile, Role};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prompt profile: punie-phase22, punie-typed or generic.
    #[arg(long)]
    profile: String,
    /// A Jinja chat template for the generic profile (as in GGUF `tokenizer.chat_template`).
    #[arg(long, value_name = "FILE")]
    chat_template: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut profile = Profile::parse(&args.profile)?;
    if let Some(path) = &args.chat_template {
        let Profile::Generic(config) = &mut profile else {
            anyhow::bail!("--chat-template only applies to --profile generic");
        };
        let template = std::fs::read_to_string(path)
            .with_context(|| format!("reading chat template {}", path.display()))?;
        config.chat_template = Some(template);
    }
    crate::agent::show_offered_tools(&mut profile);
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading {\"messages\": [...]} from stdin")?;
    let messages = messages_from_json(&input)?;
    let rendered = prompt::render_prompt(&profile, &messages);
    if let Some(reason) = &rendered.fallback_reason {
        tracing::warn!("{reason}");
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}

/// Parses the request; errors name the message and field that is wrong.
pub fn messages_from_json(input: &str) -> anyhow::Result<Vec<Message>> {
    #[derive(serde::Deserialize)]
    struct Request {
        messages: Vec<WireMessage>,
    }
    #[derive(serde::Deserialize)]
    struct WireMessage {
        role: String,
        content: String,
    }
    let request: Request = serde_json::from_str(input)
        .context("stdin is not {\"messages\": [{\"role\": ..., \"content\": ...}]}")?;
    request
        .messages
        .into_iter()
        .enumerate()
        .map(|(idx, message)| {
            let role = Role::parse(&message.role).with_context(|| {
                format!(
                    "message {idx}: unknown role `{}`: expected system, user, assistant or tool",
                    message.role
                )
            })?;
            Ok(Message {
                role,
                content: message.content,
            })
        })
        .collect()
}
