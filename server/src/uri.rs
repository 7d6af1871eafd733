//! `file://` URIs to paths and back, for every place that meets one: LSP documents and
//! workspace folders, ACP resource links, ty's SARIF report. (lsp-types 0.97's `Uri` has no
//! file-path conversions.)

use std::path::{Path, PathBuf};

/// Whether `uri` names a file (the `file` scheme, in any case): such a document is on some
/// file system even when [`to_path`] cannot say where, so it is never treated as a buffer only
/// the editor holds.
pub(crate) fn is_file_uri(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file:"))
}

/// The local path of a `file://` URI, percent-decoded; `None` for other schemes, and for a
/// file URI that names another host or a path that is not UTF-8 (see [`is_file_uri`]).
pub(crate) fn to_path(uri: &str) -> Option<PathBuf> {
    if !is_file_uri(uri) {
        return None;
    }
    let rest = uri[5..].strip_prefix("//")?;
    // `file:///x` has an empty authority; `file://localhost/x` names this host.
    let path = match rest.get(..9) {
        Some(host) if host.eq_ignore_ascii_case("localhost") => &rest[9..],
        _ => rest,
    };
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(path)?;
    // `file:///C:/x` on Windows.
    #[cfg(windows)]
    let decoded = decoded
        .strip_prefix('/')
        .filter(|p| p.as_bytes().get(1) == Some(&b':'))
        .unwrap_or(&decoded)
        .to_owned();
    Some(PathBuf::from(decoded))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut res = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%' {
            let hex = text.get(idx + 1..idx + 3)?;
            res.push(u8::from_str_radix(hex, 16).ok()?);
            idx += 3;
        } else {
            res.push(bytes[idx]);
            idx += 1;
        }
    }
    String::from_utf8(res).ok()
}

/// A `file://` URI for an absolute path, percent-encoding what RFC 3986 does not allow in a path.
pub(crate) fn from_path(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut res = String::from("file://");
    if !text.starts_with('/') {
        res.push('/');
    }
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte);
        if keep {
            res.push(byte as char);
        } else {
            res.push_str(&format!("%{byte:02X}"));
        }
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_paths_with_odd_characters() {
        let path = Path::new("/tmp/a b/é#1.py");
        let uri = from_path(path).unwrap();
        assert_eq!(uri, "file:///tmp/a%20b/%C3%A9%231.py");
        assert_eq!(to_path(&uri).unwrap(), path);
        assert_eq!(to_path("untitled:Untitled-1"), None);
        assert_eq!(to_path("file://localhost/x").unwrap(), Path::new("/x"));
    }

    /// The scheme and `localhost` are case-insensitive; another host is a file Punie cannot
    /// reach, not an editor-only buffer.
    #[test]
    fn file_uris_are_told_from_paths_punie_can_reach() {
        assert_eq!(to_path("FILE:///x").unwrap(), Path::new("/x"));
        assert_eq!(to_path("File://LocalHost/x").unwrap(), Path::new("/x"));
        for unreachable in [
            "file://localhost.localdomain/x/.git/config",
            "file://server/share/x",
            "file:///x/%FF",
        ] {
            assert_eq!(to_path(unreachable), None, "{unreachable}");
            assert!(is_file_uri(unreachable), "{unreachable}");
        }
        assert!(!is_file_uri("untitled:Untitled-1"));
        assert!(!is_file_uri("fil"));
    }
}
