//! Which prompt profile a run uses, and what the `generic` profile needs from the model.
//!
//! The profile comes from `--profile`/the `profile` setting, else from the model's manifest entry
//! (`punie-phase22` for the fine-tune, `generic` for everything else; scripted turns are written
//! in the fine-tune's format). `generic` renders the model's own chat template, read here from the
//! GGUF header, with the stubs of the tools offered here; `punie-typed` names those tools.
//! The tools offered are every registered tool that can run on this machine
//! (`typed::offered`: ruff's is not offered where ruff is not installed).

use crate::sync;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context;

use crate::engine::EngineSpec;
use crate::models::{Manifest, gguf};
use crate::prompt::{GenericConfig, Profile};
use crate::tools::{self, Tool};

/// The profile for `spec`: `requested` if given, else the one its model was made for.
/// `default_model` is where the default model lives (for `EngineSpec::Default`).
pub fn resolve_profile(
    spec: &EngineSpec,
    default_model: Option<&Path>,
    requested: Option<&str>,
) -> anyhow::Result<Profile> {
    let name = match requested.filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => default_profile_name(spec),
    };
    let mut profile = match Profile::parse(&name)? {
        Profile::Generic(_) => {
            let model = model_file(spec, default_model);
            if let Some(model) = &model {
                // The template is read (and every prompt goes through it) before the engine
                // loads the file: the file is judged first, as the load judges it.
                crate::engine::llama::refuse_planted(spec, model).map_err(|planted| {
                    anyhow::anyhow!(
                        "reading the chat template of {}: {planted}",
                        model.display()
                    )
                })?;
            }
            Profile::Generic(generic_config(model.as_deref())?)
        }
        profile => profile,
    };
    show_offered_tools(&mut profile);
    Ok(profile)
}

/// Makes `profile` show the model the tools offered on this machine (`typed::offered`).
pub fn show_offered_tools(profile: &mut Profile) {
    show_tools(profile, &crate::typed::offered());
}

/// Makes `profile` show the model `tools`: `punie-typed`'s list of names; `generic`'s stubs,
/// the core tools' in full and the others' signatures (`tools::compact_stubs_text`: their full
/// stubs would cost about 2,800 prompt tokens, 11 s of prefill for the default model on two
/// cores). `punie-phase22` shows none: its model was trained on the core tools without stubs.
fn show_tools(profile: &mut Profile, tools: &[Tool]) {
    match profile {
        Profile::PuniePhase22 => {}
        Profile::PunieTyped { tools: names } => {
            *names = tools.iter().map(|tool| tool.name().to_owned()).collect();
        }
        Profile::Generic(config) => config.stubs = tools::compact_stubs_text(tools),
    }
}

/// The profile the model was made for: its manifest entry's, `generic` for models the manifest
/// does not know, `punie-phase22` for scripted turns.
fn default_profile_name(spec: &EngineSpec) -> String {
    let manifest = Manifest::builtin();
    match spec {
        EngineSpec::Default => manifest.default_entry().profile.clone(),
        EngineSpec::Llama { path } => path
            .file_name()
            .and_then(|name| manifest.find_by_file(&name.to_string_lossy()))
            .map_or_else(|| "generic".to_owned(), |entry| entry.profile.clone()),
        EngineSpec::OpenAi { .. } => "generic".to_owned(),
        EngineSpec::Scripted { .. } => "punie-phase22".to_owned(),
    }
}

fn model_file(spec: &EngineSpec, default_model: Option<&Path>) -> Option<PathBuf> {
    match spec {
        EngineSpec::Llama { path } => Some(path.clone()),
        EngineSpec::Default => default_model
            .map(Path::to_owned)
            .or_else(|| crate::models::default_model_path().ok()),
        EngineSpec::OpenAi { .. } | EngineSpec::Scripted { .. } => None,
    }
}

/// The chat template and special tokens of the GGUF at `model` (ChatML when there is no file or
/// no template); the stubs come from [`show_tools`]. Remembered for the last file read, as long
/// as its size and modification time stay the same: every run needs it, and reading it parses
/// the header's whole vocabulary, which took 25 to 40 ms of each run's start for the default
/// model's 49,152 tokens (debug build), more than half the time a follow-up's prompt takes.
fn generic_config(model: Option<&Path>) -> anyhow::Result<GenericConfig> {
    static LAST_READ: Mutex<Option<(FileVersion, GenericConfig)>> = Mutex::new(None);
    let Some(model) = model.filter(|m| m.is_file()) else {
        // A missing model is reported by the engine when the run starts, with the fix.
        return Ok(GenericConfig::default());
    };
    let version = FileVersion::of(model);
    let mut last_read = sync::lock(&LAST_READ);
    if let (Some(version), Some((seen, config))) = (&version, last_read.as_ref())
        && version == seen
    {
        return Ok(config.clone());
    }
    let config = read_generic_config(model)?;
    if let Some(version) = version {
        *last_read = Some((version, config.clone()));
    }
    Ok(config)
}

