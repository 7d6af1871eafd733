//! The one way Punie reads a file that something else may have put in place of the one it
//! expects (a command it ran, a cloned repository, another local user): a workspace file a
//! tool reads, Punie's stored state, a `.git` file's pointer. What is there may be a FIFO
//! (whose `open` waits for a writer and whose `read` never ends), a device (`/dev/zero`) or a
//! file of any size, so the file is opened only once it is judged a regular file
//! ([`open_at`]: opening some devices acts on them, opening a FIFO wakes its writer), without
//! blocking ([`OPEN_FLAGS`]), and read at most to a bound ([`read`]); a FIFO is refused at
//! once, never opened or waited on. A regular file on a pseudo file system (`/proc`, `/sys`,
//! …) is refused too ([`refuse_pseudo`]): the kernel makes its bytes up from its own state (a
//! process's environment, its memory map), which is no project's file, and a workspace at `/`
//! reaches it.
//!
//! Which links may be followed on the way is the caller's rule, not this module's: a
//! workspace read follows none on the whole path (`workspace::no_follow` opens the directory
//! above so, then the file with [`open_at`]), stored state and pointers none at the last
//! component ([`open_no_follow`]), a file a setting names (a model, a script) all of them
//! ([`open_named`]). A caller that reads a file
//! as a stream rather than whole (the GGUF header reader) judges it with [`regular`] and bounds
//! its own reads.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
#[cfg(unix)]
use std::os::fd::AsFd;
use std::path::Path;

/// How a file is opened to be read by [`read`]: read only, without blocking (a FIFO opens at
/// once instead of waiting for a writer) and without becoming the controlling terminal.
#[cfg(unix)]
pub(crate) const OPEN_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::NONBLOCK)
    .union(rustix::fs::OFlags::NOCTTY);

/// Opens `path` with [`OPEN_FLAGS`] once it is judged ([`open_at`]), following no link at its
/// last component: a link there is `ELOOP`. Links on the directories above are followed.
#[cfg(unix)]
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    open_at(rustix::fs::CWD, path, LastLink::Refused)
}

/// Opens the file a setting names (a model, a script: the user's choice, or a project's where
/// its settings may name one) with [`OPEN_FLAGS`] once it is judged ([`open_at`]), following
/// links, which are the setting's choice.
#[cfg(unix)]
pub(crate) fn open_named(path: &Path) -> io::Result<File> {
    open_at(rustix::fs::CWD, path, LastLink::Followed)
}

#[cfg(not(unix))]
pub(crate) fn open_named(path: &Path) -> io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(Refusal::Directory.into());
    }
    if !meta.is_file() {
        return Err(Refusal::NotRegular.into());
    }
    File::open(path)
}

/// What [`open_at`] does with a symbolic link at the last component of its path.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastLink {
    Followed,
    /// `ELOOP`, as `O_NOFOLLOW` has it.
    Refused,
}

/// Opens `name` in `dir` with [`OPEN_FLAGS`] only once what it names is judged a regular
/// file off the pseudo file systems: opening acts on some files before anything is read
/// (`/dev/watchdog` starts the countdown to a reboot, a serial port resets the board on it, a
/// FIFO wakes the writer waiting on it), and a device node may be anywhere a repository or a
/// command put one. What is refused is never opened, and its [`Refusal`] is the error.
///
/// Linux: `name` is opened as `O_PATH`, which only names the file, judged through that handle
/// (`fstat`, `fstatfs`), and only then opened for reading through `/proc/self/fd`, which opens
/// the very file judged whatever the path names by then.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn open_at(dir: impl AsFd, name: impl AsRef<Path>, last: LastLink) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;
    let (dir, name) = (dir.as_fd(), name.as_ref());
    let handle = rustix::fs::openat(dir, name, OFlags::PATH | follow(last), Mode::empty())?;
    refuse_pseudo(&handle)?;
    let judged = rustix::fs::fstat(&handle)?;
    judge(&judged)?;
    let reopened = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let fd = match rustix::fs::open(reopened, OPEN_FLAGS | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        // No `/proc` (a chroot, a container without it): the name is opened again, and the
        // file is refused below if it is another one than was judged. Only there is a file
        // swapped in after the judgement opened, then refused.
        Err(Errno::NOENT) => {
            rustix::fs::openat(dir, name, OPEN_FLAGS | follow(last), Mode::empty())?
        }
        Err(err) => return Err(err.into()),
    };
    same_file(&judged, &fd)?;
    Ok(File::from(fd))
}

