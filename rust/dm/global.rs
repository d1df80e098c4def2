// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Module-wide state shared by targets (such as the thin-pool registry), under one mutex.

use super::bindings;
use core::cell::UnsafeCell;

/// A value reachable from every target, guarded by the module's global mutex.
///
/// # Invariants
///
/// `data` is only accessed in [`Global::with`], which holds the global mutex.
pub struct Global<T> {
    data: UnsafeCell<T>,
}

// SAFETY: access is serialised by the global mutex; `T` moves between threads.
unsafe impl<T: Send> Sync for Global<T> {}

impl<T> Global<T> {
    /// Wraps `v`.
    pub const fn new(v: T) -> Self {
        Global {
            data: UnsafeCell::new(v),
        }
    }

    /// Drops the value, leaving the default one (at module exit: statics are not dropped,
    /// so a registry's buffer would outlive the module).
    pub fn reset(&self)
    where
        T: Default,
    {
        let old = self.with(core::mem::take);
        drop(old);
    }

    /// Calls `f` with the value, holding the global mutex (sleeps; process context only).
    /// `f` must not call `with` on any `Global`: it would deadlock.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: process context, as documented.
        unsafe { bindings::orion_global_lock() };
        // SAFETY: the mutex is held, so this is the only reference (a nested `with` blocks
        // on the mutex before it could make another).
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: we hold the mutex.
        unsafe { bindings::orion_global_unlock() };
        r
    }
}
