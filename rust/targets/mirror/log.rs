// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The dirty region log of a mirror (drivers/md/dm-log.c): which regions may differ between
//! the legs (not clean) and which are known to be in sync.
//!
//! `core` keeps the clean bits in memory; `disk` keeps them on a log device, compatible with
//! dm-log: sector 0 holds the header (magic 0x4D695272, version 2, number of regions; LE
//! 32/32/64-bit), the clean bitmap starts at byte 1024 (bit `r` of byte `r / 8`, least
//! significant first, rounded to 64-bit words), and the whole of it is written at once. A
//! region is marked dirty on disk, with a flush, before a write to it is issued.

use crate::dm::{
    dev::{BlockDevice, DevName, OpenBdev},
    sync_io::{IoClient, SectorBuf, WriteMode},
};
use crate::pdata::bytes::{get_u32, get_u64, put_u32, put_u64};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

/// "MiRr", little-endian.
pub const MIRROR_MAGIC: u32 = 0x4D69_5272;
/// The on-disk version.
pub const MIRROR_DISK_VERSION: u32 = 2;
/// Bytes before the bitmap on disk.
const BITS_OFFSET: usize = 1024;

/// How the log starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// From what the log device says (every region out of sync with a core log).
    Default,
    /// `sync`: every region is resynchronised.
    Force,
    /// `nosync`: every region is taken as in sync.
    No,
}

/// The log device of a `disk` log.
pub struct DiskDev {
    /// The device, kept open for the log's I/O.
    pub bdev: OpenBdev,
    io: IoClient,
    /// Writing the log failed (status `D`).
    pub failed: bool,
    /// Flushing the log device failed (status `F`).
    pub flush_failed: bool,
}

impl DiskDev {
    /// Marks the log device failed after its header could not be read or written (`what`),
    /// with C's log line.
    fn fail(&mut self, what: &str) {
        pr_warn!(
            "device-mapper: dirty region log: {}: Failed to {} header on dirty region log device\n",
            DevName(self.bdev.bdev().dev_number()),
            what
        );
        self.failed = true;
    }
}

/// Bits readable without a lock: the in-sync bitmap.
pub struct SyncBits {
    words: KVVec<AtomicU64>,
    count: AtomicU64,
}

impl SyncBits {
    fn new(regions: u64) -> Result<Self> {
        let n = regions.div_ceil(64) as usize;
        let mut words = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            words.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        Ok(SyncBits {
            words,
            count: AtomicU64::new(0),
        })
    }

    /// Whether region `r` is in sync.
    pub fn get(&self, r: u64) -> bool {
        self.words
            .get((r / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (r % 64)) != 0)
    }

