//! A Python file parsed losslessly: its text, ruff's syntax tree (RustPython's parser) with a
//! byte range on every node, and line/column conversion. The tree is only read; edits are
//! byte-range replacements on the text, so formatting and comments are kept exactly.
//!
//! A source that nests deeper than CPython accepts is refused before it is parsed
//! (`nesting.rs`): the parser, the visitors and the tree's `Drop` recurse, and only that bound
//! keeps them within the stack of the thread `typed::call` parses on.

use ruff_python_ast::ModModule;
use ruff_python_parser::Parsed;
use ruff_text_size::{TextRange, TextSize};

pub(super) struct SourceFile {
    pub(super) text: String,
    pub(super) parsed: Parsed<ModModule>,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Parses `text`; the error is the parser's message with its 1-based line and column, or
    /// why it nests too deeply to be parsed.
    pub(super) fn parse(text: String) -> Result<SourceFile, String> {
        super::nesting::check(&text)?;
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(idx, _)| idx + 1))
            .collect();
        match ruff_python_parser::parse_module(&text) {
            Ok(parsed) => Ok(SourceFile {
                text,
                parsed,
                line_starts,
            }),
            Err(err) => {
                let (line, column) = line_col(&text, &line_starts, err.location.start());
                Err(format!(
                    "{} at line {line}, column {}",
                    err.error,
                    column + 1
                ))
            }
        }
    }

    pub(super) fn body(&self) -> &[ruff_python_ast::Stmt] {
        &self.parsed.syntax().body
    }

    /// 1-based line and 0-based column (in characters) of `offset`, LibCST's convention.
    pub(super) fn line_col(&self, offset: TextSize) -> (usize, usize) {
        line_col(&self.text, &self.line_starts, offset)
    }

    /// The byte offset of 1-based `line` and 0-based character `column`, if inside the file.
    pub(super) fn offset(&self, line: usize, column: usize) -> Option<TextSize> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or("");
        let byte = line_text
            .char_indices()
            .nth(column)
            .map_or(line_text.len(), |(idx, _)| idx);
        TextSize::try_from(start + byte).ok()
    }

    /// The source text of `range`.
    pub(super) fn slice(&self, range: TextRange) -> &str {
        &self.text[range]
    }

    /// The text of 1-based `line`, without its line break.
    pub(super) fn line_text(&self, line: usize) -> &str {
        let Some(&start) = line
            .checked_sub(1)
            .and_then(|idx| self.line_starts.get(idx))
        else {
            return "";
        };
        self.text[start..]
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// The first non-blank line of `range`, stripped and cut to 120 characters (Punie's
    /// `code_snippet`).
    pub(super) fn snippet(&self, range: TextRange) -> String {
        let first = self
            .slice(range)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("");
        if first.chars().count() > 120 {
            first.chars().take(117).collect::<String>() + "..."
        } else {
            first.to_owned()
        }
    }
}

fn line_col(text: &str, line_starts: &[usize], offset: TextSize) -> (usize, usize) {
    let offset = usize::from(offset).min(text.len());
    let line = line_starts.partition_point(|&start| start <= offset);
    let start = line_starts[line.saturating_sub(1)];
    let column = text
        .get(start..offset)
        .map_or(0, |part| part.chars().count());
    (line, column)
}

/// Whether `text` is a Python identifier (what a rename may introduce).
pub(super) fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_alphabetic())
        && chars.all(|ch| ch == '_' || ch.is_alphanumeric())
        // Keywords are not names.
        && ruff_python_parser::parse_module(&format!("{text} = 1")).is_ok()
}