/// Other systems (macOS) have no `O_PATH`: `name` is judged by `fstatat` before it is
/// opened, and what was opened is checked to be the file judged. A device swapped in between
/// the two is opened (and then refused): a small race, left since it needs another writer in
/// that directory at that instant, and a device node outside `/dev` takes root to make there.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
pub(crate) fn open_at(dir: impl AsFd, name: impl AsRef<Path>, last: LastLink) -> io::Result<File> {
    use rustix::fs::{AtFlags, Mode};
    let (dir, name) = (dir.as_fd(), name.as_ref());
    let at = match last {
        LastLink::Followed => AtFlags::empty(),
        LastLink::Refused => AtFlags::SYMLINK_NOFOLLOW,
    };
    let judged = rustix::fs::statat(dir, name, at)?;
    judge(&judged)?;
    let fd = rustix::fs::openat(dir, name, OPEN_FLAGS | follow(last), Mode::empty())?;
    same_file(&judged, &fd)?;
    Ok(File::from(fd))
}

#[cfg(unix)]
fn follow(last: LastLink) -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    match last {
        LastLink::Followed => OFlags::CLOEXEC,
        LastLink::Refused => OFlags::NOFOLLOW | OFlags::CLOEXEC,
    }
}

/// A regular file passes; a directory, a device, a FIFO or a socket is its [`Refusal`]; a
/// link (which only an `O_NOFOLLOW` lookup stops at) is `ELOOP`.
#[cfg(unix)]
fn judge(stat: &rustix::fs::Stat) -> io::Result<()> {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(Refusal::Directory.into()),
        FileType::Symlink => Err(rustix::io::Errno::LOOP.into()),
        _ => Err(Refusal::NotRegular.into()),
    }
}

/// Refuses `fd` unless it is the file `judged` describes.
#[cfg(unix)]
fn same_file(judged: &rustix::fs::Stat, fd: impl AsFd) -> io::Result<()> {
    let opened = rustix::fs::fstat(fd)?;
    if (opened.st_dev, opened.st_ino) != (judged.st_dev, judged.st_ino) {
        return Err(io::Error::other(
            "the file was replaced between its check and its opening",
        ));
    }
    Ok(())
}

/// What [`read`] does with a file longer than its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfLonger {
    /// The file is refused ([`Refusal::TooLarge`]): a part of it would be wrong.
    Refuse,
    /// Its first bytes are read: all that is wanted is near the start.
    Cut,
}

