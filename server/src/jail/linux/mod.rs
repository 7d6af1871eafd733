//! The helper on Linux: namespaces where the kernel lets us make them, then an init that
//! starts the command under Landlock and seccomp and ends the namespace with it; without
//! namespaces, the helper itself tracks every descendant as a child subreaper, under a keeper
//! that takes over should the helper die ([`subreaper`]).
//!
//! Processes: `punie jail-exec` (the helper, outside) → init (PID 1 of the new PID
//! namespace) → the command (PID 2) and its descendants; without namespaces `punie jail-exec`
//! (the keeper) → its fork (the helper) → the command and its descendants. The helper waits for init or for
//! end-of-file on the control socket (the server stopping the command, or the server gone)
//! and then kills init; init's death makes the kernel kill every process in the namespace.
//! The helper is single-threaded, so `fork` is safe here; everything the command's side
//! does after its own `fork` (in `confine`) is a system call.

mod landlock;
mod metadata;
mod seccomp;
mod subreaper;

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::helper::{self, send};
use super::{Layers, Plan, Report};

/// Runs `plan` and reports on `control`; returns when the command and everything it
/// started are gone.
pub(super) fn contain(plan: &Plan, control: &UnixStream) {
    let mut layers = Layers {
        platform: "linux".to_owned(),
        landlock_abi: landlock::abi(),
        // SAFETY: a query with no arguments.
        seccomp: seccomp::SUPPORTED && unsafe { libc::prctl(libc::PR_GET_SECCOMP) } >= 0,
        ..Layers::default()
    };
    if layers.landlock_abi == 0 {
        send(
            control,
            &Report::Refused {
                message: "run_command: this kernel has no Landlock (Linux 5.13 or newer, with \
                          landlock in the lsm= list), so a command's files cannot be confined; \
                          commands are not run (punie sandbox --explain)"
                    .to_owned(),
            },
        );
        return;
    }
    let namespaces = if plan.namespaces {
        enter_namespaces(plan.network)
    } else {
        Namespaces {
            entered: false,
            user: false,
        }
    };
    layers.user_namespace = namespaces.user;
    layers.pid_namespace = namespaces.entered;
    layers.network_namespace = namespaces.entered && !plan.network;
    if !layers.network_namespace && !plan.network && !layers.seccomp {
        send(
            control,
            &Report::Refused {
                message: "run_command: neither a network namespace nor seccomp is available, so \
                          commands cannot be kept off the network; they are not run"
                    .to_owned(),
            },
        );
        return;
    }
    if !namespaces.entered {
        subreaper::keep(control, || {
            // SAFETY: plain prctl flag: orphaned descendants become our children.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            supervise(plan, &layers, control, Tracking::Subreaper);
        });
        return;
    }
    // SAFETY: this process is single-threaded (the helper starts no threads).
    match unsafe { libc::fork() } {
        -1 => send(
            control,
            &Report::Refused {
                message: format!(
                    "cannot start the command's init: {}",
                    io::Error::last_os_error()
                ),
            },
        ),
        0 => {
            // PID 1 of the new namespace: dies with the helper, whatever kills it.
            // SAFETY: plain prctl flag.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            // Nothing is mounted unless our mounts are private: as root they would otherwise
            // propagate to the host.
            let private = make_private();
            layers.read_only_mounts = private
                && read_only_except(&plan.writable)
                && protect(&plan.read_only, &plan.writable);
            layers.private_proc = private && mount_proc();
            if layers.network_namespace {
                loopback_up();
            }
            supervise(plan, &layers, control, Tracking::PidNamespace);
            // Exiting ends the namespace: the kernel kills whatever the command left.
            std::process::exit(0);
        }
        init => watch_init(init, control),
    }
}

struct Namespaces {
    /// New mount, PID, IPC and (without network) network namespaces.
    entered: bool,
    /// Through a user namespace (not root).
    user: bool,
}

/// Unshares mount, PID, IPC and network namespaces (through a user namespace that maps our
/// own ids when we are not root). All or nothing: on failure we stay where we are.
/// The IPC namespace keeps System V shared memory, message queues and semaphores (and POSIX
/// message queues) of other processes out of reach, and the kernel frees those the command
/// made when the namespace ends with it.
fn enter_namespaces(network: bool) -> Namespaces {
    // SAFETY: getters without arguments.
    let (uid, gid, euid) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid()) };
    let user = euid != 0;
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if !network {
        flags |= libc::CLONE_NEWNET;
    }
    if user {
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags) } != 0 {
        return Namespaces {
            entered: false,
            user: false,
        };
    }
    if user {
        // Our own ids, unchanged: files keep their owners (git checks them), and nothing
        // inside is root.
        let mapped = std::fs::write("/proc/self/setgroups", "deny")
            .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n")))
            .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n")));
        if mapped.is_err() {
            // Unmapped ids still work (the kernel checks the real ones); keep going.
            tracing::debug!("jail: cannot map ids in the user namespace: {mapped:?}");
        }
    }
    Namespaces {
        entered: true,
        user,
    }
}

