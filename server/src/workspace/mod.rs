//! Files and commands of the workspace: path confinement, reads, atomic writes and
//! `run_command`. These are the tool handlers behind the sandbox; they run in the server
//! process (the sandbox worker has no file access of its own) and report failures as
//! [`ToolError`]s named after the Python exception the snippet will see.
//!
//! Confinement: a tool path is joined to the workspace root, normalised lexically (a `..`
//! that climbs above the root is refused), then every existing prefix is resolved through
//! the file system (`canonicalize`) and must stay inside the canonical root. The part that
//! does not exist yet is never taken raw: a component that exists only as a dangling
//! symlink is refused. What is opened is the resolved path, never the text the snippet gave,
//! and it is opened following no link ([`no_follow`]): a directory swapped for a link after
//! the path was judged makes the read or write fail, never reach where the link points.

mod before;
mod command;
mod disk_guard;
mod host;
#[cfg(unix)]
mod no_follow;
mod path;
mod protected_watch;
mod quarantine;

pub use before::{before_write, changed_meanwhile, still_before, write_unchanged};
pub use command::{CommandLimits, CommandOutput, run_command, split_command};
pub use host::ToolHost;
pub use path::{ResolvedPath, display_path, resolve, resolve_target};

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A tool failure, named after the Python exception the snippet sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// A Python exception class name, e.g. `FileNotFoundError`.
    pub type_name: String,
    pub message: String,
}

impl ToolError {
    pub fn new(type_name: &str, message: impl Into<String>) -> ToolError {
        ToolError {
            type_name: type_name.to_owned(),
            message: message.into(),
        }
    }

    pub fn permission(message: impl Into<String>) -> ToolError {
        ToolError::new("PermissionError", message)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for ToolError {}

/// The largest file `read_file` hands to the snippet; the worker's memory is small.
pub const MAX_READ_BYTES: u64 = 8 * 1024 * 1024;

/// The error for a file of `bytes` bytes, more than the `limit` its reader holds to.
pub fn too_large(shown: &str, bytes: u64, limit: u64) -> ToolError {
    ToolError::new(
        "OSError",
        format!("file too large to read: '{shown}' is {bytes} bytes (limit {limit})"),
    )
}

/// The bytes of a regular file, at most `max` of them (`crate::plain_file`: the limit holds on
/// what is read, not on what `stat` said; opened without blocking, so a FIFO or device is
/// refused instead of hanging the server), following no link: `path` is canonical (resolved
/// and judged), so a link on it now means it changed since, and the read is refused.
pub fn read_bounded(path: &Path, shown: &str, max: u64) -> Result<Vec<u8>, ToolError> {
    use crate::plain_file::{IfLonger, Refusal};
    let read =
        open_read(path).and_then(|file| crate::plain_file::read(file, max, IfLonger::Refuse));
    read.map_err(|err| match crate::plain_file::refusal(&err) {
        Some(Refusal::Directory) => {
            ToolError::new("IsADirectoryError", format!("Is a directory: '{shown}'"))
        }
        Some(Refusal::NotRegular) => {
            ToolError::permission(format!("not a regular file: '{shown}'"))
        }
        Some(Refusal::TooLarge { bytes }) => too_large(shown, bytes, max),
        Some(Refusal::PseudoFileSystem { .. }) | None => io_error(&err, shown),
    })
}

/// The error for a path on the pseudo file system `name` (`crate::plain_file::refuse_pseudo`):
/// a workspace at `/` holds `/proc` and `/sys`, whose files are the kernel's view of every
/// process (their environment, their memory) and its controls, never a project's.
fn pseudo_file_system(shown: &str, name: &str) -> ToolError {
    ToolError::permission(format!(
        "'{shown}' is on a pseudo file system ({name}), whose files the kernel makes up from \
         its own state: Punie never reads or writes it"
    ))
}

/// Opens a canonical `path` to read ([`crate::plain_file::OPEN_FLAGS`]: without blocking),
/// following no link, once it is judged a regular file: what is refused
/// ([`crate::plain_file::Refusal`]) is never opened.
#[cfg(unix)]
fn open_read(path: &Path) -> std::io::Result<fs::File> {
    no_follow::open_file(path)
}

#[cfg(not(unix))]
fn open_read(path: &Path) -> std::io::Result<fs::File> {
    fs::File::open(path)
}

/// Reads a resolved path as UTF-8 text. `shown` is the path as the snippet wrote it.
pub fn read_text(path: &Path, shown: &str) -> Result<String, ToolError> {
    let bytes = read_bounded(path, shown, MAX_READ_BYTES)?;
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        ToolError::new(
            "UnicodeDecodeError",
            format!("'utf-8' codec can't decode '{shown}' at byte {at}: not a UTF-8 text file"),
        )
    })
}

