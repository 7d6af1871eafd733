//! The engine on the main loop: started (or restarted when the `engine` setting changes) in
//! the background, its load shown as "Loading model…" progress, its failure shown once and
//! given to every later run.

use std::sync::Arc;

use lsp_types::{MessageType, NumberOrString};

use crate::engine::{EngineConfig, EngineError, EngineHandle, EngineSpec};
use crate::features::{self, Settings};
use crate::models;

use super::global_state::{Pending, Server};
use super::progress::Progress;

/// The model load and its progress.
pub(crate) struct EngineState {
    pub handle: Arc<EngineHandle>,
    spec: EngineSpec,
    /// Bumped on every (re)spawn, so a late answer to an old create request is ignored.
    generation: u64,
    progress: Option<Progress>,
    /// The load outcome has been handled (progress ended, error shown).
    settled: bool,
    /// The load error, once known: every later run fails fast with it.
    pub error: Option<EngineError>,
}

impl Server {
    /// `PUNIE_ENGINE`, as `punie ask` and `punie acp` read it; the default model when unset.
    /// A SPEC that does not parse is said once.
    fn engine_from_environment(&mut self) -> EngineSpec {
        let Some(text) = std::env::var("PUNIE_ENGINE")
            .ok()
            .filter(|text| !text.is_empty())
        else {
            return EngineSpec::Default;
        };
        match EngineSpec::parse(&text) {
            Ok(spec) => spec,
            Err(err) => {
                if !self.environment_engine_refused {
                    self.environment_engine_refused = true;
                    self.show_message(
                        MessageType::ERROR,
                        &format!("PUNIE_ENGINE={text} is ignored: {err}. Using the default model."),
                    );
                }
                EngineSpec::Default
            }
        }
    }

    /// Starts (or restarts, when the SPEC changed) the engine; the model loads in the background.
    pub(crate) fn ensure_engine(&mut self) {
        // The user's own choice outside the editor's settings: the environment the editor
        // starts the server with. The `engine` setting, when there is one, comes first.
        let users = self.engine_from_environment();
        let mut spec = self.settings.settings().engine.clone();
        if spec == EngineSpec::Default {
            spec = users;
        } else if !self.settings.users_settings()
            && let Some(reason) = project_may_not_choose(&spec)
        {
            // Said once per refused SPEC, not on every settings change.
            if self.refused_engine.as_ref() != Some(&spec) {
                self.show_message(
                    MessageType::ERROR,
                    &format!(
                        "Punie settings: engine {spec} is ignored: {reason}. A project's settings \
                         could have sent it; set it with PUNIE_ENGINE in the server's environment \
                         or in a client that vouches for its settings (VS Code's user settings). \
                         Using {}.",
                        match &users {
                            EngineSpec::Default => "the default model".to_owned(),
                            users => format!("PUNIE_ENGINE's {users}"),
                        }
                    ),
                );
                self.refused_engine = Some(spec.clone());
            }
            spec = users;
        }
        if self
            .engine
            .as_ref()
            .is_some_and(|engine| engine.spec == spec)
        {
            return;
        }
        self.engine_generation += 1;
        let generation = self.engine_generation;
        tracing::info!("starting engine {spec}");
        let config = EngineConfig::from_env().unwrap_or_else(|err| {
            tracing::warn!("{err}; using the defaults");
            EngineConfig::default()
        });
        let handle = Arc::new(EngineHandle::spawn(spec.clone(), config));
        let old = self.engine.replace(EngineState {
            handle,
            spec,
            generation,
            progress: None,
            settled: false,
            error: None,
        });
        if let Some(mut old) = old
            && let Some(progress) = old.progress.as_mut()
            && let Some(end) = progress.end("cancelled")
        {
            self.send_notification(end);
        }
        // Served once the model has loaded, while the user picks code and types the question.
        features::prepare_new_conversation(
            &self.engine.as_ref().expect("just started").handle,
            &features::profile_for(&self.run_settings()),
        );
        // The old engine's handle lives on in any run still using it and is dropped (its
        // thread joined) with the last of them. Progress waits for `initialized`: the server
        // may not send requests before the client has the `initialize` response.
        if self.client_ready {
            self.poll_engine_load();
            self.start_load_progress();
        }
    }

