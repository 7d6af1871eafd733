//! The two tdom validators whose rules are defined by their stubs without tdom's own code,
//! checked on the syntax tree as Punie's LibCST visitors did:
//!
//! * `validate_component`: a class that looks like a component (a `@dataclass`, a
//!   `__call__`, or an `html()` call) needs `@dataclass`, a `__call__` annotated `-> Node`,
//!   and no f-string passed to `html()`.
//! * `validate_escape_context`: no f-string passed to any `html()` call (t-strings escape,
//!   f-strings do not).
//!
//! Punie's seven other framework validators are not offered: their rules depend on tdom-svcs
//! and svcs conventions their stubs do not define, and `check_render_tree` never reported
//! anything (see `docs/typed-tools.md`).

use ruff_python_ast::visitor::source_order::{SourceOrderVisitor, TraversalSignal};
use ruff_python_ast::{AnyNodeRef, Expr, ExprCall};
use ruff_text_size::Ranged;
use serde::Serialize;
use serde_json::Value;

use super::Context;
use super::source::SourceFile;
use crate::workspace::ToolError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct ValidationIssue {
    pub(super) rule: &'static str,
    pub(super) severity: &'static str,
    pub(super) message: String,
    pub(super) line: Option<usize>,
    pub(super) suggestion: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DomainValidationResult {
    pub(super) valid: bool,
    pub(super) domain: &'static str,
    pub(super) issues: Vec<ValidationIssue>,
    pub(super) parse_error: Option<String>,
}

fn validate(
    ctx: &Context<'_>,
    raw: &str,
    check: fn(&SourceFile) -> Vec<ValidationIssue>,
) -> Result<Value, ToolError> {
    let (_, text) = ctx.read(raw)?;
    let res = match SourceFile::parse(text) {
        Ok(file) => {
            let issues = check(&file);
            DomainValidationResult {
                valid: !issues.iter().any(|issue| issue.severity == "error"),
                domain: "tdom",
                issues,
                parse_error: None,
            }
        }
        Err(why) => DomainValidationResult {
            valid: false,
            domain: "tdom",
            issues: Vec::new(),
            parse_error: Some(why),
        },
    };
    Ok(serde_json::to_value(res).unwrap_or_default())
}

pub(super) fn validate_component(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    validate(ctx, raw, component_issues)
}

pub(super) fn validate_escape_context(ctx: &Context<'_>, raw: &str) -> Result<Value, ToolError> {
    validate(ctx, raw, escape_issues)
}

/// `html(...)` with an f-string argument.
fn is_html_call(call: &ExprCall) -> bool {
    matches!(&*call.func, Expr::Name(name) if name.id.as_str() == "html")
}

fn passes_fstring(call: &ExprCall) -> bool {
    call.arguments
        .args
        .iter()
        .chain(call.arguments.keywords.iter().map(|keyword| &keyword.value))
        .any(|arg| matches!(arg, Expr::FString(_)))
}

/// `@name`, `@module.name`, `@name(...)` or `@module.name(...)`.
fn is_decorator(expr: &Expr, name: &str) -> bool {
    match expr {
        Expr::Name(expr) => expr.id.as_str() == name,
        Expr::Attribute(attr) => attr.attr.as_str() == name,
        Expr::Call(call) => is_decorator(&call.func, name) && !matches!(&*call.func, Expr::Call(_)),
        _ => false,
    }
}

fn escape_issues(file: &SourceFile) -> Vec<ValidationIssue> {
    struct Calls<'f> {
        file: &'f SourceFile,
        issues: Vec<ValidationIssue>,
    }
    impl<'a> SourceOrderVisitor<'a> for Calls<'_> {
        fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
            if let AnyNodeRef::ExprCall(call) = node
                && is_html_call(call)
                && passes_fstring(call)
            {
                self.issues.push(ValidationIssue {
                    rule: "no-fstring-in-html",
                    severity: "error",
                    message: "F-string passed to html() is unsafe (XSS risk)".to_owned(),
                    line: Some(self.file.line_col(call.start()).0),
                    suggestion: Some("Use t-string: html(t\"...\") instead of html(f\"...\")"),
                });
            }
            TraversalSignal::Traverse
        }
    }
    let mut calls = Calls {
        file,
        issues: Vec::new(),
    };
    calls.visit_body(file.body());
    calls.issues
}

/// What one class shows of the component pattern.
#[derive(Default)]
struct ClassFacts {
    name: String,
    line: usize,
    dataclass: bool,
    callable: bool,
    returns_node: bool,
    uses_html: bool,
    fstring_in_html: bool,
}

