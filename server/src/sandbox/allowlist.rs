//! What a snippet may name: the builtins, the attributes, the modules and their names. One
//! place for the interpreter's rules; `validate` enforces them on the AST before a snippet
//! runs, the worker builds its `builtins` from them, `coverage` measures them on the
//! training data.
//!
//! Every attribute here is safe on every object a snippet can reach (builtin values, the
//! builtin types and exception classes, native functions, generators, tool results): none
//! leads to a type, a frame, a code object, a module or an attribute looked up by a computed
//! name. That is why `format`, `format_map` (their `{0.attr}` fields look attributes up by
//! name), `encode`/`decode` (codec lookup imports modules), `mro` and the generator methods
//! are absent, and why no name starting with `_` can be written at all.

/// Builtins besides `print` (replaced by a capture) and `__import__` (returns the sandbox's
/// `json` and nothing else): Punie's allowlist without `type` (no training snippet uses it;
/// one argument of it reaches `type` itself), plus harmless helpers and the exception classes
/// the tools raise, so that `except FileNotFoundError:` works.
pub const BUILTINS: &[&str] = &[
    "int",
    "float",
    "str",
    "bool",
    "list",
    "dict",
    "set",
    "frozenset",
    "tuple",
    "len",
    "range",
    "enumerate",
    "zip",
    "map",
    "filter",
    "sorted",
    "reversed",
    "sum",
    "min",
    "max",
    "abs",
    "round",
    "repr",
    "iter",
    "next",
    "isinstance",
    "issubclass",
    "any",
    "all",
    "chr",
    "ord",
    "divmod",
    "pow",
    "hex",
    "bin",
    "oct",
    "callable",
    "slice",
    "format",
    "Ellipsis",
    "NotImplemented",
    "Exception",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "FileExistsError",
    "FileNotFoundError",
    "ImportError",
    "IndexError",
    "IsADirectoryError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PermissionError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "TimeoutError",
    "TypeError",
    "UnicodeDecodeError",
    "UnicodeError",
    "ValueError",
    "ZeroDivisionError",
];

/// The only importable module; it is also bound before the snippet runs.
pub const MODULE: &str = "json";

/// The public names of the sandbox's `json` (also the attributes `json.loads` etc.).
pub const JSON_NAMES: &[&str] = &["loads", "dumps", "JSONDecodeError"];

/// Methods of `str`, `list`, `dict`, `set`, `int` and `float`, and an exception's `args`.
pub const METHODS: &[&str] = &[
    // str
    "capitalize",
    "casefold",
    "center",
    "count",
    "endswith",
    "expandtabs",
    "find",
    "index",
    "isalnum",
    "isalpha",
    "isascii",
    "isdecimal",
    "isdigit",
    "isidentifier",
    "islower",
    "isnumeric",
    "isprintable",
    "isspace",
    "istitle",
    "isupper",
    "join",
    "ljust",
    "lower",
    "lstrip",
    "partition",
    "removeprefix",
    "removesuffix",
    "replace",
    "rfind",
    "rindex",
    "rjust",
    "rpartition",
    "rsplit",
    "rstrip",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "swapcase",
    "title",
    "upper",
    "zfill",
    // list
    "append",
    "clear",
    "copy",
    "extend",
    "insert",
    "pop",
    "remove",
    "reverse",
    "sort",
    // dict
    "get",
    "items",
    "keys",
    "popitem",
    "setdefault",
    "update",
    "values",
    // set
    "add",
    "difference",
    "difference_update",
    "discard",
    "intersection",
    "intersection_update",
    "isdisjoint",
    "issubset",
    "issuperset",
    "symmetric_difference",
    "symmetric_difference_update",
    "union",
    // int, float
    "bit_length",
    "is_integer",
    // exceptions
    "args",
];

/// The fields of the typed tools' results (`result.success`, `error.file`): every field of
/// the result types in Punie's `tool_signatures.json` (a test keeps the two equal).
pub const RESULT_FIELDS: &[&str] = &[
    "additions",
    "author",
    "children",
    "clean",
    "code",
    "code_snippet",
    "column",
    "commit_count",
    "commits",
    "container_name",
    "content",
    "date",
    "deletions",
    "domain",
    "duration",
    "end_column",
    "end_line",
    "error_count",
    "errors",
    "failed",
    "file",
    "file_count",
    "file_path",
    "files",
    "fixable",
    "fixable_count",
    "hash",
    "hunks",
    "import_added",
    "issues",
    "kind",
    "language",
    "line",
    "locations",
    "match_count",
    "matches",
    "message",
    "modified_source",
    "name",
    "node_type",
    "outcome",
    "parse_error",
    "passed",
    "preview",
    "query",
    "reference_count",
    "references",
    "rename_count",
    "rule",
    "severity",
    "skipped",
    "staged",
    "status",
    "success",
    "suggestion",
    "symbol",
    "symbol_count",
    "symbols",
    "tests",
    "valid",
    "violation_count",
    "violations",
    "warning_count",
];

/// May a snippet read `obj.<name>`?
pub fn attribute_allowed(name: &str) -> bool {
    METHODS.contains(&name)
        || JSON_NAMES.contains(&name)
        || RESULT_FIELDS.contains(&name)
        || crate::typed::ADDED_RESULT_FIELDS.contains(&name)
}

/// Names a snippet may read without binding them itself: builtins, tools, `json`.
pub fn name_provided(name: &str) -> bool {
    name == "print"
        || name == MODULE
        || BUILTINS.contains(&name)
        || crate::tools::Tool::by_name(name).is_some()
}

/// Names no snippet may use at all (bind or read): the interpreter's own (`__builtins__`,
/// `__import__`, `__build_class__`, `__name__`, …) all start with two underscores.
pub fn name_reserved(name: &str) -> bool {
    name.starts_with("__")
}
