//! The one tool registry: every tool the Code Mode sandbox offers, described once.
//!
//! Each [`ToolSpec`] carries the tool's name, Python signature, docstring, argument types,
//! result type, permission class, progress label and back end. Everything else derives
//! from it: the typed stubs shown to the model ([`stubs_text`], [`code_mode_instructions`]),
//! the functions bound inside the sandbox and their argument binding, the dispatch on the
//! host side (by [`Backend`]), the permission check (by [`PermissionClass`]) and the
//! progress messages ([`Tool::label`]).
//! Adding a typed tool is one more entry in [`REGISTRY`] and one more [`Typed`] variant,
//! which does not compile until `crate::typed` carries it out.
//!
//! **Architecture invariant:** this module is pure: no IO, no `std::fs`, no
//! `std::process`, no `rustpython_vm`.

use std::fmt;

/// The type of one argument, as the sandbox checks it and the stub prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Str,
    Int,
    Bool,
    /// `list[str] | None`
    OptStrList,
    /// `str | None`
    OptStr,
}

impl ParamType {
    /// The annotation as Python source.
    pub fn python(self) -> &'static str {
        match self {
            ParamType::Str => "str",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::OptStrList => "list[str] | None",
            ParamType::OptStr => "str | None",
        }
    }
}

/// A default value of an optional argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamDefault {
    None,
    Bool(bool),
    Int(i64),
}

impl ParamDefault {
    pub fn python(self) -> String {
        match self {
            ParamDefault::None => "None".to_owned(),
            ParamDefault::Bool(true) => "True".to_owned(),
            ParamDefault::Bool(false) => "False".to_owned(),
            ParamDefault::Int(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    /// `None`: the argument is required.
    pub default: Option<ParamDefault>,
}

/// What a tool may do, which decides its default policy (see `crate::policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermissionClass {
    /// Reads the workspace (default: allow).
    Read,
    /// Changes the workspace (default: ask).
    Write,
    /// Runs a program (default: ask).
    Execute,
}

/// Who carries a call out on the host side. Every variant has a back end: the dispatch
/// (`sandbox::dispatch`, then `crate::typed`) matches them exhaustively, so a registry entry
/// without one does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ReadFile,
    WriteFile,
    RunCommand,
    /// A typed tool: `crate::typed` runs it and returns its typed result.
    Typed(Typed),
}

/// The typed tools' back ends (see `crate::typed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// `ty check --output-format sarif` → `TypeCheckResult`.
    Typecheck,
    /// `ruff check --output-format json` → `RuffResult`.
    Ruff,
    /// pytest's JUnit XML → `TestResult`.
    Pytest,
    /// `git status --porcelain=v1 -z` → `GitStatusResult`.
    GitStatus,
    /// `git diff` → `GitDiffResult`.
    GitDiff,
    /// `git log` → `GitLogResult`.
    GitLog,
    GotoDefinition,
    FindReferences,
    Hover,
    DocumentSymbols,
    WorkspaceSymbols,
    /// Concrete-syntax searches and edits computed from a lossless parse.
    CstFindPattern,
    CstRename,
    CstAddImport,
    /// tdom's component rules, checked on the syntax tree.
    ValidateComponent,
    /// tdom's "no f-string in `html()`" rule.
    ValidateEscapeContext,
}

impl Typed {
    /// The programs the tool runs, in the order it tries them (`typecheck` falls back to mypy
    /// when ty is missing or fails); empty for tools answered in-process. A tool none of whose
    /// programs is installed raises `FileNotFoundError` and is left out of the stubs the model
    /// sees.
    pub fn programs(self) -> &'static [Program] {
        match self {
            Typed::Typecheck => &[Program::Ty, Program::Mypy],
            Typed::Ruff => &[Program::Ruff],
            Typed::Pytest => &[Program::Pytest],
            Typed::GitStatus | Typed::GitDiff | Typed::GitLog => &[Program::Git],
            Typed::GotoDefinition
            | Typed::FindReferences
            | Typed::Hover
            | Typed::DocumentSymbols
            | Typed::WorkspaceSymbols
            | Typed::CstFindPattern
            | Typed::CstRename
            | Typed::CstAddImport
            | Typed::ValidateComponent
            | Typed::ValidateEscapeContext => &[],
        }
    }
}

