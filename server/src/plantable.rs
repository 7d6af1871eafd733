//! Whether another local user could have put what a path leads to in place, or could put
//! something else there before it is opened: for a file a project's settings may name outside
//! the workspace (a model, a script), which on a shared machine may lie where everyone writes
//! (`/tmp`). A scripted engine's file dictates the tool calls a run makes, a GGUF what the
//! model says and the chat template every prompt goes through.
//!
//! The path is resolved one component at a time, as the kernel resolves it, links included,
//! and every entry met is judged ([`check`]): it belongs to this user or to root, and no one
//! else may write it. A directory others may write is let through only when it is sticky
//! (`/tmp`): there no one but the owner of an entry (which was judged too) and of the
//! directory may rename or remove it. Then no one else can change what the path leads to once
//! it was judged, so the file opened by that path later is the one judged. A missing entry is
//! refused too: in a directory others may write it could appear afterwards.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The most links followed on one path, as Linux's `ELOOP`.
const MAX_LINKS: usize = 40;

/// The permission bits that let the group and everyone else write, and the sticky bit.
const GROUP_WRITE: u32 = 0o020;
const OTHERS_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// Why the file at a path may not be the one the user meant: the entry `path` met on the way.
#[derive(Debug)]
pub(crate) struct Plantable {
    path: PathBuf,
    why: Why,
}

#[derive(Debug)]
enum Why {
    Owner(u32),
    Writable(&'static str),
    Unreadable(io::Error),
    TooManyLinks,
}

impl fmt::Display for Plantable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.why {
            Why::Owner(uid) => write!(
                f,
                "another local user could have put {path} there: it belongs to uid {uid}"
            ),
            Why::Writable(by) => write!(
                f,
                "another local user could change {path}: it is writable by {by}"
            ),
            Why::Unreadable(err) => write!(f, "{path} cannot be checked: {err}"),
            Why::TooManyLinks => write!(f, "{path} cannot be checked: too many links"),
        }
    }
}

/// One step of the resolution still to make.
enum Step {
    Root,
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::RootDir | Component::Prefix(_) => Some(Step::Root),
        Component::CurDir => None,
        Component::ParentDir => Some(Step::Parent),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
    })
}

/// `Ok` when only this user and root can have put what `path` leads to in place and can change
/// it (see the module doc); a relative path is taken from the working directory, as `open`
/// takes it.
pub(crate) fn check(path: &Path) -> Result<(), Plantable> {
    // SAFETY: geteuid has no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    let unreadable = |path: &Path, err: io::Error| Plantable {
        path: path.to_owned(),
        why: Why::Unreadable(err),
    };
    let absolute = std::path::absolute(path).map_err(|err| unreadable(path, err))?;
    // Every entry of `resolved` was judged, and none of them is a link.
    let mut resolved = PathBuf::from("/");
    judge(&resolved, me)?;
    let mut pending: VecDeque<Step> = steps(&absolute).collect();
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        let name = match step {
            Step::Root => {
                resolved = PathBuf::from("/");
                continue;
            }
            Step::Parent => {
                resolved.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        let entry = resolved.join(&name);
        if judge(&entry, me)? {
            links += 1;
            if links > MAX_LINKS {
                return Err(Plantable {
                    path: entry,
                    why: Why::TooManyLinks,
                });
            }
            let target = std::fs::read_link(&entry).map_err(|err| unreadable(&entry, err))?;
            for step in steps(&target).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(step);
            }
        } else {
            resolved = entry;
        }
    }
    Ok(())
}

/// Judges the entry at `path` itself (a link is not followed); `Ok(true)` when it is a link.
fn judge(path: &Path, me: u32) -> Result<bool, Plantable> {
    let refuse = |why| Plantable {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|err| refuse(Why::Unreadable(err)))?;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(Why::Owner(meta.uid())));
    }
    // A link's own mode means nothing: only its owner and its directory's can change it.
    if meta.file_type().is_symlink() {
        return Ok(true);
    }
    let mode = meta.mode();
    if meta.is_dir() && mode & STICKY != 0 {
        return Ok(false);
    }
    if mode & OTHERS_WRITE != 0 {
        return Err(refuse(Why::Writable("other users")));
    }
    // Through an access control list, whose mask these bits show, too.
    if mode & GROUP_WRITE != 0 {
        return Err(refuse(Why::Writable("its group")));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refusal(path: &Path) -> String {
        check(path).unwrap_err().to_string()
    }

    #[test]
    fn a_file_only_the_user_can_change_passes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.gguf");
        std::fs::write(&file, "GGUF").unwrap();
        chmod(&file, 0o644);
        check(&file).unwrap();
        // Through `..`, `.` and a link the user made.
        let link = dir.path().join("link");
        symlink("sub/../model.gguf", &link).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        check(&link).unwrap();
        check(&dir.path().join("sub/./../model.gguf")).unwrap();
    }

    #[test]
    fn a_file_or_directory_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("turns.json");
        std::fs::write(&file, "[]").unwrap();
        chmod(&file, 0o646);
        assert!(refusal(&file).ends_with("turns.json: it is writable by other users"));
        chmod(&file, 0o664);
        assert!(refusal(&file).ends_with("turns.json: it is writable by its group"));
        chmod(&file, 0o600);
        // The directory: anyone could rename the file away and put theirs in its place.
        chmod(dir.path(), 0o777);
        let message = refusal(&file);
        assert_eq!(
            message,
            format!(
                "another local user could change {}: it is writable by other users",
                dir.path().display()
            )
        );
        // Unless it is sticky, as `/tmp` is: there only the file's owner may do that.
        chmod(dir.path(), 0o1777);
        check(&file).unwrap();
    }

    /// The link and its target are both judged: a link in a directory others may write can be
    /// pointed elsewhere after the check, and so can one whose target lies in one.
    #[test]
    fn every_link_on_the_way_is_judged_with_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::write(private.join("model.gguf"), "GGUF").unwrap();
        symlink(private.join("model.gguf"), open.join("link")).unwrap();
        assert!(refusal(&open.join("link")).contains("writable by other users"));
        symlink(open.join("x.gguf"), private.join("to_open")).unwrap();
        std::fs::write(open.join("x.gguf"), "GGUF").unwrap();
        assert!(refusal(&private.join("to_open")).contains("writable by other users"));
        symlink("loop", private.join("loop")).unwrap();
        assert!(refusal(&private.join("loop")).ends_with("too many links"));
    }

    #[test]
    fn a_missing_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let message = refusal(&dir.path().join("absent.json"));
        assert!(
            message.contains("absent.json cannot be checked"),
            "{message}"
        );
    }
}
