// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A mutex that can also be tried without sleeping: work that a bio's completion may do at
//! once when it runs in a submitter's task (where nothing may sleep) takes its locks this way
//! and leaves the work to a worker when one is held. The kernel crate's `Mutex` has no
//! `try_lock` in Linux 6.12.
//!
//! C header: [include/linux/mutex.h](srctree/include/linux/mutex.h)

use super::bindings;
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    ops::{Deref, DerefMut},
};
use kernel::{prelude::*, sync::LockClassKey, types::Opaque};

/// Creates a [`TryMutex`] initialiser with a lock class of its own (as `new_mutex!`).
#[macro_export]
macro_rules! new_try_mutex {
    ($inner:expr, $name:literal) => {
        $crate::dm::mutex::TryMutex::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}

/// A `struct mutex` guarding a `T`.
///
/// # Invariants
///
/// `raw` was initialised by `__mutex_init`; `data` is accessed only through a
/// [`TryMutexGuard`], which exists only while this task holds `raw`.
#[pin_data]
pub struct TryMutex<T> {
    #[pin]
    raw: Opaque<bindings::mutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the data moves with the mutex; it is reached only under the lock.
unsafe impl<T: Send> Send for TryMutex<T> {}
// SAFETY: the lock gives one task at a time access to the data.
unsafe impl<T: Send> Sync for TryMutex<T> {}

impl<T> TryMutex<T> {
    /// A mutex holding `data`, named `name` with lockdep class `key` (see [`new_try_mutex!`]).
    pub fn new(data: T, name: &'static CStr, key: &'static LockClassKey) -> impl PinInit<Self> {
        // `LockClassKey` is a transparent wrapper of the C key.
        let key = core::ptr::from_ref(key)
            .cast_mut()
            .cast::<bindings::lock_class_key>();
        pin_init!(Self {
            data: UnsafeCell::new(data),
            // SAFETY: `slot` is valid for writing a mutex; name and key are static.
            raw <- Opaque::ffi_init(|slot| unsafe {
                bindings::__mutex_init(slot, name.as_char_ptr(), key)
            }),
        })
    }

    /// Takes the lock, sleeping until it is free.
    pub fn lock(&self) -> TryMutexGuard<'_, T> {
        // SAFETY: the mutex was initialised (type invariant); sleeping is allowed here (the
        // caller's context, as for any mutex).
        unsafe { bindings::mutex_lock(self.raw.get()) };
        // INVARIANT: this task holds the lock.
        TryMutexGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free, without sleeping (callable where sleeping is not
    /// allowed, in task context; not from an interrupt, as `mutex_trylock`).
    pub fn try_lock(&self) -> Option<TryMutexGuard<'_, T>> {
        // SAFETY: the mutex was initialised (type invariant); `mutex_trylock` never sleeps.
        if unsafe { bindings::mutex_trylock(self.raw.get()) } == 0 {
            return None;
        }
        // INVARIANT: this task holds the lock.
        Some(TryMutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

/// The lock of a [`TryMutex`], held until dropped (by the task that took it).
pub struct TryMutexGuard<'a, T> {
    lock: &'a TryMutex<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for TryMutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this task holds the lock (type invariant of `TryMutex`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for TryMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this task holds the lock, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for TryMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this task holds the lock (the guard is not `Send`).
        unsafe { bindings::mutex_unlock(self.lock.raw.get()) };
    }
}
