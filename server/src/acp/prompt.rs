//! A `session/prompt`'s content blocks as a features [`Ask`]: text is the question, a leading
//! `/explain`, `/fix`, `/tests` or `/refactor` is the instruction, and the first attached code
//! (`resource_link` to a file, or an embedded `resource`, with an optional `#L10-20` line range)
//! is the selection, so Fix and Refactor can edit it. Further attachments go into the question as
//! context.
//!
//! A link's file is read as `read_file` reads one ([`read_attached`]): inside the session's
//! `cwd` once links are followed, not a secret, a regular file, bounded, opened without
//! blocking. This runs on the main loop, and a link is only a name: `file:///dev/zero`, a FIFO,
//! or a cloned repository's `notes.txt -> ~/.aws/credentials` is refused with an error the
//! user sees, never read. An embedded `resource`'s text is the client's own choice and is used
//! as sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::features::{Ask, DocumentSnapshot, Instruction, Selection, language_from_path, text};
use crate::workspace::{self, ToolError};

use super::wire::literal_in_error;

/// Attached text beyond this goes to the model as a note to read the file instead.
const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// What to do with a prompt.
#[derive(Debug)]
pub(crate) enum PromptPlan {
    Run(Ask),
    /// Answer with this text without running the model (a slash command with nothing to act on).
    Reply(String),
}

/// One attachment: where it is and what it says.
struct Attachment {
    uri: String,
    path: Option<PathBuf>,
    /// 1-based first and last line the URI names (`#L10-20`).
    lines: Option<(usize, usize)>,
    /// Embedded text; `None` for a link, whose file is read.
    text: Option<String>,
}

/// Reads the prompt's blocks; an error names what is wrong (JSON-RPC invalid params).
pub(crate) fn plan(root: &Path, blocks: &Value) -> Result<PromptPlan, String> {
    let blocks = blocks
        .as_array()
        .ok_or("prompt: expected an array of content blocks")?;
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => texts.push(
                block["text"]
                    .as_str()
                    .ok_or("prompt: a text block without text")?
                    .to_owned(),
            ),
            Some("resource_link") => {
                let uri = block["uri"]
                    .as_str()
                    .ok_or("prompt: a resource_link without uri")?;
                attachments.push(attachment(uri, None));
            }
            Some("resource") => {
                let resource = &block["resource"];
                let uri = resource["uri"]
                    .as_str()
                    .ok_or("prompt: a resource without uri")?;
                match resource["text"].as_str() {
                    Some(text) => attachments.push(attachment(uri, Some(text.to_owned()))),
                    None => tracing::info!("skipping a binary resource {uri}"),
                }
            }
            other => tracing::info!("skipping a prompt block of type {other:?}"),
        }
    }
    let text = texts.join("\n");
    let (instruction, question) = slash_command(&text);
    let mut attachments = attachments.into_iter();
    let selection = attachments
        .next()
        .map(|first| selection(root, first))
        .transpose()?;
    let mut question = question.trim().to_owned();
    for extra in attachments {
        question.push_str(&context_block(root, &extra)?);
    }
    if selection.is_none() && instruction != Instruction::Ask {
        return Ok(PromptPlan::Reply(format!(
            "`/{}` works on code: attach a file or a selection (with @) and ask again.",
            instruction.name()
        )));
    }
    if selection.is_none() && question.is_empty() {
        return Err("prompt: no question and nothing attached".to_owned());
    }
    Ok(PromptPlan::Run(Ask {
        instruction,
        question: (!question.is_empty()).then_some(question),
        selection,
        root: root.to_owned(),
    }))
}

/// `/fix the off-by-one` → (Fix, "the off-by-one").
fn slash_command(text: &str) -> (Instruction, &str) {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('/') {
        let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if let Some(instruction) =
            Instruction::parse(&rest[..name_end]).filter(|i| *i != Instruction::Ask)
        {
            return (instruction, &rest[name_end..]);
        }
    }
    (Instruction::Ask, text)
}

fn attachment(uri: &str, text: Option<String>) -> Attachment {
    let (base, fragment) = match uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (uri, None),
    };
    Attachment {
        uri: uri.to_owned(),
        path: crate::uri::to_path(base).filter(|path| path.is_absolute()),
        lines: fragment.and_then(line_range),
        text,
    }
}

/// `L10`, `L10-20`, `L10:20`, `L10-L20` → 1-based (first, last).
fn line_range(fragment: &str) -> Option<(usize, usize)> {
    let rest = fragment.strip_prefix('L')?;
    let (first, last) = match rest.split_once(['-', ':']) {
        Some((first, last)) => (first, last.trim_start_matches('L')),
        None => (rest, rest),
    };
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first >= 1 && last >= first).then_some((first, last))
}

