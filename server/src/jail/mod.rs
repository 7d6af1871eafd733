//! The jail: how every program the model causes to run is contained (`run_command` and the
//! typed tools that run ruff, pytest or git all come through [`run`]). The rules live here
//! and nowhere else; `docs/sandbox.md` carries the platform matrix.
//!
//! # Threat model
//!
//! **The attacker controls** the program and its arguments (the model follows whatever text
//! it read: a file, an issue, a dependency's README) and the workspace's files (a cloned
//! repository's scripts, `conftest.py`, `package.json`, build files), so everything the
//! program does once it runs. They do not control the server's settings or its environment.
//!
//! **What must never happen**, whatever the program does:
//! 1. a file changes outside the workspace and the run's private directory, or a protected
//!    one inside it (`policy::PROTECTED`: a git hook, an editor setting runs outside the jail);
//! 2. a packet leaves through the network, unless the user allowed it (`sandbox.network`);
//! 3. the server's process is read (its environment holds API keys), or any other process is
//!    read, traced or signalled, its memory included (System V shared memory);
//! 4. a secret outside the workspace is read (`~/.ssh`, cloud and registry credentials,
//!    browser profiles: [`SECRETS`]);
//! 5. a process or a System V IPC object outlives its run, or the run outlives its deadline;
//! 6. a file the command leaves behind runs with more privileges than whoever starts it later
//!    (setuid or setgid bits, file capabilities: root's ids, when the server runs as root).
//!
//! **Which layer stops what** on Linux (the program runs under `punie jail-exec`, a helper
//! that applies them between `fork` and `exec`; macOS: `seatbelt`):
//!
//! | outcome | first layer | second layer | without the first |
//! |---|---|---|---|
//! | 1 writes, 4 secrets | Landlock: reads only [`Access::readable`] minus [`SECRETS`], writes only the workspace (not when its root is protected: [`root_rule`]) and the private directory | every mount read-only but those two; protected paths re-mounted read-only inside them | refused: no command runs |
//! | 2 network | an empty network namespace | seccomp: no `socket` (Unix ones included; `socketpair` stays); Landlock: no TCP | seccomp |
//! | 3 processes | a PID namespace with its own `/proc`, an IPC namespace | Landlock: no ptrace or signals outside the sandbox; seccomp: no `ptrace`, `process_vm_*`, `pidfd_getfd` | Landlock; seccomp: no System V IPC, no other process's limits or scheduling (`prlimit`, `setpriority`, `sched_set*`, `ioprio_set` only on the caller) |
//! | 5 descendants | the PID namespace: when its init exits the kernel kills the rest (and the IPC namespace its objects) | the server's deadline closes the helper's control socket | `PR_SET_CHILD_SUBREAPER` and a sweep of every descendant, by the helper and, should it die, by the keeper above it (`linux/subreaper.rs`); seccomp: no System V IPC |
//! | 6 privileged files | seccomp: no `chmod`, `open` (creating), `mknod` with `S_ISUID`/`S_ISGID` | no `CAP_SETFCAP` (capabilities dropped) | — |
//! | environment | an allowlist: `PATH` (its absolute entries), `LANG`, and `HOME`/`TMPDIR` in the private directory; git configuration that switches off the programs a repository's own names (`git_config.rs`) | — | — |
//! | descriptors | the helper marks all but stdin, stdout and stderr close-on-exec (an editor's leaks included) | — | — |
//!
//! A program that answers read-class tools without a question (the language server behind
//! navigation, [`Session`]) reads less than a command: only what `read_file` reads without
//! asking and what it needs to run, never the workspace's files named like a secret
//! ([`Reach::Reader`], `reach.rs`).
//!
//! Every command also runs with `no_new_privs`, no capabilities (root's are dropped), a new
//! session (no terminal to inject into), no core dumps, first in line for the out-of-memory
//! killer, and at most 1024 processes where it has a user namespace of its own. A kernel that lacks a layer gets the
//! next one and a log line once; `punie sandbox --explain` shows what this machine enforces.
//!
//! # Why this mechanism (measured, docs/sandbox.md)
//!
//! Our own helper (namespaces, Landlock and seccomp in one process we control) rather than
//! bubblewrap: bubblewrap builds the same namespaces, but a file-system allowlist still needs
//! Landlock (bubblewrap has none) and so a helper inside it, which is a second `exec` and a
//! package the user must have; Codex and Claude Code both pair bubblewrap with such a helper.
//! The helper costs one `exec` of this binary; the whole jail adds a few milliseconds per
//! command (docs/sandbox.md, "Start-up cost").

