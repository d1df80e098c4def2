// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The pool worker: maps deferred thin bios, provisions and breaks sharing through the bio
//! prison, discards, and commits.
//!
//! A write that needs a new data block takes the cell of its virtual block and a free data
//! block; the write goes to the new block at once while the rest of it is zeroed or copied
//! from the shared block (or the origin), and only when all of that is on the data
//! device is the mapping inserted and the cell released: the holder's write is ended and the
//! bios that waited in the cell are mapped again. A commit flushes the data device before it
//! writes the metadata, so a committed mapping never points at unwritten data. Commits happen
//! when a flush or FUA bio needs one, and otherwise once a second while anything changed.
//!
//! A discard holds a range cell over its whole blocks, waits for every bio issued before it
//! to complete, passes down the blocks no other device maps (the blocks stay mapped, so
//! nothing can reuse them meanwhile), then unmaps the range and releases the cell.

use super::{
    pool::{Mode, PoolCore, PoolState, ThinQueue},
    prison::{Cell, DiscardStep, Fill, RangeCell},
};
use crate::dm::{
    bio::{BioList, IoStatus, OwnedBio, ReqOp},
    dev::BlockDevice,
    kcopyd::Area,
    time,
    worker::{Job, Place, Worker},
};
use crate::pdata::{error::Error as PdError, thin::device::DevId};
use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc};

// A remapped bio's tag (its 8 bytes of per-bio data): what its completion must do.
/// The bio comes back to the worker (`end_io` returns it): a whole-block overwrite or a
/// discard whose passdown ends; the low 32 bits name its cell or range cell.
pub const TAG_RETURN: u64 = 1 << 62;
/// With `TAG_RETURN`: the bio is a discard.
const TAG_DISCARD: u64 = 1 << 61;
/// The bio is counted in the pool's all-I/O set, epoch bit at `ALL_IO_EPOCH_SHIFT`.
pub const TAG_ALL_IO: u64 = 1 << 60;
/// The bio reads a shared block, counted in the shared-read set, epoch bit at
/// `SHARED_EPOCH_SHIFT`.
pub const TAG_SHARED_READ: u64 = 1 << 59;
/// Where the all-I/O epoch bit is.
pub const ALL_IO_EPOCH_SHIFT: u32 = 40;
/// Where the shared-read epoch bit is.
pub const SHARED_EPOCH_SHIFT: u32 = 41;
const TAG_INDEX: u64 = (1 << 32) - 1;

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

/// A bio that needs a data block the pool does not have: held until space comes back
/// (`queue_if_no_space`), or failed with ENOSPC.
fn no_space(st: &mut PoolState, q: &ThinQueue, bio: OwnedBio) {
    if st.features.error_if_no_space {
        bio.end(IoStatus::NoSpace);
    } else {
        q.hold(bio);
        st.holding = true;
    }
}

/// Allocates a data block, raising the low water event as C does (free blocks before the
/// allocation at or below the mark, once per resume). With none free, commits first: blocks
/// freed in this transaction become free only then.
fn alloc_data_block(st: &mut PoolState) -> Result<u64, PdError> {
    let free = st.md.data_sm().nr_free();
    if free <= st.low_water_blocks && !st.low_water_triggered {
        st.low_water_triggered = true;
        st.warn_event("data");
    }
    if free == 0 && st.dirty && !st.commit() {
        return Err(PdError::NoSpace);
    }
    st.md.alloc_data_block()
}

/// A read of an unmapped block: from the external origin where it has the sectors (a read
/// straddling its end is zero-filled and cut to the origin's part), else zeroes. `v` is the
/// bio's sector in the thin device.
fn read_unmapped(st: &PoolState, q: &ThinQueue, bio: OwnedBio, v: u64, b: &mut Batch) {
    let Some(origin) = q.origin.as_ref() else {
        bio.zero_fill();
        bio.end(IoStatus::Ok);
        return;
    };
    let size = origin.size();
    let end = v.saturating_add(bio.sectors());
    if end <= size || !st.mode.writable() {
        // Read-only pools send the read to the origin as is, as C.
        bio.remap_to(origin.dev.bdev(), v);
        b.submit.push(bio);
    } else if v < size {
        bio.zero_fill();
        bio.truncate(size - v);
        bio.remap_to(origin.dev.bdev(), v);
        b.submit.push(bio);
    } else {
        bio.zero_fill();
        bio.end(IoStatus::Ok);
    }
}

