// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Exception stores: where a snapshot keeps the chunks it copied and the record of them.
//!
//! Persistent (`P`, `PO`) has the on-disk format of drivers/md/dm-snap-persistent.c: chunk 0
//! is the header (`SnAp` magic, valid flag, version 1, chunk size in sectors, little-endian);
//! then metadata areas, each one chunk of `(old_chunk, new_chunk)` pairs (16 bytes each)
//! followed by the data chunks it describes. A pair with `new_chunk == 0` ends the list.
//! Copied data is flushed before the area that records it is written (FUA), so a crash never
//! leaves an exception that points at data that did not reach the disk.
//!
//! Transient (`N`) keeps nothing on disk: chunks are handed out from the start of the device.

use crate::dm::{
    dev::BlockDevice,
    sync_io::{IoClient, SectorBuf, WriteMode},
};
use crate::pdata::bytes::{get_u32, get_u64, put_u32, put_u64};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{c_str, prelude::*};

/// "SnAp", little-endian.
pub const SNAP_MAGIC: u32 = 0x7041_6e53;
/// The only on-disk version.
pub const DISK_VERSION: u32 = 1;
/// Chunks before the first metadata area.
const HEADER_CHUNKS: u64 = 1;
/// Chunk size when the table gives 0 and the device has no header (16 KiB).
const DEFAULT_CHUNK_SECTORS: u32 = 32;
/// Bytes of one on-disk exception.
const EXCEPTION_BYTES: usize = 16;

/// Checks a chunk size against the devices (`dm_exception_store_set_chunk_size`).
pub fn check_chunk_size(chunk: u32, cow_lbs: u32, origin_lbs: u32) -> Result<(), &'static CStr> {
    if !chunk.is_power_of_two() {
        return Err(c_str!("Chunk size is not a power of 2"));
    }
    let multiple = |lbs: u32| chunk % (lbs >> 9).max(1) == 0;
    if !multiple(cow_lbs) || !multiple(origin_lbs) {
        return Err(c_str!("Chunk size is not a multiple of device blocksize"));
    }
    if chunk > (i32::MAX as u32) >> 9 {
        return Err(c_str!("Chunk size is too high"));
    }
    Ok(())
}

/// What loading a persistent store found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// The device had no header: a new store was written.
    New,
    /// Exceptions were read.
    Valid,
    /// The header says the snapshot was invalidated.
    Invalid,
}

/// A persistent store (`P`/`PO`).
pub struct Persistent {
    io: IoClient,
    chunk: u32,
    overflow: bool,
    valid: bool,
    per_area: u32,
    /// The metadata area being filled.
    area: SectorBuf,
    current_area: u64,
    /// Exceptions in `area`.
    committed: u32,
    /// The current area on disk holds the bytes of `area` (false after a failed read or
    /// write of it left the two apart: the next commit writes the area whole).
    area_on_disk: bool,
}

/// A transient store (`N`).
pub struct Transient {
    chunk: u32,
}

/// Hands out COW chunks without a lock, so the map path allocates while a commit writes the
/// store (the store's mutex is held across that write).
pub struct ChunkAlloc {
    /// The next chunk to hand out.
    next: AtomicU64,
    chunk: u64,
    /// Persistent stores: chunks from one metadata area to the next (each area is skipped);
    /// 0 for transient stores.
    stride: u64,
}

impl ChunkAlloc {
    /// An allocator for `store` whose next free chunk is `next`.
    pub fn new(store: &Store, next: u64) -> Self {
        let stride = match store {
            Store::Persistent(p) => p.per_area as u64 + 1,
            Store::Transient(_) => 0,
        };
        ChunkAlloc {
            next: AtomicU64::new(next),
            chunk: store.chunk() as u64,
            stride,
        }
    }

    /// The next chunk to hand out.
    pub fn next_free(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Sets the next chunk to hand out (the merge gives chunks back).
    pub fn set_next_free(&self, next: u64) {
        self.next.store(next, Ordering::Release);
    }

    /// Hands out a free chunk, or `None` when the device (of `cow_sectors`) is full.
    pub fn prepare(&self, cow_sectors: u64) -> Option<u64> {
        let mut cur = self.next.load(Ordering::Acquire);
        loop {
            if self.chunk == 0 || cow_sectors < (cur + 1).checked_mul(self.chunk)? {
                return None;
            }
            let mut next = cur + 1;
            if self.stride != 0 && next % self.stride == HEADER_CHUNKS {
                next += 1;
            }
            match self
                .next
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(cur),
                Err(now) => cur = now,
            }
        }
    }
}

