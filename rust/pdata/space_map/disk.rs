// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The data space map: counts the blocks of a data device, stored in metadata blocks.
//!
//! Its bitmap index is a btree keyed by bitmap number with 16-byte index entries; bitmaps,
//! index nodes and overflow-tree nodes are metadata blocks shadowed through the
//! [`TransactionManager`]. Like the kernel's `sm_disk`, it never hands out a block that was
//! in use at the last commit.

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::btree::{self, Plain};
use super::super::error::{corrupt, Error, Result};
use super::super::tm::TransactionManager;
use super::ENTRIES_PER_BLOCK;
use super::{bitmap_get, bitmap_set, find_common_free, split, IndexEntry, SmRoot};

/// The data space map.
pub struct DiskSpaceMap {
    cur: SmRoot,
    old: SmRoot,
    begin: BlockNr,
}

impl DiskSpaceMap {
    /// Creates an empty map counting `nr_blocks` blocks.
    pub fn create<B: BlockManager>(tm: &mut TransactionManager<B>, nr_blocks: u64) -> Result<Self> {
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
        };
        sm.extend(tm, nr_blocks)?;
        Ok(sm)
    }

    /// Opens the map whose root a superblock stored.
    pub fn open<B: BlockManager>(tm: &TransactionManager<B>, packed_root: &[u8]) -> Result<Self> {
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
        })
    }

    /// The current root.
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
            self.cur.bitmap_root =
                btree::insert(tm, &mut Plain::<16>, self.cur.bitmap_root, i, &e.pack())?;
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

    fn lookup<B: BlockManager>(
        tm: &TransactionManager<B>,
        root: &SmRoot,
        b: BlockNr,
    ) -> Result<u32> {
        if b >= root.nr_blocks {
            return Err(Error::OutOfBounds(b));
        }
        let (i, bit) = split(b);
        let e = Self::entry(tm, root, i)?;
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

    /// The reference count of data block `b`.
    pub fn count<B: BlockManager>(&self, tm: &TransactionManager<B>, b: BlockNr) -> Result<u32> {
        Self::lookup(tm, &self.cur, b)
    }

    /// Adds a reference to data block `b`.
    pub fn inc<B: BlockManager>(
        &mut self,
        tm: &mut TransactionManager<B>,
        b: BlockNr,
    ) -> Result<()> {
        let c = self.count(tm, b)?;
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
        let c = self.count(tm, b)?;
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
        let mut e = Self::entry(tm, &self.cur, i)?;
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
        let before = e;
        e.blocknr = bitmap;
        e.account(bit, old, new);
        if e != before {
            self.cur.bitmap_root =
                btree::insert(tm, &mut Plain::<16>, self.cur.bitmap_root, i, &e.pack())?;
        }
        Ok(())
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
            let e = Self::entry(tm, &self.cur, i)?;
            if e.nr_free > 0 {
                let from = (b - start).max(e.none_free_before as u64) as u32;
                let old = if start < self.old.nr_blocks {
                    Some(Self::entry(tm, &self.old, i)?.blocknr)
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

    /// Makes the current state the committed one (everything is already in the btrees).
    pub fn commit(&mut self) {
        self.old = self.cur;
        self.begin = 0;
    }
}
