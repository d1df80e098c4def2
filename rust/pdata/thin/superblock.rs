// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The thin-pool superblock (`struct thin_disk_superblock`), always in block 0.
//!
//! ```text
//! 0 csum  4 flags  8 blocknr  16 uuid[16]  32 magic  40 version  44 time  48 trans_id
//! 56 held_root  64 data_space_map_root[128]  192 metadata_space_map_root[128]
//! 320 data_mapping_root  328 device_details_root  336 data_block_size (sectors)
//! 340 metadata_block_size (sectors)  344 metadata_nr_blocks  352 compat_flags
//! 356 compat_ro_flags  360 incompat_flags
//! ```

use super::super::block::BlockNr;
use super::super::bytes::{copy, get_u32, get_u64, put_u32, put_u64};
use super::super::error::{corrupt, Result};
use super::super::space_map::{SmRoot, ROOT_SIZE};

/// Where the superblock lives.
pub const LOCATION: BlockNr = 0;
/// `THIN_SUPERBLOCK_MAGIC`.
pub const MAGIC: u64 = 27022010;
/// The version this code writes; version 1 is read too.
pub const VERSION: u32 = 2;
/// Metadata block size in sectors (4 KiB).
pub const METADATA_BLOCK_SECTORS: u32 = 8;
/// `THIN_METADATA_NEEDS_CHECK_FLAG`.
pub const NEEDS_CHECK: u32 = 1;

const DATA_SM_ROOT: usize = 64;
const METADATA_SM_ROOT: usize = 192;

/// The superblock's fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Superblock {
    /// Flags (`NEEDS_CHECK`).
    pub flags: u32,
    /// Pool UUID (unused by dm-thin, kept as read).
    pub uuid: [u8; 16],
    /// Format version.
    pub version: u32,
    /// Current time (snapshot counter), stamped into new mappings.
    pub time: u32,
    /// Userspace transaction id.
    pub trans_id: u64,
    /// Copy of the superblock held as a metadata snapshot, or 0.
    pub held_root: BlockNr,
    /// Root of the data space map.
    pub data_sm: SmRoot,
    /// Root of the metadata space map.
    pub metadata_sm: SmRoot,
    /// Top of the two-level mapping tree (device → block → data block and time).
    pub mapping_root: BlockNr,
    /// Root of the device details tree.
    pub details_root: BlockNr,
    /// Data block size in sectors.
    pub data_block_size: u32,
    /// Metadata block size in sectors.
    pub metadata_block_size: u32,
    /// Metadata device size in blocks.
    pub metadata_nr_blocks: u64,
    /// Compatible feature flags.
    pub compat_flags: u32,
    /// Read-only-compatible feature flags.
    pub compat_ro_flags: u32,
    /// Incompatible feature flags.
    pub incompat_flags: u32,
}

impl Superblock {
    /// Decodes and sanity-checks a superblock read from `location` (checksum and location
    /// are checked by the block manager).
    pub fn unpack(location: BlockNr, d: &[u8]) -> Result<Self> {
        if get_u64(d, 32) != MAGIC {
            return corrupt(location, "not a thin-pool superblock (bad magic)");
        }
        let mut uuid = [0u8; 16];
        copy(&mut uuid, 0, d, 16, 16);
        let sb = Superblock {
            flags: get_u32(d, 4),
            uuid,
            version: get_u32(d, 40),
            time: get_u32(d, 44),
            trans_id: get_u64(d, 48),
            held_root: get_u64(d, 56),
            data_sm: SmRoot::unpack(d.get(DATA_SM_ROOT..).unwrap_or(&[])),
            metadata_sm: SmRoot::unpack(d.get(METADATA_SM_ROOT..).unwrap_or(&[])),
            mapping_root: get_u64(d, 320),
            details_root: get_u64(d, 328),
            data_block_size: get_u32(d, 336),
            metadata_block_size: get_u32(d, 340),
            metadata_nr_blocks: get_u64(d, 344),
            compat_flags: get_u32(d, 352),
            compat_ro_flags: get_u32(d, 356),
            incompat_flags: get_u32(d, 360),
        };
        if sb.version < 1 || sb.version > VERSION {
            return corrupt(location, "unsupported thin metadata version");
        }
        if sb.metadata_block_size != METADATA_BLOCK_SECTORS {
            return corrupt(location, "metadata block size is not 4 KiB");
        }
        if sb.incompat_flags != 0 {
            return corrupt(location, "metadata uses incompatible features");
        }
        Ok(sb)
    }

    /// Encodes the superblock into a zeroed block (checksum and location are stamped by
    /// the block manager).
    pub fn pack(&self, d: &mut [u8]) {
        put_u32(d, 4, self.flags);
        copy(d, 16, &self.uuid, 0, 16);
        put_u64(d, 32, MAGIC);
        put_u32(d, 40, self.version);
        put_u32(d, 44, self.time);
        put_u64(d, 48, self.trans_id);
        put_u64(d, 56, self.held_root);
        copy(d, DATA_SM_ROOT, &self.data_sm.pack(), 0, ROOT_SIZE);
        copy(d, METADATA_SM_ROOT, &self.metadata_sm.pack(), 0, ROOT_SIZE);
        put_u64(d, 320, self.mapping_root);
        put_u64(d, 328, self.details_root);
        put_u32(d, 336, self.data_block_size);
        put_u32(d, 340, self.metadata_block_size);
        put_u64(d, 344, self.metadata_nr_blocks);
        put_u32(d, 352, self.compat_flags);
        put_u32(d, 356, self.compat_ro_flags);
        put_u32(d, 360, self.incompat_flags);
    }
}