/// An exception store.
pub enum Store {
    /// On-disk exceptions.
    Persistent(Persistent),
    /// In-memory exceptions only.
    Transient(Transient),
}

/// The store a table line asks for, before the device is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `P` (`overflow: false`) or `PO`.
    Persistent {
        /// `PO`: a full snapshot reports `Overflow` instead of becoming invalid.
        overflow: bool,
    },
    /// `N`.
    Transient,
}

impl StoreKind {
    /// Parses the store argument as dm-exception-store.c does (case-insensitive first letter,
    /// `O` as the persistent store's only option).
    pub fn parse(arg: &[u8]) -> Result<Self, ()> {
        match arg.first().map(|c| c.to_ascii_uppercase()) {
            Some(b'P') => match arg.get(1) {
                None => Ok(StoreKind::Persistent { overflow: false }),
                Some(c) if c.eq_ignore_ascii_case(&b'O') => {
                    Ok(StoreKind::Persistent { overflow: true })
                }
                Some(_) => {
                    pr_err!(
                        "device-mapper: persistent snapshot: Unsupported persistent store option: {}\n",
                        kernel::str::BStr::from_bytes(arg.get(1..).unwrap_or(&[]))
                    );
                    Err(())
                }
            },
            Some(b'N') => Ok(StoreKind::Transient),
            _ => Err(()),
        }
    }
}

fn area_location(per_area: u32, area: u64) -> u64 {
    HEADER_CHUNKS + (per_area as u64 + 1) * area
}

impl Persistent {
    fn sector(&self, chunk: u64) -> u64 {
        chunk * self.chunk as u64
    }

    /// `next` moved past a metadata area.
    fn skip_metadata(&self, next: u64) -> u64 {
        let stride = self.per_area as u64 + 1;
        if next % stride == HEADER_CHUNKS {
            next + 1
        } else {
            next
        }
    }

    fn write_area(&self, cow: BlockDevice<'_>) -> Result {
        let at = self.sector(area_location(self.per_area, self.current_area));
        self.io.write(cow, at, &self.area, WriteMode::FlushFua)
    }

    /// Writes the part of the current area that holds entries `from..to`, in whole logical
    /// blocks of `cow`. With `area_on_disk`, the rest of the area on disk already equals the
    /// area in memory (read from there, or zeroed on both, and every change written since),
    /// so the disk ends up with the bytes a write of the whole area (dm-snap's) would leave.
    fn write_area_entries(&self, cow: BlockDevice<'_>, from: u32, to: u32) -> Result {
        let at = self.sector(area_location(self.per_area, self.current_area));
        let part = self.entries_part(cow, from, to);
        self.io
            .write_part(cow, at, &self.area, part, WriteMode::FlushFua)
    }

    /// The sectors of the current area that hold entries `from..to`, in whole logical blocks
    /// of `cow`.
    fn entries_part(&self, cow: BlockDevice<'_>, from: u32, to: u32) -> core::ops::Range<u64> {
        let unit = u64::from((cow.logical_block_size() >> 9).max(1));
        let chunk = u64::from(self.chunk);
        let first = (u64::from(from) * EXCEPTION_BYTES as u64 / 512) / unit * unit;
        let end = (u64::from(to) * EXCEPTION_BYTES as u64)
            .div_ceil(512)
            .div_ceil(unit)
            * unit;
        first.min(chunk)..end.min(chunk)
    }

    /// Puts `exceptions` (`n` of them) in the current area without writing it, for a commit
    /// whose area write is asynchronous; returns where the area starts on `cow` and which of
    /// its sectors to write durably (at most `max`), after which [`Self::staged`] must be
    /// told the write's result (or [`Self::unstage`] called if it could not start). `None`,
    /// with nothing changed, when the synchronous [`Self::commit`] must do it: the area would
    /// fill (the next one is zeroed first), the area on disk differs from memory, or the store
    /// is invalid.
    pub fn stage(
        &mut self,
        cow: BlockDevice<'_>,
        exceptions: impl Iterator<Item = (u64, u64)>,
        n: u32,
        max: u64,
    ) -> Option<(u64, core::ops::Range<u64>)> {
        let to = self.committed.checked_add(n)?;
        if !self.valid || !self.area_on_disk || n == 0 || to >= self.per_area {
            return None;
        }
        let part = self.entries_part(cow, self.committed, to);
        if part.is_empty() || part.end - part.start > max {
            return None;
        }
        for (old, new) in exceptions.take(n as usize) {
            self.append(old, new);
        }
        Some((
            self.sector(area_location(self.per_area, self.current_area)),
            part,
        ))
    }

