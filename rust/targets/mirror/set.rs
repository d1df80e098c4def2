// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The mirror set and its worker (drivers/md/dm-raid1.c and dm-region-hash.c): writes go to
//! every leg once their region is marked dirty in the log, regions out of sync are copied
//! from the default leg in the background, and failed legs are handled as C handles them.
//!
//! Region states as dm-region-hash: a region is *in sync* (clean or dirty: writes go to
//! every leg), *not in sync* (writes go to the default leg only, until recovery), or
//! *recovering* (writes wait). Only the worker starts writes, so it alone raises a region's
//! count of writes in flight; completions lower it, and a region with none is cleaned in
//! the log by the worker.

use super::log::{DirtyLog, SyncBits};
use crate::dm::{
    bio::{BioList, BioStack, IoStatus, OwnedBio, ReqOp},
    dev::OpenBdev,
    event::TableEvent,
    kcopyd::Area,
    worker::{Job, Worker},
};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// Writes in flight at once (each holds a worker slot).
pub const WRITE_SLOTS: usize = 512;
/// The copy slot of the recovery.
pub const RECOVERY_SLOT: usize = WRITE_SLOTS;
/// Most legs (dm-raid1's `MAX_NR_MIRRORS`).
pub const MAX_LEGS: usize = 9;

/// Error kinds of a leg, as bits of `Leg::error_type` (dm-raid1's `enum dm_raid1_error`).
pub const WRITE_ERROR: u32 = 1 << 0;
/// A flush failed.
pub const FLUSH_ERROR: u32 = 1 << 1;
/// A recovery copy failed.
pub const SYNC_ERROR: u32 = 1 << 2;
/// A read failed.
pub const READ_ERROR: u32 = 1 << 3;

/// Tag of a read sent to a leg: the leg + 1 in the low 8 bits, its region above them.
pub const TAG_READ: u64 = 1 << 62;
/// With `TAG_READ`: the worker sent the read (dm-raid1's `read_async_bio`), not `map`.
pub const TAG_QUEUED: u64 = 1 << 60;
/// Where a read's region sits in its tag.
const TAG_REGION_SHIFT: u32 = 8;
const TAG_REGION_MASK: u64 = (1 << 48) - 1;

/// The tag of a read of region `r` sent to leg `i`.
pub fn read_tag(i: usize, r: u64, queued: bool) -> u64 {
    let q = if queued { TAG_QUEUED } else { 0 };
    TAG_READ | q | ((r & TAG_REGION_MASK) << TAG_REGION_SHIFT) | (i as u64 + 1)
}

/// The leg and region of a read's tag.
pub fn read_of_tag(t: u64) -> (usize, u64) {
    (
        ((t & 0xff) as usize).wrapping_sub(1),
        (t >> TAG_REGION_SHIFT) & TAG_REGION_MASK,
    )
}

/// One leg of the mirror.
pub struct Leg {
    /// The device, kept open for the worker's I/O.
    pub bdev: OpenBdev,
    /// Where the mirror starts on it.
    pub offset: u64,
    /// Errors seen (0: healthy).
    pub error_count: AtomicU32,
    /// Kinds of errors seen.
    pub error_type: AtomicU32,
    /// Reads in flight (read balancing).
    pub inflight: AtomicU32,
}

impl Leg {
    /// The status character: `A`live, `F`lush, `D`ead (write), `S`ync, `R`ead, `U`nknown.
    pub fn status_char(&self) -> char {
        if self.error_count.load(Ordering::Acquire) == 0 {
            return 'A';
        }
        let t = self.error_type.load(Ordering::Acquire);
        if t & FLUSH_ERROR != 0 {
            'F'
        } else if t & WRITE_ERROR != 0 {
            'D'
        } else if t & SYNC_ERROR != 0 {
            'S'
        } else if t & READ_ERROR != 0 {
            'R'
        } else {
            'U'
        }
    }
}