/// A program a typed tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Program {
    Ruff,
    Ty,
    /// `typecheck`'s fallback when ty is not installed or fails.
    Mypy,
    Pytest,
    Git,
}

impl Program {
    pub const ALL: [Program; 5] = [
        Program::Ruff,
        Program::Ty,
        Program::Mypy,
        Program::Pytest,
        Program::Git,
    ];

    /// The command looked up on `PATH`.
    pub fn command(self) -> &'static str {
        match self {
            Program::Ruff => "ruff",
            Program::Ty => "ty",
            Program::Mypy => "mypy",
            Program::Pytest => "pytest",
            Program::Git => "git",
        }
    }

    /// How to install it, for the error a snippet sees when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Program::Ruff => "pip install ruff",
            Program::Ty => "pip install ty",
            Program::Mypy => "pip install mypy",
            Program::Pytest => "pip install pytest",
            Program::Git => "install git with the system's package manager",
        }
    }
}

/// One tool, described once.
#[derive(Debug, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub params: &'static [Param],
    /// The result type as the stub names it (`str`, or a typed result such as `RuffResult`,
    /// which the sandbox hands to Python as an object with attribute access).
    pub returns: &'static str,
    /// The docstring, exactly as the model saw it in training (indented continuation lines).
    pub doc: &'static str,
    pub permission: PermissionClass,
    /// The argument shown after the tool's name in progress messages.
    pub label_arg: &'static str,
    pub backend: Backend,
    /// Part of the core Code Mode set (`read_file`, `write_file`, `run_command`) that the
    /// Phase 22 model was trained on.
    pub core: bool,
}

/// A handle to one registry entry: cheap to copy, compares by name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tool(&'static ToolSpec);

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tool({})", self.0.name)
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Tool {
    /// The tool called `name`, if the registry has one.
    pub fn by_name(name: &str) -> Option<Tool> {
        REGISTRY.iter().find(|spec| spec.name == name).map(Tool)
    }

    /// Every tool, in stub order.
    pub fn all() -> impl Iterator<Item = Tool> {
        REGISTRY.iter().map(Tool)
    }

    /// The core Code Mode tools.
    pub fn core() -> impl Iterator<Item = Tool> {
        Tool::all().filter(|tool| tool.spec().core)
    }

    pub fn spec(self) -> &'static ToolSpec {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn permission(self) -> PermissionClass {
        self.0.permission
    }

    pub fn backend(self) -> Backend {
        self.0.backend
    }

    /// The programs this tool runs, in the order it tries them; empty when it runs none of
    /// its own (`run_command` runs whatever the model names).
    pub fn programs(self) -> &'static [Program] {
        match self.0.backend {
            Backend::Typed(typed) => typed.programs(),
            Backend::ReadFile | Backend::WriteFile | Backend::RunCommand => &[],
        }
    }

    /// `def name(arg: type = default, ...) -> Result:`
    pub fn signature(self) -> String {
        let spec = self.0;
        let params: Vec<String> = spec
            .params
            .iter()
            .map(|param| match param.default {
                Some(default) => {
                    format!(
                        "{}: {} = {}",
                        param.name,
                        param.ty.python(),
                        default.python()
                    )
                }
                None => format!("{}: {}", param.name, param.ty.python()),
            })
            .collect();
        format!(
            "def {}({}) -> {}:",
            spec.name,
            params.join(", "),
            spec.returns
        )
    }

    /// The stub shown to the model: signature, docstring, `...`.
    pub fn stub(self) -> String {
        format!(
            "{}\n    \"\"\"{}\"\"\"\n    ...",
            self.signature(),
            self.0.doc
        )
    }

    /// The call's label with `shown` (the label argument, quoted where the call is resolved:
    /// `sandbox::dispatch`) after the tool's name, whole: the dispatcher cuts it where a dialog
    /// cuts its subject (an ACP tool card), a status bar shorter (`RunEvent::progress_message`).
    pub fn label_showing(self, shown: &str) -> String {
        format!("{} {}", self.0.name, shown.trim())
            .trim_end()
            .to_owned()
    }
}

