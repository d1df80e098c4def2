// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Metadata blocks: the block-manager trait and the per-type validators.
//!
//! Every metadata structure lives in one 4 KiB block whose first word is a salted checksum
//! of the rest and, for most types, whose header records the block's own location. A block
//! manager hands out access to blocks through closures, which lets several blocks be held
//! at once (parent and child during a btree split) without self-referential guards. The
//! kernel implements it over dm-bufio, the tools over files.

use super::bytes::{get_u32, get_u64, put_u32, put_u64};
use super::checksum::{block_checksum, BITMAP_SALT, BTREE_NODE_SALT, INDEX_SALT, SUPERBLOCK_SALT};
use super::error::{Error, Result};
use super::space_map::IndexEntry;

/// Size of every metadata block.
pub const BLOCK_SIZE: usize = 4096;

/// A metadata block number.
pub type BlockNr = u64;

/// The type of a block, which decides how it is checked after reading and sealed before
/// writing (the kernel's `dm_block_validator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The thin-pool superblock (or a metadata-snapshot copy of it).
    Superblock,
    /// A btree node.
    Node,
    /// A space-map bitmap.
    Bitmap,
    /// The metadata space map's index of bitmaps.
    Index,
}

impl Kind {
    /// A non-zero byte naming the kind, for block managers that tag cached blocks.
    pub fn code(self) -> u8 {
        match self {
            Kind::Superblock => 1,
            Kind::Node => 2,
            Kind::Bitmap => 3,
            Kind::Index => 4,
        }
    }

    /// The kind whose [`Kind::code`] is `c`.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Kind::Superblock),
            2 => Some(Kind::Node),
            3 => Some(Kind::Bitmap),
            4 => Some(Kind::Index),
            _ => None,
        }
    }

    fn salt(self) -> u32 {
        match self {
            Kind::Superblock => SUPERBLOCK_SALT,
            Kind::Node => BTREE_NODE_SALT,
            Kind::Bitmap => BITMAP_SALT,
            Kind::Index => INDEX_SALT,
        }
    }

    /// Offset of the header's self-location field: every type has it right after the
    /// checksum word and one 32-bit word (flags, padding or unused).
    const LOCATION_OFFSET: usize = 8;

    /// Checks a block just read from `location`.
    pub fn check(self, location: BlockNr, data: &[u8]) -> Result<()> {
        if data.len() != BLOCK_SIZE {
            return Err(Error::Io(location));
        }
        let found = get_u64(data, Self::LOCATION_OFFSET);
        if found != location {
            return Err(Error::WrongLocation {
                block: location,
                found,
            });
        }
        let sum = block_checksum(data.get(4..).unwrap_or(&[]), self.salt());
        if sum != get_u32(data, 0) {
            return Err(Error::Checksum(location));
        }
        Ok(())
    }

    /// Stamps location and checksum into a block about to be written at `location`.
    pub fn seal(self, location: BlockNr, data: &mut [u8]) {
        put_u64(data, Self::LOCATION_OFFSET, location);
        let sum = block_checksum(data.get(4..).unwrap_or(&[]), self.salt());
        put_u32(data, 0, sum);
    }
}

/// Access to the blocks of one metadata device.
///
/// Implementations check a block with its [`Kind`] when it is first read from the device,
/// remember the kind, refuse a later access with a different kind, and [`Kind::seal`] a
/// dirty block when it is written back. Dirty blocks may be written back at any time;
/// [`BlockManager::flush`] writes all of them and waits for them to be durable.
pub trait BlockManager {
    /// Storage for a space map's index entries (`MAX_BITMAPS` of them, 4 KiB): the metadata
    /// space map's index, and the data space map's in-core entries. On the heap in the
    /// kernel, whose stacks are too small to move it around.
    ///
    /// [`MAX_BITMAPS`]: super::space_map::metadata::MAX_BITMAPS
    type SpaceMapIndex: AsRef<[IndexEntry]> + AsMut<[IndexEntry]>;

    /// Allocates storage for a space map index.
    fn new_index(&self) -> Result<Self::SpaceMapIndex>;

    /// Number of blocks on the device.
    fn nr_blocks(&self) -> u64;

    /// Calls `f` with the checked contents of block `b`.
    fn read<R>(&self, b: BlockNr, kind: Kind, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R>;

    /// Calls `f` with the contents of block `b` for modification; the block becomes dirty.
    fn write<R>(&self, b: BlockNr, kind: Kind, f: impl FnOnce(&mut [u8]) -> Result<R>)
        -> Result<R>;

    /// Like [`BlockManager::write`] but the block starts zeroed and is not read.
    fn write_zeroed<R>(
        &self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> Result<R>,
    ) -> Result<R>;

    /// Calls `f` with the raw contents of block `b`, unchecked (to tell an all-zero
    /// superblock from a damaged one).
    fn read_raw<R>(&self, b: BlockNr, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R>;

    /// Writes every dirty block and waits until they are durable.
    fn flush(&self) -> Result<()>;
}