/// The attachment as the run's selection: the real file where it is one Punie may read (and an
/// embedded excerpt matches it), so edits can land there; else the embedded text alone.
fn selection(root: &Path, attachment: Attachment) -> Result<Selection, String> {
    let file = match &attachment.path {
        Some(path) => match read_attached(root, path, workspace::MAX_READ_BYTES) {
            Ok(file) => Some(file),
            // The client's own text stands in for a file Punie may not or cannot read.
            Err(_) if attachment.text.is_some() => None,
            Err(err) => return Err(cannot_attach(&attachment.uri, &err)),
        },
        None => None,
    };
    if let Some((path, file_text)) = file {
        let (start, end) = match attachment.lines {
            Some((first, last)) => byte_range(&file_text, first, last).ok_or_else(|| {
                format!(
                    "prompt: {} names lines past the end",
                    literal_in_error(&attachment.uri)
                )
            })?,
            None => (0, file_text.len()),
        };
        let matches_file = attachment.text.as_deref().is_none_or(|embedded| {
            file_text[start..end].trim_end_matches(['\n', '\r'])
                == embedded.trim_end_matches(['\n', '\r'])
        });
        if matches_file {
            return Ok(Selection {
                document: DocumentSnapshot {
                    id: path.display().to_string(),
                    language_id: language_from_path(Some(&path)),
                    path: Some(path),
                    text: Arc::new(file_text),
                    version: None,
                },
                start,
                end,
            });
        }
    }
    let text = attachment
        .text
        .ok_or_else(|| format!("prompt: cannot read {}", literal_in_error(&attachment.uri)))?;
    let end = text.len();
    Ok(Selection {
        document: DocumentSnapshot {
            id: attachment.uri.clone(),
            language_id: language_from_path(attachment.path.as_deref()),
            path: None,
            text: Arc::new(text),
            version: None,
        },
        start: 0,
        end,
    })
}

/// The canonical path and text of an attached file, reached as `read_file` reaches one:
/// `workspace::resolve` (inside `root` once links are followed, not a secret), then
/// `text::read_file` (a regular file, opened without blocking, at most `max` bytes read).
fn read_attached(root: &Path, path: &Path, max: u64) -> Result<(PathBuf, String), ToolError> {
    let shown = path.to_string_lossy();
    let resolved = workspace::resolve(root, &shown)?;
    let text = text::read_file(&resolved, &shown, max)?;
    Ok((resolved, text))
}

/// The error of a prompt whose attachment Punie will not read. The URI and the refusal, which
/// quotes the file's name, are a repository's words: literal.
fn cannot_attach(uri: &str, err: &ToolError) -> String {
    format!(
        "prompt: cannot attach {}: {}",
        literal_in_error(uri),
        literal_in_error(&err.message)
    )
}

/// Byte offsets of 1-based lines `first..=last`, the last line's break included.
fn byte_range(text: &str, first: usize, last: usize) -> Option<(usize, usize)> {
    let starts = text::line_starts(text);
    let start = *starts.get(first - 1)?;
    if last > starts.len() {
        return None;
    }
    Some((start, starts.get(last).copied().unwrap_or(text.len())))
}

