// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The data space map: counts the blocks of a data device, stored in metadata blocks.
//!
//! Its bitmap index is a btree keyed by bitmap number with 16-byte index entries; bitmaps,
//! index nodes and overflow-tree nodes are metadata blocks shadowed through the
//! [`TransactionManager`]. Like the kernel's `sm_disk`, it never hands out a block that was
//! in use at the last commit.
//!
//! Every allocation and reference change reads its bitmap's index entry and most change it;
//! a btree walk to read it and a shadowed insert to write it back, per change, were most of
//! the cost of provisioning a block. So the entries of the first `MAX_BITMAPS` bitmaps
//! (4.2 million blocks: 254 GiB of 64 KiB blocks) are kept in core between commits, as
//! `sm_disk` caches them: loaded on first use, written back to the btree at
//! [`DiskSpaceMap::commit`]. They live in the block manager's heap index storage (kernel
//! stacks are too small to move them around). Bitmaps past those are read and written
//! through the btree each time (`sm_disk`'s cache is hashed and serves any size: a pool
//! bigger than this one's reach pays the old cost for its later bitmaps).

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::btree::{self, Plain};
use super::super::error::{corrupt, Error, Result};
use super::super::tm::TransactionManager;
use super::metadata::MAX_BITMAPS;
use super::ENTRIES_PER_BLOCK;
use super::{bitmap_get, bitmap_set, find_common_free, split, IndexEntry, SmRoot};

/// Words of the bitmap of changed in-core entries.
const DIRTY_WORDS: usize = MAX_BITMAPS.div_ceil(64);

/// The data space map.
pub struct DiskSpaceMap<I> {
    /// The current map; its index btree lacks the entries `dirty` marks in `cur_index`.
    cur: SmRoot,
    old: SmRoot,
    begin: BlockNr,
    /// Current index entries by bitmap number; block 0 (the superblock, never a bitmap)
    /// marks an entry not loaded yet.
    cur_index: I,
    /// Entries of `cur_index` changed since they were loaded or written back.
    dirty: [u64; DIRTY_WORDS],
    /// The last committed index entries, loaded the same way.
    old_index: I,
}

impl<I: AsRef<[IndexEntry]> + AsMut<[IndexEntry]>> DiskSpaceMap<I> {
    /// Creates an empty map counting `nr_blocks` blocks.
    pub fn create<B: BlockManager<SpaceMapIndex = I>>(
        tm: &mut TransactionManager<B>,
        nr_blocks: u64,
    ) -> Result<Self> {
        let root = SmRoot {
            nr_blocks: 0,
            nr_allocated: 0,
            bitmap_root: btree::empty(tm, IndexEntry::SIZE)?,
            ref_count_root: btree::empty(tm, 4)?,
        };
        let mut sm = DiskSpaceMap {
            cur: root,
            old: root,
            begin: 0,
            cur_index: tm.bm().new_index()?,
            dirty: [0; DIRTY_WORDS],
            old_index: tm.bm().new_index()?,
        };
        sm.extend(tm, nr_blocks)?;
        Ok(sm)
    }

    /// Opens the map whose root a superblock stored.
    pub fn open<B: BlockManager<SpaceMapIndex = I>>(
        tm: &TransactionManager<B>,
        packed_root: &[u8],
    ) -> Result<Self> {
        let root = SmRoot::unpack(packed_root);
        let limit = tm.bm().nr_blocks();
        if root.bitmap_root >= limit || root.ref_count_root >= limit {
            return corrupt(0, "data space map root points outside the metadata device");
        }
        if root.nr_allocated > root.nr_blocks {
            return corrupt(0, "data space map has more blocks allocated than it counts");
        }
        Ok(DiskSpaceMap {
            cur: root,
            old: root,
            begin: 0,
            cur_index: tm.bm().new_index()?,
            dirty: [0; DIRTY_WORDS],
            old_index: tm.bm().new_index()?,
        })
    }

    /// The root as of the last [`Self::commit`] (changes since may still be cached only).
    pub fn root(&self) -> SmRoot {
        self.cur
    }

    /// Blocks counted.
    pub fn nr_blocks(&self) -> u64 {
        self.cur.nr_blocks
    }

    /// Blocks with no reference.
    pub fn nr_free(&self) -> u64 {
        self.cur.nr_blocks - self.cur.nr_allocated.min(self.cur.nr_blocks)
    }