/// What only the worker touches.
pub struct State {
    /// The dirty log.
    pub log: DirtyLog,
    /// The region being recovered, and whether its copy has started.
    recovering: Option<(u64, bool)>,
    /// Writes to the region being recovered.
    delayed: BioList,
    /// Writes waiting for a free slot.
    waiting: BioList,
    /// Writes held after a leg failure (handle_errors), until the next suspend.
    holds: BioList,
    /// Regions marked dirty, to clean once their writes drain.
    dirty: KVec<u64>,
    next_slot: usize,
    /// The log could not be written.
    pub log_failure: bool,
    /// Recovery stopped (suspend).
    recovery_stopped: bool,
}

/// A mirror set: what `map`, completions and the worker share.
#[pin_data]
pub struct MirrorCore {
    /// The legs.
    pub legs: KVec<Leg>,
    /// The target's first sector.
    pub begin: u64,
    /// Its length.
    pub len: u64,
    /// log2 of the region size.
    pub region_shift: u32,
    /// Number of regions.
    pub nr_regions: u64,
    /// `handle_errors`.
    pub handle_errors: bool,
    /// `keep_log`.
    pub keep_log: bool,
    /// The leg reads prefer and recovery copies from.
    pub default_leg: AtomicUsize,
    /// Regions in sync (read lock-free by `map`).
    pub sync: SyncBits,
    /// Writes in flight per region.
    pending: KVVec<AtomicU32>,
    /// Every region is in sync (dm-raid1's `in_sync`).
    pub in_sync: AtomicBool,
    /// A leg failed.
    pub leg_failure: AtomicBool,
    /// Suspending: held writes are given back.
    pub suspending: AtomicBool,
    /// Recovery copy result: 0 running, 1 done, 2 read failed, 3 write failed.
    recovery_done: AtomicU32,
    recovery_write_err: AtomicU64,
    /// A recovery copy is in flight.
    pub recovery_in_flight: AtomicBool,
    /// Reads and writes deferred by `map`.
    #[pin]
    pub queue: SpinLock<BioList>,
    /// Failed reads sent again, from `end_io` (interrupt context possibly).
    retried: BioStack,
    /// Writes that failed on some leg (from completions too).
    failures: BioStack,
    /// The table event.
    #[pin]
    pub event: SpinLock<Option<TableEvent>>,
    /// The worker's state.
    #[pin]
    pub state: Mutex<State>,
}

