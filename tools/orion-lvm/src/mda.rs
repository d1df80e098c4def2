// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A metadata area: a 512-byte header, then a circular buffer of metadata text.
//!
//! ```text
//! mda_header: checksum (of bytes 4..512), magic " LVM2 x[5A%r0N*>", version 1,
//!             start (absolute byte offset), size, raw_locn {offset, size, checksum, flags}* 0
//! ```
//!
//! The current text is where the first raw location points (offset relative to the area,
//! wrapping back to byte 512 at the end of the area). A new version is written after the
//! current one, never over it, and only then does the header move to it: a command
//! interrupted before the header write leaves the previous metadata in place.

use crate::crc::lvm_crc;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Size of the header at the start of the area.
pub const HEADER_SIZE: u64 = 512;
const MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `RAW_LOCN_IGNORED`.
pub const RAW_LOCN_IGNORED: u32 = 1;

/// Where one copy of the text lies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawLocn {
    /// Offset from the start of the area.
    pub offset: u64,
    /// Bytes of text (with its terminating NUL).
    pub size: u64,
    /// Checksum of the text.
    pub checksum: u32,
    /// Flags.
    pub flags: u32,
}

/// A metadata area header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdaHeader {
    /// Absolute byte offset of the area.
    pub start: u64,
    /// Size of the area.
    pub size: u64,
    /// Text locations (the first is the committed one).
    pub raw_locns: Vec<RawLocn>,
}

/// Errors of a metadata area.
#[derive(Debug, thiserror::Error)]
pub enum MdaError {
    /// The device failed.
    #[error("I/O error on the metadata area at byte {0}: {1}")]
    Io(u64, std::io::Error),
    /// The header is damaged or not LVM2's.
    #[error("metadata area at byte {start}: {what}")]
    Bad {
        /// Where the area starts.
        start: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The text does not fit.
    #[error("metadata text of {need} bytes does not fit in the metadata area of {have} bytes")]
    TooBig {
        /// Text size.
        need: u64,
        /// Area size.
        have: u64,
    },
}

fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap_or([0; 8]))
}