    /// Grows the map by `extra` free blocks.
    pub fn extend<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        extra: u64,
    ) -> Result<()> {
        let nr_blocks = self
            .cur
            .nr_blocks
            .checked_add(extra)
            .ok_or(Error::Invalid("data space map too large"))?;
        let old_bitmaps = self.cur.nr_bitmaps();
        self.cur.nr_blocks = nr_blocks;
        for i in old_bitmaps..self.cur.nr_bitmaps() {
            let b = tm.new_block(Kind::Bitmap)?;
            let e = IndexEntry {
                blocknr: b,
                nr_free: ENTRIES_PER_BLOCK as u32,
                none_free_before: 0,
            };
            self.put_entry(tm, i, &e)?;
        }
        Ok(())
    }

    fn entry<B: BlockManager>(
        tm: &TransactionManager<B>,
        root: &SmRoot,
        i: u64,
    ) -> Result<IndexEntry> {
        let mut raw = [0u8; IndexEntry::SIZE];
        if !btree::lookup(tm.bm(), root.bitmap_root, i, &mut raw)? {
            return corrupt(root.bitmap_root, "data space map index entry missing");
        }
        let e = IndexEntry::unpack(&raw);
        if e.nr_free as u64 > ENTRIES_PER_BLOCK || e.none_free_before as u64 > ENTRIES_PER_BLOCK {
            return corrupt(root.bitmap_root, "bad data space map index entry");
        }
        Ok(e)
    }

    /// The in-core slot of bitmap `i`, if it has one (and a dirty bit).
    fn slot(index: &I, i: u64) -> Option<usize> {
        usize::try_from(i)
            .ok()
            .filter(|&s| s < index.as_ref().len() && s < DIRTY_WORDS * 64)
    }

    /// The current entry of bitmap `i`, in core or else from the btree (not loaded).
    fn peek<B: BlockManager>(&self, tm: &TransactionManager<B>, i: u64) -> Result<IndexEntry> {
        match Self::slot(&self.cur_index, i).and_then(|s| self.cur_index.as_ref().get(s)) {
            Some(e) if e.blocknr != 0 => Ok(*e),
            _ => Self::entry(tm, &self.cur, i),
        }
    }

    /// The current entry of bitmap `i`, loaded in core if it has a slot.
    fn cached<B: BlockManager>(
        &mut self,
        tm: &TransactionManager<B>,
        i: u64,
    ) -> Result<IndexEntry> {
        Self::load(&mut self.cur_index, tm, &self.cur, i)
    }

    /// The entry of bitmap `i` in `index` (the in-core entries of the map at `root`), read
    /// from the btree and kept there if it was not loaded yet.
    fn load<B: BlockManager>(
        index: &mut I,
        tm: &TransactionManager<B>,
        root: &SmRoot,
        i: u64,
    ) -> Result<IndexEntry> {
        let slot = Self::slot(index, i).and_then(|s| index.as_mut().get_mut(s));
        match slot {
            Some(e) if e.blocknr != 0 => Ok(*e),
            Some(e) => {
                *e = Self::entry(tm, root, i)?;
                Ok(*e)
            }
            None => Self::entry(tm, root, i),
        }
    }

    /// Records `e` as the new entry of bitmap `i` (which was `before`): in core if it has a
    /// slot, else in the btree.
    fn update<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        i: u64,
        before: IndexEntry,
        e: IndexEntry,
    ) -> Result<()> {
        if e == before {
            return Ok(());
        }
        match Self::slot(&self.cur_index, i) {
            Some(s) => {
                if let Some(slot) = self.cur_index.as_mut().get_mut(s) {
                    *slot = e;
                }
                if let Some(w) = self.dirty.get_mut(s / 64) {
                    *w |= 1 << (s % 64);
                }
            }
            None => self.put_entry(tm, i, &e)?,
        }
        Ok(())
    }

    /// Writes the entry of bitmap `i` to the index btree.
    fn put_entry<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        i: u64,
        e: &IndexEntry,
    ) -> Result<()> {
        self.cur.bitmap_root =
            btree::insert(tm, &mut Plain::<16>, self.cur.bitmap_root, i, &e.pack())?;
        Ok(())
    }

    /// The reference count of data block `b`.
    pub fn count<B: BlockManager>(&self, tm: &TransactionManager<B>, b: BlockNr) -> Result<u32> {
        let (i, bit) = self.split_checked(b)?;
        let e = self.peek(tm, i)?;
        Self::count_in(tm, &self.cur, &e, b, bit)
    }

    /// [`Self::count`], caching the index entry for the change that follows.
    fn count_cached<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        b: BlockNr,
    ) -> Result<u32> {
        let (i, bit) = self.split_checked(b)?;
        let e = self.cached(tm, i)?;
        Self::count_in(tm, &self.cur, &e, b, bit)
    }

    fn split_checked(&self, b: BlockNr) -> Result<(u64, u32)> {
        if b >= self.cur.nr_blocks {
            return Err(Error::OutOfBounds(b));
        }
        Ok(split(b))
    }

    /// The count of block `b`, entry `bit` of the bitmap `e` indexes.
    fn count_in<B: BlockManager>(
        tm: &TransactionManager<B>,
        root: &SmRoot,
        e: &IndexEntry,
        b: BlockNr,
        bit: u32,
    ) -> Result<u32> {
        let v = tm.read(e.blocknr, Kind::Bitmap, |d| Ok(bitmap_get(d, bit)))?;
        if v < 3 {
            return Ok(v);
        }
        let mut raw = [0u8; 4];
        if btree::lookup(tm.bm(), root.ref_count_root, b, &mut raw)? {
            Ok(u32::from_le_bytes(raw))
        } else {
            corrupt(
                e.blocknr,
                "overflowing data block count missing from its tree",
            )
        }
    }

    /// Adds a reference to data block `b`.
    pub fn inc<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        b: BlockNr,
    ) -> Result<()> {
        let c = self.count_cached(tm, b)?;
        let n = c
            .checked_add(1)
            .ok_or(Error::Invalid("reference count overflow"))?;
        self.set(tm, b, c, n)
    }

    /// Drops a reference to data block `b`.
    pub fn dec<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        b: BlockNr,
    ) -> Result<()> {
        let c = self.count_cached(tm, b)?;
        if c == 0 {
            return corrupt(
                self.cur.bitmap_root,
                "dropping a reference to a free data block",
            );
        }
        self.set(tm, b, c, c - 1)
    }

    fn set<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        b: BlockNr,
        old: u32,
        new: u32,
    ) -> Result<()> {
        let (i, bit) = split(b);
        let mut e = self.cached(tm, i)?;
        let before = e;
        let (bitmap, _) = tm.shadow(e.blocknr, Kind::Bitmap)?;
        if new >= 3 {
            self.cur.ref_count_root = btree::insert(
                tm,
                &mut Plain::<4>,
                self.cur.ref_count_root,
                b,
                &new.to_le_bytes(),
            )?;
        } else if old >= 3 {
            self.cur.ref_count_root =
                btree::remove(tm, &mut Plain::<4>, self.cur.ref_count_root, b)?.0;
        }
        tm.write(bitmap, Kind::Bitmap, |d| {
            bitmap_set(d, bit, new.min(3));
            Ok(())
        })?;
        if old == 0 && new > 0 {
            self.cur.nr_allocated += 1;
        } else if old > 0 && new == 0 {
            self.cur.nr_allocated = self.cur.nr_allocated.saturating_sub(1);
        }
        e.blocknr = bitmap;
        e.account(bit, old, new);
        self.update(tm, i, before, e)
    }

    /// Hands out a data block free now and at the last commit, with one reference.
    pub fn new_block<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
    ) -> Result<BlockNr> {
        let mut b = self.begin;
        let end = self.cur.nr_blocks;
        while b < end {
            let (i, _) = split(b);
            let start = i * ENTRIES_PER_BLOCK;
            let stop = (start + ENTRIES_PER_BLOCK).min(end);
            let e = self.cached(tm, i)?;
            if e.nr_free > 0 {
                let from = (b - start).max(e.none_free_before as u64) as u32;
                let old = if start < self.old.nr_blocks {
                    Some(Self::load(&mut self.old_index, tm, &self.old, i)?.blocknr)
                } else {
                    None
                };
                let found = find_common_free(tm.bm(), e.blocknr, old, from, (stop - start) as u32)?;
                if let Some(bit) = found {
                    let nb = start + bit as u64;
                    self.begin = nb + 1;
                    self.set(tm, nb, 0, 1)?;
                    return Ok(nb);
                }
            }
            b = stop;
        }
        Err(Error::NoSpace)
    }

    /// Writes the in-core changes to the index btree and makes the current state the
    /// committed one.
    pub fn commit<B: BlockManager>(&mut self, tm: &mut TransactionManager<B>) -> Result<()> {
        for w in 0..DIRTY_WORDS {
            while let Some(bits) = self.dirty.get(w).copied().filter(|&b| b != 0) {
                let s = w
                    .wrapping_mul(64)
                    .wrapping_add(bits.trailing_zeros() as usize);
                if let Some(e) = self.cur_index.as_ref().get(s).copied() {
                    self.put_entry(tm, s as u64, &e)?;
                }
                if let Some(d) = self.dirty.get_mut(w) {
                    *d &= bits.wrapping_sub(1);
                }
            }
        }
        self.old = self.cur;
        self.begin = 0;
        for (o, c) in self
            .old_index
            .as_mut()
            .iter_mut()
            .zip(self.cur_index.as_ref())
        {
            *o = *c;
        }
        Ok(())
    }
}
