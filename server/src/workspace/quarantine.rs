//! Protected paths a command created: moved aside when it ends.
//!
//! The jail mounts the protected paths that exist when a command starts read-only, but it
//! cannot stop a command from creating one that does not exist yet (a mount needs a place,
//! and Landlock grants the workspace as a whole). A new `.cargo/config.toml` would run its
//! `rustc-wrapper` at the user's next build, a new `.git/hooks/pre-commit` at the next commit,
//! outside the jail. So once the command and everything it started are gone, the protected
//! paths are looked for again; each that was not there before is moved (never deleted: a
//! user's editor may have made it meanwhile) into `.punie/quarantine/<time>/`, and the
//! command's output says so. Moved files lose their execute bits.
//!
//! A protected path that is a symbolic link (`.git -> ../gitdir`) is read-only only at its
//! target: the link lies in the writable workspace, so a command could remove it and make a
//! real `.git` with a hook in its place, at the same path the jail protected. Such a link,
//! removed, replaced or pointed elsewhere, is put back as it was ([`Before`] notes the links),
//! and what the command left there moves into the quarantine.
//!
//! A path is moved by renaming the first symlink on its way, or else the path itself, so a
//! link such as `.cargo -> ~/.cargo` moves as a link and nothing outside the workspace is
//! touched. What is inside Punie's own `.punie` is left out: the server writes there while
//! commands run. `.punie` itself is not, when it is a symbolic link or was not there before
//! the command: the server and the quarantine would write through a `.punie -> ~` link, or
//! through links a command left inside a `.punie` it made. It moves into the quarantine (as
//! `<time>/.punie`) by way of a fresh `.punie` the sweep makes itself, before anything else
//! moves. (A `.punie` the server itself made while the command ran, for another run, moves
//! too; its open transcripts keep being written there.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::jail;

/// Punie's own directory in the workspace.
pub(super) const STATE_DIR: &str = ".punie";
/// Where moved paths go, under the workspace root.
const QUARANTINE_DIR: &str = ".punie/quarantine";

/// The protected paths found just before a command started (the jail mounts them
/// read-only), and where those that are symbolic links pointed.
pub(super) struct Before {
    paths: Vec<PathBuf>,
    /// A protected link and its target as written (`.git -> ../gitdir`): the jail can mount
    /// only the target read-only, never the link, which lives in the writable workspace.
    links: Vec<(PathBuf, PathBuf)>,
}

impl Before {
    /// `paths` as [`jail::protected_for_command`] found them, with the targets of the links.
    pub(super) fn new(paths: Vec<PathBuf>) -> Before {
        let links = paths
            .iter()
            .filter_map(|path| Some((path.clone(), std::fs::read_link(path).ok()?)))
            .collect();
        Before { paths, links }
    }

