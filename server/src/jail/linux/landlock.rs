//! Landlock (Linux ≥ 5.13) through its three system calls: a ruleset that handles every
//! file-system right the kernel knows, TCP bind/connect (ABI ≥ 4) when network is off, and
//! signal and abstract-socket scoping (ABI ≥ 6); rules that grant rights beneath a path.
//! `restrict_self` makes only system calls, so it is safe between `fork` and `exec`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) const EXECUTE: u64 = 1 << 0;
pub(crate) const WRITE_FILE: u64 = 1 << 1;
pub(crate) const READ_FILE: u64 = 1 << 2;
pub(crate) const READ_DIR: u64 = 1 << 3;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// The rights that apply to a file that is not a directory; a rule on a file may hold only these.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: u32 = 1;

/// Read, list and run.
pub(crate) const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
/// Every right (masked to what the kernel knows when a rule is added).
pub(crate) const ALL: u64 = u64::MAX;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel; 0 when it has none (too old, or Landlock
/// is not in the `lsm=` list).
pub(crate) fn abi() -> u32 {
    // SAFETY: with a null attribute and the VERSION flag the call only returns a number.
    let res = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(res).unwrap_or(0)
}

/// The file-system rights of `abi`.
fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    }
}

/// A ruleset being built; every right it handles is denied unless a rule grants it.
#[derive(Debug)]
pub(crate) struct Ruleset {
    fd: OwnedFd,
    handled_fs: u64,
}

impl Ruleset {
    /// Handles every file-system right of `abi`; TCP too when `deny_tcp` (ABI ≥ 4); scopes
    /// signals and abstract Unix sockets to the sandbox (ABI ≥ 6).
    pub(crate) fn new(abi: u32, deny_tcp: bool) -> io::Result<Ruleset> {
        let attr = RulesetAttr {
            handled_access_fs: fs_rights(abi),
            handled_access_net: if deny_tcp && abi >= 4 {
                NET_BIND_TCP | NET_CONNECT_TCP
            } else {
                0
            },
            scoped: if abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
        };
        // Older kernels take a shorter attribute; trailing fields they do not know must be 0.
        let size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` outlives the call and `size` does not exceed it.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Ruleset {
            // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            handled_fs: attr.handled_access_fs,
        })
    }

    /// Grants `access` beneath `path` (on the file itself when it is not a directory). A
    /// symlink is followed: the rule holds for what it points at.
    pub(crate) fn allow(&mut self, path: &Path, access: u64) -> io::Result<()> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a NUL-terminated path; O_PATH opens nothing for reading or writing.
        let raw = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let parent = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: fstat fills the zeroed struct for a descriptor we own.
        let is_dir = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            libc::fstat(parent.as_raw_fd(), &mut stat) == 0
                && stat.st_mode & libc::S_IFMT == libc::S_IFDIR
        };
        let mut allowed = access & self.handled_fs;
        if !is_dir {
            allowed &= FILE_RIGHTS;
        }
        if allowed == 0 {
            return Ok(());
        }
        let attr = PathBeneathAttr {
            allowed_access: allowed,
            parent_fd: parent.as_raw_fd(),
        };
        // SAFETY: `attr` and both descriptors outlive the call.
        let res = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Enforces the ruleset on the calling thread and everything it starts. Needs
    /// `no_new_privs` (or `CAP_SYS_ADMIN`). Only a system call: safe after `fork`.
    pub(crate) fn restrict_self(&self) -> io::Result<()> {
        // SAFETY: plain system call on a descriptor we own.
        let res =
            unsafe { libc::syscall(libc::SYS_landlock_restrict_self, self.fd.as_raw_fd(), 0u32) };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
