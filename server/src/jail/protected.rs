//! The protected paths (`policy::PROTECTED`) that exist in a workspace: what the jail mounts
//! read-only before a command starts, and what the quarantine (`workspace/quarantine.rs`)
//! looks for again once it has ended.
//!
//! The walk reads the whole tree, however deep, but not [`SKIPPED`] directories (dependencies,
//! build output, caches) or pseudo file systems (`/proc`, `/sys`), and never a protected
//! directory (it is listed whole, its inside is protected with it). What it has not read it
//! cannot protect, and a command can make the tree as large as it likes, so it has no silent
//! budget: a walk stops after a number of directories read and says so ([`Found::complete`]),
//! and the caller fails closed. Before a command, more than [`DIRS_BEFORE_COMMAND`]
//! directories refuse the command ([`protected_for_command`]): a nested repository behind
//! thousands of directories a command made would otherwise have its hooks writable. After a
//! command the sweep reads up to [`DIRS_AFTER_COMMAND`], and says in the command's stderr when
//! even that was not enough.
//!
//! Cost: about eight system calls per directory read, 1–20 µs on an AMD EPYC as busy as it
//! was (debug build, `bench/protected_walk.sh`, docs/sandbox.md "Start-up cost"), so the
//! limit before a command costs 25–400 ms a walk, paid only by a workspace that large.

use std::path::{Path, PathBuf};

use super::{
    Failure, in_git_dir, in_virtual_env, is_git_dir, is_virtual_env, linked_git_dirs, root_markers,
    user_config_in,
};
use crate::policy::ProtectedRule;

/// The most directories read before a command starts; a workspace with more runs no command.
pub const DIRS_BEFORE_COMMAND: usize = 20_000;
/// The most directories read after a command, looking for protected paths it made: more
/// than before, so a command that adds directories up to the limit is still swept whole.
pub const DIRS_AFTER_COMMAND: usize = 100_000;

/// Directories the walk does not descend into: dependencies, build output and caches that
/// tools regenerate, where thousands of directories would cost every command milliseconds
/// and nobody keeps a repository, editor settings or a Python environment. Not `.tox` or
/// `.nox`: they hold real environments (`.tox/py311/pyvenv.cfg`) whose `.pth` files and
/// `bin/activate` run later, outside the jail; an environment is listed whole and never
/// entered, so they cost a few directories.
pub(super) const SKIPPED: &[&str] = &[
    "node_modules",
    "target",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
];

/// What one walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Sorted, each once; the workspace itself when it is protected ([`root_rule`]).
    pub paths: Vec<PathBuf>,
    /// The rule that protects the workspace's root itself, if one does: then `paths` holds
    /// the workspace, and commands get all of it read-only.
    pub root_rule: Option<&'static ProtectedRule>,
    /// The directories read, the root first: where a protected path could appear next.
    pub dirs: Vec<PathBuf>,
    /// Every directory was read; `false` when the walk stopped at its limit with directories
    /// left unread (what lies there is not in `paths`).
    pub complete: bool,
}

/// The protected paths of `workspace` before a command starts, for the jail to mount
/// read-only; refused when the workspace has more than [`DIRS_BEFORE_COMMAND`] directories
/// to read, since a protected path the walk did not reach would be writable.
pub fn protected_for_command(workspace: &Path) -> Result<Found, Failure> {
    let found = protected_in(workspace, DIRS_BEFORE_COMMAND);
    if !found.complete {
        return Err(Failure::Refused(format!(
            "the workspace has more than {DIRS_BEFORE_COMMAND} directories (not counting {}), \
             too many to find every protected path in it (a nested repository's .git, .vscode, \
             a Python environment), so no command runs: one it missed could be changed and run \
             later outside the jail. Remove the directories the workspace does not need (a \
             command may have made them) or open a smaller folder.",
            SKIPPED.join(", ")
        )));
    }
    Ok(found)
}

