//! The seccomp filter of a command: system calls that reach other processes, the kernel's
//! configuration or the network fail with `EPERM`/`EACCES`, and so does any call that would
//! give a file the setuid or setgid bit, System V IPC where the command has no IPC
//! namespace, another process's limits or scheduling where it has no PID namespace, and
//! changing a file's metadata by path where no read-only mounts keep the files outside the
//! workspace; everything else is allowed.
//! The program is built before `fork`; installing it is one `prctl`.
//!
//! Why limits and scheduling: `prlimit`, `setpriority`, `sched_setscheduler`,
//! `sched_setaffinity` and `ioprio_set` reach any process of the same user (root: of root)
//! with no capability, and Landlock has no hook for them (it scopes `ptrace` and signals,
//! not these). `RLIMIT_CPU` of one second makes the kernel kill the target, `RLIMIT_AS` makes
//! the server abort, `RLIMIT_NOFILE` of 0 keeps the helper from finding the command's
//! descendants. In a PID namespace no pid names a process outside, so the filter need not;
//! without one these calls may name only the caller (pid 0, as `setrlimit`, `nice` and
//! `sched_setaffinity(0, …)` do) and fail with `EPERM` for any other pid: the filter cannot
//! tell the caller's own pid from another.
//!
//! Why setuid and setgid bits: a command may write the workspace, and an owner may mark its
//! own file setuid without any capability. A setuid file left in the workspace runs with its
//! owner's ids for whoever starts it later (root's, when the server runs as root; the user's
//! or their group's, for another local user). Every way to set a mode goes through a call
//! whose mode argument the filter can read (`chmod`, `open` with `O_CREAT`, `mknod`, …; `cp
//! -p`, `install -m`, `tar x` all end there), except `openat2`, whose mode sits in a struct:
//! it fails with `ENOSYS`, and the C library falls back to `openat`. File capabilities
//! (`security.capability`) need `CAP_SETFCAP`, which the command does not have.
//!
//! Why metadata by path: Landlock confines what a command opens, creates, renames and
//! removes, but not `chmod`, `chown`, `utimes` or extended attributes. With namespaces, every
//! mount but the workspace's is read-only, which stops those; without (user namespaces
//! unavailable), a command could make the user's `~/.ssh` world-writable or backdate a file.
//! The filter cannot see paths, so there a mode or times set by path go to the helper (a
//! seccomp user notification), which sets them itself only on a file inside the writable
//! paths ([`super::metadata`]): `chmod +x script`, `git init` and pip keep working. Owners
//! by path are refused. A call on a descriptor reaches only a file the command could open,
//! and Landlock lets it open outside the workspace only the readable entries, for reading;
//! `fchmod`, `fchown` and `futimens` there need the file to be the command's own, and
//! `fchmod` may never make a file writable by others. Extended attributes (ACLs too) fail
//! as on a file system without them, by descriptor too: no ordinary command needs them.

/// The filter, ready to install.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    program: Vec<libc::sock_filter>,
    /// Some calls go to the helper: installing gives a listener.
    notifies: bool,
}

/// What keeps the metadata (mode, times, owner) of files outside the workspace, which
/// Landlock does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metadata {
    /// Every mount outside the workspace is read-only: the filter need not.
    ReadOnlyMounts,
    /// Modes and times set by path go to the helper, which sets them only inside.
    Helper,
    /// Modes and times set by path are refused (no helper listens).
    Refused,
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Whether this architecture has a filter (x86_64 and aarch64).
pub(crate) const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// Calls no command needs and a sandboxed one could abuse: tracing and reading other
/// processes, kernel modules and keyrings, mounts and namespaces of others, io_uring (it
/// opens sockets and files past this filter), BPF and perf (kernel memory).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn denied_calls() -> Vec<libc::c_long> {
    let mut res = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        libc::SYS_pidfd_getfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_syslog,
        libc::SYS_acct,
        libc::SYS_quotactl,
    ];
    #[cfg(target_arch = "x86_64")]
    res.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    res
}

