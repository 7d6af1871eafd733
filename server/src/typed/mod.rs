//! The typed tools' back ends: each registry entry with `Backend::Typed` is carried out here
//! and returns the typed result its stub promises (`RuffResult`, `TestResult`, …) as a JSON
//! object, which the sandbox hands to Python as an object with attribute access. Field names
//! are Punie's (`fixtures/punie/tool_signatures.json` → `result_types`).
//!
//! Two kinds of back end:
//!
//! * **Programs** (`ruff`, `ty`, `pytest`, `git`): the argv is built here, the program runs
//!   through `workspace::run_command` (the one contained program runner, with the host's
//!   limits and the run's cancel flag), and its machine-readable output is parsed by a pure
//!   function in the tool's module. A program that is not on `PATH` raises
//!   `FileNotFoundError: ruff is not installed (pip install ruff)` in the snippet, and the
//!   tool is left out of the stubs ([`installed`]).
//! * **Code navigation**: `ty server`, kept per workspace in the jail and reached through
//!   Punie's LSP client, when ty is installed; else the parser (`navigation/`).
//! * **Python source** (concrete-syntax search and edits, the tdom validators, navigation
//!   without a language server): answered in-process from a lossless parse (`source.rs`,
//!   RustPython's ruff-based parser). Files are read through the host, so an editor's unsaved
//!   buffer is what is analysed; edits are returned as `modified_source` and reach the disk
//!   only through `write_file` (its permission, its editor edit).
//!
//! Paths the model passes are confined to the workspace (`workspace::resolve`) and handed to
//! programs as `./relative` paths, so a path can never be read as an option.

mod cst;
mod domain;
mod git;
mod navigation;
mod nesting;
mod pytest;
mod ruff;
mod source;
mod ty;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cancel::CancelFlag;
use crate::tools::{Program, Tool, Typed};
use crate::workspace::{self, CommandOutput, ToolError, ToolHost};

pub use navigation::stop_language_servers;
pub use nesting::check as check_python_nesting;

/// Fields our results add to Punie's result types (`answered_by`: which back end answered a
/// navigation call; `checker`: which type checker ran), readable in the sandbox like Punie's
/// own.
pub const ADDED_RESULT_FIELDS: &[&str] = &["answered_by", "checker"];

/// Stack of the thread a call that parses Python runs on. The parser, the visitors over its
/// tree and the tree's `Drop` recurse; `nesting::check` bounds how deep, and the deepest
/// sources it accepts (200 nested f-strings around 2,800 unary minuses, 99 blocks deep) needed
/// 3.2 MB in a debug build, more than the 2 MB of the LSP and ACP run threads. Ten times that
/// is address space, not memory: only the pages a deep file touches are used.
const PARSE_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Carries out one typed call whose permission was granted.
pub(crate) fn call(
    host: &dyn ToolHost,
    typed: Typed,
    args: &Value,
    cancel: &CancelFlag,
) -> Result<Value, ToolError> {
    // The tools answered in-process (navigation, CST, the validators) all parse Python;
    // navigation parses the file of a position even when a language server answers.
    if typed.programs().is_empty() {
        on_parse_stack(|| call_here(host, typed, args, cancel))
    } else {
        call_here(host, typed, args, cancel)
    }
}

