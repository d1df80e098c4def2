// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Devices a target opens with `dm_get_device`, released when dropped.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

use super::bindings;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::prelude::*;

/// A device held by a target (`struct dm_dev`); dropping it calls `dm_put_device`.
///
/// # Invariants
///
/// `dev` was returned by `dm_get_device(ti, ...)` and has not been put. `ti` outlives the
/// `Dev`: a `Dev` is created in `ctr` and lives in the target's private data, which is dropped
/// in `dtr` (or on the `ctr` error path) while `ti` and its table are still alive.
pub struct Dev {
    ti: NonNull<bindings::dm_target>,
    dev: NonNull<bindings::dm_dev>,
}

// SAFETY: a `dm_dev` is immutable after `dm_get_device`, and dm core serialises
// `dm_put_device` with table changes; nothing in it is tied to the opening thread.
unsafe impl Send for Dev {}
// SAFETY: `&Dev` only reads immutable fields of the `dm_dev`.
unsafe impl Sync for Dev {}

impl Dev {
    /// # Safety
    ///
    /// - `dev` was just returned by `dm_get_device(ti, ...)`, and the caller hands its
    ///   reference to the new `Dev`, which will be dropped before `ti` is destroyed.
    pub(crate) unsafe fn from_raw(
        ti: NonNull<bindings::dm_target>,
        dev: NonNull<bindings::dm_dev>,
    ) -> Self {
        // INVARIANT: per the caller's promise.
        Self { ti, dev }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::dm_dev {
        self.dev.as_ptr()
    }

    /// The device's `major:minor` name, as dm core prints it in tables.
    pub fn name(&self) -> &CStr {
        // SAFETY: the `dm_dev` is live by the type invariant and dm core fills `name` with a
        // NUL-terminated string when it opens the device.
        unsafe { CStr::from_char_ptr((*self.dev.as_ptr()).name.as_ptr()) }
    }

    /// The block device, borrowed from this `Dev`.
    pub fn bdev(&self) -> BlockDevice<'_> {
        // SAFETY: the `dm_dev` is live by the type invariant.
        let bdev = unsafe { (*self.dev.as_ptr()).bdev };
        // INVARIANT: an open `dm_dev` always has its block device, open while `self` lives.
        BlockDevice(bdev, PhantomData)
    }

    /// Opens the device again, for a user that outlives this table (see [`OpenBdev`]).
    pub fn reopen(&self, write: bool) -> Result<OpenBdev> {
        OpenBdev::open(self.dev_number(), write)
    }

    /// The device number (`MKDEV(major, minor)`).
    pub fn dev_number(&self) -> u32 {
        // SAFETY: the block device is held open by this `Dev`.
        unsafe { (*self.bdev().as_raw()).bd_dev }
    }

    /// Whether the device is a device-mapper device.
    pub fn is_dm_device(&self) -> bool {
        // SAFETY: `dm_get_md` takes and drops a reference; no precondition.
        unsafe { bindings::orion_is_dm_device(self.dev_number()) }
    }

    /// The size of the device in sectors.
    pub fn nr_sectors(&self) -> u64 {
        // SAFETY: the block device is held open by this `Dev`.
        unsafe { bindings::orion_bdev_nr_sectors(self.bdev().as_raw()) }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `dev` is an unput reference of `ti`, which is alive.
        unsafe { bindings::dm_put_device(self.ti.as_ptr(), self.dev.as_ptr()) };
    }
}

/// A block device held open by a [`Dev`] or an [`OpenBdev`], borrowed from it.
///
/// # Invariants
///
/// Points to a block device that stays open for `'a`.
#[derive(Clone, Copy)]
pub struct BlockDevice<'a>(*mut bindings::block_device, PhantomData<&'a ()>);

// SAFETY: a handle to an open block device; the block layer's functions on it may be called
// from any thread.
unsafe impl Send for BlockDevice<'_> {}
// SAFETY: as above.
unsafe impl Sync for BlockDevice<'_> {}

impl PartialEq for BlockDevice<'_> {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self.0, other.0)
    }
}

impl Eq for BlockDevice<'_> {}