    /// Puts the pair `(old, new)` after the current area's last entry (in memory).
    fn append(&mut self, old: u64, new: u64) {
        let off = self.committed as usize * EXCEPTION_BYTES;
        put_u64(self.area.bytes_mut(), off, old);
        put_u64(self.area.bytes_mut(), off + 8, new);
        self.committed += 1;
    }

    /// The current area's bytes (the image an asynchronous commit writes part of).
    pub fn area_bytes(&self) -> &[u8] {
        self.area.bytes()
    }

    /// Takes back the last `n` exceptions staged by [`Self::stage`], whose write did not
    /// start.
    pub fn unstage(&mut self, n: u32) {
        let n = n.min(self.committed);
        for _ in 0..n {
            self.committed -= 1;
            let off = self.committed as usize * EXCEPTION_BYTES;
            put_u64(self.area.bytes_mut(), off, 0);
            put_u64(self.area.bytes_mut(), off + 8, 0);
        }
    }

    /// The result of a staged commit's write: on failure the store is invalid (as when
    /// [`Self::commit`] fails), and the area on disk no longer matches memory.
    pub fn staged(&mut self, ok: bool) {
        if !ok {
            self.valid = false;
            self.area_on_disk = false;
        }
    }

    /// Moves to the next area, already zeroed on disk.
    fn next_area(&mut self) {
        self.committed = 0;
        self.current_area += 1;
        self.area.clear();
        self.area_on_disk = true;
    }

    fn zero_area(&self, cow: BlockDevice<'_>, area: u64) -> Result {
        let zero = SectorBuf::zeroed(self.chunk)?;
        let at = self.sector(area_location(self.per_area, area));
        self.io.write(cow, at, &zero, WriteMode::Plain)
    }

    fn write_header(&self, cow: BlockDevice<'_>) -> Result {
        let mut h = SectorBuf::zeroed(self.chunk)?;
        let b = h.bytes_mut();
        put_u32(b, 0, SNAP_MAGIC);
        put_u32(b, 4, self.valid as u32);
        put_u32(b, 8, DISK_VERSION);
        put_u32(b, 12, self.chunk);
        self.io.write(cow, 0, &h, WriteMode::Plain)
    }

    /// Opens the store on `cow`: reads the header (writing a new one on a blank device) and
    /// hands every exception to `add`. `chunk` is the table's chunk size (0: the device's,
    /// or the default); the header's wins, as in dm-snap-persistent. Also returns the next
    /// free chunk.
    pub fn load(
        cow: BlockDevice<'_>,
        origin_lbs: u32,
        chunk: u32,
        overflow: bool,
        add: &mut dyn FnMut(u64, u64) -> Result,
    ) -> Result<(Self, Loaded, u64)> {
        let supplied = chunk != 0;
        let chunk = if supplied {
            chunk
        } else {
            DEFAULT_CHUNK_SECTORS.max(cow.logical_block_size() >> 9)
        };
        let io = IoClient::new()?;
        let mut hdr = SectorBuf::zeroed(chunk)?;
        io.read(cow, 0, &mut hdr)?;
        let h = hdr.bytes();
        let magic = get_u32(h, 0);
        let mut ps = Persistent {
            io,
            chunk,
            overflow,
            valid: true,
            per_area: 0,
            area: SectorBuf::zeroed(chunk)?,
            current_area: 0,
            committed: 0,
            area_on_disk: true,
        };
        let first_free = HEADER_CHUNKS + 1;
        let new = magic == 0;
        let (valid, version) = (get_u32(h, 4), get_u32(h, 8));
        if !new {
            if magic != SNAP_MAGIC {
                pr_warn!("device-mapper: persistent snapshot: Invalid or corrupt snapshot\n");
                return Err(ENXIO);
            }
            let disk_chunk = get_u32(h, 12);
            if disk_chunk != chunk {
                if supplied {
                    pr_warn!(
                        "device-mapper: persistent snapshot: chunk size {} in device metadata overrides table chunk size of {}.\n",
                        disk_chunk,
                        chunk
                    );
                }
                if let Err(msg) = check_chunk_size(disk_chunk, cow.logical_block_size(), origin_lbs)
                {
                    pr_err!(
                        "device-mapper: persistent snapshot: invalid on-disk chunk size {}: {}.\n",
                        disk_chunk,
                        msg
                    );
                    return Err(EINVAL);
                }
                ps.chunk = disk_chunk;
                ps.area = SectorBuf::zeroed(disk_chunk)?;
            }
        }
        ps.per_area = ps.chunk * 512 / EXCEPTION_BYTES as u32;
        if new {
            if let Err(e) = ps.write_header(cow) {
                pr_warn!("device-mapper: persistent snapshot: write_header failed\n");
                return Err(e);
            }
            if let Err(e) = ps.zero_area(cow, 0) {
                pr_warn!("device-mapper: persistent snapshot: zero_disk_area(0) failed\n");
                return Err(e);
            }
            return Ok((ps, Loaded::New, first_free));
        }
        if version != DISK_VERSION {
            pr_warn!(
                "device-mapper: persistent snapshot: unable to handle snapshot disk version {}\n",
                version as i32
            );
            return Err(EINVAL);
        }
        if valid == 0 {
            ps.valid = false;
            return Ok((ps, Loaded::Invalid, first_free));
        }
        let next_free = ps.read_exceptions(cow, add)?;
        Ok((ps, Loaded::Valid, next_free))
    }