mod bench;
mod git_config;
mod helper;
mod os_bytes;
mod protected;
mod reach;
mod run;
mod secret_names;
mod session;
mod special_dirs;
mod user_config;
mod workspace_secrets;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(any(target_os = "macos", test))]
mod seatbelt;

pub use bench::{StartupFigures, startup_bench};
pub use protected::{
    DIRS_AFTER_COMMAND, DIRS_BEFORE_COMMAND, Found, Judged, judge_entry, protected_for_command,
    protected_in, root_protected, root_rule,
};
pub use reach::Reach;
pub use run::{End, Failure, Finished, RunLimits, run};
pub use secret_names::secret_name;
pub use session::{Session, SessionEnd};
pub use special_dirs::{
    becomes_git_dir, becomes_virtual_env, in_git_dir, in_virtual_env, is_git_dir, is_virtual_env,
    linked_git_dirs, root_markers,
};
pub use user_config::{is_user_config, policy_file_path, user_config_in};
pub use workspace_secrets::{WorkspaceSecrets, workspace_secrets};

use crate::sync;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What commands may read outside the workspace unless a setting says otherwise: system
/// directories and the usual homes of toolchains (Python, Rust, Node, Go, git). Entries are
/// absolute or start with `~/`. [`SECRETS`] stay unreadable even inside these.
pub const DEFAULT_READABLE: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/nix",
    "/snap",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "~/.gitconfig",
    "~/.config/git",
    "~/.local/bin",
    "~/.local/lib",
    "~/.local/share/uv",
    "~/.pyenv",
    "~/.cargo",
    "~/.rustup",
    "~/.nvm",
    "~/.volta",
    "~/.bun",
    "~/.deno",
    "~/go",
];

/// Never readable by a command, even inside a readable entry or the workspace: credentials
/// and keys of the tools a developer uses, browser profiles, password stores, and the
/// system's own secrets (readable to root).
pub const SECRETS: &[&str] = &[
    "~/.ssh",
    "~/.gnupg",
    "~/.aws",
    "~/.azure",
    "~/.config/gcloud",
    "~/.kube",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/git/credentials",
    "~/.config/gh",
    "~/.config/hub",
    "~/.npmrc",
    "~/.yarnrc.yml",
    "~/.pypirc",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.vault-token",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.mozilla",
    "~/.config/google-chrome",
    "~/.config/chromium",
    "~/.config/BraveSoftware",
    "~/.config/microsoft-edge",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "~/.local/share/uv/credentials",
    "~/.config/containers/auth.json",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/NetworkManager/system-connections",
    "/etc/wpa_supplicant",
    "/etc/letsencrypt",
    "/etc/krb5.keytab",
    "/etc/ppp",
    "/etc/openvpn",
    "/etc/wireguard",
    "/etc/ipsec.secrets",
];

/// What a command may reach beyond the workspace: the user's settings
/// (`sandbox.network`, `sandbox.readable`; CLI `--allow-network`, `--readable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Internet sockets (Unix-domain sockets stay closed).
    pub network: bool,
    /// Absolute paths or `~/…`, read-only (and executable).
    pub readable: Vec<String>,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            network: false,
            readable: DEFAULT_READABLE
                .iter()
                .map(|entry| (*entry).to_owned())
                .collect(),
        }
    }
}

impl Access {
    /// This access, no wider than `bound`: the network only if both allow it, only the
    /// readable entries `bound` has. Also what was dropped (`network`, and each entry), for a
    /// source that may tighten but not widen (a project's editor settings).
    pub fn within(&self, bound: &Access) -> (Access, Vec<String>) {
        let mut dropped = Vec::new();
        if self.network && !bound.network {
            dropped.push("network".to_owned());
        }
        let (readable, wider): (Vec<String>, Vec<String>) = self
            .readable
            .iter()
            .cloned()
            .partition(|entry| bound.readable.contains(entry));
        dropped.extend(wider);
        let res = Access {
            network: self.network && bound.network,
            readable,
        };
        (res, dropped)
    }
}

