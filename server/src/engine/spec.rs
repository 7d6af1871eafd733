//! Engine SPEC strings (INTERFACES.md §1): what the user writes to choose an engine.

use std::fmt;
use std::path::PathBuf;

use crate::models::gguf;

/// A parsed engine SPEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSpec {
    /// The default model installed by `punie models fetch`, through llama.cpp.
    Default,
    /// Any GGUF file through llama.cpp in-process.
    Llama { path: PathBuf },
    /// An OpenAI-compatible server: base URL (e.g. `http://127.0.0.1:8080/v1`) and model name.
    OpenAi { url: String, model: String },
    /// Canned turns from a JSON file, for deterministic tests.
    Scripted { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("engine SPEC `{0}`: expected llama:PATH.gguf, openai:URL#MODEL or scripted:FILE.json")]
    UnknownKind(String),
    #[error("engine SPEC `{0}`: the path after the colon is empty")]
    EmptyPath(String),
    #[error(
        "engine SPEC `{0}`: expected openai:URL#MODEL, with an http:// URL and a model name (https is not supported: put a TLS proxy on this machine in front of the server)"
    )]
    BadOpenAi(String),
}

impl EngineSpec {
    /// Parses a SPEC; an empty string means the default model.
    pub fn parse(spec: &str) -> Result<EngineSpec, SpecError> {
        let spec_trimmed = spec.trim();
        if spec_trimmed.is_empty() || spec_trimmed == "default" {
            return Ok(EngineSpec::Default);
        }
        let Some((kind, rest)) = spec_trimmed.split_once(':') else {
            return Err(SpecError::UnknownKind(spec.to_owned()));
        };
        let non_empty_path = |rest: &str| {
            if rest.is_empty() {
                Err(SpecError::EmptyPath(spec.to_owned()))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match kind {
            "llama" => Ok(EngineSpec::Llama {
                path: non_empty_path(rest)?,
            }),
            "scripted" => Ok(EngineSpec::Scripted {
                path: non_empty_path(rest)?,
            }),
            "openai" => {
                let (url, model) = rest
                    .rsplit_once('#')
                    .ok_or_else(|| SpecError::BadOpenAi(spec.to_owned()))?;
                let url_ok = url.starts_with("http://") && url.len() > "http://".len();
                if !url_ok || model.is_empty() {
                    return Err(SpecError::BadOpenAi(spec.to_owned()));
                }
                Ok(EngineSpec::OpenAi {
                    url: url.trim_end_matches('/').to_owned(),
                    model: model.to_owned(),
                })
            }
            _ => Err(SpecError::UnknownKind(spec.to_owned())),
        }
    }

    /// The files the SPEC names, which the engine opens by name: a script, a model and, for a
    /// model split in parts, each part after the first, which llama.cpp finds by the first
    /// one's name ([`gguf::other_parts`]).
    pub fn named_files(&self) -> Vec<PathBuf> {
        match self {
            EngineSpec::Llama { path } => std::iter::once(path.clone())
                .chain(gguf::other_parts(path))
                .collect(),
            EngineSpec::Scripted { path } => vec![path.clone()],
            EngineSpec::Default | EngineSpec::OpenAi { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for EngineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineSpec::Default => f.write_str("default"),
            EngineSpec::Llama { path } => write!(f, "llama:{}", path.display()),
            EngineSpec::OpenAi { url, model } => write!(f, "openai:{url}#{model}"),
            EngineSpec::Scripted { path } => write!(f, "scripted:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(spec: &str, expect: Result<EngineSpec, SpecError>) {
        assert_eq!(EngineSpec::parse(spec), expect);
    }

    #[test]
    fn parses_every_kind() {
        check("", Ok(EngineSpec::Default));
        check("  ", Ok(EngineSpec::Default));
        check(
            "llama:/m/x.gguf",
            Ok(EngineSpec::Llama {
                path: "/m/x.gguf".into(),
            }),
        );
        check(
            "scripted:t.json",
            Ok(EngineSpec::Scripted {
                path: "t.json".into(),
            }),
        );
        check(
            "openai:http://127.0.0.1:8080/v1/#qwen",
            Ok(EngineSpec::OpenAi {
                url: "http://127.0.0.1:8080/v1".into(),
                model: "qwen".into(),
            }),
        );
        // A colon inside the path belongs to the path.
        check(
            "llama:C:/m.gguf",
            Ok(EngineSpec::Llama {
                path: "C:/m.gguf".into(),
            }),
        );
    }

    #[test]
    fn rejects_bad_specs() {
        check("gguf:x", Err(SpecError::UnknownKind("gguf:x".into())));
        check(
            "model.gguf",
            Err(SpecError::UnknownKind("model.gguf".into())),
        );
        check("llama:", Err(SpecError::EmptyPath("llama:".into())));
        check(
            "openai:http://x",
            Err(SpecError::BadOpenAi("openai:http://x".into())),
        );
        check(
            "openai:ftp://x#m",
            Err(SpecError::BadOpenAi("openai:ftp://x#m".into())),
        );
        check(
            "openai:http://x#",
            Err(SpecError::BadOpenAi("openai:http://x#".into())),
        );
        check(
            "openai:https://x/v1#m",
            Err(SpecError::BadOpenAi("openai:https://x/v1#m".into())),
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in ["llama:/a.gguf", "scripted:t.json", "openai:http://h:1/v1#m"] {
            assert_eq!(EngineSpec::parse(spec).unwrap().to_string(), spec);
        }
    }
}
