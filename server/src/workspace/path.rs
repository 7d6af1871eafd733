//! Path confinement: a tool path becomes a canonical path inside the workspace, or an error.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::ToolError;

/// Resolves `raw` (relative to `root`, or absolute inside it) to a canonical path inside the
/// canonical `root`. The final component need not exist (for writes); no component may be
/// a dangling symlink, and nothing may resolve outside the root.
pub fn resolve(root: &Path, raw: &str) -> Result<PathBuf, ToolError> {
    if raw.contains('\0') {
        return Err(ToolError::new("ValueError", "embedded null byte in path"));
    }
    if raw.is_empty() {
        return Err(ToolError::new(
            "FileNotFoundError",
            "No such file or directory: ''",
        ));
    }
    let root = root.canonicalize().map_err(|err| {
        ToolError::new(
            "OSError",
            format!("workspace root {} is not accessible: {err}", root.display()),
        )
    })?;
    let raw_path = Path::new(raw);
    let joined = if raw_path.is_absolute() {
        raw_path.to_path_buf()
    } else {
        root.join(raw_path)
    };

    // Lexical normalisation first, so that no `..` is ever handed to the file system:
    // what is checked below is exactly what is opened.
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::Normal(_) => {
                normal.push(component)
            }
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
        }
    }

    // Resolve the longest prefix that exists; the rest must not exist at all (a dangling
    // symlink "exists" for `symlink_metadata` but not for `canonicalize`).
    let mut existing = normal.clone();
    let mut missing = Vec::new();
    let canonical = loop {
        match existing.canonicalize() {
            Ok(canonical) => break canonical,
            Err(_) => match existing.file_name() {
                Some(name) => {
                    missing.push(name.to_owned());
                    existing.pop();
                }
                None => return Err(escape(raw)),
            },
        }
    };
    let mut res = canonical;
    for name in missing.iter().rev() {
        res.push(name);
        if fs::symlink_metadata(&res).is_ok() {
            return Err(ToolError::permission(format!(
                "cannot resolve '{raw}': it goes through a dangling symlink or an unreadable entry"
            )));
        }
    }
    if !res.starts_with(&root) {
        return Err(escape(raw));
    }
    Ok(res)
}

/// [`resolve`] for a working directory: it must exist and be a directory.
pub fn resolve_dir(root: &Path, raw: &str) -> Result<PathBuf, ToolError> {
    let res = resolve(root, raw)?;
    match fs::metadata(&res) {
        Ok(meta) if meta.is_dir() => Ok(res),
        Ok(_) => Err(ToolError::new(
            "NotADirectoryError",
            format!("Not a directory: '{raw}'"),
        )),
        Err(err) => Err(super::io_error(&err, raw)),
    }
}

/// `path` relative to `root` for messages, or the path itself when outside.
pub fn display_path(root: &Path, path: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    match path.strip_prefix(&root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn escape(raw: &str) -> ToolError {
    ToolError::permission(format!("path is outside the workspace: '{raw}'"))
}
