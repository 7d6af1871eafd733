//! `<workspace>/.punie/`: what Punie keeps in a workspace (transcripts, the last session,
//! answers). They hold the user's code, tool outputs and the model's words, so no other local
//! user may read them (the directory is `0o700`, its files `0o600`), and they must not end up
//! in a commit: the directory carries its own `.gitignore` that ignores everything in
//! it, itself included, written whenever Punie creates something there. Punie owns that file:
//! one with other content (a cloned repository's `!*`, which would make every transcript
//! committable) is replaced. Being the `.gitignore` nearest to what Punie writes, it wins over
//! every other one, and since it excludes the directories in `.punie`, git never reads one
//! further down.
//!
//! A command may write the workspace, so `.punie`, or a directory in it, can be a symbolic
//! link a command made (`ln -s ~ .punie`) before Punie first created it. Punie never follows
//! one there: it refuses with an error that says so (the transcript is then not written, a
//! session not saved), and the quarantine moves such a link aside after the command
//! (`workspace/quarantine.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The name of the directory.
const STATE_DIR: &str = ".punie";

const GITIGNORE: &str =
    "# Punie's transcripts, sessions and answers: not for version control.\n*\n";

/// `<workspace_root>/.punie`.
pub fn state_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join(STATE_DIR)
}

/// Creates `dir` and its parents; when `dir` is inside a `.punie` directory (or is one), that
/// directory gets its `.gitignore`, and neither it nor a directory between it and `dir` may be
/// a symbolic link, before or after.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let state = dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == STATE_DIR));
    if let Some(state) = state {
        refuse_links(state, dir)?;
    }
    crate::own_dirs::create(dir)?;
    if let Some(state) = state {
        refuse_links(state, dir)?;
        crate::own_dirs::keep_private(state);
        ignore_in_git(state)?;
    }
    Ok(())
}

/// An error when `state` or a directory between it and `dir` is a symbolic link.
fn refuse_links(state: &Path, dir: &Path) -> std::io::Result<()> {
    let link = dir
        .ancestors()
        .take_while(|path| path.starts_with(state))
        .find(|path| std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_symlink()));
    match link {
        Some(link) => Err(std::io::Error::other(format!(
            "{} is a symbolic link, and Punie never follows one in its state directory \
             (a command may have made it); remove it",
            link.display()
        ))),
        None => Ok(()),
    }
}

/// Makes `state/.gitignore` Punie's, unless it already is (read as any stored file: a link or
/// a FIFO there is replaced, never followed or waited on).
fn ignore_in_git(state: &Path) -> std::io::Result<()> {
    let path = state.join(".gitignore");
    let current = super::session::read_stored(&path, GITIGNORE.len() as u64)
        .ok()
        .flatten();
    if current.as_deref() == Some(GITIGNORE.as_bytes()) {
        return Ok(());
    }
    crate::atomic_file::replace(&path, |file| file.write_all(GITIGNORE.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_ignores_itself_whatever_was_there() {
        let root = tempfile::tempdir().unwrap();
        create_dir(&state_dir(root.path()).join("transcripts")).unwrap();
        let ignore = state_dir(root.path()).join(".gitignore");
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), GITIGNORE);
        std::fs::write(&ignore, "!*\n").unwrap();
        create_dir(&state_dir(root.path()).join("answers")).unwrap();
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), GITIGNORE);
        // Elsewhere nothing is added.
        create_dir(&root.path().join("logs")).unwrap();
        assert!(!root.path().join("logs/.gitignore").exists());
        assert!(!root.path().join(".gitignore").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_state_directory_is_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), state_dir(root.path())).unwrap();
        let err = create_dir(&state_dir(root.path()).join("transcripts")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        std::fs::remove_file(state_dir(root.path())).unwrap();
        std::fs::create_dir(state_dir(root.path())).unwrap();
        std::os::unix::fs::symlink(outside.path(), state_dir(root.path()).join("answers")).unwrap();
        let err = create_dir(&state_dir(root.path()).join("answers")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let written: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
        assert!(written.is_empty(), "written outside: {written:?}");
    }
}