fn component_issues(file: &SourceFile) -> Vec<ValidationIssue> {
    struct Classes<'f> {
        file: &'f SourceFile,
        /// Indices into `done` of the classes being visited, innermost last.
        open: Vec<usize>,
        done: Vec<ClassFacts>,
    }
    impl<'a> SourceOrderVisitor<'a> for Classes<'_> {
        fn enter_node(&mut self, node: AnyNodeRef<'a>) -> TraversalSignal {
            match node {
                AnyNodeRef::StmtClassDef(class) => {
                    self.done.push(ClassFacts {
                        name: class.name.to_string(),
                        line: self.file.line_col(class.name.start()).0,
                        dataclass: class
                            .decorator_list
                            .iter()
                            .any(|dec| is_decorator(&dec.expression, "dataclass")),
                        ..ClassFacts::default()
                    });
                    self.open.push(self.done.len() - 1);
                }
                AnyNodeRef::StmtFunctionDef(def) if def.name.as_str() == "__call__" => {
                    if let Some(&idx) = self.open.last() {
                        let facts = &mut self.done[idx];
                        facts.callable = true;
                        facts.returns_node |= matches!(
                            def.returns.as_deref(),
                            Some(Expr::Name(ret)) if ret.id.as_str() == "Node"
                        );
                    }
                }
                AnyNodeRef::ExprCall(call) if is_html_call(call) => {
                    if let Some(&idx) = self.open.last() {
                        let facts = &mut self.done[idx];
                        facts.uses_html = true;
                        facts.fstring_in_html |= passes_fstring(call);
                    }
                }
                _ => {}
            }
            TraversalSignal::Traverse
        }

        fn leave_node(&mut self, node: AnyNodeRef<'a>) {
            if matches!(node, AnyNodeRef::StmtClassDef(_)) {
                self.open.pop();
            }
        }
    }
    let mut classes = Classes {
        file,
        open: Vec::new(),
        done: Vec::new(),
    };
    classes.visit_body(file.body());
    let mut issues = Vec::new();
    for class in classes.done {
        // A helper, an exception or a mixin is not a component.
        if !(class.dataclass || class.callable || class.uses_html) {
            continue;
        }
        let name = &class.name;
        let line = Some(class.line);
        if !class.dataclass {
            issues.push(ValidationIssue {
                rule: "component-must-have-dataclass",
                severity: "error",
                message: format!("Class '{name}' is missing @dataclass decorator"),
                line,
                suggestion: Some("Add @dataclass decorator above the class definition"),
            });
        }
        if !class.callable {
            issues.push(ValidationIssue {
                rule: "component-must-have-callable",
                severity: "error",
                message: format!("Class '{name}' is missing __call__ method"),
                line,
                suggestion: Some("Add def __call__(self) -> Node: method"),
            });
        } else if !class.returns_node {
            issues.push(ValidationIssue {
                rule: "component-callable-must-return-node",
                severity: "warning",
                message: format!("Class '{name}' __call__ does not annotate return type as Node"),
                line,
                suggestion: Some("Add -> Node return type annotation to __call__"),
            });
        }
        if class.fstring_in_html {
            issues.push(ValidationIssue {
                rule: "component-no-fstring-in-html",
                severity: "error",
                message: format!("Class '{name}' uses f-string in html() call (XSS risk)"),
                line,
                suggestion: Some("Use t-string (t\"...\") instead of f-string in html()"),
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(check: fn(&SourceFile) -> Vec<ValidationIssue>, source: &str) -> Vec<&'static str> {
        let file = SourceFile::parse(source.to_owned()).unwrap();
        check(&file).into_iter().map(|issue| issue.rule).collect()
    }

    #[test]
    fn components_follow_punies_rules() {
        let good = "@dataclass\nclass Greeting:\n    name: str\n\n    def __call__(self) -> Node:\n        return html(t\"<p>{self.name}</p>\")\n";
        assert!(rules(component_issues, good).is_empty());
        let bad = "class Greeting:\n    def __call__(self):\n        return html(f\"<p>{self.name}</p>\")\n\nclass Helper:\n    pass\n";
        assert_eq!(
            rules(component_issues, bad),
            [
                "component-must-have-dataclass",
                "component-callable-must-return-node",
                "component-no-fstring-in-html"
            ]
        );
        assert_eq!(
            rules(escape_issues, bad),
            ["no-fstring-in-html"],
            "t-strings pass, f-strings do not"
        );
        assert!(rules(escape_issues, good).is_empty());
    }
}
