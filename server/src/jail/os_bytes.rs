//! How the [`super::Plan`]'s paths and environment values cross the control socket: as their
//! bytes (a JSON array of numbers), never as text. A Unix path is any bytes but NUL: a
//! protected file cloned with a non-UTF-8 name, or a directory a command made and the model
//! then names as its `cwd`, must reach the helper exactly as it is on disk, or the helper
//! would mount, protect or enter another path (a lossy conversion) or the plan would not
//! serialize at all (serde writes a path only as UTF-8 text).
//!
//! Each module is a `#[serde(with = "…")]` codec for one field type.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serializer};

fn path_of(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

fn bytes_of(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// `PathBuf`.
pub(super) mod path {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(bytes_of(path))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PathBuf, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(path_of)
    }
}

/// `Option<PathBuf>`.
pub(super) mod optional_path {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        path: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => serializer.serialize_some(bytes_of(path)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        Option::<Vec<u8>>::deserialize(deserializer).map(|bytes| bytes.map(path_of))
    }
}

/// `Vec<PathBuf>`.
pub(super) mod paths {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        paths: &[PathBuf],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(paths.iter().map(|path| bytes_of(path)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<Vec<u8>>::deserialize(deserializer)
            .map(|paths| paths.into_iter().map(path_of).collect())
    }
}

/// The environment, `Vec<(String, OsString)>`: names are ours, values may hold a path.
pub(super) mod env {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        env: &[(String, OsString)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(env.iter().map(|(name, value)| (name, value.as_bytes())))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, OsString)>, D::Error> {
        Vec::<(String, Vec<u8>)>::deserialize(deserializer).map(|env| {
            env.into_iter()
                .map(|(name, value)| (name, OsString::from_vec(value)))
                .collect()
        })
    }
}
