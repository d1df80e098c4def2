// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Suspending another target's mapped device from inside dm (`dm_internal_suspend_noflush`),
//! as a thin pool suspends its thin devices while it is itself suspended.
//!
//! C header: drivers/md/dm.h (dm-mod's own; the functions are exported)

use super::bindings;
use core::ptr::NonNull;

/// The mapped device of a target, for internal suspends; owned by that target's private
/// data.
///
/// # Invariants
///
/// `md` is the mapped device of the target whose constructor made this value; the value is
/// dropped before the target is destroyed (it lives in, or under a lock emptied by, the
/// target's private data), so the device outlives it.
pub struct MappedDevice {
    md: NonNull<bindings::mapped_device>,
}

// SAFETY: dm-mod's internal suspend and resume may be called from any process context.
unsafe impl Send for MappedDevice {}
// SAFETY: as above; both take the device's own suspend lock.
unsafe impl Sync for MappedDevice {}

impl MappedDevice {
    /// # Safety
    ///
    /// - `ti` is a target under construction, and the value is dropped before the target is
    ///   destroyed.
    pub(crate) unsafe fn new(ti: NonNull<bindings::dm_target>) -> Option<Self> {
        // SAFETY: `ti` and its table are valid during construction.
        let md = unsafe { bindings::orion_target_md(ti.as_ptr()) };
        // INVARIANT: per the caller's promise.
        NonNull::new(md).map(|md| MappedDevice { md })
    }

    /// Suspends the device without flushing (its targets requeue what they hold). Sleeps.
    pub fn suspend_noflush(&self) {
        // SAFETY: the device is alive (type invariant).
        unsafe { bindings::orion_internal_suspend_noflush(self.md.as_ptr()) };
    }

    /// Resumes a device [`Self::suspend_noflush`] suspended. Sleeps.
    pub fn resume(&self) {
        // SAFETY: the device is alive (type invariant).
        unsafe { bindings::orion_internal_resume(self.md.as_ptr()) };
    }
}
