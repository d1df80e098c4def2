// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Bios as device-mapper targets see them: read their geometry, remap them, split them.
//!
//! C header: [include/linux/blk_types.h](srctree/include/linux/blk_types.h)

use super::{
    bindings,
    dev::{BlockDevice, Dev},
};
use core::{
    ops::Deref,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, AtomicU64, Ordering},
};
use kernel::types::Opaque;

/// The operation of a bio (`bio_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqOp {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Flush the volatile write cache.
    Flush,
    /// Discard sectors.
    Discard,
    /// Securely erase sectors.
    SecureErase,
    /// Write zeroes to sectors.
    WriteZeroes,
    /// Any other operation (zone management, driver-private).
    Other(u32),
}

impl ReqOp {
    fn from_opf(opf: bindings::blk_opf_t) -> Self {
        match opf & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => Self::Read,
            bindings::req_op_REQ_OP_WRITE => Self::Write,
            bindings::req_op_REQ_OP_FLUSH => Self::Flush,
            bindings::req_op_REQ_OP_DISCARD => Self::Discard,
            bindings::req_op_REQ_OP_SECURE_ERASE => Self::SecureErase,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Self::WriteZeroes,
            other => Self::Other(other),
        }
    }
}

/// A bio handed to a target by dm core.
///
/// # Invariants
///
/// Wraps a live `struct bio` that dm core lent to the current callback; only that callback
/// touches it until the callback returns.
#[repr(transparent)]
pub struct Bio(Opaque<bindings::bio>);

impl Bio {
    /// # Safety
    ///
    /// - `bio` is a live bio lent to the caller for `'a`.
    pub(crate) unsafe fn from_raw<'a>(bio: *mut bindings::bio) -> &'a Self {
        // SAFETY: `Bio` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*bio.cast::<Self>() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::bio {
        self.0.get()
    }

    fn raw(&self) -> *mut bindings::bio {
        self.0.get()
    }

    /// The first sector of the bio.
    pub fn sector(&self) -> u64 {
        // SAFETY: the bio is live by the type invariant.
        unsafe { (*self.raw()).bi_iter.bi_sector }
    }

    /// The size of the bio in bytes.
    pub fn size(&self) -> u32 {
        // SAFETY: the bio is live by the type invariant.
        unsafe { (*self.raw()).bi_iter.bi_size }
    }

    /// The size of the bio in sectors.
    pub fn sectors(&self) -> u64 {
        u64::from(self.size() >> 9)
    }

    /// The sector just past the bio.
    pub fn end_sector(&self) -> u64 {
        self.sector().wrapping_add(self.sectors())
    }

    fn opf(&self) -> bindings::blk_opf_t {
        // SAFETY: the bio is live by the type invariant.
        unsafe { (*self.raw()).bi_opf }
    }

    /// The operation.
    pub fn op(&self) -> ReqOp {
        ReqOp::from_opf(self.opf())
    }

    fn has_flag(&self, bit: u32) -> bool {
        self.opf() & (1 << bit) != 0
    }

    /// Whether the bio changes data (`op_is_write`: writes, discards, write-zeroes...).
    pub fn is_write(&self) -> bool {
        self.opf() & 1 != 0
    }

