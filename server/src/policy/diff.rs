//! What a write changes: a unified diff and a diffstat of the current and the proposed text,
//! with every line escaped (see `show`) so that the diff shows what the file will hold.
//!
//! `similar` computes the diff (Myers, the algorithm of `git diff`); it is already in the
//! build as a dependency of `insta`. Myers is O((N+M)·D), so texts beyond [`MAX_DIFF_LINES`]
//! get a diffstat of sizes only; the front ends that can show both texts (VS Code's diff
//! editor) still do.

use similar::{ChangeTag, TextDiff};

use super::show::escape;

/// Beyond this many lines on either side the change is summarised, not diffed.
pub const MAX_DIFF_LINES: usize = 5_000;

/// What the file holds before a write, as far as a prompt may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// The file does not exist: the write creates it.
    Missing,
    Text(String),
    /// Not UTF-8 (or holding a NUL byte): only its size is shown.
    Binary {
        bytes: u64,
        stamp: FileStamp,
        /// SHA-256 of the bytes read (at most `workspace::MAX_READ_BYTES`): a rewrite that
        /// keeps the size, the inode and the modification time (`cp -p`, `tar x`,
        /// `rsync -t`, `os.utime`) still changes it.
        sha256: [u8; 32],
    },
    /// Too large to read for a prompt.
    TooLarge {
        bytes: u64,
        stamp: FileStamp,
    },
}

/// Which version of a file a prompt saw where it kept no text to compare (a binary file, one
/// too large to read): the file's identity, its last modification and its last status
/// change. A write is made only where the file still matches ([`FileStamp::still`]), so one
/// changed after the prompt is not replaced unseen. Writing a file changes its status-change
/// time (ctime), and no call sets it back as `utime` sets the modification time back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStamp {
    pub device: u64,
    pub inode: u64,
    /// Since the Unix epoch.
    pub modified_ns: i128,
    /// The status-change time, since the Unix epoch; `None` where it cannot be compared: a
    /// file with an execute, setuid, setgid or sticky bit, which the write clears first
    /// (changing this time itself), and systems without one. The gap left: such a file
    /// (asked about only where the settings ask for protected executables) rewritten in
    /// place with its size and modification time kept, when too large to hash (a binary
    /// one is compared by its digest too); and a rewrite within one tick of the file
    /// system's clock after the stamp was taken.
    pub changed_ns: Option<i128>,
}

impl FileStamp {
    /// Whether `now`, taken at the write, is this stamp's file unchanged. A status-change
    /// time is compared only where this stamp has one: the mode bits cleared before the
    /// write change it.
    pub fn still(&self, now: &FileStamp) -> bool {
        self.device == now.device
            && self.inode == now.inode
            && self.modified_ns == now.modified_ns
            && (self.changed_ns.is_none() || self.changed_ns == now.changed_ns)
    }
}

/// Counts of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffStat {
    pub insertions: usize,
    pub deletions: usize,
    pub new_file: bool,
}

/// The change a write makes, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The unified diff, escaped; `None` when the change could only be summarised.
    pub unified: Option<String>,
    pub stat: DiffStat,
    /// One line: `2 lines added, 1 removed`, `new file, 12 lines`, `no change`.
    pub summary: String,
}