    /// "Loading model…" progress, when the load is still going on.
    pub(crate) fn start_load_progress(&mut self) {
        if !self.caps.work_done_progress {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.settled || engine.progress.is_some() {
            return;
        }
        let generation = engine.generation;
        let token = format!("punie/load/{generation}");
        engine.progress = Some(Progress::pending(
            NumberOrString::String(token.clone()),
            "Loading model…",
        ));
        self.send_request(
            "window/workDoneProgress/create",
            serde_json::json!({ "token": token }),
            Pending::LoadProgressCreate { generation },
        );
    }

    /// The client answered the create request of the load progress of `generation`.
    pub(crate) fn load_progress_created(&mut self, generation: u64, accepted: bool) {
        let Some(progress) = self
            .engine
            .as_mut()
            .filter(|engine| engine.generation == generation)
            .and_then(|engine| engine.progress.as_mut())
        else {
            return;
        };
        for notification in progress.created(accepted) {
            self.send_notification(notification);
        }
    }

    /// The settings a run goes by: the user's, with the engine that actually runs. A project's
    /// engine that was refused must not pick the prompt profile either: its GGUF's chat template
    /// would shape every prompt the default model sees.
    pub(crate) fn run_settings(&self) -> Settings {
        let mut settings = self.settings.settings().clone();
        if let Some(engine) = &self.engine {
            settings.engine = engine.spec.clone();
        }
        settings
    }

    /// A model is loading and its outcome is not handled yet ([`Self::poll_engine_load`]).
    pub(crate) fn engine_loading(&self) -> bool {
        self.engine.as_ref().is_some_and(|engine| !engine.settled)
    }

    pub(crate) fn poll_engine_load(&mut self) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.settled {
            return;
        }
        let Some(state) = engine.handle.load_state() else {
            return;
        };
        engine.settled = true;
        let end_message = match &state {
            Ok(description) => {
                tracing::info!("engine ready: {description}");
                "done".to_owned()
            }
            Err(error) => format!("failed: {}", engine_failure_reason(error)),
        };
        let end = engine
            .progress
            .as_mut()
            .and_then(|progress| progress.end(&end_message));
        if let Err(error) = &state {
            engine.error = Some(error.clone());
        }
        if let Some(end) = end {
            self.send_notification(end);
        }
        if let Err(error) = state {
            self.show_message(
                MessageType::ERROR,
                &format!("Punie could not load its model: {error}"),
            );
        }
    }

    /// The process is about to end: a still-loading engine is let go rather than joined.
    pub(crate) fn release_engine(&mut self) {
        if let Some(engine) = self.engine.take()
            && engine.handle.load_state().is_none()
        {
            // Dropping a loading engine joins its thread, which would wait for the whole
            // model to load; the process is about to end, so let it go.
            std::mem::forget(engine.handle);
        }
    }
}

/// Why an engine SPEC that a project's settings could have sent is not started, or `None`.
/// A cloned repository must not choose the server that reads your code and whose answers run
/// tools, not even on this machine (on a shared one, a port on `localhost` may be another
/// user's), nor make Punie load a file of its choosing as a model (a GGUF carries a chat
/// template that runs on every prompt, and reaches llama.cpp's parser) or as a script (which
/// dictates the tool calls), wherever it lies: inside the workspace, one folder above the
/// workspace folder the user opened, or where another local user could have planted it. So
/// only the models of Punie's catalog that are installed (`punie models list`) may be named,
/// by their path; loading one checks that no one else could have put it in the model
/// directory (`models::check_not_planted`), whoever named it.
pub(crate) fn project_may_not_choose(spec: &EngineSpec) -> Option<String> {
    match spec {
        EngineSpec::OpenAi { url, .. } => {
            let host = url
                .split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            let host = match host.strip_prefix('[') {
                Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
                None => host.rsplit_once(':').map_or(host, |(name, _)| name),
            };
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            Some(if loopback {
                format!(
                    "it would send your code to {host}, where the port may be another local user's"
                )
            } else {
                format!("it would send your code to {host}")
            })
        }
        EngineSpec::Llama { path } => models::installed_entry(path).is_none().then(|| {
            format!(
                "{} is not an installed model of Punie's catalog (punie models list names them)",
                path.display()
            )
        }),
        EngineSpec::Scripted { .. } => {
            Some("a scripted engine is for tests, named with PUNIE_ENGINE".to_owned())
        }
        EngineSpec::Default => None,
    }
}

/// The reason in `failed: <reason>`. A missing model has the exact wording of INTERFACES.md.
pub(crate) fn engine_failure_reason(error: &EngineError) -> String {
    match error {
        EngineError::ModelMissing { .. } => {
            "model not installed: run punie models fetch".to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(spec: &str, refused: bool) {
        let spec = EngineSpec::parse(spec).unwrap();
        assert_eq!(project_may_not_choose(&spec).is_some(), refused, "{spec}");
    }

    #[test]
    fn a_project_may_not_send_code_away_or_load_a_file_of_its_choosing() {
        check("", false);
        check("openai:http://127.0.0.1:8080/v1#m", true);
        check("openai:http://localhost:8080/v1#m", true);
        check("openai:http://[::1]:8080/v1#m", true);
        check("openai:http://203.0.113.7:8080/v1#m", true);
        check("openai:http://evil.example/v1#m", true);
        check("openai:http://localhost.evil.example/v1#m", true);
        check("llama:/work/project/evil.gguf", true);
        check("scripted:/work/project/turns.json", true);
    }

    /// Only a model of the catalog that is installed: micro-Punie, committed to the source tree
    /// this test was built from, by its path and through `..`; not another file beside it, nor
    /// a script the user owns and no one else could have planted.
    #[test]
    fn a_project_may_name_only_an_installed_model_of_the_catalog() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let micro = repo.join("models/micro/micro-punie-q5_k_m.gguf");
        assert!(micro.is_file(), "{}", micro.display());
        check(&format!("llama:{}", micro.display()), false);
        check(
            &format!(
                "llama:{}/../micro/micro-punie-q5_k_m.gguf",
                repo.join("models/micro").display()
            ),
            false,
        );
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("micro-punie-q5_k_m.gguf");
        std::fs::copy(&micro, &own).unwrap();
        check(&format!("llama:{}", own.display()), true);
        let turns = dir.path().join("turns.json");
        std::fs::write(&turns, "[]").unwrap();
        check(&format!("scripted:{}", turns.display()), true);
    }
}
