//! The user's own configuration, known by what it is rather than by the name a workspace
//! gives it: the policy file wherever `PUNIE_POLICY_FILE`, `XDG_CONFIG_HOME` or a link put it
//! (a dotfiles setup links `~/.config/punie` into `~/dotfiles`, which the user then opens),
//! and every top-level dot entry of the home folder, where it leads (`~/.config/git/config`
//! runs `core.fsmonitor` at every `git status`, `~/.config/autostart`, `~/.xprofile` and
//! `~/.vimrc` run at the next login or edit: an allowlist of what may be written there would
//! never be complete), with the entries of `~/.config` and `$XDG_CONFIG_HOME` that are links
//! (how dotfiles managers such as GNU Stow link them one by one).
//! Whatever of it lies inside a workspace is protected: the write tools refuse it
//! (`workspace::resolve_target`) and commands find it read-only ([`super::protected_in`]).
//! Nothing here is judged by name, so no spelling of the workspace reaches it unjudged.
//!
//! An entry that holds the workspace's root is not protected as a whole: a workspace inside
//! a dot entry (`~/.dotfiles`, `~/.local/src/proj`) was opened by the user to be worked on,
//! and what the home links into it (`~/.bashrc` → `~/.dotfiles/bashrc`) still is protected.
//! Links deeper than the top of the home and of `~/.config` are not followed.

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
/// (`…/punie/`, the default layout; a file `PUNIE_POLICY_FILE` names may sit in any folder),
/// and the home's configuration ([`home_config`]). None that holds the workspace's root (the
/// workspace is Punie's configuration directory, or a folder in `~/.local`): only the policy
/// file then. Paths that do not exist yet are listed too: a write must not create them.
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
    // The command's private directory may be in a dot entry (`TMPDIR=~/.tmp`): never
    // read-only.
    let temp = std::env::temp_dir().canonicalize().ok();
    res.extend(home_config().into_iter().filter(|entry| {
        inside(entry) && !temp.as_deref().is_some_and(|temp| temp.starts_with(entry))
    }));
    res.into_iter()
        .filter_map(|path| Some(workspace.join(path.strip_prefix(&root).ok()?)))
        .collect()
}

/// Whether `path` (canonical, inside the canonical `root`; it may not exist yet) is the user's
/// own configuration or beneath it: one of [`user_config_in`], or a dot entry of the home
/// that a write would create (`~/.xprofile`), when the workspace holds the home.
pub fn is_user_config(root: &Path, path: &Path) -> bool {
    let new_dot_entry = super::Host::current()
        .home
        .and_then(|home| home.canonicalize().ok())
        .and_then(|home| {
            let first = path.strip_prefix(&home).ok()?.components().next()?;
            let entry = home.join(first);
            let dot = first.as_os_str().as_encoded_bytes().starts_with(b".");
            Some(dot && entry.starts_with(root) && !root.starts_with(&entry))
        })
        .unwrap_or(false);
    new_dot_entry
        || user_config_in(root)
            .iter()
            .any(|config| path.starts_with(config))
}

/// How many entries of one directory [`home_config`] reads: a home holds dozens.
const MAX_ENTRIES: usize = 4096;

/// Where the home's configuration lies, links followed: each top-level dot entry of the home,
/// `$XDG_CONFIG_HOME`, and the links among the entries of `~/.config` and `$XDG_CONFIG_HOME`.
fn home_config() -> Vec<PathBuf> {
    let Some(home) = super::Host::current().home else {
        return Vec::new();
    };
    let entries = |dir: &Path| -> Vec<fs::DirEntry> {
        fs::read_dir(dir).map_or_else(
            |_| Vec::new(),
            |entries| entries.flatten().take(MAX_ENTRIES).collect(),
        )
    };
    let mut found: Vec<PathBuf> = entries(&home)
        .into_iter()
        .filter(|entry| entry.file_name().as_encoded_bytes().starts_with(b"."))
        .map(|entry| entry.path())
        .collect();
    let mut config_dirs = vec![home.join(".config")];
    config_dirs.extend(
        std::env::var_os("XDG_CONFIG_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from),
    );
    for dir in config_dirs {
        found.extend(
            entries(&dir)
                .into_iter()
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_symlink()))
                .map(|entry| entry.path()),
        );
        found.push(dir);
    }
    found
        .iter()
        .filter_map(|path| resolve_missing(path))
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
