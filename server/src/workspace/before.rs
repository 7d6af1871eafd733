//! What a write finds at its path ([`Before`]): read when the write is judged, for the prompt,
//! and again when it is made, which happens only where the two agree, so that a file changed
//! while the user read the question (or created, or removed) is not replaced unseen.

use std::path::Path;

use super::{MAX_READ_BYTES, ToolError};
use crate::policy::{Before, FileStamp};

/// What the file at `path` holds now, as far as a prompt may show it. A file holding a NUL
/// byte is binary, as `features::text::decode` has it: no editor edits it as text.
pub fn before_write(path: &Path) -> Before {
    let meta = match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Before::Missing,
        meta => meta.ok(),
    };
    let bytes = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let stamp = meta.as_ref().map(stamp_of).unwrap_or_default();
    if bytes > MAX_READ_BYTES {
        return Before::TooLarge { bytes, stamp };
    }
    match super::read_bounded(path, "", MAX_READ_BYTES).map(String::from_utf8) {
        Ok(Ok(text)) if !text.contains('\0') => Before::Text(text),
        Ok(_) => Before::Binary { bytes, stamp },
        Err(_) => Before::TooLarge { bytes, stamp },
    }
}

fn stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i128);
    #[cfg(unix)]
    let (device, inode) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (device, inode) = (0, 0);
    FileStamp {
        device,
        inode,
        modified_ns,
    }
}

/// The error of a write whose file is no longer what it was when the write was judged (and,
/// where the user was asked, shown): nothing was written.
pub fn changed_meanwhile() -> ToolError {
    ToolError::new(
        "OSError",
        "the file changed after write_file read it (edited, created or removed meanwhile), so \
         nothing was written: read it again and write from what it holds now",
    )
}

/// Writes `content` at `path` (atomically) only if the file is still `before`.
pub fn write_unchanged(path: &Path, before: &Before, content: &str) -> Result<(), ToolError> {
    if before_write(path) != *before {
        return Err(changed_meanwhile());
    }
    super::write_atomic(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where no one is asked (`punie sandbox`), a file changed between the judgement and the
    /// write is left as it is too: edited, created, removed, or binary and rewritten.
    #[test]
    fn a_write_is_made_only_on_the_file_it_was_judged_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (text, new, binary) = (root.join("a.py"), root.join("b.py"), root.join("c.bin"));
        std::fs::write(&text, "x = 1\n").unwrap();
        std::fs::write(&binary, b"\0\x01").unwrap();
        let judged: Vec<Before> = [&text, &new, &binary]
            .iter()
            .map(|path| before_write(path))
            .collect();
        assert_eq!(judged[0], Before::Text("x = 1\n".to_owned()));
        assert_eq!(judged[1], Before::Missing);
        assert!(matches!(judged[2], Before::Binary { bytes: 2, .. }));

        std::fs::write(&text, "x = 1\ntyped = 2\n").unwrap();
        std::fs::write(&new, "made meanwhile\n").unwrap();
        // Another file with the same size: a new inode.
        let other = root.join("other.bin");
        std::fs::write(&other, b"\0\x02").unwrap();
        std::fs::rename(&other, &binary).unwrap();
        for (path, before) in [&text, &new, &binary].into_iter().zip(&judged) {
            let err = write_unchanged(path, before, "model\n").unwrap_err();
            assert_eq!(err, changed_meanwhile());
        }
        assert_eq!(
            std::fs::read_to_string(&text).unwrap(),
            "x = 1\ntyped = 2\n"
        );
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "made meanwhile\n");
        assert_eq!(std::fs::read(&binary).unwrap(), b"\0\x02");

        std::fs::remove_file(&text).unwrap();
        assert!(
            write_unchanged(&text, &Before::Text("x = 1\ntyped = 2\n".to_owned()), "m").is_err()
        );
        assert!(!text.exists());

        // Unchanged, it is written.
        let binary_now = before_write(&binary);
        write_unchanged(&binary, &binary_now, "model\n").unwrap();
        write_unchanged(&text, &Before::Missing, "model\n").unwrap();
        assert_eq!(std::fs::read_to_string(&binary).unwrap(), "model\n");
        assert_eq!(std::fs::read_to_string(&text).unwrap(), "model\n");
    }
}
