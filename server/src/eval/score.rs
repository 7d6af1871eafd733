//! Scoring one query (pure): did the model call a tool or answer directly as expected, did its
//! code contain what Punie's scorer looked for, did every snippet run without error, and does
//! what the user sees state the expected facts.
//!
//! "What the user sees" is the final answer plus the output of the snippets that ran: in Code
//! Mode the snippet computes the figure and prints it, and the model's closing turn often only
//! points at it ("the total is listed above"), exactly as the answer panel shows both.

use crate::agent::RunOutcome;

use super::suite::{Expected, Query};

/// Something a correct answer states; found if any variant appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: String,
    pub any_of: Vec<String>,
    pub kind: FactKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// A case-insensitive substring.
    Text,
    /// A whole number: `12` matches in "12 files" but not in "123" or "v1.12".
    Number,
}

impl Fact {
    pub fn text<S: Into<String>>(label: &str, any_of: impl IntoIterator<Item = S>) -> Fact {
        Fact::new(label, any_of.into_iter().map(Into::into), FactKind::Text)
    }

    pub fn number(label: &str, any_of: impl IntoIterator<Item = usize>) -> Fact {
        Fact::new(
            label,
            any_of.into_iter().map(|n| n.to_string()),
            FactKind::Number,
        )
    }

    fn new(label: &str, any_of: impl Iterator<Item = String>, kind: FactKind) -> Fact {
        let mut variants: Vec<String> = Vec::new();
        for variant in any_of {
            if !variant.is_empty() && !variants.contains(&variant) {
                variants.push(variant);
            }
        }
        Fact {
            label: label.to_owned(),
            any_of: variants,
            kind,
        }
    }

    /// Whether `text` states this fact.
    pub fn found_in(&self, text: &str) -> bool {
        self.any_of.iter().any(|variant| match self.kind {
            FactKind::Text => text.to_lowercase().contains(&variant.to_lowercase()),
            FactKind::Number => contains_number(text, variant),
        })
    }
}

fn contains_number(text: &str, number: &str) -> bool {
    let bytes = text.as_bytes();
    let is_digit_at = |idx: Option<usize>| {
        idx.and_then(|i| bytes.get(i))
            .is_some_and(u8::is_ascii_digit)
    };
    text.match_indices(number).any(|(start, _)| {
        let end = start + number.len();
        let before_is_part = is_digit_at(start.checked_sub(1))
            || (start >= 2 && bytes[start - 1] == b'.' && bytes[start - 2].is_ascii_digit());
        let after_is_part =
            is_digit_at(Some(end)) || (bytes.get(end) == Some(&b'.') && is_digit_at(Some(end + 1)));
        !before_is_part && !after_is_part
    })
}

/// What the scorer needs of a run, taken from a [`RunOutcome`] (or built by hand in tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFacts {
    /// `done`, `cancelled` or `failed: …`.
    pub status: String,
    pub answer: String,
    /// The code of each call that ran, in order.
    pub codes: Vec<String>,
    /// What the model called: `execute_code`, or a direct tool name.
    pub calls: Vec<String>,
    /// Tools called from inside the snippets, in order of first use.
    pub used_tools: Vec<String>,
    /// Printed output of each snippet.
    pub outputs: Vec<String>,
    /// `Type: message` of each snippet that raised.
    pub errors: Vec<String>,
    /// Calls the agent could not run (unparsable, or against the strategy).
    pub rejected_calls: usize,
    pub turns: usize,
    pub tokens_in: usize,
    pub tokens_out: usize,
    pub wall_ms: f64,
}

impl RunFacts {
    pub fn from_outcome(outcome: &RunOutcome, rejected_calls: usize) -> RunFacts {
        let mut used_tools: Vec<String> = Vec::new();
        for call in &outcome.tool_calls {
            let direct = (call.tool != "execute_code").then(|| call.tool.clone());
            for tool in call.tools.iter().map(|t| t.tool.clone()).chain(direct) {
                if !used_tools.contains(&tool) {
                    used_tools.push(tool);
                }
            }
        }
        RunFacts {
            status: outcome.status.to_string(),
            answer: outcome.answer.clone(),
            codes: outcome.tool_calls.iter().map(|c| c.code.clone()).collect(),
            calls: outcome.tool_calls.iter().map(|c| c.tool.clone()).collect(),
            used_tools,
            outputs: outcome
                .tool_calls
                .iter()
                .map(|c| c.output.clone())
                .collect(),
            errors: outcome
                .tool_calls
                .iter()
                .filter_map(|c| c.error.clone())
                .collect(),
            rejected_calls,
            turns: outcome.turns,
            tokens_in: outcome.tokens_in,
            tokens_out: outcome.tokens_out,
            wall_ms: outcome.timings.wall.as_secs_f64() * 1e3,
        }
    }
}

/// The score of one query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryScore {
    pub id: String,
    pub query: String,
    pub expected: Expected,
    /// The tool the query is about (`read_file`, `run_command`, …); `None` for a direct answer.
    pub expected_tool: Option<String>,
    pub used_tools: Vec<String>,
    /// A tool call when one was expected, none when a direct answer was.
    pub tool_as_expected: bool,
    /// Expected code substrings the model's code lacks (Punie's scoring rule).
    pub code_missing: Vec<String>,
    /// Every snippet ran without raising (true when none ran).
    pub snippet_ok: bool,
    pub snippet_errors: Vec<String>,
    pub facts_found: Vec<String>,
    pub facts_missing: Vec<String>,
    pub passed: bool,
    pub run: RunFacts,
}

