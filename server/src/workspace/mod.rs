//! Files and commands of the workspace: path confinement, reads, atomic writes and
//! `run_command`. These are the tool handlers behind the sandbox; they run in the server
//! process (the sandbox worker has no file access of its own) and report failures as
//! [`ToolError`]s named after the Python exception the snippet will see.
//!
//! Confinement: a tool path is joined to the workspace root, normalised lexically (a `..`
//! that climbs above the root is refused), then every existing prefix is resolved through
//! the file system (`canonicalize`) and must stay inside the canonical root. The part that
//! does not exist yet is never taken raw: a component that exists only as a dangling
//! symlink is refused. What is opened is the resolved path, never the text the snippet gave.

mod command;
mod disk_guard;
mod host;
mod path;
mod quarantine;

pub use command::{CommandLimits, CommandOutput, run_command, split_command};
pub use host::ToolHost;
pub use path::{ResolvedPath, display_path, resolve, resolve_target};

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

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

/// The error for a file of `bytes` bytes, more than [`MAX_READ_BYTES`].
pub fn too_large(shown: &str, bytes: u64) -> ToolError {
    ToolError::new(
        "OSError",
        format!("file too large to read: '{shown}' is {bytes} bytes (limit {MAX_READ_BYTES})"),
    )
}

/// The bytes of a regular file, at most `max` of them: the limit holds on what is read, not
/// on what `stat` said (the file may grow, or be swapped for a FIFO, in between). Opened
/// without blocking, so a FIFO or device is refused instead of hanging the server.
pub fn read_bounded(path: &Path, shown: &str, max: u64) -> Result<Vec<u8>, ToolError> {
    use std::io::Read;
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(|err| io_error(&err, shown))?;
    let meta = file.metadata().map_err(|err| io_error(&err, shown))?;
    if meta.is_dir() {
        return Err(ToolError::new(
            "IsADirectoryError",
            format!("Is a directory: '{shown}'"),
        ));
    }
    if !meta.is_file() {
        // FIFOs and devices would block or never end.
        return Err(ToolError::permission(format!(
            "not a regular file: '{shown}'"
        )));
    }
    if meta.len() > max {
        return Err(too_large(shown, meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(&err, shown))?;
    if bytes.len() as u64 > max {
        return Err(too_large(shown, bytes.len() as u64));
    }
    Ok(bytes)
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
/// replaced file loses its execute bits). Creates missing parent directories.
pub fn write_atomic(path: &Path, content: impl AsRef<[u8]>) -> Result<(), ToolError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(ToolError::new(
            "IsADirectoryError",
            format!("Is a directory: '{shown}'"),
        ));
    }
    let parent = path
        .parent()
        .ok_or_else(|| ToolError::permission(format!("cannot write to '{shown}'")))?;
    fs::create_dir_all(parent).map_err(|err| io_error(&err, &shown))?;
    crate::atomic_file::replace(path, |file| file.write_all(content.as_ref()))
        .map_err(|err| io_error(&err, &shown))
}

/// Clears the execute bits of an existing file before a tool replaces its content through an
/// editor (which writes in place and keeps the mode). A missing file is fine.
pub fn clear_exec_bits(path: &Path) -> Result<(), ToolError> {
    crate::atomic_file::clear_exec_bits(path)
        .map_err(|err| io_error(&err, &path.display().to_string()))
}

/// Maps an IO error to the Python exception CPython would raise for it.
pub fn io_error(err: &std::io::Error, shown: &str) -> ToolError {
    use std::io::ErrorKind;
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
