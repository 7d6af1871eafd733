//! The files that describe the settings outside the server, generated from
//! [`declarations`] (as rust-analyzer's sourcegen): VS Code's `settings.decl.json` and the
//! `contributes.configuration` of its `package.json`, and the settings tables of
//! `docs/INTERFACES.md` and the VS Code README (between marker lines). The test fails with a
//! diff when a committed file differs; `UPDATE_SOURCEGEN=1 cargo test --lib sourcegen`
//! rewrites them. The JSON examples that the docs write by hand are checked against the
//! declaration instead.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::declaration::{Declaration, Kind, declarations};

const UPDATE: &str = "UPDATE_SOURCEGEN=1 cargo test --lib sourcegen";

const TABLE_START: &str = "<!-- sourcegen:settings start: generated from server/src/lsp/settings/declaration.rs; UPDATE_SOURCEGEN=1 cargo test --lib sourcegen rewrites it -->";
const TABLE_END: &str = "<!-- sourcegen:settings end -->";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn generated_settings_files_are_fresh() {
    let root = repository();
    let vscode = root.join("editors/vscode");
    let mut stale = Vec::new();
    ensure(
        &vscode.join("settings.decl.json"),
        |_| settings_decl_json(),
        &mut stale,
    );
    ensure(&vscode.join("package.json"), package_json, &mut stale);
    ensure(
        &root.join("docs/INTERFACES.md"),
        |text| splice_table(text, &server_table()),
        &mut stale,
    );
    ensure(
        &vscode.join("README.md"),
        |text| splice_table(text, &vscode_table()),
        &mut stale,
    );
    assert!(
        stale.is_empty(),
        "generated from server/src/lsp/settings/declaration.rs and out of date:\n{}\n\
         run `{UPDATE}` to rewrite them",
        stale.join("\n")
    );
}

/// Compares `path` with what `generate` makes of it; adds the diff to `stale`, or rewrites
/// the file under `UPDATE_SOURCEGEN`.
fn ensure(path: &Path, generate: impl Fn(&str) -> String, stale: &mut Vec<String>) {
    // Test-only IO: the generated files are the repository's.
    let current =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let want = generate(&current);
    if current == want {
        return;
    }
    let shown = path.strip_prefix(repository()).unwrap_or(path).display();
    if std::env::var_os("UPDATE_SOURCEGEN").is_some() {
        // Renamed into place: the other test reads these files meanwhile.
        let mut temp = tempfile::NamedTempFile::new_in(path.parent().unwrap()).unwrap();
        std::io::Write::write_all(&mut temp, want.as_bytes()).unwrap();
        std::fs::set_permissions(temp.path(), std::fs::metadata(path).unwrap().permissions())
            .unwrap();
        temp.persist(path).unwrap();
        return;
    }
    let diff = similar::TextDiff::from_lines(&current, &want);
    stale.push(format!(
        "{}",
        diff.unified_diff()
            .context_radius(2)
            .header(&format!("{shown} (committed)"), "generated")
    ));
}

/// An entry of `settings.decl.json`: what `src/config.ts` needs to build the server's settings
/// from VS Code's (the rest is in `package.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeclEntry {
    key: &'static str,
    /// VS Code's own setting, not sent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    client: bool,
    /// An empty string means "the server's default" and is not sent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    omit_empty: bool,
}

/// A property of `package.json` `contributes.configuration`, in VS Code's schema.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Property {
    #[serde(rename = "type")]
    kind: &'static str,
    default: Value,
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    choices: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enum_descriptions: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<u64>,
    markdown_description: String,
    scope: &'static str,
}