/// Checks one `readable` entry: absolute, or `~` / `~/…`.
pub fn check_readable_entry(entry: &str) -> Result<(), String> {
    if entry == "~" || entry.starts_with("~/") || Path::new(entry).is_absolute() {
        Ok(())
    } else {
        Err(format!(
            "`{entry}` must be an absolute path or start with `~/`"
        ))
    }
}

/// `entry` with `~` replaced by `home`; `None` for a `~` entry when there is no home, or an
/// entry that is neither absolute nor under `~`.
/// The [`SECRETS`] entry that `path` (absolute, symlinks resolved) is or lies under, with the
/// home as `HOME` names it and as it resolves. Tool reads and writes refuse these too, so a
/// workspace that holds them (the home folder opened in an editor) does not hand them over.
///
/// Punie's own directories (`crate::own_dirs`: its models, its saved sessions) are refused the
/// same way, as "Punie's data directory".
pub fn secret_at(path: &Path) -> Option<&'static str> {
    let host = Host::current();
    let home = host.home;
    let resolved_home = home.as_deref().and_then(|home| home.canonicalize().ok());
    let secret = SECRETS.iter().copied().find(|entry| {
        [home.as_deref(), resolved_home.as_deref()]
            .into_iter()
            // An absolute entry expands to itself whatever the home is.
            .filter_map(|home| expand(entry, home))
            .any(|secret| path.starts_with(secret))
    });
    secret.or_else(|| {
        host.own_dirs
            .iter()
            .any(|dir| path.starts_with(dir))
            .then_some("Punie's data directory")
    })
}

fn expand(entry: &str, home: Option<&Path>) -> Option<PathBuf> {
    if entry == "~" {
        return home.map(Path::to_path_buf);
    }
    if let Some(rest) = entry.strip_prefix("~/") {
        return home.map(|home| home.join(rest));
    }
    let path = Path::new(entry);
    path.is_absolute().then(|| path.to_path_buf())
}

/// The absolute entries of a `PATH`, in order; `None` when none is left. An empty or relative
/// entry (`:/usr/bin`, `.`, `bin`) names a directory of the command's working directory, so
/// `pytest` the user approved would run the workspace's own `./pytest`.
fn absolute_entries(path: &str) -> Option<String> {
    let kept: Vec<&str> = path
        .split(':')
        .filter(|dir| Path::new(dir).is_absolute())
        .collect();
    (!kept.is_empty()).then(|| kept.join(":"))
}

/// The installations on `PATH`, readable so that the programs the user runs work in the
/// jail too: [`installation`] of each absolute entry (relative entries are skipped). `homes`
/// are the home as `HOME` names it and as it resolves.
fn path_installations(path: &str, homes: &[PathBuf]) -> Vec<PathBuf> {
    path.split(':')
        .map(Path::new)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| installation(dir, homes))
        .collect()
}

/// What running the programs of the directory `dir` needs. For `X/bin` outside the home,
/// the prefix `X` (a virtual environment, an npm prefix, a toolchain's home, whose libraries
/// sit beside `bin`). Inside the home only the parts of `X` that programs run from: a prefix
/// there is often a place of its own (`~/.local` holds `share/` and `state/`: keyrings,
/// histories; `~/.docker` holds keys), so `X/bin`, `X/lib`, `X/lib64`, `X/libexec`, and
/// `X/pyvenv.cfg` (Python finds a virtual environment's packages through it). For another
/// directory, the directory. Never `/`, the home or one of its ancestors (`~/bin` is granted
/// as itself).
fn installation(dir: &Path, homes: &[PathBuf]) -> Vec<PathBuf> {
    let too_wide =
        |dir: &Path| dir.parent().is_none() || homes.iter().any(|home| home.starts_with(dir));
    let prefix = dir
        .parent()
        .filter(|_| dir.file_name().is_some_and(|name| name == "bin"))
        .filter(|prefix| !too_wide(prefix));
    match prefix {
        Some(prefix) if homes.iter().any(|home| prefix.starts_with(home)) => runnable_parts(prefix),
        Some(prefix) => vec![prefix.to_path_buf()],
        None if too_wide(dir) => Vec::new(),
        None => vec![dir.to_path_buf()],
    }
}

