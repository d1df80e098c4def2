// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Metadata blocks through dm-bufio: the kernel's [`BlockManager`] for `crate::pdata`.
//!
//! Each cached buffer carries two bytes of auxiliary data: the code of the [`Kind`] it was
//! checked as (0 until checked), and its lock state while held (0 free, 1..=254 readers,
//! 255 a writer). A block is checked once, when first read; dm-bufio's write callback seals a
//! dirty block (location and checksum) just before it goes to disk. A request that conflicts
//! with a held lock (a write of a block being read, a read of a block being written) fails
//! with `Busy`, as C's block manager refuses it, so no two references to one buffer alias.
//!
//! C header: [include/linux/dm-bufio.h](srctree/include/linux/dm-bufio.h)

use super::{bindings, dev::OpenBdev};
use crate::pdata::{
    block::{BlockManager, BlockNr, Kind, BLOCK_SIZE},
    error::{Error as PdError, Result as PdResult},
    space_map::{metadata::MAX_BITMAPS, IndexEntry},
};
use core::ptr::NonNull;
use kernel::{prelude::*, sync::Arc};

/// Buffers one thread may hold at once: a btree operation holds a parent and a child, the
/// space map a bitmap while the index is read; dm-bufio reserves them against deadlock.
const RESERVED_BUFFERS: u32 = 16;

/// Auxiliary bytes per buffer: the kind code and the lock state.
const AUX_SIZE: usize = 2;
/// The lock state of a buffer held for writing.
const WRITE_LOCKED: u8 = u8::MAX;

/// A dm-bufio client over a metadata device, in 4 KiB blocks.
///
/// # Invariants
///
/// `client` was returned by `dm_bufio_client_create` with `BLOCK_SIZE` blocks and `AUX_SIZE`
/// bytes of auxiliary data per buffer, and is destroyed only by `drop`, before `_dev` (which
/// keeps its device open) is released.
pub struct Bufio {
    client: NonNull<bindings::dm_bufio_client>,
    /// Keeps the device open for the client (dropped after it).
    _dev: Arc<OpenBdev>,
    /// The most blocks of the device used (the device may be bigger, or grow).
    max_blocks: u64,
}

// SAFETY: dm-bufio clients lock internally and may be used from any thread.
unsafe impl Send for Bufio {}
// SAFETY: as above; every method takes `&self` and relies on dm-bufio's locking.
unsafe impl Sync for Bufio {}

/// Seals a dirty buffer before dm-bufio writes it.
///
/// # Safety
///
/// - Called by dm-bufio with a buffer of a client created by [`Bufio::new`].
unsafe extern "C" fn write_callback(buf: *mut bindings::dm_buffer) {
    // SAFETY: `buf` is a live buffer of our client (AUX_SIZE aux bytes, BLOCK_SIZE of data), held
    // by dm-bufio for the duration of the callback.
    let (code, b, data) = unsafe {
        let aux = bindings::dm_bufio_get_aux_data(buf).cast::<u8>();
        let data = bindings::dm_bufio_get_block_data(buf).cast::<u8>();
        (
            *aux,
            bindings::dm_bufio_get_block_number(buf),
            core::slice::from_raw_parts_mut(data, BLOCK_SIZE),
        )
    };
    if let Some(kind) = Kind::from_code(code) {
        kind.seal(b, data);
    }
}

/// Clears the kind byte of a buffer dm-bufio just allocated (the aux area is not zeroed).
///
/// # Safety
///
/// - Called by dm-bufio with a new buffer of a client created by [`Bufio::new`].
unsafe extern "C" fn alloc_callback(buf: *mut bindings::dm_buffer) {
    // SAFETY: `buf` is a buffer of our client, which has `AUX_SIZE` aux bytes.
    unsafe {
        core::ptr::write_bytes(
            bindings::dm_bufio_get_aux_data(buf).cast::<u8>(),
            0,
            AUX_SIZE,
        )
    };
}

/// A buffer held between `dm_bufio_read`/`dm_bufio_new` and `dm_bufio_release`.
///
/// # Invariants
///
/// `buf` is held by this value; `data` is its `BLOCK_SIZE`-byte block and `aux` its
/// `AUX_SIZE` auxiliary bytes, all valid until `drop` releases the buffer. Once locked
/// (`locked` set), the lock byte records this hold: a writer's hold is the only hold, so
/// `data_mut` is the only reference to the block.
struct Held {
    buf: NonNull<bindings::dm_buffer>,
    data: NonNull<u8>,
    aux: NonNull<u8>,
    locked: Option<bool>,
}