/// A call that changes a process's limits or scheduling, allowed only on the caller itself
/// where its pids may name processes outside the sandbox (no PID namespace).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Debug, Clone, Copy)]
struct OwnProcessCall {
    nr: libc::c_long,
    /// The index of the argument that names the process (0: the caller).
    pid: u32,
    /// For a call that first says what `pid` names (a process, a group, a user): its index,
    /// and the kinds for which a pid of 0 is the caller or its process group.
    which: Option<(u32, &'static [u32])>,
    /// For a call that only reads when this pointer is null (`prlimit64`'s new limits): its
    /// index. Reading another process's limits changes nothing.
    unless_null: Option<u32>,
}

/// `PRIO_PROCESS` and `PRIO_PGRP` (not `PRIO_USER`: 0 there is every process of the user).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const OWN_PRIORITY_TARGETS: [u32; 2] = [libc::PRIO_PROCESS, libc::PRIO_PGRP];

/// `IOPRIO_WHO_PROCESS` and `IOPRIO_WHO_PGRP` (not `IOPRIO_WHO_USER`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const OWN_IOPRIO_TARGETS: [u32; 2] = [1, 2];

/// Every call that changes another process's limits, scheduling or memory placement by pid.
/// The command's process group and session are its own (`setsid` before it runs), so a pid
/// of 0 with `PRIO_PGRP` stays inside.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn own_process_calls() -> Vec<OwnProcessCall> {
    let by_pid = |nr| OwnProcessCall {
        nr,
        pid: 0,
        which: None,
        unless_null: None,
    };
    vec![
        OwnProcessCall {
            unless_null: Some(2),
            ..by_pid(libc::SYS_prlimit64)
        },
        OwnProcessCall {
            pid: 1,
            which: Some((0, &OWN_PRIORITY_TARGETS)),
            ..by_pid(libc::SYS_setpriority)
        },
        OwnProcessCall {
            pid: 1,
            which: Some((0, &OWN_IOPRIO_TARGETS)),
            ..by_pid(libc::SYS_ioprio_set)
        },
        by_pid(libc::SYS_sched_setscheduler),
        by_pid(libc::SYS_sched_setparam),
        by_pid(libc::SYS_sched_setaffinity),
        by_pid(libc::SYS_sched_setattr),
        by_pid(libc::SYS_migrate_pages),
        by_pid(libc::SYS_move_pages),
    ]
}

/// Calls that act on another process through a pidfd, which the filter cannot judge:
/// refused where there is no PID namespace (Landlock's ptrace rule covers `process_madvise`
/// too; `process_mrelease` frees a dying process's memory).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PIDFD_CALLS: [libc::c_long; 2] = [libc::SYS_process_madvise, libc::SYS_process_mrelease];

/// Calls that fail with `ENOSYS`, as if this kernel had none, so that programs fall back to
/// an older call the filter can inspect: `openat2` passes its mode inside a struct.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const UNAVAILABLE_CALLS: [libc::c_long; 1] = [libc::SYS_openat2];

/// `fchmodat2` (Linux 6.6), numbered alike on every architecture; not in `libc` for aarch64.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) const SYS_FCHMODAT2: libc::c_long = 452;

/// Calls that change a file's owner by path, refused where no read-only mount protects the
/// files outside the workspace (the filter cannot tell a path inside the workspace from one
/// outside); modes and times by path go to the helper instead ([`MODE_CALLS_BY_PATH`],
/// `utimensat`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn metadata_calls() -> Vec<libc::c_long> {
    let mut res = vec![libc::SYS_fchownat];
    #[cfg(target_arch = "x86_64")]
    res.extend([
        libc::SYS_chown,
        libc::SYS_lchown,
        // The C library sets times through utimensat; these older calls have no users.
        libc::SYS_utime,
        libc::SYS_utimes,
        libc::SYS_futimesat,
    ]);
    res
}