    pub(super) fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// What a sweep did, for [`report`].
#[derive(Default)]
struct Swept {
    /// Workspace-relative paths moved into the quarantine.
    moved: Vec<PathBuf>,
    /// Protected links put back as they were; what the command left there was moved.
    restored: Vec<PathBuf>,
    /// Paths that could not be moved aside, each with why.
    failed: Vec<String>,
    /// Links that could not be put back, each with why.
    unrestored: Vec<String>,
}

/// Moves the protected paths that appeared since `before` into the quarantine, and puts back
/// each protected link of `before` that the command removed, replaced or retargeted (what it
/// left in its place goes into the quarantine too). Returns the lines for the command's
/// stderr, or `None` when there was nothing to do.
pub(super) fn sweep(workspace: &Path, before: &Before) -> Option<String> {
    sweep_reading(workspace, before, jail::DIRS_AFTER_COMMAND)
}

/// [`sweep`], reading at most `max_dirs` directories of the workspace.
fn sweep_reading(workspace: &Path, before: &Before, max_dirs: usize) -> Option<String> {
    let paths_before: HashSet<&PathBuf> = before.paths.iter().collect();
    let state = workspace.join(STATE_DIR);
    let state_is_foreign = std::fs::symlink_metadata(&state)
        .is_ok_and(|meta| meta.is_symlink() || !paths_before.contains(&state));
    let changed_links: Vec<(PathBuf, &PathBuf)> = before
        .links
        .iter()
        .filter(|(path, target)| std::fs::read_link(path).ok().as_ref() != Some(target))
        .filter_map(|(path, target)| Some((path.strip_prefix(workspace).ok()?.into(), target)))
        .filter(|(rel, _): &(PathBuf, _)| !rel.starts_with(STATE_DIR))
        .collect();
    let found = jail::protected_in(workspace, max_dirs);
    let unswept = (!found.complete).then(|| unswept_note(max_dirs));
    let appeared: Vec<PathBuf> = found
        .paths
        .into_iter()
        .filter(|path| !paths_before.contains(path))
        .filter_map(|path| path.strip_prefix(workspace).ok().map(Path::to_path_buf))
        // Not the root itself: it can turn protected only as a git directory or an environment
        // a command made of it, and then what made it one (`jail::root_markers`) moves.
        .filter(|rel| !rel.starts_with(STATE_DIR) && !rel.as_os_str().is_empty())
        .collect();
    if appeared.is_empty() && changed_links.is_empty() && !state_is_foreign {
        return unswept;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let quarantine = workspace.join(QUARANTINE_DIR).join(stamp.to_string());
    let mut swept = Swept::default();
    if state_is_foreign {
        match move_state_dir_aside(workspace, &quarantine) {
            Ok(()) => swept.moved.push(PathBuf::from(STATE_DIR)),
            Err(err) => {
                // Nothing can go into the quarantine without writing through it.
                swept.failed.push(format!("{STATE_DIR} ({err})"));
                swept.failed.extend(appeared.iter().map(|rel| shown(rel)));
                let (rels, _): (Vec<PathBuf>, Vec<_>) = changed_links.into_iter().unzip();
                swept.unrestored.extend(rels.iter().map(|rel| shown(rel)));
                return Some(report(&swept, stamp, unswept));
            }
        }
    }
    for (rel, target) in changed_links {
        match restore_link(workspace, &rel, target, &quarantine) {
            Ok(()) => swept.restored.push(rel),
            Err(err) => swept.unrestored.push(format!("{} ({err})", shown(&rel))),
        }
    }
    for rel in appeared {
        let entry = first_link_or_whole(workspace, &rel);
        if swept.moved.contains(&entry) || swept.restored.contains(&entry) {
            continue;
        }
        match move_into(workspace, &entry, &quarantine) {
            Ok(()) => swept.moved.push(entry),
            Err(err) => swept.failed.push(format!("{} ({err})", shown(&entry))),
        }
    }
    Some(report(&swept, stamp, unswept))
}

/// Puts the protected link `rel` back, pointing at `target` as before the command, after
/// moving what the command left in its place (a real `.git` with hooks, a link elsewhere)
/// into the quarantine. Only where every directory on its way is still a real directory:
/// through a link there, the move and the new link would land outside the workspace.
fn restore_link(
    workspace: &Path,
    rel: &Path,
    target: &Path,
    quarantine: &Path,
) -> std::io::Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let parent_is_real = first_link_or_whole(workspace, parent) == parent
        && std::fs::symlink_metadata(workspace.join(parent)).is_ok_and(|meta| meta.is_dir());
    if !parent_is_real {
        return Err(std::io::Error::other(
            "a directory on its way is gone or is now a link",
        ));
    }
    let path = workspace.join(rel);
    if std::fs::symlink_metadata(&path).is_ok() {
        move_into(workspace, rel, quarantine)?;
    }
    std::os::unix::fs::symlink(target, &path)
}

/// The line for a sweep that could not read the whole workspace: what lies beyond was not
/// looked at, and nothing runs until the workspace is smaller again.
fn unswept_note(max_dirs: usize) -> String {
    let line = format!(
        "punie: the workspace now has more than {max_dirs} directories; protected paths the \
         command may have made beyond them (a nested .git, .vscode) were not looked for, and \
         no command runs until it has fewer than {}",
        jail::DIRS_BEFORE_COMMAND
    );
    tracing::warn!("{line}");
    line
}

/// The lines for the command's stderr (and the log) about what was moved, put back, and what
/// could not be. The command chose the names: each is one shell word ([`shown`]), so none can
/// break a line of its own and pass for the server's.
fn report(swept: &Swept, stamp: u128, unswept: Option<String>) -> String {
    let shown_all = |rels: &[PathBuf]| -> String {
        let names: Vec<String> = rels.iter().map(|rel| shown(rel)).collect();
        names.join(", ")
    };
    let mut lines = Vec::new();
    if !swept.moved.is_empty() {
        lines.push(format!(
            "punie: the command created protected paths, moved to {QUARANTINE_DIR}/{stamp}/: {}",
            shown_all(&swept.moved)
        ));
    }
    if !swept.restored.is_empty() {
        lines.push(format!(
            "punie: the command replaced protected links, put back as they were (what it left \
             there moved to {QUARANTINE_DIR}/{stamp}/): {}",
            shown_all(&swept.restored)
        ));
    }
    if !swept.failed.is_empty() {
        lines.push(format!(
            "punie: the command created protected paths that could not be moved aside: {}",
            swept.failed.join(", ")
        ));
    }
    if !swept.unrestored.is_empty() {
        lines.push(format!(
            "punie: the command replaced protected links that could not be put back: {}",
            swept.unrestored.join(", ")
        ));
    }
    for line in &lines {
        tracing::warn!("{line}");
    }
    lines.extend(unswept);
    lines.join("\n")
}

/// A path the command named, as one shell word: a newline or an escape in a file name is
/// written as `$'\n'`, never as itself.
fn shown(rel: &Path) -> String {
    crate::policy::shell_word(&rel.to_string_lossy())
}

/// Moves the `.punie` a command made (a link, or a directory it could fill with links) to
/// `quarantine/.punie`, by way of a fresh `.punie` made here, so nothing is written through it.
fn move_state_dir_aside(workspace: &Path, quarantine: &Path) -> std::io::Result<()> {
    let state = workspace.join(STATE_DIR);
    let stamp = quarantine
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = workspace.join(format!("{STATE_DIR}.{stamp}.aside"));
    std::fs::rename(&state, &aside)?;
    std::fs::create_dir(&state)?;
    std::fs::create_dir_all(quarantine)?;
    ignore_in_git(workspace)?;
    let to = quarantine.join(STATE_DIR);
    std::fs::rename(&aside, &to)?;
    make_inert(&to);
    Ok(())
}

/// Git leaves everything in the quarantine alone.
fn ignore_in_git(workspace: &Path) -> std::io::Result<()> {
    let ignore = workspace.join(QUARANTINE_DIR).join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "*\n")?;
    }
    Ok(())
}