/// A further attachment as context in the question; `Err` when Punie will not read its file.
fn context_block(root: &Path, attachment: &Attachment) -> Result<String, String> {
    let shown = match &attachment.path {
        Some(path) => crate::features::shown_path(root, path),
        None => attachment.uri.clone(),
    };
    let text = match (&attachment.text, &attachment.path) {
        (Some(text), _) => Ok(text.clone()),
        // Read whole (bounded) so a long file is named for the model with its size.
        (None, Some(path)) => {
            read_attached(root, path, workspace::MAX_READ_BYTES).map(|(_, text)| text)
        }
        (None, None) => Err(ToolError::new("ValueError", "not a file")),
    };
    Ok(match text {
        Ok(text) if text.len() <= MAX_CONTEXT_BYTES => {
            let language = language_from_path(attachment.path.as_deref());
            format!(
                "\n\nAttached: {shown}\n```{language}\n{}\n```",
                text.trim_end_matches('\n')
            )
        }
        Ok(text) => format!(
            "\n\nAttached: {shown} ({} bytes, too long to include: read it with read_file)",
            text.len()
        ),
        // Outside the workspace, a secret, not a regular file: refused, not described.
        Err(err) if err.type_name == "PermissionError" => {
            return Err(cannot_attach(&attachment.uri, &err));
        }
        Err(err) => format!("\n\nAttached: {shown} (not included: {})", err.message),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn slash_commands_pick_the_instruction() {
        assert_eq!(slash_command("/fix the bug").0, Instruction::Fix);
        assert_eq!(slash_command("/fix the bug").1, " the bug");
        assert_eq!(slash_command("  /tests").0, Instruction::Tests);
        assert_eq!(slash_command("/ask x").0, Instruction::Ask);
        assert_eq!(slash_command("/fixit").0, Instruction::Ask);
        assert_eq!(slash_command("what is /fix?").0, Instruction::Ask);
    }

    /// A file name is a repository's choice, and an error's message may be rendered as
    /// Markdown (Zed renders its messages so): the names in it are shown as they are, on one
    /// line, and make no link, image, heading or code span of their own.
    #[test]
    fn names_in_errors_are_literal() {
        use crate::policy::markdown_view::as_markdown_shows;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let name = "t`ick](http://x)![img](y)\n# heading.py";
        let outside = tempfile::tempdir().unwrap();
        // A file name holds no `/`: `http:__x` inside, a path of several names outside.
        let inside = root.join(name.replace('/', "_"));
        std::fs::write(&inside, "one line\n").unwrap();
        let question = json!({"type": "text", "text": "What is it?"});
        let uri_of = |path: &Path| format!("file://{}", path.display()).replace('#', "%23");
        let inside_uri = uri_of(&inside);
        let outside_path = outside.path().join(name);
        let outside_uri = uri_of(&outside_path);
        let one_line = |text: &str| text.replace('\n', "<U+000A>");
        for (uri, expected) in [
            // Past its end: the URI alone.
            (
                format!("{inside_uri}#L5"),
                format!(
                    "prompt: {}#L5 names lines past the end",
                    one_line(&inside_uri)
                ),
            ),
            // Refused: the URI, and the refusal, which quotes the path.
            (
                outside_uri.clone(),
                format!(
                    "prompt: cannot attach {}: path is outside the workspace: '{}'",
                    one_line(&outside_uri),
                    one_line(&outside_path.display().to_string()),
                ),
            ),
        ] {
            let link = json!({"type": "resource_link", "uri": uri});
            let err = plan(&root, &json!([question, link])).unwrap_err();
            let (shown, other) = as_markdown_shows(&err);
            assert_eq!(other, Vec::<String>::new(), "{err}");
            assert_eq!(shown, expected, "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn uris_name_files_and_lines() {
        let path = |uri: &str| attachment(uri, None).path;
        assert_eq!(
            path("file:///w/a%20b.py#L2"),
            Some(PathBuf::from("/w/a b.py"))
        );
        assert_eq!(path("zed:///x"), None);
        assert_eq!(line_range("L10"), Some((10, 10)));
        assert_eq!(line_range("L10-20"), Some((10, 20)));
        assert_eq!(line_range("L10:20"), Some((10, 20)));
        assert_eq!(line_range("L10-L20"), Some((10, 20)));
        assert_eq!(line_range("L0"), None);
        assert_eq!(line_range("L5-2"), None);
    }

    #[test]
    fn a_fix_on_an_embedded_selection_of_a_workspace_file_edits_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(
            root.join("calc.py"),
            "import os\ndef add(a, b):\n    return a - b\n",
        )
        .unwrap();
        let uri = format!("file://{}#L2-3", root.join("calc.py").display());
        let blocks = json!([
            {"type": "text", "text": "/fix please"},
            {"type": "resource", "resource": {"uri": uri, "text": "def add(a, b):\n    return a - b"}},
        ]);
        let PromptPlan::Run(ask) = plan(&root, &blocks).unwrap() else {
            panic!("expected a run")
        };
        assert_eq!(ask.instruction, Instruction::Fix);
        assert_eq!(ask.question.as_deref(), Some("please"));
        let selection = ask.selection.unwrap();
        assert_eq!(selection.document.path, Some(root.join("calc.py")));
        assert_eq!(selection.text(), "def add(a, b):\n    return a - b\n");

        // A link out of the workspace is refused; the same file embedded by the client is
        // its own text, used as sent, and never read.
        let outside = tempfile::tempdir().unwrap();
        let elsewhere = outside.path().join("calc.py");
        std::fs::write(&elsewhere, "ON DISK\n").unwrap();
        let uri = format!("file://{}", elsewhere.display());
        let linked =
            json!([{"type": "text", "text": "/fix"}, {"type": "resource_link", "uri": uri}]);
        let err = plan(&root, &linked).unwrap_err();
        assert!(err.contains("outside the workspace"), "{err}");
        let embedded = json!([
            {"type": "text", "text": "/fix"},
            {"type": "resource", "resource": {"uri": uri, "text": "EMBEDDED\n"}},
        ]);
        let PromptPlan::Run(ask) = plan(&root, &embedded).unwrap() else {
            panic!("expected a run")
        };
        let selection = ask.selection.unwrap();
        assert_eq!(selection.document.path, None);
        assert_eq!(selection.text(), "EMBEDDED\n");

        let bare = json!([{"type": "text", "text": "/refactor"}]);
        assert!(matches!(plan(&root, &bare).unwrap(), PromptPlan::Reply(_)));
        assert!(plan(&root, &json!([])).is_err());
        assert!(plan(&root, &json!("x")).is_err());
    }
}
