//! Opening a judged path without following a symbolic link anywhere on it.
//!
//! A tool path is resolved (`path::resolve`: canonical, so it holds no link by construction)
//! and judged by the policy; the file is opened afterwards. Whoever else writes in the
//! workspace meanwhile (a command Punie started for another run, another Punie process,
//! another local user) can swap a directory of that path for a link to `.git` or `~/.ssh` in
//! between (`renameat2(RENAME_EXCHANGE)` makes it one step). Opening by name would follow
//! the link; here a link on the path is an error (`ELOOP`), so what is opened is what was
//! judged or nothing.
//!
//! Linux: one `openat2` with `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`. Where it is
//! missing (a kernel before 5.6, or a seccomp filter answering `ENOSYS` or `EPERM`; Punie's
//! own filters apply to the sandbox worker and jailed commands, never to the server, which
//! does every file access) and on other systems: one `openat` per component from `/`, each
//! with `O_NOFOLLOW`, so each step opens the directory itself and never a link.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

/// Opens `path` with `flags` (plus `O_CLOEXEC`), following no symbolic link on any of its
/// components, the last one included: a link there is `ELOOP`. `mode` is for `O_CREAT`.
pub(crate) fn open(path: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::ResolveFlags;
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(CWD, path, flags, mode, resolve) {
            Err(Errno::NOSYS | Errno::PERM) => {}
            other => return other.map_err(io::Error::from),
        }
    }
    open_by_components(path, flags, mode)
}

/// Opens the file `path` names to read it, following no symbolic link on any of its
/// components: the directory above as [`open`] does, the file itself only once it is judged
/// a regular file (`crate::plain_file::open_at`), so that a device or a FIFO is never opened.
pub(crate) fn open_file(path: &Path) -> io::Result<std::fs::File> {
    use crate::plain_file::{LastLink, Refusal};
    let Some(name) = path.file_name() else {
        // `/` (a canonical path has no `..`): a directory.
        return Err(Refusal::Directory.into());
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Without `O_NOFOLLOW`, which with `O_DIRECTORY` makes a link there `ENOTDIR`: [`open`]
    // refuses it as `ELOOP` all the same.
    let dir = open(parent, search_flags() - OFlags::NOFOLLOW, Mode::empty())?;
    crate::plain_file::open_at(&dir, name, LastLink::Refused)
}

/// Opens the directory `dir` for the `*at` calls, creating it and its missing parents one
/// by one (`mkdirat`, then an `O_NOFOLLOW` open of what was made), following no link. A
/// directory on a pseudo file system is refused before anything is made in it
/// (`crate::plain_file::refuse_pseudo`): there a new directory is a kernel object (a cgroup,
/// a trace instance, a configfs item).
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    match open(dir, flags, Mode::empty()) {
        Ok(fd) => {
            crate::plain_file::refuse_pseudo(&fd)?;
            return Ok(fd);
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let parent = create_dir_all(parent)?;
    match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o777)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(err) => return Err(err.into()),
    }
    open_at(&parent, name, flags | OFlags::CLOEXEC, Mode::empty())
}

/// The fallback of [`open`]: from `/` (or the working directory), one component at a time.
pub(crate) fn open_by_components(path: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::RootDir | Component::CurDir => {}
            // A judged path is canonical: a `..` here is a caller's mistake.
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::ErrorKind::InvalidInput.into());
            }
        }
    }
    let start = if path.has_root() { "/" } else { "." };
    let Some((last, dirs)) = names.split_last() else {
        return Ok(rustix::fs::openat(CWD, start, flags, mode)?);
    };
    let mut dir = rustix::fs::openat(CWD, start, search_flags(), Mode::empty())?;
    for name in dirs {
        dir = open_at(&dir, name, search_flags(), Mode::empty())?;
    }
    open_at(&dir, last, flags, mode)
}

/// `openat(dir, name, flags | O_NOFOLLOW)`: `name` is one component. A link there is
/// `ELOOP`, also where `O_DIRECTORY` made the system say `ENOTDIR`.
fn open_at(dir: &OwnedFd, name: &OsStr, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, mode) {
        Err(Errno::NOTDIR) if is_link(dir, name) => Err(Errno::LOOP.into()),
        other => Ok(other?),
    }
}

fn is_link(dir: &OwnedFd, name: &OsStr) -> bool {
    use rustix::fs::{AtFlags, FileType};
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
}

/// A directory on the way, opened only to look up the next name: `O_PATH` needs no read
/// permission (a home directory may be `0o711`).
fn search_flags() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = OFlags::RDONLY;
    flags | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Whether `err` is what a link on the path gives: the path changed after it was judged.
pub(crate) fn is_link_on_path(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn read(fd: OwnedFd) -> String {
        let mut text = String::new();
        fs::File::from(fd).read_to_string(&mut text).unwrap();
        text
    }

    type Open = fn(&Path, OFlags, Mode) -> io::Result<OwnedFd>;

    /// Both ways of opening, so the fallback is tested on a kernel that has `openat2`.
    fn both() -> [Open; 2] {
        [open, open_by_components]
    }

    #[test]
    fn a_path_without_links_opens() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/f"), "inside").unwrap();
        for open in both() {
            let fd = open(&root.join("d/f"), OFlags::RDONLY, Mode::empty()).unwrap();
            assert_eq!(read(fd), "inside");
        }
    }

    #[test]
    fn a_link_anywhere_on_the_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("outside")).unwrap();
        fs::write(root.join("outside/f"), "secret").unwrap();
        symlink(root.join("outside"), root.join("d")).unwrap();
        symlink(root.join("outside/f"), root.join("g")).unwrap();
        for open in both() {
            for path in ["d/f", "g"] {
                let err = open(&root.join(path), OFlags::RDONLY, Mode::empty()).unwrap_err();
                assert!(is_link_on_path(&err), "{path}: {err}");
            }
        }
    }

    #[test]
    fn missing_directories_are_made_and_a_link_among_them_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        create_dir_all(&root.join("a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        fs::create_dir(root.join("outside")).unwrap();
        symlink(root.join("outside"), root.join("a/l")).unwrap();
        let err = create_dir_all(&root.join("a/l/new")).unwrap_err();
        assert!(is_link_on_path(&err), "{err}");
        assert!(!root.join("outside/new").exists());
    }
}