fn vscode_settings() -> impl Iterator<Item = (Declaration, Property)> {
    declarations().into_iter().filter_map(|declaration| {
        let scope = declaration.vscode?.scope;
        let (kind, default) = match &declaration.kind {
            Kind::Text { default } | Kind::Choice { default, .. } => ("string", json!(default)),
            Kind::Integer { default, .. } => ("integer", json!(default)),
            Kind::Boolean { default } => ("boolean", json!(default)),
            Kind::Paths { .. } => panic!("{}: VS Code has no list settings", declaration.key),
        };
        let (choices, enum_descriptions) = match &declaration.kind {
            Kind::Choice { choices, .. } => {
                let described = choices.iter().any(|choice| !choice.description.is_empty());
                (
                    Some(choices.iter().map(|choice| choice.value).collect()),
                    described.then(|| choices.iter().map(|choice| choice.description).collect()),
                )
            }
            _ => (None, None),
        };
        let range = match &declaration.kind {
            Kind::Integer { range, .. } => Some(range.clone()),
            _ => None,
        };
        let property = Property {
            kind,
            default,
            choices,
            enum_descriptions,
            minimum: range.as_ref().map(|range| *range.start()),
            maximum: range.as_ref().map(|range| *range.end()),
            markdown_description: declaration.vscode_description(),
            scope,
        };
        Some((declaration, property))
    })
}

fn settings_decl_json() -> String {
    let settings: Vec<DeclEntry> = vscode_settings()
        .map(|(declaration, property)| DeclEntry {
            key: declaration.key,
            client: !declaration.server,
            omit_empty: declaration.server && property.default == json!(""),
        })
        .collect();
    #[derive(Serialize)]
    struct DeclFile {
        #[serde(rename = "$comment")]
        comment: String,
        settings: Vec<DeclEntry>,
    }
    let decl = DeclFile {
        comment: format!(
            "Generated from server/src/lsp/settings/declaration.rs: do not edit, run `{UPDATE}`. \
             src/config.ts builds the server's settings (section `punie`, shared INTERFACES.md §2) \
             from VS Code's: the entries without `client: true`, leaving out an empty string where \
             `omitEmpty`. package.json's contributes.configuration is generated from the same table."
        ),
        settings,
    };
    serde_json::to_string_pretty(&decl).unwrap() + "\n"
}

/// `package.json` with its `contributes.configuration` replaced; the rest as it is. The file
/// is npm's formatting (two spaces), so the block is found by its indentation.
fn package_json(current: &str) -> String {
    // Written property by property: a `serde_json::Map` would sort the keys.
    let mut properties = serde_json::Map::new();
    let mut block =
        String::from("\"configuration\": {\n  \"title\": \"Punie\",\n  \"properties\": {");
    for (i, (declaration, property)) in vscode_settings().enumerate() {
        let key = format!("punie.{}", declaration.key);
        let value = serde_json::to_string_pretty(&property).unwrap();
        let comma = if i == 0 { "" } else { "," };
        block.push_str(&format!("{comma}\n    {key:?}: {}", indent(&value, 4)));
        properties.insert(key, serde_json::to_value(property).unwrap());
    }
    block.push_str("\n  }\n}");

    const OPEN: &str = "\n    \"configuration\": {\n";
    let start = current
        .find(OPEN)
        .expect("package.json has contributes.configuration")
        + 5;
    let end = start
        + current[start..]
            .find("\n    }")
            .expect("the configuration block closes at its indentation")
        + "\n    }".len();
    let res = format!(
        "{}{}{}",
        &current[..start],
        indent(&block, 4),
        &current[end..]
    );
    let parsed: Value = serde_json::from_str(&res).expect("package.json stays JSON");
    assert_eq!(
        parsed["contributes"]["configuration"]["properties"],
        Value::Object(properties)
    );
    res
}

fn indent(text: &str, spaces: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(spaces)))
}

/// Replaces the lines between the markers.
fn splice_table(text: &str, table: &str) -> String {
    let start = text
        .find(TABLE_START)
        .unwrap_or_else(|| panic!("no line `{TABLE_START}`"))
        + TABLE_START.len();
    let end = start
        + text[start..]
            .find(TABLE_END)
            .unwrap_or_else(|| panic!("no line `{TABLE_END}`"));
    format!("{}\n{table}{}", &text[..start], &text[end..])
}

