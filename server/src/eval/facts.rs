//! What a correct answer to each Task 9 query states about the fixture workspace, computed from
//! its files (pure), so the expectations follow the fixture instead of being typed in by hand.
//!
//! Counting has more than one honest answer: `wc -l` counts newlines, while Python's
//! `len(text.split("\n"))` counts one more per file that ends with a newline. Facts accept
//! each such variant ([`Fact::any_of`]).

use std::collections::BTreeMap;

use super::score::Fact;

/// The facts for `query_id` over `files` (path relative to the root, content).
/// Direct-answer queries get a topic word, since the workspace has nothing to say about them.
pub fn expected_facts(query_id: &str, files: &[(&str, &str)]) -> Vec<Fact> {
    let python: Vec<(&str, &str)> = files
        .iter()
        .copied()
        .filter(|(path, _)| path.ends_with(".py"))
        .collect();
    match query_id {
        "p22-single-01" => {
            let title = file(files, "README.md")
                .lines()
                .find_map(|line| line.strip_prefix("# "))
                .unwrap_or("")
                .trim()
                .to_owned();
            vec![Fact::text("README title", [title])]
        }
        "p22-single-02" => vec![Fact::number("number of Python files", [python.len()])],
        "p22-single-03" => vec![Fact::text("topic", ["depend"])],
        "p22-single-04" => exception_subclasses(&python)
            .into_iter()
            .map(|class| Fact::text(&format!("class {class}"), [class]))
            .collect(),
        "p22-single-05" => vec![Fact::text("topic", ["SQL"])],
        "p22-multi-01" => vec![Fact::number("total lines", line_totals(&python))],
        "p22-multi-02" => {
            let n_tests: usize = python
                .iter()
                .filter(|(path, _)| is_test_file(path))
                .map(|(_, content)| content.matches("def test_").count())
                .sum();
            vec![Fact::number("test functions", [n_tests])]
        }
        "p22-multi-03" => {
            // config.py exists in the fixture, so the answer shows its settings.
            let first_setting = file(files, "config.py")
                .lines()
                .find(|line| line.contains(" = "))
                .unwrap_or("")
                .to_owned();
            vec![Fact::text("config.py content", [first_setting])]
        }
        "p22-multi-04" => {
            let starts_with_docstring = python
                .iter()
                .filter(|(_, content)| {
                    let start = content.trim_start();
                    start.starts_with("\"\"\"") || start.starts_with("'''")
                })
                .count();
            let has_docstring_anywhere = python
                .iter()
                .filter(|(_, content)| content.contains("\"\"\"") || content.contains("'''"))
                .count();
            vec![Fact::number(
                "files with docstrings",
                [starts_with_docstring, has_docstring_anywhere],
            )]
        }
        "p22-multi-05" => {
            let mut by_dir: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
            for (path, content) in &python {
                let dir = path.rsplit_once('/').map_or(".", |(dir, _)| dir);
                by_dir.entry(dir).or_default().push((path, content));
            }
            let mut facts: Vec<Fact> = by_dir
                .iter()
                .filter(|(dir, _)| **dir != ".")
                .map(|(dir, _)| Fact::text(&format!("directory {dir}"), [*dir]))
                .collect();
            facts.push(Fact::number("total lines", line_totals(&python)));
            facts
        }
        _ => Vec::new(),
    }
}

fn file<'a>(files: &[(&str, &'a str)], wanted: &str) -> &'a str {
    files
        .iter()
        .find(|(path, _)| *path == wanted)
        .map_or("", |(_, content)| content)
}

fn is_test_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("test_"))
}

/// Total lines as `wc -l` counts them, and as `len(text.split("\n"))` does.
fn line_totals(files: &[(&str, &str)]) -> [usize; 2] {
    let newlines: usize = files.iter().map(|(_, c)| c.matches('\n').count()).sum();
    let split: usize = files.iter().map(|(_, c)| c.split('\n').count()).sum();
    [newlines, split]
}

/// Classes whose bases name `Exception` directly (`class X(Exception):`, `class X(A, Exception):`).
fn exception_subclasses(files: &[(&str, &str)]) -> Vec<String> {
    let mut res = Vec::new();
    for (_, content) in files {
        for line in content.lines() {
            let Some(rest) = line.strip_prefix("class ") else {
                continue;
            };
            let Some((name, bases)) = rest.split_once('(') else {
                continue;
            };
            let bases = bases.split(')').next().unwrap_or("");
            if bases.split(',').any(|base| base.trim() == "Exception") {
                res.push(name.trim().to_owned());
            }
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::super::workspace::FILES;
    use super::*;

    #[track_caller]
    fn check(query_id: &str, expect: &str) {
        let got: Vec<String> = expected_facts(query_id, FILES)
            .iter()
            .map(|fact| format!("{}={}", fact.label, fact.any_of.join("|")))
            .collect();
        assert_eq!(got.join("; "), expect);
    }

    /// The numbers the scripted transcripts print, hand-checked against the fixture with
    /// `wc -l` and `grep -c`.
    #[test]
    fn facts_of_the_fixture() {
        check("p22-single-01", "README title=Inventory");
        check("p22-single-02", "number of Python files=9");
        check(
            "p22-single-04",
            "class InventoryError=InventoryError; class ConfigError=ConfigError",
        );
        check("p22-multi-01", "total lines=127|136");
        check("p22-multi-02", "test functions=5");
        check("p22-multi-03", "config.py content=DEBUG = False");
        check("p22-multi-04", "files with docstrings=6");
        check(
            "p22-multi-05",
            "directory scripts=scripts; directory src/inventory=src/inventory; directory tests=tests; total lines=127|136",
        );
    }
}
