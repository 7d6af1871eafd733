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
const STATE_DIR: &str = ".punie";
/// Where moved paths go, under the workspace root.
const QUARANTINE_DIR: &str = ".punie/quarantine";

/// Moves the protected paths that appeared since `before` (those found just before the
/// command started, which the jail mounted read-only) into the quarantine. Returns the line
/// for the command's stderr, or `None` when nothing appeared.
pub(super) fn sweep(workspace: &Path, before: &[PathBuf]) -> Option<String> {
    sweep_reading(workspace, before, jail::DIRS_AFTER_COMMAND)
}

/// [`sweep`], reading at most `max_dirs` directories of the workspace.
fn sweep_reading(workspace: &Path, before: &[PathBuf], max_dirs: usize) -> Option<String> {
    let before: HashSet<&PathBuf> = before.iter().collect();
    let state = workspace.join(STATE_DIR);
    let state_is_foreign = std::fs::symlink_metadata(&state)
        .is_ok_and(|meta| meta.is_symlink() || !before.contains(&state));
    let found = jail::protected_in(workspace, max_dirs);
    let unswept = (!found.complete).then(|| unswept_note(max_dirs));
    let appeared: Vec<PathBuf> = found
        .paths
        .into_iter()
        .filter(|path| !before.contains(path))
        .filter_map(|path| path.strip_prefix(workspace).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.starts_with(STATE_DIR))
        .collect();
    if appeared.is_empty() && !state_is_foreign {
        return unswept;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let quarantine = workspace.join(QUARANTINE_DIR).join(stamp.to_string());
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    if state_is_foreign {
        match move_state_dir_aside(workspace, &quarantine) {
            Ok(()) => moved.push(PathBuf::from(STATE_DIR)),
            Err(err) => {
                // Nothing can go into the quarantine without writing through it.
                failed.push(format!("{STATE_DIR} ({err})"));
                failed.extend(appeared.iter().map(|rel| shown(rel)));
                return Some(report(&moved, &failed, stamp, unswept));
            }
        }
    }
    for rel in appeared {
        let entry = first_link_or_whole(workspace, &rel);
        if moved.contains(&entry) {
            continue;
        }
        match move_into(workspace, &entry, &quarantine) {
            Ok(()) => moved.push(entry),
            Err(err) => failed.push(format!("{} ({err})", shown(&entry))),
        }
    }
    Some(report(&moved, &failed, stamp, unswept))
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

/// The lines for the command's stderr (and the log) about what was moved and what could not
/// be. The command chose the names: each is one shell word ([`shown`]), so none can break a
/// line of its own and pass for the server's.
fn report(moved: &[PathBuf], failed: &[String], stamp: u128, unswept: Option<String>) -> String {
    let mut line = String::new();
    if !moved.is_empty() {
        let names: Vec<String> = moved.iter().map(|rel| shown(rel)).collect();
        line.push_str(&format!(
            "punie: the command created protected paths, moved to {}/{stamp}/: {}",
            QUARANTINE_DIR,
            names.join(", ")
        ));
    }
    if !failed.is_empty() {
        if !line.is_empty() {
            line.push('\n');
        }
        line.push_str(&format!(
            "punie: the command created protected paths that could not be moved aside: {}",
            failed.join(", ")
        ));
    }
    for part in line.lines() {
        tracing::warn!("{part}");
    }
    if let Some(unswept) = unswept {
        if !line.is_empty() {
            line.push('\n');
        }
        line.push_str(&unswept);
    }
    line
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

    #[test]
    fn what_appeared_is_moved_and_what_was_there_stays() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".vscode")).unwrap();
        std::fs::write(root.join(".vscode/settings.json"), "{}").unwrap();
        let before = jail::protected_for_command(&root).unwrap();

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
        assert_eq!(
            sweep(&root, &jail::protected_for_command(&root).unwrap()),
            None
        );
    }

    #[test]
    fn a_sweep_that_cannot_read_the_whole_workspace_says_so() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = jail::protected_for_command(&root).unwrap();

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
        let after = jail::protected_for_command(&root).unwrap();
        assert_eq!(sweep_reading(&root, &after, 3), Some(unswept_note(3)));
    }

    #[test]
    fn a_python_environment_is_protected_whatever_its_name() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("venv/lib/python3.11/site-packages")).unwrap();
        std::fs::write(root.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(root.join("lib/python3.11/site-packages")).unwrap();
        let before = jail::protected_for_command(&root).unwrap();
        assert_eq!(before, [root.join("venv")]);

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
        let before = jail::protected_for_command(&root).unwrap();

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
        let failed = report(&[], &[shown(Path::new("a\nb"))], 1, None);
        assert_eq!(failed.lines().count(), 1, "{failed}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_moved_as_a_link_and_its_target_is_untouched() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("config.toml"), "mine\n").unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let before = jail::protected_for_command(&root).unwrap();

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
        let before = jail::protected_for_command(&root).unwrap();

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
        assert_eq!(
            sweep(&root, &jail::protected_for_command(&root).unwrap()),
            None
        );
    }
}