fn read_generic_config(model: &Path) -> anyhow::Result<GenericConfig> {
    let header = gguf::read_header(model)
        .with_context(|| format!("reading the chat template of {}", model.display()))?;
    let token_text = |key: &str| {
        let id = header.get_uint(key)?;
        header.vocabulary().get(usize::try_from(id).ok()?).cloned()
    };
    Ok(GenericConfig {
        chat_template: header.chat_template().map(str::to_owned),
        bos_token: token_text("tokenizer.ggml.bos_token_id").unwrap_or_default(),
        eos_token: token_text("tokenizer.ggml.eos_token_id").unwrap_or_default(),
        ..GenericConfig::default()
    })
}

/// Which file, and which version of it: a model replaced or rewritten in place changes its
/// size or modification time.
#[derive(PartialEq, Eq)]
struct FileVersion {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

impl FileVersion {
    fn of(path: &Path) -> Option<FileVersion> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileVersion {
            path: path.to_owned(),
            len: metadata.len(),
            modified: metadata.modified().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_manifest() {
        let scripted = EngineSpec::Scripted {
            path: "t.json".into(),
        };
        assert_eq!(
            resolve_profile(&scripted, None, None).unwrap(),
            Profile::PuniePhase22
        );
        let unknown_gguf = EngineSpec::Llama {
            path: "/nonexistent/other.gguf".into(),
        };
        let profile = resolve_profile(&unknown_gguf, None, None).unwrap();
        let Profile::Generic(config) = profile else {
            panic!("expected generic")
        };
        assert!(
            config.stubs.contains("def read_file(path: str) -> str:"),
            "{}",
            config.stubs
        );
        assert!(
            config.stubs.contains("\ncst_rename(") && !config.stubs.contains("def cst_rename("),
            "tools that need no program are always offered, by signature: {}",
            config.stubs
        );
        let production = EngineSpec::Llama {
            path: "/m/punie-phase22-q5_k_m.gguf".into(),
        };
        assert_eq!(
            resolve_profile(&production, None, None).unwrap(),
            Profile::PuniePhase22
        );
    }

    /// What each profile shows the model, where every program is installed and where none
    /// is (then ruff_check, typecheck, pytest_run and the git tools are left out).
    #[test]
    fn each_profile_shows_the_tools_offered() {
        let everything = tools::offered(|_| true);
        let nothing = tools::offered(|_| false);
        assert_eq!(everything.len(), Tool::all().count());
        let question = [crate::prompt::Message::user("Q")];
        for (installed, offered) in [("all_installed", &everything), ("none_installed", &nothing)] {
            for name in Profile::NAMES {
                let mut profile = Profile::parse(name).unwrap();
                show_tools(&mut profile, offered);
                let shown = match &profile {
                    Profile::Generic(config) => config.stubs.clone(),
                    profile => crate::prompt::render(profile, &question),
                };
                insta::assert_snapshot!(format!("{name}_{installed}"), shown);
            }
        }
    }

    /// Qwen3's chat template (from micro-Punie's GGUF, the production architecture) renders a
    /// long conversation well within its instruction budget.
    #[test]
    fn a_real_template_renders_long_conversations_within_its_fuel() {
        let micro =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/micro/micro-punie-q5_k_m.gguf");
        let config = generic_config(Some(&micro)).unwrap();
        let template = config.chat_template.as_deref().unwrap_or_default();
        assert!(template.contains("namespace("), "{template}");
        let mut messages = vec![crate::prompt::Message::system("S")];
        for n in 0..500 {
            messages.push(crate::prompt::Message::user(format!("question {n}")));
            messages.push(crate::prompt::Message::assistant(format!(
                "<think>x</think>answer {n}"
            )));
            messages.push(crate::prompt::Message::tool(format!("output {n}")));
        }
        let prompt = crate::prompt::render_prompt(&Profile::Generic(config), &messages);
        assert_eq!(prompt.fallback_reason, None);
        assert!(prompt.text.contains("output 499"));
        // It drops earlier answers' reasoning, so only the other messages' words are quoted.
        let quoted = prompt.quoted.expect("the questions and outputs are found");
        assert_eq!(quoted.len(), 1 + 2 * 500);
    }

    #[test]
    fn an_explicit_profile_wins_and_unknown_names_are_errors() {
        let scripted = EngineSpec::Scripted {
            path: "t.json".into(),
        };
        assert_eq!(
            resolve_profile(&scripted, None, Some("generic"))
                .unwrap()
                .name(),
            "generic"
        );
        let err = resolve_profile(&scripted, None, Some("chatml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown prompt profile `chatml`"), "{err}");
    }
}
