//! What a write finds at its path ([`Before`]): read when the write is judged, for the prompt,
//! and again when it is made, which happens only where the two agree, so that a file changed
//! while the user read the question (or created, or removed) is not replaced unseen.

use std::path::Path;

use sha2::Digest;

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
    let binary = |content: Vec<u8>| Before::Binary {
        bytes,
        stamp,
        sha256: sha2::Sha256::digest(&content).into(),
    };
    match super::read_bounded(path, "", MAX_READ_BYTES).map(String::from_utf8) {
        Ok(Ok(text)) if !text.contains('\0') => Before::Text(text),
        Ok(Ok(text)) => binary(text.into_bytes()),
        Ok(Err(not_utf8)) => binary(not_utf8.into_bytes()),
        Err(_) => Before::TooLarge { bytes, stamp },
    }
}

/// Whether the file at `path` is still `before`, the file a write was judged (and, where the
/// user was asked, shown) on: the same text, or for a file whose text was not kept the same
/// digest and [`FileStamp::still`].
pub fn still_before(path: &Path, before: &Before) -> bool {
    match (before, &before_write(path)) {
        (
            Before::Binary {
                bytes,
                stamp,
                sha256,
            },
            Before::Binary {
                bytes: bytes_now,
                stamp: stamp_now,
                sha256: sha256_now,
            },
        ) => bytes == bytes_now && sha256 == sha256_now && stamp.still(stamp_now),
        (
            Before::TooLarge { bytes, stamp },
            Before::TooLarge {
                bytes: bytes_now,
                stamp: stamp_now,
            },
        ) => bytes == bytes_now && stamp.still(stamp_now),
        (judged, now) => judged == now,
    }
}

fn stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i128);
    #[cfg(unix)]
    let (device, inode, changed_ns) = {
        use std::os::unix::fs::MetadataExt;
        // `clear_exec_bits`, before the write, changes the mode only where it has a bit to
        // clear: there the status-change time moves and cannot be compared.
        let changed_ns = (!crate::atomic_file::has_bits_to_clear(meta))
            .then(|| i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()));
        (meta.dev(), meta.ino(), changed_ns)
    };
    #[cfg(not(unix))]
    let (device, inode, changed_ns) = (0, 0, None);
    FileStamp {
        device,
        inode,
        modified_ns,
        changed_ns,
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
    if !still_before(path, before) {
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

    /// Rewritten in place with bytes of the same size and the modification time put back
    /// (as `cp -p`, `tar x`, `rsync -t` or `os.utime` leave it): the identity, the size and
    /// the modification time all match what was judged, and still nothing is written, for a
    /// binary file (its digest) and one too large to read (its status-change time).
    #[test]
    fn a_rewrite_that_puts_the_modification_time_back_is_seen() {
        use std::io::{Seek, SeekFrom, Write};

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (binary, large) = (root.join("data.bin"), root.join("disk.img"));
        std::fs::write(&binary, b"\0OLD-CONTENT-AT-QUESTION-TIME\n").unwrap();
        std::fs::File::create(&large)
            .unwrap()
            .set_len(MAX_READ_BYTES + 1)
            .unwrap();
        let judged: Vec<Before> = [&binary, &large]
            .iter()
            .map(|path| before_write(path))
            .collect();
        assert!(matches!(judged[0], Before::Binary { .. }));
        assert!(matches!(judged[1], Before::TooLarge { .. }));

        // One tick of the file system's clock, so that the rewrite's times differ from the
        // judged ones at all.
        std::thread::sleep(std::time::Duration::from_millis(20));
        for (path, new) in [
            (&binary, &b"\0NEW-BYTES-WRITTEN-MEANWHILE!\n"[..]),
            (&large, &b"planted"[..]),
        ] {
            let modified = std::fs::metadata(path).unwrap().modified().unwrap();
            let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(new).unwrap();
            file.set_times(std::fs::FileTimes::new().set_modified(modified))
                .unwrap();
        }
        for (path, before) in [&binary, &large].into_iter().zip(&judged) {
            assert_eq!(
                write_unchanged(path, before, "model\n").unwrap_err(),
                changed_meanwhile()
            );
        }
        assert_eq!(
            std::fs::read(&binary).unwrap(),
            b"\0NEW-BYTES-WRITTEN-MEANWHILE!\n"
        );
        assert_eq!(std::fs::metadata(&large).unwrap().len(), MAX_READ_BYTES + 1);
    }

    /// The execute bits cleared before the write change the status-change time: a file that
    /// had one is still written when nothing else changed.
    #[cfg(unix)]
    #[test]
    fn clearing_execute_bits_is_not_a_change() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let large = dir.path().canonicalize().unwrap().join("tool.run");
        let file = std::fs::File::create(&large).unwrap();
        file.set_len(MAX_READ_BYTES + 1).unwrap();
        file.set_permissions(std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let judged = before_write(&large);
        std::thread::sleep(std::time::Duration::from_millis(20));
        crate::workspace::clear_exec_bits(&large).unwrap();
        write_unchanged(&large, &judged, "model\n").unwrap();
        assert_eq!(std::fs::read_to_string(&large).unwrap(), "model\n");
    }
}
