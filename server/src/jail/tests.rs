//! Tests of the rules that need no kernel: the plan a command gets, settings entries, and
//! what a weaker machine is told. The containment itself is tested end to end
//! (`tests/e2e/jail.rs`), as root and as an unprivileged user.

use std::path::{Path, PathBuf};

use super::*;

fn host() -> Host {
    Host {
        home: Some(PathBuf::from("/home/dev")),
        path: Some("/home/dev/.cargo/bin:/usr/bin".to_owned()),
        lang: None,
        namespaces: true,
        own_dirs: vec![PathBuf::from("/home/dev/.local/share/punie")],
    }
}

#[test]
fn the_plan_keeps_only_the_allowlisted_environment() {
    let plan = Plan::new(
        &["pytest".to_owned(), "-q".to_owned()],
        Path::new("/work/repo/tests"),
        Path::new("/work/repo"),
        &Access::default(),
        &host(),
        Path::new("/tmp/punie-run-1"),
    );
    let names: Vec<&str> = plan
        .env
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !git_config::is_ours(name))
        .collect();
    assert_eq!(
        names,
        ["PATH", "HOME", "TMPDIR", "LANG", "TERM", "NO_COLOR"]
    );
    // And git's configuration, which switches off the programs a repository's names.
    let git_config: Vec<_> = plan
        .env
        .iter()
        .filter(|(name, _)| git_config::is_ours(name))
        .cloned()
        .collect();
    assert_eq!(git_config, git_config::env(&[]));
    let env = |name: &str| {
        plan.env
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.to_str())
    };
    assert_eq!(env("PATH"), Some("/home/dev/.cargo/bin:/usr/bin"));
    assert_eq!(env("HOME"), Some("/tmp/punie-run-1/home"));
    assert_eq!(env("TMPDIR"), Some("/tmp/punie-run-1/tmp"));
    assert_eq!(env("LANG"), Some("C.UTF-8"));
    assert_eq!(
        plan.writable,
        [
            PathBuf::from("/work/repo"),
            PathBuf::from("/tmp/punie-run-1")
        ]
    );
    assert!(plan.readable.contains(&PathBuf::from("/home/dev/.cargo")));
    assert!(plan.readable.contains(&PathBuf::from("/usr")));
    assert!(plan.secrets.contains(&PathBuf::from("/home/dev/.ssh")));
    assert!(plan.secrets.contains(&PathBuf::from("/etc/shadow")));
    assert!(plan.home_links.contains(&PathBuf::from(".local/bin")));
    assert!(!plan.network);
}

/// A workspace whose root is protected (`protected::root_rule`) is handed to the helper as
/// readable, not writable: every layer then keeps it as it is. An ordinary one stays
/// writable with its protected paths read-only; the private directory is always writable.
#[test]
fn a_protected_root_is_readable_not_writable() {
    let plan = |read_only: &[&str]| {
        let mut plan = Plan::new(
            &["git".to_owned()],
            Path::new("/work/repo.git"),
            Path::new("/work/repo.git"),
            &Access::default(),
            &host(),
            Path::new("/tmp/punie-run-1"),
        );
        plan.protect(read_only.iter().map(PathBuf::from).collect());
        plan
    };
    let ordinary = plan(&["/work/repo.git/.git"]);
    assert_eq!(ordinary.writable[0], PathBuf::from("/work/repo.git"));
    assert!(!ordinary.readable.contains(&PathBuf::from("/work/repo.git")));
    for read_only in [&["/work/repo.git"][..], &["/work"], &["/"]] {
        let protected = plan(read_only);
        assert_eq!(protected.writable, [PathBuf::from("/tmp/punie-run-1")]);
        assert!(
            protected
                .readable
                .contains(&PathBuf::from("/work/repo.git"))
        );
    }
}

