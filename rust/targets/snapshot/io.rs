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

use super::origin::{CowState, OriginCore, Snapshot, MERGE_SLOT, PE_SLOTS};
use crate::dm::{
    bio::{BioList, IoStatus, OwnedBio},
    kcopyd::Area,
    worker::{Job, Worker},
};
use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc};

/// Tag of a bio counted in its COW state's `tracked` slot (the slot is in the low bits).
pub const TAG_TRACKED: u64 = 1 << 62;
/// Tag of a full-chunk snapshot write standing in for a copy (the copy slot in the low bits).
pub const TAG_FULL: u64 = 1 << 61;
/// The slot bits of a tag.
pub const TAG_SLOT: u64 = 0xffff_ffff;

/// An exception being made, or a COW chunk being zeroed for a discard.
struct Pending {
    snap: Arc<Snapshot>,
    old: u64,
    new: u64,
    seq: u64,
    /// The copy ended (successfully or not).
    copied: Option<bool>,
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

/// No copy slot is free: the bio waits for one.
struct NoSlot;

/// What the worker keeps between runs.
pub struct WorkState {
    /// Every registered snapshot of the origin, largest chunk first.
    pub snaps: KVec<Arc<Snapshot>>,
    pes: KVec<Option<Pending>>,
    /// Origin writes to run through the snapshots again.
    retry: BioList,
    /// The merge, while a merge target is resumed.
    pub merge: Option<Merge>,
}

impl WorkState {
    /// An empty state with its copy slots.
    pub fn new() -> Result<Self> {
        let mut pes = KVec::with_capacity(PE_SLOTS, GFP_KERNEL)?;
        for _ in 0..PE_SLOTS {
            pes.push(None, GFP_KERNEL)?;
        }
        Ok(WorkState {
            snaps: KVec::new(),
            pes,
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
        self.pes.iter().position(|p| p.is_none())
    }

    fn pending(&self, cow: &CowState, chunk: u64) -> Option<usize> {
        self.pes
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.is_exception_of(cow, chunk)))
    }

    fn pe(&mut self, slot: usize) -> Option<&mut Pending> {
        self.pes.get_mut(slot).and_then(|p| p.as_mut())
    }

