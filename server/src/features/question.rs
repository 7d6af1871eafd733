//! What a run is about ([`Ask`]: an instruction on a selection of a document snapshot, or a
//! bare question) and the user turn built from it ([`Ask::question`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::instruction::Instruction;
use super::text;
use crate::prompt::{Message, Role};

/// Lines of context above and below the selection that go into the question.
const CONTEXT_LINES: usize = 20;

/// A document as it was when the run was asked for: later typing does not change what the
/// run is about.
#[derive(Debug, Clone)]
pub struct DocumentSnapshot {
    /// The front end's name for the document: the LSP URI, or the path for ACP and the CLI.
    pub id: String,
    /// The file behind it; `None` for an untitled buffer.
    pub path: Option<PathBuf>,
    /// Shared, not copied, between the store and every run that snapshots it.
    pub text: Arc<String>,
    /// The editor's version, when the editor has it open.
    pub version: Option<i32>,
    /// `python`, `rust`, …; empty when unknown.
    pub language_id: String,
}

/// A selection of a document: byte offsets into its snapshot (`start <= end`, on char
/// boundaries; the front end checks this when it converts its own positions).
#[derive(Debug, Clone)]
pub struct Selection {
    pub document: DocumentSnapshot,
    pub start: usize,
    pub end: usize,
}

impl Selection {
    pub fn text(&self) -> &str {
        &self.document.text[self.start..self.end]
    }

    /// 1-based first and last line, as an editor shows them.
    pub fn lines(&self) -> (usize, usize) {
        let text = &self.document.text;
        (
            text::line_of(text, self.start) + 1,
            text::line_of(text, self.end) + 1,
        )
    }
}

/// One request to Punie.
#[derive(Debug, Clone)]
pub struct Ask {
    pub instruction: Instruction,
    /// The user's words; for [`Instruction::Ask`] without them, the selection is the question.
    pub question: Option<String>,
    /// The code it is about; `None` for a question about the workspace (`punie ask QUESTION`).
    pub selection: Option<Selection>,
    /// The workspace folder the run's tools are confined to.
    pub root: PathBuf,
}

impl Ask {
    /// The user turn: the request, the file, the selection and the lines around it.
    pub fn question(&self) -> String {
        self.question_after(&[])
    }

    /// [`Ask::question`] for a conversation that already holds `earlier`: a code block that an
    /// earlier user turn showed verbatim is not shown again, only named. A follow-up about the
    /// same selection then costs the engine only its new words (the block is in its KV cache as
    /// part of the earlier turn), not the selection and its surroundings once more; when the
    /// file, lines and code are all as an earlier turn showed them, one short line names them.
    /// Should the agent later drop that earlier turn to fit the context, that line (or the
    /// `File:` line) still says where the code is, and the model can read it with its tools.
    pub fn question_after(&self, earlier: &[Message]) -> String {
        self.question_with(self.question.as_deref(), earlier)
    }

    /// How a follow-up question on the same selection would start, once `earlier` holds this
    /// run's turns: the line naming the code, before the words the user has yet to type. Empty
    /// when such a follow-up would show the code again (then its question comes first).
    pub fn follow_up_opening(&self, earlier: &[Message]) -> String {
        // A private-use character, which the user's words cannot hold.
        const MARK: &str = "\u{E000}";
        let follow_up = Ask {
            instruction: Instruction::Ask,
            ..self.clone()
        };
        let question = follow_up.question_with(Some(MARK), earlier);
        question
            .find(MARK)
            .map(|at| question[..at].to_owned())
            .unwrap_or_default()
    }