/// The parts of an installation's prefix that its programs run from.
fn runnable_parts(prefix: &Path) -> Vec<PathBuf> {
    ["bin", "lib", "lib64", "libexec", "pyvenv.cfg"]
        .iter()
        .map(|part| prefix.join(part))
        .collect()
}

/// The most entries of one directory on `PATH` whose links [`linked_installations`] follows.
const LINKS_READ_PER_DIR: usize = 1000;

/// Where the links in the home's directories on `PATH` lead, readable too: `~/.local/bin/black`
/// is a link into the virtual environment pipx made for it (`~/.local/share/pipx/venvs/black`),
/// whose [`runnable_parts`] it needs (wherever it is: a link never grants a whole prefix); a
/// link to a program outside a `bin` directory needs only that file. Reads the directories
/// (at most [`LINKS_READ_PER_DIR`] entries each).
fn linked_installations(path: &str, homes: &[PathBuf]) -> Vec<PathBuf> {
    let in_home = |dir: &Path| homes.iter().any(|home| dir.starts_with(home));
    let mut res = Vec::new();
    for dir in path
        .split(':')
        .map(Path::new)
        .filter(|dir| dir.is_absolute())
    {
        let Some(entries) = in_home(dir).then(|| std::fs::read_dir(dir).ok()).flatten() else {
            continue;
        };
        for entry in entries.flatten().take(LINKS_READ_PER_DIR) {
            if !entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
                continue;
            }
            let Ok(target) = entry.path().canonicalize() else {
                continue;
            };
            let prefix = target
                .parent()
                .filter(|dir| dir.file_name().is_some_and(|name| name == "bin"))
                .and_then(Path::parent);
            match prefix {
                Some(prefix) => res.extend(runnable_parts(prefix)),
                None => res.push(target),
            }
        }
    }
    res
}

/// What the server knows of its own surroundings that a command inherits.
#[derive(Debug, Clone)]
pub struct Host {
    pub home: Option<PathBuf>,
    pub path: Option<String>,
    pub lang: Option<String>,
    /// Try namespaces (`PUNIE_JAIL_NAMESPACES=0` turns them off, to see the fallback).
    pub namespaces: bool,
    /// Punie's own directories (data, models, saved sessions: `crate::own_dirs`), secrets
    /// to commands and tools alike.
    pub own_dirs: Vec<PathBuf>,
}

impl Host {
    /// This process's `HOME`, `PATH` and `LANG`.
    pub fn current() -> Host {
        Host {
            home: std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute()),
            path: std::env::var("PATH").ok(),
            lang: std::env::var("LANG").ok(),
            namespaces: std::env::var_os("PUNIE_JAIL_NAMESPACES").is_none_or(|value| value != "0"),
            own_dirs: crate::own_dirs::protected(),
        }
    }
}

/// Everything the helper needs to run one command: computed by the server (from the
/// settings and the host; it reads only the home's directories on `PATH`, for their links),
/// applied by the helper. Paths are absolute; `~` is already expanded. Paths and
/// environment values travel as bytes ([`os_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub argv: Vec<String>,
    #[serde(with = "os_bytes::path")]
    pub cwd: PathBuf,
    #[serde(with = "os_bytes::env")]
    pub env: Vec<(String, OsString)>,
    /// Read and execute beneath these: the readable entries and the installations on `PATH`.
    #[serde(with = "os_bytes::paths")]
    pub readable: Vec<PathBuf>,
    /// Every right beneath these: the workspace and the private directory.
    #[serde(with = "os_bytes::paths")]
    pub writable: Vec<PathBuf>,
    /// Never granted, even beneath a readable or writable path.
    #[serde(with = "os_bytes::paths")]
    pub secrets: Vec<PathBuf>,
    /// Directories whose entries may be listed beneath them, not read: a reader's workspace
    /// directories that hold a secret, whose other entries are granted one by one
    /// ([`Reach::Reader`]).
    #[serde(with = "os_bytes::paths", default)]
    pub listable: Vec<PathBuf>,
    /// The run's private directory (created and removed by the server): `home/` and `tmp/`
    /// are made inside it; `home/` gets a link to each readable entry under the real home.
    #[serde(with = "os_bytes::path")]
    pub private_dir: PathBuf,
    #[serde(with = "os_bytes::optional_path")]
    pub real_home: Option<PathBuf>,
    /// Home-relative readable entries (`.cargo`, `.local/bin`) to link into `home/`.
    #[serde(with = "os_bytes::paths")]
    pub home_links: Vec<PathBuf>,
    pub network: bool,
    /// Use namespaces where the kernel allows them.
    pub namespaces: bool,
    /// Protected paths in the workspace (`policy::PROTECTED`: `.git`, `.vscode`, `.envrc`, …)
    /// that exist: mounted read-only where there is a mount namespace.
    #[serde(with = "os_bytes::paths")]
    pub read_only: Vec<PathBuf>,
    /// The helper's descriptor that becomes the command's standard input (a pipe from the
    /// server, for a [`Session`]); `None`: `/dev/null`.
    #[serde(default)]
    pub stdin_fd: Option<i32>,
}