/// The root's own rule: its name, a folder above it, or what it holds.
#[test]
fn a_root_that_is_or_lies_in_a_protected_folder_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().canonicalize().unwrap();
    for made in [
        "proj/src",
        "proj/.github/workflows/x",
        "bare.git/objects",
        "bare.git/refs",
    ] {
        std::fs::create_dir_all(top.join(made)).unwrap();
    }
    std::fs::write(top.join("bare.git/HEAD"), "ref: refs/heads/main\n").unwrap();
    // A linked worktree as `git worktree add main` makes it in a bare repository, and `.git`
    // entries that only look like one: planted in git's own `hooks/` (naming a real
    // worktree), a folder, a file naming elsewhere.
    std::fs::create_dir_all(top.join("bare.git/worktrees/main")).unwrap();
    for (dot_git, text) in [
        ("bare.git/main/.git", "gitdir: ../worktrees/main\n"),
        ("bare.git/hooks/.git", "gitdir: ../worktrees/main\n"),
        ("bare.git/elsewhere/.git", "gitdir: /nonexistent\n"),
        ("bare.git/up/.git", "gitdir: ..\n"),
    ] {
        std::fs::create_dir_all(top.join(dot_git).parent().unwrap()).unwrap();
        std::fs::write(top.join(dot_git), text).unwrap();
    }
    std::fs::create_dir_all(top.join("bare.git/folder/.git")).unwrap();
    let rule = |rel: &str| root_rule(&top.join(rel)).map(|rule| rule.id);
    assert_eq!(rule("proj"), None);
    assert_eq!(rule("proj/src"), None);
    assert_eq!(rule("proj/.github"), None);
    assert_eq!(rule("proj/.github/workflows"), Some("ci"));
    assert_eq!(rule("proj/.github/workflows/x"), Some("ci"));
    assert_eq!(rule("bare.git"), Some("vcs"));
    assert_eq!(rule("bare.git/refs"), Some("vcs"));
    // A worktree made inside a bare repository is the work tree's; nothing else there is.
    assert_eq!(rule("bare.git/main"), None);
    assert_eq!(rule("bare.git/main/src"), None);
    for posing in ["hooks", "elsewhere", "up", "folder"] {
        assert_eq!(rule(&format!("bare.git/{posing}")), Some("vcs"), "{posing}");
    }

    let found = protected_in(&top.join("bare.git"), DIRS_BEFORE_COMMAND);
    assert_eq!(found.root_rule.map(|rule| rule.id), Some("vcs"));
    assert!(found.paths.contains(&top.join("bare.git")));
    assert!(
        !protected_in(&top.join("proj"), DIRS_BEFORE_COMMAND)
            .paths
            .contains(&top.join("proj"))
    );
}

/// A path is bytes: a plan whose paths are not UTF-8 (a cloned `a\xff.code-workspace`, a
/// `cwd` through a directory a command made) reaches the helper byte for byte.
#[test]
fn a_plan_carries_paths_that_are_not_utf8_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let odd = |path: &[u8]| PathBuf::from(OsStr::from_bytes(path));
    let mut plan = Plan::new(
        &["ls".to_owned()],
        &odd(b"/w/x\xff"),
        Path::new("/w"),
        &Access::default(),
        &Host {
            home: Some(odd(b"/home/\xfe")),
            ..host()
        },
        &odd(b"/tmp/punie-run-\x80"),
    );
    plan.read_only = vec![odd(b"/w/a\xff.code-workspace"), PathBuf::from("/w/.git")];
    let line = serde_json::to_vec(&plan).unwrap();
    let back: Plan = serde_json::from_slice(&line).unwrap();
    assert_eq!(back, plan);
    assert_eq!(
        back.read_only[0].as_os_str().as_bytes(),
        b"/w/a\xff.code-workspace"
    );
    let home = back.env.iter().find(|(name, _)| name == "HOME").unwrap();
    assert_eq!(home.1.as_bytes(), b"/tmp/punie-run-\x80/home");
}

#[test]
fn punies_own_data_is_a_secret_unless_it_holds_the_workspace() {
    let plan_in = |workspace: &str| {
        Plan::new(
            &["ls".to_owned()],
            Path::new(workspace),
            Path::new(workspace),
            &Access::default(),
            &host(),
            Path::new("/p"),
        )
    };
    let own = PathBuf::from("/home/dev/.local/share/punie");
    assert!(plan_in("/home/dev").secrets.contains(&own));
    assert!(plan_in("/").secrets.contains(&own));
    assert!(plan_in("/work/repo").secrets.contains(&own));
    assert!(
        !plan_in("/home/dev/.local/share/punie/sessions")
            .secrets
            .contains(&own)
    );
}

#[test]
fn the_command_path_keeps_only_absolute_entries() {
    let path_of = |path: &str| {
        let host = Host {
            path: Some(path.to_owned()),
            ..host()
        };
        let argv = ["pytest".to_owned()];
        let plan = Plan::new(
            &argv,
            Path::new("/w"),
            Path::new("/w"),
            &Access::default(),
            &host,
            Path::new("/p"),
        );
        plan.env
            .into_iter()
            .find(|(name, _)| name == "PATH")
            .unwrap()
            .1
    };
    assert_eq!(path_of(":/usr/bin::.:bin:./x:/bin:"), "/usr/bin:/bin");
    assert_eq!(path_of(".:"), "/usr/local/bin:/usr/bin:/bin");
}

#[test]
fn readable_entries_are_absolute_or_under_home() {
    assert!(check_readable_entry("/opt/tools").is_ok());
    assert!(check_readable_entry("~/.cargo").is_ok());
    assert!(check_readable_entry("~").is_ok());
    let err = check_readable_entry(".cargo").unwrap_err();
    assert!(err.contains("absolute path"), "{err}");
    assert!(check_readable_entry("~user/x").is_err());

    // A `~` entry without a home is dropped; links never climb out of the private home.
    let access = Access {
        network: true,
        readable: vec![
            "~/.cargo".to_owned(),
            "~/../../etc".to_owned(),
            "/usr".to_owned(),
        ],
    };
    let homeless = Host {
        home: None,
        path: None,
        ..host()
    };
    let plan = Plan::new(
        &["ls".to_owned()],
        Path::new("/w"),
        Path::new("/w"),
        &access,
        &homeless,
        Path::new("/p"),
    );
    assert_eq!(plan.readable, [PathBuf::from("/usr")]);
    assert_eq!(plan.home_links, [PathBuf::from(".cargo")]);
    assert!(plan.network);
    assert_eq!(
        plan.env.iter().find(|(name, _)| name == "PATH").unwrap().1,
        "/usr/local/bin:/usr/bin:/bin"
    );
}

