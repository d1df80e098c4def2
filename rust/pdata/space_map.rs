// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Space maps: reference counts of blocks, as `dm-space-map-common` lays them out.
//!
//! Counts live two bits per block in bitmap blocks (0, 1, 2, or 3 meaning "look in the
//! overflow tree", a btree of 32-bit counts). An index entry per bitmap records where the
//! bitmap is, how many of its entries are free and below which entry none is. The metadata
//! space map keeps its index in one block ([`metadata`]); the data space map keeps it in a
//! btree ([`disk`]). Both refuse to hand out a block that is free now but was in use at the
//! last commit, so the committed state survives until the next commit.

pub mod disk;
pub mod metadata;

use super::block::{BlockManager, BlockNr, Kind, BLOCK_SIZE};
use super::bytes::{get_u32, get_u64, put_u32, put_u64};
use super::error::Result;

/// Bytes before the bitmap entries in a bitmap block (checksum, unused, blocknr).
const BITMAP_HEADER: usize = 16;

/// Blocks counted by one bitmap block.
pub const ENTRIES_PER_BLOCK: u64 = ((BLOCK_SIZE - BITMAP_HEADER) * 4) as u64;

/// Size of the space-map root stored in a superblock.
pub const ROOT_SIZE: usize = 32;

/// One entry of a bitmap index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// Where the bitmap block is.
    pub blocknr: BlockNr,
    /// Free entries in the bitmap.
    pub nr_free: u32,
    /// No entry before this one is free.
    pub none_free_before: u32,
}

impl IndexEntry {
    /// On-disk size.
    pub const SIZE: usize = 16;

    /// An unused entry.
    pub const ZERO: IndexEntry = IndexEntry {
        blocknr: 0,
        nr_free: 0,
        none_free_before: 0,
    };

    /// Decodes an entry.
    pub fn unpack(d: &[u8]) -> Self {
        IndexEntry {
            blocknr: get_u64(d, 0),
            nr_free: get_u32(d, 8),
            none_free_before: get_u32(d, 12),
        }
    }

    /// Encodes the entry.
    pub fn pack(&self) -> [u8; Self::SIZE] {
        let mut d = [0u8; Self::SIZE];
        put_u64(&mut d, 0, self.blocknr);
        put_u32(&mut d, 8, self.nr_free);
        put_u32(&mut d, 12, self.none_free_before);
        d
    }

    /// Records that entry `bit` of the bitmap went from `old` to `new` references.
    fn account(&mut self, bit: u32, old: u32, new: u32) {
        if old == 0 && new > 0 {
            self.nr_free = self.nr_free.saturating_sub(1);
            if self.none_free_before == bit {
                self.none_free_before = bit + 1;
            }
        } else if old > 0 && new == 0 {
            self.nr_free = self.nr_free.saturating_add(1);
            self.none_free_before = self.none_free_before.min(bit);
        }
    }
}

/// The root of a space map as a superblock stores it (`struct disk_sm_root`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmRoot {
    /// Blocks the map covers.
    pub nr_blocks: u64,
    /// Blocks with a non-zero count.
    pub nr_allocated: u64,
    /// The bitmap index: an index block (metadata) or a btree root (data).
    pub bitmap_root: BlockNr,
    /// The overflow btree of counts above 2.
    pub ref_count_root: BlockNr,
}

impl SmRoot {
    /// Decodes a root.
    pub fn unpack(d: &[u8]) -> Self {
        SmRoot {
            nr_blocks: get_u64(d, 0),
            nr_allocated: get_u64(d, 8),
            bitmap_root: get_u64(d, 16),
            ref_count_root: get_u64(d, 24),
        }
    }

    /// Encodes the root.
    pub fn pack(&self) -> [u8; ROOT_SIZE] {
        let mut d = [0u8; ROOT_SIZE];
        put_u64(&mut d, 0, self.nr_blocks);
        put_u64(&mut d, 8, self.nr_allocated);
        put_u64(&mut d, 16, self.bitmap_root);
        put_u64(&mut d, 24, self.ref_count_root);
        d
    }

    /// Number of bitmap blocks needed for `nr_blocks`.
    pub fn nr_bitmaps(&self) -> u64 {
        self.nr_blocks.div_ceil(ENTRIES_PER_BLOCK)
    }
}

/// Splits a block number into its bitmap index and the entry in that bitmap.
pub(crate) fn split(b: BlockNr) -> (u64, u32) {
    (b / ENTRIES_PER_BLOCK, (b % ENTRIES_PER_BLOCK) as u32)
}

/// The two-bit count of entry `i` of a bitmap block.
pub fn bitmap_get(d: &[u8], i: u32) -> u32 {
    let word = get_u64(d, BITMAP_HEADER + 8 * (i as usize / 32));
    let bit = (i % 32) * 2;
    let hi = ((word >> bit) & 1) as u32;
    let lo = ((word >> (bit + 1)) & 1) as u32;
    (hi << 1) | lo
}

/// Sets the two-bit count of entry `i`.
pub(crate) fn bitmap_set(d: &mut [u8], i: u32, v: u32) {
    let off = BITMAP_HEADER + 8 * (i as usize / 32);
    let bit = (i % 32) * 2;
    let mut word = get_u64(d, off);
    word &= !(3u64 << bit);
    word |= (((v >> 1) & 1) as u64) << bit;
    word |= ((v & 1) as u64) << (bit + 1);
    put_u64(d, off, word);
}

/// The first entry in `begin..end` with a zero count.
pub(crate) fn bitmap_find_free(d: &[u8], begin: u32, end: u32) -> Option<u32> {
    let mut i = begin;
    while i < end {
        if i & 31 == 0 && end - i >= 32 {
            // A word whose 32 entries are all in use is skipped whole.
            let w = get_u64(d, BITMAP_HEADER + 8 * (i as usize / 32));
            if (w | (w >> 1)) & 0x5555_5555_5555_5555 == 0x5555_5555_5555_5555 {
                i += 32;
                continue;
            }
        }
        if bitmap_get(d, i) == 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The first entry in `begin..end` that is free in bitmap `cur` and, when given, in the
/// last committed bitmap `old` too.
pub(crate) fn find_common_free<B: BlockManager>(
    bm: &B,
    cur: BlockNr,
    old: Option<BlockNr>,
    begin: u32,
    end: u32,
) -> Result<Option<u32>> {
    bm.read(cur, Kind::Bitmap, |c| match old {
        None => Ok(bitmap_find_free(c, begin, end)),
        Some(o) => bm.read(o, Kind::Bitmap, |od| {
            let mut from = begin;
            while let Some(i) = bitmap_find_free(c, from, end) {
                if bitmap_get(od, i) == 0 {
                    return Ok(Some(i));
                }
                from = i + 1;
            }
            Ok(None)
        }),
    })
}