impl Plan {
    pub fn new(
        argv: &[String],
        cwd: &Path,
        workspace: &Path,
        access: &Access,
        host: &Host,
        private_dir: &Path,
    ) -> Plan {
        let home = host.home.as_deref();
        let private_home = private_dir.join("home");
        let private_tmp = private_dir.join("tmp");
        let mut env: Vec<(String, OsString)> = vec![
            (
                "PATH".to_owned(),
                host.path
                    .as_deref()
                    .and_then(absolute_entries)
                    .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned())
                    .into(),
            ),
            ("HOME".to_owned(), private_home.into_os_string()),
            ("TMPDIR".to_owned(), private_tmp.into_os_string()),
            (
                "LANG".to_owned(),
                host.lang
                    .clone()
                    .unwrap_or_else(|| "C.UTF-8".to_owned())
                    .into(),
            ),
            ("TERM".to_owned(), "dumb".into()),
            ("NO_COLOR".to_owned(), "1".into()),
        ];
        env.extend(git_config::env(&[]));
        env.retain(|(_, value)| !value.as_bytes().contains(&0));
        let home_links = access
            .readable
            .iter()
            .filter_map(|entry| entry.strip_prefix("~/"))
            .map(PathBuf::from)
            .filter(|rel| {
                rel.components().count() > 0
                    && rel
                        .components()
                        .all(|part| matches!(part, std::path::Component::Normal(_)))
            })
            .collect();
        let mut readable: Vec<PathBuf> = access
            .readable
            .iter()
            .filter_map(|entry| expand(entry, home))
            .collect();
        if let Some(path) = &host.path {
            // Both spellings of the home: a PATH entry or a link may use either.
            let homes: Vec<PathBuf> = home
                .into_iter()
                .flat_map(|home| [Some(home.to_path_buf()), home.canonicalize().ok()])
                .flatten()
                .collect();
            readable.extend(path_installations(path, &homes));
            readable.extend(linked_installations(path, &homes));
        }
        readable.sort();
        readable.dedup();
        Plan {
            argv: argv.to_vec(),
            cwd: planned_cwd(cwd, workspace),
            env,
            readable,
            writable: vec![workspace.to_path_buf(), private_dir.to_path_buf()],
            secrets: SECRETS
                .iter()
                .filter_map(|entry| expand(entry, home))
                // Not one that holds the workspace: nothing in it could be granted.
                .chain(
                    host.own_dirs
                        .iter()
                        .filter(|dir| !workspace.starts_with(dir))
                        .cloned(),
                )
                .collect(),
            private_dir: private_dir.to_path_buf(),
            real_home: home.map(Path::to_path_buf),
            home_links,
            network: access.network,
            namespaces: host.namespaces,
            read_only: Vec::new(),
            listable: Vec::new(),
            stdin_fd: None,
        }
    }
}

/// Where the command starts, spelled as `getcwd` will give it there: `cwd` beneath the
/// workspace's canonical root, the links on the root's own path (the user's: `/tmp` on macOS,
/// a linked project) followed and none below it. A tool's `cwd` was resolved canonical when it
/// was judged, so a link below the root now was put there since (a directory swapped while
/// the question was open), and the helper starts nothing there (`helper::started_in`).
fn planned_cwd(cwd: &Path, workspace: &Path) -> PathBuf {
    let root = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf());
    match cwd
        .strip_prefix(workspace)
        .or_else(|_| cwd.strip_prefix(&root))
    {
        Ok(below)
            if below
                .components()
                .all(|part| matches!(part, std::path::Component::Normal(_))) =>
        {
            below.components().fold(root, |path, part| path.join(part))
        }
        _ => cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf()),
    }
}

