//! Path confinement: a tool path becomes a canonical path inside the workspace that is not a
//! secret (`jail::SECRETS`, for the home folder opened as a workspace) nor on a pseudo file
//! system (`/proc`, `/sys`, for a workspace at `/`), or an error; [`resolve_target`] adds what
//! the policy judges it by (its workspace-relative form and the root it is relative to,
//! whether it exists, is executable, has other hard links, lies in a Python environment or a
//! git directory, or makes one, the root's own or above it included, is the user's own
//! configuration).

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::ToolError;
use crate::jail;
use crate::policy::Target;

/// A tool path resolved: the canonical path that will be opened, and the policy's view of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    pub path: PathBuf,
    pub target: Target,
}

/// [`resolve`], plus the facts the policy needs about the resolved path. What the policy
/// judges is what will be opened: the canonical path, never the spelling.
pub fn resolve_target(root: &Path, raw: &str) -> Result<ResolvedPath, ToolError> {
    let path = resolve(root, raw)?;
    let canonical_root = root
        .canonicalize()
        .map_err(|err| ToolError::new("OSError", format!("workspace root: {err}")))?;
    let rel = relative(&canonical_root, &path);
    // `path` is canonical: no symlink left to follow, so this is the file itself.
    let meta = fs::metadata(&path).ok();
    let secret = jail::secret_name(&rel);
    let target = Target {
        root: canonical_root.to_string_lossy().into_owned(),
        rel,
        spelled: raw.to_owned(),
        exists: meta.is_some(),
        is_dir: meta.as_ref().is_some_and(fs::Metadata::is_dir),
        executable: meta.as_ref().is_some_and(is_executable),
        hard_links: meta.as_ref().map_or(0, hard_links),
        in_virtual_env: jail::in_virtual_env(&path),
        in_git_dir: jail::in_git_dir(&canonical_root, &path),
        user_config: jail::is_user_config(&canonical_root, &path),
        secret,
    };
    Ok(ResolvedPath { path, target })
}

/// `path` (inside `root`, both canonical) as a `/`-separated relative path; `.` for the root.
fn relative(root: &Path, path: &Path) -> String {
    let rel: Vec<String> = path
        .strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    if rel.is_empty() {
        ".".to_owned()
    } else {
        rel.join("/")
    }
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn hard_links(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    if meta.is_file() { meta.nlink() } else { 1 }
}

#[cfg(not(unix))]
fn hard_links(_meta: &fs::Metadata) -> u64 {
    1
}

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
    let mut res = canonical.clone();
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
    if let Some(secret) = crate::jail::secret_at(&res) {
        return Err(ToolError::permission(format!(
            "'{raw}' is a secret ({secret}): Punie never reads or writes it"
        )));
    }
    // Judged on the part that exists: what is missing would be made on its file system. The
    // read or write checks the file it opens again.
    #[cfg(unix)]
    if let Err(err) = crate::plain_file::refuse_pseudo_at(&canonical)
        && let Some(crate::plain_file::Refusal::PseudoFileSystem { name }) =
            crate::plain_file::refusal(&err)
    {
        return Err(super::pseudo_file_system(raw, name));
    }
    Ok(res)
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