/// Why [`read`] refused a file it could open, carried in the `io::Error` it returns (see
/// [`refusal`]) so that each caller says it in its own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Directory,
    /// A FIFO, a device, a socket: reading it would block or never end.
    NotRegular,
    /// The file has `bytes` bytes or more (what `stat` said, or what was read before the
    /// bound was passed), more than the bound.
    TooLarge {
        bytes: u64,
    },
    /// A file the kernel makes up, on the file system `name` ([`refuse_pseudo`]).
    PseudoFileSystem {
        name: &'static str,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Directory => f.write_str("is a directory"),
            Refusal::NotRegular => f.write_str("not a regular file"),
            Refusal::TooLarge { bytes } => write!(f, "too large ({bytes} bytes)"),
            Refusal::PseudoFileSystem { name } => {
                write!(f, "is on a pseudo file system ({name})")
            }
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for io::Error {
    fn from(refusal: Refusal) -> io::Error {
        let kind = match refusal {
            Refusal::Directory => io::ErrorKind::IsADirectory,
            Refusal::NotRegular => io::ErrorKind::InvalidInput,
            Refusal::TooLarge { .. } => io::ErrorKind::FileTooLarge,
            Refusal::PseudoFileSystem { .. } => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, refusal)
    }
}

/// The [`Refusal`] in an error from [`read`], if the file was refused rather than unreadable.
pub(crate) fn refusal(err: &io::Error) -> Option<Refusal> {
    err.get_ref()?.downcast_ref::<Refusal>().copied()
}

/// The pseudo file systems, by the magic number `statfs` gives (`linux/magic.h`) and the name
/// `/proc/filesystems` gives: the kernel makes their files up from its state, or they are
/// its controls. A denylist, not an allowlist of real file systems: those are an open set
/// (every disk format the kernel has a driver for, network file systems, FUSE, ZFS, 9p,
/// virtiofs), and an allowlist would make a project on one it misses unreadable with no way
/// around; these are the kernel's own, few, and listed here whole but for the ones no path
/// reaches (pipes, sockets, anonymous inodes: only through `/proc`'s magic links, which no
/// open here follows).
#[cfg(any(target_os = "linux", target_os = "android"))]
const PSEUDO_FILE_SYSTEMS: &[(u32, &str)] = &[
    (libc::PROC_SUPER_MAGIC as u32, "proc"),
    (libc::SYSFS_MAGIC as u32, "sysfs"),
    (libc::DEBUGFS_MAGIC as u32, "debugfs"),
    (libc::TRACEFS_MAGIC as u32, "tracefs"),
    (libc::SECURITYFS_MAGIC as u32, "securityfs"),
    (libc::CGROUP_SUPER_MAGIC as u32, "cgroup"),
    (libc::CGROUP2_SUPER_MAGIC as u32, "cgroup2"),
    (libc::BPF_FS_MAGIC as u32, "bpf"),
    (libc::DEVPTS_SUPER_MAGIC as u32, "devpts"),
    (libc::SELINUX_MAGIC as u32, "selinuxfs"),
    (libc::SMACK_MAGIC as u32, "smackfs"),
    (libc::RDTGROUP_SUPER_MAGIC as u32, "resctrl"),
    (libc::NSFS_MAGIC as u32, "nsfs"),
    (libc::XENFS_SUPER_MAGIC as u32, "xenfs"),
    (libc::BINDERFS_SUPER_MAGIC as u32, "binder"),
    (libc::OPENPROM_SUPER_MAGIC as u32, "openpromfs"),
    (libc::USBDEVICE_SUPER_MAGIC as u32, "usbfs"),
    // Automount points: what is mounted on one has its own file system; the point itself
    // holds only the kernel's triggers.
    (libc::AUTOFS_SUPER_MAGIC as u32, "autofs"),
    // Not in the `libc` crate: `linux/magic.h` (the first four) and the kernel's sources.
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x5a3c_69f0, "apparmorfs"),
    (0x6265_6570, "configfs"),
    (0x1980_0202, "mqueue"),
    (0x6573_5543, "fusectl"),
    // `NFSD_MAGIC` (fs/nfsd: the NFS server's controls), `RPCAUTH_GSSMAGIC`
    // (net/sunrpc/rpc_pipe.c: RPC upcall pipes), `FUNCTIONFS_MAGIC`
    // (drivers/usb/gadget/function/f_fs.c: a USB gadget's endpoints).
    (0x6e66_7364, "nfsd"),
    (0x6759_6969, "rpc_pipefs"),
    (0x0a64_7361, "functionfs"),
];

/// The name of the pseudo file system `stat` describes, if it is one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pseudo_name(stat: &rustix::fs::StatFs) -> Option<&'static str> {
    // Magic numbers are 32 bits; `f_type` is wider on some targets and signed on others.
    let kind = stat.f_type as u32;
    PSEUDO_FILE_SYSTEMS
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| *name)
}

/// macOS names its file systems: `devfs` (`/dev`) and `fdesc` (`/dev/fd`: the server's own
/// descriptors) are its pseudo file systems a path reaches.
#[cfg(target_os = "macos")]
fn pseudo_name(stat: &rustix::fs::StatFs) -> Option<&'static str> {
    let name: Vec<u8> = stat
        .f_fstypename
        .iter()
        .take_while(|byte| **byte != 0)
        .map(|byte| *byte as u8)
        .collect();
    ["devfs", "fdesc"]
        .into_iter()
        .find(|pseudo| pseudo.as_bytes() == name)
}

