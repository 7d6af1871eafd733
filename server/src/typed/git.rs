//! `git_status`, `git_diff`, `git_log` from git's machine formats: `status --porcelain=v1 -z`,
//! a unified diff with fixed prefixes, `log` with separator bytes no message contains.
//!
//! The git CLI, not the `gix` crate: git runs contained through `workspace::run_command` like
//! every program the model starts, where `gix` would read a hostile repository's objects inside
//! the server process, and it would add a large dependency tree to every clean build for
//! three commands that take milliseconds (see `docs/typed-tools.md`).
//!
//! A repository's own configuration (`.git/config`, its includes, `.gitattributes`) cannot
//! make these tools run a program, since the tools promise to only read. The jail switches off
//! what git's configuration runs for every git command (`jail/git_config.rs`: hooks,
//! `core.fsmonitor`, `gpg.program`, and each filter, diff and merge driver, alias and pager
//! it finds); these tools add what only reading needs: no transport at all
//! (`protocol.allow=never`: a partial clone's lazy fetch), no pager, no optional locks (so
//! `status` never writes the index), and no external diff or text conversion in diffs. They do
//! not look inside submodules' work trees (`--ignore-submodules=dirty`: a submodule's own
//! `git status` would read its own configuration, whose drivers the jail does not scan). No
//! call starts git inside a submodule: a diff shows a submodule's change as its two commits
//! (`--submodule=short`, `-c diff.submodule=short`), where `diff.submodule=diff` would run
//! `git diff` in the submodule under the submodule's own `diff.external` and text conversions
//! (`-c diff.external=` makes such a child fail, should one start). So a submodule is listed
//! when its commit changed, not when only its work tree did, and a file under a filter (Git
//! LFS) whose timestamp changed may show as modified.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Context;
use crate::tools::Program;
use crate::workspace::{CommandOutput, ToolError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GitFileStatus {
    pub(super) file: String,
    pub(super) status: String,
    pub(super) staged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GitStatusResult {
    pub(super) success: bool,
    pub(super) clean: bool,
    pub(super) file_count: usize,
    pub(super) files: Vec<GitFileStatus>,
    pub(super) parse_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DiffFile {
    pub(super) file: String,
    pub(super) additions: usize,
    pub(super) deletions: usize,
    /// Each hunk's text, its `@@ … @@` header first.
    pub(super) hunks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GitDiffResult {
    pub(super) success: bool,
    pub(super) file_count: usize,
    pub(super) additions: usize,
    pub(super) deletions: usize,
    pub(super) files: Vec<DiffFile>,
    pub(super) parse_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GitCommit {
    pub(super) hash: String,
    pub(super) message: String,
    pub(super) author: Option<String>,
    pub(super) date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct GitLogResult {
    pub(super) success: bool,
    pub(super) commits: Vec<GitCommit>,
    pub(super) commit_count: usize,
    pub(super) parse_error: Option<String>,
}

/// Options that keep a repository's configuration from starting programs or changing the
/// formats parsed here (the module doc says which and why).
const SAFE_CONFIG: &[&str] = &[
    "--no-pager",
    "--no-optional-locks",
    "-c",
    "protocol.allow=never",
    "-c",
    "core.quotepath=off",
    "-c",
    "color.ui=never",
    // A submodule's own `git diff`, which `diff.submodule=diff` starts, reads the submodule's
    // configuration and gets none of the options here but these `-c`s (git hands them on).
    "-c",
    "diff.submodule=short",
    "-c",
    "diff.external=",
    "-c",
    "status.submoduleSummary=false",
    "-c",
    "submodule.recurse=false",
];

/// Runs `git <SAFE_CONFIG> <args> -- <path>` in the workspace root; `Err` holds the
/// `parse_error` for a git that failed (not a repository, say).
fn run_git(
    ctx: &Context<'_>,
    args: &[&str],
    raw: &str,
) -> Result<Result<(CommandOutput, Option<PathBuf>), String>, ToolError> {
    let target = ctx.existing(raw)?;
    let argv: Vec<String> = SAFE_CONFIG
        .iter()
        .chain(args)
        .map(|arg| (*arg).to_owned())
        .chain(["--".to_owned(), ctx.program_arg(&target)])
        .collect();
    let out = ctx.run(Program::Git, &argv, ctx.root())?;
    if out.exit_code != Some(0) {
        let why = format!("exit code {:?}", out.exit_code);
        return Ok(Err(super::unreadable_output(Program::Git, &out, &why)));
    }
    Ok(Ok((out, repository_root(ctx.root()))))
}

/// The top of the repository that holds `dir`: paths in git's output are relative to it.
fn repository_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

/// A path from git's output (relative to the repository) as results show it (relative to
/// the workspace).
fn shown(ctx: &Context<'_>, repo: Option<&Path>, path: &str) -> String {
    match repo {
        Some(repo) => ctx.shown(&repo.join(path)),
        None => path.to_owned(),
    }
}

pub(super) fn status(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    let args = [
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignore-submodules=dirty",
    ];
    let res = match run_git(ctx, &args, raw)? {
        Ok((out, repo)) => {
            let mut res = parse_status(&out.stdout);
            for file in &mut res.files {
                file.file = shown(ctx, repo.as_deref(), &file.file);
            }
            res
        }
        Err(why) => GitStatusResult {
            success: false,
            clean: false,
            file_count: 0,
            files: Vec::new(),
            parse_error: Some(why),
        },
    };
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// Parses `git status --porcelain=v1 -z`: `XY path\0`, a rename also `orig\0` after it.
/// X is the index (staged) column, Y the work tree's, read as Punie did: `??` untracked,
/// a staged change first, else the work tree's.
pub(super) fn parse_status(stdout: &str) -> GitStatusResult {
    let mut files = Vec::new();
    let mut entries = stdout.split('\0').filter(|entry| !entry.is_empty());
    while let Some(entry) = entries.next() {
        let mut chars = entry.chars();
        let (Some(x), Some(y)) = (chars.next(), chars.next()) else {
            continue;
        };
        let path = entry.get(3..).unwrap_or_default().to_owned();
        if matches!(x, 'R' | 'C') {
            // The original path follows as its own entry.
            entries.next();
        }
        let (status, staged) = match (x, y) {
            ('?', '?') => ("untracked", false),
            ('!', '!') => ("ignored", false),
            ('A', _) => ("added", true),
            ('M', _) => ("modified", true),
            ('D', _) => ("deleted", true),
            ('R', _) => ("renamed", true),
            ('C', _) => ("copied", true),
            ('T', _) => ("typechange", true),
            ('U', _) | (_, 'U') => ("unmerged", false),
            (_, 'M') => ("modified", false),
            (_, 'D') => ("deleted", false),
            (_, 'T') => ("typechange", false),
            _ => ("unknown", x != ' '),
        };
        files.push(GitFileStatus {
            file: path,
            status: status.to_owned(),
            staged,
        });
    }
    GitStatusResult {
        success: true,
        clean: files.is_empty(),
        file_count: files.len(),
        files,
        parse_error: None,
    }
}

pub(super) fn diff(ctx: &Context<'_>, raw: &str, staged: bool) -> Result<Value, ToolError> {
    let mut args = vec![
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--ignore-submodules=dirty",
        "--submodule=short",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--unified=3",
    ];
    if staged {
        args.push("--staged");
    }
    let res = match run_git(ctx, &args, raw)? {
        Ok((out, repo)) => {
            let mut res = parse_diff(&out.stdout);
            for file in &mut res.files {
                file.file = shown(ctx, repo.as_deref(), &file.file);
            }
            res
        }
        Err(why) => GitDiffResult {
            success: false,
            file_count: 0,
            additions: 0,
            deletions: 0,
            files: Vec::new(),
            parse_error: Some(why),
        },
    };
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// Parses a unified diff with `a/` and `b/` prefixes: one [`DiffFile`] per `diff --git`,
/// its name from `+++ b/…` (`--- a/…` for a deletion, the header for a binary file or a
/// mode change), additions and deletions counted inside hunks only.
pub(super) fn parse_diff(stdout: &str) -> GitDiffResult {
    let mut files: Vec<DiffFile> = Vec::new();
    let mut in_hunk = false;
    for line in stdout.lines() {
        if let Some(header) = line.strip_prefix("diff --git ") {
            files.push(DiffFile {
                file: header_path(header),
                additions: 0,
                deletions: 0,
                hunks: Vec::new(),
            });
            in_hunk = false;
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if line.starts_with("@@") {
            in_hunk = true;
            file.hunks.push(line.to_owned());
            continue;
        }
        if in_hunk {
            if line.starts_with('+') {
                file.additions += 1;
            } else if line.starts_with('-') {
                file.deletions += 1;
            }
            if let Some(hunk) = file.hunks.last_mut() {
                hunk.push('\n');
                hunk.push_str(line);
            }
        } else if let Some(path) = line.strip_prefix("+++ ") {
            if let Some(path) = unquote(path).strip_prefix("b/") {
                file.file = path.to_owned();
            }
        } else if let Some(path) = line.strip_prefix("--- ")
            && let Some(path) = unquote(path).strip_prefix("a/")
        {
            // Replaced by `+++ b/…` unless the file was deleted (`+++ /dev/null`).
            file.file = path.to_owned();
        }
    }
    let additions = files.iter().map(|file| file.additions).sum();
    let deletions = files.iter().map(|file| file.deletions).sum();
    GitDiffResult {
        success: true,
        file_count: files.len(),
        additions,
        deletions,
        files,
        parse_error: None,
    }
}

/// The new path of a `diff --git a/X b/Y` header (`Y`); with spaces in names the split is
/// ambiguous, so `+++`/`---` lines override it when the diff has them.
fn header_path(header: &str) -> String {
    let header = unquote_all(header);
    match header.rfind(" b/") {
        Some(idx) => header[idx + 3..].to_owned(),
        None => header,
    }
}

/// A path as git prints it: C-quoted (`"a\tb"`) when it holds special characters.
fn unquote(text: &str) -> String {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return text.to_owned();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut iter = inner.bytes().peekable();
    while let Some(byte) = iter.next() {
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        match iter.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'r') => bytes.push(b'\r'),
            Some(digit @ b'0'..=b'7') => {
                let mut value = u32::from(digit - b'0');
                for _ in 0..2 {
                    if let Some(next @ b'0'..=b'7') = iter.peek().copied() {
                        value = value * 8 + u32::from(next - b'0');
                        iter.next();
                    }
                }
                bytes.push(u8::try_from(value).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(other),
            None => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`unquote`] on both halves of a header whose paths are quoted.
fn unquote_all(header: &str) -> String {
    if header.starts_with('"') {
        header
            .split("\" \"")
            .map(|part| unquote(&format!("\"{}\"", part.trim_matches('"'))))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        header.to_owned()
    }
}

/// Field and record separators of the log format: bytes no author or subject contains.
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

pub(super) fn log(ctx: &Context<'_>, raw: &str, count: i64) -> Result<Value, ToolError> {
    let count = format!("--max-count={}", count.clamp(1, 1000));
    let args = [
        "log",
        "--no-color",
        "--no-show-signature",
        "--date=default",
        "--format=%h%x1f%an%x1f%ad%x1f%s%x1e",
        count.as_str(),
    ];
    let res = match run_git(ctx, &args, raw)? {
        Ok((out, _)) => parse_log(&out.stdout),
        // A repository without commits yet is not a failure: it has no history.
        Err(why) if why.contains("does not have any commits yet") => parse_log(""),
        Err(why) => GitLogResult {
            success: false,
            commits: Vec::new(),
            commit_count: 0,
            parse_error: Some(why),
        },
    };
    Ok(serde_json::to_value(res).unwrap_or_default())
}

/// Parses `git log --format=%h%x1f%an%x1f%ad%x1f%s%x1e`.
pub(super) fn parse_log(stdout: &str) -> GitLogResult {
    let commits: Vec<GitCommit> = stdout
        .split(RECORD)
        .filter_map(|record| {
            let mut fields = record.trim_start_matches('\n').split(FIELD);
            let hash = fields.next().filter(|hash| !hash.is_empty())?;
            let author = fields.next()?;
            let date = fields.next()?;
            let message = fields.next()?;
            Some(GitCommit {
                hash: hash.to_owned(),
                message: message.to_owned(),
                author: Some(author.to_owned()),
                date: Some(date.to_owned()),
            })
        })
        .collect();
    GitLogResult {
        success: true,
        commit_count: commits.len(),
        commits,
        parse_error: None,
    }
}
