//! How deeply a Python source nests, measured on its tokens before it is parsed, so that a
//! file CPython itself would refuse never reaches the parser.
//!
//! ruff's parser, the visitors over its tree and the tree's `Drop` all recurse: 5,000 nested
//! parentheses or a 200,000-term `1 + 1 + …` overflowed the native stack and aborted the whole
//! server (no `catch_unwind` catches that). CPython refuses such files too: its tokenizer stops
//! at 200 nested brackets and 100 levels of indentation, and building its AST stops at about
//! 3,000 nested expressions (3 × the recursion limit: Python 3.11 parses 2,000 nested `-`,
//! `+`, `.b`, `[0]` or `not` and refuses 3,000). [`check`] enforces the same limits on an
//! over-estimate of the depth, so what it lets through is bounded, and `typed::call` parses on
//! a thread whose stack is sized for that bound. The sandbox checks snippets with the same
//! function (`check_python_nesting`) before RustPython, which uses the same parser, sees them.
//!
//! The tokens come from ruff's own lexer (iterative, and exactly what the parser will see:
//! strings, comments and nested f-strings cannot hide a bracket from it). The expression depth
//! estimated is, along the open brackets, the operators, keywords, dots and opening brackets
//! since the last comma at each level: a chain of `n` operators, attribute dots, calls or
//! subscripts nests `n` deep, while the items of a list do not nest at all.

use ruff_python_ast::token::TokenKind;
use ruff_python_parser::Mode;
use ruff_python_parser::lexer;

/// Deepest bracket nesting accepted, f-strings' replacement fields included (CPython's
/// tokenizer refuses the 201st).
pub(super) const MAX_BRACKETS: usize = 200;
/// Most levels of indentation (CPython refuses the 100th).
pub(super) const MAX_INDENT_LEVELS: usize = 99;
/// Largest estimated expression depth (CPython stops building its AST at about 3,000).
pub(super) const MAX_EXPRESSION_DEPTH: usize = 3_000;

/// How the lexer's tokens nest: brackets, indentation, and the estimated expression depth.
struct Depth {
    /// Per open bracket (the first entry: the logical line's top level), the nesting counted
    /// since the last comma at that level.
    levels: Vec<usize>,
    /// The sum of `levels`.
    expression: usize,
    indents: usize,
}

impl Depth {
    fn nest(&mut self) {
        if let Some(level) = self.levels.last_mut() {
            *level += 1;
            self.expression += 1;
        }
    }

    /// A comma: what follows at this level does not nest inside what came before.
    fn reset(&mut self) {
        if let Some(level) = self.levels.last_mut() {
            self.expression -= *level;
            *level = 0;
        }
    }

    fn close(&mut self) {
        if self.levels.len() > 1 {
            self.expression -= self.levels.pop().unwrap_or(0);
        }
    }
}