/// The protected paths that exist in `workspace` (not inside [`SKIPPED`] directories), reading
/// at most `max_dirs` directories, breadth first: what a command must not change even though
/// it may write the workspace (a nested repository's hooks as much as the top one's, a Python
/// environment or a git directory whatever its name, the git directory a `.git` file names,
/// the user's own configuration wherever it lies: [`user_config_in`]).
/// Symlinks are not followed (a link that is itself protected is listed; its target is
/// resolved when it is mounted). Rules about a file's facts (executables, hard links) are the
/// permission prompt's, not the jail's.
pub fn protected_in(workspace: &Path, max_dirs: usize) -> Found {
    let mut paths = Vec::new();
    let mut dirs = Vec::new();
    let mut queue = std::collections::VecDeque::from([workspace.to_path_buf()]);
    while let Some(dir) = queue.pop_front() {
        if dirs.len() == max_dirs {
            queue.push_front(dir);
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            dirs.push(dir);
            continue;
        };
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            let judged = judge_entry(workspace, &entry.path(), is_dir);
            paths.extend(judged.protected);
            if judged.walk_into {
                queue.push_back(entry.path());
            }
        }
        dirs.push(dir);
    }
    paths.extend(root_protected(workspace));
    let root_rule = root_rule(workspace);
    if root_rule.is_some() {
        paths.push(workspace.to_path_buf());
    }
    paths.sort();
    paths.dedup();
    Found {
        paths,
        root_rule,
        dirs,
        complete: queue.is_empty(),
    }
}

/// The protected rule the workspace's root itself falls under, as the write tools judge it
/// (`policy::protected_rule` of the root, the folders above it included): its canonical path
/// names a protected folder (`.git`, `.github/workflows`, `.vscode`, `.venv`: it is or lies
/// in one), or it or a folder above it is a git directory or a Python environment
/// ([`in_git_dir`], [`in_virtual_env`]). A few `stat`s per folder above it.
///
/// Such a root is not mounted read-only piece by piece but whole: the jail's plan then takes
/// the workspace from the writable paths to the readable ones (`Plan::protect`), so that
/// mounts, Landlock and the helper's metadata checks all leave it as it is. Commands still
/// run (`git log` in a bare repository, ruff on a `.github` folder); what they try to write
/// there fails with a read-only file system or a permission error. Refusing them instead
/// would refuse the typed tools and navigation too, which only read.
pub fn root_rule(workspace: &Path) -> Option<&'static ProtectedRule> {
    let root = workspace.canonicalize().ok()?;
    let target = crate::policy::Target {
        root: root.to_string_lossy().into_owned(),
        exists: true,
        is_dir: true,
        in_virtual_env: in_virtual_env(&root),
        in_git_dir: in_git_dir(&root, &root),
        ..crate::policy::Target::new_file(".")
    };
    crate::policy::protected_rule(&target)
}

/// What the walk makes of one entry of a directory it reads.
#[derive(Debug, Default)]
pub struct Judged {
    /// The protected paths the entry is or holds directly: itself when protected whole, the
    /// children a two-part rule names (`.github/workflows`), the git directories a `.git`
    /// file leads to.
    pub protected: Vec<PathBuf>,
    /// The walk reads it too: a directory that is neither protected whole nor [`SKIPPED`], nor
    /// on a pseudo file system (`/proc` and `/sys` of a workspace at `/`: the kernel's tree,
    /// where no command makes a repository or an environment, and where the walk would spend
    /// its limit and refuse every command).
    pub walk_into: bool,
}

