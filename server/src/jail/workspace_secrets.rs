//! The files of a workspace a reader-class program must not read: those named like a secret
//! ([`secret_name`]: `.env`, a private key, `.aws/…`) and where a link to a file named like one
//! leads (`settings_local.py -> .env`, `corp.py -> ~/.netrc`). The language server answers
//! read-class tools without a question, so its jail hides these from it ([`super::Reach`]);
//! `read_file` asks before reading them.
//!
//! A jail's rules are fixed when the program starts, and Landlock hides a path inside a granted
//! directory by granting that directory's entries one by one (`linux::grant`): an entry made
//! there later is not readable, and a secret made later anywhere is. So the snapshot also holds
//! the listing of every directory granted entry by entry, and a program whose snapshot no longer
//! matches the workspace ([`WorkspaceSecrets`] compares equal) is started again.
//!
//! What is hidden is decided by where a secret lies, not by where a link to it lies: Landlock
//! checks the file a link leads to. So the walk reads every directory the reader may read,
//! never following a link, and judges every entry there: no directory is exempt for how it
//! looks. A repository can fake every marker of a directory that tools fill (a `pyvenv.cfg`,
//! a git directory's layout, a name such as `node_modules`): when the walk skipped them,
//! `config/` holding a `pyvenv.cfg` left `config/.env` readable, and `hover` printed its key
//! through `config/settings_local.py -> .env` (red team round 10). So a marker may only hide
//! more, never less: a directory with a [`HIDDEN_WHOLE`] name (dependencies of other languages,
//! build output: they can hold more directories than the walk reads, and no Python tool reads
//! them) is hidden whole, not read, and a faked name only hides more of the repository from
//! ty. Python environments, git directories and caches are walked like any directory: ty
//! resolves third-party imports in the workspace's `.venv`, which it must then read, and
//! nothing the server can check tells a real environment from a shipped one; walking costs
//! time, where trusting a marker cost the secret. The walk stops after [`MAX_DIRS`]: a
//! workspace it could not read whole gets no snapshot, and the caller runs no reader there
//! (fail closed).
//!
//! Cost, paid by every navigation call (debug build, an AMD EPYC shared with other builds,
//! `workspace_secrets` timed in a test): 1.4 ms for Punie's `server/src`; 62 ms for a workspace
//! holding a copy of Punie's `.venv` (431 directories, 5,180 entries); 88 ms for the whole Punie
//! checkout (its `.venv` and `.git` walked, `target/` and `node_modules/` hidden).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::secret_name;

/// Directories hidden from a reader whole, not read: dependencies of other languages and build
/// output, which no Python tool reads and which can hold more directories than [`MAX_DIRS`].
const HIDDEN_WHOLE: &[&str] = &["node_modules", "target"];

/// The most directories read; a larger workspace gets no snapshot.
pub(super) const MAX_DIRS: usize = super::DIRS_BEFORE_COMMAND;

/// What a reader in the workspace must not read, and what its jail depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceSecrets {
    /// Canonical paths, sorted, each once: files named like a secret, where links to them
    /// lead, and the directories hidden whole.
    paths: Vec<PathBuf>,
    /// Each workspace directory that holds one of `paths` below it, with its entries' names,
    /// sorted: the directories Landlock grants entry by entry.
    listings: Vec<(PathBuf, Vec<OsString>)>,
}

impl WorkspaceSecrets {
    /// The paths to hide.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The workspace directories granted entry by entry, which the reader must still list.
    pub(super) fn granted_one_by_one(&self) -> impl Iterator<Item = &Path> {
        self.listings.iter().map(|(dir, _)| dir.as_path())
    }
}

/// The snapshot of `workspace`; `None` when it has more than [`MAX_DIRS`] directories (or
/// cannot be resolved).
pub fn workspace_secrets(workspace: &Path) -> Option<WorkspaceSecrets> {
    let root = workspace.canonicalize().ok()?;
    let mut paths = Vec::new();
    let mut dirs = vec![root.clone()];
    let mut dirs_read = 0;
    while let Some(dir) = dirs.pop() {
        if dirs_read == MAX_DIRS {
            return None;
        }
        dirs_read += 1;
        if crate::plain_file::is_on_pseudo_file_system(&dir) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `file_type` does not follow links: the walk never leaves the workspace.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if named_like_secret(&root, &path) {
                paths.push(path);
            } else if kind.is_symlink() {
                paths.extend(
                    path.canonicalize()
                        .ok()
                        .filter(|target| named_like_secret(&root, target)),
                );
            } else if kind.is_dir() {
                if hidden_whole(&path) {
                    paths.push(path);
                } else {
                    dirs.push(path);
                }
            }
        }
    }
    paths.sort();
    paths.dedup();
    let listings = granted_one_by_one(&root, &paths)
        .into_iter()
        .map(|dir| {
            let listing = listing(&dir);
            (dir, listing)
        })
        .collect();
    Some(WorkspaceSecrets { paths, listings })
}

