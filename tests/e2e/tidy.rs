//! The repository checks its own rules (as rust-analyzer's `xtask/src/tidy.rs`): every Rust
//! file opens with a `//!` doc, and the invariants ARCHITECTURE.md states as absences hold
//! (pure modules do no IO, one owner per foreign library, modules depend one way, exit codes
//! and stdout belong to the command line, no wait polls a cancel flag). Each failure names the
//! file and line.
//!
//! The checks read the source, not the compiler's view of it: comments and the contents of
//! literals are blanked first, then every path the code names (`use` trees flattened) is
//! compared with the rules. `#[cfg(test)]` items and files are test code, which may read
//! fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules that do no IO (ARCHITECTURE.md, "Pure modules do no IO").
const PURE_MODULES: &[&str] = &["toolcall", "prompt", "policy", "tools"];

/// What a pure module's non-test code never names: IO, the environment, threads, foreign
/// libraries.
const IMPURE_PATHS: &[&str] = &[
    "std::fs",
    "std::process",
    "std::net",
    "std::env",
    "std::thread",
    "lsp_types",
    "lsp_server",
    "llama_cpp_2",
    "llama_cpp_sys_2",
    "rustpython_vm",
];

/// Foreign libraries and the only places (files, or directories ending in `/`, under
/// `server/src`) that name them (ARCHITECTURE.md, "One owner per foreign library").
const OWNERS: &[(&str, &[&str])] = &[
    ("llama_cpp_2", &["engine/llama.rs", "engine/llama/"]),
    ("llama_cpp_sys_2", &["engine/llama.rs", "engine/llama/"]),
    ("rustpython_vm", &["sandbox/"]),
    ("lsp_types", &["lsp/", "jsonrpc.rs", "typed/navigation/"]),
    ("lsp_server", &["lsp/", "jsonrpc.rs", "typed/navigation/"]),
    ("ruff_python_parser", &["typed/"]),
    ("ruff_python_ast", &["typed/"]),
    ("ruff_text_size", &["typed/"]),
    // The process's own standard streams are the protocol's (LSP frames, ACP lines, `--json`);
    // `main.rs` flushes stdout as the process ends.
    (
        "std::io::stdout",
        &["cli/", "lsp/mod.rs", "acp/mod.rs", "main.rs"],
    ),
    ("std::io::stdin", &["cli/", "lsp/mod.rs", "acp/mod.rs"]),
    // How a process ends is decided by `main.rs`, except in the two processes Punie starts
    // itself, which have their own entry points: the sandbox worker and the jail helper.
    (
        "std::process::exit",
        &[
            "main.rs",
            "sandbox/worker.rs",
            "jail/helper.rs",
            "jail/linux/",
        ],
    ),
    // Without exit handlers: only `main.rs`, once everything is written (`exit_now`).
    ("libc::_exit", &["main.rs"]),
    (
        "std::process::ExitCode",
        &["main.rs", "jail/mod.rs", "jail/helper.rs"],
    ),
];

/// Timed waits and the only places (as in [`OWNERS`]) that make them, none of them for a
/// cancel (ARCHITECTURE.md, "No wait polls a cancel flag"): a worker's stderr drained after it
/// died, the LSP writer flushed at exit, a child without a pidfd, the helper's sweep of killed
/// processes, and the benchmarks (the follow-up benchmark's user reading the answer).
const TIMED_WAITS: &[(&str, &[&str])] = &[
    (
        "recv_timeout",
        &[
            "sandbox/process.rs",
            "lsp/mod.rs",
            "lsp/bench.rs",
            "cli/bench/",
        ],
    ),
    (
        "sleep",
        &[
            "jail/run.rs",
            "jail/linux/",
            "sandbox/bench.rs",
            "cli/bench/followup.rs",
        ],
    ),
];

/// Macros that write to stdout or stderr, which only the command line uses (`cli/`, and
/// `main.rs` for the one line of a failed command); everything else logs through `tracing`.
const PRINT_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg"];

