//! `<workspace>/.punie/`: what Punie keeps in a workspace (transcripts, the last session,
//! answers). They hold the user's code, tool outputs and the model's words, so they must not
//! end up in a commit: the directory carries its own `.gitignore` that ignores everything in
//! it, itself included, written whenever Punie creates something there. A `.gitignore` the
//! user already has there is left as it is.

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
/// directory gets its `.gitignore`.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(state) = dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == STATE_DIR))
    {
        ignore_in_git(state)?;
    }
    Ok(())
}

fn ignore_in_git(state: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(state.join(".gitignore"))
    {
        Ok(mut file) => file.write_all(GITIGNORE.as_bytes()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_ignores_itself_and_keeps_a_users_gitignore() {
        let root = tempfile::tempdir().unwrap();
        create_dir(&state_dir(root.path()).join("transcripts")).unwrap();
        let ignore = state_dir(root.path()).join(".gitignore");
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), GITIGNORE);
        std::fs::write(&ignore, "mine\n").unwrap();
        create_dir(&state_dir(root.path()).join("answers")).unwrap();
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "mine\n");
        // Elsewhere nothing is added.
        create_dir(&root.path().join("logs")).unwrap();
        assert!(!root.path().join("logs/.gitignore").exists());
        assert!(!root.path().join(".gitignore").exists());
    }
}
