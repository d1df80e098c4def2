// SPDX-License-Identifier: GPL-2.0 OR MIT

//! In-flight bios counted by epoch (dm-deferred-set's role).
//!
//! Breaking sharing drops a reference to the old block when the new mapping is inserted, and
//! a discard unmaps blocks; a block whose last reference goes is free at the next commit and
//! may be written again for another device. I/O to the old block issued before must not see
//! that, so the change waits until every bio counted before it has completed: it closes the
//! current epoch and waits for it to drain. A pool keeps one set for reads of shared blocks
//! and one for all I/O. The worker closes epochs; bios are counted in by the worker, or by
//! the thin `map` fast path ([`DeferredSet::get_any`]); completions (any context) count down.

use core::sync::atomic::{AtomicU64, Ordering};

/// Counts of in-flight shared reads for the current and the previous epoch.
pub struct DeferredSet {
    epoch: AtomicU64,
    count: [AtomicU64; 2],
    /// Changes waiting for an epoch to drain; completions wake the worker only if any.
    waiters: AtomicU64,
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
            waiters: AtomicU64::new(0),
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

    /// Counts a bio from any context (the thin `map` fast path), in the epoch current when
    /// it is counted; returns its epoch bit and whether the worker must run (a count taken
    /// back let an epoch drain). A change publishes itself, then closes the epoch; a bio
    /// counts itself, then looks at the published state (both with full fences): either the
    /// change waits for the bio, or the bio sees the change.
    pub fn get_any(&self) -> (u64, bool) {
        let mut wake = false;
        loop {
            let e = self.epoch.load(Ordering::SeqCst);
            self.slot(e).fetch_add(1, Ordering::SeqCst);
            if self.epoch.load(Ordering::SeqCst) == e {
                core::sync::atomic::fence(Ordering::SeqCst);
                return (e & 1, wake);
            }
            // The epoch closed meanwhile: the count may sit in a slot that stands for a
            // later epoch, which its waiters do not look at. Take it back and count again.
            wake |= self.put(e);
        }
    }

    /// Counts a bio of epoch bit `bit` done; returns whether a change may now go on (an
    /// epoch drained while one waits), so the worker should run.
    pub fn put(&self, bit: u64) -> bool {
        self.count[(bit & 1) as usize].fetch_sub(1, Ordering::AcqRel) == 1
            && self.waiters.load(Ordering::Acquire) > 0
    }

    /// A change starts waiting: returns the epoch it waits for (see [`Self::close`]); it
    /// calls [`Self::unwait`] when it goes on. Worker only.
    pub fn wait(&self) -> u64 {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        // What the change published before is seen by every bio counted after this (see
        // `get_any`).
        core::sync::atomic::fence(Ordering::SeqCst);
        self.close()
    }

    /// A change stops waiting. Worker only.
    pub fn unwait(&self) {
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// The epoch a change must wait for: the current one, closed now if the previous one has
    /// drained (its counter is reused). Worker only.
    fn close(&self) -> u64 {
        let e = self.epoch.load(Ordering::SeqCst);
        if self.slot(e.wrapping_add(1)).load(Ordering::SeqCst) == 0 {
            self.epoch.store(e.wrapping_add(1), Ordering::SeqCst);
        }
        e
    }

    /// Whether every read of epoch `e` and before has completed. Worker only.
    pub fn drained(&self, e: u64) -> bool {
        let mut cur = self.epoch.load(Ordering::SeqCst);
        if cur == e {
            // Close e first, so that new bios stop counting in it and it can drain under
            // steady I/O; that needs epoch e-1 (whose counter e+1 reuses) drained.
            self.close();
            cur = self.epoch.load(Ordering::SeqCst);
            if cur == e {
                return false;
            }
        }
        // Epoch e is closed, e-1 had drained when it was. Once e+1 closed too, e had drained
        // (and its counter counts a later epoch).
        cur != e.wrapping_add(1) || self.slot(e).load(Ordering::SeqCst) == 0
    }
}