/// Makes every mount of our namespace private, so that nothing we mount reaches the host.
fn make_private() -> bool {
    // SAFETY: mount(2) with a NUL-terminated target and null source, type and data.
    unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == 0
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// Sets or clears read-only on the mount at `path` and every mount beneath it (Linux 5.12).
fn set_read_only(path: &CStr, read_only: bool) -> bool {
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is NUL-terminated and `attr` outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) == 0
    }
}

/// Makes every mount read-only, then binds each writable path onto itself read-write: a
/// second layer under Landlock for contents, and the only one for metadata (Landlock does
/// not cover `chmod`, `chown`, `utimes` or extended attributes).
fn read_only_except(writable: &[PathBuf]) -> bool {
    if !set_read_only(c"/", true) {
        return false;
    }
    writable.iter().all(|path| bind_onto_itself(path, false))
}

/// Binds each protected path of the workspace onto itself read-only (after the workspace's
/// own read-write bind, so that it wins). A path that resolves outside the writable paths is
/// read-only already.
///
/// First each directory between a writable root and a protected path is bound onto itself
/// read-write: a mount point cannot be renamed or removed (`EBUSY`), so a command cannot move
/// `sub/` (its `.git` with it) aside and build a `sub/.git` of its own in its place.
fn protect(read_only: &[PathBuf], writable: &[PathBuf]) -> bool {
    let writable: Vec<PathBuf> = writable
        .iter()
        .filter_map(|root| root.canonicalize().ok())
        .collect();
    let protected: Vec<PathBuf> = read_only
        .iter()
        .filter_map(|path| path.canonicalize().ok())
        .filter(|path| writable.iter().any(|root| path.starts_with(root)))
        .collect();
    let mut parents: Vec<&Path> = protected
        .iter()
        .flat_map(|path| {
            path.ancestors()
                .skip(1)
                .take_while(|dir| !writable.iter().any(|root| dir == root))
        })
        .collect();
    // Outermost first, so that each bind carries the ones made inside it before.
    parents.sort_by_key(|dir| (dir.components().count(), *dir));
    parents.dedup();
    parents.iter().all(|dir| bind_onto_itself(dir, false))
        && protected.iter().all(|path| bind_onto_itself(path, true))
}

fn bind_onto_itself(path: &Path, read_only: bool) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: mount(2) binding a NUL-terminated path onto itself.
    let bound = unsafe {
        libc::mount(
            c_path.as_ptr(),
            c_path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) == 0
    };
    bound && set_read_only(&c_path, read_only)
}

/// Mounts a `/proc` that shows only this namespace's processes.
fn mount_proc() -> bool {
    // SAFETY: mount(2) with NUL-terminated strings and null data.
    unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) == 0
    }
}

/// Brings up `lo` in the new network namespace, so that a test suite can talk to a server it
/// starts itself on 127.0.0.1.
fn loopback_up() {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; 16],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: an ioctl on a socket we own, with a struct of the kernel's ifreq layout.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return;
        }
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req);
        }
        libc::close(sock);
    }
}

/// The helper outside the namespace: waits for init to end, or for the server to stop the
/// command (end-of-file on the control socket), then kills init.
fn watch_init(init: libc::pid_t, control: &UnixStream) {
    wait_for_child_or_stop(init, control, None);
    // SAFETY: signals and reaps our own child.
    unsafe {
        libc::kill(init, libc::SIGKILL);
        libc::waitpid(init, std::ptr::null_mut(), 0);
    }
}