/// Scores `run` against `query` and its `facts`. A query passes when the run ended `done`,
/// the tool behaviour is as expected, the code has every expected substring, no snippet
/// raised and every fact is found in the answer or the snippets' output.
pub fn score(query: &Query, facts: &[Fact], run: RunFacts) -> QueryScore {
    let called = !run.calls.is_empty() || run.rejected_calls > 0;
    let tool_as_expected = match query.expected {
        Expected::ExecuteCode => !run.calls.is_empty(),
        Expected::DirectAnswer => !called,
    };
    let code_missing: Vec<String> = match query.expected {
        Expected::ExecuteCode => {
            let all_code = run.codes.join("\n");
            query
                .expected_code_contains
                .iter()
                .filter(|needle| !all_code.contains(needle.as_str()))
                .cloned()
                .collect()
        }
        Expected::DirectAnswer => Vec::new(),
    };
    let seen = std::iter::once(run.answer.as_str())
        .chain(run.outputs.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    let (found, missing): (Vec<&Fact>, Vec<&Fact>) = facts.iter().partition(|f| f.found_in(&seen));
    let snippet_ok = run.errors.is_empty();
    let passed = run.status == "done"
        && tool_as_expected
        && code_missing.is_empty()
        && snippet_ok
        && missing.is_empty()
        && !(query.expected == Expected::DirectAnswer && run.answer.trim().is_empty());
    QueryScore {
        id: query.id.clone(),
        query: query.query.clone(),
        expected: query.expected,
        expected_tool: match query.expected {
            Expected::ExecuteCode => query
                .expected_tools()
                .into_iter()
                .next()
                .or_else(|| Some("execute_code".to_owned())),
            Expected::DirectAnswer => None,
        },
        used_tools: run.used_tools.clone(),
        tool_as_expected,
        code_missing,
        snippet_ok,
        snippet_errors: run.errors.clone(),
        facts_found: found.iter().map(|f| f.label.clone()).collect(),
        facts_missing: missing.iter().map(|f| f.label.clone()).collect(),
        passed,
        run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(expected: Expected, contains: &[&str]) -> Query {
        Query {
            id: "q".to_owned(),
            query: "?".to_owned(),
            expected,
            expected_code_contains: contains.iter().map(|s| (*s).to_owned()).collect(),
            description: String::new(),
        }
    }

    fn tool_run(code: &str, output: &str, answer: &str) -> RunFacts {
        RunFacts {
            status: "done".to_owned(),
            answer: answer.to_owned(),
            codes: vec![code.to_owned()],
            calls: vec!["execute_code".to_owned()],
            outputs: vec![output.to_owned()],
            ..RunFacts::default()
        }
    }

    #[track_caller]
    fn check(query: &Query, facts: &[Fact], run: RunFacts, expect: &str) {
        let s = score(query, facts, run);
        let got = format!(
            "passed={} tool={} missing_code={:?} snippet_ok={} found={:?} missing={:?}",
            s.passed,
            s.tool_as_expected,
            s.code_missing,
            s.snippet_ok,
            s.facts_found,
            s.facts_missing
        );
        assert_eq!(got, expect);
    }

    #[test]
    fn numbers_match_whole() {
        let fact = Fact::number("n", [12]);
        assert!(fact.found_in("12 files"));
        assert!(fact.found_in("total: 12."));
        assert!(!fact.found_in("123 files"));
        assert!(!fact.found_in("v1.12"));
        assert!(!fact.found_in("112"));
    }

    #[test]
    fn tool_query_passes_and_fails_for_the_right_reasons() {
        let q = query(Expected::ExecuteCode, &["read_file", "print"]);
        let facts = [Fact::number("total", [127, 136])];
        check(
            &q,
            &facts,
            tool_run("print(len(read_file('a')))", "Total: 136", "see above"),
            r#"passed=true tool=true missing_code=[] snippet_ok=true found=["total"] missing=[]"#,
        );
        check(
            &q,
            &facts,
            tool_run("read_file('a')", "", "There are 120 lines"),
            r#"passed=false tool=true missing_code=["print"] snippet_ok=true found=[] missing=["total"]"#,
        );
        let mut raised = tool_run("print(read_file('a'))", "127", "");
        raised.errors = vec!["NameError: name 'x' is not defined".to_owned()];
        check(
            &q,
            &facts,
            raised,
            r#"passed=false tool=true missing_code=[] snippet_ok=false found=["total"] missing=[]"#,
        );
        let direct = RunFacts {
            status: "done".to_owned(),
            answer: "127".to_owned(),
            ..RunFacts::default()
        };
        check(
            &q,
            &facts,
            direct,
            r#"passed=false tool=false missing_code=["read_file", "print"] snippet_ok=true found=["total"] missing=[]"#,
        );
    }

    #[test]
    fn direct_query_fails_when_a_tool_is_called() {
        let q = query(Expected::DirectAnswer, &[]);
        let facts = [Fact::text("topic", ["SQL"])];
        let direct = RunFacts {
            status: "done".to_owned(),
            answer: "Raw sql is …".to_owned(),
            ..RunFacts::default()
        };
        check(
            &q,
            &facts,
            direct,
            r#"passed=true tool=true missing_code=[] snippet_ok=true found=["topic"] missing=[]"#,
        );
        check(
            &q,
            &facts,
            tool_run("print(1)", "1", "SQL"),
            r#"passed=false tool=false missing_code=[] snippet_ok=true found=["topic"] missing=[]"#,
        );
    }
}
