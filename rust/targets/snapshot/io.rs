// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The origin's worker: copies on write, commits, snapshot writes that need a copy first,
//! and the merge.
//!
//! An exception being copied is *pending* (dm-snap's `dm_snap_pending_exception`): it holds
//! the origin writes and snapshot writes that wait for it. When its copy ends it is committed
//! to the store (in the order exceptions were started, in one durable area write per batch),
//! then published in the exception table; the waiting origin writes go ahead once the
//! snapshot reads of that chunk that went to the origin have ended.
//!
//! The worker runs in a `memalloc_noio` scope, so its `GFP_KERNEL` allocations do no I/O.
//!
//! A lone writer's COW whose I/O completes in the submitting task (brd) is finished there
//! (`after_direct_now`): the commit's area write is asynchronous and nothing sleeps; what
//! would have to is left to the worker's passes.

use super::origin::{CowState, OriginCore, Snapshot, MERGE_SLOT, PE_SLOTS};
use crate::dm::{
    bio::{BioList, IoStatus, OwnedBio},
    kcopyd::Area,
    mutex::TryMutexGuard,
    worker::{Job, Place, Worker, ASYNC_WRITE_MAX_SECTORS},
};
use core::sync::atomic::Ordering;
use kernel::{alloc::Flags, prelude::*, sync::Arc};

/// The origin's state, locked.
type StateGuard<'a> = TryMutexGuard<'a, WorkState>;

/// Tag of a bio counted in its COW state's `tracked` slot (the slot is in the low bits).
pub const TAG_TRACKED: u64 = 1 << 62;
/// Tag of a full-chunk snapshot write standing in for a copy (the copy slot in the low bits).
pub const TAG_FULL: u64 = 1 << 61;
/// The slot bits of a tag.
pub const TAG_SLOT: u64 = 0xffff_ffff;
/// What the merge's copy slot holds when the copy could not read the COW chunk (1: copied,
/// 2: a write failed).
const MERGE_READ_ERROR: u8 = 3;

/// An exception being made, or a COW chunk being zeroed for a discard.
struct Pending {
    snap: Arc<Snapshot>,
    old: u64,
    new: u64,
    seq: u64,
    /// The copy ended (successfully or not).
    copied: Option<bool>,
    /// Its store is writing it (the state lock is dropped meanwhile, or the write is
    /// asynchronous).
    committing: bool,
    /// An asynchronous area write of its batch ended (with this result): it is to be
    /// published.
    area_written: Option<bool>,
    /// Committed (and published) or failed; waiting for tracked reads, then released.
    committed: Option<bool>,
    /// Counted in its COW state's `draining` until released.
    draining: bool,
    /// A full-chunk write replaces the copy; it comes back from `end_io` into `full`.
    full_expected: bool,
    full: Option<OwnedBio>,
    origin_bios: BioList,
    snap_bios: BioList,
    /// A discard zeroing its COW chunk: not an exception.
    zero: Option<OwnedBio>,
}

impl Pending {
    fn new(snap: &Arc<Snapshot>, old: u64, new: u64, seq: u64) -> Self {
        Pending {
            snap: snap.clone(),
            old,
            new,
            seq,
            copied: None,
            committing: false,
            area_written: None,
            committed: None,
            draining: false,
            full_expected: false,
            full: None,
            origin_bios: BioList::new(),
            snap_bios: BioList::new(),
            zero: None,
        }
    }

    fn ready(&self) -> bool {
        self.committed.is_none()
            && !self.committing
            && self.zero.is_none()
            && self.copied.is_some()
            && (!self.full_expected || self.full.is_some())
    }

    fn is_exception_of(&self, cow: &CowState, chunk: u64) -> bool {
        self.zero.is_none() && self.old == chunk && core::ptr::eq(&*self.snap.cow, cow)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between batches.
    Idle,
    /// Other snapshots must copy the origin chunks about to be overwritten.
    WaitCow { old: u64, new: u64, n: u32 },
    /// Writes to the COW chunks being merged must end.
    Drain { old: u64, new: u64, n: u32 },
    /// The chunks are being copied back to the origin.
    Copying { old: u64, n: u32 },
    /// Finished, failed or stopped by a suspend.
    Stopped,
}

/// The merge of a `snapshot-merge` target into its origin.
pub struct Merge {
    /// The merging snapshot.
    pub snap: Arc<Snapshot>,
    phase: Phase,
    /// Writes to the chunks being merged, sent to the origin once they are.
    queued: BioList,
    first: u64,
    num: u64,
}

/// Copy ends after which kcopyd's thread commits even while other copies run.
const COMMIT_BATCH: usize = 32;

/// No copy slot is free (or no room to start another copy now): the bio waits.
struct NoSlot;

/// A copy or zeroing decided under the state lock and started once it is dropped: starting
/// one can wait for kcopyd's completions, and those take the lock (as dm-snap starts its
/// copies after `up_write`).
enum Start {
    /// `count` sectors from the origin at `origin` to the COW device at `cow`, or the other
    /// way round for a merge.
    Copy {
        slot: usize,
        snap: Arc<Snapshot>,
        to_origin: bool,
        origin: u64,
        cow: u64,
        count: u64,
        /// No other exception was pending when it started.
        alone: bool,
    },
    /// Zeroes `count` sectors of the COW device at `sector`.
    Zero {
        slot: usize,
        snap: Arc<Snapshot>,
        sector: u64,
        count: u64,
    },
}

/// How many starts one hold of the lock collects (they live on the stack).
const STARTS: usize = 8;

/// The starts collected under one hold of the state lock.
struct Starts {
    list: [Option<Start>; STARTS],
    len: usize,
    /// An exception became ready without a copy: the worker must commit it.
    wake: bool,
    /// Collected in `map`'s context: no synchronous I/O may be done.
    in_map: bool,
}

impl Starts {
    /// None yet.
    fn new() -> Self {
        Starts {
            list: [const { None }; STARTS],
            len: 0,
            wake: false,
            in_map: false,
        }
    }

