//! Model files: the manifest of known models, where they live on disk, installing the default
//! model, and inspecting GGUF files.
//!
//! Below the engine: nothing here runs llama.cpp (the engine finds the default model and checks
//! a GGUF's header here; `models quantize` and `models parity`, which need llama.cpp, live in
//! `engine/llama/`).
//!
//! The manifest (`models/manifest.toml`) is compiled into the binary so `punie` works from any
//! directory. The model directory is `PUNIE_MODEL_DIR` if set, else the per-user data directory
//! (`$XDG_DATA_HOME/punie/models`, `~/.local/share/punie/models`; on macOS
//! `~/Library/Application Support/punie/models`).

pub mod fetch;
pub mod gguf;
mod manifest;

use std::path::{Path, PathBuf};

pub use manifest::{Manifest, ModelEntry, ModelSource};

pub use crate::own_dirs::{data_dir, model_dir};

/// Where the default model's GGUF is (or will be, once fetched).
pub fn default_model_path() -> anyhow::Result<PathBuf> {
    let manifest = Manifest::builtin();
    Ok(model_dir()?.join(&manifest.default_entry().file))
}

/// Where `entry`'s file is. A model committed to the repository (`source.kind = "repo"`, the
/// micro-Punie test fixture) is found in the source tree this binary was built from, when that
/// tree is still there; every other model (and a repo model of a binary moved elsewhere) lives in
/// `model_dir`.
pub fn entry_path(entry: &ModelEntry, model_dir: &Path) -> PathBuf {
    if let ModelSource::Repo { path } = &entry.source {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."));
        let committed = root.join(path);
        if committed.is_file() {
            return committed;
        }
    }
    model_dir.join(&entry.file)
}
