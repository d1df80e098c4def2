// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Per-device details (`struct disk_device_details`) and the mapping values.

use super::super::block::BlockNr;
use super::super::bytes::{get_u32, get_u64, put_u32, put_u64};

/// A thin device's identifier (24 bits in the kernel's messages).
pub type DevId = u64;

/// What the details tree records about a thin device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceDetails {
    /// Mapped blocks.
    pub mapped_blocks: u64,
    /// Pool transaction id when the device was created.
    pub transaction_id: u64,
    /// Pool time when the device was created.
    pub creation_time: u32,
    /// Pool time when the device was last snapshotted (or created).
    pub snapshotted_time: u32,
}

impl DeviceDetails {
    /// On-disk size.
    pub const SIZE: usize = 24;

    /// Decodes details.
    pub fn unpack(d: &[u8]) -> Self {
        DeviceDetails {
            mapped_blocks: get_u64(d, 0),
            transaction_id: get_u64(d, 8),
            creation_time: get_u32(d, 16),
            snapshotted_time: get_u32(d, 20),
        }
    }

    /// Encodes details.
    pub fn pack(&self) -> [u8; Self::SIZE] {
        let mut d = [0u8; Self::SIZE];
        put_u64(&mut d, 0, self.mapped_blocks);
        put_u64(&mut d, 8, self.transaction_id);
        put_u32(&mut d, 16, self.creation_time);
        put_u32(&mut d, 20, self.snapshotted_time);
        d
    }
}

/// Times are 24 bits wide in a mapping.
pub const TIME_MASK: u32 = (1 << 24) - 1;

/// A mapping value: the data block in the upper 40 bits, the time in the lower 24.
pub fn pack_mapping(data_block: BlockNr, time: u32) -> u64 {
    (data_block << 24) | (time & TIME_MASK) as u64
}

/// Splits a mapping value into data block and time.
pub fn unpack_mapping(v: u64) -> (BlockNr, u32) {
    (v >> 24, (v as u32) & TIME_MASK)
}
