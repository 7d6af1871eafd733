//! Directories protected by what they hold, whatever their name: a Python environment (its
//! `.pth` files and `bin/activate` run outside the jail at the next `python`) and a git
//! directory (its `config` and `hooks/` run at the next git command). The write tools'
//! policy (`workspace::resolve_target`) and the commands' read-only mounts ([`super::protected_in`])
//! ask the same questions here, of the workspace's root and the folders above it too
//! ([`in_git_dir`], [`in_virtual_env`]); the write tools also ask what a directory becomes
//! once the write adds its name, so that none is built piece by piece.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// Whether `dir` is a Python environment: holds `pyvenv.cfg` or `conda-meta`, whatever its
/// name.
pub fn is_virtual_env(dir: &Path) -> bool {
    becomes_virtual_env(dir, None)
}

/// Whether `dir` is a Python environment once it also holds `added` (a name a write is about
/// to create in it): a write is judged by what its directories will be after it.
pub fn becomes_virtual_env(dir: &Path, added: Option<&OsStr>) -> bool {
    crate::policy::VIRTUAL_ENV_MARKERS
        .iter()
        .any(|marker| holds(dir, marker, added))
}

/// Whether `dir` may be a git directory, whatever its name (a bare `.bare/`, `repo.git/`, a
/// linked worktree's `worktrees/<name>/`): git's own test (`is_git_directory`) wants a
/// `HEAD`, and `objects/` and `refs/` there or in the directory its `commondir` file names.
/// Its `config` and `hooks/` run programs at the user's next git command.
pub fn is_git_dir(dir: &Path) -> bool {
    becomes_git_dir(dir, None)
}

/// Whether `dir` may be a git directory once it also holds `added` (a name a write is about
/// to create in it): `config`, `objects/` and `refs/` written one by one are no git
/// directory until the last of them and `HEAD` are there.
pub fn becomes_git_dir(dir: &Path, added: Option<&OsStr>) -> bool {
    let has = |name: &str| holds(dir, name, added);
    has("HEAD") && (has("commondir") || (has("objects") && has("refs")))
}

/// Whether `path` (canonical, it may not exist yet) lies in a git directory once it is
/// written: it or a directory above it is one, or becomes one with the next name on the way
/// added ([`becomes_git_dir`]: `src/HEAD` written last makes `src/` one), up to the file
/// system's root, so a workspace `root` that is or lies in one protects all it holds. One
/// exception, above `root`: a linked worktree made inside a bare repository
/// (`repo.git/main`) holding `root` is the work tree's ([`is_worktree_of`]).
pub fn in_git_dir(root: &Path, path: &Path) -> bool {
    on_the_way(path, |dir, added| {
        becomes_git_dir(dir, added) && (dir.starts_with(root) || !is_worktree_of(dir, root))
    })
}

/// The names git reads inside a git directory that may be directories: a workspace in one of
/// them is git's own (`hooks/`, a worktree's `config.worktree` under `worktrees/`, a rebase's
/// `exec` lines under `rebase-merge/`), whatever `.git` entry it holds.
const GIT_DIR_SUBDIRS: &[&str] = &[
    "objects",
    "refs",
    "hooks",
    "info",
    "logs",
    "branches",
    "remotes",
    "modules",
    "worktrees",
    "rr-cache",
    "rebase-merge",
    "rebase-apply",
    "sequencer",
    "reftable",
    "lfs",
    "svn",
];

/// Whether `root`, below the git directory `git_dir`, lies in a linked worktree of it, where
/// git runs nothing from: a directory on the way (`root` included) holds a `.git` file whose
/// `gitdir:` names a directory in `git_dir`'s `worktrees/`, as `git worktree add` writes it,
/// and that directory is not in one of the folders git reads ([`GIT_DIR_SUBDIRS`]). Any
/// other `.git` (a folder, a file naming elsewhere, one planted in `hooks/`) is no worktree:
/// what holds it stays git's.
fn is_worktree_of(git_dir: &Path, root: &Path) -> bool {
    let Ok(below) = root.strip_prefix(git_dir) else {
        return false;
    };
    let in_git_own_folder = below.components().next().is_some_and(|first| {
        GIT_DIR_SUBDIRS
            .iter()
            .any(|name| first.as_os_str().eq_ignore_ascii_case(name))
    });
    if in_git_own_folder {
        return false;
    }
    let worktrees = git_dir.join("worktrees");
    root.ancestors()
        .take_while(|between| *between != git_dir)
        .any(|between| names_worktree_in(&between.join(".git"), &worktrees))
}

/// Whether `dot_git` is a `.git` file whose `gitdir:` line names a directory right inside
/// `worktrees`.
fn names_worktree_in(dot_git: &Path, worktrees: &Path) -> bool {
    let is_file = fs::symlink_metadata(dot_git).is_ok_and(|meta| meta.is_file());
    match (
        is_file.then(|| read_pointer(dot_git, "gitdir:")).flatten(),
        worktrees.canonicalize(),
    ) {
        (Some(named), Ok(worktrees)) => {
            named.parent() == Some(worktrees.as_path()) && named.is_dir()
        }
        _ => false,
    }
}

