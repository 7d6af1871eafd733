//! The fixture workspace of `punie eval`, compiled into the binary from
//! `tests/fixtures/workspace/` so that `punie eval` runs from any directory.
//!
//! A small Python project (package, tests, a script, README, config) built so that every Task 9
//! query has something to find. Each query gets a fresh copy in a temporary directory.

use std::path::Path;

use anyhow::Context;

/// Every file of the workspace: path relative to its root, then content.
/// Adding a file to `tests/fixtures/workspace/` means adding it here (a test checks that).
pub const FILES: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../../tests/fixtures/workspace/README.md"),
    ),
    (
        "config.py",
        include_str!("../../../tests/fixtures/workspace/config.py"),
    ),
    (
        "pyproject.toml",
        include_str!("../../../tests/fixtures/workspace/pyproject.toml"),
    ),
    (
        "scripts/stock_report.py",
        include_str!("../../../tests/fixtures/workspace/scripts/stock_report.py"),
    ),
    (
        "src/inventory/__init__.py",
        include_str!("../../../tests/fixtures/workspace/src/inventory/__init__.py"),
    ),
    (
        "src/inventory/cli.py",
        include_str!("../../../tests/fixtures/workspace/src/inventory/cli.py"),
    ),
    (
        "src/inventory/errors.py",
        include_str!("../../../tests/fixtures/workspace/src/inventory/errors.py"),
    ),
    (
        "src/inventory/models.py",
        include_str!("../../../tests/fixtures/workspace/src/inventory/models.py"),
    ),
    (
        "src/inventory/store.py",
        include_str!("../../../tests/fixtures/workspace/src/inventory/store.py"),
    ),
    (
        "tests/test_models.py",
        include_str!("../../../tests/fixtures/workspace/tests/test_models.py"),
    ),
    (
        "tests/test_store.py",
        include_str!("../../../tests/fixtures/workspace/tests/test_store.py"),
    ),
];

/// A fresh copy of the workspace in a temporary directory, removed when dropped.
pub fn materialize() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("punie-eval-")
        .tempdir()
        .context("creating a temporary workspace")?;
    write_files(dir.path())?;
    Ok(dir)
}

/// Writes every file of the workspace under `root`.
pub fn write_files(root: &Path) -> anyhow::Result<()> {
    for (path, content) in FILES {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, content)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The embedded list is the directory: a file added to the fixture without a line in
    /// `FILES` would silently be missing from every eval run.
    #[test]
    fn embedded_files_match_the_fixture_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workspace");
        let mut on_disk = Vec::new();
        collect(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                collect(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
}
