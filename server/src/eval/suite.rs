//! The suites: Phase 22 "Task 9" of the original Punie (`task9.json`, compiled in).

use serde::Deserialize;

/// The queries, transcribed from pauleveritt/punie (MIT, © 2026 Paul Everitt),
/// `scripts/test_phase22_model.py` at commit 1fe77fb; see the `source` field of the file.
const TASK9_JSON: &str = include_str!("task9.json");

/// A named set of queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Five queries that need one tool (or none: a direct answer).
    Task9Single,
    /// Five queries that need several tool calls, ideally one Code Mode snippet.
    Task9Multi,
}

/// What a query should make the model do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Call `execute_code` with code that contains every `expected_code_contains` substring.
    ExecuteCode,
    /// Answer without any tool call.
    DirectAnswer,
}

/// One question with its expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub query: String,
    pub expected: Expected,
    /// Substrings the generated code must contain (Punie's own scoring rule, case-sensitive).
    pub expected_code_contains: Vec<String>,
    pub description: String,
}

impl Query {
    /// The tools (`read_file`, `write_file`, `run_command`) the expected code names, in order.
    pub fn expected_tools(&self) -> Vec<String> {
        self.expected_code_contains
            .iter()
            .filter(|s| crate::tools::Tool::by_name(s).is_some())
            .cloned()
            .collect()
    }
}

#[derive(Deserialize)]
struct RawQuery {
    id: String,
    query: String,
    expected: String,
    expected_code_contains: Vec<String>,
    description: String,
}

impl Suite {
    pub const NAMES: [&'static str; 2] = ["task9-single", "task9-multi"];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Task9Single => Suite::NAMES[0],
            Suite::Task9Multi => Suite::NAMES[1],
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "task9-single" => Some(Suite::Task9Single),
            "task9-multi" => Some(Suite::Task9Multi),
            _ => None,
        }
    }

    /// The target Punie set for the suite, as it wrote it (`100% (5/5)`, `>= 80%`).
    pub fn target(self) -> &'static str {
        match self {
            Suite::Task9Single => "100% (5/5)",
            Suite::Task9Multi => ">= 80%",
        }
    }

    /// The queries, in the original order.
    pub fn queries(self) -> Vec<Query> {
        let file: serde_json::Value =
            serde_json::from_str(TASK9_JSON).expect("task9.json is valid JSON (checked by tests)");
        let raw: Vec<RawQuery> = serde_json::from_value(file[self.name()].clone())
            .expect("task9.json holds both suites (checked by tests)");
        raw.into_iter()
            .map(|q| Query {
                expected: if q.expected == "direct_answer" {
                    Expected::DirectAnswer
                } else {
                    Expected::ExecuteCode
                },
                id: q.id,
                query: q.query,
                expected_code_contains: q.expected_code_contains,
                description: q.description,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_suites_load_with_five_queries() {
        for suite in [Suite::Task9Single, Suite::Task9Multi] {
            let queries = suite.queries();
            assert_eq!(queries.len(), 5, "{}", suite.name());
            assert!(queries.iter().all(|q| q.id.starts_with("p22-")));
        }
        let single = Suite::Task9Single.queries();
        assert_eq!(single[0].expected_tools(), ["read_file"]);
        assert_eq!(single[2].expected, Expected::DirectAnswer);
    }
}
