// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The dm-log-writes log format (drivers/md/dm-log-writes.c, Linux 6.12), and a reader.
//!
//! The log device starts with a super block in its first `sectorsize` bytes (`sectorsize`
//! is the logical block size of the logged device):
//!
//! ```text
//! le64 magic 0x6a736677736872, le64 version 1, le64 nr_entries, le32 sectorsize
//! ```
//!
//! Entries follow back to back from byte `sectorsize`. Each is one `sectorsize` block
//! holding its header, then (except for discards, which carry none) the `nr_sectors`
//! blocks of data it wrote:
//!
//! ```text
//! le64 sector, le64 nr_sectors, le64 flags, le64 data_len [, mark name]
//! ```
//!
//! `sector` and `nr_sectors` count `sectorsize` units. A mark (`dmsetup message LW 0 mark
//! NAME`) has no sectors and its name (`data_len` bytes) right after the header, in the
//! same block. A flush with no data is an entry of no sectors. The kernel logs a write only
//! once a later flush completes (a FUA write when it completes), so the order of the log is
//! the order in which writes became durable; the super block is rewritten after FUA writes
//! and marks, and when the target is removed (after its closing `dm-log-writes-end` mark).
//! Entries past `nr_entries` may be on the device but are not part of the log.
//!
//! Parsing and packing are plain functions over byte slices; [`Log`] reads a device.

use crate::dev::{AlignedBuf, Device};
use crate::error::{IoContext, Result};
use crate::invalid;
use std::fmt;
use std::path::Path;

/// `WRITE_LOG_MAGIC`.
pub const MAGIC: u64 = 0x6a_7366_7773_6872;
/// `WRITE_LOG_VERSION`.
pub const VERSION: u64 = 1;
/// The size of `struct log_write_entry`, after which a mark's name starts.
pub const ENTRY_HEADER: usize = 32;
/// The size of `struct log_write_super`.
pub const SUPER_LEN: usize = 28;

/// The flags of an entry (`LOG_*_FLAG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u64);