impl Plan {
    /// Sets the protected paths to keep read-only. A writable path that is or lies in one (the
    /// workspace, when its root is protected: `protected::root_rule`) becomes readable only,
    /// so that every layer keeps it as it is: the mounts (it is not bound read-write),
    /// Landlock (no write right beneath it, namespaces or not) and the metadata the helper
    /// sets by path. Never the private directory: the command's `HOME` and `TMPDIR`.
    pub fn protect(&mut self, read_only: Vec<PathBuf>) {
        let (kept, demoted): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(&mut self.writable)
            .into_iter()
            .partition(|path| {
                *path == self.private_dir
                    || !read_only
                        .iter()
                        .any(|protected| path.starts_with(protected))
            });
        self.writable = kept;
        self.readable.extend(demoted);
        self.read_only = read_only;
    }

    /// Sets, after the fixed keys, the git configuration keys the scan of git's configuration
    /// found (`git_config::found`): each switches off a program the configuration names.
    fn switch_off_git_programs(&mut self, found: &[(String, String)]) {
        self.env.retain(|(name, _)| !git_config::is_ours(name));
        self.env.extend(git_config::env(found));
    }
}

/// The layers one command actually ran under, as the helper set them up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layers {
    /// `linux` or `macos`.
    pub platform: String,
    /// The kernel's Landlock ABI; 0 when it has none.
    pub landlock_abi: u32,
    pub seccomp: bool,
    /// An unprivileged user namespace was created (root needs none).
    pub user_namespace: bool,
    pub pid_namespace: bool,
    pub network_namespace: bool,
    /// `/proc` shows only the command's own processes.
    pub private_proc: bool,
    /// Every mount is read-only but the workspace and the private directory.
    pub read_only_mounts: bool,
    /// macOS: the command runs under a `sandbox-exec` profile.
    pub seatbelt: bool,
}

impl Layers {
    /// What is weaker than the full set, one line each (empty when nothing is).
    pub fn gaps(&self, network_allowed: bool) -> Vec<String> {
        let mut res = Vec::new();
        if self.platform != "linux" {
            if self.platform == "macos" {
                res.push(
                    "macOS: descendants that leave the command's process group are not tracked"
                        .to_owned(),
                );
            }
            return res;
        }
        if self.landlock_abi < 4 && !self.network_namespace && !network_allowed {
            res.push(format!(
                "Landlock ABI {} has no network rules; seccomp alone keeps commands off the network",
                self.landlock_abi
            ));
        }
        if self.landlock_abi < 6 {
            res.push(format!(
                "Landlock ABI {} does not scope signals: without a PID namespace a command could signal other processes of this user",
                self.landlock_abi
            ));
        }
        if !self.seccomp {
            res.push(
                "no seccomp filter: ptrace, io_uring, Unix sockets and setuid bits are not blocked by it"
                    .to_owned(),
            );
        }
        if self.pid_namespace && !self.read_only_mounts {
            res.push("read-only mounts could not be made (Linux < 5.12): Landlock alone stops writes, and seccomp refuses changing a file's mode, times or owner by path, inside the workspace too (`chmod +x`, `git init` and pip's scripts fail); protected paths inside the workspace (.git, .vscode, …) are not protected".to_owned());
        }
        if !self.pid_namespace {
            res.push("no namespaces (unavailable, or turned off with PUNIE_JAIL_NAMESPACES=0): descendants are tracked with PR_SET_CHILD_SUBREAPER and swept (by the helper, or by a keeper above it should the helper die); System V IPC is refused (with no seccomp filter, it would reach other processes' objects and outlive the command); other processes stay visible in /proc (their memory and environment are not readable, and seccomp lets limits and scheduling be set only on the caller: pid 0); a mode or times set by path are set by the helper only inside the workspace and the private dir, never on a secret or a directory that holds one (seccomp sends it those calls; owners by path and extended attributes are refused), but a file outside that the command owns and may read (the readable entries) can still get its mode (never writable by others, but writable by its group), times or group (any group of the user's) changed through a descriptor; protected paths inside the workspace (.git, .vscode, …) are not protected".to_owned());
        } else if !self.private_proc {
            res.push(
                "a private /proc could not be mounted: other processes stay visible in /proc"
                    .to_owned(),
            );
        }
        if !self.user_namespace {
            res.push("the number of a command's processes is not limited (root is exempt from RLIMIT_NPROC, and outside a user namespace it would count all of the user's processes): a fork bomb runs until the deadline".to_owned());
        }
        if !network_allowed && !self.network_namespace {
            res.push("no network namespace: seccomp blocks sockets instead".to_owned());
        }
        res
    }
}