/// Whether the directory `dir` is hidden from a reader whole ([`HIDDEN_WHOLE`]).
fn hidden_whole(dir: &Path) -> bool {
    dir.file_name()
        .is_some_and(|name| HIDDEN_WHOLE.iter().any(|hidden| name == *hidden))
}

/// Whether `path` is named like a secret: relative to the workspace when it lies inside it,
/// else as a whole (`/home/me/.aws/credentials` holds `.aws`).
fn named_like_secret(root: &Path, path: &Path) -> bool {
    let shown = match path.strip_prefix(root) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().trim_start_matches('/').to_owned(),
    };
    secret_name(&shown).is_some()
}

/// The workspace directories that hold a secret below them, the root included.
fn granted_one_by_one(root: &Path, secrets: &[PathBuf]) -> Vec<PathBuf> {
    let mut res: Vec<PathBuf> = secrets
        .iter()
        .filter(|secret| secret.starts_with(root))
        .flat_map(|secret| secret.ancestors().skip(1))
        .filter(|dir| dir.starts_with(root))
        .map(Path::to_path_buf)
        .collect();
    res.sort();
    res.dedup();
    res
}

fn listing(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(root: &Path) -> WorkspaceSecrets {
        workspace_secrets(root).expect("a small workspace")
    }

    #[test]
    fn secrets_and_links_to_them_are_found_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".env"), "API_KEY='k'\n").unwrap();
        std::fs::create_dir_all(root.join("deploy/keys")).unwrap();
        std::fs::write(root.join("deploy/keys/id_ed25519"), "key").unwrap();
        std::fs::write(root.join("app.py"), "x = 1\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let netrc = outside.path().canonicalize().unwrap().join(".netrc");
        std::fs::write(&netrc, "machine m password p\n").unwrap();
        std::os::unix::fs::symlink(".env", root.join("settings_local.py")).unwrap();
        std::os::unix::fs::symlink(&netrc, root.join("corp.py")).unwrap();
        std::os::unix::fs::symlink("app.py", root.join("alias.py")).unwrap();
        // Hidden whole, not read.
        std::fs::create_dir_all(root.join("node_modules/pkg")).unwrap();
        std::fs::write(root.join("node_modules/pkg/.env"), "PUBLIC=1").unwrap();

        let found = snapshot(&root);

        let mut expected = vec![
            root.join(".env"),
            root.join("deploy/keys/id_ed25519"),
            netrc,
            root.join("node_modules"),
        ];
        expected.sort();
        assert_eq!(found.paths(), expected);
    }

    /// A repository can fake every marker of a directory that tools fill; none keeps a secret
    /// there, or a link there to one, from the snapshot (red team round 10).
    #[test]
    fn a_directory_that_looks_filled_by_tools_is_read_or_hidden_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        // A Python environment's marker, a git directory's layout.
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(root.join("config/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::write(root.join("config/.env"), "k").unwrap();
        std::fs::create_dir_all(root.join("repo.git/objects")).unwrap();
        std::fs::create_dir_all(root.join("repo.git/refs")).unwrap();
        std::fs::write(root.join("repo.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(root.join("repo.git/id_rsa"), "k").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let netrc = outside.path().canonicalize().unwrap().join(".netrc");
        std::fs::write(&netrc, "machine m password p\n").unwrap();
        std::os::unix::fs::symlink(&netrc, root.join("config/corp.py")).unwrap();
        // A cache's name.
        std::fs::create_dir_all(root.join("__pycache__")).unwrap();
        std::fs::write(root.join("__pycache__/.env"), "k").unwrap();

        let found = snapshot(&root);

        let mut expected = vec![
            root.join("__pycache__/.env"),
            root.join("config/.env"),
            netrc,
            root.join("repo.git/id_rsa"),
        ];
        expected.sort();
        assert_eq!(found.paths(), expected);
    }

    #[test]
    fn a_new_entry_beside_a_secret_or_a_new_secret_changes_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join(".env"), "k").unwrap();
        let before = snapshot(root);

        std::fs::write(root.join("src/new.py"), "x = 1\n").unwrap();
        assert_eq!(snapshot(root), before, "src is granted whole");

        std::fs::write(root.join("new.py"), "x = 1\n").unwrap();
        let with_module = snapshot(root);
        assert_ne!(with_module, before, "the root is granted entry by entry");

        std::fs::write(root.join("src/.env.local"), "k").unwrap();
        assert_ne!(snapshot(root), with_module);
    }

    #[test]
    fn a_workspace_too_large_to_read_gets_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        for idx in 0..MAX_DIRS {
            std::fs::create_dir(dir.path().join(idx.to_string())).unwrap();
        }
        assert_eq!(workspace_secrets(dir.path()), None);
    }
}
