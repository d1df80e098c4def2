// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The bio prison: one cell per virtual block under change, holding the new mapping being
//! prepared and every bio that arrived for the block meanwhile, and range cells for discards
//! (dm-bio-prison's role).
//!
//! A cell is taken when a write needs a new data block (provisioning or breaking sharing);
//! until the block's data is on the data device and its mapping is inserted, every other bio
//! to that virtual block waits in the cell, so nothing reads or writes the block through a
//! mapping whose data is not written. The cells are preallocated with the pool and found
//! through a fixed hash table: nothing here allocates on the I/O path.

use crate::dm::{
    bio::{BioList, OwnedBio},
    dev::OpenBdev,
};
use crate::pdata::thin::device::DevId;
use kernel::{prelude::*, sync::Arc};

use super::pool::ThinQueue;

/// Cells per pool: new mappings in flight at once (dm-thin's mapping pool has 1024).
pub const CELLS: usize = 1024;
/// Range cells per pool: discards in flight at once.
pub const RANGES: usize = 64;
const BUCKETS: usize = 2 * CELLS;
const NONE: u32 = u32::MAX;

/// How a cell's new block gets its data.
///
/// For `Zero`, `Copy` and `Origin` only the parts of the block outside the holder's write
/// are zeroed or copied, while the holder's write goes to the new block at the same time
/// (the cell keeps everyone else off the block until all of it is written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The rest of the block zeroed beside the holder's partial write.
    Zero,
    /// The rest of the block copied from the shared block beside the holder's write.
    Copy,
    /// The holder covers the whole block and is written to it directly.
    Overwrite,
    /// The rest of the block copied from the external origin beside the holder's write.
    Origin,
    /// The origin ends inside the block: its part copied, the rest zeroed (if zeroing),
    /// then the holder's write goes to it.
    OriginPart,
    /// Nothing to do first (block zeroing is off).
    None,
}

impl Fill {
    /// Whether the holder's write goes to the new block with the fill (it comes back to the
    /// worker when written, and is ended once the mapping is in), rather than after it.
    pub fn holder_written(self) -> bool {
        matches!(
            self,
            Fill::Zero | Fill::Copy | Fill::Overwrite | Fill::Origin
        )
    }
}

/// One cell: a virtual block under change and its new mapping.
pub struct Cell {
    /// The thin device.
    pub dev: DevId,
    /// The virtual block.
    pub vblock: u64,
    /// The thin device's queue, where released bios go back.
    pub queue: Option<Arc<ThinQueue>>,
    /// The new data block.
    pub block: u64,
    /// The data device, kept open while the cell's copies run.
    pub data: Option<Arc<OpenBdev>>,
    /// How the new block gets its data.
    pub fill: Fill,
    /// The bio that took the cell (when [`Fill::holder_written`], set when its write
    /// completes).
    pub holder: Option<OwnedBio>,
    /// Bios that arrived while the cell was held.
    pub waiting: BioList,
    /// Copy and zero jobs, and the holder's write, still running for the block.
    pub pending: u8,
    /// The data is on the data device (or failed to get there).
    pub data_done: bool,
    /// Whether the data reached the data device.
    pub data_ok: bool,
    /// The shared-read epoch that must drain before the old block may be unmapped (breaking
    /// sharing frees a reference to it); `None` when nothing is unmapped.
    pub quiesce: Option<u64>,
    in_use: bool,
    next: u32,
}

impl Cell {
    const EMPTY: Cell = Cell {
        dev: 0,
        vblock: 0,
        queue: None,
        block: 0,
        data: None,
        fill: Fill::None,
        holder: None,
        waiting: BioList::new(),
        pending: 0,
        data_done: false,
        data_ok: false,
        quiesce: None,
        in_use: false,
        next: NONE,
    };
}