impl MirrorCore {
    /// A mirror set.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        legs: KVec<Leg>,
        begin: u64,
        len: u64,
        region_size: u32,
        log: DirtyLog,
        sync: SyncBits,
        handle_errors: bool,
        keep_log: bool,
        event: TableEvent,
    ) -> Result<Arc<Self>> {
        let nr_regions = log.region_count;
        // Already in sync (nosync): C's worker notices it before the table is bound, so no
        // event is raised for it.
        let in_sync = sync.count() == nr_regions;
        let mut pending = KVVec::with_capacity(nr_regions as usize, GFP_KERNEL)?;
        for _ in 0..nr_regions {
            pending.push(AtomicU32::new(0), GFP_KERNEL)?;
        }
        Arc::pin_init(
            pin_init!(MirrorCore {
                legs,
                begin,
                len,
                region_shift: region_size.trailing_zeros(),
                nr_regions,
                handle_errors,
                keep_log,
                default_leg: AtomicUsize::new(0),
                sync,
                pending,
                in_sync: AtomicBool::new(in_sync),
                leg_failure: AtomicBool::new(false),
                suspending: AtomicBool::new(false),
                recovery_done: AtomicU32::new(0),
                recovery_write_err: AtomicU64::new(0),
                recovery_in_flight: AtomicBool::new(false),
                queue <- new_spinlock!(BioList::new()),
                retried: BioStack::new(),
                failures: BioStack::new(),
                event <- new_spinlock!(Some(event)),
                state <- new_mutex!(State {
                    log,
                    recovering: None,
                    delayed: BioList::new(),
                    waiting: BioList::new(),
                    holds: BioList::new(),
                    dirty: KVec::new(),
                    next_slot: 0,
                    log_failure: false,
                    recovery_stopped: true,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The region of a sector of the target.
    pub fn region(&self, sector: u64) -> u64 {
        (sector - self.begin.min(sector)) >> self.region_shift
    }

    /// The sector on a leg of a sector of the target.
    pub fn leg_sector(&self, leg: &Leg, sector: u64) -> u64 {
        leg.offset.wrapping_add(sector - self.begin.min(sector))
    }

    fn raise_event(&self) {
        if let Some(e) = self.event.lock().as_ref() {
            e.trigger();
        }
    }

    /// Records an error of `kind` on leg `i` (dm-raid1's `fail_mirror`); never blocks.
    pub fn fail_leg(&self, i: usize, kind: u32) {
        let Some(leg) = self.legs.get(i) else { return };
        self.leg_failure.store(true, Ordering::Release);
        leg.error_count.fetch_add(1, Ordering::AcqRel);
        if leg.error_type.fetch_or(kind, Ordering::AcqRel) & kind != 0 {
            return;
        }
        if !self.handle_errors {
            return;
        }
        if i == self.default_leg.load(Ordering::Acquire) {
            if !self.in_sync.load(Ordering::Acquire) && !self.keep_log {
                pr_err!(
                    "device-mapper: raid1: Primary mirror ({}) failed while out-of-sync: Reads may fail.\n",
                    leg.bdev.bdev().kernel_name()
                );
            } else if let Some(n) = self.valid_leg() {
                self.default_leg.store(n, Ordering::Release);
            } else {
                pr_warn!("device-mapper: raid1: All sides of mirror have failed.\n");
            }
        }
        self.raise_event();
    }

    /// Whether a read of region `r` that failed can be sent again (dm-raid1's `default_ok
    /// || mirror_available`): the default leg is healthy, or the region is in sync and some
    /// leg is.
    pub fn can_retry_read(&self, r: u64) -> bool {
        let d = self.default_leg.load(Ordering::Acquire);
        let default_ok = self
            .legs
            .get(d)
            .is_some_and(|l| l.error_count.load(Ordering::Acquire) == 0);
        default_ok || (self.sync.get(r) && self.choose_leg().is_some())
    }

    fn valid_leg(&self) -> Option<usize> {
        self.legs
            .iter()
            .position(|l| l.error_count.load(Ordering::Acquire) == 0)
    }

    /// The leg a read of an in-sync region goes to: the healthy leg with the fewest reads
    /// in flight (the default leg on ties), so concurrent reads spread over the legs.
    pub fn choose_leg(&self) -> Option<usize> {
        let d = self.default_leg.load(Ordering::Acquire);
        let n = self.legs.len();
        let mut best: Option<(usize, u32)> = None;
        for k in 0..n {
            let i = (d + k) % n;
            let Some(l) = self.legs.get(i) else { continue };
            if l.error_count.load(Ordering::Acquire) != 0 {
                continue;
            }
            let q = l.inflight.load(Ordering::Relaxed);
            if best.map_or(true, |(_, bq)| q < bq) {
                best = Some((i, q));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Ends a write: its region has one write fewer in flight.
    fn end_write(&self, bio: OwnedBio, status: IoStatus) {
        if counts_in_region(&bio) {
            if let Some(p) = self.pending.get(self.region(bio.sector()) as usize) {
                p.fetch_sub(1, Ordering::AcqRel);
            }
        }
        bio.end(status);
    }

    /// Queues a deferred bio for the worker.
    pub fn queue(&self, bio: OwnedBio) {
        self.queue.lock().push(bio);
    }

    /// Queues a failed read to be sent again (any context, `end_io`'s included).
    pub fn retry_read(&self, bio: OwnedBio) {
        self.retried.push(bio);
    }

    /// Hands the bios held after a failure back (requeued by dm core with a noflush
    /// suspend, failed otherwise), as dm-raid1's presuspend does.
    pub fn release_holds(&self, noflush: bool) {
        let mut holds = core::mem::take(&mut self.state.lock().holds);
        while let Some(b) = holds.pop() {
            self.end_write(
                b,
                if noflush {
                    IoStatus::Requeue
                } else {
                    IoStatus::IoErr
                },
            );
        }
    }

    /// Stops the recovery and waits for the copy in flight.
    pub fn stop_recovery(&self) {
        self.state.lock().recovery_stopped = true;
        while self.recovery_in_flight.load(Ordering::Acquire) {
            crate::dm::time::sleep_ms(1);
        }
    }

    /// Resumes: reads the log, restarts the recovery.
    pub fn resume(&self) -> Result {
        let mut st = self.state.lock();
        let r = st.log.resume(&self.sync);
        st.recovery_stopped = false;
        r
    }

    /// Writes the log (postsuspend of a disk log).
    pub fn flush_log(&self) -> Result {
        let mut st = self.state.lock();
        st.log.flush(&mut || self.flush_legs())
    }

    /// Flushes every leg (before the log records regions as clean).
    fn flush_legs(&self) -> Result {
        let mut r = Ok(());
        for (i, l) in self.legs.iter().enumerate() {
            if l.bdev.bdev().flush().is_err() {
                self.fail_leg(i, FLUSH_ERROR);
                r = Err(EIO);
            }
        }
        r
    }

    /// Where target offset `off` lies on every leg but `skip`, in an array on the stack
    /// (nothing is allocated on the write path), and how many of its entries are used.
    fn leg_areas(&self, off: u64, skip: Option<usize>) -> Option<([Area<'_>; MAX_LEGS], usize)> {
        let first = self.legs.first()?;
        let mut out = [Area {
            dev: first.bdev.bdev(),
            sector: 0,
        }; MAX_LEGS];
        let mut n = 0;
        for (i, l) in self.legs.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if let Some(a) = out.get_mut(n) {
                *a = Area {
                    dev: l.bdev.bdev(),
                    sector: l.offset.wrapping_add(off),
                };
                n += 1;
            }
        }
        Some((out, n))
    }

    fn free_slot(&self, st: &mut State, w: &Worker<Self>) -> Option<usize> {
        for k in 0..WRITE_SLOTS {
            let s = (st.next_slot + k) % WRITE_SLOTS;
            if w.slot_free(s) {
                st.next_slot = (s + 1) % WRITE_SLOTS;
                return Some(s);
            }
        }
        None
    }

    fn do_reads(&self, reads: &mut BioList) {
        while let Some(bio) = reads.pop() {
            let r = self.region(bio.sector());
            let leg = if self.sync.get(r) {
                self.choose_leg()
            } else {
                let d = self.default_leg.load(Ordering::Acquire);
                self.legs
                    .get(d)
                    .filter(|l| l.error_count.load(Ordering::Acquire) == 0)
                    .map(|_| d)
            };
            match leg.and_then(|i| Some((i, self.legs.get(i)?))) {
                Some((i, l)) => {
                    // `end_io` sees it as a read of leg `i` (balancing, retry on failure).
                    l.inflight.fetch_add(1, Ordering::Relaxed);
                    bio.tag().store(read_tag(i, r, true), Ordering::Relaxed);
                    bio.remap_to(l.bdev.bdev(), self.leg_sector(l, bio.sector()));
                    bio.submit();
                }
                None => bio.end(IoStatus::IoErr),
            }
        }
    }

    fn do_writes(&self, st: &mut State, w: &Worker<Self>, writes: &mut BioList) {
        let mut sync = BioList::new();
        let mut nosync = BioList::new();
        while let Some(bio) = writes.pop() {
            if !counts_in_region(&bio) {
                sync.push(bio);
                continue;
            }
            let r = self.region(bio.sector());
            if st.recovering.is_some_and(|(rr, _)| rr == r) {
                st.delayed.push(bio);
                continue;
            }
            if let Some(p) = self.pending.get(r as usize) {
                p.fetch_add(1, Ordering::AcqRel);
            }
            if self.sync.get(r) {
                if st.log.is_clean(r) {
                    st.log.mark_region(r);
                    if st.dirty.push(r, GFP_KERNEL).is_err() {
                        // Without room to remember it the region stays dirty: a resync
                        // after a crash covers it.
                    }
                }
                sync.push(bio);
            } else {
                nosync.push(bio);
            }
        }
        if st.log.flush(&mut || self.flush_legs()).is_err() {
            st.log_failure = true;
            self.raise_event();
        }
        if st.log_failure && self.handle_errors {
            self.failures.push_all(core::mem::take(&mut sync));
            w.wake();
        } else {
            while let Some(bio) = sync.pop() {
                let Some(slot) = self.free_slot(st, w) else {
                    st.waiting.push(bio);
                    continue;
                };
                let off = bio.sector() - self.begin.min(bio.sector());
                let Some((areas, n)) = self.leg_areas(off, None) else {
                    self.end_write(bio, IoStatus::IoErr);
                    continue;
                };
                if let Err(bio) = w.write_bio(slot, bio, areas.get(..n).unwrap_or(&[])) {
                    st.waiting.push(bio);
                }
            }
        }
        while let Some(bio) = nosync.pop() {
            if self.leg_failure.load(Ordering::Acquire) && self.handle_errors && !self.keep_log {
                self.failures.push(bio);
                w.wake();
                continue;
            }
            let d = self.default_leg.load(Ordering::Acquire);
            match self.legs.get(d) {
                Some(l) => {
                    // Counted until `end_io` sees it (the tag names its region).
                    let r = self.region(bio.sector());
                    bio.tag().store(TAG_NOSYNC_WRITE | r, Ordering::Relaxed);
                    bio.remap_to(l.bdev.bdev(), self.leg_sector(l, bio.sector()));
                    bio.submit();
                }
                None => self.end_write(bio, IoStatus::IoErr),
            }
        }
    }

    fn do_failures(&self, st: &mut State) {
        let mut failures = self.failures.take();
        while let Some(bio) = failures.pop() {
            if !st.log_failure && counts_in_region(&bio) {
                self.in_sync.store(false, Ordering::Release);
                let r = self.region(bio.sector());
                st.log.set_region_sync(&self.sync, r, false);
            }
            if self.valid_leg().is_none() || (self.keep_log && st.log_failure) {
                self.end_write(bio, IoStatus::IoErr);
            } else if self.handle_errors && !self.keep_log {
                if self.suspending.load(Ordering::Acquire) {
                    self.end_write(bio, IoStatus::IoErr);
                } else {
                    st.holds.push(bio);
                }
            } else {
                self.end_write(bio, IoStatus::Ok);
            }
        }
    }

    /// Cleans regions with no write in flight, ends a finished recovery and starts the next.
    fn do_recovery(&self, st: &mut State, w: &Worker<Self>) {
        // A finished copy.
        let done = self.recovery_done.swap(0, Ordering::AcqRel);
        if done != 0 {
            if let Some((r, true)) = st.recovering {
                let ok = done == 1;
                if done == 2 {
                    pr_err!(
                        "device-mapper: raid1: Unable to read primary mirror during recovery\n"
                    );
                    self.fail_leg(self.default_leg.load(Ordering::Acquire), SYNC_ERROR);
                } else if done == 3 {
                    let bits = self.recovery_write_err.load(Ordering::Acquire);
                    pr_err!(
                        "device-mapper: raid1: Write error during recovery (error = {:#x})\n",
                        bits
                    );
                    let d = self.default_leg.load(Ordering::Acquire);
                    let mut bit = 0;
                    for i in 0..self.legs.len() {
                        if i == d {
                            continue;
                        }
                        if bits & (1 << bit) != 0 {
                            self.fail_leg(i, SYNC_ERROR);
                        }
                        bit += 1;
                    }
                }
                st.log.clear_region(r);
                st.log
                    .set_region_sync(&self.sync, r, ok || !self.handle_errors);
                st.recovering = None;
                let mut delayed = core::mem::take(&mut st.delayed);
                self.queue.lock().prepend(core::mem::take(&mut delayed));
                w.wake();
            }
            self.recovery_in_flight.store(false, Ordering::Release);
        }
        // Regions whose writes drained are clean again.
        if !st.dirty.is_empty() {
            let dirty = core::mem::take(&mut st.dirty);
            let mut keep = KVec::with_capacity(dirty.len(), GFP_KERNEL).unwrap_or_default();
            for &r in dirty.iter() {
                let idle = self
                    .pending
                    .get(r as usize)
                    .is_some_and(|p| p.load(Ordering::Acquire) == 0);
                if !idle {
                    let _ = keep.push(r, GFP_KERNEL);
                } else if self.sync.get(r) && !st.log.is_clean(r) {
                    st.log.clear_region(r);
                }
            }
            st.dirty = keep;
        }
        if st.log.flush(&mut || self.flush_legs()).is_err() {
            st.log_failure = true;
        }
        if st.recovery_stopped {
            // A region waiting for its writes to drain is given up: it stays out of sync
            // and its delayed writes go on (to the default leg).
            if let Some((r, false)) = st.recovering {
                st.log.set_region_sync(&self.sync, r, false);
                st.recovering = None;
                let delayed = core::mem::take(&mut st.delayed);
                self.queue.lock().prepend(delayed);
                w.wake();
            }
            return;
        }
        if st.recovering.is_none() {
            if let Some(r) = st.log.get_resync_work(&self.sync) {
                st.recovering = Some((r, false));
            }
        }
        if let Some((r, false)) = st.recovering {
            let idle = self
                .pending
                .get(r as usize)
                .is_some_and(|p| p.load(Ordering::Acquire) == 0);
            if !idle {
                // Writes to it drain first; completions wake the worker.
                return;
            }
            st.recovering = Some((r, true));
            self.recovery_in_flight.store(true, Ordering::Release);
            let d = self.default_leg.load(Ordering::Acquire);
            let start = r << self.region_shift;
            let size = 1u64 << self.region_shift;
            let count = size.min(self.len - start.min(self.len));
            match (self.legs.get(d), self.leg_areas(start, Some(d))) {
                (Some(src), Some((to, n))) => w.copy_multi(
                    RECOVERY_SLOT,
                    Area {
                        dev: src.bdev.bdev(),
                        sector: src.offset.wrapping_add(start),
                    },
                    to.get(..n).unwrap_or(&[]),
                    count,
                    !self.handle_errors,
                ),
                _ => self.recovery_done.store(2, Ordering::Release),
            }
        }
        if !self.in_sync.load(Ordering::Acquire) && self.sync.count() == self.nr_regions {
            self.in_sync.store(true, Ordering::Release);
            for l in self.legs.iter() {
                l.error_count.store(0, Ordering::Release);
                l.error_type.store(0, Ordering::Release);
            }
            self.leg_failure.store(false, Ordering::Release);
            self.raise_event();
        }
    }

    /// Ends a write sent to the default leg only, to region `r` (from `end_io`).
    pub fn nosync_write_done(&self, r: u64) {
        if let Some(p) = self.pending.get(r as usize) {
            p.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Tag of a write sent to the default leg only (its region count drops in `end_io`).
pub const TAG_NOSYNC_WRITE: u64 = 1 << 61;

/// Whether a write counts in its region (flushes and discards do not, as in dm-raid1).
fn counts_in_region(bio: &OwnedBio) -> bool {
    !bio.is_preflush() && bio.op() != ReqOp::Discard && bio.sectors() > 0
}

impl Job for MirrorCore {
    fn run(&self, w: &Worker<Self>) {
        let mut st = self.state.lock();
        let mut bios = core::mem::take(&mut *self.queue.lock());
        bios.append(&mut self.retried.take());
        let mut reads = BioList::new();
        let mut writes = core::mem::take(&mut st.waiting);
        while let Some(b) = bios.pop() {
            if b.is_write() {
                writes.push(b);
            } else {
                reads.push(b);
            }
        }
        self.do_recovery(&mut st, w);
        self.do_reads(&mut reads);
        self.do_writes(&mut st, w, &mut writes);
        self.do_failures(&mut st);
    }

    fn copied(&self, _slot: usize, ok: bool) {
        self.recovery_done
            .store(if ok { 1 } else { 3 }, Ordering::Release);
    }

    fn copied_errors(&self, _slot: usize, read_err: bool, write_err: u64) {
        self.recovery_write_err.store(write_err, Ordering::Release);
        let v = if read_err {
            2
        } else if write_err != 0 {
            3
        } else {
            1
        };
        self.recovery_done.store(v, Ordering::Release);
    }

    fn written(&self, _slot: usize, bio: OwnedBio, errors: u64) {
        if errors == 0 {
            self.end_write(bio, IoStatus::Ok);
            return;
        }
        if bio.op() == ReqOp::Discard {
            self.end_write(bio, IoStatus::NotSupported);
            return;
        }
        for i in 0..self.legs.len() {
            if errors & (1 << i) != 0 {
                self.fail_leg(i, WRITE_ERROR);
            }
        }
        self.failures.push(bio);
    }
}
