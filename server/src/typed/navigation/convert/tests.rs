//! Conversions on answers recorded from `ty server` 1.0 (the e2e tests run the server itself).

use std::path::Path;

use super::*;

/// A workspace at `/ws` with one file, `src/a.py`.
struct Fake;

const A_PY: &str = "# é\nclass Ünit:\n    x = 1  # 🙂 then Ünit\n";

impl Files for Fake {
    fn text(&self, path: &Path) -> Option<String> {
        (path == Path::new("/ws/src/a.py")).then(|| A_PY.to_owned())
    }

    fn shown(&self, path: &Path) -> String {
        path.strip_prefix("/ws").map_or_else(
            |_| path.display().to_string(),
            |rel| rel.display().to_string(),
        )
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap()
}

#[test]
fn positions_are_characters_here_and_utf16_there() {
    // `Ünit` after the emoji on line 3: character 20, UTF-16 unit 21.
    let at = lsp_position(A_PY, 3, 20);
    assert_eq!((at.line, at.character), (2, 21));
    let refs = references(
        &Fake,
        "Ünit",
        parse(
            r#"[{"uri": "file:///ws/src/a.py", "range": {"start": {"line": 2, "character": 21}, "end": {"line": 2, "character": 25}}},
                {"uri": "file:///usr/lib/python3/x.py", "range": {"start": {"line": 0, "character": 7}, "end": {"line": 0, "character": 9}}}]"#,
        ),
    );
    let got: Vec<(&str, usize, usize, Option<&str>)> = refs
        .references
        .iter()
        .map(|r| (r.file.as_str(), r.line, r.column, r.preview.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("src/a.py", 3, 21, Some("x = 1  # 🙂 then Ünit")),
            ("/usr/lib/python3/x.py", 1, 8, None)
        ]
    );
    assert_eq!((refs.reference_count, refs.answered_by), (2, "ty server"));
}

#[test]
fn definitions_come_as_locations_or_links() {
    let scalar = definitions(
        &Fake,
        "Ünit",
        parse(
            r#"{"uri": "file:///ws/src/a.py", "range": {"start": {"line": 1, "character": 6}, "end": {"line": 1, "character": 10}}}"#,
        ),
    );
    let loc = &scalar.locations[0];
    assert_eq!(
        (
            loc.file.as_str(),
            loc.line,
            loc.column,
            loc.end_line,
            loc.end_column
        ),
        ("src/a.py", 2, 7, 2, 11)
    );
    assert_eq!(loc.preview.as_deref(), Some("class Ünit:"));
    let typeshed = definitions(
        &Fake,
        "list",
        parse(
            r#"[{"targetUri": "file:///tmp/punie-run-x/home/.cache/ty/vendored/typeshed/2e4d/stdlib/builtins.pyi",
            "targetRange": {"start": {"line": 2976, "character": 0}, "end": {"line": 3000, "character": 0}},
            "targetSelectionRange": {"start": {"line": 2976, "character": 6}, "end": {"line": 2976, "character": 10}}}]"#,
        ),
    );
    assert_eq!(typeshed.locations[0].file, "typeshed/stdlib/builtins.pyi");
    assert_eq!(typeshed.locations[0].line, 2977);
    let none = definitions(&Fake, "x", None);
    assert!(!none.success && none.locations.is_empty());
}

#[test]
fn hover_keeps_the_kind_of_its_content() {
    let plain = hover(
        "Square",
        parse(r#"{"contents": {"kind": "plaintext", "value": "Square\n---\nA square."}}"#),
    );
    assert_eq!(plain.content.as_deref(), Some("Square\n---\nA square."));
    assert_eq!(plain.language.as_deref(), Some("plaintext"));
    let marked = hover(
        "f",
        parse(r#"{"contents": {"language": "python", "value": "def f() -> int"}}"#),
    );
    assert_eq!(marked.language.as_deref(), Some("python"));
    let empty = hover("f", parse(r#"{"contents": ""}"#));
    assert!(!empty.success && empty.content.is_none());
}

#[test]
fn symbols_nest_and_count_their_children() {
    let nested = document_symbols(
        "src/a.py",
        parse(
            r#"[{"name": "Square", "kind": 5, "range": {"start": {"line": 3, "character": 0}, "end": {"line": 10, "character": 36}},
                 "selectionRange": {"start": {"line": 3, "character": 6}, "end": {"line": 3, "character": 12}},
                 "children": [{"name": "area", "kind": 6, "range": {"start": {"line": 9, "character": 4}, "end": {"line": 10, "character": 36}},
                               "selectionRange": {"start": {"line": 9, "character": 8}, "end": {"line": 9, "character": 12}}}]}]"#,
        ),
    );
    assert_eq!(nested.symbol_count, 2);
    let square = &nested.symbols[0];
    assert_eq!(
        (
            square.name.as_str(),
            square.kind,
            square.line,
            square.end_line
        ),
        ("Square", 5, 4, 11)
    );
    assert_eq!(square.children[0].name, "area");
    let found = workspace_symbols(
        &Fake,
        "squ",
        parse(
            r#"[{"name": "Square", "kind": 5, "location": {"uri": "file:///ws/src/a.py",
            "range": {"start": {"line": 3, "character": 0}, "end": {"line": 10, "character": 36}}}}]"#,
        ),
    );
    let symbol = &found.symbols[0];
    assert_eq!(
        (
            symbol.name.as_str(),
            symbol.kind,
            symbol.file.as_str(),
            symbol.line
        ),
        ("Square", 5, "src/a.py", 4)
    );
}
