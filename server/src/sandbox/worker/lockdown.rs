//! OS limits of the worker: rlimits everywhere; on Linux also `no_new_privs`, a Landlock
//! ruleset that handles (and so forbids) every file-system access, and a seccomp filter that
//! makes `open`, `execve`, sockets, `ptrace` and the file-changing calls fail with `EPERM`. Each is best effort: a kernel without Landlock or
//! seccomp still gets the rest (the worker has no file handles and no tool of its own).

/// Before the interpreter starts.
pub(super) fn early() {
    close_inherited_descriptors();
    // Death with the server (`PR_SET_PDEATHSIG`) is set by the server between fork and exec
    // (`process::child_setup`), where it cannot be missed.
    #[cfg(target_os = "linux")]
    // SAFETY: mallopt takes plain integers here and changes only this process.
    unsafe {
        // One malloc arena: per-thread arenas reserve 64 MB of address space each, which
        // would eat the RLIMIT_AS budget.
        #[cfg(target_env = "gnu")]
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Closes every descriptor but stdin, stdout, stderr and the protocol's (fds 3 and 4).
fn close_inherited_descriptors() {
    crate::jail::close_descriptors_from(5, crate::jail::Close::Now);
}

fn set_limit(resource: i32, value: u64) {
    #[cfg(unix)]
    {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        unsafe {
            libc::setrlimit(resource as _, &limit);
        }
    }
    #[cfg(not(unix))]
    let _ = (resource, value);
}

/// Address space: what the interpreter already maps plus `memory_mb`. CPU seconds: a
/// backstop only (the server kills the worker at the wall-clock limit); the worker is
/// replaced after a bounded number of snippets, so one hour is plenty.
pub(super) fn limit_process(memory_mb: u64) {
    #[cfg(target_os = "linux")]
    {
        let baseline_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("VmSize:"))
                    .and_then(|line| {
                        line.split_whitespace()
                            .nth(1)
                            .and_then(|kb| kb.parse::<u64>().ok())
                    })
            })
            .unwrap_or(1024 * 1024);
        let bytes = (baseline_kb * 1024).saturating_add(memory_mb.saturating_mul(1024 * 1024));
        set_limit(libc::RLIMIT_AS as i32, bytes);
        set_limit(libc::RLIMIT_CPU as i32, 3600);
        set_limit(libc::RLIMIT_FSIZE as i32, 0);
        set_limit(libc::RLIMIT_CORE as i32, 0);
        set_limit(libc::RLIMIT_NPROC as i32, 0);
        set_limit(libc::RLIMIT_NOFILE as i32, 8);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = memory_mb;
}

/// Landlock, then seccomp, on this thread (the interpreter's) and any it would start.
pub(super) fn forbid_files_and_exec() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain prctl flag.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
        landlock();
        seccomp();
    }
}

#[cfg(target_os = "linux")]
fn landlock() {
    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
    }
    const CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock syscalls with a null attribute query the ABI version; then a ruleset
    // with no rules is created and enforced. No memory of ours is written.
    unsafe {
        let abi = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        );
        if abi < 1 {
            return;
        }
        let handled = match abi {
            1 => (1u64 << 13) - 1,
            2 => (1u64 << 14) - 1,
            _ => (1u64 << 15) - 1,
        };
        let attr = RulesetAttr {
            handled_access_fs: handled,
        };
        let fd = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        );
        if fd < 0 {
            return;
        }
        libc::syscall(libc::SYS_landlock_restrict_self, fd as libc::c_int, 0u32);
        libc::close(fd as libc::c_int);
    }
}

#[cfg(target_os = "linux")]
fn seccomp() {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut denied: Vec<libc::c_long> = vec![
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_socket,
            libc::SYS_socketpair,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_unlinkat,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_mkdirat,
            libc::SYS_symlinkat,
            libc::SYS_linkat,
            libc::SYS_fchmodat,
            libc::SYS_fchownat,
            libc::SYS_truncate,
            libc::SYS_mknodat,
            libc::SYS_name_to_handle_at,
            libc::SYS_open_by_handle_at,
        ];
        #[cfg(target_arch = "x86_64")]
        denied.extend([
            libc::SYS_open,
            libc::SYS_creat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_unlink,
            libc::SYS_rename,
            libc::SYS_mkdir,
            libc::SYS_rmdir,
            libc::SYS_symlink,
            libc::SYS_link,
            libc::SYS_chmod,
            libc::SYS_chown,
            libc::SYS_mknod,
        ]);
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let deny = libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32);
        let mut program = vec![
            // A foreign architecture (32-bit calls on a 64-bit kernel) could dodge the list.
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
            jump(ARCH, 1, 0),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // x32 system calls carry this bit.
            program.push(libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: 0x4000_0000,
            });
            program.push(stmt(libc::BPF_RET | libc::BPF_K, deny));
        }
        for nr in denied {
            program.push(jump(nr as u32, 0, 1));
            program.push(stmt(libc::BPF_RET | libc::BPF_K, deny));
        }
        program.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: the kernel copies the filter program during the call; `program` outlives it.
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            );
        }
    }
}