/// The modules of the crate and the modules each may name: the module graph, lowest first.
/// `crate::`, `super::` and `use` paths into another top-level module must be listed here,
/// and the listed graph must stay acyclic, so a dependency goes one way only.
const LAYERS: &[(&str, &[&str])] = &[
    ("atomic_file", &[]),
    ("own_dirs", &[]),
    ("plain_file", &[]),
    ("plantable", &[]),
    ("sync", &[]),
    ("cancel", &["sync"]),
    ("uri", &[]),
    ("jsonrpc", &[]),
    ("toolcall", &[]),
    ("tools", &[]),
    ("policy", &["sync", "tools"]),
    ("prompt", &["toolcall", "tools"]),
    (
        "jail",
        &["cancel", "own_dirs", "plain_file", "policy", "sync"],
    ),
    (
        "workspace",
        &[
            "atomic_file",
            "cancel",
            "jail",
            "plain_file",
            "policy",
            "tools",
        ],
    ),
    (
        "models",
        &["atomic_file", "own_dirs", "plain_file", "plantable"],
    ),
    (
        "engine",
        &["atomic_file", "cancel", "models", "plain_file", "sync"],
    ),
    (
        "typed",
        &[
            "cancel",
            "jail",
            "jsonrpc",
            "plain_file",
            "sync",
            "tools",
            "uri",
            "workspace",
        ],
    ),
    (
        "sandbox",
        &[
            "cancel",
            "jail",
            "policy",
            "sync",
            "tools",
            "typed",
            "workspace",
        ],
    ),
    (
        "agent",
        &[
            "atomic_file",
            "cancel",
            "engine",
            "models",
            "own_dirs",
            "plain_file",
            "policy",
            "prompt",
            "sandbox",
            "sync",
            "toolcall",
            "tools",
            "typed",
        ],
    ),
    (
        "eval",
        &["agent", "cancel", "engine", "prompt", "sandbox", "tools"],
    ),
    (
        "features",
        &[
            "agent",
            "cancel",
            "engine",
            "jail",
            "policy",
            "prompt",
            "sandbox",
            "sync",
            "toolcall",
            "tools",
            "uri",
            "workspace",
        ],
    ),
    (
        "lsp",
        &[
            "agent",
            "cancel",
            "engine",
            "features",
            "jail",
            "jsonrpc",
            "models",
            "policy",
            "prompt",
            "sync",
            "tools",
            "uri",
            "workspace",
        ],
    ),
    (
        "acp",
        &[
            "agent",
            "cancel",
            "engine",
            "features",
            "models",
            "own_dirs",
            "policy",
            "prompt",
            "sync",
            "toolcall",
            "tools",
            "uri",
            "workspace",
        ],
    ),
    (
        "cli",
        &[
            "acp",
            "agent",
            "cancel",
            "engine",
            "eval",
            "features",
            "jail",
            "lsp",
            "models",
            "policy",
            "prompt",
            "sandbox",
            "sync",
            "toolcall",
            "tools",
            "workspace",
        ],
    ),
];

