//! Locks that outlive a panic elsewhere.
//!
//! A thread that panics while it holds a lock poisons it, and `lock().unwrap()` would then panic
//! in every later user: one failed run would take the whole server down. Every lock in Punie
//! guards a value that is assigned whole (a slot, a map entry, a progress state), so the value a
//! panic leaves behind is still one that was written on purpose, and these take it as it is.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `mutex`'s value, also when a panic elsewhere poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// `rw_lock`'s value to read, also when a panic elsewhere poisoned it.
pub(crate) fn read<T: ?Sized>(rw_lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rw_lock.read().unwrap_or_else(|poison| poison.into_inner())
}

/// `rw_lock`'s value to change, also when a panic elsewhere poisoned it.
pub(crate) fn write<T: ?Sized>(rw_lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rw_lock.write().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let mutex = Mutex::new(1);
        let rw_lock = RwLock::new(2);
        let _ = std::panic::catch_unwind(|| {
            let _held = mutex.lock().unwrap();
            let _written = rw_lock.write().unwrap();
            panic!("a run panics while it holds both");
        });
        assert!(mutex.is_poisoned() && rw_lock.is_poisoned());
        *lock(&mutex) += 1;
        *write(&rw_lock) += 1;
        assert_eq!((*lock(&mutex), *read(&rw_lock)), (2, 3));
    }
}