/// Blocks until `child` has ended (not reaped) or the control socket reaches end-of-file,
/// answering the calls the command's filter sends to `listener` meanwhile.
/// Returns true when the child ended.
fn wait_for_child_or_stop(
    child: libc::pid_t,
    control: &UnixStream,
    mut listener: Option<&metadata::Listener>,
) -> bool {
    let pidfd = pidfd_open(child);
    let mut sink = [0u8; 256];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: control.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(pidfd) = &pidfd {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(listener) = listener {
            fds.push(libc::pollfd {
                fd: listener.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Without a pidfd (Linux < 5.3) look at the child every 10 ms.
        let timeout = if pidfd.is_some() { -1 } else { 10 };
        // SAFETY: a valid array of pollfd structs.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if fds[0].revents != 0 {
            match (&*control).read(&mut sink) {
                Ok(0) => return false,
                Err(err) if err.kind() != io::ErrorKind::Interrupted => return false,
                _ => {}
            }
        }
        if let Some(current) = listener {
            let revents = fds.last().map_or(0, |fd| fd.revents);
            // Hung up: no process uses the filter any more.
            if revents & libc::POLLIN != 0 {
                if !current.answer_one() {
                    listener = None;
                }
            } else if revents != 0 {
                listener = None;
            }
        }
        // SAFETY: WNOWAIT leaves the child to be reaped by the caller.
        let ended = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                child as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            ) == 0
                && info.si_pid() != 0
        };
        if ended {
            return true;
        }
    }
}

/// A descriptor that becomes readable when `child` (ours, not yet reaped) exits; `None`
/// before Linux 5.3.
pub(super) fn pidfd_open(child: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child, 0) };
    (raw >= 0).then(|| {
        // SAFETY: a fresh descriptor nothing else owns.
        unsafe { OwnedFd::from_raw_fd(raw as i32) }
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// We are PID 1 of the command's namespace.
    PidNamespace,
    /// We are a child subreaper: every orphaned descendant becomes our child.
    Subreaper,
}

/// Starts the command under Landlock and seccomp, reports, and waits for it; then makes sure
/// nothing it started is left.
fn supervise(plan: &Plan, layers: &Layers, control: &UnixStream, tracking: Tracking) {
    let ruleset = match ruleset(plan, layers.landlock_abi) {
        Ok(ruleset) => ruleset,
        Err(err) => {
            send(
                control,
                &Report::Refused {
                    message: format!("cannot build the command's Landlock rules: {err}"),
                },
            );
            return;
        }
    };
    // Metadata outside: read-only mounts keep it; without, the helper decides modes and
    // times set by path, where it can listen (as a subreaper; init waits on its children).
    let metadata = if layers.read_only_mounts {
        seccomp::Metadata::ReadOnlyMounts
    } else if tracking == Tracking::Subreaper {
        seccomp::Metadata::Helper
    } else {
        seccomp::Metadata::Refused
    };
    let filter = layers
        .seccomp
        .then(|| seccomp::Filter::new(plan.network, layers.pid_namespace, metadata));
    // The command hands the filter's listener to us over this pair, then closes its copy.
    let handoff = match filter
        .as_ref()
        .filter(|_| metadata == seccomp::Metadata::Helper)
    {
        Some(_) => match UnixStream::pair() {
            Ok(pair) => Some(pair),
            Err(err) => {
                send(
                    control,
                    &Report::Refused {
                        message: format!("cannot start the command: {err}"),
                    },
                );
                return;
            }
        },
        None => None,
    };
    let handoff_fd = handoff.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
    // Opened before the command starts, so that the sweep needs no new descriptor.
    let children = match tracking {
        Tracking::Subreaper => subreaper::Children::open(),
        Tracking::PidNamespace => None,
    };
    // In our own user namespace the count is of the sandbox's processes alone; outside one it
    // would count all of the user's (and root is exempt).
    let max_processes = layers.user_namespace.then_some(MAX_PROCESSES);
    let (program, args) = plan.argv.split_first().expect("a plan has a program");
    let planned_cwd = match helper::planned_cwd(plan) {
        Ok(cwd) => cwd,
        Err(refused) => {
            send(control, &refused);
            return;
        }
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&plan.cwd);
    // SAFETY: `started_in` and `confine` make only system calls (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            helper::started_in(&planned_cwd)?;
            confine(&ruleset, filter.as_ref(), max_processes, handoff_fd)
        });
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let report =
                helper::elsewhere(plan, &err).unwrap_or_else(|| spawn_failure(program, &err));
            send(control, &report);
            return;
        }
    };
    // The command has run `confine`: the listener waits in the pair (without it, the calls
    // that would come to us fail with ENOSYS).
    let listener = handoff.and_then(|(ours, _)| {
        let listener =
            receive_fd(&ours).map(|fd| metadata::Listener::new(fd, &plan.writable, &plan.secrets));
        if listener.is_none() {
            tracing::debug!("jail: no seccomp listener came from the command");
        }
        listener
    });
    send(
        control,
        &Report::Started {
            layers: layers.clone(),
        },
    );
    let pid = child.id() as libc::pid_t;
    match tracking {
        Tracking::PidNamespace => {
            // Reap everything (orphans come to PID 1) until the command itself ends.
            loop {
                let mut status = 0;
                // SAFETY: waits for any child of ours.
                let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
                if reaped == pid {
                    send(control, &exit_report(status));
                    return;
                }
                if reaped < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    return;
                }
            }
        }
        Tracking::Subreaper => {
            let ended = wait_for_child_or_stop(pid, control, listener.as_ref()).then(|| {
                let mut status = 0;
                // SAFETY: reaps our own child, which has ended.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                status
            });
            // The report comes after the sweep: a run whose descendants may live on is
            // never reported as having ended.
            match subreaper::sweep(children.as_ref(), Some(pid)) {
                Ok(()) => {
                    if let Some(status) = ended {
                        send(control, &exit_report(status));
                    }
                }
                Err(err) => send(
                    control,
                    &Report::Failed {
                        message: format!(
                            "cannot make sure that everything the command started has stopped \
                             (its process group was killed): {err}"
                        ),
                    },
                ),
            }
        }
    }
}

