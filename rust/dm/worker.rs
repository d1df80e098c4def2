// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A target's worker: its own ordered `WQ_MEM_RECLAIM` workqueue running a job, woken now or
//! after a delay, with a kcopyd client whose completions go back to the job.
//!
//! The job runs one at a time in process context (it may sleep). Copies and zeroing are
//! asynchronous: each is started for a numbered slot (`0..slots`) and its end is reported to
//! [`Job::copied`] with that number, then the worker is woken. Nothing here allocates after
//! [`WorkerBox::new`], so the job may use it on the I/O path.
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)

use super::{
    bindings,
    dev::BlockDevice,
    kcopyd::{Area, KcopydClient},
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{ffi::c_void, prelude::*, sync::Arc};

/// What a [`Worker`] runs.
pub trait Job: Send + Sync + Sized + 'static {
    /// Does the queued work, in process context; never runs twice at once. Allocations in
    /// it do no I/O (a `memalloc_noio` scope), whatever flags they name.
    fn run(&self, worker: &Worker<Self>);

    /// Reports the end of the copy or zeroing started for `slot`. Runs in kcopyd's context
    /// and must not sleep; the worker is woken right after.
    fn copied(&self, slot: usize, ok: bool);
}

/// The kcopyd callback's view of one slot.
struct CopyCtx {
    worker: *const c_void,
    slot: usize,
}

/// The worker of job `T`; reached through a [`WorkerBox`].
///
/// # Invariants
///
/// `cw` was returned by `orion_worker_create` with [`run_fn::<T>`] and this worker as context;
/// it and `kcopyd` are torn down only by [`WorkerBox`]'s drop, before the worker is freed.
/// `ctxs[i]` points back to this worker with slot `i`.
pub struct Worker<T: Job> {
    cw: NonNull<bindings::orion_worker>,
    kcopyd: Option<KcopydClient>,
    ctxs: KVec<CopyCtx>,
    stopping: AtomicBool,
    job: Arc<T>,
}

// SAFETY: the C worker may be woken from any context; the job is `Send + Sync`; the copy
// contexts are read-only after construction.
unsafe impl<T: Job> Send for Worker<T> {}
// SAFETY: as above; every method takes `&self`.
unsafe impl<T: Job> Sync for Worker<T> {}

/// # Safety
///
/// - `ctx` is the `Worker<T>` the C worker was created with, alive until the C worker is
///   destroyed (which waits for this call).
unsafe extern "C" fn run_fn<T: Job>(ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let w = unsafe { &*ctx.cast::<Worker<T>>() };
    w.job.run(w);
}

/// # Safety
///
/// - `ctx` is a `CopyCtx` of a live `Worker<T>`, whose kcopyd client (destroyed before the
///   worker is freed, waiting for this call) ran the job.
unsafe extern "C" fn copied_fn<T: Job>(read_err: i32, write_err: usize, ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let c = unsafe { &*ctx.cast::<CopyCtx>() };
    // SAFETY: `c.worker` is the live worker that owns `c` (type invariant of `Worker`).
    let w = unsafe { &*c.worker.cast::<Worker<T>>() };
    w.job.copied(c.slot, read_err == 0 && write_err == 0);
    w.wake();
}

impl<T: Job> Worker<T> {
    /// The job.
    pub fn job(&self) -> &T {
        &self.job
    }

    /// Queues a run of the job (a no-op if one is queued); callable from any context.
    pub fn wake(&self) {
        // SAFETY: the C worker is live while `self` is (type invariant).
        unsafe { bindings::orion_worker_wake(self.cw.as_ptr()) };
    }