    fn set(&self, r: u64, on: bool) {
        if let Some(w) = self.words.get((r / 64) as usize) {
            let bit = 1u64 << (r % 64);
            let old = if on {
                w.fetch_or(bit, Ordering::AcqRel)
            } else {
                w.fetch_and(!bit, Ordering::AcqRel)
            };
            match (old & bit != 0, on) {
                (false, true) => {
                    self.count.fetch_add(1, Ordering::AcqRel);
                }
                (true, false) => {
                    self.count.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
        }
    }

    /// Regions in sync.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// A dirty region log.
pub struct DirtyLog {
    /// Region size in sectors (a power of two).
    pub region_size: u32,
    /// Number of regions.
    pub region_count: u64,
    /// `sync`/`nosync`.
    pub sync: SyncMode,
    /// Header and clean bitmap (disk), or the clean bitmap alone (core).
    buf: SectorBuf,
    bits_off: usize,
    bitset_bytes: usize,
    recovering: KVVec<u64>,
    sync_search: u64,
    touched_dirtied: bool,
    touched_cleaned: bool,
    flush_failed: bool,
    /// The log device of a disk log.
    pub disk: Option<DiskDev>,
}

fn bit(b: &[u8], off: usize, r: u64) -> bool {
    b.get(off + (r / 8) as usize)
        .is_some_and(|x| x & (1 << (r % 8)) != 0)
}

fn set_bit(b: &mut [u8], off: usize, r: u64, on: bool) {
    if let Some(x) = b.get_mut(off + (r / 8) as usize) {
        if on {
            *x |= 1 << (r % 8);
        } else {
            *x &= !(1 << (r % 8));
        }
    }
}

impl DirtyLog {
    /// A log of `region_count` regions; `disk` for a disk log (its buffer must fit the
    /// device: checked by the caller with [`Self::disk_bytes`]).
    pub fn new(
        region_size: u32,
        region_count: u64,
        sync: SyncMode,
        disk: Option<(OpenBdev, u32)>,
    ) -> Result<(Self, SyncBits)> {
        let bitset_bytes = (region_count.div_ceil(64) * 8) as usize;
        let (bits_off, bytes, disk) = match disk {
            Some((bdev, lbs)) => (
                BITS_OFFSET,
                Self::disk_bytes(region_count, lbs),
                Some(DiskDev {
                    bdev,
                    io: IoClient::new()?,
                    failed: false,
                    flush_failed: false,
                }),
            ),
            None => (0, bitset_bytes.div_ceil(512) * 512, None),
        };
        let mut buf = SectorBuf::zeroed((bytes / 512).max(1) as u32)?;
        // Every region starts clean (dm-log sets the whole bitmap).
        for b in buf.bytes_mut().iter_mut().skip(bits_off).take(bitset_bytes) {
            *b = 0xff;
        }
        let words = region_count.div_ceil(64) as usize;
        let mut recovering = KVVec::with_capacity(words, GFP_KERNEL)?;
        for _ in 0..words {
            recovering.push(0u64, GFP_KERNEL)?;
        }
        let bits = SyncBits::new(region_count)?;
        if sync == SyncMode::No {
            for r in 0..region_count {
                bits.set(r, true);
            }
        }
        Ok((
            DirtyLog {
                region_size,
                region_count,
                sync,
                buf,
                bits_off,
                bitset_bytes,
                recovering,
                sync_search: 0,
                touched_dirtied: false,
                touched_cleaned: false,
                flush_failed: false,
                disk,
            },
            bits,
        ))
    }

    /// Bytes a disk log of `regions` regions needs on a device of logical block `lbs`.
    pub fn disk_bytes(regions: u64, lbs: u32) -> usize {
        let bitset = (regions.div_ceil(64) * 8) as usize;
        (BITS_OFFSET + bitset).div_ceil(lbs.max(512) as usize) * lbs.max(512) as usize
    }

    fn dev(&self) -> Option<BlockDevice<'_>> {
        self.disk.as_ref().map(|d| d.bdev.bdev())
    }

    /// Whether region `r` is clean (the legs agree).
    pub fn is_clean(&self, r: u64) -> bool {
        bit(self.buf.bytes(), self.bits_off, r)
    }

    /// Marks region `r` dirty (before a write to it).
    pub fn mark_region(&mut self, r: u64) {
        let off = self.bits_off;
        set_bit(self.buf.bytes_mut(), off, r, false);
        self.touched_dirtied = true;
    }

    /// Marks region `r` clean (no write in flight, legs equal).
    pub fn clear_region(&mut self, r: u64) {
        if !self.flush_failed {
            let off = self.bits_off;
            set_bit(self.buf.bytes_mut(), off, r, true);
            self.touched_cleaned = true;
        }
    }

    /// Makes the log durable: a disk log writes itself when it changed, with a flush of the
    /// log device when a region was marked dirty. `flush_legs` flushes the legs first when
    /// a region was cleaned (the writes it covered must be on disk); if that fails every
    /// region is marked dirty (dm-log's `flush_failed`).
    pub fn flush(&mut self, flush_legs: &mut dyn FnMut() -> Result) -> Result {
        if self.disk.is_none() || (!self.touched_cleaned && !self.touched_dirtied) {
            self.touched_cleaned = false;
            self.touched_dirtied = false;
            return Ok(());
        }
        if self.touched_cleaned && flush_legs().is_err() {
            self.flush_failed = true;
            for r in 0..self.region_count {
                self.mark_region(r);
            }
        }
        let r = self.write();
        let Some(d) = self.disk.as_mut() else {
            return r;
        };
        match r {
            Err(e) => {
                d.failed = true;
                Err(e)
            }
            Ok(()) => {
                if self.touched_dirtied {
                    if d.bdev.bdev().flush().is_err() {
                        d.flush_failed = true;
                        d.failed = true;
                        return Err(EIO);
                    }
                    self.touched_dirtied = false;
                }
                self.touched_cleaned = false;
                Ok(())
            }
        }
    }

    fn write(&self) -> Result {
        match (self.dev(), self.disk.as_ref()) {
            (Some(dev), Some(d)) => d.io.write(dev, 0, &self.buf, WriteMode::Plain),
            _ => Ok(()),
        }
    }

    /// The resume of a log: a disk log reads its header and bitmap (a new log unless it
    /// has the magic and `sync` was not asked), takes its clean regions as in sync and
    /// writes itself back; a core log restarts the resync search.
    pub fn resume(&mut self, sync: &SyncBits) -> Result {
        self.sync_search = 0;
        let read = match self.disk.as_ref() {
            Some(d) => d.io.read(d.bdev.bdev(), 0, &mut self.buf),
            None => return Ok(()),
        };
        // C's read_header: a log it cannot read, or of another version, is failed (status
        // `D`) and taken as covering no region; the resume goes on and writes a new header.
        let header = match read {
            Err(e) => Err(e),
            Ok(()) => {
                let h = self.buf.bytes();
                let (mut version, mut nr) = (MIRROR_DISK_VERSION, 0);
                if self.sync == SyncMode::Default && get_u32(h, 0) == MIRROR_MAGIC {
                    version = get_u32(h, 4);
                    nr = get_u64(h, 8);
                }
                // Version 1 logs were little-endian too.
                if version == 1 || version == MIRROR_DISK_VERSION {
                    Ok(nr)
                } else {
                    pr_warn!("device-mapper: dirty region log: incompatible disk log version\n");
                    Err(EINVAL)
                }
            }
        };
        let nr = match header {
            Ok(nr) => nr,
            Err(_) => {
                if let Some(d) = self.disk.as_mut() {
                    d.fail("read");
                }
                0
            }
        };
        // Regions the log did not cover (a new log, or the device grew).
        for r in nr.min(self.region_count)..self.region_count {
            if self.sync == SyncMode::No {
                self.clear_region(r);
            } else {
                self.mark_region(r);
            }
        }
        // Bits past the last region are zero.
        let mut r = self.region_count;
        while r % 64 != 0 {
            let off = self.bits_off;
            set_bit(self.buf.bytes_mut(), off, r, false);
            r += 1;
        }
        for r in 0..self.region_count {
            sync.set(r, self.is_clean(r));
        }
        let h = self.buf.bytes_mut();
        put_u32(h, 0, MIRROR_MAGIC);
        put_u32(h, 4, MIRROR_DISK_VERSION);
        put_u64(h, 8, self.region_count);
        let r = self.write().and_then(|()| {
            let d = self.disk.as_mut().ok_or(EINVAL)?;
            d.bdev.bdev().flush().inspect_err(|_| d.flush_failed = true)
        });
        if r.is_err() {
            if let Some(d) = self.disk.as_mut() {
                d.fail("write");
            }
        }
        self.touched_cleaned = false;
        self.touched_dirtied = false;
        r
    }

    /// The next region out of sync and not being recovered; marks it recovering.
    pub fn get_resync_work(&mut self, sync: &SyncBits) -> Option<u64> {
        while self.sync_search < self.region_count {
            let r = self.sync_search;
            self.sync_search += 1;
            let w = (r / 64) as usize;
            let b = 1u64 << (r % 64);
            if sync.get(r) || self.recovering.get(w).is_some_and(|x| x & b != 0) {
                continue;
            }
            if let Some(x) = self.recovering.get_mut(w) {
                *x |= b;
            }
            return Some(r);
        }
        None
    }

    /// Ends the recovery of `r` (or marks it out of sync after a write failure).
    pub fn set_region_sync(&mut self, sync: &SyncBits, r: u64, in_sync: bool) {
        if let Some(x) = self.recovering.get_mut((r / 64) as usize) {
            *x &= !(1u64 << (r % 64));
        }
        sync.set(r, in_sync);
    }

    /// The status part of the log, `INFO`: `1 core` or `3 disk <dev> <A|D|F>`.
    pub fn status_info(&self, dev_name: &CStr, out: &mut crate::dm::status::StatusWriter<'_>) {
        match self.disk.as_ref() {
            None => out.emit(format_args!("1 core")),
            Some(d) => out.emit(format_args!(
                "3 disk {} {}",
                dev_name,
                if d.flush_failed {
                    'F'
                } else if d.failed {
                    'D'
                } else {
                    'A'
                }
            )),
        }
    }

    /// The table part of the log: `core <n> <region size> [[no]sync ]` or `disk <n> <dev>
    /// <region size> [[no]sync ]` (with dm-log's trailing space).
    pub fn status_table(&self, dev_name: &CStr, out: &mut crate::dm::status::StatusWriter<'_>) {
        let extra = (self.sync != SyncMode::Default) as u32;
        match self.disk {
            None => out.emit(format_args!("core {} {} ", 1 + extra, self.region_size)),
            Some(_) => out.emit(format_args!(
                "disk {} {} {} ",
                2 + extra,
                dev_name,
                self.region_size
            )),
        }
        match self.sync {
            SyncMode::Default => {}
            SyncMode::Force => out.emit(format_args!("sync ")),
            SyncMode::No => out.emit(format_args!("nosync ")),
        }
    }

    /// Bytes of the clean bitmap (for tests of the layout).
    pub fn bitset_bytes(&self) -> usize {
        self.bitset_bytes
    }
}