    /// Whether the bio asks for a cache flush before its data (REQ_PREFLUSH).
    pub fn is_preflush(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_PREFLUSH)
    }

    /// Whether the bio's data must be on stable storage when it completes (REQ_FUA).
    pub fn is_fua(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_FUA)
    }

    /// Whether the bio is a readahead that may fail without consequence (REQ_RAHEAD).
    pub fn is_readahead(&self) -> bool {
        self.has_flag(bindings::req_flag_bits___REQ_RAHEAD)
    }

    /// Whether the bio's status is success (meaningful once it has completed).
    pub fn status_ok(&self) -> bool {
        // SAFETY: the bio is live by the type invariant.
        u32::from(unsafe { (*self.raw()).bi_status }) == bindings::BLK_STS_OK
    }

    /// The device number of the device the bio is currently set to.
    pub fn dev_number(&self) -> u32 {
        // SAFETY: the bio is live; dm core sets `bi_bdev` on every bio it hands out.
        unsafe { (*(*self.raw()).bi_bdev).bd_dev }
    }

    /// Which of the `num_*_bios` copies of a flush, discard or write-zeroes this bio is.
    pub fn target_bio_nr(&self) -> u32 {
        // SAFETY: the bio is a dm bio, live by the type invariant.
        unsafe { bindings::dm_bio_get_target_bio_nr(self.raw()) }
    }

    /// Sends the bio to `dev`, keeping its sector.
    pub fn set_dev(&self, dev: &Dev) {
        // SAFETY: the bio is live and ours; `dev` holds its block device open.
        unsafe { set_bdev(self.raw(), dev.bdev().as_raw()) };
    }

    /// Moves the bio to `sector`.
    pub fn set_sector(&self, sector: u64) {
        // SAFETY: the bio is live and ours by the type invariant.
        unsafe { (*self.raw()).bi_iter.bi_sector = sector };
    }

    /// Sends the bio to `sector` of `dev`.
    pub fn remap(&self, dev: &Dev, sector: u64) {
        self.set_dev(dev);
        self.set_sector(sector);
    }

    /// Sends the bio to `sector` of `bdev`, a device the target keeps open (as
    /// [`OwnedBio::remap_to`]) while its bios are in flight.
    pub fn remap_to(&self, bdev: BlockDevice<'_>, sector: u64) {
        // SAFETY: the bio is live and ours; `bdev` is open.
        unsafe { set_bdev(self.raw(), bdev.as_raw()) };
        self.set_sector(sector);
    }
}

/// A bio in `map`, where it may also be trimmed and completed.
#[repr(transparent)]
pub struct MapBio(Bio);

impl MapBio {
    /// # Safety
    ///
    /// - `bio` is the live bio dm core passed to `map`, lent for `'a`.
    pub(crate) unsafe fn from_raw<'a>(bio: *mut bindings::bio) -> &'a Self {
        // SAFETY: `MapBio` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*bio.cast::<Self>() }
    }

    /// Keeps only the first `sectors` sectors of a data bio; dm core sends the rest to `map`
    /// again as a new bio (`dm_accept_partial_bio`). Returns `false`, changing nothing, if the
    /// bio is not a data bio or `sectors` is zero or not smaller than the bio.
    pub fn accept_partial(&self, sectors: u32) -> bool {
        let ok = matches!(self.op(), ReqOp::Read | ReqOp::Write)
            && sectors > 0
            && u64::from(sectors) < self.sectors();
        if ok {
            // SAFETY: called from `map` on a non-zone read or write with fewer sectors than
            // the bio has, which is what `dm_accept_partial_bio` asserts.
            unsafe { bindings::dm_accept_partial_bio(self.0.raw(), sectors) };
        }
        ok
    }

    /// Shrinks a discard, secure-erase or write-zeroes bio (they carry no data pages) to
    /// `bytes`. Returns `false`, changing nothing, for other bios or a size that grows.
    pub fn trim_range(&self, bytes: u32) -> bool {
        let ok = matches!(
            self.op(),
            ReqOp::Discard | ReqOp::SecureErase | ReqOp::WriteZeroes
        ) && bytes <= self.size();
        if ok {
            // SAFETY: the bio is ours in `map`; a range bio has no pages that must match.
            unsafe { (*self.0.raw()).bi_iter.bi_size = bytes };
        }
        ok
    }

    /// Ends the bio with success; used for `MapResult::Done`.
    pub(crate) fn complete(&self) {
        // SAFETY: the bio is ours in `map`, and the caller returns DM_MAPIO_SUBMITTED after
        // this without touching it again.
        unsafe { bindings::bio_endio(self.0.raw()) };
    }
}

impl Deref for MapBio {
    type Target = Bio;

    fn deref(&self) -> &Bio {
        &self.0
    }
}

/// The completion status of a bio, as seen (and possibly changed) by `end_io`.
#[repr(transparent)]
pub struct BlkStatus(bindings::blk_status_t);

impl BlkStatus {
    /// # Safety
    ///
    /// - `status` is valid and exclusively ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(status: *mut bindings::blk_status_t) -> &'a mut Self {
        // SAFETY: `BlkStatus` is a transparent wrapper; validity is the caller's promise.
        unsafe { &mut *status.cast::<Self>() }
    }

    /// Whether the bio succeeded.
    pub fn is_ok(&self) -> bool {
        u32::from(self.0) == bindings::BLK_STS_OK
    }

    /// Whether the device did not support the operation.
    pub fn is_not_supported(&self) -> bool {
        self.0 == bindings::ORION_BLK_STS_NOTSUPP
    }
}

