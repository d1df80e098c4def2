// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The PV label: a `LABELONE` sector (one of the first four) holding the "LVM2 001" PV
//! header: PV UUID, device size, data areas, metadata areas and the header extension.
//!
//! ```text
//! label_header (32 bytes): "LABELONE", sector, crc (bytes 20..512), offset (32), "LVM2 001"
//! pv_header: uuid[32], device_size, {offset, size}* 0, {offset, size}* 0,
//!            extension: version, flags, {offset, size}* 0      (bootloader areas)
//! ```

use crate::crc::lvm_crc;

/// Sector size of the on-disk format.
pub const SECTOR: usize = 512;
/// Sectors scanned for a label.
pub const SCAN_SECTORS: u64 = 4;
/// The sector `pvcreate` writes the label to.
pub const LABEL_SECTOR: u64 = 1;
/// `PV_EXT_USED`: the PV belongs to a VG.
pub const PV_EXT_USED: u32 = 1;

const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";

/// A byte range on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLocn {
    /// Byte offset.
    pub offset: u64,
    /// Bytes (0 for a data area: "to the end").
    pub size: u64,
}

/// The PV header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// Sector the label was found in.
    pub sector: u64,
    /// The 32-character PV UUID, without dashes.
    pub uuid: String,
    /// Device size in bytes.
    pub device_size: u64,
    /// Data areas (normally one, from `pe_start` to the end).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas.
    pub metadata_areas: Vec<DiskLocn>,
    /// Header extension version (2 today), 0 when absent.
    pub ext_version: u32,
    /// Extension flags (`PV_EXT_USED`).
    pub ext_flags: u32,
    /// Bootloader areas.
    pub bootloader_areas: Vec<DiskLocn>,
}

/// Why a label could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    /// A `LABELONE` sector whose checksum is wrong.
    #[error("label in sector {0} has a bad checksum")]
    Checksum(u64),
    /// A label that is not LVM2's, or truncated.
    #[error("label in sector {sector}: {what}")]
    Bad {
        /// Where.
        sector: u64,
        /// What is wrong.
        what: &'static str,
    },
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(off..off + 8)?.try_into().ok()?))
}

/// Reads a zero-terminated list of locations from `off`; returns it and the offset after
/// the terminator.
fn read_list(d: &[u8], mut off: usize) -> Option<(Vec<DiskLocn>, usize)> {
    let mut v = Vec::new();
    loop {
        let (offset, size) = (u64_at(d, off)?, u64_at(d, off + 8)?);
        off += 16;
        if offset == 0 {
            return Some((v, off));
        }
        v.push(DiskLocn { offset, size });
    }
}

impl PvLabel {
    /// Finds and decodes the label in the first [`SCAN_SECTORS`] sectors of `head`.
    /// Returns `Ok(None)` when there is no `LABELONE` sector.
    pub fn find(head: &[u8]) -> Result<Option<PvLabel>, LabelError> {
        for sector in 0..SCAN_SECTORS {
            let start = sector as usize * SECTOR;
            let Some(d) = head.get(start..start + SECTOR) else {
                break;
            };
            if &d[..8] != LABEL_ID {
                continue;
            }
            return Self::decode(sector, d).map(Some);
        }
        Ok(None)
    }

    fn decode(sector: u64, d: &[u8]) -> Result<PvLabel, LabelError> {
        let bad = |what| LabelError::Bad { sector, what };
        if u64_at(d, 8) != Some(sector) {
            return Err(bad("records another sector number"));
        }
        if u32_at(d, 16) != Some(lvm_crc(&d[20..])) {
            return Err(LabelError::Checksum(sector));
        }
        if &d[24..32] != LABEL_TYPE {
            return Err(bad("not an LVM2 label"));
        }
        let off = u32_at(d, 20).ok_or(bad("truncated"))? as usize;
        let h = d.get(off..).ok_or(bad("header offset past the sector"))?;
        let uuid = std::str::from_utf8(h.get(..32).ok_or(bad("truncated"))?)
            .map_err(|_| bad("PV UUID is not text"))?
            .to_owned();
        let device_size = u64_at(h, 32).ok_or(bad("truncated"))?;
        let (data_areas, next) = read_list(h, 40).ok_or(bad("truncated data area list"))?;
        let (metadata_areas, next) =
            read_list(h, next).ok_or(bad("truncated metadata area list"))?;
        let (ext_version, ext_flags, bootloader_areas) = match u32_at(h, next) {
            Some(v) if v > 0 => {
                let flags = u32_at(h, next + 4).ok_or(bad("truncated extension"))?;
                let (boot, _) =
                    read_list(h, next + 8).ok_or(bad("truncated bootloader area list"))?;
                (v, flags, boot)
            }
            _ => (0, 0, Vec::new()),
        };
        Ok(PvLabel {
            sector,
            uuid,
            device_size,
            data_areas,
            metadata_areas,
            ext_version,
            ext_flags,
            bootloader_areas,
        })
    }

    /// Encodes the label sector.
    pub fn encode(&self) -> [u8; SECTOR] {
        let mut d = [0u8; SECTOR];
        d[..8].copy_from_slice(LABEL_ID);
        d[8..16].copy_from_slice(&self.sector.to_le_bytes());
        d[20..24].copy_from_slice(&32u32.to_le_bytes());
        d[24..32].copy_from_slice(LABEL_TYPE);
        let mut off = 32;
        let uuid = self.uuid.as_bytes();
        d[off..off + uuid.len().min(32)].copy_from_slice(&uuid[..uuid.len().min(32)]);
        off += 32;
        d[off..off + 8].copy_from_slice(&self.device_size.to_le_bytes());
        off += 8;
        let put_list = |d: &mut [u8; SECTOR], off: &mut usize, v: &[DiskLocn]| {
            for l in v
                .iter()
                .chain(std::iter::once(&DiskLocn { offset: 0, size: 0 }))
            {
                d[*off..*off + 8].copy_from_slice(&l.offset.to_le_bytes());
                d[*off + 8..*off + 16].copy_from_slice(&l.size.to_le_bytes());
                *off += 16;
            }
        };
        put_list(&mut d, &mut off, &self.data_areas);
        put_list(&mut d, &mut off, &self.metadata_areas);
        if self.ext_version > 0 {
            d[off..off + 4].copy_from_slice(&self.ext_version.to_le_bytes());
            d[off + 4..off + 8].copy_from_slice(&self.ext_flags.to_le_bytes());
            off += 8;
            put_list(&mut d, &mut off, &self.bootloader_areas);
        }
        let crc = lvm_crc(&d[20..]);
        d[16..20].copy_from_slice(&crc.to_le_bytes());
        d
    }
}

/// Formats a 32-character UUID the way metadata text shows it (6-4-4-4-4-4-6).
pub fn dashed(uuid: &str) -> String {
    let mut out = String::with_capacity(38);
    for (i, c) in uuid.chars().enumerate() {
        if [6, 10, 14, 18, 22, 26].contains(&i) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Removes the dashes of a metadata-text UUID.
pub fn undashed(uuid: &str) -> String {
    uuid.chars().filter(|c| *c != '-').collect()
}

/// A new random UUID from LVM2's alphabet.
pub fn new_uuid() -> std::io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#";
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    // 62 usable characters: the last two of the table are never chosen.
    Ok(raw
        .iter()
        .map(|b| ALPHABET[(*b as usize) % 62] as char)
        .collect())
}