/// Every setting the server reads, for docs/INTERFACES.md.
fn server_table() -> String {
    let mut res = String::from("| key | value | default | |\n|---|---|---|---|\n");
    for declaration in declarations()
        .iter()
        .filter(|declaration| declaration.server)
    {
        let (value, default) = match &declaration.kind {
            Kind::Text { default } => ("a string".to_owned(), shown(default)),
            Kind::Choice { default, choices } => (
                or_list(
                    &choices
                        .iter()
                        .map(|choice| shown(choice.value))
                        .collect::<Vec<_>>(),
                ),
                shown(default),
            ),
            Kind::Integer { default, range } => (
                format!("an integer from {} to {}", range.start(), range.end()),
                format!("`{default}`"),
            ),
            Kind::Boolean { default } => ("`true` or `false`".to_owned(), format!("`{default}`")),
            Kind::Paths { default } => ("a list of paths".to_owned(), (*default).to_owned()),
        };
        res.push_str(&format!(
            "| `{}` | {value} | {default} | {} |\n",
            declaration.key, declaration.description
        ));
    }
    res
}

/// The settings VS Code offers, for its README.
fn vscode_table() -> String {
    let mut res = String::from("| setting | default | |\n|---|---|---|\n");
    for (declaration, property) in vscode_settings() {
        let default = match &property.default {
            Value::String(text) => shown(text),
            other => format!("`{other}`"),
        };
        res.push_str(&format!(
            "| `punie.{}` | {default} | {} |\n",
            declaration.key, property.markdown_description
        ));
    }
    res
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        "empty".to_owned()
    } else {
        format!("`{value}`")
    }
}

fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The settings examples written by hand (INTERFACES.md §2, the Zed README) name declared
/// keys only, with accepted values, and show the default of every number, switch and policy.
#[test]
fn hand_written_examples_show_the_defaults() {
    let root = repository();
    let interfaces = std::fs::read_to_string(root.join("docs/INTERFACES.md")).unwrap();
    let example = json_block_after(&interfaces, "### Settings");
    check_example("docs/INTERFACES.md", &example);
    let zed = std::fs::read_to_string(root.join("editors/zed/README.md")).unwrap();
    let example = json_block_after(&zed, "### Settings");
    check_example(
        "editors/zed/README.md",
        &example["lsp"]["punie"]["initialization_options"],
    );
}

fn json_block_after(text: &str, heading: &str) -> Value {
    let after = &text[text.find(heading).unwrap_or_else(|| panic!("no {heading}"))..];
    let start = after.find("```json\n").expect("a JSON example") + "```json\n".len();
    let end = start + after[start..].find("```").unwrap();
    serde_json::from_str(&after[start..end]).expect("the example is JSON")
}

#[track_caller]
fn check_example(file: &str, example: &Value) {
    let declarations = declarations();
    let mut leaves = Vec::new();
    flatten("", example, &mut leaves);
    assert!(leaves.len() >= 8, "{file}: {leaves:?}");
    for (key, value) in leaves {
        let declaration = declarations
            .iter()
            .find(|declaration| declaration.server && declaration.key == key)
            .unwrap_or_else(|| panic!("{file}: `{key}` is not a setting"));
        match &declaration.kind {
            Kind::Text { .. } => assert!(value.is_string(), "{file}: {key}"),
            Kind::Choice { default, choices } => {
                assert!(
                    choices.iter().any(|choice| value == choice.value),
                    "{file}: {key} = {value}"
                );
                if !default.is_empty() {
                    assert_eq!(value, *default, "{file}: {key}");
                }
            }
            Kind::Integer { default, .. } => assert_eq!(value, *default, "{file}: {key}"),
            Kind::Boolean { default } => assert_eq!(value, *default, "{file}: {key}"),
            Kind::Paths { .. } => assert!(value.is_array(), "{file}: {key}"),
        }
    }
}

/// `{"sandbox": {"timeoutMs": 1}}` → `sandbox.timeoutMs`; lists are values.
fn flatten(prefix: &str, value: &Value, into: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, inner, into);
            }
        }
        _ => into.push((prefix.to_owned(), value.clone())),
    }
}