/// How a bio the target owns ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoStatus {
    /// Success.
    Ok,
    /// An I/O error.
    IoErr,
    /// No space left (a thin pool out of data space).
    NoSpace,
    /// dm core takes the bio back and maps it again after the device resumes (only while the
    /// device is suspending without flushing, see `TargetRef::noflush_suspending`).
    Requeue,
    /// The operation is not supported (`BLK_STS_NOTSUPP`).
    NotSupported,
}

impl IoStatus {
    fn raw(self) -> bindings::blk_status_t {
        match self {
            IoStatus::Ok => bindings::BLK_STS_OK as bindings::blk_status_t,
            IoStatus::IoErr => bindings::ORION_BLK_STS_IOERR,
            IoStatus::NoSpace => bindings::ORION_BLK_STS_NOSPC,
            IoStatus::Requeue => bindings::ORION_BLK_STS_DM_REQUEUE,
            IoStatus::NotSupported => bindings::ORION_BLK_STS_NOTSUPP,
        }
    }
}

/// A bio that `map` handed to the target (`MapResult::Defer`), or that `end_io` kept
/// (`EndIoResult::Defer`): the target must submit it (after remapping) or end it. Dropping
/// it ends it with an I/O error, so a bio is never lost.
///
/// # Invariants
///
/// `bio` belongs to this target, which returned `DM_MAPIO_SUBMITTED` from `map` or
/// `DM_ENDIO_INCOMPLETE` from `end_io` for it; nobody else submits or ends it, and dm core
/// keeps it alive until it is ended. The target reserved at least 8 bytes of per-bio data
/// (its tag, see [`OwnedBio::tag`]).
pub struct OwnedBio(NonNull<bindings::bio>);

// SAFETY: a bio may be submitted or ended from any thread.
unsafe impl Send for OwnedBio {}

/// Points `bio` at `bdev` (`bio_set_dev`, a static inline in C). Where the glue header says
/// the kernel matches (`ORION_INLINE_BIO_SET_DEV`) it is done here, which saves a call on
/// every remap; elsewhere the glue does it.
///
/// # Safety
///
/// `bio` is live and owned by the caller (not in flight); `bdev` is an open block device.
#[inline(always)]
unsafe fn set_bdev(bio: *mut bindings::bio, bdev: *mut bindings::block_device) {
    if bindings::ORION_INLINE_BIO_SET_DEV == 0 {
        // SAFETY: per this function's contract.
        unsafe { bindings::orion_bio_set_dev(bio, bdev) };
        return;
    }
    // As `bio_set_dev` in 6.12 without blk-cgroup: the bio is no longer remapped, nor
    // throttled once its device changes.
    let remapped: u16 = 1 << bindings::BIO_REMAPPED;
    let throttled: u16 = 1 << bindings::BIO_BPS_THROTTLED;
    // SAFETY: per this function's contract the bio is live, and nothing else reads or
    // writes its flags or device while the caller owns it.
    unsafe {
        let mut flags = (*bio).bi_flags & !remapped;
        if (*bio).bi_bdev != bdev {
            flags &= !throttled;
        }
        (*bio).bi_flags = flags;
        (*bio).bi_bdev = bdev;
    }
}

/// The 8-byte tag at the end of `bio`'s per-bio data (where `orion_bio_record_of` in
/// dm_glue.c expects it).
///
/// # Safety
///
/// `bio` is a bio of a target that reserved at least 8 bytes of per-bio data.
pub(crate) unsafe fn tag_ptr(bio: *mut bindings::bio) -> *mut u64 {
    // SAFETY: per the function's contract: dm core made the bio, so its target-io header
    // (which `dm_per_bio_data` reads to find the data) is there.
    unsafe { bindings::dm_per_bio_data(bio, 8).cast() }
}

impl OwnedBio {
    /// # Safety
    ///
    /// - `bio` is the bio of a `map` call that will return `DM_MAPIO_SUBMITTED`, and the
    ///   caller passes its ownership to the new value.
    pub(crate) unsafe fn from_raw(bio: NonNull<bindings::bio>) -> Self {
        // INVARIANT: per the caller's promise.
        OwnedBio(bio)
    }

    /// The bio, for the dm layer's own calls (ownership stays here).
    pub(crate) fn as_raw(&self) -> *mut bindings::bio {
        self.0.as_ptr()
    }

