// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Table events (`dm_table_event`) raised from any context.
//!
//! `dm_table_event` takes a mutex, so a target that notices something in `end_io` (interrupt
//! context) queues a work item that raises the event; `dmsetup wait` and LVM's dmeventd see it.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

use super::bindings;
use core::ptr::NonNull;
use kernel::{prelude::*, types::Opaque};

#[repr(C)]
struct EventWork {
    // First field: the work callback recovers the `EventWork` from the `work_struct` pointer.
    work: Opaque<bindings::work_struct>,
    ti: NonNull<bindings::dm_target>,
}

/// Raises a table event for one target; owned by the target's private data.
///
/// # Invariants
///
/// `inner.work` is initialised with [`event_work`] as its function, and `inner.ti` is the
/// target that owns this value: it stays alive until this value is dropped, and the drop
/// waits for a queued event to finish.
pub struct TableEvent {
    inner: KBox<EventWork>,
}

// SAFETY: the work item may be queued from any thread; the target pointer is only used by the
// work function, which dm core allows in process context.
unsafe impl Send for TableEvent {}
// SAFETY: `trigger` only calls `queue_work`, which is safe to call concurrently.
unsafe impl Sync for TableEvent {}

/// The work function: raises the table event in process context.
///
/// # Safety
///
/// - Called by the workqueue with the `work` of a live [`EventWork`].
unsafe extern "C" fn event_work(work: *mut bindings::work_struct) {
    let ev = work.cast::<EventWork>();
    // SAFETY: `work` is the first field of a live `EventWork` (repr(C)); the owner flushes the
    // work before freeing it, and the target outlives the owner.
    let ti = unsafe { (*ev).ti.as_ptr() };
    // SAFETY: `ti` is a live target (see above), and we are in process context.
    unsafe { bindings::dm_table_event((*ti).table) };
}

impl TableEvent {
    /// # Safety
    ///
    /// - `ti` is a target under construction, and the returned value is dropped before the
    ///   target is destroyed (it lives in the target's private data).
    pub(crate) unsafe fn new(ti: NonNull<bindings::dm_target>) -> Result<Self> {
        let inner = KBox::new(
            EventWork {
                work: Opaque::uninit(),
                ti,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the work struct is freshly allocated, not queued, and will not move (boxed).
        unsafe { bindings::orion_init_work(inner.work.get(), Some(event_work)) };
        // INVARIANT: the work is initialised with `event_work`; `ti` per the caller's promise.
        Ok(Self { inner })
    }

    /// Queues the event; callable in any context, including interrupts.
    pub fn trigger(&self) {
        // SAFETY: the work struct is initialised and lives until `drop` flushes it.
        unsafe { bindings::orion_queue_work(self.inner.work.get()) };
    }
}

impl Drop for TableEvent {
    fn drop(&mut self) {
        // SAFETY: the work struct is initialised; after the flush it is neither queued nor
        // running, so freeing it is safe.
        unsafe { bindings::flush_work(self.inner.work.get()) };
    }
}
