// SPDX-License-Identifier: GPL-2.0 OR MIT

//! RCU read-side sections and grace periods, for the lookups of shared in-core maps on the
//! I/O path (snapshot exceptions, mirror regions, thin cells): readers take a [`ReadGuard`],
//! writers publish a new version and wait with [`synchronize`] before freeing the old one.
//!
//! C header: [include/linux/rcupdate.h](srctree/include/linux/rcupdate.h)

use super::bindings;
use core::marker::PhantomData;

/// An RCU read-side critical section; it ends when the guard is dropped.
///
/// The guard is neither `Send` nor `Sync`: the section must end on the CPU that began it.
pub struct ReadGuard(PhantomData<*mut ()>);

/// Enters an RCU read-side critical section. The section must not sleep.
pub fn read_lock() -> ReadGuard {
    // SAFETY: `rcu_read_lock` may be called in any context; the guard unlocks it.
    unsafe { bindings::orion_rcu_read_lock() };
    ReadGuard(PhantomData)
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        // SAFETY: the guard was created by `read_lock`, so a section is open on this CPU.
        unsafe { bindings::orion_rcu_read_unlock() };
    }
}

/// Waits until every RCU read-side section that began before the call has ended. Sleeps.
pub fn synchronize() {
    // SAFETY: `synchronize_rcu` has no memory-safety precondition; that it sleeps is documented.
    unsafe { bindings::synchronize_rcu() };
}