/// The path the first line of `file` names after `prefix` (a `.git` file's `gitdir:`, a
/// `commondir`), from the file's directory, links followed.
fn read_pointer(file: &Path, prefix: &str) -> Option<PathBuf> {
    use crate::plain_file::IfLonger;
    // Longer than any path a `.git` file holds: a huge file is not read whole.
    const MAX_POINTER_BYTES: u64 = 4096;
    // A regular file only, opened without blocking: a command may leave a FIFO here, and
    // every later command's walk reads it.
    let opened = crate::plain_file::open_no_follow(file).ok()?;
    let bytes = crate::plain_file::read(opened, MAX_POINTER_BYTES, IfLonger::Cut).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let named = text.lines().next()?.strip_prefix(prefix)?.trim();
    file.parent()?.join(named).canonicalize().ok()
}

/// Whether `path` (canonical, it may not exist yet) lies in a Python environment once it is
/// written: it or a directory above it is one, or becomes one with the next name on the way
/// added ([`becomes_virtual_env`]), up to the file system's root.
pub fn in_virtual_env(path: &Path) -> bool {
    on_the_way(path, becomes_virtual_env)
}

/// Whether `path` or a directory above it is `kind` once `path` is written: the write makes
/// each missing name on the way, so each directory is judged with the next name added.
/// A few `stat`s per directory, most of them of names that are not there.
fn on_the_way(path: &Path, kind: impl Fn(&Path, Option<&OsStr>) -> bool) -> bool {
    path.ancestors().any(|dir| {
        let added = path
            .strip_prefix(dir)
            .ok()
            .and_then(|rest| rest.components().next())
            .map(std::path::Component::as_os_str);
        kind(dir, added)
    })
}

/// Whether `dir` holds `name`, or will once `added` is made in it. `added` compares without
/// regard to ASCII case, as `HEAD` does on the file systems (macOS, Windows) where `head` is
/// the same name.
fn holds(dir: &Path, name: &str, added: Option<&OsStr>) -> bool {
    added.is_some_and(|added| added.eq_ignore_ascii_case(name))
        || fs::symlink_metadata(dir.join(name)).is_ok()
}

/// The entries that make the workspace's root a git directory or a Python environment, when
/// it is one: its `HEAD` (or `commondir`), `pyvenv.cfg` or `conda-meta`. A root that already
/// is one is read-only to commands as a whole (`protected::root_rule`); a command that makes
/// an ordinary root one (a `HEAD` beside `objects/` and `refs/`, a `conda-meta/`) leaves
/// these as new protected paths, moved aside after it, and the root is none again. Not
/// `config` or `hooks/`: a project's own `config/` would move.
pub fn root_markers(workspace: &Path) -> Vec<PathBuf> {
    let mut names: Vec<&str> = Vec::new();
    if is_git_dir(workspace) {
        names.extend(["HEAD", "commondir"]);
    }
    if is_virtual_env(workspace) {
        names.extend(crate::policy::VIRTUAL_ENV_MARKERS);
    }
    names
        .into_iter()
        .map(|name| workspace.join(name))
        .filter(|path| fs::symlink_metadata(path).is_ok())
        .collect()
}

/// The git directories inside `workspace` (not the workspace itself) that the `.git` file
/// `dot_git` leads to: its `gitdir:` line's, and that one's `commondir` (where a linked
/// worktree's hooks and config live), each as the outermost git directory that holds it
/// (`.bare` for `.bare/worktrees/main`, `.git` for a submodule's `.git/modules/sub`), spelled
/// under `workspace` as given. So what a `.git` file names is the same entry as the one a
/// walk finds, and a `.git` file a command writes never makes part of a git directory look
/// new. Empty for a `.git` directory or anything else.
pub fn linked_git_dirs(workspace: &Path, dot_git: &Path) -> Vec<PathBuf> {
    let Ok(canonical) = workspace.canonicalize() else {
        return Vec::new();
    };
    if !fs::symlink_metadata(dot_git).is_ok_and(|meta| meta.is_file()) {
        return Vec::new();
    }
    let Some(git_dir) = read_pointer(dot_git, "gitdir:") else {
        return Vec::new();
    };
    let common = read_pointer(&git_dir.join("commondir"), "");
    let mut dirs: Vec<PathBuf> = [Some(git_dir), common]
        .into_iter()
        .flatten()
        .filter_map(|dir| {
            let outermost = dir
                .ancestors()
                .take_while(|dir| *dir != canonical && dir.starts_with(&canonical))
                .filter(|dir| is_git_dir(dir))
                .last()?;
            Some(workspace.join(outermost.strip_prefix(&canonical).ok()?))
        })
        .collect();
    dirs.dedup();
    dirs
}