/// Runs `work` on a thread of its own with [`PARSE_STACK_BYTES`] of stack, and waits for it.
fn on_parse_stack(
    work: impl FnOnce() -> Result<Value, ToolError> + Send,
) -> Result<Value, ToolError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("punie-parse".to_owned())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, work)
            .map_err(|err| {
                ToolError::new("MemoryError", format!("no thread to parse on: {err}"))
            })?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn call_here(
    host: &dyn ToolHost,
    typed: Typed,
    args: &Value,
    cancel: &CancelFlag,
) -> Result<Value, ToolError> {
    let ctx = Context { host, cancel };
    match typed {
        Typed::Typecheck => ty::typecheck(&ctx, str_arg(args, "path")?),
        Typed::Ruff => ruff::check(&ctx, str_arg(args, "path")?),
        Typed::Pytest => pytest::run(&ctx, str_arg(args, "path")?),
        Typed::GitStatus => git::status(&ctx, str_arg(args, "path")?),
        Typed::GitDiff => git::diff(
            &ctx,
            str_arg(args, "path")?,
            opt_bool_arg(args, "staged")?.unwrap_or(false),
        ),
        Typed::GitLog => git::log(
            &ctx,
            str_arg(args, "path")?,
            opt_int_arg(args, "count")?.unwrap_or(10),
        ),
        Typed::GotoDefinition => {
            navigation::goto_definition(&ctx, &Position::from_args(&ctx, args)?)
        }
        Typed::FindReferences => {
            navigation::find_references(&ctx, &Position::from_args(&ctx, args)?)
        }
        Typed::Hover => navigation::hover(&ctx, &Position::from_args(&ctx, args)?),
        Typed::DocumentSymbols => navigation::document_symbols(&ctx, str_arg(args, "file_path")?),
        Typed::WorkspaceSymbols => navigation::workspace_symbols(&ctx, str_arg(args, "query")?),
        Typed::CstFindPattern => {
            cst::find_pattern(&ctx, str_arg(args, "file_path")?, str_arg(args, "pattern")?)
        }
        Typed::CstRename => cst::rename(
            &ctx,
            str_arg(args, "file_path")?,
            str_arg(args, "old_name")?,
            str_arg(args, "new_name")?,
        ),
        Typed::CstAddImport => cst::add_import(
            &ctx,
            str_arg(args, "file_path")?,
            str_arg(args, "import_stmt")?,
        ),
        Typed::ValidateComponent => domain::validate_component(&ctx, str_arg(args, "file_path")?),
        Typed::ValidateEscapeContext => {
            domain::validate_escape_context(&ctx, str_arg(args, "file_path")?)
        }
    }
}

/// Whether `program` is installed: an executable file of that name in an absolute directory
/// on `PATH`, the same lookup `run_command` makes (an empty or relative entry would find the
/// workspace's own `./ruff`).
pub fn installed(program: Program) -> bool {
    find_on_path(program.command()).is_some()
}

/// The tools offered on this machine: every registered tool that can run here.
pub fn offered() -> Vec<Tool> {
    crate::tools::offered(installed)
}

/// The start of a program's argv. pytest runs as `python3 -B -m pytest` with the Python its
/// script sits beside, so that importing the tests leaves no `__pycache__` in the workspace.
fn interpreter_argv(program: Program) -> Vec<String> {
    let python = match program {
        Program::Pytest => find_on_path(program.command())
            .and_then(|script| script.parent().map(|dir| dir.join("python3")))
            .filter(|python| is_executable(python)),
        Program::Ruff | Program::Ty | Program::Mypy | Program::Git => None,
    };
    match python {
        Some(python) => vec![
            python.display().to_string(),
            "-B".to_owned(),
            "-m".to_owned(),
            "pytest".to_owned(),
        ],
        None => vec![program.command().to_owned()],
    }
}

fn find_on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// What a back end needs from the call: the host (workspace, buffers, limits) and the run's
/// cancel flag.
struct Context<'a> {
    host: &'a dyn ToolHost,
    cancel: &'a CancelFlag,
}