    /// Queues a run in `ms` milliseconds unless a delayed run is already pending.
    pub fn wake_after(&self, ms: u32) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: as in `wake`; after `stopping` is set nothing re-arms the delayed run.
        unsafe { bindings::orion_worker_wake_after(self.cw.as_ptr(), ms) };
    }

    fn ctx(&self, slot: usize) -> Option<*mut c_void> {
        let c = self.ctxs.get(slot)?;
        Some(core::ptr::from_ref(c).cast_mut().cast())
    }

    /// Starts copying `count` sectors; [`Job::copied`] gets `slot` when it ends. A slot past
    /// the worker's count, or a worker without kcopyd, reports failure at once.
    pub fn copy(&self, slot: usize, from: Area<'_>, to: Area<'_>, count: u64) {
        match (self.kcopyd.as_ref(), self.ctx(slot)) {
            (Some(kc), Some(ctx)) => {
                // The job's owner keeps the devices open until the job ends (the pool's cells
                // hold the data device).
                // SAFETY: the context outlives the job (teardown destroys the client first).
                unsafe { kc.copy(from, to, count, copied_fn::<T>, ctx) }
            }
            _ => {
                self.job.copied(slot, false);
                self.wake();
            }
        }
    }

    /// Starts zeroing `count` sectors; [`Job::copied`] gets `slot` when it ends.
    pub fn zero(&self, slot: usize, dst: BlockDevice<'_>, sector: u64, count: u64) {
        match (self.kcopyd.as_ref(), self.ctx(slot)) {
            (Some(kc), Some(ctx)) => {
                // SAFETY: as in `copy`.
                unsafe { kc.zero(dst, sector, count, copied_fn::<T>, ctx) }
            }
            _ => {
                self.job.copied(slot, false);
                self.wake();
            }
        }
    }
}

/// Owns a [`Worker`]: dropping it stops the worker (waits for copies, cancels the delayed
/// run, drains the queue) and then frees it.
///
/// # Invariants
///
/// `ptr` came from `KBox::into_raw` of a fully built worker and is freed only by `drop`.
pub struct WorkerBox<T: Job> {
    ptr: NonNull<Worker<T>>,
}

// SAFETY: see `Worker`.
unsafe impl<T: Job> Send for WorkerBox<T> {}
// SAFETY: see `Worker`.
unsafe impl<T: Job> Sync for WorkerBox<T> {}

impl<T: Job> WorkerBox<T> {
    /// A worker for `job` on a new workqueue called `name`, with `slots` copy slots (0 for
    /// none: then no kcopyd client is made).
    pub fn new(name: &CStr, job: Arc<T>, slots: usize) -> Result<Self> {
        let kcopyd = if slots > 0 {
            Some(KcopydClient::new()?)
        } else {
            None
        };
        let mut ctxs = KVec::with_capacity(slots, GFP_KERNEL)?;
        let mut w = KBox::new(
            Worker {
                cw: NonNull::dangling(),
                kcopyd,
                ctxs: KVec::new(),
                stopping: AtomicBool::new(false),
                job,
            },
            GFP_KERNEL,
        )?;
        // Only the address: the contexts and the C worker point back at the boxed worker.
        let me = core::ptr::from_ref::<Worker<T>>(&*w) as usize;
        for slot in 0..slots {
            let worker = me as *const c_void;
            ctxs.push(CopyCtx { worker, slot }, GFP_KERNEL)?;
        }
        w.ctxs = ctxs;
        let ptr = NonNull::from(KBox::leak(w));
        // SAFETY: `name` is NUL-terminated; `ptr` is the leaked worker, which does not move
        // and outlives the C worker (destroyed in `WorkerBox::drop` before it is freed).
        let cw = unsafe {
            bindings::orion_worker_create(
                name.as_char_ptr(),
                Some(run_fn::<T>),
                ptr.as_ptr().cast(),
            )
        };
        match NonNull::new(cw) {
            // SAFETY: the worker is not shared until it is returned (the C worker is idle).
            Some(cw) => unsafe { (*ptr.as_ptr()).cw = cw },
            None => {
                // SAFETY: leaked just above and not shared with anything yet.
                drop(unsafe { KBox::from_raw(ptr.as_ptr()) });
                return Err(ENOMEM);
            }
        }
        // INVARIANT: fully built; freed only by `drop`.
        Ok(WorkerBox { ptr })
    }
}

impl<T: Job> core::ops::Deref for WorkerBox<T> {
    type Target = Worker<T>;

    fn deref(&self) -> &Worker<T> {
        // SAFETY: the worker lives until `drop` (type invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Job> Drop for WorkerBox<T> {
    fn drop(&mut self) {
        let w: &Worker<T> = self;
        w.stopping.store(true, Ordering::Release);
        // SAFETY: `ptr` is the live worker; from here only shared references exist until the
        // C worker and the client are gone, and then this is the only pointer to it.
        unsafe {
            // Waits for every copy and its callback (which may wake the worker).
            if let Some(kc) = w.kcopyd.as_ref() {
                kc.destroy();
            }
            // Cancels the delayed run and drains the queue; runs no longer re-arm it.
            bindings::orion_worker_destroy(w.cw.as_ptr());
            drop(KBox::from_raw(self.ptr.as_ptr()));
        }
    }
}
