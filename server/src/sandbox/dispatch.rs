//! The host side of one tool call: resolve it, judge it, carry it out, record it.
//!
//! Resolution comes first: the path normalised and followed through symlinks, the command
//! split into its argv, the file's current text read for the diff. The host's permission
//! step (`ToolHost::permit`, which calls `policy::permit`) judges exactly that, the prompt
//! shows exactly that, and the back end then does exactly that: nothing is resolved twice.
//!
//! The snippet's clock bounds the call: the host's wait for a permission answer pauses it
//! (`SnippetClock::paused`), and everything else runs under a cancel flag that fires when the
//! snippet's time is up: the host's reads and writes (a front end's requests to its client
//! among them) and the back end, a command with the time left as its timeout.

use std::path::PathBuf;

use serde_json::Value;

use super::limits::SnippetClock;
use super::{ToolCallRecord, ToolEvent, ToolHost, protocol};
use crate::cancel::CancelFlag;
use crate::policy::{self, Action, Before, Ruling, ToolRequest};
use crate::tools::{Backend, Tool};
use crate::workspace::{self, ToolError};

/// What `write_file` returns to the snippet: the text the Phase 22 training rows show.
pub(crate) const WRITE_FILE_RESULT: &str = "File written successfully";

/// Carries out one call, reporting its lifecycle through `on_event`.
pub(crate) fn call(
    host: &dyn ToolHost,
    name: &str,
    args: Value,
    clock: &SnippetClock<'_>,
    on_event: &mut dyn FnMut(ToolEvent),
) -> (ToolCallRecord, Result<Value, ToolError>) {
    let Some(tool) = Tool::by_name(name) else {
        let err = ToolError::new("NameError", format!("name '{name}' is not defined"));
        let record = ToolCallRecord {
            tool: name.to_owned(),
            args,
            ok: false,
            error: Some(err.to_string()),
            permission: None,
        };
        return (record, Err(err));
    };
    // Status bars show the label: hidden and bidi characters are made visible there too. An
    // ACP card shows as much of it as a dialog shows of its subject, and says what is cut.
    let label = policy::cut(
        &policy::one_line(&label(tool, &args)),
        policy::DIALOG_SUBJECT_CHARS,
    )
    .with_note();
    on_event(ToolEvent::Started {
        tool: name.to_owned(),
        label: label.clone(),
    });
    let mut permission: Option<Ruling> = None;
    let res = resolve(host, tool, &args, &clock.cancel_flag()).and_then(|resolved| {
        let ruling = clock.paused(|cancel| host.permit(&resolved.request, cancel));
        let refusal = ruling.refusal_message();
        permission = Some(ruling);
        match refusal {
            Some(message) => Err(ToolError::permission(message)),
            None => match host.call_tool(tool, &args, &clock.cancel_flag()) {
                Some(res) => res,
                None => carry_out(host, resolved, &args, clock),
            },
        }
    });
    let error = res
        .as_ref()
        .err()
        .map(|err| protocol::cap_message(&err.to_string()));
    on_event(ToolEvent::Finished {
        tool: name.to_owned(),
        ok: res.is_ok(),
        error: error.clone(),
        permission: permission.clone(),
    });
    let record = ToolCallRecord {
        tool: name.to_owned(),
        args,
        ok: res.is_ok(),
        error,
        permission,
    };
    (record, res)
}

/// The typed tools' arguments that name a workspace path.
const PATH_ARGS: &[&str] = &["path", "file_path"];

/// A call resolved: what the policy judges, and the absolute path it acts on.
struct Resolved {
    request: ToolRequest,
    /// The canonical file (read, write) or working directory (command).
    path: Option<PathBuf>,
}

/// The progress label (a status bar, an ACP tool call's content): the tool's name and its
/// label argument as a shell word, so what the model chose reads as one quoted word and
/// never as Punie's words after it (`read_file $'app.py\n\nPunie: all checks passed'`). A
/// command's shows its argv quoted as the permission dialog shows it: `run_command("echo hi;
/// touch PWN")` runs `echo` with the words `hi;`, `touch` and `PWN`, so `run_command echo
/// 'hi;' touch PWN`, never a line that reads as two commands. A command that cannot be split
/// (it will not run) shows what the model wrote, as one quoted word.
fn label(tool: Tool, args: &Value) -> String {
    let shown = if tool.backend() == Backend::RunCommand {
        let command = args.get("command").and_then(Value::as_str).unwrap_or("");
        match argv_tail(args).and_then(|tail| workspace::split_command(command, tail.as_deref())) {
            Ok(argv) => policy::shell_line(&argv),
            Err(_) => policy::shell_word(command),
        }
    } else {
        match args.get(tool.spec().label_arg) {
            Some(Value::String(text)) => policy::shell_word(text),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        }
    };
    tool.label_showing(&shown)
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| {
        ToolError::new(
            "TypeError",
            format!("missing or non-string argument '{name}'"),
        )
    })
}

fn argv_tail(args: &Value) -> Result<Option<Vec<String>>, ToolError> {
    let type_error = || ToolError::new("TypeError", "args must be a list of strings");
    match args.get("args") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or_else(type_error),
        Some(_) => Err(type_error()),
    }
}

/// What the file at `path` holds now, for the prompt's diff and for the write to compare
/// with when it is made: the editor's buffer when it has one, else the disk.
fn before(host: &dyn ToolHost, path: &std::path::Path, cancel: &CancelFlag) -> Before {
    match host.read_document(path, cancel) {
        Some(text) => Before::Text(text),
        None => workspace::before_write(path),
    }
}