impl Held {
    fn data(&self) -> &[u8] {
        // SAFETY: by the type invariant `data` is a held BLOCK_SIZE block.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), BLOCK_SIZE) }
    }

    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: by the type invariant; only writers call this, and a write lock excludes
        // every other hold of the block.
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr(), BLOCK_SIZE) }
    }

    fn lock_byte(&self) -> *mut u8 {
        // The second aux byte (type invariant: `AUX_SIZE` bytes).
        self.aux.as_ptr().wrapping_add(1)
    }

    /// Takes the block's lock for reading or writing; `Busy` if it conflicts.
    fn lock(&mut self, b: BlockNr, write: bool) -> PdResult<()> {
        // SAFETY: the lock byte is valid while held (type invariant); the metadata layer is
        // used by one thread at a time (the pool's mutex), so plain accesses do not race.
        let state = unsafe { *self.lock_byte() };
        let next = match (write, state) {
            (true, 0) => WRITE_LOCKED,
            (false, s) if s < WRITE_LOCKED - 1 => s + 1,
            _ => return Err(PdError::Busy(b)),
        };
        // SAFETY: as above.
        unsafe { *self.lock_byte() = next };
        self.locked = Some(write);
        Ok(())
    }

    fn kind_code(&self) -> u8 {
        // SAFETY: `aux` is the held buffer's auxiliary byte.
        unsafe { *self.aux.as_ptr() }
    }

    fn set_kind(&mut self, kind: Kind) {
        // SAFETY: as in `kind_code`.
        unsafe { *self.aux.as_ptr() = kind.code() };
    }

    fn mark_dirty(&self) {
        // SAFETY: the buffer is held by this value.
        unsafe { bindings::dm_bufio_mark_buffer_dirty(self.buf.as_ptr()) };
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(write) = self.locked {
            // SAFETY: the lock byte is valid while held; see `lock`.
            unsafe {
                let p = self.lock_byte();
                *p = if write { 0 } else { (*p).saturating_sub(1) };
            }
        }
        // SAFETY: the buffer is held by this value and released once.
        unsafe { bindings::dm_bufio_release(self.buf.as_ptr()) };
    }
}

/// The space map index on the heap.
pub struct HeapIndex(KVec<IndexEntry>);

impl AsRef<[IndexEntry]> for HeapIndex {
    fn as_ref(&self) -> &[IndexEntry] {
        &self.0
    }
}

impl AsMut<[IndexEntry]> for HeapIndex {
    fn as_mut(&mut self) -> &mut [IndexEntry] {
        &mut self.0
    }
}

