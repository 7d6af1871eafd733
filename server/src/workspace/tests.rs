//! Tests of path confinement, reads and atomic writes.

use super::*;

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

#[cfg(unix)]
#[test]
fn commands_run_without_a_shell_and_with_a_scrubbed_env() {
    let (root, _outside) = workspace();
    let cancel = crate::cancel::CancelFlag::default();
    let limits = CommandLimits::default();
    let argv = split_command("echo hi; touch pwned", None).unwrap();
    let out = run_command(&argv, root.path(), &limits, &cancel).unwrap();
    assert_eq!(out.to_tool_text(), "hi; touch pwned\n");
    assert!(!root.path().join("pwned").exists());

    // SAFETY: tests in this module do not read this variable concurrently.
    unsafe { std::env::set_var("PUNIE_TEST_SECRET", "s3cret") };
    let out = run_command(&["env".to_owned()], root.path(), &limits, &cancel).unwrap();
    assert!(!out.stdout.contains("s3cret"));

    let out = run_command(
        &split_command("ls missing-file", None).unwrap(),
        root.path(),
        &limits,
        &cancel,
    )
    .unwrap();
    assert!(
        out.to_tool_text().ends_with("[exit code: 2]"),
        "{}",
        out.to_tool_text()
    );

    let err = run_command(
        &["no-such-program-xyz".to_owned()],
        root.path(),
        &limits,
        &cancel,
    )
    .unwrap_err();
    assert_eq!(err.type_name, "FileNotFoundError");

    let quick = CommandLimits {
        timeout: std::time::Duration::from_millis(200),
        ..limits
    };
    let start = std::time::Instant::now();
    let err = run_command(
        &split_command("sleep 5", None).unwrap(),
        root.path(),
        &quick,
        &cancel,
    )
    .unwrap_err();
    assert_eq!(err.type_name, "TimeoutError");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}