/// Processes (and threads) a command and its descendants may have at once, where that can
/// be counted for the sandbox alone: a fork bomb stops there.
const MAX_PROCESSES: u64 = 1024;

/// In the command's process, between `fork` and `exec`: a new session (no terminal), no
/// core dumps, first in line for the out-of-memory killer, a process limit, no new
/// privileges, no capabilities, then Landlock and seccomp. System calls only.
fn confine(
    ruleset: &landlock::Ruleset,
    filter: Option<&seccomp::Filter>,
    max_processes: Option<u64>,
    handoff: Option<RawFd>,
) -> io::Result<()> {
    // SAFETY: each call takes plain integers or pointers to locals.
    unsafe {
        libc::setsid();
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        // The kernel's out-of-memory killer takes the command before the server or the
        // editor (raising one's own score needs no privilege).
        let oom = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if oom >= 0 {
            libc::write(oom, b"1000".as_ptr().cast(), 4);
            libc::close(oom);
        }
        if let Some(max) = max_processes {
            let limit = libc::rlimit {
                rlim_cur: max,
                rlim_max: max,
            };
            libc::setrlimit(libc::RLIMIT_NPROC, &limit);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        drop_capabilities()?;
    }
    ruleset.restrict_self()?;
    if let Some(filter) = filter
        && let Some(listener) = filter.install()?
    {
        // The command must not keep the listener: it would answer its own calls.
        let sent = handoff.map_or(Ok(()), |socket| send_fd(socket, listener));
        // SAFETY: closes the descriptor the kernel just gave us.
        unsafe { libc::close(listener) };
        sent?;
    }
    Ok(())
}

/// Room for one descriptor's control message, aligned as `cmsghdr`, and the one byte of
/// data a message needs.
struct FdMessage {
    control: [u64; 4],
    byte: [u8; 1],
    iov: libc::iovec,
}

impl FdMessage {
    fn new() -> FdMessage {
        FdMessage {
            control: [0; 4],
            byte: [0],
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
        }
    }

    /// The header over this buffer, with `control_len` bytes of control room. No
    /// allocation: usable between `fork` and `exec`.
    fn header(&mut self, control_len: usize) -> libc::msghdr {
        self.iov = libc::iovec {
            iov_base: self.byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: zeroed plain data, its pointers then set to fields of `self`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut self.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.control.as_mut_ptr().cast();
        msg.msg_controllen = control_len.min(std::mem::size_of_val(&self.control));
        msg
    }
}

/// Sends `fd` over the Unix socket `socket` (`SCM_RIGHTS`). System calls only.
fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
    let mut buffer = FdMessage::new();
    let size = std::mem::size_of::<RawFd>() as u32;
    // SAFETY: CMSG_* compute offsets within the buffer, which outlives the call.
    unsafe {
        let msg = buffer.header(libc::CMSG_SPACE(size) as usize);
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
        if libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The descriptor waiting in `socket` (sent by [`send_fd`]), without blocking.
fn receive_fd(socket: &UnixStream) -> Option<OwnedFd> {
    let mut buffer = FdMessage::new();
    // SAFETY: as in `send_fd`; the kernel fills the control room with at most its length.
    unsafe {
        let mut msg = buffer.header(usize::MAX);
        let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
        if libc::recvmsg(socket.as_raw_fd(), &mut msg, flags) < 1 {
            return None;
        }
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>());
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// Empties the bounding, ambient, effective, permitted and inheritable capability sets, so
/// that root (or the owner of a user namespace) runs the command with none.
///
/// # Safety
/// System calls only; call between `fork` and `exec`.
unsafe fn drop_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl and capset with integers and pointers to locals.
    unsafe {
        for cap in 0..64 {
            // Fails with EINVAL past the last capability, and with EPERM without
            // CAP_SETPCAP (then there is nothing to drop).
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn spawn_failure(program: &str, err: &io::Error) -> Report {
    match err.kind() {
        io::ErrorKind::NotFound => Report::NotFound {
            message: format!("command not found: '{program}'"),
        },
        io::ErrorKind::PermissionDenied => Report::NotPermitted {
            message: format!(
                "cannot execute '{program}': Permission denied (outside what commands may run, or not executable)"
            ),
        },
        _ => Report::Failed {
            message: err.to_string(),
        },
    }
}

fn exit_report(status: i32) -> Report {
    if libc::WIFEXITED(status) {
        Report::Exited {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else {
        Report::Exited {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    }
}

/// The command's Landlock ruleset: read and execute beneath the readable paths, every right
/// beneath the writable ones, never a secret; listing beneath the listable ones; `/proc`
/// readable (with a PID namespace it shows only the sandbox), and the harmless devices.
fn ruleset(plan: &Plan, abi: u32) -> io::Result<landlock::Ruleset> {
    let mut res = landlock::Ruleset::new(abi, !plan.network)?;
    let secrets: Vec<PathBuf> = plan
        .secrets
        .iter()
        .flat_map(|secret| {
            // Both spellings: the path as listed and where a symlink there leads.
            let canonical = secret.canonicalize().ok();
            std::iter::once(secret.clone()).chain(canonical)
        })
        .collect();
    for path in &plan.readable {
        grant(&mut res, path, landlock::READ, &secrets)?;
    }
    for path in &plan.writable {
        grant(&mut res, path, landlock::ALL, &secrets)?;
    }
    for path in &plan.listable {
        allow_existing(&mut res, path, landlock::READ_DIR)?;
    }
    if plan.network {
        // resolv.conf is often a link into /run (systemd-resolved, resolvconf).
        if let Ok(resolv) = Path::new("/etc/resolv.conf").canonicalize() {
            grant(&mut res, &resolv, landlock::READ, &secrets)?;
        }
    }
    allow_existing(
        &mut res,
        Path::new("/proc"),
        landlock::READ_FILE | landlock::READ_DIR,
    )?;
    for device in ["/dev/null", "/dev/zero", "/dev/full"] {
        allow_existing(
            &mut res,
            Path::new(device),
            landlock::READ_FILE | landlock::WRITE_FILE,
        )?;
    }
    for device in ["/dev/random", "/dev/urandom"] {
        allow_existing(&mut res, Path::new(device), landlock::READ_FILE)?;
    }
    Ok(res)
}

fn allow_existing(ruleset: &mut landlock::Ruleset, path: &Path, access: u64) -> io::Result<()> {
    match ruleset.allow(path, access) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        res => res,
    }
}

/// Grants `access` beneath `path`, except beneath any of `secrets`: a directory that holds a
/// secret is granted child by child instead (so it cannot be listed itself), and a symlink
/// that leads to or into a secret is skipped. A symlink among those children is granted only
/// where it leads inside `path`, as a rule on `path` itself would cover it: `.env` in a
/// workspace must not make its link to `~/.cargo/config.toml` readable.
fn grant(
    ruleset: &mut landlock::Ruleset,
    path: &Path,
    access: u64,
    secrets: &[PathBuf],
) -> io::Result<()> {
    match path.canonicalize() {
        Ok(path) => grant_canonical(ruleset, &path, &path, access, secrets),
        Err(_) => Ok(()),
    }
}

/// [`grant`] of `path`, canonical, lying in `top`, the path granted.
fn grant_canonical(
    ruleset: &mut landlock::Ruleset,
    top: &Path,
    path: &Path,
    access: u64,
    secrets: &[PathBuf],
) -> io::Result<()> {
    if secrets.iter().any(|secret| path.starts_with(secret)) {
        return Ok(());
    }
    if !secrets.iter().any(|secret| secret.starts_with(path)) {
        return allow_existing(ruleset, path, access);
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        // A listed entry of a canonical directory is canonical, unless it is a link.
        let entry = if entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
            match entry.path().canonicalize() {
                Ok(target) if target.starts_with(top) => target,
                _ => continue,
            }
        } else {
            entry.path()
        };
        grant_canonical(ruleset, top, &entry, access, secrets)?;
    }
    Ok(())
}
