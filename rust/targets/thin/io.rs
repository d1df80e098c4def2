// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The pool worker: maps deferred thin bios, provisions and breaks sharing through the bio
//! prison, and commits.
//!
//! A write that needs a new data block takes the cell of its virtual block and a free data
//! block; the block gets its data first (kcopyd zeroes it or copies the shared block, or the
//! write itself covers the whole block), and only when that is on the data device is the
//! mapping inserted and the cell released: the holder's write goes to the new block and the
//! bios that waited in the cell are mapped again. A commit flushes the data device before it
//! writes the metadata, so a committed mapping never points at unwritten data. Commits happen
//! when a flush or FUA bio needs one, and otherwise once a second while anything changed.

use super::{
    pool::{Mode, PoolCore, PoolState, ThinQueue},
    prison::{Cell, Fill},
};
use crate::dm::{
    bio::{BioList, IoStatus, OwnedBio, ReqOp},
    kcopyd::Area,
    time,
    worker::{Job, Worker},
};
use crate::pdata::error::Error as PdError;
use core::sync::atomic::Ordering;
use kernel::sync::Arc;

/// Tag of a whole-block overwrite in flight; the low bits name its cell.
pub const TAG_OVERWRITE: u64 = 1 << 62;
/// Tag of a read of a shared block in flight; the low bit is its epoch.
pub const TAG_SHARED_READ: u64 = 1 << 61;
const TAG_VALUE: u64 = (1 << 32) - 1;

/// Metadata that changed is committed at least this often.
const COMMIT_PERIOD_MS: u64 = 1000;

/// What a run does with bios once the state lock is dropped.
#[derive(Default)]
struct Batch {
    /// Remapped bios to submit now.
    submit: BioList,
    /// Remapped FUA writes, submitted once the metadata is committed.
    after_commit: BioList,
    /// Empty flushes (remapped to the data device): a commit flushes the data device for
    /// them; with nothing to commit they are submitted.
    flushes: BioList,
    /// Whole-block FUA overwrites already written, ended once their mapping is committed.
    end_after_commit: BioList,
}

/// Whether to go on with the next bio of a queue.
enum Flow {
    Next,
    /// No free cell: the bio goes back and the queue waits for a cell to be released.
    Stall(OwnedBio),
}

fn end_all(mut bios: BioList, status: IoStatus) {
    while let Some(b) = bios.pop() {
        b.end(status);
    }
}

fn submit_all(mut bios: BioList) {
    while let Some(b) = bios.pop() {
        b.submit();
    }
}

fn needs_commit_first(bio: &OwnedBio, st: &PoolState) -> bool {
    (bio.is_fua() || bio.is_preflush()) && st.dirty
}

impl PoolCore {
    /// Whether a mapping stamped `time` of `dev` is shared with a snapshot (made before the
    /// device's last snapshot). `None` after a metadata failure (the pool is failed).
    fn is_shared(&self, st: &mut PoolState, dev: u64, time: u32) -> Option<bool> {
        match st.md.details(dev) {
            Ok(Some(d)) => Some(time < d.snapshotted_time),
            Ok(None) => None,
            Err(e) => {
                st.fail("dm_thin_find_block", e);
                None
            }
        }
    }

