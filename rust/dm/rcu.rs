// SPDX-License-Identifier: GPL-2.0 OR MIT

//! RCU read-side sections and grace periods, for the lookups of shared in-core maps on the
//! I/O path (snapshot exceptions, mirror regions, thin cells): readers take a [`ReadGuard`],
//! writers publish a new version and wait with [`synchronize`] before freeing the old one.
//!
//! C header: [include/linux/rcupdate.h](srctree/include/linux/rcupdate.h)

use super::bindings;
use core::{
    marker::PhantomData,
    sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, Ordering},
};
use kernel::{alloc::Flags, prelude::*};

/// An RCU read-side critical section; it ends when the guard is dropped.
///
/// The guard is neither `Send` nor `Sync`: the section must end on the CPU that began it.
pub struct ReadGuard(PhantomData<*mut ()>);

/// Whether this kernel's `rcu_read_lock`/`rcu_read_unlock` are only compiler barriers:
/// RCU is not preemptible and there is no preempt count (so `preempt_disable` is
/// `barrier()`), no lockdep map to acquire and no strict grace periods (rcupdate.h,
/// preempt.h). The I/O path then makes no call for them.
const BARRIER_ONLY: bool = !cfg!(any(
    CONFIG_PREEMPT_RCU,
    CONFIG_PREEMPT_COUNT,
    CONFIG_DEBUG_LOCK_ALLOC,
    CONFIG_RCU_STRICT_GRACE_PERIOD
));

/// Enters an RCU read-side critical section. The section must not sleep.
pub fn read_lock() -> ReadGuard {
    if BARRIER_ONLY {
        compiler_fence(Ordering::SeqCst);
    } else {
        // SAFETY: `rcu_read_lock` may be called in any context; the guard unlocks it.
        unsafe { bindings::orion_rcu_read_lock() };
    }
    ReadGuard(PhantomData)
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        if BARRIER_ONLY {
            compiler_fence(Ordering::SeqCst);
        } else {
            // SAFETY: the guard was created by `read_lock`, so a section is open on this CPU.
            unsafe { bindings::orion_rcu_read_unlock() };
        }
    }
}

/// Waits until every RCU read-side section that began before the call has ended. Sleeps.
pub fn synchronize() {
    // SAFETY: `synchronize_rcu` has no memory-safety precondition; that it sleeps is documented.
    unsafe { bindings::synchronize_rcu() };
}

/// Waits until every callback queued by [`Writer::replace`] has run (module unload).
pub fn barrier() {
    // SAFETY: `rcu_barrier` has no memory-safety precondition; it sleeps.
    unsafe { bindings::rcu_barrier() };
}

/// A value of a slot, with the RCU head that frees it after a grace period.
#[repr(C)]
struct Node<T> {
    head: bindings::callback_head,
    value: T,
}

/// Frees a node replaced by [`Writer::replace`] once no reader can see it.
///
/// # Safety
///
/// - `head` is the head of a `Node<T>` leaked from a `KBox` and unreachable by new readers,
///   queued with `call_rcu` exactly once.
unsafe extern "C" fn free_node<T>(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the first field of a `#[repr(C)]` `Node<T>` (contract above); the
    // grace period has passed, so nothing else refers to it.
    drop(unsafe { KBox::from_raw(head.cast::<Node<T>>()) });
}

/// A fixed array of slots, each holding an optional value published to RCU readers.
///
/// Readers ([`Self::get`]) take no lock; one [`Writer`] at a time replaces values, and a
/// replaced value is dropped after a grace period, in softirq context: `T`'s drop must not
/// sleep. Dropping the array drops the current values at once.
///
/// # Invariants
///
/// Each slot is null or points to a `Node<T>` leaked from a `KBox`, owned by the slot; a
/// node is unlinked only by a writer (at most one exists, see `writing`), which frees it
/// after a grace period or, for [`Writer::replace_sync`], after `synchronize_rcu`.
pub struct RcuSlots<T: Send + Sync> {
    slots: KVVec<AtomicPtr<Node<T>>>,
    writing: AtomicBool,
}

