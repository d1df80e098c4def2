// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The metadata space map: counts the blocks of the metadata device and lives in them.
//!
//! Its index (up to 255 bitmaps) is kept in memory and written to one index block at
//! commit. Changing a count shadows a bitmap block or an overflow-tree node, which allocates
//! a block and drops a reference on another: two more count changes. Those nested changes
//! are queued while one is being applied and applied afterwards, in order; each bitmap is
//! shadowed at most once a transaction, so the queue drains. New blocks come from a cursor
//! that only moves forward within a transaction, so a block handed out while changes are
//! queued is never handed out twice.
//!
//! Growing the map ([`TransactionManager::sm_extend`]) works as `sm_metadata_extend` does:
//! while the new bitmaps are created and counted, blocks come straight from the cursor in
//! the new area without a count (the C bootstrap allocator), and the new blocks are counted
//! afterwards, round after round, until a round allocates nothing more.

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::btree::{self, Plain};
use super::super::bytes::copy;
use super::super::error::{corrupt, Error, Result};
use super::super::tm::{RecentShadows, TransactionManager};
use super::{bitmap_get, bitmap_set, find_common_free, split, IndexEntry, SmRoot};
use super::{ENTRIES_PER_BLOCK, ROOT_SIZE};

/// Bitmaps the index block holds.
pub const MAX_BITMAPS: usize = 255;

/// Largest metadata device the map can count, in blocks.
pub const MAX_BLOCKS: u64 = MAX_BITMAPS as u64 * ENTRIES_PER_BLOCK;

/// Offset of the first entry in the index block.
pub const INDEX_HEADER: usize = 16;

/// Count changes that can wait while one is applied; each change queues at most four.
const QUEUE: usize = 64;

#[derive(Clone, Copy, Debug)]
enum Op {
    Inc(BlockNr),
    Dec(BlockNr),
}

/// One state of the map: its root and the index of its bitmaps (`MAX_BITMAPS` entries, in
/// storage the block manager provides).
struct Ll<I> {
    root: SmRoot,
    index: I,
}

impl<I: AsRef<[IndexEntry]> + AsMut<[IndexEntry]>> Ll<I> {
    fn new<B: BlockManager<SpaceMapIndex = I>>(bm: &B) -> Result<Self> {
        let mut index = bm.new_index()?;
        if index.as_ref().len() != MAX_BITMAPS {
            return Err(Error::Invalid("space map index storage has the wrong size"));
        }
        index.as_mut().fill(IndexEntry::ZERO);
        Ok(Ll {
            root: SmRoot::default(),
            index,
        })
    }

    fn entry(&self, i: u64) -> Result<IndexEntry> {
        self.index
            .as_ref()
            .get(i as usize)
            .copied()
            .ok_or(Error::OutOfBounds(i * ENTRIES_PER_BLOCK))
    }
}

/// The in-memory state of the metadata space map.
pub struct MetadataSpaceMap<I> {
    cur: Ll<I>,
    old: Ll<I>,
    begin: BlockNr,
    applying: bool,
    /// Blocks come from the cursor uncounted (while growing the map).
    bootstrap: bool,
    queue: [Option<Op>; QUEUE],
    head: usize,
    len: usize,
}

impl<I> MetadataSpaceMap<I> {
    fn new(cur: Ll<I>, old: Ll<I>, begin: BlockNr) -> Self {
        MetadataSpaceMap {
            cur,
            old,
            begin,
            applying: false,
            bootstrap: false,
            queue: [None; QUEUE],
            head: 0,
            len: 0,
        }
    }

    /// The current root.
    pub fn root(&self) -> SmRoot {
        self.cur.root
    }

    /// The root packed for a superblock's `metadata_space_map_root`.
    pub fn packed_root(&self) -> [u8; ROOT_SIZE] {
        self.cur.root.pack()
    }