    /// Gives up ownership: the caller must hand the pointer back to `from_raw` (or to C code
    /// that ends the bio).
    pub(crate) fn into_raw(self) -> NonNull<bindings::bio> {
        let b = self.0;
        core::mem::forget(self);
        b
    }

    /// The target's 8-byte per-bio tag, zero when `map` first saw the bio.
    pub fn tag(&self) -> &AtomicU64 {
        // SAFETY: the bio is ours and has 8 bytes of per-bio data (type invariant), aligned
        // as dm core aligns per-bio data; it lives as long as the bio.
        unsafe { AtomicU64::from_ptr(tag_ptr(self.0.as_ptr())) }
    }

    /// Sends the bio to `sector` of `bdev`.
    pub fn remap_to(&self, bdev: BlockDevice<'_>, sector: u64) {
        // SAFETY: the bio is ours (type invariant) and `bdev` is open.
        unsafe {
            set_bdev(self.0.as_ptr(), bdev.as_raw());
            (*self.0.as_ptr()).bi_iter.bi_sector = sector;
        }
    }

    /// Discards `nr_sectors` of `bdev` from `sector` with bios chained to this one: once
    /// ended, this bio completes only after them.
    pub fn chain_discard(&self, bdev: BlockDevice<'_>, sector: u64, nr_sectors: u64) {
        // SAFETY: the bio is ours and not in flight; `bdev` is open.
        unsafe {
            bindings::orion_bio_chain_discard(self.0.as_ptr(), bdev.as_raw(), sector, nr_sectors)
        };
    }

    /// Ends the bio, keeping its status: it completes when the bios chained to it have.
    pub fn end_chained(self) {
        let bio = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: the bio was ours and is ended exactly once.
        unsafe { bindings::bio_endio(bio) };
    }

    /// Keeps only the first `sectors` sectors of the bio's I/O (the rest of its pages are
    /// left as they are); a no-op if the bio is not longer.
    pub fn truncate(&self, sectors: u64) {
        if sectors < self.sectors() {
            // SAFETY: the bio is ours and not in flight; a smaller size stays within its
            // pages.
            unsafe { (*self.0.as_ptr()).bi_iter.bi_size = (sectors << 9) as u32 };
        }
    }

    /// Fills the bio's data pages with zeroes (a read of an unmapped area).
    pub fn zero_fill(&self) {
        // SAFETY: the bio is ours and not in flight.
        unsafe { bindings::orion_zero_fill_bio(self.0.as_ptr()) };
    }

    /// Submits the (remapped) bio, accounted to the dm device it came from.
    pub fn submit(self) {
        let bio = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: the bio was ours and is given to the block layer exactly once.
        unsafe { bindings::dm_submit_bio_remap(bio, core::ptr::null_mut()) };
    }

    /// Ends the bio with `status`.
    pub fn end(self, status: IoStatus) {
        let bio = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: the bio was ours and is ended exactly once.
        unsafe {
            (*bio).bi_status = status.raw();
            bindings::bio_endio(bio);
        }
    }
}

impl Deref for OwnedBio {
    type Target = Bio;