    /// Reads every exception; returns the next free chunk.
    fn read_exceptions(
        &mut self,
        cow: BlockDevice<'_>,
        add: &mut dyn FnMut(u64, u64) -> Result,
    ) -> Result<u64> {
        let mut next_free = HEADER_CHUNKS + 1;
        let mut buf = SectorBuf::zeroed(self.chunk)?;
        let mut area = 0u64;
        loop {
            let at = self.sector(area_location(self.per_area, area));
            self.io.read(cow, at, &mut buf)?;
            let mut full = true;
            for i in 0..self.per_area as usize {
                let old = get_u64(buf.bytes(), i * EXCEPTION_BYTES);
                let new = get_u64(buf.bytes(), i * EXCEPTION_BYTES + 8);
                if new == 0 {
                    self.committed = i as u32;
                    full = false;
                    break;
                }
                if next_free <= new {
                    next_free = new + 1;
                }
                add(old, new)?;
            }
            if !full {
                core::mem::swap(&mut self.area, &mut buf);
                self.current_area = area;
                break;
            }
            area += 1;
        }
        Ok(self.skip_metadata(next_free))
    }

    /// Records `exceptions` durably (their data is already written). On failure the store is
    /// no longer valid.
    pub fn commit(&mut self, cow: BlockDevice<'_>, exceptions: &[(u64, u64)]) -> Result {
        if self.committed >= self.per_area && !exceptions.is_empty() && self.valid {
            // A merge stepped back into this full area and stopped before merging from it:
            // the area after it (merged empty) takes the new pairs.
            if self.zero_area(cow, self.current_area + 1).is_err() {
                self.valid = false;
                return Err(EIO);
            }
            self.next_area();
        }
        let mut dirty = false;
        // The first entry this commit writes in the current area.
        let mut from = self.committed;
        for &(old, new) in exceptions {
            self.append(old, new);
            dirty = true;
            if self.committed == self.per_area {
                // The next area is zeroed first, so the list ends there after a crash.
                if self.valid && self.zero_area(cow, self.current_area + 1).is_err() {
                    self.valid = false;
                }
                if self.valid && self.write_area(cow).is_err() {
                    self.valid = false;
                }
                self.next_area();
                dirty = false;
                from = 0;
            }
        }
        if dirty && self.valid {
            let written = if self.area_on_disk {
                self.write_area_entries(cow, from, self.committed)
            } else {
                self.write_area(cow)
            };
            match written {
                Ok(()) => self.area_on_disk = true,
                Err(_) => self.valid = false,
            }
        }
        if self.valid {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// Marks the snapshot invalid on disk.
    pub fn drop_snapshot(&mut self, cow: BlockDevice<'_>) {
        self.valid = false;
        if self.write_header(cow).is_err() {
            pr_warn!("device-mapper: persistent snapshot: write header failed\n");
        }
    }

    /// The last exception not yet merged and how many exceptions before it are consecutive
    /// with it (in both chunks), within its area; `None` when everything is merged.
    pub fn prepare_merge(&mut self, cow: BlockDevice<'_>) -> Result<Option<(u64, u64, u32)>> {
        if self.committed == 0 {
            if self.current_area == 0 {
                return Ok(None);
            }
            self.current_area -= 1;
            let at = self.sector(area_location(self.per_area, self.current_area));
            // Until the read succeeds, `area` is not what that area holds on disk.
            self.area_on_disk = false;
            self.io.read(cow, at, &mut self.area)?;
            self.area_on_disk = true;
            self.committed = self.per_area;
        }
        let at = |i: u32| {
            let b = self.area.bytes();
            let off = i as usize * EXCEPTION_BYTES;
            (get_u64(b, off), get_u64(b, off + 8))
        };
        let (old, new) = at(self.committed - 1);
        let mut n = 1u32;
        while n < self.committed {
            let (o, w) = at(self.committed - 1 - n);
            if o != old.wrapping_sub(n as u64) || w != new.wrapping_sub(n as u64) {
                break;
            }
            n += 1;
        }
        Ok(Some((old, new, n)))
    }

    /// Forgets the last `n` exceptions (their chunks are back in the origin); returns the
    /// next free chunk.
    pub fn commit_merge(&mut self, cow: BlockDevice<'_>, n: u32) -> Result<u64> {
        let n = n.min(self.committed);
        for i in 0..n {
            let off = (self.committed - 1 - i) as usize * EXCEPTION_BYTES;
            put_u64(self.area.bytes_mut(), off, 0);
            put_u64(self.area.bytes_mut(), off + 8, 0);
        }
        // The pairs are cleared in memory: the disk matches again once this write succeeds.
        self.area_on_disk = false;
        self.write_area(cow)?;
        self.area_on_disk = true;
        self.committed -= n;
        // What next_free would be had every exception been committed in order (dm-snap
        // keeps it for the status only).
        Ok(area_location(self.per_area, self.current_area) + self.committed as u64 + 1)
    }
}

impl Store {
    /// A transient store with chunk size `chunk` (0: not set, refused by the target).
    pub fn transient(chunk: u32) -> Self {
        Store::Transient(Transient { chunk })
    }

    /// The chunk size in sectors.
    pub fn chunk(&self) -> u32 {
        match self {
            Store::Persistent(p) => p.chunk,
            Store::Transient(t) => t.chunk,
        }
    }

    /// `PO`: overflow reported instead of invalidation.
    pub fn overflow_allowed(&self) -> bool {
        matches!(self, Store::Persistent(p) if p.overflow)
    }

    /// Whether the store can merge (persistent only).
    pub fn can_merge(&self) -> bool {
        matches!(self, Store::Persistent(_))
    }

    /// Records completed exceptions.
    pub fn commit(&mut self, cow: BlockDevice<'_>, exceptions: &[(u64, u64)]) -> Result {
        match self {
            Store::Persistent(p) => p.commit(cow, exceptions),
            Store::Transient(_) => Ok(()),
        }
    }

    /// The persistent store, for asynchronous commits (a transient one commits nothing).
    pub fn persistent(&mut self) -> Option<&mut Persistent> {
        match self {
            Store::Persistent(p) => Some(p),
            Store::Transient(_) => None,
        }
    }

    /// Marks the store invalid.
    pub fn drop_snapshot(&mut self, cow: BlockDevice<'_>) {
        if let Store::Persistent(p) = self {
            p.drop_snapshot(cow);
        }
    }

    /// See [`Persistent::prepare_merge`]; a transient store has nothing to merge.
    pub fn prepare_merge(&mut self, cow: BlockDevice<'_>) -> Result<Option<(u64, u64, u32)>> {
        match self {
            Store::Persistent(p) => p.prepare_merge(cow),
            Store::Transient(_) => Ok(None),
        }
    }

    /// See [`Persistent::commit_merge`].
    pub fn commit_merge(&mut self, cow: BlockDevice<'_>, n: u32) -> Result<u64> {
        match self {
            Store::Persistent(p) => p.commit_merge(cow, n),
            Store::Transient(_) => Err(EINVAL),
        }
    }

    /// `(total, allocated, metadata)` sectors, as the status reports them, with `next_free`
    /// the allocator's next chunk.
    pub fn usage(&self, cow_sectors: u64, next_free: u64) -> (u64, u64, u64) {
        match self {
            Store::Persistent(p) => (
                cow_sectors,
                next_free * p.chunk as u64,
                (p.current_area + 1 + HEADER_CHUNKS) * p.chunk as u64,
            ),
            Store::Transient(t) => (cow_sectors, next_free * t.chunk as u64, 0),
        }
    }

    /// The store part of the table line (` P 8`, ` PO 8`, ` N 8`).
    pub fn table_args(&self) -> (&'static str, u32) {
        match self {
            Store::Persistent(p) if p.overflow => ("PO", p.chunk),
            Store::Persistent(p) => ("P", p.chunk),
            Store::Transient(t) => ("N", t.chunk),
        }
    }
}