    fn is_full(&self) -> bool {
        self.len == STARTS
    }

    fn push(&mut self, s: Start) {
        if let Some(e) = self.list.get_mut(self.len) {
            *e = Some(s);
            self.len += 1;
        }
    }

    /// Starts everything collected (the state lock must not be held).
    fn issue(&mut self, core: &OriginCore, w: &Worker<OriginCore>) {
        let len = self.len;
        for e in self.list.iter_mut().take(len) {
            // No other copy in flight: this one may be a lone writer's.
            let mut solo = false;
            if e.is_some() {
                solo = core.copies.fetch_add(1, Ordering::AcqRel) == 0 && len == 1;
            }
            match e.take() {
                Some(Start::Copy {
                    slot,
                    snap,
                    to_origin,
                    origin,
                    cow,
                    count,
                    alone,
                }) => {
                    let o = Area {
                        dev: core.bdev.bdev(),
                        sector: origin,
                    };
                    let c = Area {
                        dev: snap.cow.cow.bdev(),
                        sector: cow,
                    };
                    // A writer that waits for each write alone (QD1): several COWs in a row
                    // found nothing else pending. One such COW after a burst is not enough:
                    // the burst's next writes would commit behind it.
                    let lone = core.solo_streak.record(solo && alone && !to_origin);
                    if let Some(l) = core.lone.get(slot) {
                        l.store(lone, Ordering::Release);
                    }
                    if to_origin {
                        // The merge tells a failed read from a failed write: kcopyd's
                        // callback says which.
                        w.copy(slot, c, o, count);
                    } else {
                        // A lone writer's copy is written and committed on the CPU its read
                        // ends on (no wake-up of another CPU), at once in the submitter's task
                        // when the devices complete there (but for a probe now and then: a
                        // submitter that does not wait shows itself); in a burst the unbound
                        // worker writes the copies on another CPU while the submitter goes
                        // on, and commits many per area write.
                        let place = match lone {
                            // Handed to the unbound worker, which another CPU can run while
                            // the submitter goes on (the local copy queue's worker would run
                            // first on the submitter's CPU as it returns to user space).
                            true if core.solo_streak.is_probe() => Place::Here,
                            true => Place::Inline,
                            false => Place::Here,
                        };
                        w.copy_direct(slot, o, c, count, place);
                    }
                }
                Some(Start::Zero {
                    slot,
                    snap,
                    sector,
                    count,
                }) => w.zero(slot, snap.cow.cow.bdev(), sector, count),
                None => {}
            }
        }
        self.len = 0;
        if self.wake {
            self.wake = false;
            w.wake();
        }
    }
}

/// A list of copy slots, at most all of them (no allocation after creation).
struct SlotList {
    slots: [u16; PE_SLOTS],
    len: usize,
}

impl SlotList {
    fn new() -> Self {
        SlotList {
            slots: [0; PE_SLOTS],
            len: 0,
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots.iter().take(self.len).map(|&s| s as usize)
    }

    fn get(&self, i: usize) -> Option<usize> {
        self.slots
            .get(i)
            .filter(|_| i < self.len)
            .map(|&s| s as usize)
    }

    fn last(&self) -> Option<usize> {
        self.get(self.len.checked_sub(1)?)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, slot: usize) {
        if let Some(e) = self.slots.get_mut(self.len) {
            *e = slot as u16;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<usize> {
        let s = self.last()?;
        self.len -= 1;
        Some(s)
    }

    /// Removes `slot`, keeping the order of the others.
    fn remove(&mut self, slot: usize) {
        let pos = self.iter().position(|s| s == slot);
        if let Some(i) = pos {
            if let Some(tail) = self.slots.get_mut(i..self.len) {
                tail.rotate_left(1);
            }
            self.len -= 1;
        }
    }
}

/// What the worker keeps between runs.
pub struct WorkState {
    /// Every registered snapshot of the origin, largest chunk first.
    pub snaps: KVec<Arc<Snapshot>>,
    pes: KVec<Option<Pending>>,
    /// The occupied slots, in the order they were taken (so each store's exceptions are in
    /// sequence order): the passes look at these only.
    used: SlotList,
    /// The free slots.
    free: SlotList,
    /// Origin writes to run through the snapshots again.
    retry: BioList,
    /// The merge, while a merge target is resumed.
    pub merge: Option<Merge>,
}

impl WorkState {
    /// An empty state with its copy slots.
    pub fn new() -> Result<Self> {
        let mut pes = KVec::with_capacity(PE_SLOTS, GFP_KERNEL)?;
        let mut free = SlotList::new();
        for slot in 0..PE_SLOTS {
            pes.push(None, GFP_KERNEL)?;
            free.push(PE_SLOTS - 1 - slot);
        }
        Ok(WorkState {
            snaps: KVec::new(),
            pes,
            used: SlotList::new(),
            free,
            retry: BioList::new(),
            merge: None,
        })
    }

    /// Whether a pending exception belongs to `snap`.
    pub fn refers_to(&self, snap: &Arc<Snapshot>) -> bool {
        self.pes
            .iter()
            .flatten()
            .any(|p| Arc::ptr_eq(&p.snap, snap))
    }

    fn free_slot(&self) -> Option<usize> {
        self.free.last()
    }

    /// Puts `pe` in the slot `free_slot` gave.
    fn occupy(&mut self, pe: Pending) -> Option<usize> {
        let slot = self.free.pop()?;
        self.used.push(slot);
        if let Some(p) = self.pes.get_mut(slot) {
            *p = Some(pe);
        }
        Some(slot)
    }

    /// The occupied slot at position `i` of the start order.
    fn used_at(&self, i: usize) -> Option<usize> {
        self.used.get(i)
    }

    fn pending(&self, cow: &CowState, chunk: u64) -> Option<usize> {
        self.used.iter().find(|&s| {
            self.pes
                .get(s)
                .and_then(|p| p.as_ref())
                .is_some_and(|p| p.is_exception_of(cow, chunk))
        })
    }

    fn pe(&mut self, slot: usize) -> Option<&mut Pending> {
        self.pes.get_mut(slot).and_then(|p| p.as_mut())
    }

    fn take(&mut self, slot: usize) -> Option<Pending> {
        let pe = self.pes.get_mut(slot).and_then(|p| p.take())?;
        self.used.remove(slot);
        self.free.push(slot);
        Some(pe)
    }

    /// The smallest chunk of the origin's snapshots (dm-snap's `__minimum_chunk_size`).
    fn min_chunk(&self) -> u64 {
        self.snaps
            .iter()
            .map(|s| s.cow.chunk as u64)
            .filter(|&c| c != 0)
            .min()
            .unwrap_or(1 << 31)
    }
}

/// Sends a snapshot bio to its chunk in the COW device.
fn remap_to_cow(cow: &CowState, new: u64, bio: &OwnedBio) {
    let off = bio.sector() & (cow.chunk as u64 - 1);
    bio.remap_to(cow.cow.bdev(), (new << cow.shift) + off);
}

impl OriginCore {
    /// Records the end of the copy of `slot`, or of the full-chunk write standing in for it.
    pub fn full_done(&self, slot: usize, ok: bool) {
        if let Some(d) = self.done.get(slot) {
            d.store(if ok { 1 } else { 2 }, Ordering::Release);
        }
    }

    /// Takes back a full-chunk write from `end_io`.
    pub fn returned(&self, bio: OwnedBio) {
        self.returned.push(bio);
    }

    fn harvest(&self, st: &mut WorkState) {
        let mut back = self.returned.take();
        while let Some(bio) = back.pop() {
            let slot = (bio.tag().load(Ordering::Relaxed) & TAG_SLOT) as usize;
            match st.pe(slot) {
                Some(pe) if pe.full_expected && pe.full.is_none() => pe.full = Some(bio),
                _ => {
                    bio.tag().store(0, Ordering::Relaxed);
                    bio.end(IoStatus::IoErr);
                }
            }
        }
        let mut i = 0;
        while let Some(slot) = st.used_at(i) {
            i += 1;
            let Some(d) = self.done.get(slot) else {
                continue;
            };
            if d.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let ok = d.swap(0, Ordering::AcqRel) == 1;
            let Some(pe) = st.pe(slot) else { continue };
            if pe.zero.is_some() {
                if let Some(bio) = st.take(slot).and_then(|mut p| p.zero.take()) {
                    bio.end(if ok { IoStatus::Ok } else { IoStatus::IoErr });
                }
                // The slot left the list.
                i -= 1;
                continue;
            }
            pe.copied = Some(ok);
        }
    }

    /// The next run of ready exceptions to commit: one store's, following in sequence from
    /// its next one to commit, when no commit of that store is under way (the start order
    /// holds each store's exceptions in sequence). Also the sequence number after the run.
    fn next_batch(st: &WorkState) -> Option<(Arc<Snapshot>, SlotList, u64)> {
        let first = st.used.iter().find(|&slot| {
            st.pes.get(slot).and_then(|p| p.as_ref()).is_some_and(|p| {
                let cow = &p.snap.cow;
                p.ready()
                    && p.seq == cow.complete_seq.load(Ordering::Relaxed)
                    && !cow.committing.load(Ordering::Acquire)
            })
        })?;
        let snap = st.pes.get(first)?.as_ref()?.snap.clone();
        let cow = &snap.cow;
        let mut batch = SlotList::new();
        let mut seq = cow.complete_seq.load(Ordering::Relaxed);
        for slot in st.used.iter() {
            let Some(p) = st.pes.get(slot).and_then(|p| p.as_ref()) else {
                continue;
            };
            if p.zero.is_some() || !core::ptr::eq(&*p.snap.cow, &**cow) || p.seq < seq {
                continue;
            }
            if p.seq != seq || !p.ready() || batch.len() == PE_SLOTS {
                break;
            }
            batch.push(slot);
            seq += 1;
        }
        if batch.len() == 0 {
            return None;
        }
        Some((snap, batch, seq))
    }

    /// Marks `batch` as being committed, the store's next commit starting after it.
    fn begin_commit(st: &mut WorkState, cow: &CowState, batch: &SlotList, seq: u64) {
        for slot in batch.iter() {
            if let Some(pe) = st.pe(slot) {
                pe.committing = true;
            }
        }
        cow.committing.store(true, Ordering::Release);
        cow.complete_seq.store(seq, Ordering::Relaxed);
    }

    /// Publishes the exception of `pe`, whose commit ended (`ok`: it is on disk): counted
    /// as draining, then put in the table. `Err` when the table had no memory and `flags`
    /// may not wait: nothing is lost, it is tried again later.
    fn publish(
        pe: &mut Pending,
        writer: Option<&mut crate::targets::extents::ExtentWriter<'_>>,
        ok: bool,
        flags: Flags,
        wait: bool,
    ) -> Result<(), ()> {
        let mut done = ok;
        if done {
            if !pe.draining {
                // Counted before it is published: an origin write that finds the exception
                // also sees that it is not released yet.
                let d = &pe.snap.cow.draining[super::origin::track_slot(pe.old)];
                d.fetch_add(1, Ordering::AcqRel);
                pe.draining = true;
            }
            done = match writer {
                Some(w) => w.insert(pe.old, pe.new, flags).is_ok(),
                None => false,
            };
            if !done {
                if !wait {
                    return Err(());
                }
                pe.snap.invalidate(ENOMEM);
            }
        }
        pe.committed = Some(done && pe.snap.cow.valid.load(Ordering::Acquire));
        Ok(())
    }

    /// Commits ready exceptions, each COW device's in start order. The store's area write
    /// runs with the state lock dropped (the map path takes it), so the guard is given
    /// back; the exceptions being written are marked so that no other pass takes them.
    fn commit_ready<'a>(&'a self, mut st: StateGuard<'a>) -> StateGuard<'a> {
        loop {
            let Some((snap, batch, seq)) = Self::next_batch(&st) else {
                return st;
            };
            let cow = snap.cow.clone();
            let mut exceptions = KVec::with_capacity(batch.len(), GFP_KERNEL).ok();
            let mut all_ok = exceptions.is_some();
            for slot in batch.iter() {
                if let Some(pe) = st.pe(slot) {
                    all_ok &= pe.copied == Some(true);
                    if let Some(ex) = exceptions.as_mut() {
                        let _ = ex.push((pe.old, pe.new), GFP_KERNEL);
                    }
                }
            }
            Self::begin_commit(&mut st, &cow, &batch, seq);
            // The batch's slots stay theirs meanwhile: only a release (after the commit) or
            // a finished zeroing frees a slot.
            drop(st);
            let mut ok = all_ok && cow.valid.load(Ordering::Acquire);
            if ok {
                let ex = exceptions.as_ref().map(|e| e.as_slice()).unwrap_or(&[]);
                if cow.store.lock().commit(cow.cow.bdev(), ex).is_err() {
                    ok = false;
                }
            }
            if !ok {
                snap.invalidate(EIO);
            }
            st = self.state.lock();
            let mut writer = if ok { cow.table.writer().ok() } else { None };
            for slot in batch.iter() {
                if let Some(pe) = st.pe(slot) {
                    let _ = Self::publish(pe, writer.as_mut(), ok, GFP_KERNEL, true);
                }
            }
            drop(writer);
            cow.committing.store(false, Ordering::Release);
        }
    }

    /// Starts the commit of each ready batch with an asynchronous area write, where nothing
    /// may sleep (a submitter's task); a transient store's batch is ready to publish at once.
    /// Returns false when a batch is left that the worker must commit (a failed copy, an
    /// area that fills, a store lock held, no memory).
    fn commit_async(&self, st: &mut WorkState, w: &Worker<Self>) -> bool {
        while let Some((snap, batch, seq)) = Self::next_batch(st) {
            let cow = &snap.cow;
            let copied = batch
                .iter()
                .all(|slot| st.pe(slot).is_some_and(|p| p.copied == Some(true)));
            if !copied || !cow.valid.load(Ordering::Acquire) {
                return false;
            }
            let Some(mut store) = cow.store.try_lock() else {
                return false;
            };
            let Some(first) = batch.get(0) else {
                return true;
            };
            let Some(p) = store.persistent() else {
                // Nothing to write: published by the pass that follows.
                Self::begin_commit(st, cow, &batch, seq);
                for slot in batch.iter() {
                    if let Some(pe) = st.pe(slot) {
                        pe.area_written = Some(true);
                    }
                }
                continue;
            };
            let n = batch.len() as u32;
            let pairs = batch
                .iter()
                .filter_map(|slot| st.pes.get(slot).and_then(|p| p.as_ref()))
                .map(|pe| (pe.old, pe.new));
            let Some((at, part)) = p.stage(cow.cow.bdev(), pairs, n, ASYNC_WRITE_MAX_SECTORS)
            else {
                return false;
            };
            let prev = cow.complete_seq.load(Ordering::Relaxed);
            Self::begin_commit(st, cow, &batch, seq);
            // The area is not touched again before this write ends: the store's next commit
            // waits for `committing`, and a merge for every exception to be published.
            if w.write_async(first, cow.cow.bdev(), at, p.area_bytes(), part, true)
                .is_err()
            {
                p.unstage(n);
                for slot in batch.iter() {
                    if let Some(pe) = st.pe(slot) {
                        pe.committing = false;
                    }
                }
                cow.complete_seq.store(prev, Ordering::Relaxed);
                cow.committing.store(false, Ordering::Release);
                return false;
            }
        }
        true
    }

    /// Takes the results of asynchronous area writes and publishes their batches. With
    /// `now` (where nothing may sleep) returns false when something is left for the worker:
    /// a failed write (the snapshot is invalidated on disk), a store lock held, or no memory
    /// for the table.
    fn finish_async(&self, st: &mut WorkState, now: bool) -> bool {
        let mut all = true;
        let mut i = 0;
        while let Some(first) = st.used_at(i) {
            i += 1;
            let Some(flag) = self.area_done.get(first) else {
                continue;
            };
            let r = flag.load(Ordering::Acquire);
            if r == 0 {
                continue;
            }
            let ok = r == 1;
            let Some(snap) = st.pe(first).map(|p| p.snap.clone()) else {
                continue;
            };
            if now && !ok {
                all = false;
                continue;
            }
            let store = if now {
                snap.cow.store.try_lock()
            } else {
                Some(snap.cow.store.lock())
            };
            let Some(mut store) = store else {
                all = false;
                continue;
            };
            if let Some(p) = store.persistent() {
                p.staged(ok);
            }
            drop(store);
            flag.store(0, Ordering::Release);
            let mut j = 0;
            while let Some(slot) = st.used_at(j) {
                j += 1;
                if let Some(pe) = st.pe(slot) {
                    if pe.committing
                        && pe.committed.is_none()
                        && pe.area_written.is_none()
                        && core::ptr::eq(&*pe.snap.cow, &*snap.cow)
                    {
                        pe.area_written = Some(ok);
                    }
                }
            }
            if !ok {
                snap.invalidate(EIO);
            }
        }
        all & self.publish_written(st, now)
    }

    /// Publishes the exceptions whose asynchronous commit ended; a store whose batch is all
    /// published may commit again.
    fn publish_written(&self, st: &mut WorkState, now: bool) -> bool {
        let mut all = true;
        let flags = if now { GFP_NOWAIT } else { GFP_KERNEL };
        let mut i = 0;
        while let Some(slot) = st.used_at(i) {
            i += 1;
            let Some(pe) = st.pe(slot) else { continue };
            let Some(ok) = pe.area_written.filter(|_| pe.committed.is_none()) else {
                continue;
            };
            let cow = pe.snap.cow.clone();
            let mut writer = if ok { cow.table.writer().ok() } else { None };
            if ok && writer.is_none() && now {
                all = false;
                continue;
            }
            if Self::publish(pe, writer.as_mut(), ok, flags, !now).is_err() {
                all = false;
                continue;
            }
            drop(writer);
            pe.area_written = None;
            let rest = st.used.iter().any(|s| {
                st.pes.get(s).and_then(|p| p.as_ref()).is_some_and(|p| {
                    p.area_written.is_some()
                        && p.committed.is_none()
                        && core::ptr::eq(&*p.snap.cow, &*cow)
                })
            });
            if !rest {
                cow.committing.store(false, Ordering::Release);
            }
        }
        all
    }

    /// Releases committed exceptions whose chunk has no tracked read in flight; returns
    /// whether some wait for reads.
    fn release(&self, st: &mut WorkState) -> bool {
        let mut waiting = false;
        let mut i = 0;
        while let Some(slot) = st.used_at(i) {
            i += 1;
            let Some(pe) = st.pe(slot) else { continue };
            let Some(ok) = pe.committed else { continue };
            if ok && pe.snap.cow.is_tracked(pe.old) {
                waiting = true;
                continue;
            }
            let Some(mut pe) = st.take(slot) else {
                continue;
            };
            // The slot left the list.
            i -= 1;
            if pe.draining {
                let d = &pe.snap.cow.draining[super::origin::track_slot(pe.old)];
                d.fetch_sub(1, Ordering::AcqRel);
            }
            if let Some(bio) = pe.full.take() {
                bio.tag().store(0, Ordering::Relaxed);
                bio.end(if ok { IoStatus::Ok } else { IoStatus::IoErr });
            }
            while let Some(bio) = pe.snap_bios.pop() {
                if ok {
                    remap_to_cow(&pe.snap.cow, pe.new, &bio);
                    bio.submit();
                } else {
                    bio.end(IoStatus::IoErr);
                }
            }
            st.retry.append(&mut pe.origin_bios);
        }
        waiting
    }

    /// Sends on the released origin writes that no snapshot needs a copy for (every
    /// snapshot has the chunk, none is making it), without starting anything; returns
    /// whether some are left for the worker.
    fn retry_now(&self, st: &mut WorkState) -> bool {
        let mut list = core::mem::take(&mut st.retry);
        let mut left = BioList::new();
        while let Some(bio) = list.pop() {
            let sector = bio.sector();
            // As `map`'s test: an exception published and released has no pending one.
            let clear = {
                let g = crate::dm::rcu::read_lock();
                st.snaps.iter().all(|s| s.write_needs_no_cow(sector, &g))
            };
            if clear {
                bio.remap_to(self.bdev.bdev(), sector);
                bio.submit();
            } else {
                left.push(bio);
            }
        }
        st.retry = left;
        !st.retry.is_empty()
    }

    /// Starts the copy of origin chunk `chunk` into a new exception of `s`. `Ok(None)`: the
    /// store is full.
    fn start_exception(
        &self,
        st: &mut WorkState,
        starts: &mut Starts,
        s: &Arc<Snapshot>,
        chunk: u64,
        copy: bool,
    ) -> Result<Option<(usize, u64)>, NoSlot> {
        if starts.is_full() {
            return Err(NoSlot);
        }
        st.free_slot().ok_or(NoSlot)?;
        let cow_sectors = s.cow.cow.bdev().nr_sectors();
        let Some(new) = s.cow.alloc.prepare(cow_sectors) else {
            return Ok(None);
        };
        let seq = s.cow.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut pe = Pending::new(s, chunk, new, seq);
        pe.full_expected = !copy;
        let slot = st.occupy(pe).ok_or(NoSlot)?;
        if copy {
            let from = chunk << s.cow.shift;
            let origin_sectors = self.bdev.bdev().nr_sectors();
            let count = (s.cow.chunk as u64).min(origin_sectors.saturating_sub(from));
            if count == 0 {
                self.full_done(slot, true);
                starts.wake = true;
            } else {
                starts.push(Start::Copy {
                    slot,
                    snap: s.clone(),
                    to_origin: false,
                    origin: from,
                    cow: new << s.cow.shift,
                    count,
                    alone: st.used.len() == 1,
                });
            }
        }
        Ok(Some((slot, new)))
    }

    /// dm-snap's `__origin_write`: makes sure every snapshot has (or is making) an
    /// exception for the origin chunk at `sector`. Returns a pending exception to wait for.
    fn origin_write(
        &self,
        st: &mut WorkState,
        starts: &mut Starts,
        sector: u64,
    ) -> Result<Option<usize>, NoSlot> {
        let mut wait = None;
        let mut i = 0;
        while let Some(s) = st.snaps.get(i).cloned() {
            i += 1;
            if s.merge || !s.active.load(Ordering::Acquire) || !s.is_valid() || sector >= s.end {
                continue;
            }
            let chunk = sector >> s.cow.shift;
            if let Some(slot) = st.pending(&s.cow, chunk) {
                wait.get_or_insert(slot);
                continue;
            }
            if s.cow.table.find(chunk).is_some() {
                continue;
            }
            match self.start_exception(st, starts, &s, chunk, true)? {
                Some((slot, _)) => {
                    wait.get_or_insert(slot);
                }
                // Invalidating writes the store's header: not from `map`'s context, where
                // that write would wait behind the bio being mapped.
                None if starts.in_map => return Err(NoSlot),
                None => s.invalidate(ENOMEM),
            }
        }
        Ok(wait)
    }

    /// Sends an origin write on once every snapshot has its chunk, or queues it on the
    /// exception it waits for; gives it back when no copy slot is free.
    fn origin_bio(
        &self,
        st: &mut WorkState,
        starts: &mut Starts,
        bio: OwnedBio,
    ) -> Result<(), OwnedBio> {
        match self.origin_write(st, starts, bio.sector()) {
            Ok(None) => {
                bio.remap_to(self.bdev.bdev(), bio.sector());
                bio.submit();
            }
            Ok(Some(slot)) => match st.pe(slot) {
                Some(pe) => pe.origin_bios.push(bio),
                None => bio.end(IoStatus::IoErr),
            },
            Err(NoSlot) => return Err(bio),
        }
        Ok(())
    }

    fn origin_bios(&self, st: &mut WorkState, starts: &mut Starts) {
        let mut list = core::mem::take(&mut st.retry);
        list.append(&mut self.queue.lock());
        while let Some(bio) = list.pop() {
            if let Err(bio) = self.origin_bio(st, starts, bio) {
                list.push_front(bio);
                st.retry = list;
                return;
            }
        }
    }

    fn snapshot_write(
        &self,
        st: &mut WorkState,
        starts: &mut Starts,
        s: &Arc<Snapshot>,
        bio: OwnedBio,
    ) -> Result<(), OwnedBio> {
        let cow = &s.cow;
        if bio.op() == crate::dm::bio::ReqOp::Discard {
            // `map` remapped it to its COW chunk, which it covers whole: zero the chunk.
            if st.free_slot().is_none() || starts.is_full() {
                return Err(bio);
            }
            let sector = bio.sector();
            let mut pe = Pending::new(s, u64::MAX, 0, 0);
            pe.zero = Some(bio);
            let Some(slot) = st.occupy(pe) else {
                // Cannot happen: a slot was free.
                return Ok(());
            };
            starts.push(Start::Zero {
                slot,
                snap: s.clone(),
                sector,
                count: cow.chunk as u64,
            });
            return Ok(());
        }
        if !s.is_valid() || cow.overflowed.load(Ordering::Acquire) {
            bio.end(IoStatus::IoErr);
            return Ok(());
        }
        let chunk = bio.sector() >> cow.shift;
        if let Some(new) = cow.table.find(chunk) {
            remap_to_cow(cow, new, &bio);
            bio.submit();
            return Ok(());
        }
        if let Some(slot) = st.pending(cow, chunk) {
            if let Some(pe) = st.pe(slot) {
                pe.snap_bios.push(bio);
            }
            return Ok(());
        }
        if st.free_slot().is_none() || starts.is_full() {
            return Err(bio);
        }
        let full = u64::from(bio.size()) == (cow.chunk as u64) << 9;
        match self.start_exception(st, starts, s, chunk, !full) {
            Err(NoSlot) => Err(bio),
            Ok(None) => {
                if cow.overflow_allowed {
                    if s.is_valid() && !cow.overflowed.swap(true, Ordering::AcqRel) {
                        pr_err!("device-mapper: snapshots: Snapshot overflowed: Unable to allocate exception.\n");
                    }
                } else {
                    s.invalidate(ENOMEM);
                }
                bio.end(IoStatus::IoErr);
                Ok(())
            }
            Ok(Some((slot, new))) => {
                remap_to_cow(cow, new, &bio);
                if full {
                    bio.tag().store(TAG_FULL | slot as u64, Ordering::Relaxed);
                    bio.submit();
                } else if let Some(pe) = st.pe(slot) {
                    pe.snap_bios.push(bio);
                }
                Ok(())
            }
        }
    }

    fn merge_write(
        &self,
        st: &mut WorkState,
        starts: &mut Starts,
        s: &Arc<Snapshot>,
        bio: OwnedBio,
    ) -> Result<(), OwnedBio> {
        let cow = &s.cow;
        if s.is_valid() {
            let chunk = bio.sector() >> cow.shift;
            if let Some(new) = cow.table.find(chunk) {
                if let Some(m) = st.merge.as_mut() {
                    if Arc::ptr_eq(&m.snap, s) && chunk >= m.first && chunk - m.first < m.num {
                        m.queued.push(bio);
                        return Ok(());
                    }
                }
                let h = cow.track(chunk);
                bio.tag().store(TAG_TRACKED | h as u64, Ordering::Relaxed);
                remap_to_cow(cow, new, &bio);
                bio.submit();
                return Ok(());
            }
        }
        self.origin_bio(st, starts, bio)
    }

    fn snapshot_bios(&self, st: &mut WorkState, starts: &mut Starts) {
        let mut i = 0;
        while let Some(s) = st.snaps.get(i).cloned() {
            i += 1;
            let mut list = core::mem::take(&mut *s.queue.lock());
            while let Some(bio) = list.pop() {
                let r = if s.merge {
                    self.merge_write(st, starts, &s, bio)
                } else {
                    self.snapshot_write(st, starts, &s, bio)
                };
                if let Err(bio) = r {
                    // Out of copy slots: keep the order and wait for a slot.
                    list.push_front(bio);
                    let mut q = s.queue.lock();
                    list.append(&mut q);
                    core::mem::swap(&mut *q, &mut list);
                    break;
                }
            }
        }
    }

    fn merge_fail(&self, m: &mut Merge) {
        m.snap.cow.merge_failed.store(true, Ordering::Release);
        while let Some(bio) = m.queued.pop() {
            bio.end(IoStatus::IoErr);
        }
        m.first = 0;
        m.num = 0;
        m.phase = Phase::Stopped;
    }

    /// Advances the merge; returns whether it waits for writes to drain (poll again soon).
    fn merge_step(&self, st: &mut WorkState, starts: &mut Starts) -> bool {
        let Some(mut m) = st.merge.take() else {
            self.merge_busy.store(false, Ordering::Release);
            return false;
        };
        let poll = self.merge_advance(st, starts, &mut m);
        if m.phase == Phase::Stopped {
            self.merge_busy.store(false, Ordering::Release);
        }
        st.merge = Some(m);
        poll
    }

    fn merge_advance(&self, st: &mut WorkState, starts: &mut Starts, m: &mut Merge) -> bool {
        let s = m.snap.clone();
        let cow = &s.cow;
        loop {
            let running = self.merge_run.load(Ordering::Acquire);
            match m.phase {
                Phase::Copying { old, n } => {
                    let d = self.done[MERGE_SLOT].swap(0, Ordering::AcqRel);
                    if d == 0 {
                        return false;
                    }
                    if d == MERGE_READ_ERROR {
                        pr_err!("device-mapper: snapshots: Read error: shutting down merge.\n");
                        self.merge_fail(m);
                        return false;
                    }
                    if d != 1 {
                        pr_err!("device-mapper: snapshots: Write error: shutting down merge.\n");
                        self.merge_fail(m);
                        return false;
                    }
                    if self.bdev.bdev().flush().is_err() {
                        pr_err!("device-mapper: snapshots: Flush after merge failed: shutting down merge\n");
                        self.merge_fail(m);
                        return false;
                    }
                    match cow.store.lock().commit_merge(cow.cow.bdev(), n) {
                        Ok(next_free) => cow.alloc.set_next_free(next_free),
                        Err(_) => {
                            pr_err!("device-mapper: snapshots: Write error in exception store: shutting down merge\n");
                            self.merge_fail(m);
                            return false;
                        }
                    }
                    if let Ok(mut wr) = cow.table.writer() {
                        for c in (old..old + n as u64).rev() {
                            match wr.remove(c, GFP_KERNEL) {
                                Ok(()) => {}
                                Err(crate::targets::extents::RemoveError::Middle(r)) => {
                                    pr_err!(
                                        "device-mapper: snapshots: Attempt to merge block {} from the middle of a chunk range [{} - {}]\n",
                                        c,
                                        r.key,
                                        r.key + r.len - 1
                                    );
                                    drop(wr);
                                    self.merge_fail(m);
                                    return false;
                                }
                                Err(_) => {
                                    pr_err!(
                                        "device-mapper: snapshots: Corruption detected: exception for block {} is on disk but not in memory\n",
                                        c
                                    );
                                    drop(wr);
                                    self.merge_fail(m);
                                    return false;
                                }
                            }
                        }
                    }
                    m.first = 0;
                    m.num = 0;
                    while let Some(bio) = m.queued.pop() {
                        bio.remap_to(self.bdev.bdev(), bio.sector());
                        bio.submit();
                    }
                    m.phase = Phase::Idle;
                }
                Phase::Drain { old, new, n } => {
                    if (0..n as u64).any(|i| cow.is_tracked(old + i)) {
                        return true;
                    }
                    if starts.is_full() {
                        // The run starts it after these.
                        return false;
                    }
                    let dest = old << cow.shift;
                    let size = self.bdev.bdev().nr_sectors();
                    let count = ((n as u64) << cow.shift).min(size.saturating_sub(dest));
                    m.phase = Phase::Copying { old, n };
                    starts.push(Start::Copy {
                        slot: MERGE_SLOT,
                        snap: s.clone(),
                        to_origin: true,
                        origin: dest,
                        cow: new << cow.shift,
                        count,
                        alone: false,
                    });
                    return false;
                }
                Phase::Stopped => return false,
                _ if !running => {
                    m.phase = Phase::Stopped;
                    return false;
                }
                Phase::Idle => {
                    self.merge_busy.store(true, Ordering::Release);
                    if !s.is_valid() {
                        pr_err!("device-mapper: snapshots: Snapshot is invalid: can't merge\n");
                        m.phase = Phase::Stopped;
                        return false;
                    }
                    // Exceptions of this store still being made (a handover source's) are
                    // on disk before they are in the table: start once none is left.
                    let making = cow.committing.load(Ordering::Acquire)
                        || st.used.iter().any(|slot| {
                            st.pes.get(slot).and_then(|p| p.as_ref()).is_some_and(|p| {
                                p.zero.is_none()
                                    && p.committed.is_none()
                                    && core::ptr::eq(&*p.snap.cow, &**cow)
                            })
                        });
                    if making {
                        return true;
                    }
                    let r = cow.store.lock().prepare_merge(cow.cow.bdev());
                    match r {
                        Ok(None) => {
                            m.phase = Phase::Stopped;
                            return false;
                        }
                        Err(_) => {
                            pr_err!("device-mapper: snapshots: Read error in exception store: shutting down merge\n");
                            self.merge_fail(m);
                            return false;
                        }
                        Ok(Some((last_old, last_new, n))) => {
                            m.phase = Phase::WaitCow {
                                old: last_old + 1 - n as u64,
                                new: last_new + 1 - n as u64,
                                n,
                            };
                        }
                    }
                }
                Phase::WaitCow { old, new, n } => {
                    // Other snapshots copy what the merge is about to overwrite.
                    let step = st.min_chunk().max(1);
                    let bytes = (n as u64) << cow.shift;
                    let mut wait = false;
                    let mut off = 0;
                    while off < bytes {
                        if !matches!(
                            self.origin_write(st, starts, (old << cow.shift) + off),
                            Ok(None)
                        ) {
                            wait = true;
                        }
                        off += step;
                    }
                    if wait {
                        return false;
                    }
                    m.first = old;
                    m.num = n as u64;
                    m.phase = Phase::Drain { old, new, n };
                }
            }
        }
    }

    /// Starts (or restarts) the merge of `snap`.
    pub fn start_merge(&self, snap: &Arc<Snapshot>) {
        let mut st = self.state.lock();
        let restart = match st.merge.as_mut() {
            Some(m) if Arc::ptr_eq(&m.snap, snap) => {
                if m.phase == Phase::Stopped {
                    m.phase = Phase::Idle;
                }
                false
            }
            _ => true,
        };
        if restart {
            st.merge = Some(Merge {
                snap: snap.clone(),
                phase: Phase::Idle,
                queued: BioList::new(),
                first: 0,
                num: 0,
            });
        }
        self.merge_run.store(true, Ordering::Release);
    }
}

impl OriginCore {
    /// Whether work is left for the worker after an inline pass: bios waiting for a slot or
    /// for room to start a copy, or a merge.
    fn work_left(&self, st: &WorkState) -> bool {
        !st.retry.is_empty()
            || !self.queue.lock().is_empty()
            || st.merge.as_ref().is_some_and(|m| m.phase != Phase::Stopped)
            || st.snaps.iter().any(|s| !s.queue.lock().is_empty())
    }

    /// A write to the origin that some snapshot must copy first (from `map`'s context):
    /// starts the copies here, as dm-snap does, unless earlier writes wait for the worker.
    pub fn origin_write_now(&self, w: &Worker<Self>, bio: OwnedBio) {
        let mut starts = Starts::new();
        starts.in_map = true;
        let mut st = self.state.lock();
        let mut wake = false;
        if !st.retry.is_empty() || !self.queue.lock().is_empty() {
            self.queue.lock().push(bio);
            wake = true;
        } else if let Err(bio) = self.origin_bio(&mut st, &mut starts, bio) {
            self.queue.lock().push(bio);
            wake = true;
        }
        drop(st);
        starts.issue(self, w);
        if wake {
            w.wake();
        }
    }
}

impl Job for OriginCore {
    fn run(&self, w: &Worker<Self>) {
        loop {
            let mut starts = Starts::new();
            let mut st = self.state.lock();
            self.harvest(&mut st);
            self.finish_async(&mut st, false);
            st = self.commit_ready(st);
            let mut poll = self.release(&mut st);
            self.origin_bios(&mut st, &mut starts);
            poll |= self.merge_step(&mut st, &mut starts);
            self.snapshot_bios(&mut st, &mut starts);
            drop(st);
            // Bios may wait for room to start their copies: go round again.
            let again = starts.is_full();
            starts.issue(self, w);
            if !again {
                if poll {
                    w.wake_after(1);
                }
                return;
            }
        }
    }

    fn copied(&self, slot: usize, ok: bool) {
        // A copy's end is recorded as a full-chunk write's is.
        self.full_done(slot, ok);
        self.copies.fetch_sub(1, Ordering::AcqRel);
    }

    fn copied_errors(&self, slot: usize, read_err: bool, write_err: u64) {
        // The merge says which side failed, as C (a failed read first).
        match self.done.get(slot) {
            Some(d) if slot == MERGE_SLOT && read_err => {
                d.store(MERGE_READ_ERROR, Ordering::Release);
                self.copies.fetch_sub(1, Ordering::AcqRel);
            }
            _ => self.copied(slot, !read_err && write_err == 0),
        }
    }

    /// Commits and releases in kcopyd's thread, as dm-snap's copy callback does, so a COW
    /// costs no trip through the worker. As dm-snap, it waits for the last copy of a burst
    /// (or a batch of ends), so a burst of COWs costs one durable area write per store.
    fn after_copy(&self, w: &Worker<Self>) -> bool {
        let ended = self.ended.fetch_add(1, Ordering::AcqRel) + 1;
        if self.copies.load(Ordering::Acquire) > 0 && ended < COMMIT_BATCH {
            // A later end commits this one too.
            return false;
        }
        self.ended.store(0, Ordering::Release);
        self.commit_here(w)
    }

    /// A lone writer's copy commits on the CPU that completed it.
    fn wants_after_direct(&self, slot: usize) -> bool {
        self.lone
            .get(slot)
            .is_some_and(|l| l.load(Ordering::Acquire))
    }

    fn after_direct(&self, w: &Worker<Self>) -> bool {
        self.commit_here(w)
    }

    /// A lone writer's COW goes on in the submitter's task where its I/O ends there: the
    /// commit's area write is asynchronous, and the origin writes it releases go straight to
    /// the origin.
    fn after_direct_now(&self, w: &Worker<Self>) -> bool {
        let Some(mut st) = self.state.try_lock() else {
            return false;
        };
        self.harvest(&mut st);
        let mut done = self.finish_async(&mut st, true);
        done &= self.commit_async(&mut st, w);
        // A transient store's batch is published at once.
        done &= self.publish_written(&mut st, true);
        let poll = self.release(&mut st);
        let left = self.retry_now(&mut st);
        let wake = poll || left || self.work_left(&st);
        drop(st);
        if !done {
            // The copy queue's pass finishes it (and runs the worker if need be).
            return false;
        }
        if wake {
            w.wake();
        }
        true
    }

    fn async_written(&self, slot: usize, ok: bool) {
        if let Some(d) = self.area_done.get(slot) {
            d.store(if ok { 1 } else { 2 }, Ordering::Release);
        }
    }
}

impl OriginCore {
    /// Harvests ended copies, commits, releases and maps the origin writes that waited, in
    /// the calling (process) context; returns whether the worker must run.
    fn commit_here(&self, w: &Worker<Self>) -> bool {
        let mut starts = Starts::new();
        let mut st = self.state.lock();
        self.harvest(&mut st);
        self.finish_async(&mut st, false);
        st = self.commit_ready(st);
        let poll = self.release(&mut st);
        self.origin_bios(&mut st, &mut starts);
        let wake = poll || starts.is_full() || self.work_left(&st);
        drop(st);
        starts.issue(self, w);
        wake
    }
}