fn needs_commit_first(bio: &OwnedBio, st: &PoolState) -> bool {
    (bio.is_fua() || bio.is_preflush()) && st.dirty
}

impl PoolCore {
    /// Remaps `bio` to `sector` of the data device, counting it in the all-I/O set; `tag`
    /// adds to its tag.
    fn remap(&self, bio: &OwnedBio, data: BlockDevice<'_>, sector: u64, tag: u64) {
        let bit = self.all_io.get();
        bio.tag().store(
            tag | TAG_ALL_IO | (bit << ALL_IO_EPOCH_SHIFT),
            Ordering::Relaxed,
        );
        bio.remap_to(data, sector);
    }

    /// Records `vblock → block` of `q`, a mapping that is not shared, for the `map` fast path.
    /// A table filled under an older generation, or grown past `map_cache_runs`, is emptied
    /// first.
    fn cache_mapping(&self, q: &ThinQueue, vblock: u64, block: u64) {
        let limit = crate::dm::params::map_cache_runs();
        let Ok(mut w) = q.map.writer() else { return };
        let generation = self.fast.generation.load(Ordering::Acquire);
        if q.map_generation.load(Ordering::Relaxed) != generation || q.map.room() >= limit {
            // Emptying allocates nothing.
            let _ = w.clear(GFP_KERNEL);
            q.map_generation.store(generation, Ordering::Release);
        }
        if limit == 0 {
            return;
        }
        match w.lookup(vblock) {
            Some(b) if b == block => {}
            Some(_) => {
                // Never two values for one block: drop the old one (all of them on failure).
                if w.remove_range(vblock, 1, GFP_KERNEL).is_err() {
                    let _ = w.clear(GFP_KERNEL);
                }
                let _ = w.insert(vblock, block, GFP_KERNEL);
            }
            // A failed insert only costs a later trip through the worker.
            None => {
                let _ = w.insert(vblock, block, GFP_KERNEL);
            }
        }
    }