    fn push(&mut self, op: Op) -> Result<()> {
        if self.len == QUEUE {
            return Err(Error::Invalid(
                "metadata space map: too many nested changes",
            ));
        }
        let slot = (self.head + self.len) % QUEUE;
        if let Some(s) = self.queue.get_mut(slot) {
            *s = Some(op);
        }
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<Op> {
        if self.len == 0 {
            return None;
        }
        let op = self.queue.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % QUEUE;
        self.len -= 1;
        op
    }
}

impl<B: BlockManager> TransactionManager<B> {
    /// Formats the metadata space map over the whole device and returns the transaction
    /// manager; block `superblock` (which the caller writes at commit) and the map's own
    /// blocks start with one reference each.
    pub fn format(bm: B, superblock: BlockNr) -> Result<Self> {
        let nr_blocks = bm.nr_blocks().min(MAX_BLOCKS);
        let nr_bitmaps = nr_blocks.div_ceil(ENTRIES_PER_BLOCK);
        let index_block = superblock + 1;
        let first_bitmap = index_block + 1;
        let ref_root = first_bitmap + nr_bitmaps;
        if ref_root + 1 >= nr_blocks {
            return Err(Error::NoSpace);
        }
        let mut cur = Ll::new(&bm)?;
        let old = Ll::new(&bm)?;
        for i in 0..nr_bitmaps {
            let b = first_bitmap + i;
            bm.write_zeroed(b, Kind::Bitmap, |_| Ok(()))?;
            if let Some(e) = cur.index.as_mut().get_mut(i as usize) {
                *e = IndexEntry {
                    blocknr: b,
                    nr_free: ENTRIES_PER_BLOCK as u32,
                    none_free_before: 0,
                };
            }
        }
        bm.write_zeroed(index_block, Kind::Index, |_| Ok(()))?;
        bm.write_zeroed(ref_root, Kind::Node, |d| {
            btree::node::Node::init(d, true, 4);
            Ok(())
        })?;
        cur.root = SmRoot {
            nr_blocks,
            nr_allocated: 0,
            bitmap_root: index_block,
            ref_count_root: ref_root,
        };
        let mut tm = TransactionManager {
            bm,
            sm: MetadataSpaceMap::new(cur, old, ref_root + 1),
            recent: RecentShadows::new(),
        };
        // Nothing is committed yet, so every count change writes in place.
        for b in superblock..=ref_root {
            tm.sm_inc(b)?;
        }
        Ok(tm)
    }

    /// Opens the metadata space map whose root a superblock stored.
    pub fn open(bm: B, packed_root: &[u8]) -> Result<Self> {
        let root = SmRoot::unpack(packed_root);
        let location = root.bitmap_root;
        if root.nr_blocks > bm.nr_blocks() || root.nr_blocks > MAX_BLOCKS {
            return corrupt(0, "metadata space map is larger than the metadata device");
        }
        if root.nr_allocated > root.nr_blocks {
            return corrupt(
                0,
                "metadata space map has more blocks allocated than it counts",
            );
        }
        if location >= root.nr_blocks || root.ref_count_root >= root.nr_blocks {
            return corrupt(0, "metadata space map root points outside the device");
        }
        let mut ll = Ll::new(&bm)?;
        ll.root = root;
        bm.read(location, Kind::Index, |d| {
            for (i, e) in ll.index.as_mut().iter_mut().enumerate() {
                let mut raw = [0u8; IndexEntry::SIZE];
                copy(
                    &mut raw,
                    0,
                    d,
                    INDEX_HEADER + i * IndexEntry::SIZE,
                    IndexEntry::SIZE,
                );
                *e = IndexEntry::unpack(&raw);
            }
            Ok(())
        })?;
        for i in 0..root.nr_bitmaps() {
            let e = ll.entry(i)?;
            if e.blocknr >= root.nr_blocks
                || e.nr_free as u64 > ENTRIES_PER_BLOCK
                || e.none_free_before as u64 > ENTRIES_PER_BLOCK
            {
                return corrupt(location, "bad entry in the metadata space map index");
            }
        }
        let mut old = Ll::new(&bm)?;
        old.root = ll.root;
        copy_index(old.index.as_mut(), ll.index.as_ref());
        Ok(TransactionManager {
            bm,
            sm: MetadataSpaceMap::new(ll, old, 0),
            recent: RecentShadows::new(),
        })
    }

    fn ll_count(&self, old: bool, b: BlockNr) -> Result<u32> {
        let ll = if old { &self.sm.old } else { &self.sm.cur };
        if b >= ll.root.nr_blocks {
            return if old {
                Ok(0)
            } else {
                Err(Error::OutOfBounds(b))
            };
        }
        let (i, bit) = split(b);
        let e = ll.entry(i)?;
        let v = self
            .bm
            .read(e.blocknr, Kind::Bitmap, |d| Ok(bitmap_get(d, bit)))?;
        if v < 3 {
            return Ok(v);
        }
        let mut raw = [0u8; 4];
        if btree::lookup(&self.bm, ll.root.ref_count_root, b, &mut raw)? {
            Ok(u32::from_le_bytes(raw))
        } else {
            corrupt(
                e.blocknr,
                "overflowing reference count missing from its tree",
            )
        }
    }

