//! The one way Punie replaces a file the user keeps: workspace writes, saved sessions, a
//! fetched model, a quantized model. The content goes to a temporary file in the same
//! directory (from `tempfile`, so two writers never share a name), is flushed to disk, gets
//! its mode, and is renamed over the target; the directory is flushed after. A reader sees
//! the old file or the new one, never half of either, and a failed write leaves no temporary
//! file behind.
//!
//! Mode: a replaced file keeps its read and write permissions only: no execute bits
//! (model-written content never becomes the next `./build.sh`) and no setuid, setgid or
//! sticky bit (a `rwSr-Sr--` file would otherwise turn into a setuid program with one
//! `chmod +x`, and rename keeps whatever mode the temporary file has, even for root); a new
//! file gets `0o666` less the umask, as `open` would give it, not `tempfile`'s private `0o600`.
//!
//! [`replace_at`] does the same relative to a directory already opened (a workspace write:
//! `workspace::no_follow` opened it without following a link), so nothing after the open
//! goes by name through the path again.

use std::fs::{self, File, Permissions};
use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

/// Replaces `path` with what `write` puts into the temporary file it is given (through its
/// `Write` impl, or by path for a writer such as llama.cpp's quantizer). The parent directory
/// must exist. An error from `write` leaves `path` as it was.
pub(crate) fn replace<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&mut NamedTempFile) -> Result<(), E>,
) -> Result<(), E> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let prefix = format!(".{name}.punie-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir)?;
    write(&mut temp)?;
    temp.as_file().sync_all()?;
    if let Ok(meta) = fs::metadata(path) {
        fs::set_permissions(temp.path(), inert(meta.permissions()))?;
    }
    temp.persist(path).map_err(|err| E::from(err.error))?;
    sync_dir(dir);
    Ok(())
}

/// Replaces the entry `name` of the open directory `dir` with `content`, as [`replace`]
/// does: the temporary file is made with `O_EXCL | O_NOFOLLOW` in `dir`, renamed with
/// `renameat` in `dir`, and the mode comes from what `name` is (not what a link there points
/// to). A directory at `name` is `EISDIR`.
#[cfg(unix)]
pub(crate) fn replace_at(
    dir: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
    content: &[u8],
) -> io::Result<()> {
    use std::io::Write;

    use rustix::fs::{AtFlags, FileType, Mode};

    let existing = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
    let kind = existing.map(|stat| FileType::from_raw_mode(stat.st_mode));
    if kind == Some(FileType::Directory) {
        return Err(io::ErrorKind::IsADirectory.into());
    }
    let kept_mode = match (existing, kind) {
        (Some(stat), Some(FileType::RegularFile)) => {
            Some(Mode::from_raw_mode(stat.st_mode) & Mode::from_raw_mode(0o666))
        }
        _ => None,
    };
    let (temp_name, temp) = create_temp_at(dir, name)?;
    let mut file = File::from(temp);
    let written = file
        .write_all(content)
        .and_then(|()| file.sync_all())
        .and_then(|()| match kept_mode {
            Some(mode) => Ok(rustix::fs::fchmod(&file, mode)?),
            None => Ok(()),
        })
        .and_then(|()| Ok(rustix::fs::renameat(dir, &temp_name, dir, name)?));
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, &temp_name, AtFlags::empty());
    }
    written?;
    // Best effort, as `sync_dir`.
    let _ = rustix::fs::fsync(dir);
    Ok(())
}

/// A new file `.<name>.punie-<random>.tmp` in `dir`, `0o666` less the umask.
#[cfg(unix)]
fn create_temp_at(
    dir: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
) -> io::Result<(std::ffi::OsString, std::os::fd::OwnedFd)> {
    use std::hash::BuildHasher;

    use rustix::fs::{Mode, OFlags};

    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    let random = std::collections::hash_map::RandomState::new();
    let mut tries = 0u32;
    loop {
        let tag = random.hash_one((std::process::id(), tries));
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".punie-{tag:016x}.tmp"));
        let mode = Mode::from_raw_mode(0o666);
        match rustix::fs::openat(dir, &temp_name, flags | OFlags::CLOEXEC, mode) {
            Ok(fd) => return Ok((temp_name, fd)),
            Err(rustix::io::Errno::EXIST) if tries < 16 => tries += 1,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Clears the execute, setuid, setgid and sticky bits of an open file before its content is
/// replaced in place (an editor's write keeps the mode). Anything but a regular file is left
/// alone.
pub(crate) fn clear_exec_bits(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if has_bits_to_clear(&meta) {
        file.set_permissions(inert(meta.permissions()))?;
    }
    Ok(())
}

/// Whether [`clear_exec_bits`] changes the mode of this file (and so its status-change
/// time): a regular file with an execute, setuid, setgid or sticky bit. (`mode()` holds the
/// file type too, which [`inert`] drops: comparing the two would chmod every file.)
#[cfg(unix)]
pub(crate) fn has_bits_to_clear(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o7111 != 0
}

#[cfg(not(unix))]
pub(crate) fn has_bits_to_clear(_meta: &fs::Metadata) -> bool {
    false
}

/// `permissions` with read and write bits only: no execute, setuid, setgid or sticky bit.
#[cfg(unix)]
fn inert(permissions: Permissions) -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    Permissions::from_mode(permissions.mode() & 0o666)
}

/// Makes the rename itself durable. Best effort: the file is already in place, and some file
/// systems refuse to sync a directory.
#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(not(unix))]
fn inert(permissions: Permissions) -> Permissions {
    permissions
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_file_is_readable_as_open_would_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.py");
        replace(&path, |file| file.write_all(b"x = 1\n")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x = 1\n");
        // 0o666 less a umask, which never takes the owner's read and write.
        assert_eq!(mode(&path) & 0o600, 0o600);
        assert_eq!(mode(&path) & 0o111, 0);
        assert_eq!(names(dir.path()), ["new.py"]);
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_less_the_execute_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.sh");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o751)).unwrap();
        replace(&path, |file| file.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn a_replaced_file_loses_its_setuid_setgid_and_sticky_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o7644)).unwrap();
        replace(&path, |file| file.write_all(b"new")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{mode:o}");
    }

    #[test]
    fn clearing_exec_bits_also_clears_setuid_setgid_and_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o7755)).unwrap();
        clear_exec_bits(&File::open(&path).unwrap()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{mode:o}");
    }

    #[test]
    fn a_failed_write_leaves_the_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.txt");
        fs::write(&path, "old").unwrap();
        let res = replace(&path, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("refused"))
        });
        assert_eq!(res.unwrap_err().to_string(), "refused");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["keep.txt"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/file.txt");
        assert!(replace(&path, |file| file.write_all(b"x")).is_err());
        assert!(!path.exists());
    }
}
