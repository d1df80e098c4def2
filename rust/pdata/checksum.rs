// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Block checksums: crc32c as `dm_bm_checksum` computes it, salted per block type.
//!
//! The kernel's `crc32c(~0, data, len)` returns the register without the final inversion,
//! and the result is XORed with a constant that differs between block types, so a block of
//! one type can never pass as another.

/// Salt of the thin-pool superblock.
pub const SUPERBLOCK_SALT: u32 = 160774;
/// Salt of btree nodes.
pub const BTREE_NODE_SALT: u32 = 121107;
/// Salt of space-map bitmap blocks.
pub const BITMAP_SALT: u32 = 240779;
/// Salt of the metadata space map's index block.
pub const INDEX_SALT: u32 = 160478;

const fn make_table() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLE: [[u32; 256]; 8] = make_table();

/// The crc32c register after `data`, starting from `crc`, without final inversion.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLE[7][(lo & 0xff) as usize]
            ^ TABLE[6][((lo >> 8) & 0xff) as usize]
            ^ TABLE[5][((lo >> 16) & 0xff) as usize]
            ^ TABLE[4][(lo >> 24) as usize]
            ^ TABLE[3][(hi & 0xff) as usize]
            ^ TABLE[2][((hi >> 8) & 0xff) as usize]
            ^ TABLE[1][((hi >> 16) & 0xff) as usize]
            ^ TABLE[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ TABLE[0][((crc ^ byte as u32) & 0xff) as usize];
    }
    crc
}

/// `dm_bm_checksum`: the salted checksum of `data`.
pub fn block_checksum(data: &[u8], salt: u32) -> u32 {
    crc32c(!0, data) ^ salt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The CRC-32C check value of "123456789" is 0xe3069283 (with final inversion).
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn unaligned_tails_match_bytewise() {
        let data: [u8; 37] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let mut bytewise = !0u32;
        for &b in &data {
            bytewise = (bytewise >> 8) ^ TABLE[0][((bytewise ^ b as u32) & 0xff) as usize];
        }
        assert_eq!(crc32c(!0, &data), bytewise);
    }
}