    /// Maps one bio of queue `q`.
    fn process(
        &self,
        st: &mut PoolState,
        w: &Worker<Self>,
        q: &Arc<ThinQueue>,
        bio: OwnedBio,
        b: &mut Batch,
    ) -> Flow {
        if st.mode == Mode::Fail {
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        }
        let Some(data) = st.data_dev else {
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        };
        if bio.size() == 0 {
            bio.remap_to(&data, 0);
            b.flushes.push(bio);
            return Flow::Next;
        }
        let op = bio.op();
        if !matches!(op, ReqOp::Read | ReqOp::Write) {
            // The thin target asks dm core for no discard or write-zeroes bios.
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        }
        let bs = self.block_sectors;
        let v = bio.sector().wrapping_sub(q.begin);
        let (vblock, offset) = (
            v.checked_div(bs).unwrap_or(0),
            v.checked_rem(bs).unwrap_or(0),
        );
        // Data sectors cannot overflow: data blocks are below the pool length over `bs`.
        let at = |blk: u64| blk.wrapping_mul(bs);
        if let Some(c) = st.prison.find(q.dev, vblock) {
            if let Some(cell) = st.prison.get(c) {
                cell.waiting.push(bio);
            }
            return Flow::Next;
        }
        let found = match st.md.lookup(q.dev, vblock) {
            Ok(f) => f,
            Err(e) => {
                st.fail("dm_thin_find_block", e);
                bio.end(IoStatus::IoErr);
                return Flow::Next;
            }
        };
        let shared = match found {
            Some((_, time)) => match self.is_shared(st, q.dev, time) {
                Some(s) => s,
                None => {
                    bio.end(IoStatus::IoErr);
                    return Flow::Next;
                }
            },
            None => false,
        };
        if op == ReqOp::Read {
            match found {
                Some((d, _)) => {
                    if shared {
                        let bit = self.shared_reads.get();
                        bio.tag().store(TAG_SHARED_READ | bit, Ordering::Relaxed);
                    }
                    bio.remap_to(&data, at(d).wrapping_add(offset));
                    b.submit.push(bio);
                }
                None => {
                    bio.zero_fill();
                    bio.end(IoStatus::Ok);
                }
            }
            return Flow::Next;
        }
        if let (Some((d, _)), false) = (found, shared) {
            bio.remap_to(&data, at(d).wrapping_add(offset));
            if needs_commit_first(&bio, st) {
                b.after_commit.push(bio);
            } else {
                b.submit.push(bio);
            }
            return Flow::Next;
        }
        match st.mode {
            Mode::ReadOnly | Mode::Fail => {
                bio.end(IoStatus::IoErr);
                return Flow::Next;
            }
            Mode::OutOfDataSpace => {
                bio.end(IoStatus::NoSpace);
                return Flow::Next;
            }
            Mode::Write => {}
        }
        let Some(c) = st.prison.take(q.dev, vblock) else {
            return Flow::Stall(bio);
        };
        let new = match st.md.alloc_data_block() {
            Ok(n) => n,
            Err(PdError::NoSpace) => {
                st.prison.release(c);
                st.set_mode(Mode::OutOfDataSpace);
                bio.end(IoStatus::NoSpace);
                return Flow::Next;
            }
            Err(e) => {
                st.prison.release(c);
                st.fail("dm_pool_alloc_data_block", e);
                bio.end(IoStatus::IoErr);
                return Flow::Next;
            }
        };
        st.dirty = true;
        let whole = offset == 0 && bio.sectors() == bs;
        let fill = match found {
            _ if whole => Fill::Overwrite,
            Some(_) => Fill::Copy,
            None if st.features.zero_new_blocks => Fill::Zero,
            None => Fill::None,
        };
        // Breaking sharing drops a reference to the old block: shared reads issued before
        // must finish first (see `DeferredSet`).
        let quiesce = found.map(|_| self.shared_reads.close());
        let Some(cell) = st.prison.get(c) else {
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        };
        cell.queue = Some(q.clone());
        cell.block = new;
        cell.fill = fill;
        cell.quiesce = quiesce;
        match (fill, found) {
            (Fill::Overwrite, _) => {
                bio.tag().store(TAG_OVERWRITE | c as u64, Ordering::Relaxed);
                bio.remap_to(&data, at(new));
                b.submit.push(bio);
            }
            (Fill::Copy, Some((old, _))) => {
                cell.holder = Some(bio);
                let from = Area {
                    dev: &data,
                    sector: at(old),
                };
                let to = Area {
                    dev: &data,
                    sector: at(new),
                };
                w.copy(c, from, to, bs);
            }
            (Fill::Zero, _) => {
                cell.holder = Some(bio);
                w.zero(c, &data, at(new), bs);
            }
            _ => {
                cell.holder = Some(bio);
                cell.data_done = true;
                cell.data_ok = true;
                self.try_finish(st, c, b);
            }
        }
        Flow::Next
    }

    /// Inserts the mapping of cell `c` if its data is written and the shared reads it waits
    /// for have drained, then releases the cell.
    fn try_finish(&self, st: &mut PoolState, c: usize, b: &mut Batch) {
        let Some(cell) = st.prison.get(c) else { return };
        if !cell.data_done {
            return;
        }
        if let Some(e) = cell.quiesce {
            if !self.shared_reads.drained(e) {
                return;
            }
        }
        let Some(cell) = st.prison.release(c) else {
            return;
        };
        let Cell {
            dev,
            vblock,
            queue,
            block,
            fill,
            holder,
            waiting,
            data_ok,
            ..
        } = cell;
        let data = st.data_dev;
        let inserted = match (st.mode, data) {
            (Mode::Write | Mode::OutOfDataSpace, Some(_)) if data_ok => {
                let time = st.md.superblock().time;
                match st.md.insert(dev, vblock, block, time) {
                    Ok(()) => true,
                    Err(e) => {
                        st.fail("dm_thin_insert_block", e);
                        false
                    }
                }
            }
            (Mode::Write | Mode::OutOfDataSpace, _) => {
                // The data never reached the block: give it back.
                if let Err(e) = st.md.dec_data_block(block) {
                    st.fail("dm_pool_dec_data_range", e);
                }
                false
            }
            // Read-only and failed pools change no metadata.
            _ => false,
        };
        st.dirty = true;
        let (Some(data), true) = (data, inserted) else {
            if let Some(h) = holder {
                h.tag().store(0, Ordering::Relaxed);
                h.end(IoStatus::IoErr);
            }
            end_all(waiting, IoStatus::IoErr);
            return;
        };
        if let Some(h) = holder {
            let commit_first = needs_commit_first(&h, st);
            if fill == Fill::Overwrite {
                h.tag().store(0, Ordering::Relaxed);
                if commit_first {
                    b.end_after_commit.push(h);
                } else {
                    h.end(IoStatus::Ok);
                }
            } else {
                let begin = queue.as_ref().map_or(0, |q| q.begin);
                let bs = self.block_sectors;
                let off = h.sector().wrapping_sub(begin).checked_rem(bs).unwrap_or(0);
                h.remap_to(&data, block.wrapping_mul(bs).wrapping_add(off));
                if commit_first {
                    b.after_commit.push(h);
                } else {
                    b.submit.push(h);
                }
            }
        }
        match queue {
            Some(q) => q.retry(waiting),
            None => end_all(waiting, IoStatus::IoErr),
        }
    }