/// Writes `content` atomically (`crate::atomic_file`: a reader never sees half a file, and a
/// replaced file loses its execute bits). Creates missing parent directories, never on a
/// pseudo file system (a directory made in a cgroup file system is a new cgroup). Follows no
/// link: `path` is canonical (resolved and judged), so a link on it now means it changed
/// since, and the write is refused rather than landing where the link points.
pub fn write_atomic(path: &Path, content: impl AsRef<[u8]>) -> Result<(), ToolError> {
    let shown = path.display().to_string();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(ToolError::permission(format!("cannot write to '{shown}'")));
    };
    replace_in(parent, name, content.as_ref()).map_err(|err| match err.kind() {
        std::io::ErrorKind::IsADirectory => {
            ToolError::new("IsADirectoryError", format!("Is a directory: '{shown}'"))
        }
        _ => io_error(&err, &shown),
    })
}

#[cfg(unix)]
fn replace_in(parent: &Path, name: &std::ffi::OsStr, content: &[u8]) -> std::io::Result<()> {
    let dir = no_follow::create_dir_all(parent)?;
    crate::atomic_file::replace_at(&dir, name, content)
}

#[cfg(not(unix))]
fn replace_in(parent: &Path, name: &std::ffi::OsStr, content: &[u8]) -> std::io::Result<()> {
    if parent.join(name).is_dir() {
        return Err(std::io::ErrorKind::IsADirectory.into());
    }
    fs::create_dir_all(parent)?;
    crate::atomic_file::replace(&parent.join(name), |file| file.write_all(content))
}

/// `path` with the links of its existing part followed, for a path the user named (a
/// command-line argument, a document the editor opened, Punie's data directory) before
/// [`read_bounded`] or [`write_atomic`], which follow none. Never for a tool's path: that
/// one is resolved and judged by [`resolve`], and what was judged is what is opened.
pub fn follow_user_links(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        if let Ok(mut canonical) = existing.canonicalize() {
            canonical.extend(missing.iter().rev());
            return canonical;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `path` with the links of `root` followed and none below it: a client may name the
/// workspace root through a link (`/tmp` on macOS, a linked project), and a path it derives
/// from that root is read and written as [`read_bounded`] and [`write_atomic`] do, following
/// no link beneath. A path outside `root` is returned as it is.
pub fn follow_root_links(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => follow_user_links(root),
        Ok(rel) => follow_user_links(root).join(rel),
        Err(_) => path.to_path_buf(),
    }
}

/// Clears the execute bits of an existing file before a tool replaces its content through an
/// editor (which writes in place and keeps the mode). A missing file is fine, and so is one
/// that is not a regular file (a directory, a device, a FIFO), which has no such bits to
/// clear and is never opened; the file is opened following no link, as [`read_bounded`]
/// opens one.
pub fn clear_exec_bits(path: &Path) -> Result<(), ToolError> {
    use crate::plain_file::Refusal;
    let shown = path.display().to_string();
    match open_read(path) {
        Ok(file) => {
            crate::atomic_file::clear_exec_bits(&file).map_err(|err| io_error(&err, &shown))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err)
            if matches!(
                crate::plain_file::refusal(&err),
                Some(Refusal::Directory | Refusal::NotRegular)
            ) =>
        {
            Ok(())
        }
        Err(err) => Err(io_error(&err, &shown)),
    }
}

/// Maps an IO error to the Python exception CPython would raise for it.
pub fn io_error(err: &std::io::Error, shown: &str) -> ToolError {
    use std::io::ErrorKind;
    if let Some(crate::plain_file::Refusal::PseudoFileSystem { name }) =
        crate::plain_file::refusal(err)
    {
        return pseudo_file_system(shown, name);
    }
    #[cfg(unix)]
    if no_follow::is_link_on_path(err) {
        // A judged path holds no link: one there appeared after the check (or the caller
        // never resolved the path). Either way, where it leads was never judged.
        return ToolError::permission(format!(
            "'{shown}' goes through a symbolic link, which is not followed here"
        ));
    }
    let type_name = match err.kind() {
        ErrorKind::NotFound => "FileNotFoundError",
        ErrorKind::PermissionDenied => "PermissionError",
        ErrorKind::AlreadyExists => "FileExistsError",
        ErrorKind::IsADirectory => "IsADirectoryError",
        ErrorKind::NotADirectory => "NotADirectoryError",
        _ => "OSError",
    };
    let reason = match err.kind() {
        ErrorKind::NotFound => "No such file or directory".to_owned(),
        ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        _ => err.to_string(),
    };
    ToolError::new(type_name, format!("{reason}: '{shown}'"))
}

#[cfg(test)]
mod tests;