impl Flags {
    /// The write carried `REQ_PREFLUSH` (an empty one is a pure flush).
    pub const FLUSH: Flags = Flags(1 << 0);
    /// The write carried `REQ_FUA`.
    pub const FUA: Flags = Flags(1 << 1);
    /// A discard: sectors but no data in the log.
    pub const DISCARD: Flags = Flags(1 << 2);
    /// A mark made from userspace; its name is the entry's data.
    pub const MARK: Flags = Flags(1 << 3);
    /// The write carried `REQ_META`.
    pub const METADATA: Flags = Flags(1 << 4);
    const NAMES: [(Flags, &'static str); 5] = [
        (Self::FLUSH, "FLUSH"),
        (Self::FUA, "FUA"),
        (Self::DISCARD, "DISCARD"),
        (Self::MARK, "MARK"),
        (Self::METADATA, "METADATA"),
    ];
    const KNOWN: u64 = 0x1f;

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Display for Flags {
    /// `FLUSH|FUA`, or `-` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// The super block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Super {
    /// Entries in the log.
    pub nr_entries: u64,
    /// The logged device's logical block size: the unit of sectors and of the layout.
    pub sectorsize: u32,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parses the super block from the first bytes of the log.
pub fn parse_super(b: &[u8]) -> Result<Super> {
    if b.len() < SUPER_LEN {
        return Err(invalid!("log too short for a super block"));
    }
    let magic = le64(b, 0);
    if magic != MAGIC {
        return Err(invalid!(
            "not a dm-log-writes log: magic {magic:#x}, expected {MAGIC:#x}"
        ));
    }
    let version = le64(b, 8);
    if version != VERSION {
        return Err(invalid!(
            "dm-log-writes log version {version}, expected {VERSION}"
        ));
    }
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[24..28]);
    let sectorsize = u32::from_le_bytes(w);
    if !sectorsize.is_power_of_two() || !(512..=65536).contains(&sectorsize) {
        return Err(invalid!("dm-log-writes log with sector size {sectorsize}"));
    }
    Ok(Super {
        nr_entries: le64(b, 16),
        sectorsize,
    })
}

/// Packs a super block into `sectorsize` bytes.
pub fn pack_super(s: &Super) -> Vec<u8> {
    let mut b = vec![0u8; s.sectorsize as usize];
    b[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    b[8..16].copy_from_slice(&VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&s.nr_entries.to_le_bytes());
    b[24..28].copy_from_slice(&s.sectorsize.to_le_bytes());
    b
}

/// An entry's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// First sector written (in `sectorsize` units).
    pub sector: u64,
    /// Sectors written or discarded.
    pub nr_sectors: u64,
    /// What kind of request it was.
    pub flags: Flags,
    /// For a mark, the length of its name.
    pub data_len: u64,
    /// A mark's name.
    pub mark: Option<String>,
}

impl Header {
    /// Bytes of log this entry takes: its header block and its data.
    pub fn span(&self, sectorsize: u32) -> u64 {
        let data = if self.flags.contains(Flags::DISCARD) {
            0
        } else {
            self.nr_sectors
        };
        (1 + data) * u64::from(sectorsize)
    }

    /// Whether a power cut right after this entry is a point of interest on its own: a
    /// flush or FUA write completed, or userspace marked the log.
    pub fn is_barrier(&self) -> bool {
        self.flags.0 & (Flags::FLUSH.0 | Flags::FUA.0 | Flags::MARK.0) != 0
    }
}

/// Parses an entry's header block (`sectorsize` bytes).
pub fn parse_header(b: &[u8]) -> Result<Header> {
    if b.len() < ENTRY_HEADER {
        return Err(invalid!("entry block too short"));
    }
    let flags = Flags(le64(b, 16));
    if flags.0 & !Flags::KNOWN != 0 {
        return Err(invalid!("unknown entry flags {:#x}", flags.0));
    }
    let data_len = le64(b, 24);
    let mark = if flags.contains(Flags::MARK) {
        let room = b.len() - ENTRY_HEADER;
        if data_len > room as u64 {
            return Err(invalid!("mark of {data_len} bytes in a {room}-byte block"));
        }
        let name = &b[ENTRY_HEADER..ENTRY_HEADER + data_len as usize];
        let name = name.split(|&c| c == 0).next().unwrap_or_default();
        Some(String::from_utf8_lossy(name).into_owned())
    } else {
        None
    };
    Ok(Header {
        sector: le64(b, 0),
        nr_sectors: le64(b, 8),
        flags,
        data_len,
        mark,
    })
}

/// Packs an entry's header block (`sectorsize` bytes); a mark's name goes after it.
pub fn pack_header(h: &Header, sectorsize: u32) -> Vec<u8> {
    let mut b = vec![0u8; sectorsize as usize];
    let name = h.mark.as_deref().unwrap_or_default().as_bytes();
    b[0..8].copy_from_slice(&h.sector.to_le_bytes());
    b[8..16].copy_from_slice(&h.nr_sectors.to_le_bytes());
    b[16..24].copy_from_slice(&h.flags.0.to_le_bytes());
    b[24..32].copy_from_slice(&(name.len() as u64).to_le_bytes());
    b[ENTRY_HEADER..ENTRY_HEADER + name.len()].copy_from_slice(name);
    b
}

/// An entry located in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its number, from 0.
    pub index: u64,
    /// The byte offset of its header block in the log.
    pub offset: u64,
    /// Its header.
    pub header: Header,
}

impl Entry {
    /// The byte offset of its data in the log.
    pub fn data_offset(&self, sectorsize: u32) -> u64 {
        self.offset + u64::from(sectorsize)
    }
}

/// A log on a device or in a file.
pub struct Log {
    dev: Device,
    sup: Super,
}

impl Log {
    /// Opens a log and reads its super block.
    pub fn open(path: &Path) -> Result<Self> {
        let dev = Device::open(path, false)?;
        // One page (or what there is): an O_DIRECT read of any logical block size.
        let len = dev.size().min(crate::dev::ALIGN as u64) as usize / 512 * 512;
        let mut b = AlignedBuf::new(len);
        dev.read_at(&mut b, 0)?;
        let sup = parse_super(&b).map_err(|e| invalid!("{}: {e}", path.display()))?;
        Ok(Self { dev, sup })
    }

    /// The super block.
    pub fn sup(&self) -> Super {
        self.sup
    }

    /// The device the log is on.
    pub fn dev(&self) -> &Device {
        &self.dev
    }

    /// Reads the entry numbered `index` whose header is at byte `offset`.
    pub fn entry_at(&self, index: u64, offset: u64) -> Result<Entry> {
        let ss = self.sup.sectorsize;
        if index >= self.sup.nr_entries {
            return Err(invalid!(
                "entry {index} is past the end of the log ({} entries)",
                self.sup.nr_entries
            ));
        }
        if offset + u64::from(ss) > self.dev.size() {
            return Err(invalid!(
                "entry {index} at byte {offset} is past the end of the log device"
            ));
        }
        let mut b = AlignedBuf::new(ss as usize);
        self.dev.read_at(&mut b, offset)?;
        let header =
            parse_header(&b).map_err(|e| invalid!("entry {index} at byte {offset}: {e}"))?;
        if offset + header.span(ss) > self.dev.size() {
            return Err(invalid!(
                "entry {index} at byte {offset}: {} sectors run past the end of the log device",
                header.nr_sectors
            ));
        }
        Ok(Entry {
            index,
            offset,
            header,
        })
    }

    /// Every entry from the first, in order.
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            log: self,
            index: 0,
            offset: u64::from(self.sup.sectorsize),
        }
    }

    /// The entries from `index`, whose header is at byte `offset`.
    pub fn entries_from(&self, index: u64, offset: u64) -> Entries<'_> {
        Entries {
            log: self,
            index,
            offset,
        }
    }
}