/// Every tool that can run where `installed` says which programs are: those that run no
/// program of their own, and those one of whose programs is installed. What the `generic`
/// and `punie-typed` profiles show the model.
pub fn offered(installed: impl Fn(Program) -> bool) -> Vec<Tool> {
    Tool::all()
        .filter(|tool| tool.programs().is_empty() || tool.programs().iter().any(|p| installed(*p)))
        .collect()
}

/// The stub block for `tools`, exactly as Punie rendered it: a header, then each core stub
/// followed by a blank line, then the typed stubs one after another.
pub fn stubs_text(tools: &[Tool]) -> String {
    let mut res = String::from("# External functions available in sandbox\n\n");
    let (core, typed): (Vec<Tool>, Vec<Tool>) = tools.iter().partition(|tool| tool.spec().core);
    for tool in core {
        res.push_str(&tool.stub());
        res.push_str("\n\n");
    }
    let typed: Vec<String> = typed.into_iter().map(Tool::stub).collect();
    res.push_str(&typed.join("\n"));
    res
}

/// The stub block with the core tools in full and every other tool as its signature alone:
/// what a model not trained on the typed tools is shown of them. Their full stubs cost about
/// 2,800 prompt tokens; the signatures name each call and its result type for a tenth of it.
pub fn compact_stubs_text(tools: &[Tool]) -> String {
    let (core, typed): (Vec<Tool>, Vec<Tool>) = tools.iter().partition(|tool| tool.spec().core);
    let mut res = stubs_text(&core);
    if !typed.is_empty() {
        res.push_str(
            "# Also available (results have the fields their type names)

",
        );
        for tool in typed {
            res.push_str(
                tool.signature()
                    .trim_start_matches("def ")
                    .trim_end_matches(':'),
            );
            res.push('\n');
        }
    }
    res
}

/// Punie's Code Mode instructions around the stub block for `tools`, byte for byte the
/// fine-tune's `instructions_text` (`fixtures/punie/tool_signatures.json`).
pub fn code_mode_instructions(tools: &[Tool]) -> String {
    format!(
        "\n{CODE_MODE_INTRO}\n{}\n{CODE_MODE_RULES}\n",
        code_mode_functions(&stubs_text(tools))
    )
}

/// The heading and opening lines of the Code Mode instructions (the `generic` profile adds the
/// call syntax after them).
pub(crate) const CODE_MODE_INTRO: &str = "## Code Mode \u{2014} Multi-Step Tool Execution\n\nYou can execute multiple tool calls in a single turn by generating Python code.\nUse the `execute_code` tool with Python that calls the available external functions.\n";

/// The stub block of the Code Mode instructions.
pub(crate) fn code_mode_functions(stubs: &str) -> String {
    format!("Available external functions:\n```python\n{stubs}\n```\n")
}

/// The constraints and the worked example that end the Code Mode instructions.
pub(crate) const CODE_MODE_RULES: &str = r#"Constraints:
- No classes allowed (functions only)
- Limited stdlib (no os, pathlib, subprocess, sys)
- Use only the external functions provided above
- Print results to show output to the user
- Handle errors with try/except

Example multi-step query:
User: "Find all Python files and count imports"

Use the execute_code tool with this code:
```python
# Find all Python files
files_output = run_command("find", args=["-name", "*.py"])
files = files_output.strip().split("\n")

# Count imports in each file
total_imports = 0
for file_path in files:
    content = read_file(file_path)
    total_imports += content.count("import ")

print(f"Found {total_imports} imports across {len(files)} Python files")
```"#;

