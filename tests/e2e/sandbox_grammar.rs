//! Property: snippets built at random from fragments of Python's grammar (statements,
//! blocks, expressions, the sandbox's names and some it refuses) never crash, hang or wedge
//! the parent. Each one ends within its time limit plus a slack with a result or a Python
//! exception, and the sandbox then still runs a plain snippet.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use punie::cancel::CancelFlag;
use punie::sandbox::{DiskToolHost, Sandbox, SandboxLimits};

/// A statement of the generated snippet.
#[derive(Debug, Clone)]
enum Stmt {
    Line(String),
    /// A header (`if x:`, `def f(a):`, …) and its body.
    Block(String, Vec<Stmt>),
}

impl Stmt {
    fn render(&self, indent: usize, out: &mut String) {
        let pad = "    ".repeat(indent);
        match self {
            Stmt::Line(line) => {
                out.push_str(&pad);
                out.push_str(line);
                out.push('\n');
            }
            Stmt::Block(header, body) => {
                out.push_str(&pad);
                out.push_str(header);
                out.push('\n');
                if body.is_empty() {
                    out.push_str(&"    ".repeat(indent + 1));
                    out.push_str("pass\n");
                }
                for stmt in body {
                    stmt.render(indent + 1, out);
                }
            }
        }
    }
}

const NAMES: &[&str] = &[
    "x",
    "y",
    "s",
    "items",
    "d",
    "n",
    "print",
    "len",
    "str",
    "sorted",
    "json",
    "read_file",
    "write_file",
    "run_command",
    "type",
    "getattr",
    "__builtins__",
    "_",
    "err",
];
const ATTRIBUTES: &[&str] = &[
    "upper",
    "split",
    "strip",
    "count",
    "keys",
    "append",
    "args",
    "loads",
    "dumps",
    "success",
    "__class__",
    "format",
    "gi_frame",
    "real",
    "mro",
];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "7",
    "-3",
    "2.5",
    "10**6",
    "'a'",
    "'a.txt'",
    "'{0}'",
    "\"x\\n\"",
    "'__class__'",
    "None",
    "True",
    "b'x'",
    "[]",
    "{}",
    "()",
];
const FUNCTIONS: &[&str] = &[
    "len",
    "str",
    "int",
    "sorted",
    "list",
    "repr",
    "print",
    "read_file",
    "json.dumps",
    "json.loads",
    "max",
    "abs",
    "range",
    "any",
    "type",
    "getattr",
    "f",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        proptest::sample::select(NAMES).prop_map(str::to_owned),
        proptest::sample::select(LITERALS).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                proptest::sample::select(&["+", "*", "%", "//", "==", "<", "and", "or", "in"][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (
                proptest::sample::select(FUNCTIONS),
                proptest::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), proptest::sample::select(ATTRIBUTES))
                .prop_map(|(e, attr)| format!("{e}.{attr}")),
            (inner.clone(), inner.clone()).prop_map(|(e, i)| format!("{e}[{i}]")),
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
            inner.clone().prop_map(|e| format!("lambda v: {e}")),
            inner.clone().prop_map(|e| format!("f\"{{{e}}}\"")),
            (inner.clone(), inner.clone()).prop_map(|(e, it)| format!("[{e} for v in {it}]")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, c, b)| format!("({a} if {c} else {b})")),
            inner.clone().prop_map(|e| format!("not {e}")),
        ]
    })
}

fn target() -> impl Strategy<Value = String> {
    proptest::sample::select(&["x", "y", "s", "n", "items", "d", "_", "__builtins__"][..])
        .prop_map(str::to_owned)
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let simple = prop_oneof![
        (target(), expr()).prop_map(|(t, e)| Stmt::Line(format!("{t} = {e}"))),
        (target(), expr()).prop_map(|(t, e)| Stmt::Line(format!("{t} += {e}"))),
        expr().prop_map(|e| Stmt::Line(format!("print({e})"))),
        expr().prop_map(Stmt::Line),
        expr().prop_map(|e| Stmt::Line(format!("raise ValueError({e})"))),
        proptest::sample::select(
            &[
                "import json",
                "import os",
                "from json import loads",
                "from json import *",
                "del x",
                "global x",
                "return 1",
                "break",
                "continue",
                "yield 1",
                "x.attr = 1",
                "assert x",
                "pass",
            ][..]
        )
        .prop_map(|line| Stmt::Line(line.to_owned())),
    ];
    simple.prop_recursive(3, 16, 4, |inner| {
        let body = proptest::collection::vec(inner, 0..4);
        prop_oneof![
            (expr(), body.clone()).prop_map(|(e, b)| Stmt::Block(format!("if {e}:"), b)),
            (expr(), body.clone()).prop_map(|(e, b)| Stmt::Block(format!("for v in {e}:"), b)),
            body.clone().prop_map(|b| Stmt::Block(
                "while n < 3 if isinstance(n, int) else False:".to_owned(),
                b
            )),
            body.clone()
                .prop_map(|b| Stmt::Block("def f(a=1, *rest):".to_owned(), b)),
            body.clone().prop_map(|b| Stmt::Block("try:".to_owned(), b)),
            body.clone()
                .prop_map(|b| Stmt::Block("except Exception as err:".to_owned(), b)),
            body.clone()
                .prop_map(|b| Stmt::Block("class A:".to_owned(), b)),
            body.prop_map(|b| Stmt::Block("with x:".to_owned(), b)),
        ]
    })
}

fn snippet() -> impl Strategy<Value = String> {
    proptest::collection::vec(stmt(), 1..8).prop_map(|stmts| {
        let mut out = String::from("n = 0\n");
        for stmt in &stmts {
            stmt.render(0, &mut out);
        }
        out
    })
}

#[test]
fn grammar_fragments_never_crash_hang_or_wedge_the_parent() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("a.txt"), "alpha\n").unwrap();
    let host = DiskToolHost {
        root: ws.path().to_path_buf(),
        allow_commands: false,
    };
    let limits = SandboxLimits {
        timeout_ms: 500,
        memory_mb: 128,
        ..SandboxLimits::default()
    };
    // Generous against a loaded machine; what it catches is a parent that never returns.
    let bound = Duration::from_millis(limits.timeout_ms) + Duration::from_secs(5);
    let sandbox = RefCell::new(
        Sandbox::with_worker_exe(limits, std::path::Path::new(env!("CARGO_BIN_EXE_punie")))
            .unwrap(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 120,
        failure_persistence: None,
        ..Config::default()
    });
    let ran = Cell::new(0usize);
    let run = |code: &str| {
        sandbox
            .borrow_mut()
            .execute(code, &host, &CancelFlag::default(), &mut |_| {})
    };
    runner
        .run(&snippet(), |code| {
            let start = Instant::now();
            let res = run(&code);
            prop_assert!(start.elapsed() < bound, "took {:?}", start.elapsed());
            prop_assert!(res.ok || res.error.is_some());
            if let Some(err) = &res.error {
                prop_assert!(
                    !err.message.contains("broke its protocol"),
                    "our own worker broke the protocol: {err}"
                );
            }
            ran.set(ran.get() + 1);
            if ran.get().is_multiple_of(10) {
                let check = run("print(6 * 7)");
                prop_assert_eq!(check.output.as_str(), "42\n", "{:?}", check.error);
            }
            Ok(())
        })
        .unwrap();
    let check = run("print(6 * 7)");
    assert_eq!(check.output, "42\n", "{:?}", check.error);
}