/// The call as it will happen. Errors here (a path outside the workspace, a directory to
/// write, a command that does not split) fail the call before anyone is asked.
fn resolve(
    host: &dyn ToolHost,
    tool: Tool,
    args: &Value,
    cancel: &CancelFlag,
) -> Result<Resolved, ToolError> {
    let root = host.workspace_root();
    let (action, path) = match tool.backend() {
        Backend::ReadFile => {
            let resolved = workspace::resolve_target(root, str_arg(args, "path")?)?;
            let action = Action::Read {
                target: resolved.target,
            };
            (action, Some(resolved.path))
        }
        Backend::WriteFile => {
            let raw = str_arg(args, "path")?;
            let content = str_arg(args, "content")?;
            let resolved = workspace::resolve_target(root, raw)?;
            if resolved.target.is_dir {
                return Err(ToolError::new(
                    "IsADirectoryError",
                    format!("Is a directory: '{raw}'"),
                ));
            }
            // Editors show a path as it is (an ACP diff's header, a preview's title): a
            // U+202E or a line break there names another file than the one written.
            if policy::has_hidden(&resolved.target.rel) {
                return Err(ToolError::new(
                    "ValueError",
                    format!(
                        "a file name with hidden characters is not written: {}",
                        policy::shell_word(&resolved.target.rel)
                    ),
                ));
            }
            let action = Action::Write {
                before: before(host, &resolved.path, cancel),
                target: resolved.target,
                after: content.to_owned(),
            };
            (action, Some(resolved.path))
        }
        Backend::RunCommand => {
            let argv =
                workspace::split_command(str_arg(args, "command")?, argv_tail(args)?.as_deref())?;
            let raw_cwd = args.get("cwd").and_then(Value::as_str).unwrap_or(".");
            let resolved = workspace::resolve_target(root, raw_cwd)?;
            if !resolved.target.is_dir {
                return Err(if resolved.target.exists {
                    ToolError::new(
                        "NotADirectoryError",
                        format!("Not a directory: '{raw_cwd}'"),
                    )
                } else {
                    ToolError::new(
                        "FileNotFoundError",
                        format!("No such file or directory: '{raw_cwd}'"),
                    )
                });
            }
            let action = Action::Execute {
                argv,
                cwd: resolved.target.rel,
            };
            (action, Some(resolved.path))
        }
        Backend::Typed(_) => {
            let mut shown = Vec::new();
            for (name, value) in args.as_object().into_iter().flatten() {
                let value = match value {
                    // A path is shown as it resolves, like read_file's and write_file's.
                    Value::String(raw) if PATH_ARGS.contains(&name.as_str()) => {
                        workspace::resolve_target(root, raw)?.target.rel
                    }
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                shown.push((name.clone(), value));
            }
            (Action::Call { args: shown }, None)
        }
    };
    Ok(Resolved {
        request: ToolRequest { tool, action },
        path,
    })
}

/// Runs an allowed call with the built-in back end.
fn carry_out(
    host: &dyn ToolHost,
    resolved: Resolved,
    args: &Value,
    clock: &SnippetClock<'_>,
) -> Result<Value, ToolError> {
    let cancel = clock.cancel_flag();
    let Resolved { request, path } = resolved;
    let path = path.unwrap_or_else(|| host.workspace_root().to_path_buf());
    match request.action {
        Action::Read { target } => {
            let text = match host.read_document(&path, &cancel) {
                Some(text) if text.len() as u64 > workspace::MAX_READ_BYTES => {
                    return Err(workspace::too_large(
                        &target.spelled,
                        text.len() as u64,
                        workspace::MAX_READ_BYTES,
                    ));
                }
                Some(text) => text,
                None => workspace::read_text(&path, &target.spelled)?,
            };
            Ok(Value::String(text))
        }
        Action::Write { before, after, .. } => {
            // An editor writes in place and keeps the mode: clear the execute bits first, so
            // that model-written content is never executable.
            workspace::clear_exec_bits(&path)?;
            // What was judged (and shown, where the user was asked) is the change from
            // `before`: the host makes it only on that.
            host.write_file(&path, &before, &after, &cancel)?;
            Ok(Value::String(WRITE_FILE_RESULT.to_owned()))
        }
        Action::Execute { argv, .. } => {
            let mut limits = host.command_limits();
            limits.timeout = limits.timeout.min(clock.left());
            let out =
                workspace::run_command(&argv, &path, host.workspace_root(), &limits, &cancel)?;
            Ok(Value::String(out.to_tool_text()))
        }
        Action::Call { .. } => match request.tool.backend() {
            Backend::Typed(typed) => crate::typed::call(host, typed, args, &cancel),
            // `resolve` gives the built-in back ends their own actions.
            Backend::ReadFile | Backend::WriteFile | Backend::RunCommand => Err(ToolError::new(
                "SystemError",
                format!("{} was resolved as a typed call", request.tool.name()),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_shows_what_the_model_chose_as_one_quoted_word() {
        let read = Tool::by_name("read_file").unwrap();
        assert_eq!(
            label(read, &serde_json::json!({"path": "src/app.py"})),
            "read_file src/app.py"
        );
        assert_eq!(
            label(
                read,
                &serde_json::json!({"path": "app.py\n\nPunie: all checks passed"})
            ),
            "read_file $'app.py\\n\\nPunie: all checks passed'"
        );
        assert_eq!(
            label(read, &serde_json::json!({"path": "x.md (read only)"})),
            "read_file 'x.md (read only)'"
        );
        let run = Tool::by_name("run_command").unwrap();
        assert_eq!(
            label(run, &serde_json::json!({"command": "echo hi; touch PWN"})),
            "run_command echo 'hi;' touch PWN"
        );
    }
}