    fn take(&mut self, slot: usize) -> Option<Pending> {
        self.pes.get_mut(slot).and_then(|p| p.take())
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
    /// Records the end of a full-chunk write standing in for the copy of `slot`.
    pub fn full_done(&self, slot: usize, ok: bool) {
        if let Some(d) = self.done.get(slot) {
            d.store(if ok { 1 } else { 2 }, Ordering::Release);
        }
    }

    /// Takes back a full-chunk write from `end_io`.
    pub fn returned(&self, bio: OwnedBio) {
        self.returned.lock().push(bio);
    }

    fn harvest(&self, st: &mut WorkState) {
        let mut back = core::mem::take(&mut *self.returned.lock());
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
        for slot in 0..PE_SLOTS {
            let d = self.done[slot].swap(0, Ordering::AcqRel);
            if d == 0 {
                continue;
            }
            let ok = d == 1;
            let Some(pe) = st.pe(slot) else { continue };
            if pe.zero.is_some() {
                if let Some(bio) = st.take(slot).and_then(|mut p| p.zero.take()) {
                    bio.end(if ok { IoStatus::Ok } else { IoStatus::IoErr });
                }
                continue;
            }
            pe.copied = Some(ok);
        }
    }

    /// Commits ready exceptions, each COW device's in start order.
    fn commit_ready(&self, st: &mut WorkState) {
        loop {
            let first = st.pes.iter().position(|p| {
                p.as_ref().is_some_and(|p| {
                    p.ready() && p.seq == p.snap.cow.complete_seq.load(Ordering::Relaxed)
                })
            });
            let Some(first) = first else { return };
            let Some(snap) = st.pe(first).map(|p| p.snap.clone()) else {
                return;
            };
            let cow = snap.cow.clone();
            // The run of ready exceptions that follow in sequence.
            let mut batch = KVec::new();
            let mut seq = cow.complete_seq.load(Ordering::Relaxed);
            loop {
                let next = st.pes.iter().position(|p| {
                    p.as_ref().is_some_and(|p| {
                        p.ready() && p.seq == seq && core::ptr::eq(&*p.snap.cow, &*cow)
                    })
                });
                let Some(slot) = next else { break };
                if batch.push(slot, GFP_KERNEL).is_err() {
                    break;
                }
                seq += 1;
            }
            if batch.is_empty() {
                return;
            }
            let mut exceptions = KVec::with_capacity(batch.len(), GFP_KERNEL).ok();
            let mut all_ok = exceptions.is_some();
            for &slot in batch.iter() {
                if let Some(pe) = st.pe(slot) {
                    all_ok &= pe.copied == Some(true);
                    if let Some(ex) = exceptions.as_mut() {
                        let _ = ex.push((pe.old, pe.new), GFP_KERNEL);
                    }
                }
            }
            let mut ok = all_ok && cow.valid.load(Ordering::Acquire);
            if ok {
                let ex = exceptions.as_ref().map(|e| e.as_slice()).unwrap_or(&[]);
                let r = cow.store.lock().commit(cow.cow.bdev(), ex);
                if r.is_err() {
                    ok = false;
                }
            }
            if !ok {
                snap.invalidate(EIO);
            }
            let mut writer = if ok { cow.table.writer().ok() } else { None };
            for &slot in batch.iter() {
                let Some(pe) = st.pe(slot) else { continue };
                let mut done = ok;
                if done {
                    // Counted before it is published: an origin write that finds the
                    // exception also sees that it is not released yet.
                    let d = &cow.draining[super::origin::track_slot(pe.old)];
                    d.fetch_add(1, Ordering::AcqRel);
                    pe.draining = true;
                    done = match writer.as_mut() {
                        Some(w) => w.insert(pe.old, pe.new, GFP_KERNEL).is_ok(),
                        None => false,
                    };
                    if !done {
                        pe.snap.invalidate(ENOMEM);
                    }
                }
                pe.committed = Some(done && pe.snap.cow.valid.load(Ordering::Acquire));
            }
            drop(writer);
            cow.complete_seq.store(seq, Ordering::Relaxed);
        }
    }

    /// Releases committed exceptions whose chunk has no tracked read in flight; returns
    /// whether some wait for reads.
    fn release(&self, st: &mut WorkState) -> bool {
        let mut waiting = false;
        for slot in 0..PE_SLOTS {
            let Some(pe) = st.pe(slot) else { continue };
            let Some(ok) = pe.committed else { continue };
            if ok && pe.snap.cow.is_tracked(pe.old) {
                waiting = true;
                continue;
            }
            let Some(mut pe) = st.take(slot) else {
                continue;
            };
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

    /// Starts the copy of origin chunk `chunk` into a new exception of `s`. `Ok(None)`: the
    /// store is full.
    fn start_exception(
        &self,
        st: &mut WorkState,
        w: &Worker<Self>,
        s: &Arc<Snapshot>,
        chunk: u64,
        copy: bool,
    ) -> Result<Option<(usize, u64)>, NoSlot> {
        let slot = st.free_slot().ok_or(NoSlot)?;
        let cow_sectors = s.cow.cow.bdev().nr_sectors();
        let Some(new) = s.cow.store.lock().prepare(cow_sectors) else {
            return Ok(None);
        };
        let seq = s.cow.next_seq.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = st.pes.get_mut(slot) {
            let mut pe = Pending::new(s, chunk, new, seq);
            pe.full_expected = !copy;
            *p = Some(pe);
        }
        if copy {
            let from = chunk << s.cow.shift;
            let origin_sectors = self.bdev.bdev().nr_sectors();
            let count = (s.cow.chunk as u64).min(origin_sectors.saturating_sub(from));
            if count == 0 {
                self.full_done(slot, true);
                w.wake();
            } else {
                w.copy(
                    slot,
                    Area {
                        dev: self.bdev.bdev(),
                        sector: from,
                    },
                    Area {
                        dev: s.cow.cow.bdev(),
                        sector: new << s.cow.shift,
                    },
                    count,
                );
            }
        }
        Ok(Some((slot, new)))
    }

    /// dm-snap's `__origin_write`: makes sure every snapshot has (or is making) an
    /// exception for the origin chunk at `sector`. Returns a pending exception to wait for.
    fn origin_write(
        &self,
        st: &mut WorkState,
        w: &Worker<Self>,
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
            match self.start_exception(st, w, &s, chunk, true)? {
                Some((slot, _)) => {
                    wait.get_or_insert(slot);
                }
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
        w: &Worker<Self>,
        bio: OwnedBio,
    ) -> Result<(), OwnedBio> {
        match self.origin_write(st, w, bio.sector()) {
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

    fn origin_bios(&self, st: &mut WorkState, w: &Worker<Self>) {
        let mut list = core::mem::take(&mut st.retry);
        list.append(&mut self.queue.lock());
        while let Some(bio) = list.pop() {
            if let Err(bio) = self.origin_bio(st, w, bio) {
                list.push_front(bio);
                st.retry = list;
                return;
            }
        }
    }

    fn snapshot_write(
        &self,
        st: &mut WorkState,
        w: &Worker<Self>,
        s: &Arc<Snapshot>,
        bio: OwnedBio,
    ) -> Result<(), OwnedBio> {
        let cow = &s.cow;
        if bio.op() == crate::dm::bio::ReqOp::Discard {
            // `map` remapped it to its COW chunk, which it covers whole: zero the chunk.
            let Some(slot) = st.free_slot() else {
                return Err(bio);
            };
            let sector = bio.sector();
            if let Some(p) = st.pes.get_mut(slot) {
                let mut pe = Pending::new(s, u64::MAX, 0, 0);
                pe.zero = Some(bio);
                *p = Some(pe);
            }
            w.zero(slot, cow.cow.bdev(), sector, cow.chunk as u64);
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
        if st.free_slot().is_none() {
            return Err(bio);
        }
        let full = u64::from(bio.size()) == (cow.chunk as u64) << 9;
        match self.start_exception(st, w, s, chunk, !full) {
            Err(NoSlot) => Err(bio),
            Ok(None) => {
                if cow.store.lock().overflow_allowed() {
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
        w: &Worker<Self>,
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
        self.origin_bio(st, w, bio)
    }

    fn snapshot_bios(&self, st: &mut WorkState, w: &Worker<Self>) {
        let mut i = 0;
        while let Some(s) = st.snaps.get(i).cloned() {
            i += 1;
            let mut list = core::mem::take(&mut *s.queue.lock());
            while let Some(bio) = list.pop() {
                let r = if s.merge {
                    self.merge_write(st, w, &s, bio)
                } else {
                    self.snapshot_write(st, w, &s, bio)
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
    fn merge_step(&self, st: &mut WorkState, w: &Worker<Self>) -> bool {
        let Some(mut m) = st.merge.take() else {
            self.merge_busy.store(false, Ordering::Release);
            return false;
        };
        let poll = self.merge_advance(st, w, &mut m);
        if m.phase == Phase::Stopped {
            self.merge_busy.store(false, Ordering::Release);
        }
        st.merge = Some(m);
        poll
    }

    fn merge_advance(&self, st: &mut WorkState, w: &Worker<Self>, m: &mut Merge) -> bool {
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
                    if cow.store.lock().commit_merge(cow.cow.bdev(), n).is_err() {
                        pr_err!("device-mapper: snapshots: Write error in exception store: shutting down merge\n");
                        self.merge_fail(m);
                        return false;
                    }
                    if let Ok(mut wr) = cow.table.writer() {
                        for c in (old..old + n as u64).rev() {
                            match wr.remove(c, GFP_KERNEL) {
                                Ok(()) => {}
                                Err(super::exceptions::RemoveError::Middle(r)) => {
                                    pr_err!(
                                        "device-mapper: snapshots: Attempt to merge block {} from the middle of a chunk range [{} - {}]\n",
                                        c,
                                        r.old,
                                        r.old + r.len - 1
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
                    let dest = old << cow.shift;
                    let size = self.bdev.bdev().nr_sectors();
                    let count = ((n as u64) << cow.shift).min(size.saturating_sub(dest));
                    m.phase = Phase::Copying { old, n };
                    w.copy(
                        MERGE_SLOT,
                        Area {
                            dev: cow.cow.bdev(),
                            sector: new << cow.shift,
                        },
                        Area {
                            dev: self.bdev.bdev(),
                            sector: dest,
                        },
                        count,
                    );
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
                        if !matches!(self.origin_write(st, w, (old << cow.shift) + off), Ok(None)) {
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

impl Job for OriginCore {
    fn run(&self, w: &Worker<Self>) {
        let mut st = self.state.lock();
        self.harvest(&mut st);
        self.commit_ready(&mut st);
        let mut poll = self.release(&mut st);
        self.origin_bios(&mut st, w);
        poll |= self.merge_step(&mut st, w);
        self.snapshot_bios(&mut st, w);
        drop(st);
        if poll {
            w.wake_after(1);
        }
    }

    fn copied(&self, slot: usize, ok: bool) {
        if let Some(d) = self.done.get(slot) {
            d.store(if ok { 1 } else { 2 }, Ordering::Release);
        }
    }
}