/// A block device opened by the module itself (`bdev_file_open_by_dev`, not exclusive), for
/// objects that outlive the table that named the device, such as a thin pool, whose
/// metadata and data devices must stay open across table reloads; closed when dropped.
///
/// # Invariants
///
/// `file` is an open block device file that this value owns; `bdev` is its block device.
pub struct OpenBdev {
    file: NonNull<bindings::file>,
    /// The file's block device (fixed while the file is open), kept so that the I/O path
    /// makes no call for it.
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: an open file may be used and released from any thread.
unsafe impl Send for OpenBdev {}
// SAFETY: as above; `&OpenBdev` only lends the block device.
unsafe impl Sync for OpenBdev {}

impl OpenBdev {
    /// Opens device `devt` for reading (and writing if `write`). Sleeps.
    pub fn open(devt: u32, write: bool) -> Result<Self> {
        // SAFETY: no precondition; the result is a file or an error pointer.
        let file = unsafe { bindings::orion_bdev_open(devt, write) };
        // SAFETY: only inspects the pointer value.
        let err = unsafe { bindings::orion_ptr_err(file.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        let file = NonNull::new(file).ok_or(ENODEV)?;
        // SAFETY: the file is an open block device file; an open one always has its device.
        let bdev = unsafe { bindings::orion_file_bdev(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: the file is ours, released once here.
            unsafe { bindings::orion_bdev_close(file.as_ptr()) };
            return Err(ENODEV);
        };
        // INVARIANT: an open file, owned from here, and its block device.
        Ok(OpenBdev { file, bdev })
    }

    /// The block device.
    pub fn bdev(&self) -> BlockDevice<'_> {
        // INVARIANT: the block device of the file, open while `self` lives.
        BlockDevice(self.bdev.as_ptr(), PhantomData)
    }
}

impl Drop for OpenBdev {
    fn drop(&mut self) {
        // SAFETY: the file is ours and released once.
        unsafe { bindings::orion_bdev_close(self.file.as_ptr()) };
    }
}

impl BlockDevice<'_> {
    pub(crate) fn as_raw(&self) -> *mut bindings::block_device {
        self.0
    }

    /// The device's name as the kernel prints it (`sda1`, `ram3`, `dm-2`).
    pub fn kernel_name(&self) -> KernelName {
        let mut name = KernelName([0; 32]);
        // SAFETY: the device is open (type invariant); the buffer's length is passed.
        unsafe { bindings::orion_bdev_name(self.0, name.0.as_mut_ptr(), name.0.len()) };
        name
    }

    /// The device number (`MKDEV(major, minor)`).
    pub fn dev_number(&self) -> u32 {
        // SAFETY: the device is open (type invariant).
        unsafe { (*self.0).bd_dev }
    }

    /// The size of the device in sectors.
    pub fn nr_sectors(&self) -> u64 {
        // SAFETY: the device is open (type invariant).
        unsafe { bindings::orion_bdev_nr_sectors(self.0) }
    }

    /// The device's logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: the device is open (type invariant).
        unsafe { bindings::orion_bdev_logical_block_size(self.0) }
    }

    /// The largest discard the device takes, in sectors (0: no discard support).
    pub fn max_discard_sectors(&self) -> u64 {
        // SAFETY: the device is open (type invariant).
        unsafe { bindings::orion_bdev_max_discard_sectors(self.0) }
    }

    /// Flushes the device's volatile write cache and waits. Sleeps.
    pub fn flush(&self) -> Result {
        // SAFETY: the device is open (type invariant).
        kernel::error::to_result(unsafe { bindings::orion_blkdev_flush(self.0) })
    }
}

/// A block device's kernel name (see [`BlockDevice::kernel_name`]), NUL-terminated.
pub struct KernelName([u8; 32]);

impl core::fmt::Display for KernelName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = self.0.get(..len).unwrap_or_default();
        f.write_str(core::str::from_utf8(s).unwrap_or("?"))
    }
}

/// A device number printed as `major:minor`, as dm names devices in log lines and tables.
#[derive(Clone, Copy)]
pub struct DevName(pub u32);

impl core::fmt::Display for DevName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.0 >> 20, self.0 & 0xf_ffff)
    }
}