    fn question_with(&self, question: Option<&str>, earlier: &[Message]) -> String {
        let shown_before = |block: &str| {
            earlier.iter().any(|message| {
                message.role == Role::User && message.content.contains(block.trim_end())
            })
        };
        let Some(selection) = &self.selection else {
            return question.unwrap_or("").trim().to_owned();
        };
        let document = &selection.document;
        // The model sees `\n` line breaks whatever the file uses; edits made from its answer
        // get the file's own line breaks back (`edits`).
        let selected = selection.text().replace("\r\n", "\n");
        let selected = selected.as_str();
        let shown_path = match &document.path {
            Some(path) => shown_path(&self.root, path),
            None => document.id.clone(),
        };
        let fence_lang = document.language_id.as_str();
        let (first_line, last_line) = selection.lines();
        let request = match self.instruction {
            Instruction::Explain => "Explain what this code does.".to_owned(),
            Instruction::Fix => "Find and fix the bugs in this code. Reply with a short explanation and the corrected \
                                 code in one fenced code block that replaces the selection exactly."
                .to_owned(),
            Instruction::Tests => format!(
                "Write tests for this code, following the conventions of {}. Put the complete test code in one fenced \
                 code block.",
                if fence_lang == "python" { "pytest" } else { "the language" }
            ),
            Instruction::Refactor => "Refactor this code to be clearer without changing its behaviour. Reply with a \
                                      short explanation and the new code in one fenced code block that replaces the \
                                      selection exactly."
                .to_owned(),
            Instruction::Ask => match question {
                Some(question) if !question.trim().is_empty() => question.trim().to_owned(),
                _ => selected.trim().to_owned(),
            },
        };
        let file_line =
            format!("File: {shown_path} (lines {first_line}-{last_line}, {fence_lang})");
        let block = |label: &str, code: &str| {
            format!(
                "{label}:\n```{fence_lang}\n{}\n```\n",
                code.trim_end_matches('\n')
            )
        };
        let mut blocks = Vec::new();
        if !selected.trim().is_empty() {
            blocks.push(("Selection", block("Selection", selected)));
        }
        let context =
            surrounding_lines(&document.text, selection.start, selection.end).replace("\r\n", "\n");
        if !context.trim().is_empty() && context.trim() != selected.trim() {
            blocks.push(("Surrounding code", block("Surrounding code", &context)));
        }
        // The same file, lines and code as an earlier turn: one short line names them, so the
        // follow-up's prompt is little more than its question (each token of it costs the
        // follow-up's first token about 4 ms on two cores; `path:first-last` is the shortest
        // way editors and compilers name lines). The line comes first, so that the engine can
        // evaluate it before the question is known ([`Ask::follow_up_opening`]).
        if !blocks.is_empty()
            && shown_before(&file_line)
            && blocks.iter().all(|(_, block)| shown_before(block))
        {
            return format!("(Same code: {shown_path}:{first_line}-{last_line}.)\n{request}");
        }
        let mut res = format!("{request}\n\n{file_line}\n");
        for (label, block) in blocks {
            if shown_before(&block) {
                res.push_str(&format!("{label}: as shown above.\n"));
            } else {
                res.push_str(&block);
            }
        }
        res.trim_end().to_owned()
    }
}

/// `path` relative to `root` where it lies inside it, for the user and the model.
pub fn shown_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The language id editors use for a file name's extension (for documents the editor did not
/// name, and for the CLI).
pub fn language_from_path(path: Option<&Path>) -> String {
    let ext = path
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .unwrap_or("");
    match ext {
        "py" => "python",
        "rs" => "rust",
        "js" | "mjs" => "javascript",
        "ts" => "typescript",
        "go" => "go",
        "md" => "markdown",
        other => other,
    }
    .to_owned()
}

