//! The user's own configuration, known by what it is rather than by the name a workspace
//! gives it: the policy file wherever `PUNIE_POLICY_FILE`, `XDG_CONFIG_HOME` or a link put it
//! (a dotfiles setup links `~/.config/punie` into `~/dotfiles`, which the user then opens).
//! Whatever of it lies inside a workspace is protected: the write tools refuse it
//! (`workspace::resolve_target`) and commands find it read-only ([`super::protected_in`]).
//! Nothing here is judged by name, so no spelling of the workspace reaches it unjudged.

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Where the user's policy file is looked for: `PUNIE_POLICY_FILE`; else
/// `$XDG_CONFIG_HOME/punie/policy.toml`; else `~/.config/punie/policy.toml` (on every OS, so
/// that one path is documented). `None` without a home directory.
pub fn policy_file_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PUNIE_POLICY_FILE") {
        return Some(PathBuf::from(path));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(config.join("punie").join("policy.toml"))
}

/// The user's configuration that lies inside `workspace`, spelled under `workspace` as given,
/// each to be kept whole: the policy file, or its directory when that is Punie's own
/// (`…/punie/`, the default layout; a file `PUNIE_POLICY_FILE` names may sit in any folder).
/// Where one holds the workspace's root (the workspace is Punie's configuration directory),
/// only the policy file is. Paths that do not exist yet are listed too: a write must not
/// create them.
pub fn user_config_in(workspace: &Path) -> Vec<PathBuf> {
    let Ok(root) = workspace.canonicalize() else {
        return Vec::new();
    };
    let inside = |path: &Path| path.starts_with(&root) && !root.starts_with(path);
    let mut res = Vec::new();
    if let Some(file) = policy_file_path().and_then(|path| resolve_missing(&path)) {
        let own_dir = std::env::var_os("PUNIE_POLICY_FILE")
            .is_none()
            .then(|| file.parent())
            .flatten()
            .filter(|dir| inside(dir));
        match own_dir {
            Some(dir) => res.push(dir.to_path_buf()),
            None if inside(&file) => res.push(file),
            None => {}
        }
    }
    res.into_iter()
        .filter_map(|path| Some(workspace.join(path.strip_prefix(&root).ok()?)))
        .collect()
}

/// How many links [`resolve_missing`] follows before it gives up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// `path` made absolute with every link followed, including a dangling one (a dotfiles link
/// whose target a write would create) and what does not exist yet; `None` for a loop.
fn resolve_missing(path: &Path) -> Option<PathBuf> {
    let mut path = lexical(&std::path::absolute(path).ok()?);
    for _ in 0..MAX_LINKS {
        let mut existing = path.clone();
        let mut missing: Vec<OsString> = Vec::new();
        let followed = loop {
            if let Ok(canonical) = existing.canonicalize() {
                return Some(
                    missing
                        .iter()
                        .rev()
                        .fold(canonical, |path, name| path.join(name)),
                );
            }
            if let Ok(target) = fs::read_link(&existing) {
                // A dangling link: where it leads, then the rest of the path.
                let leads = existing.parent()?.join(target);
                break missing
                    .iter()
                    .rev()
                    .fold(leads, |path, name| path.join(name));
            }
            missing.push(existing.file_name()?.to_owned());
            existing.pop();
        };
        path = lexical(&followed);
    }
    None
}

/// `path` (absolute) without `.` and `..`, taken lexically.
fn lexical(path: &Path) -> PathBuf {
    let mut res = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                res.pop();
            }
            Component::CurDir => {}
            other => res.push(other),
        }
    }
    res
}
