//! Training-snippet coverage: how many of the Code Mode snippets in the Phase 22 training
//! data pass the sandbox's checks (pre-checks and the allowlist) and compile, which names
//! they read, and whether a later snippet of a conversation relies on a variable an earlier
//! one set (the sandbox runs every snippet fresh, as Punie did). `docs/sandbox.md` records
//! the figures; the e2e test keeps every snippet runnable.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use anyhow::Context;

use super::validate;

/// The figures, and why each snippet that is not runnable is not.
#[derive(Debug, Clone, Default)]
pub struct CoverageReport {
    /// Code Mode snippets found (duplicates included, as the model saw them).
    pub total: usize,
    pub distinct: usize,
    /// Pass the pre-checks and the allowlist, and compile.
    pub runnable: usize,
    /// Conversations with more than one snippet.
    pub multi_snippet_rows: usize,
    /// Of those, the ones where a snippet reads a variable only an earlier snippet set.
    pub carried_over: usize,
    /// Names the snippets read without binding them (builtins, tools, `json`), with counts.
    pub names_read: BTreeMap<String, usize>,
    /// `(snippet's first line, reason)` for each distinct snippet that is not runnable.
    pub rest: Vec<(String, String)>,
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} snippets ({} distinct): {} runnable ({:.1}%)",
            self.total,
            self.distinct,
            self.runnable,
            100.0 * self.runnable as f64 / self.total.max(1) as f64
        )?;
        writeln!(
            f,
            "{} conversations with several snippets; {} read a variable an earlier snippet set",
            self.multi_snippet_rows, self.carried_over
        )?;
        let mut names: Vec<(&String, &usize)> = self.names_read.iter().collect();
        names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let names: Vec<String> = names
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        writeln!(f, "names read: {}", names.join(", "))?;
        for (first_line, reason) in &self.rest {
            writeln!(f, "  {first_line}: {reason}")?;
        }
        Ok(())
    }
}

/// The snippets inside `<parameter=code>` of each training row in the `*.jsonl` files of
/// `dir`, one list per row, in order.
pub fn training_rows(dir: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    const OPEN: &str = "<parameter=code>\n";
    const CLOSE: &str = "\n</parameter>";
    let mut res = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no *.jsonl files in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let row: serde_json::Value =
                serde_json::from_str(line).context("a training row is not JSON")?;
            let mut rest = row["text"].as_str().unwrap_or("");
            let mut snippets = Vec::new();
            while let Some(start) = rest.find(OPEN) {
                let after = &rest[start + OPEN.len()..];
                let Some(end) = after.find(CLOSE) else { break };
                snippets.push(after[..end].to_owned());
                rest = &after[end..];
            }
            res.push(snippets);
        }
    }
    Ok(res)
}

/// Checks every training snippet in `dir`.
pub fn report(dir: &Path) -> anyhow::Result<CoverageReport> {
    let rows = training_rows(dir)?;
    let snippets: Vec<&String> = rows.iter().flatten().collect();
    let mut res = CoverageReport {
        total: snippets.len(),
        distinct: snippets.iter().collect::<HashSet<_>>().len(),
        ..CoverageReport::default()
    };
    let mut reported = HashSet::new();
    for row in &rows {
        let mut bound_before: HashSet<String> = HashSet::new();
        let mut carried = false;
        for snippet in row {
            let names = match check_snippet(snippet) {
                Ok(names) => {
                    res.runnable += 1;
                    names
                }
                Err((reason, names)) => {
                    if reported.insert(snippet.as_str()) {
                        let first_line = snippet.lines().next().unwrap_or("");
                        res.rest
                            .push((first_line.chars().take(60).collect(), reason));
                    }
                    names
                }
            };
            for name in &names.free {
                *res.names_read.entry(name.clone()).or_default() += 1;
                carried |= bound_before.contains(name);
            }
            bound_before.extend(names.bound);
        }
        if row.len() > 1 {
            res.multi_snippet_rows += 1;
            res.carried_over += usize::from(carried);
        }
    }
    Ok(res)
}

/// The snippet's names, and whether it passes the checks and compiles.
fn check_snippet(code: &str) -> Result<validate::SnippetNames, (String, validate::SnippetNames)> {
    if let Err(err) = validate::precheck(code) {
        return Err((err.to_string(), validate::SnippetNames::default()));
    }
    let parsed = rustpython_vm::compiler::parser::parse_module(code).map_err(|err| {
        (
            format!("SyntaxError: {}", err.error),
            validate::SnippetNames::default(),
        )
    })?;
    let names = validate::snippet_names(parsed.syntax(), code);
    let checked = validate::validate_module(parsed.syntax(), code)
        .map_err(|err| err.to_string())
        .and_then(|()| {
            rustpython_vm::compiler::compile(
                code,
                rustpython_vm::compiler::Mode::Exec,
                "<snippet>",
                Default::default(),
            )
            .map(|_| ())
            .map_err(|err| format!("SyntaxError: {err}"))
        });
    match checked {
        Ok(()) => Ok(names),
        Err(reason) => Err((reason, names)),
    }
}