/// Logs the gaps of `layers` once per distinct set, so that a weaker machine is said clearly
/// and only once.
fn note_layers(layers: &Layers, network_allowed: bool) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<Vec<String>>>> = OnceLock::new();
    let gaps = layers.gaps(network_allowed);
    if gaps.is_empty() {
        return;
    }
    let mut seen = sync::lock(SEEN.get_or_init(Default::default));
    if seen.insert(gaps.clone()) {
        tracing::warn!(
            "commands run with weaker containment on this machine: {} (punie sandbox --explain)",
            gaps.join("; ")
        );
    }
}

/// What the helper tells the server, one JSON line each, on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Report {
    /// The command runs, under these layers.
    Started { layers: Layers },
    /// It ended; `signal` when a signal ended it.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The program does not exist (or is not on `PATH`).
    NotFound { message: String },
    /// The program may not be run (outside what the jail lets it read, or not executable).
    NotPermitted { message: String },
    /// The jail could not be built; nothing ran.
    Refused { message: String },
    /// The program could not be started (an argument list too long, a bad executable).
    Failed { message: String },
}

/// The executable that runs `punie jail-exec` (and `punie sandbox-worker`): this very binary,
/// unless [`use_helper_executable`] or `PUNIE_SANDBOX_WORKER` named another (tests of crates
/// that link Punie). On Linux `/proc/self/exe` still runs it after the file on disk was
/// replaced or deleted (an upgrade while the server runs), so helper and server always speak
/// the same protocol.
pub fn punie_executable() -> std::io::Result<PathBuf> {
    if let Some(exe) = sync::read(&HELPER).clone() {
        return Ok(exe);
    }
    if let Some(exe) = std::env::var_os("PUNIE_SANDBOX_WORKER") {
        return Ok(PathBuf::from(exe));
    }
    let proc_self_exe = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_self_exe.exists() {
        return Ok(proc_self_exe.to_path_buf());
    }
    std::env::current_exe()
}

static HELPER: std::sync::RwLock<Option<PathBuf>> = std::sync::RwLock::new(None);

/// Makes `exe` the helper of every later command in this process (the sandbox calls it with
/// its worker binary, so that tests which link Punie run commands through the real binary).
pub fn use_helper_executable(exe: &Path) {
    *sync::write(&HELPER) = Some(exe.to_path_buf());
}

/// When [`close_descriptors_from`] closes a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    Now,
    /// At the next `exec`: this process still uses some of them, its program must not.
    OnExec,
}

/// Closes every descriptor from `first` up: one the server inherited without close-on-exec
/// (from an editor, a shell, a C library) must reach neither a command nor the sandbox
/// worker. Called first thing in both, before anything opens a descriptor of its own.
pub fn close_descriptors_from(first: u32, when: Close) {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range closes (or marks) descriptors of this process only; the caller
    // uses none of them, or only until its next exec.
    unsafe {
        let flags = match when {
            Close::Now => 0,
            Close::OnExec => libc::CLOSE_RANGE_CLOEXEC,
        };
        if libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) == 0 {
            return;
        }
    }
    #[cfg(unix)]
    // SAFETY: as above, one descriptor at a time (kernels before close_range, macOS).
    unsafe {
        let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(64, 65_536) as i32;
        for fd in first as i32..max {
            match when {
                Close::Now => libc::close(fd),
                Close::OnExec => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            };
        }
    }
}

/// The hidden `punie jail-exec`: reads one [`Plan`] from the control socket on stdin, runs
/// the command under every layer the kernel offers, and reports on the same socket.
pub fn helper_main() -> std::process::ExitCode {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        helper::main()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        std::process::ExitCode::FAILURE
    }
}

