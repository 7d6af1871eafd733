//! A protected path a command makes stops the command at once.
//!
//! The sweep (`quarantine.rs`) moves aside the protected paths a command made, but only once
//! the command has ended; until then they work. A command that makes a nested repository
//! with a `core.fsmonitor` in its `.git/config`, then sleeps out its time limit, has its
//! program run by the next `git status` the user's editor makes (VS Code's git extension runs
//! one within seconds of a change), outside the jail. So while a command runs, an inotify
//! watcher follows every directory the protected walk read, and every directory made or
//! moved in since, and judges each name made or moved into them as the walk would
//! ([`jail::judge_entry`]). The first protected path that was not there before stops the
//! command, and the sweep moves it aside. The path is out there from its creation until the
//! sweep, milliseconds, once per command: no longer for as long as the command chooses.
//! The verdict does not depend on who was faster: once the command has ended, every event it
//! caused is already queued, and [`ProtectedWatch::finish`] judges them all, so a command that
//! made a protected path fails the same way whether it was stopped or ended first.
//!
//! It fails closed. When the kernel's queue of events overflowed, the whole workspace is read
//! again; when a directory cannot be watched (the user's inotify watches are used up,
//! `fs.inotify.max_user_watches`), or a command makes more directories than the sweep after
//! it would read, the command is stopped: the watcher could no longer see what it makes.
//! Not followed, as by the walk: the inside of the directories it skips (`node_modules`,
//! `target`, caches) and Punie's own `.punie`, which the server writes while commands run.
//! On macOS (no inotify) the sweep after the command is the only check.

use std::path::{Path, PathBuf};

use crate::cancel::CancelFlag;

/// Watches one command; dropping it stops the watcher.
pub(super) struct ProtectedWatch {
    #[cfg(target_os = "linux")]
    linux: linux::Running,
}

