//! The engine on the main loop: started (or restarted when the `engine` setting changes) in
//! the background, its load shown as "Loading model…" progress, its failure shown once and
//! given to every later run.

use std::path::PathBuf;
use std::sync::Arc;

use lsp_types::{MessageType, NumberOrString};

use crate::engine::{EngineConfig, EngineError, EngineHandle, EngineSpec};
use crate::features::{self, Settings};
use crate::plantable;

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
            && let Some(reason) = project_may_not_choose(&spec, &self.roots)
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
/// user's), nor make Punie load a file of its own as a model (a GGUF carries a chat template
/// that runs on every prompt), nor one another local user could have planted outside it
/// (`/tmp/turns.json`: a script dictates the tool calls; each part of a split model too, which
/// llama.cpp opens by name).
pub(crate) fn project_may_not_choose(spec: &EngineSpec, roots: &[PathBuf]) -> Option<String> {
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
        EngineSpec::Llama { path } | EngineSpec::Scripted { path } => {
            // Both sides as the file system resolves them: a root the client names through a
            // symlink (`/tmp` on macOS, a linked home or project) holds the same files.
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if roots.iter().any(|root| {
                canonical.starts_with(root)
                    || root
                        .canonicalize()
                        .is_ok_and(|root| canonical.starts_with(root))
            }) {
                return Some(format!(
                    "{} is a file of the workspace",
                    canonical.display()
                ));
            }
            spec.named_files()
                .iter()
                .find_map(|file| plantable::check(file).err())
                .map(|plantable| plantable.to_string())
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
        let roots = [PathBuf::from("/work/project")];
        let spec = EngineSpec::parse(spec).unwrap();
        assert_eq!(
            project_may_not_choose(&spec, &roots).is_some(),
            refused,
            "{spec}"
        );
    }

    #[test]
    fn a_project_may_not_send_code_away_or_load_its_own_model() {
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

    /// A file outside the workspace counts only where no other local user could have put it
    /// there (the module `plantable`): each part of a split model, which llama.cpp opens by
    /// name, as much as the first.
    #[test]
    fn a_project_may_name_a_model_outside_only_where_no_one_else_could_plant_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let roots = [dir.path().join("project")];
        let refusal =
            |spec: String| project_may_not_choose(&EngineSpec::parse(&spec).unwrap(), &roots);
        let model = dir.path().join("qwen.gguf");
        std::fs::write(&model, "GGUF").unwrap();
        assert_eq!(refusal(format!("llama:{}", model.display())), None);
        let first = dir.path().join("big-00001-of-00002.gguf");
        let second = dir.path().join("big-00002-of-00002.gguf");
        std::fs::write(&first, "GGUF").unwrap();
        let reason = refusal(format!("llama:{}", first.display())).unwrap();
        assert!(
            reason.contains("big-00002-of-00002.gguf cannot be checked"),
            "{reason}"
        );
        std::fs::write(&second, "GGUF").unwrap();
        assert_eq!(refusal(format!("llama:{}", first.display())), None);
        std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o666)).unwrap();
        let reason = refusal(format!("llama:{}", first.display())).unwrap();
        assert!(
            reason.ends_with("it is writable by other users"),
            "{reason}"
        );
        let reason = refusal(format!(
            "scripted:{}",
            dir.path().join("absent.json").display()
        ));
        assert!(reason.unwrap().contains("absent.json cannot be checked"));
    }

    #[test]
    fn a_root_named_through_a_symlink_holds_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("turns.json"), "[]").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for named in [&real, &link] {
            let spec = EngineSpec::Scripted {
                path: named.join("turns.json"),
            };
            let reason = project_may_not_choose(&spec, std::slice::from_ref(&link));
            assert!(reason.is_some(), "{}", named.display());
        }
    }
}