/// Judges `path`, an entry of a directory under `workspace` (`is_dir` as the directory
/// listing says, links not followed), as [`protected_in`] does for every entry it reads; so
/// a watcher that learns of one new entry judges it exactly as the next walk would.
pub fn judge_entry(workspace: &Path, path: &Path, is_dir: bool) -> Judged {
    use crate::policy::{PROTECTED, Pattern};
    let folded = |name: &std::ffi::OsStr| {
        name.to_string_lossy()
            .trim_end_matches(['.', ' '])
            .to_ascii_lowercase()
    };
    let patterns = || PROTECTED.iter().flat_map(|rule| rule.patterns);
    let Some(name) = path.file_name().map(folded) else {
        return Judged::default();
    };
    let mut protected = Vec::new();
    let whole = patterns().any(|pattern| match pattern {
        Pattern::Component(name_protected) => name == *name_protected,
        Pattern::Suffix(suffix) => name.ends_with(suffix),
        Pattern::VirtualEnv => is_dir && is_virtual_env(path),
        Pattern::GitDir => is_dir && is_git_dir(path),
        _ => false,
    });
    if name == ".git" {
        // A worktree's or submodule's git directory, however deep or named.
        protected.extend(linked_git_dirs(workspace, path));
    }
    if whole {
        protected.push(path.to_path_buf());
        return Judged {
            protected,
            walk_into: false,
        };
    }
    for pattern in patterns() {
        if let Pattern::Components([first, second, ..]) = pattern
            && name == *first
            && let Ok(children) = std::fs::read_dir(path)
        {
            protected.extend(
                children
                    .flatten()
                    .filter(|child| folded(&child.file_name()) == *second)
                    .map(|child| child.path()),
            );
        }
    }
    Judged {
        protected,
        walk_into: is_dir
            && !SKIPPED.contains(&name.as_str())
            && !crate::plain_file::is_on_pseudo_file_system(path),
    }
}

/// The protected paths that are about the workspace's root rather than one entry: the user's
/// own configuration, wherever it lies (by what it is, not by its name), and what makes the
/// root itself a git directory or an environment.
pub fn root_protected(workspace: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = user_config_in(workspace)
        .into_iter()
        .filter(|path| path.exists())
        .collect();
    paths.extend(root_markers(workspace));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace at `/`: the walk, the sweep after a command and the watcher during it leave
    /// the kernel's trees out, as navigation's walk does.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_walk_leaves_pseudo_file_systems_out() {
        let root = Path::new("/");
        for kernels in ["/proc", "/sys"] {
            assert!(
                !judge_entry(root, Path::new(kernels), true).walk_into,
                "{kernels}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(judge_entry(root, dir.path(), true).walk_into);
    }

    #[test]
    fn protected_paths_are_found_however_deep() {
        let ws = tempfile::tempdir().unwrap();
        for dir in [
            ".git/hooks",
            ".VSCode",
            ".github/workflows",
            "src/.idea",
            "node_modules/x/.git",
            "target/debug/.vscode",
            "vendor/lib/.git/hooks",
            "packages/app/.github/workflows",
            "a/b/c/.git",
            "a/b/c/d/e/f/g/.git/hooks",
        ] {
            std::fs::create_dir_all(ws.path().join(dir)).unwrap();
        }
        std::fs::write(ws.path().join(".envrc"), "").unwrap();
        std::fs::write(ws.path().join("README.md"), "").unwrap();
        std::fs::write(ws.path().join("team.code-workspace"), "").unwrap();
        std::os::unix::fs::symlink(ws.path().join("vendor"), ws.path().join("linked")).unwrap();
        let found = protected_in(ws.path(), DIRS_BEFORE_COMMAND);
        assert!(found.complete);
        assert_eq!(
            found.paths,
            [
                ".VSCode",
                ".envrc",
                ".git",
                ".github/workflows",
                "a/b/c/.git",
                "a/b/c/d/e/f/g/.git",
                "packages/app/.github/workflows",
                "src/.idea",
                "team.code-workspace",
                "vendor/lib/.git",
            ]
            .map(|rel| ws.path().join(rel))
        );
    }

    #[test]
    fn a_walk_cut_short_says_so_and_a_command_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        for dir in ["a/.git", "b", "c/d"] {
            std::fs::create_dir_all(ws.path().join(dir)).unwrap();
        }
        // The root, `a`, `b`, `c` and `c/d`: five directories read.
        let whole = protected_in(ws.path(), 5);
        assert!(whole.complete);
        assert_eq!(whole.paths, [ws.path().join("a/.git")]);
        assert!(!protected_in(ws.path(), 4).complete);

        for i in 0..DIRS_BEFORE_COMMAND {
            std::fs::create_dir(ws.path().join(format!("j{i}"))).unwrap();
        }
        let Err(Failure::Refused(message)) = protected_for_command(ws.path()) else {
            panic!("a command ran in a workspace the walk could not read whole");
        };
        assert!(message.contains("more than 20000 directories"), "{message}");
    }
}