/// A report of what this machine enforces for commands under `access`: runs `true` through
/// the jail in a scratch workspace and describes each layer. For `punie sandbox --explain`.
pub fn explain(access: &Access) -> String {
    let mut res = String::new();
    let scratch = tempfile::Builder::new().prefix("punie-explain-").tempdir();
    let outcome = match &scratch {
        Ok(dir) => {
            let limits = RunLimits {
                deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
                output_bytes: 4096,
            };
            protected_for_command(dir.path())
                .and_then(|protected| {
                    run(
                        &["true".to_owned()],
                        dir.path(),
                        dir.path(),
                        &protected.paths,
                        access,
                        &limits,
                        &crate::cancel::CancelFlag::default(),
                    )
                })
                .map(|finished| finished.layers)
        }
        Err(err) => Err(Failure::Helper(format!(
            "cannot make a scratch workspace: {err}"
        ))),
    };
    match outcome {
        Ok(Some(layers)) => describe_layers(&mut res, &layers, access.network),
        Ok(None) => res.push_str("The helper ran the probe but did not report its layers.\n"),
        Err(err) => {
            res.push_str(&format!("Commands cannot run on this machine: {err}\n"));
        }
    }
    res.push_str(&format!(
        "\nNetwork: {}\n",
        if access.network {
            "allowed (Internet sockets; Unix-domain sockets stay closed)"
        } else {
            "off"
        }
    ));
    res.push_str("\nReadable outside the workspace (sandbox.readable, --readable):\n");
    for entry in &access.readable {
        res.push_str(&format!("  {entry}\n"));
    }
    res.push_str("\nNever readable, even inside those or the workspace:\n");
    for entry in SECRETS {
        res.push_str(&format!("  {entry}\n"));
    }
    for dir in Host::current().own_dirs {
        res.push_str(&format!("  {} (Punie's own data)\n", dir.display()));
    }
    res.push_str(
        "\nWritable: the workspace and the run's private directory (HOME and TMPDIR point into it).\n\
         Environment: PATH, LANG, HOME, TMPDIR, TERM=dumb, NO_COLOR=1, and git configuration\n\
         (GIT_CONFIG_*) that switches off the programs a repository's configuration names; nothing else.\n",
    );
    res
}

fn describe_layers(res: &mut String, layers: &Layers, network_allowed: bool) {
    let yes_no = |on: bool| if on { "yes" } else { "NO" };
    if layers.platform == "macos" {
        res.push_str(&format!(
            "Platform: macOS\n  sandbox-exec (Seatbelt) profile: {}\n  tracking: the command's process group\n",
            yes_no(layers.seatbelt)
        ));
    } else {
        let landlock = match layers.landlock_abi {
            0 => "NO".to_owned(),
            abi => format!(
                "ABI {abi} (files{}{})",
                if abi >= 4 { ", TCP" } else { "" },
                if abi >= 6 {
                    ", signal and abstract-socket scoping"
                } else {
                    ""
                }
            ),
        };
        res.push_str(&format!(
            "Platform: Linux\n  Landlock: {landlock}\n  seccomp filter: {}\n  user namespace: {}\n  PID namespace: {} (private /proc: {})\n  read-only mounts outside the workspace: {}\n  network namespace: {}\n  tracking of descendants: {}\n",
            yes_no(layers.seccomp),
            if layers.user_namespace {
                "yes"
            } else if layers.pid_namespace {
                "not needed (root)"
            } else {
                "NO"
            },
            yes_no(layers.pid_namespace),
            yes_no(layers.private_proc),
            yes_no(layers.read_only_mounts),
            if network_allowed {
                "not used (network allowed)"
            } else {
                yes_no(layers.network_namespace)
            },
            if layers.pid_namespace {
                "PID namespace"
            } else {
                "PR_SET_CHILD_SUBREAPER and a sweep"
            },
        ));
    }
    let gaps = layers.gaps(network_allowed);
    if gaps.is_empty() {
        res.push_str("  Every layer is in place.\n");
    } else {
        res.push_str("  Weaker than the full set:\n");
        for gap in gaps {
            res.push_str(&format!("  - {gap}\n"));
        }
    }
}

#[cfg(test)]
mod tests;