    /// Forgets the fast-path mappings of blocks `begin..end` of device `dev` (any of its
    /// queues), before a discard unmaps them.
    fn uncache_range(&self, dev: DevId, begin: u64, end: u64) {
        self.for_each_queue(|q| {
            if q.dev != dev {
                return;
            }
            let Ok(mut w) = q.map.writer() else { return };
            if w.remove_range(begin, end - begin, GFP_KERNEL).is_err() {
                let _ = w.clear(GFP_KERNEL);
            }
        });
    }

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
        let Some(data_dev) = st.data_dev.clone() else {
            // No pool table is bound (between a table's destruction and the next
            // preresume): the bio waits for one.
            q.hold(bio);
            st.holding = true;
            return Flow::Next;
        };
        let data = data_dev.bdev();
        if bio.size() == 0 {
            bio.remap_to(data, 0);
            b.flushes.push(bio);
            return Flow::Next;
        }
        let op = bio.op();
        if op == ReqOp::Discard {
            return self.process_discard(st, q, bio);
        }
        if !matches!(op, ReqOp::Read | ReqOp::Write) {
            // The thin target asks dm core for no write-zeroes or secure-erase bios.
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        }
        let bs = self.block_sectors;
        let v = bio.sector().wrapping_sub(q.begin);
        let (vblock, offset) = self.split(v);
        // Data sectors cannot overflow: data blocks are below the pool length over `bs`.
        let at = |blk: u64| blk.wrapping_mul(bs);
        if let Some(waiting) = st.prison.waiting_list(q.dev, vblock) {
            waiting.push(bio);
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
        if let (Some((d, _)), false) = (found, shared) {
            self.cache_mapping(q, vblock, d);
        }
        if op == ReqOp::Read {
            match found {
                Some((d, _)) => {
                    let tag = if shared {
                        TAG_SHARED_READ | (self.shared_reads.get() << SHARED_EPOCH_SHIFT)
                    } else {
                        0
                    };
                    self.remap(&bio, data, at(d).wrapping_add(offset), tag);
                    b.submit.push(bio);
                }
                None => read_unmapped(st, q, bio, v, b),
            }
            return Flow::Next;
        }
        if let (Some((d, _)), false) = (found, shared) {
            self.remap(&bio, data, at(d).wrapping_add(offset), 0);
            if needs_commit_first(&bio, st) {
                b.after_commit.push(bio);
            } else {
                b.submit.push(bio);
            }
            return Flow::Next;
        }
        match st.mode {
            Mode::ReadOnly | Mode::OutOfMetadataSpace | Mode::Fail => {
                bio.end(st.io_error());
                return Flow::Next;
            }
            Mode::OutOfDataSpace => {
                no_space(st, q, bio);
                return Flow::Next;
            }
            Mode::Write => {}
        }
        let Some(c) = st.prison.take(q.dev, vblock) else {
            return Flow::Stall(bio);
        };
        let new = match alloc_data_block(st) {
            Ok(n) => n,
            Err(PdError::NoSpace) => {
                st.prison.release(c);
                st.set_mode(Mode::OutOfDataSpace);
                no_space(st, q, bio);
                return Flow::Next;
            }
            Err(e) => {
                st.prison.release(c);
                st.fail("dm_pool_alloc_data_block", e);
                bio.end(IoStatus::IoErr);
                return Flow::Next;
            }
        };
        // Not `dirty` yet: an allocation alone needs no commit (lost in a crash, the block is
        // free again), and C commits only once a mapping changed. Counting it made a periodic
        // commit fall between the allocation and the insert; when that commit failed, the
        // pool went read-only and the write failed where C's completes (debug kernel,
        // `thin_failure`).
        let whole = offset == 0 && bio.sectors() == bs;
        let zero = st.features.zero_new_blocks;
        // An unmapped block of a thin device with an external origin starts as the
        // origin's block, the part past the origin's end zeroed (or left, without zeroing).
        let origin = q.origin.as_ref().map(|o| (o.dev.bdev(), o.size()));
        let block_start = at(vblock);
        let fill = match (found, origin) {
            _ if whole => Fill::Overwrite,
            (Some(_), _) => Fill::Copy,
            (None, Some((_, size))) if block_start.saturating_add(bs) <= size => Fill::Origin,
            (None, Some((_, size))) if block_start < size => Fill::OriginPart,
            (None, _) if zero => Fill::Zero,
            (None, _) => Fill::None,
        };
        // Breaking sharing drops a reference to the old block: shared reads issued before
        // must finish first (see `DeferredSet`).
        let quiesce = found.map(|_| self.shared_reads.wait());
        let Some(cell) = st.prison.get(c) else {
            bio.end(IoStatus::IoErr);
            return Flow::Next;
        };
        cell.queue = Some(q.clone());
        cell.block = new;
        cell.fill = fill;
        cell.quiesce = quiesce;
        // The cell keeps the data device open while its copies run.
        cell.data = Some(data_dev.clone());
        cell.data_ok = true;
        // The source of the parts of the block outside the holder's write (`None`: zeroes).
        let source = match (fill, found, origin) {
            (Fill::Copy, Some((old, _)), _) => Some(Area {
                dev: data,
                sector: at(old),
            }),
            (Fill::Origin, _, Some((odev, _))) => Some(Area {
                dev: odev,
                sector: block_start,
            }),
            _ => None,
        };
        // A lone writer's fill runs here (its run is on the writer's CPU already); in a burst
        // it runs on another CPU while this one goes on mapping.
        let place = if self.lone_runs.is_lone() {
            Place::Here
        } else {
            Place::Spread
        };
        match (fill, origin) {
            _ if fill.holder_written() => {
                // The holder's write and the fill of the rest of the block run at once; the
                // cell is finished when all of them have ended.
                let end = offset.saturating_add(bio.sectors()).min(bs);
                cell.pending = 1;
                if fill != Fill::Overwrite {
                    for (from, to) in [(0, offset), (end, bs)] {
                        if to <= from {
                            continue;
                        }
                        cell.pending += 1;
                        let dst = Area {
                            dev: data,
                            sector: at(new).wrapping_add(from),
                        };
                        match source {
                            Some(src) => {
                                let src = Area {
                                    sector: src.sector.wrapping_add(from),
                                    ..src
                                };
                                w.copy_direct(c, src, dst, to - from, place);
                            }
                            None => w.zero_direct(c, data, dst.sector, to - from, place),
                        }
                    }
                }
                self.remap(
                    &bio,
                    data,
                    at(new).wrapping_add(offset),
                    TAG_RETURN | c as u64,
                );
                b.submit.push(bio);
            }
            (Fill::OriginPart, Some((odev, size))) => {
                cell.holder = Some(bio);
                let part = size.saturating_sub(block_start);
                cell.pending = if zero { 2 } else { 1 };
                let from = Area {
                    dev: odev,
                    sector: block_start,
                };
                let to = Area {
                    dev: data,
                    sector: at(new),
                };
                w.copy_direct(c, from, to, part, place);
                if zero {
                    w.zero_direct(
                        c,
                        data,
                        at(new).wrapping_add(part),
                        bs.saturating_sub(part),
                        place,
                    );
                }
            }
            _ => {
                cell.holder = Some(bio);
                cell.data_done = true;
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
            self.shared_reads.unwait();
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
        let data = st.data_dev.clone();
        let inserted = match (st.mode, &data) {
            (Mode::Write | Mode::OutOfDataSpace, Some(_)) if data_ok => {
                let time = st.md.superblock().time;
                match st.md.insert(dev, vblock, block, time) {
                    Ok(()) => {
                        if let Some(q) = queue.as_ref() {
                            if self.is_shared(st, dev, time) == Some(false) {
                                self.cache_mapping(q, vblock, block);
                            }
                        }
                        true
                    }
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
            if fill.holder_written() {
                h.tag().store(0, Ordering::Relaxed);
                if commit_first {
                    b.end_after_commit.push(h);
                } else {
                    h.end(IoStatus::Ok);
                }
            } else {
                let begin = queue.as_ref().map_or(0, |q| q.begin);
                let bs = self.block_sectors;
                let (_, off) = self.split(h.sector().wrapping_sub(begin));
                self.remap(&h, data.bdev(), block.wrapping_mul(bs).wrapping_add(off), 0);
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
        self.completions.take(|c, ends, ok| {
            if let Some(cell) = st.prison.get(c) {
                cell.ended(ends, ok);
            }
            self.try_finish(st, c, b);
        });
        let mut done = self.returned.take();
        while let Some(bio) = done.pop() {
            let tag = bio.tag().load(Ordering::Relaxed);
            let i = (tag & TAG_INDEX) as usize;
            if tag & TAG_DISCARD != 0 {
                match st.prison.range(i) {
                    Some(r) if r.bio.is_none() && r.step == DiscardStep::PassingDown => {
                        r.bio = Some(bio);
                        r.step = DiscardStep::Unmap;
                        self.try_discard(st, i);
                    }
                    _ => {
                        bio.tag().store(0, Ordering::Relaxed);
                        bio.end(IoStatus::IoErr);
                    }
                }
                continue;
            }
            let ok = bio.status_ok();
            match st.prison.get(i) {
                Some(cell) if tag & TAG_RETURN != 0 && cell.holder.is_none() => {
                    cell.holder = Some(bio);
                    cell.ended(1, ok);
                    self.try_finish(st, i, b);
                }
                _ => {
                    bio.tag().store(0, Ordering::Relaxed);
                    bio.end(IoStatus::IoErr);
                }
            }
        }
        if st.prison.has_ranges() {
            for r in 0..super::prison::RANGES {
                let quiescing = st
                    .prison
                    .range(r)
                    .is_some_and(|r| r.step == DiscardStep::Quiescing);
                if quiescing {
                    self.try_discard(st, r);
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

    /// Starts a discard: whole blocks only (a discard within one block does nothing, as in
    /// dm-thin); waits in any cell that holds one of its blocks.
    fn process_discard(&self, st: &mut PoolState, q: &Arc<ThinQueue>, bio: OwnedBio) -> Flow {
        if st.mode != Mode::Write && st.mode != Mode::OutOfDataSpace {
            // Read-only pools complete discards without unmapping anything.
            bio.end(IoStatus::Ok);
            return Flow::Next;
        }
        let v = bio.sector().wrapping_sub(q.begin);
        // Whole blocks only: from the first block boundary at or after `v`.
        let begin = match self.split(v) {
            (b, 0) => b,
            (b, _) => b.saturating_add(1),
        };
        let (end, _) = self.split(v.saturating_add(bio.sectors()));
        if end <= begin || !st.features.discard_enabled {
            bio.end(IoStatus::Ok);
            return Flow::Next;
        }
        if let Some(waiting) = st.prison.waiting_list_range(q.dev, begin, end) {
            waiting.push(bio);
            return Flow::Next;
        }
        let Some(r) = st.prison.take_range(q.dev, begin, end) else {
            return Flow::Stall(bio);
        };
        // Unpublished before the epoch closes: a fast-path bio either sees the blocks gone
        // (and waits in the cell) or is counted in the epoch the discard waits for.
        self.uncache_range(q.dev, begin, end);
        let quiesce = self.all_io.wait();
        if let Some(cell) = st.prison.range(r) {
            cell.queue = Some(q.clone());
            cell.bio = Some(bio);
            cell.quiesce = quiesce;
        }
        self.try_discard(st, r);
        Flow::Next
    }

    /// Moves discard `r` on as far as it can go now.
    fn try_discard(&self, st: &mut PoolState, r: usize) {
        let Some(cell) = st.prison.range(r) else {
            return;
        };
        if cell.step == DiscardStep::Quiescing {
            if !self.all_io.drained(cell.quiesce) {
                return;
            }
            self.all_io.unwait();
            self.pass_down(st, r);
            return;
        }
        if cell.step != DiscardStep::Unmap {
            return;
        }
        let Some(cell) = st.prison.release_range(r) else {
            return;
        };
        let RangeCell {
            dev,
            begin,
            end,
            queue,
            bio,
            waiting,
            ..
        } = cell;
        let mut status = IoStatus::Ok;
        if matches!(st.mode, Mode::Write | Mode::OutOfDataSpace) {
            for vblock in begin..end {
                match st.md.remove(dev, vblock) {
                    Ok(true) => st.dirty = true,
                    Ok(false) => {}
                    Err(e) => {
                        st.fail("dm_thin_remove_range", e);
                        status = IoStatus::IoErr;
                        break;
                    }
                }
            }
        }
        if let Some(bio) = bio {
            bio.tag().store(0, Ordering::Relaxed);
            bio.end(status);
        }
        match queue {
            Some(q) => q.retry(waiting),
            None => end_all(waiting, IoStatus::IoErr),
        }
    }

    /// Passes down to the data device the blocks of discard `r` that no other device maps,
    /// in runs of consecutive data blocks, chained to the discard bio; the bio comes back
    /// through `end_io` when they are done.
    fn pass_down(&self, st: &mut PoolState, r: usize) {
        let bs = self.block_sectors;
        let data = st.data_dev.clone();
        let passdown = st.features.discard_passdown;
        let Some(cell) = st.prison.range(r) else {
            return;
        };
        let (dev, begin, end) = (cell.dev, cell.begin, cell.end);
        let Some(bio) = cell.bio.take() else {
            return;
        };
        cell.step = DiscardStep::PassingDown;
        // A snapshot shares its origin's btree nodes, not (until a node is copied) the data
        // blocks' reference counts: a block mapped before the device's last snapshot may be
        // shared even with a count of one, so only newer blocks with one reference go down.
        let snapshotted = match st.md.details(dev) {
            Ok(Some(d)) => Some(d.snapshotted_time),
            _ => None,
        };
        if let (Some(data), true, Some(snapshotted)) =
            (data.as_ref().map(|d| d.bdev()), passdown, snapshotted)
        {
            let mut run: Option<(u64, u64)> = None;
            for vblock in begin..end {
                let d = match st.md.lookup(dev, vblock) {
                    Ok(Some((d, time))) if time >= snapshotted => Some(d),
                    Ok(_) => None,
                    Err(e) => {
                        st.fail("dm_thin_find_mapped_range", e);
                        break;
                    }
                };
                let unshared = d.filter(|&d| st.md.data_block_count(d).is_ok_and(|n| n == 1));
                match (run, unshared) {
                    (Some((start, len)), Some(d)) if start.wrapping_add(len) == d => {
                        run = Some((start, len + 1));
                    }
                    (_, next) => {
                        if let Some((start, len)) = run {
                            bio.chain_discard(data, start.wrapping_mul(bs), len.wrapping_mul(bs));
                        }
                        run = next.map(|d| (d, 1));
                    }
                }
            }
            if let Some((start, len)) = run {
                bio.chain_discard(data, start.wrapping_mul(bs), len.wrapping_mul(bs));
            }
        }
        bio.tag()
            .store(TAG_RETURN | TAG_DISCARD | r as u64, Ordering::Relaxed);
        // Comes back to `finish_mappings` once the chained discards are done.
        bio.end_chained();
    }

    /// The queue in slot `i` of the thin list and its queued bios; `None` past the end.
    /// Takes no allocation: the worker is on the I/O path.
    fn take_slot(&self, i: usize) -> Option<Option<(Arc<ThinQueue>, BioList)>> {
        let thins = self.thins.lock();
        let slot = thins.get(i)?;
        Some(slot.as_ref().map(|q| (q.clone(), q.take())))
    }

    /// Maps the queued bios of every thin device, until no cell is free.
    /// Returns how many bios it took (`usize::MAX` when it stopped for want of a cell).
    fn process_queues(&self, st: &mut PoolState, w: &Worker<Self>, b: &mut Batch) -> usize {
        let mut i = 0;
        let mut n = 0;
        // Lock order: state, then thins (as messages take them).
        while let Some(slot) = self.take_slot(i) {
            i += 1;
            let Some((q, mut bios)) = slot else { continue };
            while let Some(bio) = bios.pop() {
                n += 1;
                if let Flow::Stall(bio) = self.process(st, w, &q, bio, b) {
                    bios.push_front(bio);
                    q.retry(bios);
                    return usize::MAX;
                }
            }
        }
        n
    }
}

/// How long bios wait for data space before they fail (seconds; 0: forever), as dm-thin's
/// `no_space_timeout` module parameter (this module's parameter of the same name).
fn no_space_timeout_ms() -> u64 {
    u64::from(crate::dm::params::no_space_timeout_secs()).saturating_mul(1000)
}

impl PoolCore {
    /// Applies `f` to the queue of every active thin device (no allocation, no lock held
    /// while `f` runs).
    pub(super) fn for_each_queue(&self, mut f: impl FnMut(&Arc<ThinQueue>)) {
        let mut i = 0;
        loop {
            let q = {
                let thins = self.thins.lock();
                match thins.get(i) {
                    Some(slot) => slot.clone(),
                    None => break,
                }
            };
            i += 1;
            if let Some(q) = q {
                f(&q);
            }
        }
    }

    /// Gives held bios back to the worker when space is back, fails them when the pool
    /// cannot take them any more (read-only, failed, or the no-space timeout passed), and
    /// raises the metadata low water event.
    fn held_bios(&self, st: &mut PoolState) -> Option<u32> {
        let mut next = None;
        if st.release_held {
            st.release_held = false;
            st.holding = false;
            self.for_each_queue(|q| q.retry(q.take_held()));
        }
        if st.holding {
            let fail = match st.mode {
                Mode::ReadOnly | Mode::OutOfMetadataSpace | Mode::Fail => Some(st.io_error()),
                Mode::OutOfDataSpace if st.features.error_if_no_space => Some(IoStatus::NoSpace),
                Mode::OutOfDataSpace => {
                    let timeout = no_space_timeout_ms();
                    let since = st.no_space_since.unwrap_or(0);
                    let waited = time::now_ms().saturating_sub(since);
                    if timeout > 0 && waited >= timeout {
                        st.features.error_if_no_space = true;
                        st.log_mode(Mode::OutOfDataSpace);
                        st.raise_event();
                        Some(IoStatus::NoSpace)
                    } else {
                        if timeout > 0 {
                            next = Some((timeout - waited).min(u64::from(u32::MAX)) as u32);
                        }
                        None
                    }
                }
                Mode::Write => None,
            };
            if let Some(status) = fail {
                st.holding = false;
                self.for_each_queue(|q| end_all(q.take_held(), status));
            }
        }
        let (total, free) = st.md.metadata_space();
        let threshold = (total / 4).min(1024);
        if free <= threshold {
            if !st.metadata_low_triggered {
                st.metadata_low_triggered = true;
                st.warn_event("metadata");
            }
        } else {
            st.metadata_low_triggered = false;
        }
        next
    }
}

impl Job for PoolCore {
    fn run(&self, w: &Worker<Self>) {
        let mut b = Batch::default();
        let mut st = self.state.lock();
        self.finish_mappings(&mut st, &mut b);
        let held_wake = self.held_bios(&mut st);
        let mapped = self.process_queues(&mut st, w, &mut b);
        // A lone writer (each run finds one bio and one cell) has its runs on its own CPU.
        w.prefer_local(self.lone_runs.record(mapped <= 1 && st.prison.held() <= 1));
        let waiting =
            !b.after_commit.is_empty() || !b.flushes.is_empty() || !b.end_after_commit.is_empty();
        let since = time::now_ms().saturating_sub(st.last_commit_ms);
        let due = st.dirty && since >= COMMIT_PERIOD_MS;
        let dirty = st.dirty;
        let committed = if waiting || due { st.commit() } else { true };
        if st.dirty && matches!(st.mode, Mode::Write | Mode::OutOfDataSpace) {
            let left = COMMIT_PERIOD_MS
                .saturating_sub(since)
                .clamp(1, COMMIT_PERIOD_MS);
            w.wake_after(left as u32);
        }
        if let Some(ms) = held_wake {
            w.wake_after(ms.clamp(1, COMMIT_PERIOD_MS as u32));
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

    /// Lock-free, so it serves [`Job::direct_done`] in I/O completion context too.
    fn copied(&self, slot: usize, ok: bool) {
        self.completions.push(slot, ok);
    }
}