impl MdaHeader {
    /// Reads and checks the header of the area at `start`.
    pub fn read(dev: &File, start: u64) -> Result<MdaHeader, MdaError> {
        let mut d = [0u8; HEADER_SIZE as usize];
        dev.read_exact_at(&mut d, start)
            .map_err(|e| MdaError::Io(start, e))?;
        let bad = |what| MdaError::Bad { start, what };
        if u32_at(&d, 0) != lvm_crc(&d[4..]) {
            return Err(bad("header checksum mismatch"));
        }
        if &d[4..20] != MAGIC {
            return Err(bad("bad magic"));
        }
        if u32_at(&d, 20) != 1 {
            return Err(bad("unsupported version"));
        }
        if u64_at(&d, 24) != start {
            return Err(bad("header records another start"));
        }
        let size = u64_at(&d, 32);
        let mut raw_locns = Vec::new();
        let mut o = 40;
        while o + 24 <= d.len() {
            let r = RawLocn {
                offset: u64_at(&d, o),
                size: u64_at(&d, o + 8),
                checksum: u32_at(&d, o + 16),
                flags: u32_at(&d, o + 20),
            };
            if r.offset == 0 {
                break;
            }
            if r.offset < HEADER_SIZE || r.offset >= size || r.size > size - HEADER_SIZE {
                return Err(bad("text location outside the area"));
            }
            raw_locns.push(r);
            o += 24;
        }
        Ok(MdaHeader {
            start,
            size,
            raw_locns,
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_SIZE as usize] {
        let mut d = [0u8; HEADER_SIZE as usize];
        d[4..20].copy_from_slice(MAGIC);
        d[20..24].copy_from_slice(&1u32.to_le_bytes());
        d[24..32].copy_from_slice(&self.start.to_le_bytes());
        d[32..40].copy_from_slice(&self.size.to_le_bytes());
        for (i, r) in self.raw_locns.iter().take(20).enumerate() {
            let o = 40 + 24 * i;
            d[o..o + 8].copy_from_slice(&r.offset.to_le_bytes());
            d[o + 8..o + 16].copy_from_slice(&r.size.to_le_bytes());
            d[o + 16..o + 20].copy_from_slice(&r.checksum.to_le_bytes());
            d[o + 20..o + 24].copy_from_slice(&r.flags.to_le_bytes());
        }
        let crc = lvm_crc(&d[4..]);
        d[..4].copy_from_slice(&crc.to_le_bytes());
        d
    }

    /// Writes an empty area header (no metadata yet).
    pub fn format(dev: &File, start: u64, size: u64) -> Result<(), MdaError> {
        let h = MdaHeader {
            start,
            size,
            raw_locns: Vec::new(),
        };
        dev.write_all_at(&h.encode(), start)
            .map_err(|e| MdaError::Io(start, e))
    }

    /// The committed metadata text, if any (checksum verified).
    pub fn read_text(&self, dev: &File) -> Result<Option<String>, MdaError> {
        let Some(r) = self
            .raw_locns
            .iter()
            .find(|r| r.flags & RAW_LOCN_IGNORED == 0)
        else {
            return Ok(None);
        };
        let mut buf = vec![0u8; r.size as usize];
        let first = (self.size - r.offset).min(r.size) as usize;
        dev.read_exact_at(&mut buf[..first], self.start + r.offset)
            .map_err(|e| MdaError::Io(self.start, e))?;
        if first < buf.len() {
            dev.read_exact_at(&mut buf[first..], self.start + HEADER_SIZE)
                .map_err(|e| MdaError::Io(self.start, e))?;
        }
        if lvm_crc(&buf) != r.checksum {
            return Err(MdaError::Bad {
                start: self.start,
                what: "metadata text checksum mismatch",
            });
        }
        while buf.last() == Some(&0) {
            buf.pop();
        }
        String::from_utf8(buf).map(Some).map_err(|_| MdaError::Bad {
            start: self.start,
            what: "metadata text is not UTF-8",
        })
    }

    /// Writes `text` as the new committed metadata: the text after the current copy, a
    /// flush, then the header, then a flush.
    pub fn write_text(&mut self, dev: &File, text: &str) -> Result<(), MdaError> {
        let mut buf = text.as_bytes().to_vec();
        buf.push(0);
        let len = buf.len() as u64;
        let room = self.size - HEADER_SIZE;
        let current = self.raw_locns.first().copied();
        // The new copy goes after the current one (rounded up to a sector): both must fit.
        if len + current.map_or(0, |c| c.size + 511) > room {
            return Err(MdaError::TooBig {
                need: len,
                have: room,
            });
        }
        // Start at the first sector boundary after the current copy.
        let mut offset = match current {
            Some(c) => {
                let end = c.offset + c.size;
                let end = if end > self.size {
                    HEADER_SIZE + (end - self.size)
                } else {
                    end
                };
                end.div_ceil(512) * 512
            }
            None => HEADER_SIZE,
        };
        if offset >= self.size {
            offset = HEADER_SIZE;
        }
        let first = (self.size - offset).min(len) as usize;
        dev.write_all_at(&buf[..first], self.start + offset)
            .map_err(|e| MdaError::Io(self.start, e))?;
        if first < buf.len() {
            dev.write_all_at(&buf[first..], self.start + HEADER_SIZE)
                .map_err(|e| MdaError::Io(self.start, e))?;
        }
        dev.sync_data().map_err(|e| MdaError::Io(self.start, e))?;
        self.raw_locns = vec![RawLocn {
            offset,
            size: len,
            checksum: lvm_crc(&buf),
            flags: 0,
        }];
        dev.write_all_at(&self.encode(), self.start)
            .map_err(|e| MdaError::Io(self.start, e))?;
        dev.sync_data().map_err(|e| MdaError::Io(self.start, e))
    }
}
