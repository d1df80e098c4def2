// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Copying and zeroing device areas with kcopyd, waiting for the result.
//!
//! C header: [include/linux/dm-kcopyd.h](srctree/include/linux/dm-kcopyd.h)

use super::{bindings, dev::BlockDevice};
use core::ptr::NonNull;
use kernel::{error::to_result, prelude::*};

/// A kcopyd client.
///
/// # Invariants
///
/// `kc` was returned by `dm_kcopyd_client_create` and is destroyed only by `drop`.
pub struct Kcopyd {
    kc: NonNull<bindings::dm_kcopyd_client>,
}

// SAFETY: kcopyd clients may be used from any thread.
unsafe impl Send for Kcopyd {}
// SAFETY: as above; kcopyd serialises its jobs internally.
unsafe impl Sync for Kcopyd {}

impl Kcopyd {
    /// Creates a client (unthrottled).
    pub fn new() -> Result<Self> {
        // SAFETY: a null throttle is allowed.
        let kc = unsafe { bindings::dm_kcopyd_client_create(core::ptr::null_mut()) };
        // SAFETY: only inspects the pointer value.
        let err = unsafe { bindings::orion_ptr_err(kc.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        Ok(Kcopyd {
            kc: NonNull::new(kc).ok_or(ENOMEM)?,
        })
    }

    /// Copies `count` sectors and waits. Sleeps: call from process context only.
    pub fn copy(
        &self,
        src: BlockDevice,
        src_sector: u64,
        dst: BlockDevice,
        dst_sector: u64,
        count: u64,
    ) -> Result {
        // SAFETY: the client is live and both devices are open.
        to_result(unsafe {
            bindings::orion_kcopyd_copy_sync(
                self.kc.as_ptr(),
                src.as_raw(),
                src_sector,
                dst.as_raw(),
                dst_sector,
                count,
            )
        })
    }

    /// Zeroes `count` sectors and waits. Sleeps: call from process context only.
    pub fn zero(&self, dst: BlockDevice, sector: u64, count: u64) -> Result {
        // SAFETY: the client is live and the device is open.
        to_result(unsafe {
            bindings::orion_kcopyd_zero_sync(self.kc.as_ptr(), dst.as_raw(), sector, count)
        })
    }
}

impl Drop for Kcopyd {
    fn drop(&mut self) {
        // SAFETY: the client is live; synchronous calls leave no job behind.
        unsafe { bindings::dm_kcopyd_client_destroy(self.kc.as_ptr()) };
    }
}
