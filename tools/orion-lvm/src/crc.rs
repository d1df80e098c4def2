// SPDX-License-Identifier: GPL-2.0 OR MIT

//! LVM2's checksum: CRC-32 (reflected polynomial 0xedb88320) from `0xf597a6cf`, without
//! the final inversion. It guards the label sector, the metadata area header and each
//! copy of the metadata text.

/// The starting value LVM2 uses.
pub const INITIAL: u32 = 0xf597_a6cf;

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// The checksum of `data` continuing from `crc`.
pub fn crc(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc >> 8) ^ TABLE[((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

/// The checksum LVM2 stores: from [`INITIAL`].
pub fn lvm_crc(data: &[u8]) -> u32 {
    crc(INITIAL, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn standard_crc32_when_started_and_finished_like_zlib() {
        assert_eq!(!super::crc(!0, b"123456789"), 0xcbf4_3926);
    }
}