    /// Takes the ends of kcopyd jobs and of whole-block overwrites, and cells whose shared
    /// reads have drained, and finishes their mappings.
    fn finish_mappings(&self, st: &mut PoolState, b: &mut Batch) {
        loop {
            // Popped on its own line: the spinlock must not be held across `try_finish`.
            let next = self.completions.lock().pop();
            let Some((c, ok)) = next else { break };
            if let Some(cell) = st.prison.get(c) {
                cell.data_done = true;
                cell.data_ok = ok;
            }
            self.try_finish(st, c, b);
        }
        let mut done = core::mem::take(&mut *self.overwritten.lock());
        while let Some(bio) = done.pop() {
            let tag = bio.tag().load(Ordering::Relaxed);
            let c = (tag & TAG_VALUE) as usize;
            let ok = bio.status_ok();
            match st.prison.get(c) {
                Some(cell) if tag & TAG_OVERWRITE != 0 && cell.holder.is_none() => {
                    cell.holder = Some(bio);
                    cell.data_done = true;
                    cell.data_ok = ok;
                    self.try_finish(st, c, b);
                }
                _ => {
                    bio.tag().store(0, Ordering::Relaxed);
                    bio.end(IoStatus::IoErr);
                }
            }
        }
        if st.prison.is_busy() {
            for c in 0..super::prison::CELLS {
                let waiting = st
                    .prison
                    .get(c)
                    .is_some_and(|cell| cell.data_done && cell.quiesce.is_some());
                if waiting {
                    self.try_finish(st, c, b);
                }
            }
        }
    }

    /// The queue in slot `i` of the thin list and its queued bios; `None` past the end.
    /// Takes no allocation: the worker is on the I/O path.
    fn take_slot(&self, i: usize) -> Option<Option<(Arc<ThinQueue>, BioList)>> {
        let thins = self.thins.lock();
        let slot = thins.get(i)?;
        Some(slot.as_ref().map(|q| (q.clone(), q.take())))
    }

    /// Maps the queued bios of every thin device, until no cell is free.
    fn process_queues(&self, st: &mut PoolState, w: &Worker<Self>, b: &mut Batch) {
        let mut i = 0;
        // Lock order: state, then thins (as messages take them).
        while let Some(slot) = self.take_slot(i) {
            i += 1;
            let Some((q, mut bios)) = slot else { continue };
            while let Some(bio) = bios.pop() {
                if let Flow::Stall(bio) = self.process(st, w, &q, bio, b) {
                    bios.push_front(bio);
                    q.retry(bios);
                    return;
                }
            }
        }
    }
}

impl Job for PoolCore {
    fn run(&self, w: &Worker<Self>) {
        let mut b = Batch::default();
        let mut st = self.state.lock();
        self.finish_mappings(&mut st, &mut b);
        self.process_queues(&mut st, w, &mut b);
        let waiting =
            !b.after_commit.is_empty() || !b.flushes.is_empty() || !b.end_after_commit.is_empty();
        let since = time::now_ms().saturating_sub(st.last_commit_ms);
        let due = st.dirty && since >= COMMIT_PERIOD_MS;
        let dirty = st.dirty;
        let committed = if waiting || due { st.commit() } else { true };
        if st.dirty && st.mode == Mode::Write {
            let left = COMMIT_PERIOD_MS
                .saturating_sub(since)
                .clamp(1, COMMIT_PERIOD_MS);
            w.wake_after(left as u32);
        }
        drop(st);
        submit_all(b.submit);
        if committed {
            submit_all(b.after_commit);
            end_all(b.end_after_commit, IoStatus::Ok);
            if dirty {
                // The commit flushed the data device.
                end_all(b.flushes, IoStatus::Ok);
            } else {
                submit_all(b.flushes);
            }
        } else {
            end_all(b.after_commit, IoStatus::IoErr);
            end_all(b.end_after_commit, IoStatus::IoErr);
            end_all(b.flushes, IoStatus::IoErr);
        }
    }

    fn copied(&self, slot: usize, ok: bool) {
        self.completions.lock().push(slot, ok);
    }
}