#[test]
fn tidy() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = repo.join("server/src");
    let mut problems = Vec::new();
    let mut files = rust_files(&src);
    files.extend(rust_files(&repo.join("server/examples")));
    files.extend(rust_files(&repo.join("tests")));
    assert!(files.len() > 100, "found only {} Rust files", files.len());

    let test_files = test_files(&src);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let shown = path.strip_prefix(&repo).unwrap().display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{shown}:1: the file does not start with a `//!` doc saying what it is for"
            ));
        }
        let Ok(relative) = path.strip_prefix(&src) else {
            continue;
        };
        let relative = relative.to_str().unwrap().to_owned();
        let code = if test_files.contains(path) {
            // A whole test file: only the rules that hold for tests too.
            String::new()
        } else {
            without_test_items(&blank_comments_and_literals(&text))
        };
        let mut report = |line: usize, message: String| {
            problems.push(format!("{shown}:{line}: {message}"));
        };
        check_file(&relative, &code, &mut report);
    }
    // By file, then by line.
    problems.sort_by_key(|problem| {
        let mut parts = problem.splitn(3, ':');
        let file = parts.next().unwrap_or_default().to_owned();
        (
            file,
            parts.next().and_then(|line| line.parse::<usize>().ok()),
        )
    });
    problems.extend(check_layers_acyclic());
    problems.extend(check_every_module_layered(&src));
    assert!(
        problems.is_empty(),
        "tidy found {} problem(s) (rules: ARCHITECTURE.md, \"Invariants\"):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The rules for one file under `server/src`, given its code without comments, literals and
/// test items.
fn check_file(relative: &str, code: &str, report: &mut dyn FnMut(usize, String)) {
    let module = module_path(relative);
    let top = module.first().map(String::as_str).unwrap_or("");
    let in_place = |place: &str| match place.strip_suffix('/') {
        Some(dir) => relative.starts_with(&format!("{dir}/")),
        None => relative == place,
    };
    let layer = LAYERS.iter().find(|(name, _)| *name == top);
    for (line, path) in paths(code) {
        let named = |prefix: &str| {
            let prefix: Vec<&str> = prefix.split("::").collect();
            path.len() >= prefix.len() && path.iter().zip(&prefix).all(|(a, b)| a == b)
        };
        if PURE_MODULES.contains(&top)
            && let Some(impure) = IMPURE_PATHS.iter().find(|p| named(p))
        {
            report(
                line,
                format!("`{top}` is a pure module and may not name `{impure}`"),
            );
        }
        for (name, places) in OWNERS {
            if named(name) && !places.iter().any(|place| in_place(place)) {
                report(
                    line,
                    format!("only {} may name `{name}`", places.join(", ")),
                );
            }
        }
        if let Some(target) = crate_module(&module, &path)
            && target != top
            && let Some((_, allowed)) = layer
            && !allowed.contains(&target.as_str())
        {
            report(
                line,
                format!(
                    "`{top}` may not depend on `{target}` (the module graph in tests/e2e/tidy.rs, \
                     LAYERS, goes one way)"
                ),
            );
        }
    }
    for (line, name) in calls(code) {
        if let Some((_, places)) = TIMED_WAITS.iter().find(|(wait, _)| *wait == name)
            && !places.iter().any(|place| in_place(place))
        {
            report(
                line,
                format!(
                    "`{name}` outside {}: wait in `CancelFlag::wait` or `cancel::poll_until`, \
                     which wake on a cancel, not on a timer",
                    places.join(", ")
                ),
            );
        }
    }
    if relative != "sync.rs" {
        for line in poisoning_locks(code) {
            report(
                line,
                "a lock taken outside sync.rs: use `sync::lock`, `sync::read` or `sync::write`, \
                 which a panic elsewhere does not turn into a panic here"
                    .to_owned(),
            );
        }
    }
    if !relative.starts_with("cli/") && relative != "main.rs" {
        for (line, name) in macro_calls(code) {
            if PRINT_MACROS.contains(&name.as_str()) {
                report(
                    line,
                    format!("`{name}!` outside cli/: log through `tracing` instead"),
                );
            }
        }
    }
}

/// The allowed module graph has no cycle, and names only modules it lists.
fn check_layers_acyclic() -> Vec<String> {
    let graph: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, deps) in &graph {
        for dep in deps.iter() {
            if !graph.contains_key(dep) {
                problems.push(format!(
                    "tests/e2e/tidy.rs: LAYERS: `{module}` names `{dep}`, which it does not list"
                ));
            }
        }
    }
    // Depth-first search from every module; a module met again on the current path is a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        problems: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module);
            problems.push(format!(
                "tests/e2e/tidy.rs: LAYERS has a cycle: {}",
                cycle.join(" → ")
            ));
            return;
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for dep in graph.get(module).copied().unwrap_or_default() {
            visit(dep, graph, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

/// The module path of a file under `server/src`: `engine/llama.rs` → `[engine, llama]`,
/// `engine/mod.rs` → `[engine]`, `lib.rs` → `[]`.
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The top-level module of this crate that `path` (named in the file of `module`) reaches
/// into, if any: `crate::engine::…` → `engine`, `super::super::engine` from `models::quantize`
/// → `engine`.
/// Every top-level module of the crate has a row in `LAYERS`: an unlisted one would be named
/// from anywhere without a check.
fn check_every_module_layered(src: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = match path.file_stem().and_then(|name| name.to_str()) {
            Some(name) if path.is_dir() || path.extension().is_some_and(|ext| ext == "rs") => {
                name.to_owned()
            }
            _ => continue,
        };
        if !["lib", "main"].contains(&name.as_str())
            && !LAYERS.iter().any(|(layer, _)| *layer == name)
        {
            problems.push(format!(
                "server/src/{}: the module `{name}` has no row in LAYERS (tests/e2e/tidy.rs)",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    problems.sort();
    problems
}

fn crate_module(module: &[String], path: &[String]) -> Option<String> {
    match path.first().map(String::as_str) {
        Some("crate") => path.get(1).cloned(),
        Some("super") => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            let base = &module[..module.len().saturating_sub(supers)];
            base.first().or(path.get(supers)).cloned()
        }
        _ => None,
    }
    .filter(|name| LAYERS.iter().any(|(layer, _)| layer == name))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut res = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            res.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            res.push(path);
        }
    }
    res.sort();
    res
}

/// Files that are test code: declared `#[cfg(test)] mod name;` in their parent module.
fn test_files(src: &Path) -> BTreeSet<PathBuf> {
    let mut res = BTreeSet::new();
    for path in rust_files(src) {
        let code = blank_comments_and_literals(&std::fs::read_to_string(&path).unwrap());
        let dir = match path.file_name().unwrap().to_str().unwrap() {
            "mod.rs" | "lib.rs" | "main.rs" => path.parent().unwrap().to_path_buf(),
            _ => path.with_extension(""),
        };
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let item = rest.trim_start();
            let Some(after_mod) = item.strip_prefix("mod ") else {
                continue;
            };
            let end = after_mod.find([';', '{']).unwrap_or(after_mod.len());
            if after_mod[end..].starts_with(';') {
                let name = after_mod[..end].trim();
                res.insert(dir.join(format!("{name}.rs")));
                res.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    res
}

/// `code` with every `#[cfg(test)]` item that has a body (`mod tests { … }`, a test helper)
/// blanked, lines kept.
fn without_test_items(code: &str) -> String {
    let mut res: Vec<char> = code.chars().collect();
    let text: String = code.to_owned();
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("#[cfg(test)]") {
        let start = search_from + found;
        let after = start + "#[cfg(test)]".len();
        search_from = after;
        let (Some(brace), semi) = (text[after..].find('{'), text[after..].find(';')) else {
            continue;
        };
        if semi.is_some_and(|semi| semi < brace) {
            continue;
        }
        let mut depth = 0;
        let mut end = text.len();
        for (i, c) in text[after + brace..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = after + brace + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = text[..start].chars().count();
        let count = text[start..end].chars().count();
        for c in &mut res[first..first + count] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        search_from = end;
    }
    res.into_iter().collect()
}

/// `text` with comments and the contents of string and character literals replaced by spaces;
/// line breaks stay, so line numbers do too.
fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if !prev_ident && let Some(end) = raw_string_end(&chars, i) {
            blank(&mut out, i, end);
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if c == '\'' {
            // A character literal, or a lifetime or label (left as code).
            let end = if next == Some('\\') {
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|c| *c == '\''))
                    .map(|n| i + 3 + n)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Where a raw string literal (`r"…"`, `r#"…"#`, `br"…"`, `cr"…"`) starting at `i` ends.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    let closing: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (j + 1..chars.len())
        .find(|k| chars[*k..].starts_with(&closing))
        .map(|k| k + closing.len())
        .or(Some(chars.len()))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokens(code: &str) -> Vec<(usize, Token)> {
    let mut res = Vec::new();
    for (line_idx, line) in code.lines().enumerate() {
        let line_no = line_idx + 1;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphabetic() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                res.push((
                    line_no,
                    Token::Ident(word.trim_start_matches("r#").to_owned()),
                ));
            } else if c == ':' && chars.get(i + 1) == Some(&':') {
                res.push((line_no, Token::PathSep));
                i += 2;
            } else if c.is_whitespace() {
                i += 1;
            } else if c.is_ascii_digit() {
                while i < chars.len() && chars[i].is_alphanumeric() {
                    i += 1;
                }
            } else {
                res.push((line_no, Token::Punct(c)));
                i += 1;
            }
        }
    }
    res
}

/// Every path the code names, with its line: `use` trees flattened (`use std::{fs, io};` →
/// `std::fs`, `std::io`), and every other `a::b::c` (or single name) with a first segment that
/// a `use` imported written out (`fs::read` after `use std::fs;` → `std::fs::read`).
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let tokens = tokens(code);
    let mut uses = Vec::new();
    let mut others = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].1 {
            Token::Ident(word) if word == "use" => {
                i = use_tree(&tokens, i + 1, &[], &mut uses);
            }
            Token::Ident(_) if i == 0 || tokens[i - 1].1 != Token::PathSep => {
                let line = tokens[i].0;
                let mut path = Vec::new();
                while let Some((_, Token::Ident(word))) = tokens.get(i) {
                    path.push(word.clone());
                    if tokens.get(i + 1).map(|t| &t.1) == Some(&Token::PathSep) {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                }
                others.push((line, path));
            }
            _ => i += 1,
        }
    }
    let imported: BTreeMap<String, Vec<String>> = uses
        .iter()
        .map(|(_, (name, path))| (name.clone(), path.clone()))
        .collect();
    let mut res: Vec<(usize, Vec<String>)> = uses
        .into_iter()
        .map(|(line, (_, path))| (line, path))
        .collect();
    for (line, path) in others {
        match imported.get(&path[0]) {
            Some(full) if path.len() > 1 => {
                res.push((line, full.iter().chain(&path[1..]).cloned().collect()));
            }
            _ => res.push((line, path)),
        }
    }
    res
}

/// A name a `use` brings into scope, and the path it stands for.
type Import = (String, Vec<String>);

/// Reads one use tree at `i` (after `use`, or inside `{…}`), pushes its leaves with `prefix`,
/// and returns the index after it.
fn use_tree(
    tokens: &[(usize, Token)],
    mut i: usize,
    prefix: &[String],
    res: &mut Vec<(usize, Import)>,
) -> usize {
    let token = |i: usize| tokens.get(i).map(|t| &t.1);
    let mut path = prefix.to_vec();
    let line = tokens.get(i).map_or(0, |t| t.0);
    if token(i) == Some(&Token::PathSep) {
        i += 1; // `use ::name`
    }
    loop {
        match token(i) {
            Some(Token::Ident(word)) => {
                i += 1;
                if token(i) == Some(&Token::PathSep) {
                    path.push(word.clone());
                    i += 1;
                    continue;
                }
                // `self` imports the module it follows.
                if word != "self" {
                    path.push(word.clone());
                }
                let mut name = path.last().cloned().unwrap_or_default();
                if token(i) == Some(&Token::Ident("as".to_owned())) {
                    if let Some(Token::Ident(alias)) = token(i + 1) {
                        name = alias.clone();
                    }
                    i += 2;
                }
                res.push((line, (name, path)));
                return i;
            }
            Some(Token::Punct('{')) => {
                i += 1;
                while !matches!(token(i), None | Some(Token::Punct('}'))) {
                    i = use_tree(tokens, i, &path, res);
                    if token(i) == Some(&Token::Punct(',')) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            _ => {
                // `*`, or the end of a malformed tree.
                res.push((line, (String::new(), path)));
                return i + 1;
            }
        }
    }
}

/// Every `name!` macro call, with its line.
fn macro_calls(code: &str) -> Vec<(usize, String)> {
    let tokens = tokens(code);
    tokens
        .windows(2)
        .filter_map(|pair| match pair {
            [(line, Token::Ident(name)), (_, Token::Punct('!'))] => Some((*line, name.clone())),
            _ => None,
        })
        .collect()
}

/// Where a lock is taken by hand (ARCHITECTURE.md, "No panic spreads through a lock"): a
/// poisoned lock recovered (`into_inner`), or `lock()`, `read()` or `write()` unwrapped.
fn poisoning_locks(code: &str) -> Vec<usize> {
    let tokens = tokens(code);
    let ident = |token: &Token, names: &[&str]| matches!(token, Token::Ident(name) if names.contains(&name.as_str()));
    let mut lines: Vec<usize> = tokens
        .windows(5)
        .filter_map(|window| match window {
            [
                (line, taken),
                (_, Token::Punct('(')),
                (_, Token::Punct(')')),
                (_, Token::Punct('.')),
                (_, then),
            ] if ident(taken, &["lock", "read", "write"]) && ident(then, &["unwrap", "expect"]) => {
                Some(*line)
            }
            _ => None,
        })
        .collect();
    lines.extend(
        calls(code)
            .into_iter()
            .filter(|(_, name)| name == "into_inner")
            .map(|(line, _)| line),
    );
    lines.sort_unstable();
    lines
}

/// The names called as functions or methods (`name(`), with their lines.
fn calls(code: &str) -> Vec<(usize, String)> {
    let tokens = tokens(code);
    tokens
        .windows(2)
        .filter_map(|pair| match pair {
            [(line, Token::Ident(name)), (_, Token::Punct('('))] => Some((*line, name.clone())),
            _ => None,
        })
        .collect()
}

/// The checks themselves, on small inputs: a rule that cannot fail checks nothing.
#[test]
fn tidy_finds_what_it_forbids() {
    #[track_caller]
    fn check(relative: &str, code: &str, expect: &[&str]) {
        let code = without_test_items(&blank_comments_and_literals(code));
        let mut found = Vec::new();
        check_file(relative, &code, &mut |line, message| {
            found.push(format!("{line}: {message}"));
        });
        assert_eq!(found, expect);
    }
    check(
        "prompt/mod.rs",
        "use std::{collections::HashMap, fs::{self, File}};\nfn f() { std::process::exit(1) }",
        &[
            "1: `prompt` is a pure module and may not name `std::fs`",
            "1: `prompt` is a pure module and may not name `std::fs`",
            "2: `prompt` is a pure module and may not name `std::process`",
            "2: only main.rs, sandbox/worker.rs, jail/helper.rs, jail/linux/ may name `std::process::exit`",
        ],
    );
    check(
        "toolcall/mod.rs",
        "//! std::fs in a doc\nconst A: &str = \"std::fs\";\nconst B: &str = r#\"use std::fs;\"#;\n\
         #[cfg(test)]\nmod tests { use std::fs; }\nfn f<'a>(c: char) -> bool { c == '\"' }",
        &[],
    );
    check(
        "features/run.rs",
        "use lsp_types::Uri;\nuse crate::lsp::uri;\nfn f() { println!(\"x\"); }",
        &[
            "1: only lsp/, jsonrpc.rs, typed/navigation/ may name `lsp_types`",
            "2: `features` may not depend on `lsp` (the module graph in tests/e2e/tidy.rs, \
             LAYERS, goes one way)",
            "3: `println!` outside cli/: log through `tracing` instead",
        ],
    );
    check(
        "models/quantize.rs",
        "fn f() { super::super::engine::llama::init_backend(); }",
        &[
            "1: `models` may not depend on `engine` (the module graph in tests/e2e/tidy.rs, LAYERS, goes one way)",
        ],
    );
    check("cli/ask.rs", "fn f() { println!(\"answer\"); }", &[]);
    let by_hand = "a lock taken outside sync.rs: use `sync::lock`, `sync::read` or `sync::write`, \
                   which a panic elsewhere does not turn into a panic here";
    check(
        "features/run.rs",
        "fn f() {\n    m.lock().unwrap();\n    m.lock().unwrap_or_else(|p| p.into_inner());\n    \
         r.write().expect(\"x\");\n    sync::lock(&m);\n    stdin.lock();\n}",
        &[
            &format!("2: {by_hand}"),
            &format!("3: {by_hand}"),
            &format!("4: {by_hand}"),
        ],
    );
    check(
        "sync.rs",
        "fn f() { m.lock().unwrap_or_else(|p| p.into_inner()); }",
        &[],
    );
    check(
        "agent/run.rs",
        "fn f() {\n    std::thread::sleep(d);\n    rx.recv_timeout(d);\n    sleep_until(d);\n}",
        &[
            "2: `sleep` outside jail/run.rs, jail/linux/, sandbox/bench.rs, cli/bench/followup.rs: wait in \
             `CancelFlag::wait` or `cancel::poll_until`, which wake on a cancel, not on a timer",
            "3: `recv_timeout` outside sandbox/process.rs, lsp/mod.rs, lsp/bench.rs, cli/bench/: \
             wait in `CancelFlag::wait` or `cancel::poll_until`, which wake on a cancel, not on a \
             timer",
        ],
    );
}