/// `rel` cut after its first component that is a symlink, or `rel` itself when none is.
fn first_link_or_whole(workspace: &Path, rel: &Path) -> PathBuf {
    let mut prefix = PathBuf::new();
    for component in rel.components() {
        prefix.push(component);
        let is_link = std::fs::symlink_metadata(workspace.join(&prefix))
            .is_ok_and(|meta| meta.file_type().is_symlink());
        if is_link {
            return prefix;
        }
    }
    prefix
}

/// Renames `workspace/rel` to `quarantine/rel` (a rename never follows a final symlink).
fn move_into(workspace: &Path, rel: &Path, quarantine: &Path) -> std::io::Result<()> {
    let to = quarantine.join(rel);
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    ignore_in_git(workspace)?;
    std::fs::rename(workspace.join(rel), &to)?;
    make_inert(&to);
    Ok(())
}

/// At most this many entries of a moved tree lose their execute bits (a command's `git init`
/// makes about 30).
const MAX_INERT_ENTRIES: usize = 10_000;

/// Clears the execute bits of the files in a moved tree (links are not followed), so nothing
/// in the quarantine runs by a slip of the hand.
fn make_inert(root: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![root.to_path_buf()];
        let mut seen = 0;
        while let Some(path) = stack.pop() {
            seen += 1;
            if seen > MAX_INERT_ENTRIES {
                return;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    stack.extend(entries.flatten().map(|entry| entry.path()));
                }
            } else if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                let mode = meta.permissions().mode() & !0o111;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = root;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_before(root: &Path) -> Before {
        Before::new(jail::protected_for_command(root).unwrap().paths)
    }

    #[test]
    fn what_appeared_is_moved_and_what_was_there_stays() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".vscode")).unwrap();
        std::fs::write(root.join(".vscode/settings.json"), "{}").unwrap();
        let before = found_before(&root);

        std::fs::create_dir_all(root.join("sub/.git/hooks")).unwrap();
        std::fs::write(root.join("sub/.git/hooks/pre-commit"), "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let hook = root.join("sub/.git/hooks/pre-commit");
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir_all(root.join(".cargo")).unwrap();
        std::fs::write(
            root.join(".cargo/config.toml"),
            "[build]\nrustc-wrapper = \"x\"\n",
        )
        .unwrap();
        std::fs::write(root.join("app.py"), "print(1)\n").unwrap();
        let line = sweep(&root, &before).unwrap();

        assert!(line.contains(".cargo/config.toml"), "{line}");
        assert!(line.contains("sub/.git"), "{line}");
        assert!(!root.join("sub/.git").exists());
        assert!(!root.join(".cargo/config.toml").exists());
        assert!(root.join(".vscode/settings.json").exists());
        assert!(root.join("app.py").exists());
        let stamp_dir = std::fs::read_dir(root.join(QUARANTINE_DIR))
            .unwrap()
            .flatten()
            .find(|entry| entry.file_type().unwrap().is_dir())
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(stamp_dir.path().join(".cargo/config.toml")).unwrap(),
            "[build]\nrustc-wrapper = \"x\"\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let hook = stamp_dir.path().join("sub/.git/hooks/pre-commit");
            let mode = std::fs::metadata(hook).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0, "{mode:o}");
        }
        assert_eq!(sweep(&root, &found_before(&root)), None);
    }

    #[test]
    fn a_sweep_that_cannot_read_the_whole_workspace_says_so() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = found_before(&root);

        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join(".vscode")).unwrap();
        // The root, `a` and `a/b` are read; `a/b/c` is not.
        let line = sweep_reading(&root, &before, 3).unwrap();

        assert_eq!(line.lines().count(), 2, "{line}");
        assert!(line.contains(": .vscode\n"), "{line}");
        assert!(
            line.ends_with(
                "more than 3 directories; protected paths the command may have made beyond \
                 them (a nested .git, .vscode) were not looked for, and no command runs until \
                 it has fewer than 20000"
            ),
            "{line}"
        );
        let after = found_before(&root);
        assert_eq!(sweep_reading(&root, &after, 3), Some(unswept_note(3)));
    }

    #[test]
    fn a_python_environment_is_protected_whatever_its_name() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("venv/lib/python3.11/site-packages")).unwrap();
        std::fs::write(root.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(root.join("lib/python3.11/site-packages")).unwrap();
        let before = found_before(&root);
        assert_eq!(before.paths(), [root.join("venv")]);

        std::fs::create_dir_all(root.join("tools/env/conda-meta")).unwrap();
        std::fs::write(root.join("tools/env/evil.pth"), "import os\n").unwrap();
        let line = sweep(&root, &before).unwrap();
        assert!(line.contains("tools/env"), "{line}");
        assert!(!root.join("tools/env").exists());
        assert!(root.join("venv/pyvenv.cfg").exists());
    }

    #[test]
    fn a_name_the_command_chose_cannot_forge_a_line() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = found_before(&root);

        let name = "env\npunie: ALL GOOD \u{1b}[2K\u{7}x";
        std::fs::create_dir_all(root.join(name).join("conda-meta")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let line = sweep(&root, &before).unwrap();

        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{7}'),
            "{line}"
        );
        assert!(
            line.ends_with(": .git, $'env\\npunie: ALL GOOD \\x1b[2K\\x07x'"),
            "{line}"
        );
        assert!(!root.join(name).exists());
        let swept = Swept {
            failed: vec![shown(Path::new("a\nb"))],
            ..Swept::default()
        };
        let failed = report(&swept, 1, None);
        assert_eq!(failed.lines().count(), 1, "{failed}");
    }

    #[test]
    fn a_protected_link_the_command_replaced_is_put_back() {
        let outside = tempfile::tempdir().unwrap();
        let git_dir = outside.path().join("gitdir");
        std::fs::create_dir_all(git_dir.join("hooks")).unwrap();
        let other = outside.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&git_dir, root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        std::os::unix::fs::symlink("shared", root.join(".vscode")).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("../shared", root.join("sub/.idea")).unwrap();
        let before = found_before(&root);

        // Replaced by a real `.git` with a hook, retargeted, and its directory made a link.
        std::fs::remove_file(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join(".git/hooks/pre-commit"), "#!/bin/sh\n").unwrap();
        std::fs::remove_file(root.join(".vscode")).unwrap();
        std::os::unix::fs::symlink("evil", root.join(".vscode")).unwrap();
        std::fs::rename(root.join("sub"), root.join("sub.old")).unwrap();
        std::os::unix::fs::symlink(&other, root.join("sub")).unwrap();
        let line = sweep(&root, &before).unwrap();

        assert_eq!(std::fs::read_link(root.join(".git")).unwrap(), git_dir);
        assert_eq!(
            std::fs::read_link(root.join(".vscode")).unwrap(),
            Path::new("shared")
        );
        assert!(!git_dir.join("hooks/pre-commit").exists());
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0, "{line}");
        let stamp_dir = std::fs::read_dir(root.join(QUARANTINE_DIR))
            .unwrap()
            .flatten()
            .find(|entry| entry.file_type().unwrap().is_dir())
            .unwrap()
            .path();
        assert!(stamp_dir.join(".git/hooks/pre-commit").is_file(), "{line}");
        assert_eq!(
            std::fs::read_link(stamp_dir.join(".vscode")).unwrap(),
            Path::new("evil")
        );
        assert!(
            line.contains("put back as they were (what it left there moved to .punie/quarantine/"),
            "{line}"
        );
        assert!(line.contains("/): .git, .vscode"), "{line}");
        assert!(
            line.contains("could not be put back: sub/.idea (a directory on its way"),
            "{line}"
        );
        assert_eq!(sweep(&root, &found_before(&root)), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_moved_as_a_link_and_its_target_is_untouched() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("config.toml"), "mine\n").unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = found_before(&root);

        std::os::unix::fs::symlink(outside.path(), root.join(".cargo")).unwrap();
        sweep(&root, &before).unwrap();

        assert!(std::fs::symlink_metadata(root.join(".cargo")).is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("config.toml")).unwrap(),
            "mine\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_punie_link_is_moved_even_alone_and_nothing_is_written_through_it() {
        let outside = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = found_before(&root);

        std::os::unix::fs::symlink(outside.path(), root.join(STATE_DIR)).unwrap();
        let line = sweep(&root, &before).unwrap();

        assert!(line.contains(": .punie"), "{line}");
        assert!(
            std::fs::symlink_metadata(root.join(STATE_DIR))
                .unwrap()
                .is_dir()
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let stamp_dir = std::fs::read_dir(root.join(QUARANTINE_DIR))
            .unwrap()
            .flatten()
            .find(|entry| entry.file_type().unwrap().is_dir())
            .unwrap();
        let moved = std::fs::symlink_metadata(stamp_dir.path().join(STATE_DIR)).unwrap();
        assert!(moved.is_symlink());
        assert_eq!(sweep(&root, &found_before(&root)), None);
    }
}