    pub(crate) fn cur_count(&self, b: BlockNr) -> Result<u32> {
        self.ll_count(false, b)
    }

    pub(crate) fn old_count(&self, b: BlockNr) -> Result<u32> {
        self.ll_count(true, b)
    }

    pub(crate) fn sm_inc(&mut self, b: BlockNr) -> Result<()> {
        self.sm_op(Op::Inc(b))
    }

    pub(crate) fn sm_dec(&mut self, b: BlockNr) -> Result<()> {
        self.sm_op(Op::Dec(b))
    }

    fn sm_op(&mut self, op: Op) -> Result<()> {
        if self.sm.applying {
            return self.sm.push(op);
        }
        self.sm.applying = true;
        let mut r = self.sm_apply(op);
        while r.is_ok() {
            match self.sm.pop() {
                Some(op) => r = self.sm_apply(op),
                None => break,
            }
        }
        self.sm.applying = false;
        if r.is_err() {
            // The transaction is lost anyway; do not leak half-applied changes into the
            // next caller.
            while self.sm.pop().is_some() {}
        }
        r
    }

    fn sm_apply(&mut self, op: Op) -> Result<()> {
        match op {
            Op::Inc(b) => {
                let c = self.cur_count(b)?;
                let n = c
                    .checked_add(1)
                    .ok_or(Error::Invalid("reference count overflow"))?;
                self.sm_set(b, c, n)
            }
            Op::Dec(b) => {
                let c = self.cur_count(b)?;
                if c == 0 {
                    return corrupt(b, "dropping a reference to a free metadata block");
                }
                self.sm_set(b, c, c - 1)
            }
        }
    }

    fn sm_set(&mut self, b: BlockNr, old: u32, new: u32) -> Result<()> {
        let (i, bit) = split(b);
        let mut e = self.sm.cur.entry(i)?;
        let (bitmap, _) = self.shadow(e.blocknr, Kind::Bitmap)?;
        let mut root = self.sm.cur.root;
        if new >= 3 {
            root.ref_count_root = btree::insert(
                self,
                &mut Plain::<4>,
                root.ref_count_root,
                b,
                &new.to_le_bytes(),
            )?;
        } else if old >= 3 {
            root.ref_count_root = btree::remove(self, &mut Plain::<4>, root.ref_count_root, b)?.0;
        }
        self.bm.write(bitmap, Kind::Bitmap, |d| {
            bitmap_set(d, bit, new.min(3));
            Ok(())
        })?;
        e.blocknr = bitmap;
        e.account(bit, old, new);
        if old == 0 && new > 0 {
            root.nr_allocated += 1;
        } else if old > 0 && new == 0 {
            root.nr_allocated = root.nr_allocated.saturating_sub(1);
        }
        // Nested changes are only queued while this one runs, so nothing else moved the
        // root or this entry meanwhile.
        self.sm.cur.root = root;
        if let Some(slot) = self.sm.cur.index.as_mut().get_mut(i as usize) {
            *slot = e;
        }
        Ok(())
    }

    /// Hands out a block free now and at the last commit, with one reference.
    pub(crate) fn alloc(&mut self) -> Result<BlockNr> {
        let end = self.sm.cur.root.nr_blocks;
        if self.sm.bootstrap {
            // Everything from the cursor on is in the area being added, unused; the block is
            // counted by the round that follows (`sm_extend`).
            let b = self.sm.begin;
            if b >= end {
                return Err(Error::NoSpace);
            }
            self.sm.begin = b + 1;
            return Ok(b);
        }
        let b = match self.find_free(self.sm.begin, end)? {
            Some(b) => b,
            // Behind the cursor lie only blocks allocated and freed in this transaction;
            // they may be reused once no change is queued.
            None if !self.sm.applying => self.find_free(0, self.sm.begin)?.ok_or(Error::NoSpace)?,
            None => return Err(Error::NoSpace),
        };
        self.sm.begin = b + 1;
        self.sm_inc(b)?;
        Ok(b)
    }

    fn find_free(&self, begin: BlockNr, end: BlockNr) -> Result<Option<BlockNr>> {
        let mut b = begin;
        while b < end {
            let (i, _) = split(b);
            let start = i * ENTRIES_PER_BLOCK;
            let stop = (start + ENTRIES_PER_BLOCK).min(end);
            let e = self.sm.cur.entry(i)?;
            if e.nr_free > 0 {
                let from = (b - start).max(e.none_free_before as u64) as u32;
                let old = if start < self.sm.old.root.nr_blocks {
                    Some(self.sm.old.entry(i)?.blocknr)
                } else {
                    None
                };
                if let Some(bit) =
                    find_common_free(&self.bm, e.blocknr, old, from, (stop - start) as u32)?
                {
                    return Ok(Some(start + bit as u64));
                }
            }
            b = stop;
        }
        Ok(None)
    }

