//! Helpers shared by the end-to-end modules.

use std::sync::{Mutex, MutexGuard};

/// Tests that run a real model take this lock, so they run one at a time: llama.cpp's threads
/// spin while they wait for each other, and two models decoding at once on a 2-core machine are
/// many times slower than two in a row.
pub(crate) fn real_model_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
