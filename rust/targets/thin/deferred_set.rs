// SPDX-License-Identifier: GPL-2.0 OR MIT

//! In-flight reads of shared blocks, counted by epoch (dm-deferred-set's role).
//!
//! Breaking sharing drops a reference to the old block when the new mapping is inserted; if
//! that was the last one, the block is free at the next commit and may be written again for
//! another device. A read of the old block issued before must not see that, so the new
//! mapping waits until every shared read issued before it has completed: it closes the
//! current epoch and waits for it to drain. Only the worker opens reads and closes epochs;
//! completions (any context) only count down.

use core::sync::atomic::{AtomicU64, Ordering};

/// Counts of in-flight shared reads for the current and the previous epoch.
pub struct DeferredSet {
    epoch: AtomicU64,
    count: [AtomicU64; 2],
}

impl Default for DeferredSet {
    fn default() -> Self {
        Self::new()
    }
}

impl DeferredSet {
    /// An empty set at epoch 0.
    pub const fn new() -> Self {
        DeferredSet {
            epoch: AtomicU64::new(0),
            count: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn slot(&self, epoch: u64) -> &AtomicU64 {
        &self.count[(epoch & 1) as usize]
    }

    /// Counts a read issued now; returns the epoch bit its completion passes to [`Self::put`].
    /// Worker only.
    pub fn get(&self) -> u64 {
        let e = self.epoch.load(Ordering::Relaxed);
        self.slot(e).fetch_add(1, Ordering::AcqRel);
        e & 1
    }

    /// Counts a read of epoch bit `bit` done; returns whether that epoch just drained.
    pub fn put(&self, bit: u64) -> bool {
        self.count[(bit & 1) as usize].fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The epoch a new mapping must wait for: the current one, closed now if the previous
    /// one has drained (its counter is reused). Worker only.
    pub fn close(&self) -> u64 {
        let e = self.epoch.load(Ordering::Relaxed);
        if self.slot(e.wrapping_add(1)).load(Ordering::Acquire) == 0 {
            self.epoch.store(e.wrapping_add(1), Ordering::Release);
        }
        e
    }

    /// Whether every read of epoch `e` and before has completed. Worker only.
    pub fn drained(&self, e: u64) -> bool {
        let cur = self.epoch.load(Ordering::Relaxed);
        if cur == e && self.slot(e).load(Ordering::Acquire) == 0 {
            // Nothing in flight at all: close the epoch so the answer stays true.
            self.close();
            return self.epoch.load(Ordering::Relaxed) != e
                || self.slot(e).load(Ordering::Acquire) == 0;
        }
        // Epoch e-1 had drained when e was closed (its counter was free then).
        cur != e && self.slot(e).load(Ordering::Acquire) == 0
    }
}
