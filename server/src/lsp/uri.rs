//! `file://` URIs as lsp-types' [`Uri`]: the conversions themselves are [`crate::uri`]'s.

use std::path::Path;

use lsp_types::Uri;

pub(crate) use crate::uri::to_path;

/// A `file://` URI for an absolute path (see [`crate::uri::from_path`]).
pub(crate) fn from_path(path: &Path) -> Option<Uri> {
    crate::uri::from_path(path)?.parse().ok()
}
