// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Synchronous reads and writes of areas (or sectors of them), for on-disk formats that are
//! read and written a chunk at a time (the snapshot exception store, the mirror's disk log):
//! a transfer of a few pages is one bio on the stack, a larger one goes through dm-io.
//!
//! The caller must run in process context and not in a bio submission path of the device it
//! writes to (dm-io waits for completion; a target's worker is the right place).
//!
//! C header: [include/linux/dm-io.h](srctree/include/linux/dm-io.h)

use super::{bindings, dev::BlockDevice};
use core::ptr::NonNull;
use kernel::{alloc::flags::GFP_KERNEL, prelude::*};

/// A buffer of whole sectors in vmalloc memory, as dm-io's `DM_IO_VMA` requires.
pub struct SectorBuf(VVec<u8>);

impl SectorBuf {
    /// A zeroed buffer of `sectors` sectors.
    pub fn zeroed(sectors: u32) -> Result<Self> {
        let len = (sectors as usize).checked_mul(512).ok_or(EINVAL)?;
        Ok(SectorBuf(VVec::from_elem(0u8, len, GFP_KERNEL)?))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, to fill.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Sets every byte to zero.
    pub fn clear(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }

    fn sectors(&self) -> u64 {
        (self.0.len() / 512) as u64
    }
}

/// How a write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// A plain write (may sit in the device's volatile cache).
    Plain,
    /// Everything written before is flushed first, and this write is durable when it ends
    /// (`REQ_PREFLUSH | REQ_FUA`).
    FlushFua,
}

/// A dm-io client for synchronous I/O.
///
/// # Invariants
///
/// `client` was returned by `dm_io_client_create` and is destroyed only by `drop`.
pub struct IoClient {
    client: NonNull<bindings::dm_io_client>,
}

// SAFETY: a dm-io client may be used from any thread; dm-io serialises internally.
unsafe impl Send for IoClient {}
// SAFETY: as above.
unsafe impl Sync for IoClient {}

impl IoClient {
    /// Creates a client (a small mempool of bios and pages).
    pub fn new() -> Result<Self> {
        // SAFETY: no precondition; the result is checked below.
        let c = unsafe { bindings::orion_io_client_create() };
        // SAFETY: only inspects the pointer value.
        let err = unsafe { bindings::orion_ptr_err(c.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        // INVARIANT: a live client.
        Ok(IoClient {
            client: NonNull::new(c).ok_or(ENOMEM)?,
        })
    }

    /// The C client.
    pub(crate) fn raw(&self) -> *mut bindings::dm_io_client {
        self.client.as_ptr()
    }

    fn io(
        &self,
        bdev: BlockDevice<'_>,
        sector: u64,
        buf: *mut u8,
        sectors: u64,
        op: u32,
    ) -> Result {
        // SAFETY: the client is live; `bdev` is open for the borrow; `buf` is vmalloc memory
        // of at least `sectors` sectors, borrowed by the caller for this synchronous call.
        let r = unsafe {
            bindings::orion_sync_io(
                self.client.as_ptr(),
                bdev.as_raw(),
                sector,
                sectors,
                buf.cast(),
                op as i32,
            )
        };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes from `sector` of `bdev` into `buf`.
    pub fn read(&self, bdev: BlockDevice<'_>, sector: u64, buf: &mut SectorBuf) -> Result {
        let n = buf.sectors();
        self.io(
            bdev,
            sector,
            buf.0.as_mut_ptr(),
            n,
            bindings::ORION_SYNC_READ,
        )
    }

    /// Writes `buf` to `sector` of `bdev`.
    pub fn write(
        &self,
        bdev: BlockDevice<'_>,
        sector: u64,
        buf: &SectorBuf,
        mode: WriteMode,
    ) -> Result {
        self.write_part(bdev, sector, buf, 0..buf.sectors(), mode)
    }

    /// Writes sectors `part` of `buf`, the image of `bdev` from `sector` on, to their place
    /// (`sector + part.start` on). `EINVAL` when `part` is empty or not within `buf`.
    pub fn write_part(
        &self,
        bdev: BlockDevice<'_>,
        sector: u64,
        buf: &SectorBuf,
        part: core::ops::Range<u64>,
        mode: WriteMode,
    ) -> Result {
        if part.start >= part.end || part.end > buf.sectors() {
            return Err(EINVAL);
        }
        let op = match mode {
            WriteMode::Plain => bindings::ORION_SYNC_WRITE,
            WriteMode::FlushFua => bindings::ORION_SYNC_WRITE_FLUSH_FUA,
        };
        // dm-io only reads the buffer for a write.
        let p = buf
            .0
            .get((part.start as usize) * 512..)
            .ok_or(EINVAL)?
            .as_ptr()
            .cast_mut();
        self.io(
            bdev,
            sector.checked_add(part.start).ok_or(EINVAL)?,
            p,
            part.end - part.start,
            op,
        )
    }
}

impl Drop for IoClient {
    fn drop(&mut self) {
        // SAFETY: the client is live and no I/O is in flight (every call is synchronous).
        unsafe { bindings::dm_io_client_destroy(self.client.as_ptr()) };
    }
}