    /// Shadows the index block and writes the current index into it (`sm_ll_commit`).
    fn write_index(&mut self) -> Result<()> {
        let (index_block, _) = self.shadow(self.sm.cur.root.bitmap_root, Kind::Index)?;
        self.sm.cur.root.bitmap_root = index_block;
        let sm = &self.sm;
        self.bm.write(index_block, Kind::Index, |d| {
            for (i, e) in sm.cur.index.as_ref().iter().enumerate() {
                copy(
                    d,
                    INDEX_HEADER + i * IndexEntry::SIZE,
                    &e.pack(),
                    0,
                    IndexEntry::SIZE,
                );
            }
            Ok(())
        })
    }

    /// Writes the index block and makes the current state the committed one.
    pub(crate) fn sm_commit(&mut self) -> Result<()> {
        self.write_index()?;
        let MetadataSpaceMap { cur, old, .. } = &mut self.sm;
        old.root = cur.root;
        copy_index(old.index.as_mut(), cur.index.as_ref());
        self.sm.begin = 0;
        // Everything is committed now: the next transaction shadows it before writing.
        self.recent.clear();
        Ok(())
    }

    /// Grows the map by `extra_blocks` blocks, as `sm_metadata_extend` does.
    ///
    /// The new bitmaps and every block shadowed meanwhile (the index block, the bitmap
    /// counting the first new blocks) are allocated from the added area itself, in order,
    /// and the index block is written; the change becomes durable with the next commit.
    /// Refuses, changing nothing, a map of more than [`MAX_BLOCKS`] blocks or one larger
    /// than the device. Any later error (no room in the added area for the map's own
    /// blocks, I/O) leaves the transaction unusable: the caller must drop it and reopen.
    pub fn sm_extend(&mut self, extra_blocks: u64) -> Result<()> {
        let old_len = self.sm.cur.root.nr_blocks;
        let nr_blocks = old_len
            .checked_add(extra_blocks)
            .ok_or(Error::Invalid("metadata space map too large"))?;
        if nr_blocks > MAX_BLOCKS {
            return Err(Error::Invalid("metadata space map too large"));
        }
        if nr_blocks > self.bm.nr_blocks() {
            return Err(Error::Invalid(
                "metadata space map larger than the metadata device",
            ));
        }
        if self.sm.applying {
            return Err(Error::Invalid(
                "metadata space map extended while changing a count",
            ));
        }
        if extra_blocks == 0 {
            return Ok(());
        }
        // Every block from the old end on is unused, so the cursor can hand them out in
        // order without looking at the bitmaps.
        self.sm.begin = old_len;
        self.sm.bootstrap = true;
        let r = self.sm_extend_bootstrap(old_len, nr_blocks);
        self.sm.bootstrap = false;
        r
    }

    fn sm_extend_bootstrap(&mut self, old_len: u64, nr_blocks: u64) -> Result<()> {
        let first = self.sm.cur.root.nr_bitmaps();
        // Set before the bitmaps are allocated: they lie past the old end (`sm_ll_extend`).
        self.sm.cur.root.nr_blocks = nr_blocks;
        for i in first..self.sm.cur.root.nr_bitmaps() {
            let b = self.alloc()?;
            self.bm.write_zeroed(b, Kind::Bitmap, |_| Ok(()))?;
            let slot = self
                .sm
                .cur
                .index
                .as_mut()
                .get_mut(i as usize)
                .ok_or(Error::OutOfBounds(b))?;
            *slot = IndexEntry {
                blocknr: b,
                nr_free: ENTRIES_PER_BLOCK as u32,
                none_free_before: 0,
            };
        }
        // Count what the last round allocated; counting and writing the index may shadow
        // the index block and bitmaps, which allocates more, counted by the next round.
        // Each bitmap and the index block are shadowed at most once, so this ends.
        let mut counted = old_len;
        loop {
            let end = self.sm.begin;
            for b in counted..end {
                self.sm_inc(b)?;
            }
            counted = end;
            self.write_index()?;
            if self.sm.begin == counted {
                return Ok(());
            }
        }
    }
}

/// Copies an index (both are `MAX_BITMAPS` long); element by element, with no length check
/// that could panic in the kernel.
fn copy_index(dst: &mut [IndexEntry], src: &[IndexEntry]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}
