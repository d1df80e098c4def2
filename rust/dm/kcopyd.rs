// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A kcopyd client: asynchronous copying and zeroing of device areas.
//!
//! The safe interface is [`super::worker::Worker::copy`] and `zero`, which route each job's
//! completion to the worker's job; this file only owns the client.
//!
//! C header: [include/linux/dm-kcopyd.h](srctree/include/linux/dm-kcopyd.h)

use super::{bindings, dev::BlockDevice};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{ffi::c_void, prelude::*};

/// An area of a device: where a copy reads or writes.
#[derive(Clone, Copy)]
pub struct Area<'a> {
    /// The device.
    pub dev: BlockDevice<'a>,
    /// The first sector.
    pub sector: u64,
}

/// The completion callback of a kcopyd job (`dm_kcopyd_notify_fn`).
pub(crate) type Notify = unsafe extern "C" fn(read_err: i32, write_err: usize, ctx: *mut c_void);

/// A kcopyd client; destroyed by [`Self::destroy`] (through a shared reference, so that the
/// owner can wait for jobs whose callbacks still borrow it) or else when dropped.
///
/// # Invariants
///
/// `kc` was returned by `dm_kcopyd_client_create` and is live until `destroyed` is set.
pub(crate) struct KcopydClient {
    kc: NonNull<bindings::dm_kcopyd_client>,
    destroyed: AtomicBool,
}

// SAFETY: kcopyd clients may be used from any thread.
unsafe impl Send for KcopydClient {}
// SAFETY: as above; kcopyd serialises its jobs internally.
unsafe impl Sync for KcopydClient {}

impl KcopydClient {
    /// Creates a client (unthrottled).
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: a null throttle is allowed.
        let kc = unsafe { bindings::dm_kcopyd_client_create(core::ptr::null_mut()) };
        // SAFETY: only inspects the pointer value.
        let err = unsafe { bindings::orion_ptr_err(kc.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        // INVARIANT: a valid client.
        Ok(KcopydClient {
            kc: NonNull::new(kc).ok_or(ENOMEM)?,
            destroyed: AtomicBool::new(false),
        })
    }

    /// The C client.
    pub(crate) fn raw(&self) -> *mut bindings::dm_kcopyd_client {
        self.kc.as_ptr()
    }

    /// Starts copying `count` sectors; `notify(ctx)` runs when the job ends.
    ///
    /// # Safety
    ///
    /// - `ctx` stays valid for `notify` until the job ends (at the latest until `destroy`).
    /// - The client is not destroyed.
    /// - Both devices stay open until the job ends.
    pub(crate) unsafe fn copy(
        &self,
        from: Area<'_>,
        to: Area<'_>,
        count: u64,
        notify: Notify,
        ctx: *mut c_void,
    ) {
        // SAFETY: the client is live; the devices and `ctx` per the caller's promise.
        unsafe {
            bindings::orion_kcopyd_copy(
                self.kc.as_ptr(),
                from.dev.as_raw(),
                from.sector,
                to.dev.as_raw(),
                to.sector,
                count,
                Some(notify),
                ctx,
            )
        }
    }

    /// Starts zeroing `count` sectors; `notify(ctx)` runs when the job ends.
    ///
    /// # Safety
    ///
    /// As for [`Self::copy`].
    pub(crate) unsafe fn zero(
        &self,
        dst: BlockDevice<'_>,
        sector: u64,
        count: u64,
        notify: Notify,
        ctx: *mut c_void,
    ) {
        // SAFETY: the client is live; the device and `ctx` per the caller's promise.
        unsafe {
            bindings::orion_kcopyd_zero(
                self.kc.as_ptr(),
                dst.as_raw(),
                sector,
                count,
                Some(notify),
                ctx,
            )
        }
    }

    /// Destroys the client, waiting for every job and its callback to end.
    ///
    /// # Safety
    ///
    /// - No job is started afterwards.
    pub(crate) unsafe fn destroy(&self) {
        if !self.destroyed.swap(true, Ordering::AcqRel) {
            // SAFETY: the client is live until `destroyed` is set, which only we did.
            unsafe { bindings::dm_kcopyd_client_destroy(self.kc.as_ptr()) };
        }
    }
}

impl Drop for KcopydClient {
    fn drop(&mut self) {
        // SAFETY: dropping ends every use.
        unsafe { self.destroy() };
    }
}
