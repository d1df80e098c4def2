// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Self-describing 4 KiB blocks: each block the workload writes says where it belongs and
//! which write put it there, so any block read back can be attributed.
//!
//! Layout (little endian):
//!
//! ```text
//! 0   magic "ORIONCR1"
//! 8   byte offset of the block on the device
//! 16  generation: the number of the write (from 1) that wrote it
//! 24  checksum of the whole block, this field taken as zero
//! 32  filler derived from offset and generation
//! ```

use crate::rng::mix;

/// The unit of the workload and of the verifier.
pub const BLOCK: usize = 4096;
/// The first eight bytes of every stamped block.
pub const MAGIC: [u8; 8] = *b"ORIONCR1";
const SECTOR: usize = 512;

/// What a 4 KiB block read back holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// All zeroes.
    Zero,
    /// A whole, intact stamped block.
    Stamp {
        /// The offset its header names.
        offset: u64,
        /// Its generation.
        generation: u64,
    },
    /// A stamp header whose checksum does not match: a torn or damaged block.
    Torn {
        /// The offset its header names.
        offset: u64,
        /// Its generation.
        generation: u64,
    },
    /// No stamp, but `sectors` of its eight 512-byte sectors are the marker byte pattern
    /// (the device's content from before the test).
    Marker {
        /// How many sectors are all marker bytes.
        sectors: u32,
    },
    /// Neither zeroes, a stamp nor the marker pattern.
    Foreign,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The checksum of a block with its checksum field (bytes 24..32) taken as zero.
pub fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0x6f72_696f_6e63_7231;
    for (i, w) in b.chunks_exact(8).enumerate() {
        let w = if i == 3 { 0 } else { le64(w, 0) };
        h = (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    mix(h)
}

/// Fills `b` (one block) with the stamp of `generation` at device byte `offset`.
pub fn stamp(b: &mut [u8], offset: u64, generation: u64) {
    assert_eq!(b.len(), BLOCK);
    let seed = mix(offset ^ mix(generation));
    for (i, w) in b.chunks_exact_mut(8).enumerate().skip(4) {
        w.copy_from_slice(&mix(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    b[0..8].copy_from_slice(&MAGIC);
    b[8..16].copy_from_slice(&offset.to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[24..32].fill(0);
    let sum = checksum(b);
    b[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// What block `b` holds; `marker` is the byte the device was filled with before the test.
pub fn classify(b: &[u8], marker: u8) -> Content {
    assert_eq!(b.len(), BLOCK);
    if b[0..8] == MAGIC {
        let offset = le64(b, 8);
        let generation = le64(b, 16);
        return if le64(b, 24) == checksum(b) {
            Content::Stamp { offset, generation }
        } else {
            Content::Torn { offset, generation }
        };
    }
    if b.iter().all(|&c| c == 0) {
        return Content::Zero;
    }
    let sectors = b
        .chunks_exact(SECTOR)
        .filter(|s| s.iter().all(|&c| c == marker))
        .count() as u32;
    if sectors > 0 {
        Content::Marker { sectors }
    } else {
        Content::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_classify_and_damage_is_seen() {
        let mut b = vec![0u8; BLOCK];
        assert_eq!(classify(&b, 0xa5), Content::Zero);
        stamp(&mut b, 8192, 17);
        assert_eq!(
            classify(&b, 0xa5),
            Content::Stamp {
                offset: 8192,
                generation: 17
            }
        );
        // Different writes of the same block differ beyond the header.
        let mut c = vec![0u8; BLOCK];
        stamp(&mut c, 8192, 18);
        assert_ne!(b[32..], c[32..]);

        // A torn block: its second half from another write.
        let mut torn = b.clone();
        torn[2048..].copy_from_slice(&c[2048..]);
        assert_eq!(
            classify(&torn, 0xa5),
            Content::Torn {
                offset: 8192,
                generation: 17
            }
        );
        // One flipped bit anywhere is seen.
        for at in [9, 31, 32, 4095] {
            let mut d = b.clone();
            d[at] ^= 4;
            assert!(
                matches!(classify(&d, 0xa5), Content::Torn { .. }),
                "byte {at}"
            );
        }

        let mut m = vec![0xa5u8; BLOCK];
        assert_eq!(classify(&m, 0xa5), Content::Marker { sectors: 8 });
        m[..512].fill(0);
        m[600] = 1;
        assert_eq!(classify(&m, 0xa5), Content::Marker { sectors: 6 });
        assert_eq!(classify(&m, 0x5a), Content::Foreign);
        let mut z = vec![0u8; BLOCK];
        z[100] = 1;
        assert_eq!(classify(&z, 0xa5), Content::Foreign);
    }
}