#[test]
fn a_weaker_machine_is_told_what_it_lacks() {
    let full = Layers {
        platform: "linux".to_owned(),
        landlock_abi: 7,
        seccomp: true,
        user_namespace: true,
        pid_namespace: true,
        network_namespace: true,
        private_proc: true,
        read_only_mounts: true,
        seatbelt: false,
    };
    assert!(full.gaps(false).is_empty());
    let container = Layers {
        landlock_abi: 3,
        user_namespace: false,
        pid_namespace: false,
        network_namespace: false,
        private_proc: false,
        read_only_mounts: false,
        ..full.clone()
    };
    let gaps = container.gaps(false).join("\n");
    assert!(gaps.contains("no namespaces"), "{gaps}");
    assert!(gaps.contains("not limited"), "{gaps}");
    assert!(gaps.contains("does not scope signals"), "{gaps}");
    assert!(
        gaps.contains("seccomp alone keeps commands off the network"),
        "{gaps}"
    );
    let mut text = String::new();
    describe_layers(&mut text, &container, false);
    assert!(text.contains("Landlock: ABI 3 (files)"), "{text}");
    assert!(text.contains("PR_SET_CHILD_SUBREAPER"), "{text}");
}

#[test]
fn installations_on_path_are_readable_but_never_the_home_or_the_root() {
    let homes = [PathBuf::from("/home/dev"), PathBuf::from("/var/home/dev")];
    let path = "/work/repo/.venv/bin:/home/dev/bin:/usr/local/bin:/bin:/home/dev:relative/bin:/opt/tool:/home/dev/.pyenv/shims";
    assert_eq!(
        path_installations(path, &homes),
        [
            PathBuf::from("/work/repo/.venv"),
            PathBuf::from("/home/dev/bin"),
            PathBuf::from("/usr/local"),
            PathBuf::from("/bin"),
            PathBuf::from("/opt/tool"),
            PathBuf::from("/home/dev/.pyenv/shims"),
        ]
    );
}

/// `~/.local/bin` would make all of `~/.local` readable: keyrings and histories in `share/`
/// and `state/`; `~/.docker/bin` Docker's TLS keys. In the home a prefix gives only what its
/// programs run from, under either spelling of the home.
#[test]
fn an_installation_in_the_home_gives_only_what_its_programs_run_from() {
    let homes = [PathBuf::from("/home/dev"), PathBuf::from("/var/home/dev")];
    let parts = |prefix: &str| {
        ["bin", "lib", "lib64", "libexec", "pyvenv.cfg"].map(|part| Path::new(prefix).join(part))
    };
    for prefix in [
        "/home/dev/.local",
        "/var/home/dev/.docker",
        "/home/dev/proj/.venv",
    ] {
        assert_eq!(
            path_installations(&format!("{prefix}/bin"), &homes),
            parts(prefix),
        );
    }
}

/// pipx links `~/.local/bin/black` into a virtual environment of its own; the link's
/// environment is readable, its neighbours and the rest of `~/.local/share` are not.
#[test]
fn links_on_path_in_the_home_give_what_their_targets_run_from() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().canonicalize().unwrap();
    let venv = home.join(".local/share/pipx/venvs/black");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("bin/black"), "").unwrap();
    std::fs::create_dir_all(home.join("tools")).unwrap();
    std::fs::write(home.join("tools/run.sh"), "").unwrap();
    let bin = home.join(".local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(venv.join("bin/black"), bin.join("black")).unwrap();
    std::os::unix::fs::symlink(home.join("tools/run.sh"), bin.join("run")).unwrap();
    std::os::unix::fs::symlink(home.join("missing"), bin.join("dangling")).unwrap();
    std::fs::write(bin.join("plain"), "").unwrap();
    let path = format!("{}:/usr/bin", bin.display());
    let mut found = linked_installations(&path, std::slice::from_ref(&home));
    found.sort();
    let mut expected = ["bin", "lib", "lib64", "libexec", "pyvenv.cfg"]
        .map(|part| venv.join(part))
        .to_vec();
    expected.push(home.join("tools/run.sh"));
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn a_source_that_may_only_tighten_cannot_widen_access() {
    let wide = Access {
        network: true,
        readable: vec!["/usr".to_owned(), "~".to_owned()],
    };
    let (res, dropped) = wide.within(&Access::default());
    assert_eq!(
        res,
        Access {
            network: false,
            readable: vec!["/usr".to_owned()],
        }
    );
    assert_eq!(dropped, ["network", "~"]);
    let (same, dropped) = Access::default().within(&Access::default());
    assert_eq!(same, Access::default());
    assert!(dropped.is_empty());
}