    fn deref(&self) -> &Bio {
        // SAFETY: the bio is alive while we own it.
        unsafe { Bio::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedBio {
    fn drop(&mut self) {
        // SAFETY: the bio is ours and is ended exactly once (`end`/`submit` forget `self`).
        unsafe {
            (*self.0.as_ptr()).bi_status = bindings::ORION_BLK_STS_IOERR;
            bindings::bio_endio(self.0.as_ptr());
        }
    }
}

/// A FIFO of owned bios, linked through `bi_next` (no allocation, so it works in `map`).
///
/// # Invariants
///
/// `head` starts a `bi_next` chain of owned bios ending at `tail` (both null when empty);
/// the list owns every bio in it.
pub struct BioList {
    head: *mut bindings::bio,
    tail: *mut bindings::bio,
}

// SAFETY: the list owns its bios, which may move between threads (see `OwnedBio`).
unsafe impl Send for BioList {}

impl Default for BioList {
    fn default() -> Self {
        Self::new()
    }
}

impl BioList {
    /// An empty list.
    pub const fn new() -> Self {
        BioList {
            head: core::ptr::null_mut(),
            tail: core::ptr::null_mut(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends `bio`.
    pub fn push(&mut self, bio: OwnedBio) {
        let b = bio.0.as_ptr();
        core::mem::forget(bio);
        // SAFETY: `b` is owned (now by the list); `tail`, when set, is the list's last bio.
        unsafe {
            (*b).bi_next = core::ptr::null_mut();
            if self.tail.is_null() {
                self.head = b;
            } else {
                (*self.tail).bi_next = b;
            }
        }
        self.tail = b;
    }

    /// Removes the first bio.
    pub fn pop(&mut self) -> Option<OwnedBio> {
        let b = NonNull::new(self.head)?;
        // SAFETY: `b` is the list's first bio; unlinking it hands its ownership to the caller.
        unsafe {
            self.head = (*b.as_ptr()).bi_next;
            (*b.as_ptr()).bi_next = core::ptr::null_mut();
            if self.head.is_null() {
                self.tail = core::ptr::null_mut();
            }
            Some(OwnedBio::from_raw(b))
        }
    }

    /// Moves every bio of `other` to the end of this list.
    pub fn append(&mut self, other: &mut BioList) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: `tail` is this list's last bio, owned by the list.
            unsafe { (*self.tail).bi_next = other.head };
        }
        self.tail = other.tail;
        other.head = core::ptr::null_mut();
        other.tail = core::ptr::null_mut();
    }

    /// Puts every bio of `front` before this list's.
    pub fn prepend(&mut self, mut front: BioList) {
        front.append(self);
        core::mem::swap(self, &mut front);
    }

    /// Puts `bio` first.
    pub fn push_front(&mut self, bio: OwnedBio) {
        let mut front = BioList::new();
        front.push(bio);
        self.prepend(front);
    }
}

impl Drop for BioList {
    fn drop(&mut self) {
        while let Some(b) = self.pop() {
            drop(b);
        }
    }
}

/// Bios handed to a worker from any context, completions in interrupt context included: a
/// lock-free stack (the kernel's `llist` pattern: push anywhere, the consumer takes it all),
/// given back oldest first.
///
/// # Invariants
///
/// `head` is null or starts a `bi_next` chain of owned bios (newest first), which the stack
/// owns.
pub struct BioStack {
    head: AtomicPtr<bindings::bio>,
}

// SAFETY: the stack owns its bios, which may move between threads; it is changed only with
// atomic operations.
unsafe impl Send for BioStack {}
// SAFETY: as above.
unsafe impl Sync for BioStack {}

impl Default for BioStack {
    fn default() -> Self {
        Self::new()
    }
}

impl BioStack {
    /// An empty stack.
    pub const fn new() -> Self {
        BioStack {
            head: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Adds `bio` (any context; never blocks).
    pub fn push(&self, bio: OwnedBio) {
        let b = bio.into_raw().as_ptr();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `b` is owned by us until the exchange publishes it.
            unsafe { (*b).bi_next = head };
            // INVARIANT: `b` heads the chain it links to, and the stack owns it from here.
            match self
                .head
                .compare_exchange_weak(head, b, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Adds every bio of `list`, in order.
    pub fn push_all(&self, mut list: BioList) {
        while let Some(b) = list.pop() {
            self.push(b);
        }
    }

    /// Whether the stack is empty (a snapshot: pushes may follow at once).
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire).is_null()
    }

    /// Takes every bio, oldest first.
    pub fn take(&self) -> BioList {
        let mut p = self.head.swap(core::ptr::null_mut(), Ordering::Acquire);
        // Reverse the newest-first chain.
        let mut oldest: *mut bindings::bio = core::ptr::null_mut();
        while !p.is_null() {
            // SAFETY: `p` is in the chain taken from the stack, which we now own.
            let next = unsafe { (*p).bi_next };
            // SAFETY: as above.
            unsafe { (*p).bi_next = oldest };
            oldest = p;
            p = next;
        }
        let mut list = BioList::new();
        while let Some(b) = NonNull::new(oldest) {
            // SAFETY: `b` is in the chain we own.
            oldest = unsafe { (*b.as_ptr()).bi_next };
            // SAFETY: each bio of the chain is owned, and handed over once.
            list.push(unsafe { OwnedBio::from_raw(b) });
        }
        list
    }
}

impl Drop for BioStack {
    fn drop(&mut self) {
        // Bios left behind end (with an error, as an `OwnedBio` dropped).
        drop(self.take());
    }
}