/// The registry, in the order Punie listed its stubs.
pub static REGISTRY: &[ToolSpec] = &[
    ToolSpec {
        name: "read_file",
        params: &[Param {
            name: "path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "str",
        doc: r#"Read contents of a text file from the IDE workspace."#,
        permission: PermissionClass::Read,
        label_arg: "path",
        backend: Backend::ReadFile,
        core: true,
    },
    ToolSpec {
        name: "write_file",
        params: &[
            Param {
                name: "path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "content",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "str",
        doc: r#"Write contents to a text file in the IDE workspace."#,
        permission: PermissionClass::Write,
        label_arg: "path",
        backend: Backend::WriteFile,
        core: true,
    },
    ToolSpec {
        name: "run_command",
        params: &[
            Param {
                name: "command",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "args",
                ty: ParamType::OptStrList,
                default: Some(ParamDefault::None),
            },
            Param {
                name: "cwd",
                ty: ParamType::OptStr,
                default: Some(ParamDefault::None),
            },
        ],
        returns: "str",
        doc: r#"Run a shell command in the IDE terminal."#,
        permission: PermissionClass::Execute,
        label_arg: "command",
        backend: Backend::RunCommand,
        core: true,
    },
    ToolSpec {
        name: "typecheck",
        params: &[Param {
            name: "path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "TypeCheckResult",
        doc: r#"Run ty type checker on a file or directory and return structured results.

    Returns TypeCheckResult with:
    - success: True if no errors found
    - error_count: Number of errors
    - warning_count: Number of warnings
    - errors: List of TypeCheckError objects with file, line, column, severity, code, message

    Example:
        result = typecheck("src/")
        if not result.success:
            for error in result.errors:
                print(f"{error.file}:{error.line} - {error.message}")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::Typecheck),
        core: false,
    },
    ToolSpec {
        name: "ruff_check",
        params: &[Param {
            name: "path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "RuffResult",
        doc: r#"Run ruff linter on a file or directory and return structured results.

    Returns RuffResult with:
    - success: True if no violations found
    - violation_count: Total number of violations
    - fixable_count: Number of auto-fixable violations
    - violations: List of RuffViolation objects with file, line, column, code, message, fixable

    Example:
        result = ruff_check("src/")
        if not result.success:
            fixable = [v for v in result.violations if v.fixable]
            print(f"Found {len(fixable)} fixable violations")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::Ruff),
        core: false,
    },
    ToolSpec {
        name: "pytest_run",
        params: &[Param {
            name: "path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "TestResult",
        doc: r#"Run pytest on a file or directory and return structured results.

    Returns TestResult with:
    - success: True if all tests passed
    - passed: Number of tests that passed
    - failed: Number of tests that failed
    - errors: Number of tests with errors
    - skipped: Number of skipped tests
    - duration: Total test execution time in seconds
    - tests: List of TestCase objects with name, outcome, duration, message

    Example:
        result = pytest_run("tests/")
        if not result.success:
            for test in result.tests:
                if test.outcome == "failed":
                    print(f"{test.name} failed: {test.message}")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::Pytest),
        core: false,
    },
    ToolSpec {
        name: "goto_definition",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "line",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "column",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "symbol",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "GotoDefinitionResult",
        doc: r#"Find the definition location of a symbol using LSP.

    Returns GotoDefinitionResult with:
    - success: True if definition found
    - symbol: Symbol name being searched
    - locations: List of DefinitionLocation objects with file, line, column, end_line, end_column, preview
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = goto_definition("src/app.py", 15, 10, "UserService")
        if result.success:
            loc = result.locations[0]
            print(f"Defined at {loc.file}:{loc.line}:{loc.column}")
            content = read_file(loc.file)  # Can read the definition file
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::GotoDefinition),
        core: false,
    },
    ToolSpec {
        name: "find_references",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "line",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "column",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "symbol",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "FindReferencesResult",
        doc: r#"Find all references to a symbol using LSP.

    Returns FindReferencesResult with:
    - success: True if references found
    - symbol: Symbol name being searched
    - reference_count: Total number of references found
    - references: List of ReferenceLocation objects with file, line, column, preview
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = find_references("src/services/user.py", 20, 7, "UserService")
        if result.success:
            print(f"Found {result.reference_count} references")
            for ref in result.references:
                print(f"  {ref.file}:{ref.line}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::FindReferences),
        core: false,
    },
    ToolSpec {
        name: "hover",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "line",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "column",
                ty: ParamType::Int,
                default: None,
            },
            Param {
                name: "symbol",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "HoverResult",
        doc: r#"Get hover information (type info, docstring) for a symbol using LSP.

    Returns HoverResult with:
    - success: True if hover info found
    - symbol: Symbol name being searched
    - content: Hover content (markdown or plaintext)
    - language: Language identifier (e.g., "python", "markdown")
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = hover("src/app.py", 15, 10, "UserService")
        if result.success:
            print(f"Type info: {result.content}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::Hover),
        core: false,
    },
    ToolSpec {
        name: "document_symbols",
        params: &[Param {
            name: "file_path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "DocumentSymbolsResult",
        doc: r#"Get all symbols (classes, functions, variables) in a file using LSP.

    Returns DocumentSymbolsResult with:
    - success: True if symbols found
    - file_path: File path being queried
    - symbols: List of SymbolInfo objects with name, kind, line, end_line, children
    - symbol_count: Total number of symbols (including nested)
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = document_symbols("src/services/user.py")
        if result.success:
            print(f"Found {result.symbol_count} symbols")
            for symbol in result.symbols:
                print(f"  {symbol.name} (kind={symbol.kind}) at line {symbol.line}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::DocumentSymbols),
        core: false,
    },
    ToolSpec {
        name: "workspace_symbols",
        params: &[Param {
            name: "query",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "WorkspaceSymbolsResult",
        doc: r#"Search for symbols across the entire workspace using LSP.

    Returns WorkspaceSymbolsResult with:
    - success: True if symbols found
    - query: Search query string
    - symbols: List of WorkspaceSymbol objects with name, kind, file, line, container_name
    - symbol_count: Total number of symbols found
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = workspace_symbols("UserService")
        if result.success:
            print(f"Found {result.symbol_count} matches")
            for match in result.symbols:
                print(f"  {match.name} in {match.file}:{match.line}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "query",
        backend: Backend::Typed(Typed::WorkspaceSymbols),
        core: false,
    },
    ToolSpec {
        name: "git_status",
        params: &[Param {
            name: "path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "GitStatusResult",
        doc: r#"Get git working tree status with structured file information.

    Returns GitStatusResult with:
    - success: True if command executed successfully
    - clean: True if working tree is clean (no changes)
    - file_count: Total number of files with changes
    - files: List of GitFileStatus objects with file, status, staged
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = git_status(".")
        if not result.clean:
            staged = [f for f in result.files if f.staged]
            print(f"Found {len(staged)} staged files")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::GitStatus),
        core: false,
    },
    ToolSpec {
        name: "git_diff",
        params: &[
            Param {
                name: "path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "staged",
                ty: ParamType::Bool,
                default: Some(ParamDefault::Bool(false)),
            },
        ],
        returns: "GitDiffResult",
        doc: r#"Get git diff with structured change information.

    Returns GitDiffResult with:
    - success: True if command executed successfully
    - file_count: Number of files changed
    - additions: Total lines added across all files
    - deletions: Total lines deleted across all files
    - files: List of DiffFile objects with file, additions, deletions, hunks
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = git_diff(".", staged=True)
        if result.file_count > 0:
            print(f"Staged changes: +{result.additions} -{result.deletions}")
            for file in result.files:
                print(f"  {file.file}: +{file.additions} -{file.deletions}")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::GitDiff),
        core: false,
    },
    ToolSpec {
        name: "cst_find_pattern",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "pattern",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "CstFindResult",
        doc: r#"Find nodes matching a pattern in a Python file using LibCST.

    Returns CstFindResult with:
    - success: True if search completed without errors
    - match_count: Number of matching nodes found
    - matches: List of CstMatch objects with line, column, code_snippet, node_type
    - parse_error: Error message if file could not be parsed, None otherwise

    Supported patterns:
    - "FunctionDef" — all function definitions
    - "ClassDef" — all class definitions
    - "Call" — all function calls
    - "Decorator" — all decorators
    - "ImportFrom" — all from ... import ... statements
    - "call:name" — calls to function named "name"
    - "decorator:name" — uses of decorator named "name"
    - "import:name" — imports from module named "name"

    Example:
        result = cst_find_pattern("src/components.py", "ClassDef")
        if result.success:
            for match in result.matches:
                print(f"Class at line {match.line}: {match.code_snippet}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::CstFindPattern),
        core: false,
    },
    ToolSpec {
        name: "cst_rename",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "old_name",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "new_name",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "CstRenameResult",
        doc: r#"Rename all occurrences of a symbol in a Python file using LibCST.

    Returns CstRenameResult with:
    - success: True if rename completed successfully
    - rename_count: Number of Name nodes renamed
    - modified_source: Full modified source code (write to file to apply)
    - parse_error: Error message if file could not be parsed, None otherwise

    Example:
        result = cst_rename("src/services.py", "UserService", "AccountService")
        if result.success and result.rename_count > 0:
            write_file("src/services.py", result.modified_source)
            print(f"Renamed {result.rename_count} occurrences")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::CstRename),
        core: false,
    },
    ToolSpec {
        name: "cst_add_import",
        params: &[
            Param {
                name: "file_path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "import_stmt",
                ty: ParamType::Str,
                default: None,
            },
        ],
        returns: "CstAddImportResult",
        doc: r#"Add an import statement to a Python file (idempotent) using LibCST.

    Returns CstAddImportResult with:
    - success: True if operation completed successfully
    - import_added: True if import was actually added (False if already present)
    - modified_source: Full modified source code (write to file to apply)
    - parse_error: Error message if file could not be parsed, None otherwise

    Example:
        result = cst_add_import("src/components.py", "from typing import Optional")
        if result.success and result.import_added:
            write_file("src/components.py", result.modified_source)
            print("Added Optional import")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::CstAddImport),
        core: false,
    },
    ToolSpec {
        name: "validate_component",
        params: &[Param {
            name: "file_path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "DomainValidationResult",
        doc: r#"Validate tdom component patterns in a Python file.

    Returns DomainValidationResult with:
    - valid: True if no errors found
    - domain: "tdom"
    - issues: List of ValidationIssue objects with rule, severity, message, suggestion
    - parse_error: Error message if file could not be parsed, None otherwise

    Checks: @dataclass present, __call__ returns Node, no f-strings in html().

    Example:
        result = validate_component("src/components/greeting.py")
        if not result.valid:
            for issue in result.issues:
                print(f"[{issue.severity}] {issue.rule}: {issue.message}")
                if issue.suggestion:
                    print(f"  → {issue.suggestion}")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::ValidateComponent),
        core: false,
    },
    ToolSpec {
        name: "validate_escape_context",
        params: &[Param {
            name: "file_path",
            ty: ParamType::Str,
            default: None,
        }],
        returns: "DomainValidationResult",
        doc: r#"Validate that html() calls use safe t-strings, not f-strings.

    Returns DomainValidationResult with:
    - valid: True if no f-strings found in html() calls
    - domain: "tdom"
    - issues: List of ValidationIssue objects
    - parse_error: Error message if file could not be parsed, None otherwise

    Example:
        result = validate_escape_context("src/components/template.py")
        if not result.valid:
            print("WARNING: Unsafe f-string usage detected in html() calls!")
    "#,
        permission: PermissionClass::Read,
        label_arg: "file_path",
        backend: Backend::Typed(Typed::ValidateEscapeContext),
        core: false,
    },
    ToolSpec {
        name: "git_log",
        params: &[
            Param {
                name: "path",
                ty: ParamType::Str,
                default: None,
            },
            Param {
                name: "count",
                ty: ParamType::Int,
                default: Some(ParamDefault::Int(10)),
            },
        ],
        returns: "GitLogResult",
        doc: r#"Get git commit history with structured commit information.

    Returns GitLogResult with:
    - success: True if command executed successfully
    - commits: List of GitCommit objects with hash, author, date, message
    - commit_count: Total number of commits returned
    - parse_error: Error message if operation failed, None otherwise

    Example:
        result = git_log(".", count=5)
        if result.commit_count > 0:
            print(f"Recent {result.commit_count} commits:")
            for commit in result.commits:
                print(f"  {commit.hash} by {commit.author} on {commit.date}")
                print(f"    {commit.message}")
    "#,
        permission: PermissionClass::Execute,
        label_arg: "path",
        backend: Backend::Typed(Typed::GitLog),
        core: false,
    },
];

#[cfg(test)]
mod tests;