/// Calls that set extended attributes, by path or by descriptor (a read-only one is enough
/// for a file one owns), where no read-only mount protects the files outside the workspace.
/// They fail as on a file system without extended attributes (`EOPNOTSUPP`), so that `cp
/// -p`, whose ACL falls back to `fchmod` then, keeps working.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const XATTR_CALLS: [libc::c_long; 9] = [
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    SYS_SETXATTRAT,
    SYS_REMOVEXATTRAT,
    SYS_FILE_SETATTR,
];

/// The calls that set a mode by path: the helper decides them where no mount does.
#[cfg(target_arch = "x86_64")]
pub(super) const MODE_CALLS_BY_PATH: [libc::c_long; 3] =
    [libc::SYS_chmod, libc::SYS_fchmodat, SYS_FCHMODAT2];
#[cfg(target_arch = "aarch64")]
pub(super) const MODE_CALLS_BY_PATH: [libc::c_long; 2] = [libc::SYS_fchmodat, SYS_FCHMODAT2];

/// `setxattrat`, `removexattrat` (Linux 6.13) and `file_setattr` (6.17), numbered alike on
/// every architecture.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_SETXATTRAT: libc::c_long = 463;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_REMOVEXATTRAT: libc::c_long = 466;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_FILE_SETATTR: libc::c_long = 469;

/// A call that sets a file's mode, and where its arguments are.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Debug, Clone, Copy)]
struct ModeCall {
    nr: libc::c_long,
    /// The index of the argument that holds the mode.
    mode: u32,
    /// The index of the `open` flags, for a call that sets the mode only when it creates the
    /// file (`O_CREAT`, `O_TMPFILE`); `None`: always.
    flags: Option<u32>,
}

/// The mode bits no command may set: the file would run with its owner's ids, or group's.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const PRIVILEGE_BITS: u32 = libc::S_ISUID | libc::S_ISGID;

/// The `open` flags that create a file, and so set its mode (`O_TMPFILE` without the
/// `O_DIRECTORY` it includes).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const CREATING_FLAGS: u32 = (libc::O_CREAT | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;

/// Every call that sets a file's mode: aarch64 has only the `*at` forms.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn mode_calls() -> Vec<ModeCall> {
    let always = |nr, mode| ModeCall {
        nr,
        mode,
        flags: None,
    };
    let mut res = vec![
        always(libc::SYS_fchmod, 1),
        always(libc::SYS_fchmodat, 2),
        always(SYS_FCHMODAT2, 2),
        always(libc::SYS_mknodat, 2),
        ModeCall {
            nr: libc::SYS_openat,
            mode: 3,
            flags: Some(2),
        },
    ];
    #[cfg(target_arch = "x86_64")]
    res.extend([
        always(libc::SYS_chmod, 1),
        always(libc::SYS_creat, 1),
        always(libc::SYS_mknod, 1),
        ModeCall {
            nr: libc::SYS_open,
            mode: 2,
            flags: Some(1),
        },
    ]);
    res
}

/// System V IPC: shared memory, message queues and semaphores live in the kernel, not in a
/// process. Outside an IPC namespace of its own a command would reach other processes'
/// objects (by key, or by an id it guesses) and leave its own behind after the run, where
/// the out-of-memory killer cannot free them: refused there.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYSV_IPC_CALLS: [libc::c_long; 12] = [
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmdt,
    libc::SYS_shmctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
];

/// `socket` domains a command may open when the network is allowed. Unix-domain sockets are
/// never allowed (they reach local services: the Docker daemon, SSH and GPG agents, D-Bus);
/// `socketpair` stays allowed, it connects a process only with itself.
const NETWORK_DOMAINS: [u32; 3] = [
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
    // getaddrinfo asks the kernel for the host's addresses over route netlink.
    libc::AF_NETLINK as u32,
];