/// Refuses `text` when its brackets, indentation or expressions nest deeper than CPython
/// accepts; the error is CPython's message.
pub fn check(text: &str) -> Result<(), String> {
    let mut lexer = lexer::lex(text, Mode::Module);
    let mut depth = Depth {
        levels: vec![0],
        expression: 0,
        indents: 0,
    };
    loop {
        match lexer.next_token() {
            TokenKind::EndOfFile => return Ok(()),
            // Brackets, and the braces of f-strings' replacement fields.
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => {
                depth.nest();
                depth.levels.push(0);
                if depth.levels.len() - 1 > MAX_BRACKETS {
                    return Err(format!(
                        "too many nested parentheses (more than {MAX_BRACKETS})"
                    ));
                }
            }
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => depth.close(),
            TokenKind::Comma | TokenKind::Semi => depth.reset(),
            TokenKind::Newline => {
                depth.levels.truncate(1);
                depth.reset();
            }
            TokenKind::Indent => {
                depth.indents += 1;
                if depth.indents > MAX_INDENT_LEVELS {
                    return Err(format!(
                        "too many levels of indentation (more than {MAX_INDENT_LEVELS})"
                    ));
                }
            }
            TokenKind::Dedent => depth.indents = depth.indents.saturating_sub(1),
            // Operands, and what separates statements or targets, do not nest.
            TokenKind::Name
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Complex
            | TokenKind::String
            | TokenKind::FStringStart
            | TokenKind::FStringMiddle
            | TokenKind::FStringEnd
            | TokenKind::TStringStart
            | TokenKind::TStringMiddle
            | TokenKind::TStringEnd
            | TokenKind::Comment
            | TokenKind::NonLogicalNewline
            | TokenKind::Colon
            | TokenKind::Equal
            | TokenKind::Unknown => {}
            // Operators, dots and keywords: a chain of them nests as deep as it is long.
            _ => depth.nest(),
        }
        if depth.expression > MAX_EXPRESSION_DEPTH {
            return Err(format!(
                "expression too deeply nested (more than {MAX_EXPRESSION_DEPTH} levels)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        let err = check(text).expect_err("refused");
        err.split(" (").next().unwrap_or_default().to_owned()
    }

    #[test]
    fn ordinary_python_passes() {
        let source = "\
import os
# ((((( a comment
class A(Base):
    '''((((( a docstring'''
    def f(self, x: int = 1.5e-3) -> dict[str, list[int]]:
        data = [1, 2, 3, (4, 5), {'a': [6]}]
        return f\"{x!r:>{width}} {{literal}} {data[0]}\" + r'\\' + 'a.b.c'
";
        assert_eq!(check(source), Ok(()));
        // A long flat list and many statements are not deep.
        let flat = format!("x = [{}]\n", "1.5, ".repeat(100_000));
        assert_eq!(check(&flat), Ok(()));
        assert_eq!(check(&"x = a.b + 1\n".repeat(100_000)), Ok(()));
    }

    #[test]
    fn cpython_limits_for_brackets_and_indentation() {
        let parens = |n: usize| format!("x = {}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(check(&parens(MAX_BRACKETS)), Ok(()));
        assert_eq!(
            refusal(&parens(MAX_BRACKETS + 1)),
            "too many nested parentheses"
        );
        let blocks = |n: usize| {
            (0..n)
                .map(|level| format!("{}if x:\n", " ".repeat(level)))
                .collect::<String>()
                + &" ".repeat(n)
                + "pass\n"
        };
        assert_eq!(check(&blocks(MAX_INDENT_LEVELS)), Ok(()));
        assert_eq!(
            refusal(&blocks(MAX_INDENT_LEVELS + 1)),
            "too many levels of indentation"
        );
        // Dedenting and indenting again does not add up.
        assert_eq!(check(&"if x:\n    pass\n".repeat(1000)), Ok(()));
    }

    #[test]
    fn long_chains_are_deep() {
        for chain in [
            format!("x = {}1", "-".repeat(5000)),
            format!("x = 1{}", " + 1".repeat(5000)),
            format!("x = a{}", ".b".repeat(5000)),
            format!("x = a{}", "[0]".repeat(5000)),
            format!("x = f{}", "()".repeat(5000)),
            format!("x = {}1", "not ".repeat(5000)),
            format!("x = {}1", "lambda: ".repeat(5000)),
            format!("x = (1{})", " \n+ 1".repeat(5000)),
            format!("x = 1{}", " \\\n+ 1".repeat(5000)),
        ] {
            assert_eq!(
                refusal(&chain),
                "expression too deeply nested",
                "{}",
                &chain[..20]
            );
        }
        assert_eq!(check(&format!("x = {}1", "-".repeat(2000))), Ok(()));
    }

    #[test]
    fn strings_hide_no_nesting_and_fake_none() {
        // Nested f-strings nest like brackets, whichever quotes they use.
        let nested = |n: usize| format!("x = {}1{}", "f\"{".repeat(n), "}\"".repeat(n));
        assert_eq!(check(&nested(100)), Ok(()));
        assert_eq!(
            refusal(&nested(MAX_BRACKETS + 1)),
            "too many nested parentheses"
        );
        // Closing brackets inside strings and comments do not lower the count.
        let hidden = format!("x = {}1", "(')' # )\n".repeat(300));
        assert_eq!(refusal(&hidden), "too many nested parentheses");
        let in_string = format!("x = '{}'", "(".repeat(10_000));
        assert_eq!(check(&in_string), Ok(()));
    }
}
