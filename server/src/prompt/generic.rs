//! The `generic` profile: any model's own chat template, with Code Mode in the system prompt.
//!
//! The template (GGUF `tokenizer.chat_template`) is rendered with minijinja the way Hugging Face
//! renders it: `trim_blocks` and `lstrip_blocks` on, `messages`, `add_generation_prompt=true`,
//! `bos_token`, `eos_token`, `raise_exception`, and the common Python string and dict methods
//! (`strip`, `startswith`, `split`, `items`, `get`, …) that templates call. A template that is
//! empty, fails to compile or render (an unknown function such as `strftime_now`, a loop
//! control), runs out of fuel or renders nothing falls back to ChatML, and
//! [`super::Prompt::fallback_reason`] says why.
//!
//! **A template is code from a model file**, which may come from anywhere. It renders with an
//! instruction budget ([`template_fuel`]: many times what real templates take, so a template
//! that loops without end stops within a fraction of a second), minijinja's recursion limit and
//! range cap, and a bound on what it may output. The Python methods Punie adds
//! ([`MethodBudget`]) compute the size of what they would build first, and refuse a string
//! longer than the template may output, or more than [`METHOD_BUDGET_FACTOR`] times that in all
//! (`s.replace("", s)` twice asked for 7.9 GB and aborted the process). Not bounded: memory a
//! template builds with minijinja's own operators in few instructions (`ns.s ~ ns.s` doubled in
//! a loop, inside a `set`, so a cap on the output does not see it); minijinja has no allocation
//! limit, so a model file is trusted that far, as llama.cpp trusts it with its weights.
//!
//! Tool results: when the template mentions the `tool` role it gets `role: tool` messages and
//! wraps them itself (Qwen's templates do); otherwise, as in ChatML, a tool result becomes a user
//! turn `<tool_response>\n…\n</tool_response>`, the form Punie's training data uses, instead of a
//! role the model never saw.
//!
//! The system prompt is the caller's (or [`DEFAULT_SYSTEM_PROMPT`]), a blank line, then
//! [`code_mode_instructions`] with the stubs. It is prepended to the caller's system message, so
//! a caller's system prompt never loses the tool instructions.

use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State, context};

use super::phase22::tool_response;
use super::{GenericConfig, Message, Prompt, Role};
use crate::tools::{CODE_MODE_INTRO, CODE_MODE_RULES, code_mode_functions};

/// The persona when the caller supplies no system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are Punie, an AI coding assistant that helps with Python development.";

/// Code Mode instructions: Punie's (see [`crate::tools::code_mode_instructions`]), plus the exact
/// call syntax our parser reads, since a model without the fine-tune has never seen
/// `execute_code` as a tool.
pub fn code_mode_instructions(stubs: &str) -> String {
    let stubs = stubs.trim_end();
    let functions = if stubs.is_empty() {
        String::new()
    } else {
        format!("\n{}", code_mode_functions(stubs))
    };
    format!("{CODE_MODE_INTRO}{CALL_SYNTAX}{functions}\n{CODE_MODE_RULES}")
}

/// How to call `execute_code`, in the form the fine-tune emits and the parser reads.
const CALL_SYNTAX: &str = r#"To use it, write exactly this form, with your code in place of the example, and stop:

<tool_call><function=execute_code>
<parameter=code>
print(read_file("README.md"))
</parameter>
</function></tool_call>

What the code prints comes back in a <tool_response>. Then answer, or run more code.
Answer directly, without a tool call, when no tool is needed.
"#;

/// The generic prompt; see the module doc.
pub fn render(messages: &[Message], config: &GenericConfig) -> Prompt {
    let tool_role_known = config
        .chat_template
        .as_deref()
        .is_some_and(mentions_tool_role);
    let mut fallback_reason = None;
    if let Some(template) = config.chat_template.as_deref() {
        let turns = turns(messages, &config.stubs, tool_role_known);
        match render_template(template, &turns, config) {
            Ok(text) => {
                return Prompt {
                    text,
                    fallback_reason: None,
                    quoted: None,
                };
            }
            Err(why) => {
                fallback_reason = Some(format!(
                    "the model's chat template is not usable, so ChatML is used: {why}"
                ));
            }
        }
    }
    Prompt {
        text: chatml(&turns(messages, &config.stubs, false)),
        fallback_reason,
        quoted: None,
    }
}

