// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The transaction manager: copy-on-write access to metadata blocks.
//!
//! A block that was part of the last committed state is never written: [`shadow`] copies it
//! to a block allocated in this transaction and drops a reference on the original. A block
//! allocated in this transaction and referenced once is already private and is written in
//! place. Commit writes every block, then the superblock; until the superblock lands, the
//! previous transaction is what a reader (or a crash) sees.
//!
//! The transaction manager owns the metadata space map, which allocates the blocks it is
//! itself stored in (see [`super::space_map::metadata`]).
//!
//! Like dm-transaction-manager's shadow table, a small cache remembers blocks this
//! transaction made ([`RecentShadows`]), so shadowing one again looks at no count: while it
//! is remembered its count is one and it was never committed.
//!
//! [`shadow`]: TransactionManager::shadow

use super::block::{BlockManager, BlockNr, Kind};
use super::error::{Error, Result};
use super::space_map::metadata::MetadataSpaceMap;
use super::space_map::SmRoot;

/// Blocks made in this transaction (by [`TransactionManager::shadow`] or
/// [`TransactionManager::new_block`], or found so by a shadow that read the counts) with one
/// reference: a direct-mapped cache, so a block may be forgotten early (shadowing it then
/// checks the counts), never kept too long.
/// Forgotten on any reference change from outside the space map and at commit.
pub(crate) struct RecentShadows {
    blocks: [BlockNr; Self::SLOTS],
}

impl RecentShadows {
    const SLOTS: usize = 64;
    /// Block 0 is the superblock, which is never shadowed in place: it marks a free slot.
    const EMPTY: BlockNr = 0;

    pub(crate) const fn new() -> Self {
        RecentShadows {
            blocks: [Self::EMPTY; Self::SLOTS],
        }
    }

    fn slot(b: BlockNr) -> usize {
        // Fibonacci hashing: neighbouring blocks land in different slots.
        (b.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % Self::SLOTS
    }

    fn contains(&self, b: BlockNr) -> bool {
        b != Self::EMPTY && self.blocks.get(Self::slot(b)) == Some(&b)
    }

    fn add(&mut self, b: BlockNr) {
        if let Some(s) = self.blocks.get_mut(Self::slot(b)) {
            *s = b;
        }
    }

    fn forget(&mut self, b: BlockNr) {
        if let Some(s) = self.blocks.get_mut(Self::slot(b)) {
            if *s == b {
                *s = Self::EMPTY;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.blocks = [Self::EMPTY; Self::SLOTS];
    }
}

/// Copy-on-write access to the blocks of one metadata device.
pub struct TransactionManager<B: BlockManager> {
    pub(crate) bm: B,
    pub(crate) sm: MetadataSpaceMap<B::SpaceMapIndex>,
    pub(crate) recent: RecentShadows,
}

impl<B: BlockManager> TransactionManager<B> {
    /// The block manager underneath.
    pub fn bm(&self) -> &B {
        &self.bm
    }

    /// Gives the block manager back (dropping uncommitted changes from the map's view).
    pub fn into_bm(self) -> B {
        self.bm
    }

    /// Calls `f` with the contents of block `b`.
    pub fn read<R>(&self, b: BlockNr, kind: Kind, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        self.bm.read(b, kind, f)
    }

    /// Modifies block `b`, which must have come from [`Self::new_block`] or
    /// [`Self::shadow`] in this transaction.
    pub fn write<R>(
        &mut self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> Result<R>,
    ) -> Result<R> {
        self.bm.write(b, kind, f)
    }

    /// Allocates a zeroed block.
    pub fn new_block(&mut self, kind: Kind) -> Result<BlockNr> {
        let b = self.alloc()?;
        self.bm.write_zeroed(b, kind, |_| Ok(()))?;
        self.recent.add(b);
        Ok(b)
    }

    /// Makes block `b` writable in this transaction.
    ///
    /// Returns the block to write (`b` itself when it is already private to this
    /// transaction) and whether the original is still referenced elsewhere, in which case
    /// the caller must add a reference to everything the block refers to.
    pub fn shadow(&mut self, b: BlockNr, kind: Kind) -> Result<(BlockNr, bool)> {
        if self.recent.contains(b) {
            return Ok((b, false));
        }
        let committed = self.old_count(b)?;
        let count = self.count(b)?;
        // A count of zero on a block allocated in this transaction is an increment still
        // queued inside the space map: the block is ours.
        if committed == 0 && count <= 1 {
            // Made in this transaction (the cache had dropped it on a collision).
            self.recent.add(b);
            return Ok((b, false));
        }
        if count == 0 {
            return Err(Error::Corrupt {
                block: b,
                what: "shadowing a block the space map says is free",
            });
        }
        let nb = self.alloc()?;
        let bm = &self.bm;
        bm.read(b, kind, |src| {
            bm.write_zeroed(nb, kind, |dst| {
                dst.copy_from_slice(src);
                Ok(())
            })
        })?;
        self.dec(b)?;
        self.recent.add(nb);
        Ok((nb, count > 1))
    }

    /// The reference count of block `b`.
    pub fn count(&self, b: BlockNr) -> Result<u32> {
        self.cur_count(b)
    }

    /// Adds a reference to block `b`.
    pub fn inc(&mut self, b: BlockNr) -> Result<()> {
        // Shared now: shadowing it again must copy it.
        self.recent.forget(b);
        self.sm_inc(b)
    }

    /// Drops a reference to block `b`.
    pub fn dec(&mut self, b: BlockNr) -> Result<()> {
        self.recent.forget(b);
        self.sm_dec(b)
    }

    /// Commits the metadata space map; its root (for the superblock) is then
    /// [`Self::sm_root`]. The caller then writes the superblock with [`Self::commit`].
    pub fn pre_commit(&mut self) -> Result<()> {
        self.sm_commit()
    }

    /// Writes every block, then block `superblock` (zeroed, then filled in by `fill`), then
    /// flushes.
    pub fn commit(
        &mut self,
        superblock: BlockNr,
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<()> {
        self.bm.flush()?;
        self.bm.write_zeroed(superblock, Kind::Superblock, fill)?;
        self.bm.flush()
    }

    /// The metadata space map's root.
    pub fn sm_root(&self) -> SmRoot {
        self.sm.root()
    }
}