/// An iterator over a log's entries.
pub struct Entries<'a> {
    log: &'a Log,
    index: u64,
    offset: u64,
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.index >= self.log.sup.nr_entries {
            return None;
        }
        let e = self.log.entry_at(self.index, self.offset);
        match &e {
            Ok(entry) => {
                self.index += 1;
                self.offset += entry.header.span(self.log.sup.sectorsize);
            }
            // Stop after the first damaged entry: where the next one starts is unknown.
            Err(_) => self.index = u64::MAX,
        }
        Some(e)
    }
}

/// The byte offset of every entry's header: lets an incremental replay start at entry N
/// without reading the N headers before it. Kept in a file, checked against the log's
/// super block.
#[derive(Debug, PartialEq, Eq)]
pub struct Index {
    sup: Super,
    offsets: Vec<u64>,
}

const INDEX_MAGIC: &[u8; 8] = b"ORCRIDX1";

impl Index {
    /// Reads every header of `log`.
    pub fn build(log: &Log) -> Result<Self> {
        let offsets = log
            .entries()
            .map(|e| e.map(|e| e.offset))
            .collect::<Result<_>>()?;
        Ok(Self {
            sup: log.sup(),
            offsets,
        })
    }

    /// The index of `log` kept at `path`: read when it is there and describes this log,
    /// else built and written there.
    pub fn cached(log: &Log, path: &Path) -> Result<Self> {
        if let Ok(bytes) = std::fs::read(path) {
            if let Some(index) = Self::unpack(&bytes).filter(|i| i.sup == log.sup()) {
                return Ok(index);
            }
        }
        let index = Self::build(log)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, index.pack()).at("cannot write", &tmp)?;
        std::fs::rename(&tmp, path).at("cannot write", path)?;
        Ok(index)
    }

    /// The header offset of entry `index`.
    pub fn offset(&self, index: u64) -> Option<u64> {
        self.offsets.get(usize::try_from(index).ok()?).copied()
    }

    fn pack(&self) -> Vec<u8> {
        let mut b = INDEX_MAGIC.to_vec();
        b.extend_from_slice(&self.sup.nr_entries.to_le_bytes());
        b.extend_from_slice(&u64::from(self.sup.sectorsize).to_le_bytes());
        for o in &self.offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
        b
    }

    fn unpack(b: &[u8]) -> Option<Self> {
        if b.len() < 24 || &b[0..8] != INDEX_MAGIC || !b.len().is_multiple_of(8) {
            return None;
        }
        let sup = Super {
            nr_entries: le64(b, 8),
            sectorsize: u32::try_from(le64(b, 16)).ok()?,
        };
        let offsets: Vec<u64> = b[24..].chunks_exact(8).map(|c| le64(c, 0)).collect();
        (offsets.len() as u64 == sup.nr_entries).then_some(Self { sup, offsets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_round_trip_and_refusals() {
        let s = Super {
            nr_entries: 77,
            sectorsize: 512,
        };
        let b = pack_super(&s);
        assert_eq!(b.len(), 512);
        assert_eq!(parse_super(&b).unwrap(), s);
        // The kernel's struct is packed as written: magic first, sectorsize at byte 24.
        assert_eq!(&b[0..8], &0x6a736677736872u64.to_le_bytes());
        assert_eq!(&b[24..28], &512u32.to_le_bytes());

        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(parse_super(&bad).unwrap_err().to_string().contains("magic"));
        let mut bad = b.clone();
        bad[8] = 2;
        assert!(parse_super(&bad)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
        let mut bad = b;
        bad[24..28].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_super(&bad).is_err());
    }

    #[test]
    fn header_round_trip_marks_and_spans() {
        let w = Header {
            sector: 1234,
            nr_sectors: 8,
            flags: Flags::FUA | Flags::METADATA,
            ..Header::default()
        };
        assert_eq!(parse_header(&pack_header(&w, 512)).unwrap(), w);
        assert_eq!(w.span(512), 9 * 512);
        assert!(w.is_barrier());

        let m = Header {
            flags: Flags::MARK,
            data_len: 7,
            mark: Some("flush-3".into()),
            ..Header::default()
        };
        assert_eq!(parse_header(&pack_header(&m, 4096)).unwrap(), m);
        assert_eq!(m.span(4096), 4096);

        // A discard takes only its header block.
        let d = Header {
            sector: 64,
            nr_sectors: 128,
            flags: Flags::DISCARD,
            ..Header::default()
        };
        assert_eq!(d.span(512), 512);
        assert!(!d.is_barrier());
        assert_eq!(d.flags.to_string(), "DISCARD");
        assert_eq!(Flags::default().to_string(), "-");
        assert_eq!((Flags::FLUSH | Flags::FUA).to_string(), "FLUSH|FUA");

        let mut bad = pack_header(&w, 512);
        bad[16] = 0x40;
        assert!(parse_header(&bad).is_err());
        let mut bad = pack_header(&m, 512);
        bad[24..32].copy_from_slice(&600u64.to_le_bytes());
        assert!(parse_header(&bad).is_err());
    }
}
