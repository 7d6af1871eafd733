//! The seccomp filter of a command: system calls that reach other processes, the kernel's
//! configuration or the network fail with `EPERM`/`EACCES`; everything else is allowed.
//! The program is built before `fork`; installing it is one `prctl`.

/// The filter, ready to install.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    program: Vec<libc::sock_filter>,
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
    /// The filter of a command; `network` lets it open Internet sockets.
    pub(crate) fn new(network: bool) -> Filter {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            Filter {
                program: program(&denied_calls(), network),
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = network;
            Filter {
                program: Vec::new(),
            }
        }
    }

    /// Installs the filter on the calling thread (it is inherited and survives `exec`).
    /// Needs `no_new_privs`. Only a system call: safe after `fork`.
    pub(crate) fn install(&self) -> std::io::Result<()> {
        if self.program.is_empty() {
            return Err(std::io::Error::from(std::io::ErrorKind::Unsupported));
        }
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: the kernel copies the program during the call; `self` outlives it.
        let res = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            )
        };
        if res != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn program(denied: &[libc::c_long], network: bool) -> Vec<libc::sock_filter> {
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
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
    fn verdict(program: &[libc::sock_filter], arch: u32, nr: u32, arg0: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            let code = u32::from(ins.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                acc = match ins.k {
                    0 => nr,
                    4 => arch,
                    16 => arg0,
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
                } else {
                    panic!("instruction {code:#x}");
                };
                pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
            }
        }
    }

    #[test]
    fn network_and_process_calls_are_refused() {
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let eacces = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        let offline = program(&denied_calls(), false);
        let online = program(&denied_calls(), true);
        let socket = libc::SYS_socket as u32;
        let inet = libc::AF_INET as u32;
        let unix = libc::AF_UNIX as u32;
        assert_eq!(verdict(&offline, AUDIT_ARCH, socket, inet), eacces);
        assert_eq!(verdict(&offline, AUDIT_ARCH, socket, unix), eacces);
        assert_eq!(
            verdict(&online, AUDIT_ARCH, socket, inet),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(verdict(&online, AUDIT_ARCH, socket, unix), eacces);
        for program in [&offline, &online] {
            let ptrace = libc::SYS_ptrace as u32;
            assert_eq!(verdict(program, AUDIT_ARCH, ptrace, 0), eperm);
            let socketpair = libc::SYS_socketpair as u32;
            assert_eq!(
                verdict(program, AUDIT_ARCH, socketpair, unix),
                libc::SECCOMP_RET_ALLOW
            );
            let read = libc::SYS_read as u32;
            assert_eq!(
                verdict(program, AUDIT_ARCH, read, 0),
                libc::SECCOMP_RET_ALLOW
            );
            // i386 numbers on x86_64 (or any foreign architecture) get nothing.
            assert_eq!(
                verdict(program, 0x4000_0003, read, 0),
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
            );
        }
    }
}