/// Up to `CONTEXT_LINES` whole lines before and after `start..end`, the selection included.
fn surrounding_lines(text: &str, start: usize, end: usize) -> String {
    let before_start = text[..start]
        .rmatch_indices('\n')
        .nth(CONTEXT_LINES)
        .map(|(idx, _)| idx + 1)
        .unwrap_or(0);
    let after_end = text[end..]
        .match_indices('\n')
        .nth(CONTEXT_LINES)
        .map(|(idx, _)| end + idx)
        .unwrap_or(text.len());
    text[before_start..after_end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(text: &str, selected: &str) -> Selection {
        let start = text.find(selected).unwrap();
        Selection {
            document: DocumentSnapshot {
                id: "file:///w/src/app.py".to_owned(),
                path: Some(PathBuf::from("/w/src/app.py")),
                text: Arc::new(text.to_owned()),
                version: Some(1),
                language_id: "python".to_owned(),
            },
            start,
            end: start + selected.len(),
        }
    }

    #[track_caller]
    fn check(
        instruction: Instruction,
        question: Option<&str>,
        text: &str,
        selected: &str,
        expect: &str,
    ) {
        let ask = Ask {
            instruction,
            question: question.map(str::to_owned),
            selection: Some(selection(text, selected)),
            root: PathBuf::from("/w"),
        };
        assert_eq!(ask.question(), expect);
    }

    #[test]
    fn questions_name_the_file_the_lines_and_the_selection() {
        check(
            Instruction::Fix,
            None,
            "import os\n\ndef add(a, b):\n    return a - b\n",
            "def add(a, b):\n    return a - b\n",
            "Find and fix the bugs in this code. Reply with a short explanation and the corrected code in one \
             fenced code block that replaces the selection exactly.\n\nFile: src/app.py (lines 3-5, python)\n\
             Selection:\n```python\ndef add(a, b):\n    return a - b\n```\nSurrounding code:\n```python\n\
             import os\n\ndef add(a, b):\n    return a - b\n```",
        );
        check(
            Instruction::Ask,
            None,
            "# what does this do?\nx = 1\n",
            "# what does this do?",
            "# what does this do?\n\nFile: src/app.py (lines 1-1, python)\nSelection:\n```python\n\
             # what does this do?\n```\nSurrounding code:\n```python\n# what does this do?\nx = 1\n```",
        );
    }

    #[test]
    fn a_follow_up_names_a_selection_the_conversation_already_shows() {
        let text = "import os\n\ndef add(a, b):\n    return a - b\n";
        let ask = |question: &str| Ask {
            instruction: Instruction::Ask,
            question: Some(question.to_owned()),
            selection: Some(selection(text, "def add(a, b):\n    return a - b\n")),
            root: PathBuf::from("/w"),
        };
        let first = ask("What does add do?").question();
        let earlier = [
            Message::new(Role::User, first.clone()),
            Message::new(Role::Assistant, "It subtracts."),
        ];
        assert_eq!(
            ask("Why?").question_after(&earlier),
            "(Same code: src/app.py:3-5.)\nWhy?"
        );
        // What the engine can evaluate before the follow-up is typed: the line, whatever the
        // first run's instruction; nothing before the code has been shown.
        let fix = Ask {
            instruction: Instruction::Fix,
            ..ask("")
        };
        assert_eq!(
            fix.follow_up_opening(&[Message::new(Role::User, fix.question())]),
            "(Same code: src/app.py:3-5.)\n"
        );
        assert_eq!(ask("What does add do?").follow_up_opening(&[]), "");
        // The file changed around the selection: the new surroundings are shown, the
        // selection only named.
        let edited = Ask {
            selection: Some(selection(
                "import sys\n\ndef add(a, b):\n    return a - b\n",
                "def add(a, b):\n    return a - b\n",
            )),
            ..ask("Why?")
        };
        assert_eq!(
            edited.question_after(&earlier),
            "Why?\n\nFile: src/app.py (lines 3-5, python)\nSelection: as shown above.\n\
             Surrounding code:\n```python\nimport sys\n\ndef add(a, b):\n    return a - b\n```"
        );
        // Only a user turn counts, and only the very same text.
        let quoted = [Message::new(Role::Assistant, first)];
        assert_eq!(ask("Why?").question_after(&quoted), ask("Why?").question());
    }

    #[test]
    fn a_bare_question_is_the_question() {
        let ask = Ask {
            instruction: Instruction::Ask,
            question: Some("  What does this project do? ".to_owned()),
            selection: None,
            root: PathBuf::from("/w"),
        };
        assert_eq!(ask.question(), "What does this project do?");
    }
}