/// Refuses `fd` ([`Refusal::PseudoFileSystem`]) when it lies on a pseudo file system.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
pub(crate) fn refuse_pseudo(fd: impl AsFd) -> io::Result<()> {
    match pseudo_name(&rustix::fs::fstatfs(fd)?) {
        Some(name) => Err(Refusal::PseudoFileSystem { name }.into()),
        None => Ok(()),
    }
}

/// [`refuse_pseudo`] by path, for a path judged before anything is opened (the existing part
/// of a tool's path) and a directory a walk would enter.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
pub(crate) fn refuse_pseudo_at(path: &Path) -> io::Result<()> {
    match pseudo_name(&rustix::fs::statfs(path)?) {
        Some(name) => Err(Refusal::PseudoFileSystem { name }.into()),
        None => Ok(()),
    }
}

/// Other systems: no pseudo file system is listed for them.
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
pub(crate) fn refuse_pseudo(_fd: impl AsFd) -> io::Result<()> {
    Ok(())
}

#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
pub(crate) fn refuse_pseudo_at(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether `dir` lies on a pseudo file system, for a walk of a workspace's tree to leave it
/// out: a workspace at `/` holds `/proc` and `/sys`, whose files are never read
/// ([`refuse_pseudo`]) and whose trees are the kernel's (a directory for every process and
/// thread, endless links), where a walk would spend its limit for nothing. Not when it cannot
/// be told: then the walk reads it as it would any other.
pub(crate) fn is_on_pseudo_file_system(dir: &Path) -> bool {
    #[cfg(unix)]
    return refuse_pseudo_at(dir)
        .is_err_and(|err| matches!(refusal(&err), Some(Refusal::PseudoFileSystem { .. })));
    #[cfg(not(unix))]
    return false;
}

/// The metadata of `file` when it is a regular file not on a pseudo file system, else its
/// [`Refusal`]: what the file opened is, whatever its path named when it was judged.
pub(crate) fn regular(file: &File) -> io::Result<Metadata> {
    #[cfg(unix)]
    refuse_pseudo(file)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(Refusal::Directory.into());
    }
    if !meta.is_file() {
        return Err(Refusal::NotRegular.into());
    }
    Ok(meta)
}

