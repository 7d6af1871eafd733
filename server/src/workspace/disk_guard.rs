//! A command that fills the disk is stopped.
//!
//! Without cgroup v2 (or on macOS) there is no disk quota for a command: `yes > out` in the
//! workspace writes until the deadline, gigabytes a second, and a full disk breaks the
//! user's editor and everything else. So while a command runs, a watcher reads the free
//! space of the workspace's file system every [`INTERVAL`] and stops the command once the
//! free space has fallen by more than its budget: half of what was free when it started,
//! and never more than [`MAX_BUDGET`]. What the command wrote stays (it is the user's
//! workspace and may hold anything); the error says what happened.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cancel::CancelFlag;

/// How often the watcher reads the free space: at 2 GB/s a command overshoots its budget by
/// at most about this much time's writing.
const INTERVAL: Duration = Duration::from_millis(100);

/// The most a command may take from the disk.
const MAX_BUDGET: u64 = 10 << 30;

/// Watches one command; dropping it stops the watcher.
pub(super) struct DiskGuard {
    done: CancelFlag,
    /// Bytes the disk lost when the watcher stopped the command; 0 while it has not.
    tripped_at: Arc<AtomicU64>,
    budget: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DiskGuard {
    /// Starts watching the file system of `workspace`; cancels `command` when the command
    /// has taken more than its budget. Without a reading of the free space, watches nothing.
    pub(super) fn watch(workspace: &Path, command: &CancelFlag) -> DiskGuard {
        let done = CancelFlag::default();
        let tripped_at = Arc::new(AtomicU64::new(0));
        let Some(free_at_start) = free_bytes(workspace) else {
            return DiskGuard {
                done,
                tripped_at,
                budget: 0,
                thread: None,
            };
        };
        let budget = (free_at_start / 2).min(MAX_BUDGET);
        let thread = {
            let (done, tripped_at, command) = (done.clone(), tripped_at.clone(), command.clone());
            let workspace: PathBuf = workspace.to_path_buf();
            std::thread::Builder::new()
                .name("punie-disk-guard".to_owned())
                .spawn(move || {
                    // Never sent on: the wait below only ends at its deadline or on `done`.
                    let (_keep, never) = crossbeam_channel::bounded::<()>(0);
                    while done.wait(&never, Some(Instant::now() + INTERVAL)).is_err()
                        && !done.is_cancelled()
                    {
                        let Some(free) = free_bytes(&workspace) else {
                            continue;
                        };
                        let taken = free_at_start.saturating_sub(free);
                        if taken > budget {
                            tripped_at.store(taken, Ordering::Release);
                            command.cancel();
                            return;
                        }
                    }
                })
                .ok()
        };
        DiskGuard {
            done,
            tripped_at,
            budget,
            thread,
        }
    }

    /// Why the watcher stopped the command, or `None` when it did not.
    pub(super) fn stopped_because(&self) -> Option<String> {
        let taken = self.tripped_at.load(Ordering::Acquire);
        (taken > 0).then(|| {
            format!(
                "the command was stopped: it took {} of disk space, more than its share of {} (half of what was free, at most 10 GiB); what it wrote is still in the workspace",
                size(taken),
                size(self.budget)
            )
        })
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
}
