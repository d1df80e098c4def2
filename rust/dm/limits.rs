// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Queue limits as `io_hints` sees them.
//!
//! C header: [include/linux/blkdev.h](srctree/include/linux/blkdev.h)

use super::bindings;
use kernel::types::Opaque;

/// The queue limits dm core is computing for a table (`struct queue_limits`).
///
/// # Invariants
///
/// Wraps the live limits dm core lent to `io_hints` for the duration of the call.
#[repr(transparent)]
pub struct QueueLimits(Opaque<bindings::queue_limits>);

impl QueueLimits {
    /// # Safety
    ///
    /// - `limits` is valid and exclusively ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(limits: *mut bindings::queue_limits) -> &'a mut Self {
        // SAFETY: `QueueLimits` is a transparent wrapper; validity is the caller's promise.
        unsafe { &mut *limits.cast::<Self>() }
    }

    fn raw(&mut self) -> *mut bindings::queue_limits {
        self.0.get()
    }

    /// Sets the size in sectors that no bio may cross a multiple of.
    pub fn set_chunk_sectors(&mut self, sectors: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).chunk_sectors = sectors };
    }

    /// Sets the minimum efficient I/O size in bytes.
    pub fn set_io_min(&mut self, bytes: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).io_min = bytes };
    }

    /// Sets the optimal I/O size in bytes.
    pub fn set_io_opt(&mut self, bytes: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).io_opt = bytes };
    }

    /// The largest I/O in sectors.
    pub fn max_sectors(&mut self) -> u32 {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).max_sectors }
    }

    /// Sets the largest I/O in sectors.
    pub fn set_max_sectors(&mut self, sectors: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).max_sectors = sectors };
    }

    /// The optimal I/O size in bytes.
    pub fn io_opt(&mut self) -> u32 {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).io_opt }
    }

    /// Sets the discard granularity in bytes.
    pub fn set_discard_granularity(&mut self, bytes: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).discard_granularity = bytes };
    }

    /// Sets the largest discard the hardware takes, in sectors (0: none).
    pub fn set_max_hw_discard_sectors(&mut self, sectors: u32) {
        // SAFETY: the limits are valid and ours by the type invariant.
        unsafe { (*self.raw()).max_hw_discard_sectors = sectors };
    }
}