/// The bytes of `file`, opened as [`OPEN_FLAGS`] say, when it is a regular file not on a
/// pseudo file system ([`regular`]): at most `max` of them. The bound holds on what is read,
/// not only on what `stat` said (the file may grow meanwhile).
pub(crate) fn read(file: File, max: u64, if_longer: IfLonger) -> io::Result<Vec<u8>> {
    let meta = regular(&file)?;
    let limit = match if_longer {
        IfLonger::Cut => max,
        IfLonger::Refuse if meta.len() > max => {
            return Err(Refusal::TooLarge { bytes: meta.len() }.into());
        }
        // One byte more tells a file that grew past the bound from one that ends at it.
        IfLonger::Refuse => max.saturating_add(1),
    };
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Refusal::TooLarge {
            bytes: bytes.len() as u64,
        }
        .into());
    }
    Ok(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn open_and_read(path: &Path, max: u64, if_longer: IfLonger) -> io::Result<Vec<u8>> {
        read(open_no_follow(path)?, max, if_longer)
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // No writer ever comes: a blocking open or read would hang this test.
        for if_longer in [IfLonger::Refuse, IfLonger::Cut] {
            let err = open_and_read(&path, 10, if_longer).unwrap_err();
            assert_eq!(refusal(&err), Some(Refusal::NotRegular), "{err}");
        }
    }

    /// What is refused is refused before it is opened, whatever the caller's rule on links.
    #[test]
    fn what_is_not_a_regular_file_is_refused_by_every_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "text").unwrap();
        symlink(dir.path().join("f"), dir.path().join("link")).unwrap();
        symlink("/dev/null", dir.path().join("null")).unwrap();
        for open in [open_no_follow, open_named] {
            let err = open(Path::new("/dev/null")).unwrap_err();
            assert_eq!(refusal(&err), Some(Refusal::NotRegular), "{err}");
            let err = open(dir.path()).unwrap_err();
            assert_eq!(refusal(&err), Some(Refusal::Directory), "{err}");
            let mut text = String::new();
            open(&dir.path().join("f"))
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "text");
        }
        // A link to a device is judged by what it names where links are followed.
        let err = open_named(&dir.path().join("null")).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::NotRegular), "{err}");
        assert!(open_named(&dir.path().join("link")).is_ok());
        let err = open_no_follow(&dir.path().join("null")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    }

    #[test]
    fn a_device_is_refused() {
        let err = open_and_read(Path::new("/dev/zero"), 10, IfLonger::Cut).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::NotRegular), "{err}");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_and_read(dir.path(), 10, IfLonger::Refuse).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::Directory), "{err}");
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
    }

    #[test]
    fn a_file_past_the_bound_is_refused_or_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(
            open_and_read(&path, 10, IfLonger::Refuse).unwrap(),
            b"0123456789"
        );
        let err = open_and_read(&path, 9, IfLonger::Refuse).unwrap_err();
        assert_eq!(
            refusal(&err),
            Some(Refusal::TooLarge { bytes: 10 }),
            "{err}"
        );
        assert_eq!(open_and_read(&path, 4, IfLonger::Cut).unwrap(), b"0123");
    }

    /// What the kernel makes up is no file to read, though `stat` calls it a regular one: a
    /// process's environment (`GITHUB_TOKEN=…`), its memory map, the machine's state.
    #[cfg(target_os = "linux")]
    #[test]
    fn files_of_pseudo_file_systems_are_refused() {
        for (path, name) in [
            ("/proc/self/environ", "proc"),
            ("/proc/self/status", "proc"),
            ("/sys/kernel/address_bits", "sysfs"),
        ] {
            let path = Path::new(path).canonicalize().unwrap();
            assert!(std::fs::metadata(&path).unwrap().is_file(), "{path:?}");
            for if_longer in [IfLonger::Refuse, IfLonger::Cut] {
                let err = open_and_read(&path, 1 << 20, if_longer).unwrap_err();
                assert_eq!(
                    refusal(&err),
                    Some(Refusal::PseudoFileSystem { name }),
                    "{path:?}: {err}"
                );
                assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
                assert_eq!(
                    err.to_string(),
                    format!("is on a pseudo file system ({name})")
                );
            }
        }
        // By path too, directories included; a real file system passes.
        let err = refuse_pseudo_at(Path::new("/proc/self")).unwrap_err();
        assert_eq!(
            refusal(&err),
            Some(Refusal::PseudoFileSystem { name: "proc" })
        );
        let err = refuse_pseudo_at(Path::new("/sys")).unwrap_err();
        assert_eq!(
            refusal(&err),
            Some(Refusal::PseudoFileSystem { name: "sysfs" })
        );
        let dir = tempfile::tempdir().unwrap();
        refuse_pseudo_at(dir.path()).unwrap();
        refuse_pseudo(File::open(dir.path()).unwrap()).unwrap();
        // What walks leave out; a directory that cannot be told is read as any other.
        assert!(is_on_pseudo_file_system(Path::new("/proc")));
        assert!(is_on_pseudo_file_system(Path::new("/sys/kernel")));
        assert!(!is_on_pseudo_file_system(dir.path()));
        assert!(!is_on_pseudo_file_system(&dir.path().join("absent")));
    }

    #[test]
    fn a_link_at_the_last_component_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), "secret").unwrap();
        symlink(dir.path().join("target"), dir.path().join("link")).unwrap();
        let err = open_no_follow(&dir.path().join("link")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        // Above the last component, links are the caller's rule: here they are followed.
        symlink(dir.path(), dir.path().join("dir_link")).unwrap();
        let bytes = open_and_read(&dir.path().join("dir_link/target"), 10, IfLonger::Refuse);
        assert_eq!(bytes.unwrap(), b"secret");
    }
}