impl Context<'_> {
    fn root(&self) -> &Path {
        self.host.workspace_root()
    }

    /// `raw` confined to the workspace; it must exist.
    fn existing(&self, raw: &str) -> Result<PathBuf, ToolError> {
        let path = workspace::resolve(self.root(), raw)?;
        if !path.exists() {
            return Err(ToolError::new(
                "FileNotFoundError",
                format!("No such file or directory: '{raw}'"),
            ));
        }
        Ok(path)
    }

    /// `path` (inside the workspace) as a program argument: `./rel`, never starting with `-`.
    fn program_arg(&self, path: &Path) -> String {
        let rel = workspace::display_path(self.root(), path);
        if rel == "." { rel } else { format!("./{rel}") }
    }

    /// `path` as results show it: relative to the workspace root.
    fn shown(&self, path: &Path) -> String {
        workspace::display_path(self.root(), path)
    }

    /// The text of a workspace file: the editor's buffer when it has one, else the disk. A
    /// file named like a secret is refused: only `read_file`, which asks the user, reads one.
    fn read(&self, raw: &str) -> Result<(PathBuf, String), ToolError> {
        let path = self.existing(raw)?;
        if let Some(secret) = crate::jail::secret_name(&self.shown(&path)) {
            return Err(ToolError::permission(format!(
                "'{raw}' is named like a secret ({secret}): only read_file reads it, once the \
                 user agrees"
            )));
        }
        let text = match self.host.read_document(&path, self.cancel) {
            Some(text) => text,
            None => workspace::read_text(&path, raw)?,
        };
        Ok((path, text))
    }

    /// Runs `program` with `args` in `cwd` through the one program runner.
    fn run(
        &self,
        program: Program,
        args: &[String],
        cwd: &Path,
    ) -> Result<CommandOutput, ToolError> {
        if !installed(program) {
            return Err(ToolError::new(
                "FileNotFoundError",
                format!(
                    "{} is not installed ({})",
                    program.command(),
                    program.install_hint()
                ),
            ));
        }
        let mut argv = interpreter_argv(program);
        argv.extend_from_slice(args);
        workspace::run_command(
            &argv,
            cwd,
            self.host.workspace_root(),
            &self.host.command_limits(),
            self.cancel,
        )
    }
}

/// A position argument set: `file_path`, 1-based `line` and `column`, and the `symbol` the
/// model meant (echoed back, and used to find the name near the position).
struct Position<'a> {
    file_path: &'a str,
    /// 1 to the file's last line.
    line: i64,
    /// 1 or more; past the end of the line is allowed (`symbol` is looked for on the line).
    column: i64,
    symbol: &'a str,
}

impl Position<'_> {
    /// The position the arguments name, checked here so that no later conversion meets a
    /// line or column it cannot represent (`-2**63` once overflowed `column - 1`).
    fn from_args<'a>(ctx: &Context<'_>, args: &'a Value) -> Result<Position<'a>, ToolError> {
        let file_path = str_arg(args, "file_path")?;
        let line = one_based_arg(args, "line")?;
        let column = one_based_arg(args, "column")?;
        let (_, text) = ctx.read(file_path)?;
        let lines = text.lines().count().max(1);
        if usize::try_from(line).is_ok_and(|line| line > lines) {
            return Err(ToolError::new(
                "ValueError",
                format!("line {line} is past the end of '{file_path}' ({lines} lines)"),
            ));
        }
        Ok(Position {
            file_path,
            line,
            column,
            symbol: str_arg(args, "symbol")?,
        })
    }
}

/// A line or column: an int of 1 or more.
fn one_based_arg(args: &Value, name: &str) -> Result<i64, ToolError> {
    let value = int_arg(args, name)?;
    if value < 1 {
        return Err(ToolError::new(
            "ValueError",
            format!("{name} must be 1 or more (lines and columns count from 1), not {value}"),
        ));
    }
    Ok(value)
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name).and_then(Value::as_str).ok_or_else(|| {
        ToolError::new(
            "TypeError",
            format!("missing or non-string argument '{name}'"),
        )
    })
}

fn int_arg(args: &Value, name: &str) -> Result<i64, ToolError> {
    opt_int_arg(args, name)?.ok_or_else(|| {
        ToolError::new(
            "TypeError",
            format!("missing required argument '{name}' (an int)"),
        )
    })
}

fn opt_int_arg(args: &Value, name: &str) -> Result<Option<i64>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            ToolError::new("TypeError", format!("argument '{name}' must be an int"))
        }),
    }
}

fn opt_bool_arg(args: &Value, name: &str) -> Result<Option<bool>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_bool().map(Some).ok_or_else(|| {
            ToolError::new("TypeError", format!("argument '{name}' must be a bool"))
        }),
    }
}

/// The result of a program whose output could not be read: Punie's `success=False` with a
/// `parse_error`, plus the program's own words so the model can see what went wrong.
fn unreadable_output(program: Program, out: &CommandOutput, why: &str) -> String {
    let mut res = format!("{} output could not be read ({why})", program.command());
    let said = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    if !said.is_empty() {
        let said: String = said.chars().take(2000).collect();
        res.push_str(": ");
        res.push_str(&said);
    }
    res
}

#[cfg(test)]
mod tests;