/// The one writer of an [`RcuSlots`], while it lives.
pub struct Writer<'a, T: Send + Sync> {
    slots: &'a RcuSlots<T>,
}

impl<T: Send + Sync> RcuSlots<T> {
    /// `n` empty slots.
    pub fn new(n: usize, flags: Flags) -> Result<Self> {
        let mut slots = KVVec::with_capacity(n, flags)?;
        for _ in 0..n {
            slots.push(AtomicPtr::new(core::ptr::null_mut()), flags)?;
        }
        Ok(RcuSlots {
            slots,
            writing: AtomicBool::new(false),
        })
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The value in slot `i`, valid while the read-side section lasts.
    pub fn get<'g>(&'g self, i: usize, _guard: &'g ReadGuard) -> Option<&'g T> {
        let p = self.slots.get(i)?.load(Ordering::Acquire);
        // SAFETY: a non-null slot points to a live node (type invariant); a writer that
        // unlinks it frees it only after a grace period, which cannot end while `_guard`'s
        // section is open.
        unsafe { p.as_ref().map(|n| &n.value) }
    }

    /// Becomes the writer; `EBUSY` if another writer exists.
    pub fn writer(&self) -> Result<Writer<'_, T>> {
        if self.writing.swap(true, Ordering::Acquire) {
            return Err(EBUSY);
        }
        Ok(Writer { slots: self })
    }
}

impl<T: Send + Sync> Drop for RcuSlots<T> {
    fn drop(&mut self) {
        for s in self.slots.iter() {
            let p = s.swap(core::ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: the slot owned the node (type invariant); a dropped array has no
                // readers (they borrow it).
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}

impl<T: Send + Sync> Writer<'_, T> {
    /// The value in slot `i`: no other writer can replace it while this one lives.
    pub fn get(&self, i: usize) -> Option<&T> {
        let p = self.slots.slots.get(i)?.load(Ordering::Acquire);
        // SAFETY: only this writer unlinks nodes, and not while the returned borrow of
        // `self` lives (`replace` takes `&mut self`).
        unsafe { p.as_ref().map(|n| &n.value) }
    }

    fn swap(&mut self, i: usize, v: Option<T>, flags: Flags) -> Result<*mut Node<T>> {
        let slot = self.slots.slots.get(i).ok_or(EINVAL)?;
        let new = match v {
            Some(value) => KBox::into_raw(KBox::new(
                Node {
                    head: bindings::callback_head::default(),
                    value,
                },
                flags,
            )?),
            None => core::ptr::null_mut(),
        };
        // INVARIANT: the slot owns the new node; the old one is the caller's to free after a
        // grace period.
        Ok(slot.swap(new, Ordering::AcqRel))
    }

    /// Publishes `v` in slot `i` (or empties it); the old value is dropped after a grace
    /// period, from an RCU callback. Does not sleep (with non-sleeping `flags`).
    pub fn replace(&mut self, i: usize, v: Option<T>, flags: Flags) -> Result {
        let old = self.swap(i, v, flags)?;
        if !old.is_null() {
            // SAFETY: `old` was unlinked just now, so no new reader finds it; it is queued
            // once, and `free_node::<T>` frees exactly such a node. Module unload waits for
            // the callback (`barrier`).
            unsafe { bindings::call_rcu(&raw mut (*old).head, Some(free_node::<T>)) };
        }
        Ok(())
    }

    /// Publishes `v` in slot `i`, waits for a grace period and returns the old value (which
    /// may then be dropped in process context). Sleeps.
    pub fn replace_sync(&mut self, i: usize, v: Option<T>, flags: Flags) -> Result<Option<T>> {
        let old = self.swap(i, v, flags)?;
        if old.is_null() {
            return Ok(None);
        }
        synchronize();
        // SAFETY: unlinked and a grace period has passed: nothing else refers to the node.
        let node = unsafe { KBox::from_raw(old) };
        let Node { value, .. } = KBox::into_inner(node);
        Ok(Some(value))
    }
}

impl<T: Send + Sync> Drop for Writer<'_, T> {
    fn drop(&mut self) {
        self.slots.writing.store(false, Ordering::Release);
    }
}
