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

use crate::plantable::{self, Plantable};

pub use manifest::{Manifest, ModelEntry, ModelSource};

pub use crate::own_dirs::{data_dir, model_dir};

/// Where the default model's GGUF is (or will be, once fetched).
pub fn default_model_path() -> anyhow::Result<PathBuf> {
    let manifest = Manifest::builtin();
    Ok(model_dir()?.join(&manifest.default_entry().file))
}

/// Where `entry`'s file is. A model committed to the repository (`source.kind = "repo"`, the
/// micro-Punie test fixture) is found in the source tree this binary was built from, when that
/// tree is still there and no other local user could have put the file there ([`plantable`]:
/// the path is baked into the binary, and on another machine it may lead into someone else's
/// directory); every other model (and a repo model of a binary moved elsewhere) lives in
/// `model_dir`.
pub fn entry_path(entry: &ModelEntry, model_dir: &Path) -> PathBuf {
    if let ModelSource::Repo { path } = &entry.source {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."));
        let committed = root.join(path);
        if committed.is_file() && plantable::check(&committed).is_ok() {
            return committed;
        }
    }
    model_dir.join(&entry.file)
}

/// The model of the catalog (`punie models list`) whose installed file `path` is, both
/// resolved; `None` for any other path, and for a model that is not installed.
pub fn installed_entry(path: &Path) -> Option<ModelEntry> {
    let resolved = path.canonicalize().ok()?;
    let dir = model_dir().ok()?;
    Manifest::builtin().models.into_iter().find(|entry| {
        entry_path(entry, &dir)
            .canonicalize()
            .is_ok_and(|installed| installed == resolved)
    })
}

/// Refuses the installed model at `path` (each part of a split one too, which llama.cpp opens
/// by name) when another local user could have put it there or could swap it: a model
/// directory others may write (`PUNIE_MODEL_DIR` on a shared disk, a directory someone made
/// before Punie did) lets them choose what the model says and the chat template every prompt
/// goes through. A missing file is left to the load to report as not installed, unless
/// someone else could put it in its directory meanwhile.
pub(crate) fn check_not_planted(path: &Path) -> Result<(), Plantable> {
    if std::fs::symlink_metadata(path).is_ok() {
        return std::iter::once(path.to_owned())
            .chain(gguf::other_parts(path))
            .try_for_each(|file| plantable::check(&file));
    }
    match path.parent().filter(|dir| dir.is_dir()) {
        Some(dir) => plantable::check(dir),
        None => Ok(()),
    }
}