impl Cell {
    /// Records `n` ends of the cell's jobs (or its holder's write), `ok` if all succeeded.
    pub fn ended(&mut self, n: u8, ok: bool) {
        self.pending = self.pending.saturating_sub(n);
        self.data_ok &= ok;
        self.data_done = self.pending == 0;
    }
}

/// Where a discard is: waiting for earlier I/O, passing down, or ready to unmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardStep {
    /// Waiting for I/O issued before it (all-I/O epoch `quiesce`) to complete.
    Quiescing,
    /// Its bio carries the passdown discards to the data device.
    PassingDown,
    /// The passdown is done (or skipped): unmap the range.
    Unmap,
}

/// A range cell: the whole blocks `[begin, end)` of a device under discard. Bios to any of
/// them wait in it.
pub struct RangeCell {
    /// The thin device.
    pub dev: DevId,
    /// The first virtual block.
    pub begin: u64,
    /// The virtual block past the range.
    pub end: u64,
    /// The thin device's queue, where released bios go back.
    pub queue: Option<Arc<ThinQueue>>,
    /// The discard bio, while the worker holds it.
    pub bio: Option<OwnedBio>,
    /// Bios that arrived while the range was held.
    pub waiting: BioList,
    /// The all-I/O epoch that must drain before the discard goes on.
    pub quiesce: u64,
    /// Where the discard is.
    pub step: DiscardStep,
    in_use: bool,
}

impl RangeCell {
    const EMPTY: RangeCell = RangeCell {
        dev: 0,
        begin: 0,
        end: 0,
        queue: None,
        bio: None,
        waiting: BioList::new(),
        quiesce: 0,
        step: DiscardStep::Quiescing,
        in_use: false,
    };
}

/// The cells of a pool, found by (device, virtual block).
pub struct Prison {
    cells: KVec<Cell>,
    ranges: KVec<RangeCell>,
    buckets: KVec<u32>,
    /// A stack of free cell indices: the first `nfree` entries.
    free: KVec<u32>,
    nfree: usize,
}