impl Filter {
    /// The filter of a command; `network` lets it open Internet sockets; `namespaces` (the
    /// command has PID and IPC namespaces of its own) lets it use System V IPC and name
    /// other processes by pid; `metadata` says what keeps files outside the workspace.
    pub(crate) fn new(network: bool, namespaces: bool, metadata: Metadata) -> Filter {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            let mut denied = denied_calls();
            let own_process = if namespaces {
                Vec::new()
            } else {
                denied.extend(SYSV_IPC_CALLS);
                denied.extend(PIDFD_CALLS);
                own_process_calls()
            };
            let by_path = match metadata {
                Metadata::ReadOnlyMounts => None,
                Metadata::Helper => Some(libc::SECCOMP_RET_USER_NOTIF),
                Metadata::Refused => Some(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            };
            if by_path.is_some() {
                denied.extend(metadata_calls());
            }
            Filter {
                program: program(&denied, &own_process, network, by_path),
                notifies: metadata == Metadata::Helper,
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = (network, namespaces, metadata);
            Filter {
                program: Vec::new(),
                notifies: false,
            }
        }
    }

    /// Installs the filter on the calling thread (it is inherited and survives `exec`).
    /// Needs `no_new_privs`. Only a system call: safe after `fork`. Returns the listener of
    /// the calls that go to the helper, if any (the caller hands it over and closes it: the
    /// command must not answer its own calls).
    pub(crate) fn install(&self) -> std::io::Result<Option<std::os::fd::RawFd>> {
        if self.program.is_empty() {
            return Err(std::io::Error::from(std::io::ErrorKind::Unsupported));
        }
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        let flags = if self.notifies {
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        } else {
            0
        };
        // SAFETY: the kernel copies the program during the call; `self` outlives it.
        let res = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if res < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(self.notifies.then_some(res as std::os::fd::RawFd))
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
/// The BPF program: `denied` fail with `EPERM`, and so do `own_process` calls on any
/// process but the caller; with `by_path` (no read-only mounts outside the workspace), modes
/// and times set by path get that verdict (the helper, or refused), and `fchmod` to a mode
/// writable by others is refused.
fn program(
    denied: &[libc::c_long],
    own_process: &[OwnProcessCall],
    network: bool,
    by_path: Option<u32>,
) -> Vec<libc::sock_filter> {
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
    // The low 32 bits of an argument (both architectures are little-endian); modes and flags
    // are ints, so those decide.
    let arg = |index: u32| ARG0 + 8 * index;
    let load = |offset: u32| libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset,
    };
    let ret = |k: u32| libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // Skips the next instruction unless the accumulator equals `k`.
    let skip_unless = |k: u32| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k,
    };
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let eacces = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
    let mut res = vec![
        // Another architecture's numbers (32-bit calls on a 64-bit kernel) would dodge the
        // list below: refuse them all.
        load(ARCH),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH,
        },
        ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        load(NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 calls carry this bit.
        res.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        });
        res.push(ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    for nr in denied {
        res.push(skip_unless(*nr as u32));
        res.push(ret(eperm));
    }
    for nr in UNAVAILABLE_CALLS {
        res.push(skip_unless(nr as u32));
        res.push(ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    // Jumps `jt` ahead when the accumulator equals `k`, `jf` ahead when not.
    let jump_if = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    for call in own_process {
        let mut block = Vec::new();
        if let Some((which, kinds)) = call.which {
            // One of `kinds`: on to the pid; none: refused.
            block.push(load(arg(which)));
            for (index, kind) in kinds.iter().enumerate() {
                block.push(jump_if(*kind, (kinds.len() - index) as u8, 0));
            }
            block.push(ret(eperm));
        }
        block.push(load(arg(call.pid)));
        block.push(jump_if(0, 0, 1));
        block.push(ret(libc::SECCOMP_RET_ALLOW));
        if let Some(pointer) = call.unless_null {
            // Another process: only to read (a null pointer, both halves zero).
            block.extend([
                load(arg(pointer)),
                jump_if(0, 0, 3),
                load(arg(pointer) + 4),
                jump_if(0, 0, 1),
                ret(libc::SECCOMP_RET_ALLOW),
            ]);
        }
        block.push(ret(eperm));
        res.push(jump_if(call.nr as u32, 0, block.len() as u8));
        res.extend(block);
    }
    // Jumps to the instruction `n` ahead when the accumulator has none of the bits `k`.
    let unless_any = |k: u32, n: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
        jt: 0,
        jf: n,
        k,
    };
    if by_path.is_some() {
        for nr in XATTR_CALLS {
            res.push(skip_unless(nr as u32));
            res.push(ret(libc::SECCOMP_RET_ERRNO | libc::EOPNOTSUPP as u32));
        }
    }
    if let Some(by_path) = by_path {
        // utimensat(dirfd, path, times, flags): by descriptor (a null path: both halves of
        // the pointer zero) as usual; by path, to the helper.
        res.extend([
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 6,
                k: libc::SYS_utimensat as u32,
            },
            load(arg(1)),
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 2,
                k: 0,
            },
            load(arg(1) + 4),
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 1,
                jf: 0,
                k: 0,
            },
            ret(by_path),
            ret(libc::SECCOMP_RET_ALLOW),
        ]);
    }
    for call in mode_calls() {
        // A file outside the workspace the command owns and may read: never writable by
        // others (`~/.cargo/bin/cargo` made world-writable is anyone's to replace).
        let forbidden = if by_path.is_some() && call.nr == libc::SYS_fchmod {
            PRIVILEGE_BITS | libc::S_IWOTH
        } else {
            PRIVILEGE_BITS
        };
        let allowed = match by_path {
            Some(by_path) if MODE_CALLS_BY_PATH.contains(&call.nr) => by_path,
            _ => libc::SECCOMP_RET_ALLOW,
        };
        let mut block = Vec::new();
        if let Some(flags) = call.flags {
            block.push(load(arg(flags)));
            // Not creating: to the final allow.
            block.push(unless_any(CREATING_FLAGS, 3));
        }
        block.push(load(arg(call.mode)));
        block.push(unless_any(forbidden, 1));
        block.push(ret(eperm));
        block.push(ret(allowed));
        res.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: block.len() as u8,
            k: call.nr as u32,
        });
        res.extend(block);
    }
    // socket(domain, …): the domain is an int, so its low 32 bits decide.
    let allowed_domains: &[u32] = if network { &NETWORK_DOMAINS } else { &[] };
    res.push(libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: 2 + 2 * allowed_domains.len() as u8,
        k: libc::SYS_socket as u32,
    });
    res.push(load(ARG0));
    for domain in allowed_domains {
        res.push(skip_unless(*domain));
        res.push(ret(libc::SECCOMP_RET_ALLOW));
    }
    res.push(ret(eacces));
    res.push(ret(libc::SECCOMP_RET_ALLOW));
    res
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// Runs the BPF program on one system call, as the kernel would (only the instructions
    /// `program` emits).
    fn verdict(program: &[libc::sock_filter], arch: u32, nr: libc::c_long, args: &[u32]) -> u32 {
        let args: Vec<u64> = args.iter().map(|arg| u64::from(*arg)).collect();
        verdict_wide(program, arch, nr, &args)
    }

    /// [`verdict`] with 64-bit arguments (pointers).
    fn verdict_wide(
        program: &[libc::sock_filter],
        arch: u32,
        nr: libc::c_long,
        args: &[u64],
    ) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            let code = u32::from(ins.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                acc = match ins.k {
                    0 => nr as u32,
                    4 => arch,
                    offset @ 16.. if offset % 4 == 0 => {
                        let arg = args.get((offset as usize - 16) / 8).copied().unwrap_or(0);
                        // Little-endian: the low half first.
                        if offset % 8 == 0 {
                            arg as u32
                        } else {
                            (arg >> 32) as u32
                        }
                    }
                    other => panic!("load of offset {other}"),
                };
                pc += 1;
            } else if code == libc::BPF_RET | libc::BPF_K {
                return ins.k;
            } else {
                let taken = if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                    acc == ins.k
                } else if code == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K {
                    acc >= ins.k
                } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                    acc & ins.k != 0
                } else {
                    panic!("instruction {code:#x}");
                };
                pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
            }
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn network_and_process_calls_are_refused() {
        let eacces = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        let offline = program(&denied_calls(), &[], false, None);
        let online = program(&denied_calls(), &[], true, None);
        let socket = libc::SYS_socket;
        let inet = libc::AF_INET as u32;
        let unix = libc::AF_UNIX as u32;
        assert_eq!(verdict(&offline, AUDIT_ARCH, socket, &[inet]), eacces);
        assert_eq!(verdict(&offline, AUDIT_ARCH, socket, &[unix]), eacces);
        assert_eq!(verdict(&online, AUDIT_ARCH, socket, &[inet]), ALLOW);
        assert_eq!(verdict(&online, AUDIT_ARCH, socket, &[unix]), eacces);
        for program in [&offline, &online] {
            assert_eq!(verdict(program, AUDIT_ARCH, libc::SYS_ptrace, &[]), EPERM);
            let socketpair = libc::SYS_socketpair;
            assert_eq!(verdict(program, AUDIT_ARCH, socketpair, &[unix]), ALLOW);
            assert_eq!(verdict(program, AUDIT_ARCH, libc::SYS_read, &[]), ALLOW);
            // i386 numbers on x86_64 (or any foreign architecture) get nothing.
            assert_eq!(
                verdict(program, 0x4000_0003, libc::SYS_read, &[]),
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
            );
        }
    }

    #[test]
    fn sysv_ipc_is_refused_without_an_ipc_namespace() {
        let mut denied = denied_calls();
        let own = program(&denied, &[], false, None);
        denied.extend(SYSV_IPC_CALLS);
        let shared = program(&denied, &[], false, None);
        for nr in [
            libc::SYS_shmget,
            libc::SYS_shmat,
            libc::SYS_msgget,
            libc::SYS_semop,
        ] {
            assert_eq!(verdict(&own, AUDIT_ARCH, nr, &[]), ALLOW);
            assert_eq!(verdict(&shared, AUDIT_ARCH, nr, &[]), EPERM);
        }
    }

    #[test]
    fn other_processes_limits_and_scheduling_are_refused_without_a_pid_namespace() {
        let own = program(&denied_calls(), &[], false, None);
        let shared = program(&denied_calls(), &own_process_calls(), false, None);
        let other = 4242;
        let limits = 0x7fff_1234_5678_u64;
        for (nr, args) in [
            // prlimit(pid, RLIMIT_CPU, &new, NULL): what kills a process of the same user.
            (libc::SYS_prlimit64, [other, 0, limits, 0]),
            (libc::SYS_prlimit64, [other, 0, limits << 32, 0]),
            (
                libc::SYS_setpriority,
                [libc::PRIO_PROCESS as u64, other, 19, 0],
            ),
            // PRIO_USER with 0: every process of the caller's user.
            (libc::SYS_setpriority, [libc::PRIO_USER as u64, 0, 19, 0]),
            (libc::SYS_ioprio_set, [1, other, 3 << 13, 0]),
            (libc::SYS_ioprio_set, [3, 0, 3 << 13, 0]),
            (libc::SYS_sched_setscheduler, [other, 5, limits, 0]),
            (libc::SYS_sched_setparam, [other, limits, 0, 0]),
            (libc::SYS_sched_setaffinity, [other, 128, limits, 0]),
            (libc::SYS_sched_setattr, [other, limits, 0, 0]),
            (libc::SYS_migrate_pages, [other, 64, limits, limits]),
            (libc::SYS_move_pages, [other, 1, limits, limits]),
            // A pid whose upper half is set is still that pid to the kernel (an int).
            (
                libc::SYS_sched_setaffinity,
                [other | 1 << 32, 128, limits, 0],
            ),
        ] {
            assert_eq!(verdict_wide(&own, AUDIT_ARCH, nr, &args), ALLOW, "{nr}");
            assert_eq!(verdict_wide(&shared, AUDIT_ARCH, nr, &args), EPERM, "{nr}");
        }
        // The caller itself (pid 0: setrlimit, nice, sched_setaffinity(0, …)), its own
        // process group, and reading another's limits stay allowed.
        for (nr, args) in [
            (libc::SYS_prlimit64, [0, 7, limits, limits]),
            (libc::SYS_prlimit64, [other, 7, 0, limits]),
            (libc::SYS_setpriority, [libc::PRIO_PROCESS as u64, 0, 10, 0]),
            (libc::SYS_setpriority, [libc::PRIO_PGRP as u64, 0, 10, 0]),
            (libc::SYS_ioprio_set, [1, 0, 3 << 13, 0]),
            (libc::SYS_ioprio_set, [2, 0, 3 << 13, 0]),
            (libc::SYS_sched_setaffinity, [0, 128, limits, 0]),
            (libc::SYS_sched_setscheduler, [0, 5, limits, 0]),
            (libc::SYS_sched_setattr, [0, limits, 0, 0]),
            (libc::SYS_getpriority, [libc::PRIO_USER as u64, 0, 0, 0]),
        ] {
            assert_eq!(verdict_wide(&shared, AUDIT_ARCH, nr, &args), ALLOW, "{nr}");
        }
    }

    #[test]
    fn no_call_sets_the_setuid_or_setgid_bit() {
        let program = program(&denied_calls(), &[], false, None);
        let verdict = |nr, args: &[u32]| verdict(&program, AUDIT_ARCH, nr, args);
        let setuid = libc::S_ISUID | 0o755;
        let setgid = libc::S_ISGID | 0o755;
        // fchmod(fd, mode), as `cp -p` and `tar x` call it (with the file type bits).
        assert_eq!(
            verdict(libc::SYS_fchmod, &[3, libc::S_IFREG | setuid]),
            EPERM
        );
        assert_eq!(verdict(libc::SYS_fchmod, &[3, 0o755]), ALLOW);
        // fchmodat(dirfd, path, mode), as `chmod` and `install -m` call it.
        let at = libc::AT_FDCWD as u32;
        for fchmodat in [libc::SYS_fchmodat, SYS_FCHMODAT2] {
            assert_eq!(verdict(fchmodat, &[at, 0, setgid]), EPERM);
            assert_eq!(verdict(fchmodat, &[at, 0, 0o1777]), ALLOW);
        }
        // openat(dirfd, path, flags, mode): the mode counts only when the file is created.
        let creat = (libc::O_CREAT | libc::O_WRONLY) as u32;
        let tmpfile = (libc::O_TMPFILE | libc::O_WRONLY) as u32;
        let openat = libc::SYS_openat;
        assert_eq!(verdict(openat, &[at, 0, creat, setuid]), EPERM);
        assert_eq!(verdict(openat, &[at, 0, tmpfile, setgid]), EPERM);
        assert_eq!(verdict(openat, &[at, 0, creat, 0o644]), ALLOW);
        let directory = (libc::O_DIRECTORY | libc::O_RDONLY) as u32;
        assert_eq!(verdict(openat, &[at, 0, directory, setuid]), ALLOW);
        // mknodat(dirfd, path, mode, dev) of a regular file needs no capability.
        let mknodat = libc::SYS_mknodat;
        assert_eq!(verdict(mknodat, &[at, 0, libc::S_IFREG | setuid]), EPERM);
        assert_eq!(verdict(mknodat, &[at, 0, libc::S_IFIFO | 0o600]), ALLOW);
        // openat2 hides its mode in a struct: "not implemented", so libc uses openat.
        assert_eq!(
            verdict(libc::SYS_openat2, &[at, 0, 0, 24]),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(verdict(libc::SYS_chmod, &[0, setuid]), EPERM);
            assert_eq!(verdict(libc::SYS_creat, &[0, setgid]), EPERM);
            assert_eq!(verdict(libc::SYS_creat, &[0, 0o755]), ALLOW);
            assert_eq!(
                verdict(libc::SYS_mknod, &[0, libc::S_IFREG | setuid]),
                EPERM
            );
            assert_eq!(verdict(libc::SYS_open, &[0, creat, setuid]), EPERM);
            assert_eq!(verdict(libc::SYS_open, &[0, 0, setuid]), ALLOW);
        }
    }

    #[test]
    fn metadata_by_path_goes_to_the_helper_without_read_only_mounts() {
        const NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;
        let mut denied = denied_calls();
        let mounted = program(&denied, &[], false, None);
        denied.extend(metadata_calls());
        let guarded = program(&denied, &[], false, Some(NOTIFY));
        let at = libc::AT_FDCWD as u32;
        let path = 0x7fff_1234_5678_u64;
        // fchmodat(AT_FDCWD, path, 0777): what `chmod 777 ~/.ssh` calls: the helper decides;
        // a setuid bit is refused before it.
        for nr in [libc::SYS_fchmodat, SYS_FCHMODAT2] {
            assert_eq!(verdict(&mounted, AUDIT_ARCH, nr, &[at, 1, 0o777]), ALLOW);
            assert_eq!(verdict(&guarded, AUDIT_ARCH, nr, &[at, 1, 0o777]), NOTIFY);
            let setuid = libc::S_ISUID | 0o755;
            assert_eq!(verdict(&guarded, AUDIT_ARCH, nr, &[at, 1, setuid]), EPERM);
        }
        assert_eq!(
            verdict(&mounted, AUDIT_ARCH, libc::SYS_fchownat, &[at, 1]),
            ALLOW
        );
        assert_eq!(
            verdict(&guarded, AUDIT_ARCH, libc::SYS_fchownat, &[at, 1]),
            EPERM
        );
        // Extended attributes (ACLs too): as on a file system without them.
        let unsupported = libc::SECCOMP_RET_ERRNO | libc::EOPNOTSUPP as u32;
        for nr in XATTR_CALLS {
            assert_eq!(verdict(&mounted, AUDIT_ARCH, nr, &[3]), ALLOW);
            assert_eq!(verdict(&guarded, AUDIT_ARCH, nr, &[3]), unsupported);
        }
        // utimensat with a path (`touch -d` on a file it cannot open), whatever half of the
        // pointer is set: the helper; with none (futimens, as `touch` calls it on its own
        // descriptor): allowed.
        let utimensat = libc::SYS_utimensat;
        for pointer in [path, path << 32, path & 0xffff_ffff] {
            let args = [u64::from(at), pointer, 0, 0];
            assert_eq!(verdict_wide(&mounted, AUDIT_ARCH, utimensat, &args), ALLOW);
            assert_eq!(verdict_wide(&guarded, AUDIT_ARCH, utimensat, &args), NOTIFY);
        }
        assert_eq!(
            verdict(&guarded, AUDIT_ARCH, utimensat, &[3, 0, 0, 0]),
            ALLOW
        );
        // fchmod on a descriptor: as usual, but never writable by others.
        let fchmod = libc::SYS_fchmod;
        assert_eq!(verdict(&guarded, AUDIT_ARCH, fchmod, &[3, 0o755]), ALLOW);
        assert_eq!(verdict(&guarded, AUDIT_ARCH, fchmod, &[3, 0o664]), ALLOW);
        assert_eq!(verdict(&guarded, AUDIT_ARCH, fchmod, &[3, 0o666]), EPERM);
        assert_eq!(verdict(&mounted, AUDIT_ARCH, fchmod, &[3, 0o666]), ALLOW);
        // Creating a file with 0666 (the umask takes the rest) stays allowed.
        let creat = (libc::O_CREAT | libc::O_WRONLY) as u32;
        let openat = libc::SYS_openat;
        assert_eq!(
            verdict(&guarded, AUDIT_ARCH, openat, &[at, 1, creat, 0o666]),
            ALLOW
        );
        assert_eq!(
            verdict(&guarded, AUDIT_ARCH, libc::SYS_fchown, &[3, 0]),
            ALLOW
        );
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                verdict(&guarded, AUDIT_ARCH, libc::SYS_chmod, &[1, 0o644]),
                NOTIFY
            );
            for nr in [libc::SYS_lchown, libc::SYS_utimes] {
                assert_eq!(verdict(&mounted, AUDIT_ARCH, nr, &[1, 0o644]), ALLOW);
                assert_eq!(verdict(&guarded, AUDIT_ARCH, nr, &[1, 0o644]), EPERM);
            }
        }
    }
}