impl ProtectedWatch {
    /// Starts watching `dirs` (the directories the walk before the command read) for protected
    /// paths that are not among `before`; the first cancels `command`. Called before the
    /// command starts, so nothing it makes is missed; `Err` says why the watch could not be
    /// set up, and then the command must not run.
    pub(super) fn start(
        workspace: &Path,
        dirs: &[PathBuf],
        before: &[PathBuf],
        command: &CancelFlag,
    ) -> Result<ProtectedWatch, String> {
        #[cfg(target_os = "linux")]
        {
            Ok(ProtectedWatch {
                linux: linux::Running::start(workspace, dirs, before, command)?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (workspace, dirs, before, command);
            Ok(ProtectedWatch {})
        }
    }

    /// Stops watching once the command and everything it started are gone: judges the events
    /// still queued, then says why the command must fail (the protected path it made), or
    /// `None` when it made none.
    pub(super) fn finish(self) -> Option<String> {
        #[cfg(target_os = "linux")]
        {
            self.linux.finish()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

/// The error of a command that made `made` (workspace-relative), or replaced it when it was
/// a protected link before.
fn made_protected(made: &Path, replaced: bool) -> String {
    let what = if replaced {
        "replaced the protected link"
    } else {
        "made the protected path"
    };
    format!(
        "the command was stopped: it {what} {} (protected: a repository's git directory, \
         editor or tool settings, a Python environment, what runs programs later outside the \
         jail). Commands may not make one; it is moved aside.",
        made.display()
    )
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{HashMap, HashSet};
    use std::ffi::OsStr;
    use std::mem::MaybeUninit;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

    use crate::cancel::{CancelFlag, poll_for, poll_until};
    use crate::jail;

    /// Punie's own directory: the server writes there while commands run, and the sweep
    /// judges it on its own terms.
    use super::super::quarantine::STATE_DIR;

    /// The events that can make a protected path: a name made, or moved in. What a protected
    /// path is depends only on which names exist, never on what files hold.
    fn flags() -> WatchFlags {
        WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW
            | WatchFlags::EXCL_UNLINK
    }

    /// The watcher thread of one command.
    pub(super) struct Running {
        done: CancelFlag,
        /// Why the command must fail, if it must: sent once every event is judged, before the
        /// thread closes the inotify instance. Closing it frees every watch and waits for the
        /// kernel's grace period (about 10 ms for thousands of watches), which no command
        /// needs to wait for, so the thread does that on its own after the verdict.
        verdict: Option<crossbeam_channel::Receiver<Option<String>>>,
    }

    impl Running {
        pub(super) fn start(
            workspace: &Path,
            dirs: &[PathBuf],
            before: &[PathBuf],
            command: &CancelFlag,
        ) -> Result<Running, String> {
            let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
                .map_err(|err| format!("cannot watch the workspace for protected paths: {err}"))?;
            let mut watcher = Watcher {
                inotify,
                workspace: workspace.to_path_buf(),
                dirs: HashMap::new(),
                before: before.iter().cloned().collect(),
            };
            for dir in dirs {
                watcher.watch(dir)?;
            }
            let done = CancelFlag::default();
            let (send_verdict, verdict) = crossbeam_channel::bounded(1);
            {
                let (done, command) = (done.clone(), command.clone());
                std::thread::Builder::new()
                    .name("punie-protected-watch".to_owned())
                    .spawn(move || {
                        let why = watcher.follow(&done);
                        if why.is_some() {
                            command.cancel();
                        }
                        let _ = send_verdict.send(why);
                        drop(watcher);
                    })
                    .map_err(|err| format!("cannot start the protected-path watcher: {err}"))?;
            }
            Ok(Running {
                done,
                verdict: Some(verdict),
            })
        }

        pub(super) fn finish(mut self) -> Option<String> {
            self.stop()
        }

        fn stop(&mut self) -> Option<String> {
            self.done.cancel();
            // A watcher that ended without a verdict (a panic) judged nothing: fail closed.
            match self.verdict.take()?.recv() {
                Ok(why) => why,
                Err(_) => Some(
                    "the protected-path watcher stopped before it judged what the command made"
                        .to_owned(),
                ),
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.stop();
        }
    }

    /// One name made or moved into a watched directory, copied out of the kernel's buffer.
    struct Event {
        watch: i32,
        events: ReadFlags,
        name: Option<PathBuf>,
    }

    struct Watcher {
        inotify: OwnedFd,
        workspace: PathBuf,
        /// Each watched directory by its watch, as the walk spells it. A directory renamed
        /// keeps its watch; it is watched again under its new name when the move is seen.
        dirs: HashMap<i32, PathBuf>,
        before: HashSet<PathBuf>,
    }

    impl Watcher {
        /// Watches `dir`; `Err` says why it cannot be, in words for the command's error.
        fn watch(&mut self, dir: &Path) -> Result<(), String> {
            if self.dirs.len() >= jail::DIRS_AFTER_COMMAND {
                return Err(format!(
                    "the workspace has more than {} directories to watch for protected paths",
                    jail::DIRS_AFTER_COMMAND
                ));
            }
            match inotify::add_watch(&self.inotify, dir, flags()) {
                Ok(watch) => {
                    self.dirs.insert(watch, dir.to_path_buf());
                    Ok(())
                }
                Err(rustix::io::Errno::NOSPC) => Err(format!(
                    "no inotify watch is left to watch {} for protected paths \
                     (fs.inotify.max_user_watches is used up; raise it with sysctl)",
                    dir.display()
                )),
                // Gone, or no longer a directory, since it was listed: nothing to watch.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(()),
                Err(err) => Err(format!("cannot watch {}: {err}", dir.display())),
            }
        }

        /// Follows the events until a protected path appears, or `done` and then every event
        /// queued by then is judged; returns why the command must fail, or `None`.
        fn follow(&mut self, done: &CancelFlag) -> Option<String> {
            let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
            loop {
                // `done` wakes the wait at once; a quiet command costs no wake-ups.
                let mut fds = [poll_for(self.inotify.as_raw_fd(), libc::POLLIN)];
                poll_until(
                    &mut fds,
                    Instant::now() + Duration::from_secs(3600),
                    Some(done),
                );
                let last = done.is_cancelled();
                // Each directory a name appeared in is judged once a batch: a command that
                // makes thousands of files in one costs one judgement per read, not each.
                let mut touched = HashSet::new();
                for event in self.read_events(&mut buf) {
                    if let Some(why) = self.judge(&event, &mut touched) {
                        return Some(why);
                    }
                }
                for dir in touched {
                    if let Some(why) = self.judge_dir(&dir) {
                        return Some(why);
                    }
                }
                if last {
                    return None;
                }
            }
        }

        /// Every event the kernel holds now (a read that would block ends the batch).
        fn read_events(&self, buf: &mut [MaybeUninit<u8>]) -> Vec<Event> {
            let mut res = Vec::new();
            let mut reader = inotify::Reader::new(&self.inotify, buf);
            while let Ok(event) = reader.next() {
                res.push(Event {
                    watch: event.wd(),
                    events: event.events(),
                    name: event
                        .file_name()
                        .map(|name| PathBuf::from(OsStr::from_bytes(name.to_bytes()))),
                });
            }
            res
        }

        /// Why the command must stop after `event`, if it must; the directory it happened in
        /// goes to `touched`, for [`Self::judge_dir`].
        fn judge(&mut self, event: &Event, touched: &mut HashSet<PathBuf>) -> Option<String> {
            if event.events.contains(ReadFlags::QUEUE_OVERFLOW) {
                // Events were lost: read everything again, as the walk did before.
                let workspace = self.workspace.clone();
                return self.read_new_dir(&workspace);
            }
            if event.events.contains(ReadFlags::IGNORED) {
                self.dirs.remove(&event.watch);
                return None;
            }
            let (Some(dir), Some(name)) = (self.dirs.get(&event.watch), &event.name) else {
                return None;
            };
            let dir = dir.clone();
            let path = dir.join(name);
            if self.is_own_state(&path) {
                return None;
            }
            // A name that was protected before is a protected link the command replaced.
            if self.before.contains(&path) {
                return Some(self.stop_for(&path, true));
            }
            let is_dir = event.events.contains(ReadFlags::ISDIR);
            let judged = jail::judge_entry(&self.workspace, &path, is_dir);
            if let Some(why) = self.first_new(&judged.protected) {
                return Some(why);
            }
            // Judged as the name leaves its directory, gone again or not: a `HEAD` made and
            // removed at once must not slip between two looks at the directory.
            let name = name.as_os_str();
            if jail::becomes_git_dir(&dir, Some(name))
                || jail::becomes_virtual_env(&dir, Some(name))
            {
                let made = if dir != self.workspace {
                    vec![dir.clone()]
                } else {
                    // What the sweep will move aside (protected before, and so not new, when
                    // the root already was one); the name itself when it is gone again.
                    let markers = jail::root_markers(&self.workspace);
                    if markers.is_empty() {
                        vec![path.clone()]
                    } else {
                        markers
                    }
                };
                if let Some(why) = self.first_new(&made) {
                    return Some(why);
                }
            }
            touched.insert(dir);
            if judged.walk_into {
                return self.read_new_dir(&path);
            }
            None
        }

        /// Why the command must stop now that names appeared in `dir`, if it must: they may
        /// make it protected (`HEAD` beside `objects/` and `refs/`, a `pyvenv.cfg`), or be what a
        /// two-part rule names (`workflows` in `.github`); at the root, what makes the root a
        /// git directory or environment, and the user's own configuration.
        fn judge_dir(&self, dir: &Path) -> Option<String> {
            let around = if dir == self.workspace {
                jail::root_protected(&self.workspace)
            } else {
                jail::judge_entry(&self.workspace, dir, true).protected
            };
            self.first_new(&around)
        }

        /// Watches `top` and every directory the walk would read below it, then judges what
        /// is already there: a directory made or moved in may have been filled before its
        /// watch was set.
        fn read_new_dir(&mut self, top: &Path) -> Option<String> {
            let mut queue = std::collections::VecDeque::from([top.to_path_buf()]);
            while let Some(dir) = queue.pop_front() {
                if let Err(why) = self.watch(&dir) {
                    return Some(format!("the command was stopped: {why}"));
                }
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if self.is_own_state(&path) {
                        continue;
                    }
                    let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                    let judged = jail::judge_entry(&self.workspace, &path, is_dir);
                    if let Some(why) = self.first_new(&judged.protected) {
                        return Some(why);
                    }
                    if judged.walk_into {
                        queue.push_back(path);
                    }
                }
                // What it held before its watch was set may make it protected: `.cargo` with
                // a `config.toml` made before the watch, a `HEAD` beside `objects/`.
                if dir != self.workspace
                    && let Some(why) = self.judge_dir(&dir)
                {
                    return Some(why);
                }
            }
            if top == self.workspace {
                return self.first_new(&jail::root_protected(&self.workspace));
            }
            None
        }

        /// The stop for the first of `protected` that was not there before the command.
        fn first_new(&self, protected: &[PathBuf]) -> Option<String> {
            protected
                .iter()
                .find(|path| !self.before.contains(*path) && !self.is_own_state(path))
                .map(|path| self.stop_for(path, false))
        }

        fn stop_for(&self, path: &Path, replaced: bool) -> String {
            let shown = path.strip_prefix(&self.workspace).unwrap_or(path);
            super::made_protected(shown, replaced)
        }

        fn is_own_state(&self, path: &Path) -> bool {
            path.strip_prefix(&self.workspace)
                .is_ok_and(|rel| rel.starts_with(STATE_DIR))
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A watch of `root` as it is now, as before a command, and the command's flag.
    fn watching(root: &Path) -> (ProtectedWatch, CancelFlag) {
        let found = crate::jail::protected_in(root, 100);
        let command = CancelFlag::default();
        let watch = ProtectedWatch::start(root, &found.dirs, &found.paths, &command).unwrap();
        (watch, command)
    }

    /// Waits until the watcher stopped `command` (a minute at most: a hang guard, not a
    /// timing); its reason.
    fn stop_reason(watch: ProtectedWatch, command: &CancelFlag) -> String {
        // Never sent on: the wait ends when the watcher cancels `command`.
        let (_keep, never) = crossbeam_channel::bounded::<()>(0);
        let _ = command.wait(&never, Some(Instant::now() + Duration::from_secs(60)));
        watch.finish().unwrap_or_default()
    }

    #[test]
    fn the_first_protected_path_made_stops_the_command_and_ordinary_ones_do_not() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir_all(root.join("old/.git")).unwrap();
        let (watch, command) = watching(root);
        // Ordinary names first, in watched and new directories: the events come in order, so
        // a stop for any of them would be the reason below.
        std::fs::create_dir_all(root.join("src/pkg/deep")).unwrap();
        std::fs::write(root.join("src/pkg/deep/mod.py"), "").unwrap();
        std::fs::create_dir_all(root.join("node_modules/x/.git")).unwrap();
        std::fs::create_dir_all(root.join(".punie/runs")).unwrap();
        std::fs::create_dir_all(root.join("src/pkg/deep/.vscode")).unwrap();
        let reason = stop_reason(watch, &command);
        assert!(
            reason.contains("it made the protected path src/pkg/deep/.vscode"),
            "{reason:?}"
        );
    }

    #[test]
    fn a_directory_that_becomes_a_git_directory_stops_the_command() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir_all(root.join("lib/objects")).unwrap();
        std::fs::create_dir_all(root.join("lib/refs")).unwrap();
        let (watch, command) = watching(root);
        std::fs::write(root.join("lib/HEAD"), "ref: refs/heads/main\n").unwrap();
        let reason = stop_reason(watch, &command);
        assert!(
            reason.contains("it made the protected path lib"),
            "{reason:?}"
        );
    }

    #[test]
    fn a_tree_moved_in_is_read_whole() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        // Made where nothing is watched, then moved where everything is.
        std::fs::create_dir_all(root.join("target/stage/a/b/.envrc")).unwrap();
        let (watch, command) = watching(root);
        std::fs::rename(root.join("target/stage"), root.join("vendored")).unwrap();
        let reason = stop_reason(watch, &command);
        assert!(
            reason.contains("it made the protected path vendored/a/b/.envrc"),
            "{reason:?}"
        );
    }
}
