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
//! [`shadow`]: TransactionManager::shadow

use super::block::{BlockManager, BlockNr, Kind};
use super::error::{Error, Result};
use super::space_map::metadata::MetadataSpaceMap;
use super::space_map::SmRoot;

/// Copy-on-write access to the blocks of one metadata device.
pub struct TransactionManager<B: BlockManager> {
    pub(crate) bm: B,
    pub(crate) sm: MetadataSpaceMap<B::SpaceMapIndex>,
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
        Ok(b)
    }

    /// Makes block `b` writable in this transaction.
    ///
    /// Returns the block to write (`b` itself when it is already private to this
    /// transaction) and whether the original is still referenced elsewhere, in which case
    /// the caller must add a reference to everything the block refers to.
    pub fn shadow(&mut self, b: BlockNr, kind: Kind) -> Result<(BlockNr, bool)> {
        let committed = self.old_count(b)?;
        let count = self.count(b)?;
        // A count of zero on a block allocated in this transaction is an increment still
        // queued inside the space map: the block is ours.
        if committed == 0 && count <= 1 {
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
        Ok((nb, count > 1))
    }

    /// The reference count of block `b`.
    pub fn count(&self, b: BlockNr) -> Result<u32> {
        self.cur_count(b)
    }

    /// Adds a reference to block `b`.
    pub fn inc(&mut self, b: BlockNr) -> Result<()> {
        self.sm_inc(b)
    }

    /// Drops a reference to block `b`.
    pub fn dec(&mut self, b: BlockNr) -> Result<()> {
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
