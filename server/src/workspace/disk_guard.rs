//! A command that fills the disk is stopped.
//!
//! Without cgroup v2 (or on macOS) there is no disk quota for a command: `yes > out` in the
//! workspace writes until the deadline, gigabytes a second, and a full disk breaks the
//! user's editor and everything else. So while a command runs, a watcher reads the free
//! space of the file systems it may write every [`INTERVAL`] and stops the command once the
//! free space of one has fallen by more than its budget: half of what was free when it
//! started, and never more than [`MAX_BUDGET`]. Those are the workspace's and the server's
//! temporary directory's, where the run's private directory (the command's `TMPDIR` and
//! `HOME`) is made: often a tmpfs, that is memory, which a full one takes from every
//! program. Watching it works with namespaces and without (a size-limited tmpfs mounted for
//! the command would need a mount namespace). What the command wrote in the workspace stays
//! (it is the user's workspace and may hold anything); its private directory is removed with
//! the run; the error says what happened.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cancel::CancelFlag;

/// How often the watcher reads the free space: at 2 GB/s a command overshoots its budget by
/// at most about this much time's writing (20 MB), which a small tmpfs has room for.
/// A reading is one `statvfs` per file system: nothing measurable.
const INTERVAL: Duration = Duration::from_millis(10);

/// The most a command may take from one file system.
const MAX_BUDGET: u64 = 10 << 30;

/// Watches one command; dropping it stops the watcher.
pub(super) struct DiskGuard {
    done: CancelFlag,
    volumes: Arc<Vec<Volume>>,
    /// Bytes the file system `tripped_on` lost when the watcher stopped the command; 0 while
    /// it has not.
    tripped_at: Arc<AtomicU64>,
    tripped_on: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A file system the command may write, as it was when the command started.
struct Volume {
    path: PathBuf,
    place: Place,
    free_at_start: u64,
    budget: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Workspace,
    /// The server's temporary directory, which holds the run's private directory.
    Temporary,
}

impl DiskGuard {
    /// Starts watching the file systems of `workspace` and of the temporary directory (when
    /// another); cancels `command` when the command has taken more than its budget of one.
    /// A file system whose free space cannot be read is not watched.
    pub(super) fn watch(workspace: &Path, command: &CancelFlag) -> DiskGuard {
        Self::watch_places(
            &[
                (workspace.to_path_buf(), Place::Workspace),
                (std::env::temp_dir(), Place::Temporary),
            ],
            command,
        )
    }

    fn watch_places(places: &[(PathBuf, Place)], command: &CancelFlag) -> DiskGuard {
        let done = CancelFlag::default();
        let tripped_at = Arc::new(AtomicU64::new(0));
        let tripped_on = Arc::new(AtomicUsize::new(0));
        let mut devices = Vec::new();
        let mut volumes = Vec::new();
        for (path, place) in places {
            let (Some(device), Some(free_at_start)) = (device(path), free_bytes(path)) else {
                continue;
            };
            // One file system is watched once, with one budget.
            if devices.contains(&device) {
                continue;
            }
            devices.push(device);
            volumes.push(Volume {
                path: path.clone(),
                place: *place,
                free_at_start,
                budget: (free_at_start / 2).min(MAX_BUDGET),
            });
        }
        let volumes = Arc::new(volumes);
        let thread = (!volumes.is_empty())
            .then(|| {
                let (done, volumes, command) = (done.clone(), volumes.clone(), command.clone());
                let (tripped_at, tripped_on) = (tripped_at.clone(), tripped_on.clone());
                std::thread::Builder::new()
                    .name("punie-disk-guard".to_owned())
                    .spawn(move || {
                        // Never sent on: the wait below only ends at its deadline or on `done`.
                        let (_keep, never) = crossbeam_channel::bounded::<()>(0);
                        while done.wait(&never, Some(Instant::now() + INTERVAL)).is_err()
                            && !done.is_cancelled()
                        {
                            for (index, volume) in volumes.iter().enumerate() {
                                let Some(free) = free_bytes(&volume.path) else {
                                    continue;
                                };
                                let taken = volume.free_at_start.saturating_sub(free);
                                if taken > volume.budget {
                                    tripped_on.store(index, Ordering::Release);
                                    tripped_at.store(taken, Ordering::Release);
                                    command.cancel();
                                    return;
                                }
                            }
                        }
                    })
                    .ok()
            })
            .flatten();
        DiskGuard {
            done,
            volumes,
            tripped_at,
            tripped_on,
            thread,
        }
    }

    /// Why the watcher stopped the command, or `None` when it did not.
    pub(super) fn stopped_because(&self) -> Option<String> {
        let taken = self.tripped_at.load(Ordering::Acquire);
        if taken == 0 {
            return None;
        }
        let volume = self.volumes.get(self.tripped_on.load(Ordering::Acquire))?;
        let (place, left) = match volume.place {
            Place::Workspace => ("disk space", "what it wrote is still in the workspace"),
            Place::Temporary => (
                "space in its temporary directory",
                "what it wrote there is removed with the run",
            ),
        };
        Some(format!(
            "the command was stopped: it took {} of {place}, more than its share of {} (half of what was free, at most 10 GiB); {left}",
            size(taken),
            size(volume.budget)
        ))
    }
}

impl Drop for DiskGuard {
    fn drop(&mut self) {
        self.done.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The file system holding `path`.
fn device(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|meta| meta.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Bytes an unprivileged process may still write on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs writes into the zeroed struct we own; `path` is a valid C string.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        Some(stat.f_bavail as u64 * stat.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_free_space_and_a_quiet_command_is_never_stopped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|free| free > 0));
        let command = CancelFlag::default();
        let guard = DiskGuard::watch(dir.path(), &command);
        std::fs::write(dir.path().join("small"), "x").unwrap();
        drop(guard);
        assert!(!command.is_cancelled());
    }

    #[test]
    fn one_file_system_is_watched_once() {
        let dir = tempfile::tempdir().unwrap();
        let command = CancelFlag::default();
        let guard = DiskGuard::watch_places(
            &[
                (dir.path().to_path_buf(), Place::Workspace),
                (dir.path().join("."), Place::Temporary),
            ],
            &command,
        );
        assert_eq!(guard.volumes.len(), 1);
        assert_eq!(guard.volumes[0].place, Place::Workspace);
    }
}
