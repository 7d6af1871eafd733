//! Modes and times a command sets by path where no read-only mount keeps the files outside
//! the workspace (no namespaces): the seccomp filter sends those calls here (a user
//! notification), and the helper sets them itself, only on a file inside the writable paths;
//! anywhere else the call fails with `EPERM`.
//!
//! The helper never lets the kernel carry on with the command's own call
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`): another thread of the command could change the path
//! or swap a link between the check and the call. It opens the file itself (`O_PATH`, from
//! the command's working directory or directory descriptor, no magic links), checks where
//! that file is, and sets the mode or times through that descriptor: a link swapped later
//! changes nothing. Landlock keeps a command from moving or hard-linking a file between
//! outside and the workspace, so a file found inside is the workspace's.
//!
//! Inside means what Landlock grants: beneath a writable path, but neither a secret, nor
//! beneath one, nor a directory that holds one (the home opened as the workspace: `~/.ssh`
//! and `~` itself keep their modes, as their contents stay unreadable). And only a file the
//! caller owns: the command has no capabilities, but a helper running as root has
//! `CAP_FOWNER`, which would let it change anyone's file.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::seccomp::{MODE_CALLS_BY_PATH, SYS_FCHMODAT2};

/// The end of the filter's notifications, and where the command may change metadata.
pub(super) struct Listener {
    fd: OwnedFd,
    roots: Vec<PathBuf>,
    /// As listed and where each resolves, as the Landlock rules have them.
    secrets: Vec<PathBuf>,
}

/// What the command asked for, decoded from the notification.
struct Call {
    dirfd: i32,
    path: u64,
    flags: i32,
    change: Change,
}

enum Change {
    /// The mode bits.
    Mode(u32),
    /// Where the two `timespec`s are in the command's memory; 0: now.
    Times(u64),
}

impl Listener {
    /// `writable`: the workspace and the private directory; `secrets`: the plan's, never
    /// changed even beneath those.
    pub(super) fn new(fd: OwnedFd, writable: &[PathBuf], secrets: &[PathBuf]) -> Listener {
        Listener {
            fd,
            roots: writable
                .iter()
                .filter_map(|root| root.canonicalize().ok())
                .collect(),
            secrets: secrets
                .iter()
                .flat_map(|secret| {
                    std::iter::once(secret.clone()).chain(secret.canonicalize().ok())
                })
                .collect(),
        }
    }

    /// Whether Landlock grants the command `location` (canonical): beneath a writable path,
    /// and neither at or beneath a secret nor above one.
    fn may_change(&self, location: &Path) -> bool {
        self.roots.iter().any(|root| location.starts_with(root))
            && !self
                .secrets
                .iter()
                .any(|secret| location.starts_with(secret) || secret.starts_with(location))
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Receives one call and answers it; false when the listener has nothing more to give.
    pub(super) fn answer_one(&self) -> bool {
        // SAFETY: zeroed plain data, as SECCOMP_IOCTL_NOTIF_RECV requires.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: an ioctl on our listener with a struct of the kernel's layout.
        if unsafe { libc::ioctl(self.raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0 {
            // ENOENT: the caller died while we looked; EINTR: try again.
            return matches!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::ENOENT | libc::EINTR)
            );
        }
        let error = match self.perform(&notif) {
            Ok(()) => 0,
            Err(errno) => -errno,
        };
        let resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error,
            flags: 0,
        };
        // SAFETY: as above. A caller that died meanwhile makes it fail with ENOENT: nothing
        // to do then.
        unsafe { libc::ioctl(self.raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        true
    }

    /// Sets the mode or times the call asks for, if its file is inside; the `errno` else.
    fn perform(&self, notif: &libc::seccomp_notif) -> Result<(), i32> {
        let call = decode(&notif.data)?;
        let mem = File::open(format!("/proc/{}/mem", notif.pid)).map_err(errno)?;
        let path = read_path(&mem, call.path)?;
        let times = match call.change {
            Change::Times(0) | Change::Mode(_) => None,
            Change::Times(at) => {
                let mut raw = [0u8; 2 * std::mem::size_of::<libc::timespec>()];
                mem.read_exact_at(&mut raw, at).map_err(|_| libc::EFAULT)?;
                Some(raw)
            }
        };
        // The pid is the caller's only while the call waits: check after reading by it.
        let fsuid = caller_fsuid(notif.pid)?;
        let base = caller_dir(notif.pid, call.dirfd, &path)?;
        if !self.still_waiting(notif.id) {
            return Err(libc::ENOENT);
        }
        let target = open_target(base.as_ref(), &path, call.flags)?;
        let location =
            std::fs::read_link(format!("/proc/self/fd/{}", target.as_raw_fd())).map_err(errno)?;
        if !self.may_change(&location) {
            return Err(libc::EPERM);
        }
        // We may hold capabilities the command does not (root's CAP_FOWNER): only the file's
        // owner may change its mode or set its times, as the kernel would judge the caller.
        if owner(&target)? != fsuid {
            return Err(libc::EPERM);
        }
        match call.change {
            Change::Mode(mode) => set_mode(&target, mode),
            Change::Times(_) => set_times(&target, times.as_ref()),
        }
    }

    fn still_waiting(&self, id: u64) -> bool {
        // SAFETY: an ioctl on our listener with a pointer to a local.
        unsafe { libc::ioctl(self.raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
    }
}

/// The caller's file-system uid: the fourth id on the `Uid:` line of its status.
fn caller_fsuid(pid: u32) -> Result<u32, i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(errno)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(3))
        .and_then(|id| id.parse().ok())
        .ok_or(libc::EPERM)
}

fn owner(target: &OwnedFd) -> Result<u32, i32> {
    // SAFETY: zeroed plain data, filled by fstat on our descriptor.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(target.as_raw_fd(), &mut stat) } != 0 {
        return Err(errno(io::Error::last_os_error()));
    }
    Ok(stat.st_uid)
}

fn errno(err: io::Error) -> i32 {
    err.raw_os_error().unwrap_or(libc::EPERM)
}

fn decode(data: &libc::seccomp_data) -> Result<Call, i32> {
    let args = data.args;
    let nr = libc::c_long::from(data.nr);
    let call = |dirfd: u64, path, flags: u64, change| Call {
        dirfd: dirfd as i32,
        path,
        flags: flags as i32,
        change,
    };
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_chmod {
        let cwd = libc::AT_FDCWD as u32 as u64;
        return Ok(call(cwd, args[0], 0, Change::Mode(args[1] as u32)));
    }
    let res = if nr == libc::SYS_fchmodat {
        call(args[0], args[1], 0, Change::Mode(args[2] as u32))
    } else if nr == SYS_FCHMODAT2 {
        call(args[0], args[1], args[3], Change::Mode(args[2] as u32))
    } else if nr == libc::SYS_utimensat {
        call(args[0], args[1], args[3], Change::Times(args[2]))
    } else {
        debug_assert!(!MODE_CALLS_BY_PATH.contains(&nr));
        return Err(libc::ENOSYS);
    };
    if res.flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(libc::EINVAL);
    }
    Ok(res)
}

/// The NUL-terminated path at `at` in the caller's memory, a page at a time (the next page
/// may be unmapped).
fn read_path(mem: &File, mut at: u64) -> Result<Vec<u8>, i32> {
    const PAGE: u64 = 4096;
    let mut res = Vec::new();
    while res.len() < libc::PATH_MAX as usize {
        let mut chunk = vec![0u8; (PAGE - at % PAGE) as usize];
        let read = mem.read_at(&mut chunk, at).map_err(|_| libc::EFAULT)?;
        if read == 0 {
            return Err(libc::EFAULT);
        }
        if let Some(end) = chunk[..read].iter().position(|byte| *byte == 0) {
            res.extend_from_slice(&chunk[..end]);
            return Ok(res);
        }
        res.extend_from_slice(&chunk[..read]);
        at += read as u64;
    }
    Err(libc::ENAMETOOLONG)
}

/// The directory a relative `path` starts from: the caller's `dirfd`, or its working
/// directory; `None` for an absolute path.
fn caller_dir(pid: u32, dirfd: i32, path: &[u8]) -> Result<Option<OwnedFd>, i32> {
    if path.starts_with(b"/") {
        return Ok(None);
    }
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    // An empty path names the descriptor itself, whatever it is.
    let directory = if path.is_empty() {
        0
    } else {
        libc::O_DIRECTORY
    };
    open_path(None, link.as_bytes(), libc::O_PATH | directory, 0).map(Some)
}

/// Opens what the caller named, as `O_PATH`, never through a magic link (`/proc/self/…`
/// would be the helper's).
fn open_target(base: Option<&OwnedFd>, path: &[u8], flags: i32) -> Result<OwnedFd, i32> {
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(libc::ENOENT);
        }
        let base = base.ok_or(libc::ENOENT)?;
        // SAFETY: duplicates a descriptor we own.
        let raw = unsafe { libc::fcntl(base.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if raw < 0 {
            return Err(errno(io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    let nofollow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
        libc::O_NOFOLLOW
    } else {
        0
    };
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    open_path(base, path, libc::O_PATH | nofollow, RESOLVE_NO_MAGICLINKS)
}

/// `openat2(base or the current directory, path, flags | O_CLOEXEC, resolve)`.
fn open_path(
    base: Option<&OwnedFd>,
    path: &[u8],
    flags: i32,
    resolve: u64,
) -> Result<OwnedFd, i32> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let path = CString::new(path).map_err(|_| libc::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    let dir = base.map_or(libc::AT_FDCWD, |base| base.as_raw_fd());
    // SAFETY: a NUL-terminated path and a struct of the kernel's layout, both outliving it.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if raw < 0 {
        return Err(errno(io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
}

fn set_mode(target: &OwnedFd, mode: u32) -> Result<(), i32> {
    // SAFETY: zeroed plain data, filled by fstat on our descriptor.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(target.as_raw_fd(), &mut stat) } != 0 {
        return Err(errno(io::Error::last_os_error()));
    }
    if stat.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // What the kernel says to a mode on a link itself.
        return Err(libc::EOPNOTSUPP);
    }
    // Through the descriptor's own link: the file we checked, whatever its path is now.
    // The filter refused setuid and setgid bits before the call came here.
    let through = CString::new(format!("/proc/self/fd/{}", target.as_raw_fd()).as_bytes())
        .map_err(|_| libc::EINVAL)?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::chmod(through.as_ptr(), mode & 0o1777) } != 0 {
        return Err(errno(io::Error::last_os_error()));
    }
    Ok(())
}

fn set_times(target: &OwnedFd, times: Option<&[u8; 32]>) -> Result<(), i32> {
    let times: Option<[libc::timespec; 2]> = times.map(|raw| {
        let spec = |half: &[u8]| libc::timespec {
            tv_sec: i64::from_ne_bytes(half[..8].try_into().expect("8 bytes")),
            tv_nsec: i64::from_ne_bytes(half[8..16].try_into().expect("8 bytes")),
        };
        [spec(&raw[..16]), spec(&raw[16..])]
    });
    let pointer = times
        .as_ref()
        .map_or(std::ptr::null(), |times| times.as_ptr());
    // SAFETY: our descriptor, an empty NUL-terminated path and a local array (or null).
    let res = unsafe {
        libc::utimensat(
            target.as_raw_fd(),
            c"".as_ptr(),
            pointer,
            libc::AT_EMPTY_PATH,
        )
    };
    if res != 0 {
        return Err(errno(io::Error::last_os_error()));
    }
    Ok(())
}