impl Bufio {
    /// Creates a client over `bdev`, using at most `max_blocks` blocks of it.
    pub fn new(dev: Arc<OpenBdev>, max_blocks: u64) -> Result<Self> {
        let bdev = dev.bdev();
        // SAFETY: `bdev` is open while `dev` lives, which the client does not outlive; the
        // callbacks match the aux size and block size given here.
        let client = unsafe {
            bindings::dm_bufio_client_create(
                bdev.as_raw(),
                BLOCK_SIZE as u32,
                RESERVED_BUFFERS,
                AUX_SIZE as u32,
                Some(alloc_callback),
                Some(write_callback),
                0,
            )
        };
        // SAFETY: `orion_ptr_err` only inspects the pointer value.
        let err = unsafe { bindings::orion_ptr_err(client.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        let client = NonNull::new(client).ok_or(ENOMEM)?;
        // INVARIANT: created above with BLOCK_SIZE blocks and AUX_SIZE aux bytes.
        Ok(Bufio {
            client,
            _dev: dev,
            max_blocks,
        })
    }

    fn hold(&self, b: BlockNr, new: bool) -> PdResult<Held> {
        if b >= self.nr_blocks() {
            return Err(PdError::OutOfBounds(b));
        }
        let mut buf: *mut bindings::dm_buffer = core::ptr::null_mut();
        // SAFETY: the client is live (type invariant) and `buf` is a valid out pointer.
        let data = unsafe {
            if new {
                bindings::dm_bufio_new(self.client.as_ptr(), b, &mut buf)
            } else {
                bindings::dm_bufio_read(self.client.as_ptr(), b, &mut buf)
            }
        };
        // SAFETY: only inspects the pointer value.
        if unsafe { bindings::orion_ptr_err(data) } != 0 {
            return Err(PdError::Io(b));
        }
        let (Some(buf), Some(data)) = (NonNull::new(buf), NonNull::new(data.cast::<u8>())) else {
            return Err(PdError::Io(b));
        };
        // SAFETY: `buf` is held; every buffer of this client has AUX_SIZE aux bytes.
        let aux = unsafe { bindings::dm_bufio_get_aux_data(buf.as_ptr()) }.cast::<u8>();
        let Some(aux) = NonNull::new(aux) else {
            // SAFETY: `buf` is held and released once here.
            unsafe { bindings::dm_bufio_release(buf.as_ptr()) };
            return Err(PdError::Io(b));
        };
        // INVARIANT: `buf` is held and `data`, `aux` are its block and aux bytes.
        Ok(Held {
            buf,
            data,
            aux,
            locked: None,
        })
    }

    /// Holds block `b` locked for reading or writing.
    fn hold_locked(&self, b: BlockNr, new: bool, write: bool) -> PdResult<Held> {
        let mut h = self.hold(b, new)?;
        h.lock(b, write)?;
        Ok(h)
    }

    /// Holds block `b` checked as `kind` and locked for reading or writing.
    fn hold_checked(&self, b: BlockNr, kind: Kind, write: bool) -> PdResult<Held> {
        let mut h = self.hold_locked(b, false, write)?;
        match h.kind_code() {
            0 => {
                kind.check(b, h.data())?;
                h.set_kind(kind);
            }
            c if c == kind.code() => {}
            _ => {
                return Err(PdError::Corrupt {
                    block: b,
                    what: "block used as two different types",
                })
            }
        }
        Ok(h)
    }
}

impl Drop for Bufio {
    fn drop(&mut self) {
        // SAFETY: the client is live and destroyed once; no buffer is held (every `Held`
        // borrows `self`).
        unsafe { bindings::dm_bufio_client_destroy(self.client.as_ptr()) };
    }
}

impl BlockManager for Bufio {
    type SpaceMapIndex = HeapIndex;

    fn new_index(&self) -> PdResult<HeapIndex> {
        let mut v = KVec::new();
        v.extend_with(MAX_BITMAPS, IndexEntry::ZERO, GFP_KERNEL)
            .map_err(|_| PdError::Invalid("out of memory for the space map index"))?;
        Ok(HeapIndex(v))
    }

    fn nr_blocks(&self) -> u64 {
        // Read each time: the metadata device may grow under a live pool.
        // SAFETY: the client is live (type invariant).
        let size = unsafe { bindings::dm_bufio_get_device_size(self.client.as_ptr()) };
        size.min(self.max_blocks)
    }

    fn read<R>(&self, b: BlockNr, kind: Kind, f: impl FnOnce(&[u8]) -> PdResult<R>) -> PdResult<R> {
        let h = self.hold_checked(b, kind, false)?;
        f(h.data())
    }

    fn write<R>(
        &self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> PdResult<R>,
    ) -> PdResult<R> {
        let mut h = self.hold_checked(b, kind, true)?;
        let r = f(h.data_mut());
        h.mark_dirty();
        r
    }

    fn write_zeroed<R>(
        &self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> PdResult<R>,
    ) -> PdResult<R> {
        let mut h = self.hold_locked(b, true, true)?;
        h.data_mut().fill(0);
        h.set_kind(kind);
        let r = f(h.data_mut());
        h.mark_dirty();
        r
    }

    fn read_raw<R>(&self, b: BlockNr, f: impl FnOnce(&[u8]) -> PdResult<R>) -> PdResult<R> {
        let h = self.hold_locked(b, false, false)?;
        f(h.data())
    }

    fn flush(&self) -> PdResult<()> {
        // SAFETY: the client is live.
        let r = unsafe { bindings::dm_bufio_write_dirty_buffers(self.client.as_ptr()) };
        // SAFETY: the client is live.
        let f = unsafe { bindings::dm_bufio_issue_flush(self.client.as_ptr()) };
        if r != 0 || f != 0 {
            return Err(PdError::Io(0));
        }
        Ok(())
    }
}