/// ChatML with the generation prompt, as Qwen's and SmolLM2's templates write it.
pub fn chatml(turns: &[(&'static str, String)]) -> String {
    let mut res = String::new();
    for (role, content) in turns {
        res.push_str("<|im_start|>");
        res.push_str(role);
        res.push('\n');
        res.push_str(content);
        res.push_str("<|im_end|>\n");
    }
    res.push_str("<|im_start|>assistant\n");
    res
}

/// The turns the template sees: the system prompt first, tool results as `tool` or wrapped user
/// turns.
fn turns(messages: &[Message], stubs: &str, tool_role_known: bool) -> Vec<(&'static str, String)> {
    let (system, rest) = match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (first.content.as_str(), rest),
        _ => (DEFAULT_SYSTEM_PROMPT, messages),
    };
    let mut res = vec![(
        "system",
        format!("{system}\n\n{}", code_mode_instructions(stubs)),
    )];
    for message in rest {
        res.push(match message.role {
            Role::Tool if tool_role_known => ("tool", message.content.clone()),
            Role::Tool => ("user", tool_response(&message.content)),
            role => (role.as_str(), message.content.clone()),
        });
    }
    res
}

fn mentions_tool_role(template: &str) -> bool {
    template.contains("'tool'") || template.contains("\"tool\"")
}

/// The instructions a template may execute for `n_turns` turns. Qwen3's template, the most
/// involved one measured, takes about 70 per turn plus 150; SmolLM2's about 20 per turn.
pub fn template_fuel(n_turns: usize) -> u64 {
    50_000 + 2_000 * n_turns as u64
}

/// The most a template may write: the turns it was given, four times over (a template repeats
/// the system prompt or wraps turns in markup, it does not multiply them), plus 64 KiB.
fn output_limit(turns: &[(&'static str, String)]) -> usize {
    4 * turns
        .iter()
        .map(|(_, content)| content.len())
        .sum::<usize>()
        + 64 * 1024
}

/// The template's output, or why it cannot be used (one line).
fn render_template(
    template: &str,
    turns: &[(&'static str, String)],
    config: &GenericConfig,
) -> Result<String, String> {
    if template.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    let text = render_with_minijinja(template, turns, config).map_err(|err| {
        if err.kind() == ErrorKind::OutOfFuel {
            format!(
                "it did not finish within {} instructions",
                template_fuel(turns.len())
            )
        } else {
            err.to_string()
        }
    })?;
    if text.trim().is_empty() {
        return Err("it rendered nothing".to_owned());
    }
    let limit = output_limit(turns);
    if text.len() > limit {
        return Err(format!(
            "it wrote {} bytes, more than the {limit} its messages allow",
            text.len()
        ));
    }
    Ok(text)
}

fn render_with_minijinja(
    template: &str,
    turns: &[(&'static str, String)],
    config: &GenericConfig,
) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_fuel(Some(template_fuel(turns.len())));
    // Hugging Face compiles chat templates with both on; templates are written for it.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    let budget = MethodBudget::new(output_limit(turns));
    env.set_unknown_method_callback(move |state, value, method, args| {
        python_method(state, value, method, args, &budget)
    });
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_template("chat_template", template)?;
    let messages: Vec<Value> = turns
        .iter()
        .map(|(role, content)| context! { role => *role, content => content.as_str() })
        .collect();
    env.get_template("chat_template")?.render(context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => config.bos_token.as_str(),
        eos_token => config.eos_token.as_str(),
    })
}

/// What the Python methods of one render may build, in bytes, as a multiple of what the
/// template may output.
const METHOD_BUDGET_FACTOR: usize = 8;

/// The bytes the Python methods may still build in one render: no one string longer than the
/// template may output, and [`METHOD_BUDGET_FACTOR`] times that in all. Each method charges the
/// size of its result before building it.
struct MethodBudget {
    largest: usize,
    left: AtomicUsize,
}

impl MethodBudget {
    fn new(output_limit: usize) -> MethodBudget {
        MethodBudget {
            largest: output_limit,
            left: AtomicUsize::new(output_limit.saturating_mul(METHOD_BUDGET_FACTOR)),
        }
    }

    /// Takes `bytes` (`None`: more than a `usize`) for the result of `method`, or refuses.
    fn charge(&self, method: &str, bytes: Option<usize>) -> Result<(), Error> {
        let refused = |why: String| Err(Error::new(ErrorKind::InvalidOperation, why));
        let Some(bytes) = bytes.filter(|&bytes| bytes <= self.largest) else {
            return refused(format!(
                "{method}() would build a string longer than the {} bytes the template may write",
                self.largest
            ));
        };
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        if taken.is_err() {
            return refused(format!(
                "{method}() would build more than the {} bytes the template's methods may build in all",
                self.largest.saturating_mul(METHOD_BUDGET_FACTOR)
            ));
        }
        Ok(())
    }
}

/// The length of `text` with each of `count` occurrences of `from` replaced by `to`.
fn replaced_len(text: &str, from: &str, to: &str, count: usize) -> Option<usize> {
    text.len()
        .checked_sub(count.checked_mul(from.len())?)?
        .checked_add(count.checked_mul(to.len())?)
}

/// The Python methods chat templates call most (Jinja2 runs in Python, minijinja does not).
fn python_method(
    state: &State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
    budget: &MethodBudget,
) -> Result<Value, Error> {
    let arg_str = |idx: usize| args.get(idx).and_then(Value::as_str);
    if let Some(text) = value.as_str() {
        let chars = arg_str(0);
        let is_stripped = |c: char| chars.map_or(c.is_whitespace(), |chars| chars.contains(c));
        let part = |part: &str| -> Result<Value, Error> {
            budget.charge(method, Some(part.len()))?;
            Ok(Value::from(part))
        };
        // A character's upper or lower case is at most three times its UTF-8 length.
        let recased = |recase: fn(&str) -> String| -> Result<Value, Error> {
            budget.charge(method, text.len().checked_mul(3))?;
            Ok(Value::from(recase(text)))
        };
        return Ok(match method {
            "strip" => part(text.trim_matches(is_stripped))?,
            "lstrip" => part(text.trim_start_matches(is_stripped))?,
            "rstrip" => part(text.trim_end_matches(is_stripped))?,
            "upper" => recased(str::to_uppercase)?,
            "lower" => recased(str::to_lowercase)?,
            "startswith" | "endswith" => {
                let test = |affix: &str| {
                    if method == "startswith" {
                        text.starts_with(affix)
                    } else {
                        text.ends_with(affix)
                    }
                };
                let Some(affixes) = args.first() else {
                    return Err(Error::new(
                        ErrorKind::MissingArgument,
                        "startswith/endswith needs an argument",
                    ));
                };
                match affixes.as_str() {
                    Some(affix) => Value::from(test(affix)),
                    // A tuple of prefixes.
                    None => {
                        Value::from(affixes.try_iter()?.any(|it| it.as_str().is_some_and(test)))
                    }
                }
            }
            "split" => {
                let separator = arg_str(0).filter(|separator| !separator.is_empty());
                let count = match separator {
                    Some(separator) => text.matches(separator).count() + 1,
                    None => text.split_whitespace().count(),
                };
                // Each part is a value of its own besides its text.
                let size = count
                    .checked_mul(std::mem::size_of::<Value>())
                    .and_then(|values| values.checked_add(text.len()));
                budget.charge(method, size)?;
                let parts: Vec<String> = match separator {
                    Some(separator) => text.split(separator).map(str::to_owned).collect(),
                    None => text.split_whitespace().map(str::to_owned).collect(),
                };
                Value::from(parts)
            }
            "replace" => match (arg_str(0), arg_str(1)) {
                (Some(from), Some(to)) => {
                    // An empty `from` matches around every character, as in Python.
                    let count = text.matches(from).count();
                    budget.charge(method, replaced_len(text, from, to, count))?;
                    Value::from(text.replace(from, to))
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::MissingArgument,
                        "replace needs two strings",
                    ));
                }
            },
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        });
    }
    if value.kind() == minijinja::value::ValueKind::Map {
        return match method {
            "items" => state.apply_filter("items", std::slice::from_ref(value)),
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let values: Result<Vec<Value>, Error> =
                    value.try_iter()?.map(|key| value.get_item(&key)).collect();
                Ok(Value::from(values?))
            }
            "get" => {
                let key = args.first().cloned().unwrap_or_default();
                let found = value.get_item(&key)?;
                Ok(if found.is_undefined() {
                    args.get(1).cloned().unwrap_or(Value::from(()))
                } else {
                    found
                })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        };
    }
    Err(Error::from(ErrorKind::UnknownMethod))
}