fn bucket(dev: DevId, vblock: u64) -> usize {
    // Fibonacci hashing of the key; BUCKETS is a power of two.
    let h = (vblock ^ dev.rotate_left(40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 53) as usize & (BUCKETS - 1)
}

impl Prison {
    /// A prison with [`CELLS`] free cells.
    pub fn new() -> Result<Self> {
        let mut cells = KVec::with_capacity(CELLS, GFP_KERNEL)?;
        let mut free = KVec::with_capacity(CELLS, GFP_KERNEL)?;
        for i in 0..CELLS {
            cells.push(Cell::EMPTY, GFP_KERNEL)?;
            free.push((CELLS - 1 - i) as u32, GFP_KERNEL)?;
        }
        let mut buckets = KVec::with_capacity(BUCKETS, GFP_KERNEL)?;
        buckets.extend_with(BUCKETS, NONE, GFP_KERNEL)?;
        let mut ranges = KVec::with_capacity(RANGES, GFP_KERNEL)?;
        for _ in 0..RANGES {
            ranges.push(RangeCell::EMPTY, GFP_KERNEL)?;
        }
        Ok(Prison {
            cells,
            ranges,
            buckets,
            free,
            nfree: CELLS,
        })
    }

    /// The cell held for `vblock` of `dev`, if any.
    pub fn find(&self, dev: DevId, vblock: u64) -> Option<usize> {
        let mut i = *self.buckets.get(bucket(dev, vblock))?;
        while let Some(c) = self.cells.get(i as usize) {
            if c.dev == dev && c.vblock == vblock {
                return Some(i as usize);
            }
            i = c.next;
        }
        None
    }

    /// Takes a free cell for `vblock` of `dev` (which must have none); `None` when every
    /// cell is in use.
    pub fn take(&mut self, dev: DevId, vblock: u64) -> Option<usize> {
        let top = self.nfree.checked_sub(1)?;
        let i = *self.free.get(top)?;
        self.nfree = top;
        let b = bucket(dev, vblock);
        let head = self.buckets.get_mut(b)?;
        let c = self.cells.get_mut(i as usize)?;
        *c = Cell {
            dev,
            vblock,
            in_use: true,
            next: *head,
            ..Cell::EMPTY
        };
        *head = i;
        Some(i as usize)
    }

    /// The cell at `i`, if it is held.
    pub fn get(&mut self, i: usize) -> Option<&mut Cell> {
        self.cells.get_mut(i).filter(|c| c.in_use)
    }

    /// Releases cell `i`; returns what it still held (its queue, holder and waiting bios).
    pub fn release(&mut self, i: usize) -> Option<Cell> {
        let (dev, vblock) = {
            let c = self.get(i)?;
            (c.dev, c.vblock)
        };
        // Unlink from the hash chain.
        let b = bucket(dev, vblock);
        let mut prev: Option<u32> = None;
        let mut cur = *self.buckets.get(b)?;
        while cur != NONE && cur as usize != i {
            prev = Some(cur);
            cur = self.cells.get(cur as usize)?.next;
        }
        let next = self.cells.get(i)?.next;
        match prev {
            Some(p) => self.cells.get_mut(p as usize)?.next = next,
            None => *self.buckets.get_mut(b)? = next,
        }
        let c = core::mem::replace(self.cells.get_mut(i)?, Cell::EMPTY);
        if let Some(f) = self.free.get_mut(self.nfree) {
            *f = i as u32;
            self.nfree += 1;
        }
        Some(c)
    }

    /// Where a bio to `vblock` of `dev` must wait, if a cell or range cell holds the block.
    pub fn waiting_list(&mut self, dev: DevId, vblock: u64) -> Option<&mut BioList> {
        self.waiting_list_range(dev, vblock, vblock.saturating_add(1))
    }

    /// Where a bio to blocks `[begin, end)` of `dev` must wait, if any of them is held.
    pub fn waiting_list_range(&mut self, dev: DevId, begin: u64, end: u64) -> Option<&mut BioList> {
        if let Some(r) = self
            .ranges
            .iter()
            .position(|r| r.in_use && r.dev == dev && r.begin < end && begin < r.end)
        {
            return self.ranges.get_mut(r).map(|r| &mut r.waiting);
        }
        if self.nfree == CELLS {
            return None;
        }
        let c = (begin..end).find_map(|b| self.find(dev, b))?;
        self.cells.get_mut(c).map(|c| &mut c.waiting)
    }

    /// Takes a free range cell for blocks `[begin, end)` of `dev` (none of which may be held);
    /// `None` when every range cell is in use.
    pub fn take_range(&mut self, dev: DevId, begin: u64, end: u64) -> Option<usize> {
        let r = self.ranges.iter().position(|r| !r.in_use)?;
        let cell = self.ranges.get_mut(r)?;
        *cell = RangeCell {
            dev,
            begin,
            end,
            in_use: true,
            ..RangeCell::EMPTY
        };
        Some(r)
    }

    /// The range cell at `r`, if it is held.
    pub fn range(&mut self, r: usize) -> Option<&mut RangeCell> {
        self.ranges.get_mut(r).filter(|c| c.in_use)
    }

    /// Releases range cell `r`; returns what it held.
    pub fn release_range(&mut self, r: usize) -> Option<RangeCell> {
        self.range(r)?;
        Some(core::mem::replace(
            self.ranges.get_mut(r)?,
            RangeCell::EMPTY,
        ))
    }

    /// Whether any range cell is held.
    pub fn has_ranges(&self) -> bool {
        self.ranges.iter().any(|r| r.in_use)
    }

    /// How many cells are held.
    pub fn held(&self) -> usize {
        self.cells.len().saturating_sub(self.nfree)
    }

    /// Whether any cell is held.
    pub fn is_busy(&self) -> bool {
        self.held() > 0
    }
}
