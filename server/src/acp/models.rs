//! The model selector of a session (`configOptions`, category `model`): the engine given on the
//! command line (`--engine`, `PUNIE_ENGINE`), then every installed model Punie knows by name.

use crate::engine::EngineSpec;
use crate::models::{self, Manifest};

use super::wire::ModelChoice;

/// The choices, the default first. Never empty: without an installed model the default model
/// is offered, and a run on it says how to install it.
pub(crate) fn choices(engine: Option<&EngineSpec>) -> Vec<(ModelChoice, EngineSpec)> {
    let mut res = Vec::new();
    if let Some(spec) = engine.filter(|spec| **spec != EngineSpec::Default) {
        res.push((
            ModelChoice {
                value: "engine".to_owned(),
                name: spec.to_string(),
                description: "the engine Punie was started with".to_owned(),
            },
            spec.clone(),
        ));
    }
    let manifest = Manifest::builtin();
    let model_dir = models::model_dir().ok();
    for entry in &manifest.models {
        let Some(path) = model_dir
            .as_deref()
            .map(|dir| models::entry_path(entry, dir))
            .filter(|path| path.is_file())
        else {
            continue;
        };
        res.push((
            ModelChoice {
                value: entry.name.clone(),
                name: entry.name.clone(),
                description: format!("{} ({} profile)", path.display(), entry.profile),
            },
            EngineSpec::Llama { path },
        ));
    }
    if res.is_empty() {
        let default = manifest.default_entry();
        res.push((
            ModelChoice {
                value: default.name.clone(),
                name: default.name.clone(),
                description: "not installed: run punie models fetch".to_owned(),
            },
            EngineSpec::Default,
        ));
    }
    res
}