/// `text`'s lines, each with its `\n`: split at `\n` only, for the diff and the counts alike.
/// `similar`'s own `from_lines` also splits at a lone `\r`, which would show one written line
/// as two, with a false "No newline at end of file" between them, and count two; here a `\r`
/// stays inside its line, shown escaped like any control character.
fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn n_lines(text: &str) -> usize {
    split_lines(text).len()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The diff of writing `after` over `before` at the workspace-relative `path`.
pub(crate) fn diff(path: &str, before: &Before, after: &str) -> Diff {
    let after_lines = n_lines(after);
    let old = match before {
        Before::Missing => "",
        Before::Text(text) => text.as_str(),
        Before::Binary { bytes, .. } | Before::TooLarge { bytes, .. } => {
            let what = if matches!(before, Before::Binary { .. }) {
                "a binary file"
            } else {
                "a file too large to show"
            };
            return Diff {
                unified: None,
                stat: DiffStat {
                    insertions: after_lines,
                    deletions: 0,
                    new_file: false,
                },
                summary: format!(
                    "replaces {what} ({}) with {}",
                    plural(*bytes as usize, "byte", "bytes"),
                    plural(after_lines, "line", "lines")
                ),
            };
        }
    };
    let new_file = *before == Before::Missing;
    if n_lines(old) > MAX_DIFF_LINES || after_lines > MAX_DIFF_LINES {
        return Diff {
            unified: None,
            stat: DiffStat {
                insertions: after_lines,
                deletions: n_lines(old),
                new_file,
            },
            summary: format!(
                "{}: {} → {} (too long to diff here)",
                if new_file {
                    "new file"
                } else {
                    "rewrites the file"
                },
                plural(n_lines(old), "line", "lines"),
                plural(after_lines, "line", "lines")
            ),
        };
    }

    let (old_split, after_split) = (split_lines(old), split_lines(after));
    let text_diff = TextDiff::configure().diff_slices(&old_split, &after_split);
    let mut stat = DiffStat {
        insertions: 0,
        deletions: 0,
        new_file,
    };
    for change in text_diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => stat.insertions += 1,
            ChangeTag::Delete => stat.deletions += 1,
            ChangeTag::Equal => {}
        }
    }
    let mut unified = String::new();
    if stat.insertions + stat.deletions > 0 {
        // The path comes from the model: a newline in it would forge header and hunk lines.
        let path = escape(path);
        let old_name = if new_file {
            "/dev/null".to_owned()
        } else {
            format!("a/{path}")
        };
        unified.push_str(&format!("--- {old_name}\n+++ b/{path}\n"));
        for hunk in text_diff.unified_diff().context_radius(3).iter_hunks() {
            unified.push_str(&format!("{}\n", hunk.header()));
            for change in hunk.iter_changes() {
                let sign = match change.tag() {
                    ChangeTag::Insert => '+',
                    ChangeTag::Delete => '-',
                    ChangeTag::Equal => ' ',
                };
                let line = change.as_str().unwrap_or_default();
                let (body, newline) = match line.strip_suffix('\n') {
                    Some(body) => (body, true),
                    None => (line, false),
                };
                unified.push(sign);
                unified.push_str(&escape(body));
                unified.push('\n');
                if !newline {
                    unified.push_str("\\ No newline at end of file\n");
                }
            }
        }
    }
    let summary = if new_file {
        format!("new file, {}", plural(after_lines, "line", "lines"))
    } else if stat.insertions + stat.deletions == 0 {
        "no change".to_owned()
    } else {
        format!(
            "{} added, {} removed",
            plural(stat.insertions, "line", "lines"),
            stat.deletions
        )
    };
    Diff {
        unified: (!unified.is_empty()).then_some(unified),
        stat,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_carriage_return_stays_inside_its_line() {
        let written = diff("f.txt", &Before::Text("old\n".into()), "a\rb\n");
        assert_eq!(
            written.unified.as_deref(),
            Some("--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-old\n+a<U+000D>b\n")
        );
        assert_eq!(written.summary, "1 line added, 1 removed");

        let created = diff("f.txt", &Before::Missing, "a\rb\rc");
        assert_eq!(
            created.unified.as_deref(),
            Some(
                "--- /dev/null\n+++ b/f.txt\n@@ -0,0 +1 @@\n+a<U+000D>b<U+000D>c\n\\ No newline at end of file\n"
            )
        );
        assert_eq!(created.summary, "new file, 1 line");
        assert_eq!(created.stat.insertions, 1);
    }

    #[test]
    fn crlf_lines_count_once() {
        let written = diff("f.txt", &Before::Text("a\r\nb\r\n".into()), "a\r\nc\r\n");
        assert_eq!(
            written.unified.as_deref(),
            Some("--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n a<U+000D>\n-b<U+000D>\n+c<U+000D>\n")
        );
        assert_eq!(written.summary, "1 line added, 1 removed");
    }
}
