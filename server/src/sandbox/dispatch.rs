//! The host side of one tool call: permission, confinement, the back end, the record.

use serde_json::Value;

use super::{Permission, ToolCallRecord, ToolEvent, ToolHost};
use crate::cancel::CancelFlag;
use crate::tools::{Backend, Tool};
use crate::workspace::{self, ToolError};

/// What `write_file` returns to the snippet: the text the Phase 22 training rows show.
pub(crate) const WRITE_FILE_RESULT: &str = "File written successfully";

/// Carries out one call, reporting its lifecycle through `on_event`.
pub(crate) fn call(
    host: &dyn ToolHost,
    name: &str,
    args: Value,
    cancel: &CancelFlag,
    on_event: &mut dyn FnMut(ToolEvent),
) -> (ToolCallRecord, Result<Value, ToolError>) {
    let Some(tool) = Tool::by_name(name) else {
        let err = ToolError::new("NameError", format!("name '{name}' is not defined"));
        let record = ToolCallRecord {
            tool: name.to_owned(),
            args,
            ok: false,
            error: Some(err.to_string()),
        };
        return (record, Err(err));
    };
    let label = tool.label(&args);
    on_event(ToolEvent::Started {
        tool: name.to_owned(),
        label: label.clone(),
    });
    let res = match host.permit(tool, &label) {
        Permission::Deny => Err(ToolError::permission(format!(
            "{name} was not permitted (denied by the user or the tool policy): {label}"
        ))),
        Permission::Allow => match host.call_tool(tool, &args, cancel) {
            Some(res) => res,
            None => builtin(host, tool, &args, cancel),
        },
    };
    let error = res.as_ref().err().map(ToolError::to_string);
    on_event(ToolEvent::Finished {
        tool: name.to_owned(),
        ok: res.is_ok(),
        error: error.clone(),
    });
    let record = ToolCallRecord {
        tool: name.to_owned(),
        args,
        ok: res.is_ok(),
        error,
    };
    (record, res)
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| {
        ToolError::new(
            "TypeError",
            format!("missing or non-string argument '{name}'"),
        )
    })
}

fn builtin(
    host: &dyn ToolHost,
    tool: Tool,
    args: &Value,
    cancel: &CancelFlag,
) -> Result<Value, ToolError> {
    let root = host.workspace_root();
    match tool.backend() {
        Backend::ReadFile => {
            let raw = str_arg(args, "path")?;
            let path = workspace::resolve(root, raw)?;
            let text = match host.read_document(&path) {
                Some(text) => text,
                None => workspace::read_text(&path, raw)?,
            };
            Ok(Value::String(text))
        }
        Backend::WriteFile => {
            let raw = str_arg(args, "path")?;
            let content = str_arg(args, "content")?;
            let path = workspace::resolve(root, raw)?;
            host.write_file(&path, content)?;
            Ok(Value::String(WRITE_FILE_RESULT.to_owned()))
        }
        Backend::RunCommand => {
            let command = str_arg(args, "command")?;
            let argv_tail: Option<Vec<String>> = match args.get("args") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned))
                        .collect::<Option<Vec<String>>>()
                        .ok_or_else(|| {
                            ToolError::new("TypeError", "args must be a list of strings")
                        })?,
                ),
                Some(_) => {
                    return Err(ToolError::new(
                        "TypeError",
                        "args must be a list of strings",
                    ));
                }
            };
            let argv = workspace::split_command(command, argv_tail.as_deref())?;
            let cwd = match args.get("cwd").and_then(Value::as_str) {
                Some(raw) => workspace::resolve_dir(root, raw)?,
                None => workspace::resolve_dir(root, ".")?,
            };
            let out = workspace::run_command(&argv, &cwd, &host.command_limits(), cancel)?;
            Ok(Value::String(out.to_tool_text()))
        }
        Backend::Host => Err(ToolError::new(
            "NotImplementedError",
            format!("{} is not available in this workspace yet", tool.name()),
        )),
    }
}
