// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A work item that runs a shared job on the system workqueue.
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)

use super::bindings;
use kernel::{prelude::*, sync::Arc, types::Opaque};

/// What a [`Worker`] runs, in process context (it may sleep).
pub trait Job: Send + Sync + 'static {
    /// Does the queued work.
    fn run(&self);
}

#[repr(C)]
struct WorkerInner<T: Job> {
    // First field: the work function recovers the `WorkerInner` from the `work_struct`.
    work: Opaque<bindings::work_struct>,
    job: Arc<T>,
}

/// Runs `T::run` whenever queued; dropping it waits for a running job and cancels a queued one.
///
/// # Invariants
///
/// `inner.work` is initialised with [`work_fn::<T>`] and is neither queued nor running once
/// `drop` has returned.
pub struct Worker<T: Job> {
    inner: KBox<WorkerInner<T>>,
}

// SAFETY: queueing may happen from any context; the job is `Send + Sync`.
unsafe impl<T: Job> Send for Worker<T> {}
// SAFETY: as above.
unsafe impl<T: Job> Sync for Worker<T> {}

/// # Safety
///
/// - Called by the workqueue with the `work` of a live `WorkerInner<T>`.
unsafe extern "C" fn work_fn<T: Job>(work: *mut bindings::work_struct) {
    let inner = work.cast::<WorkerInner<T>>();
    // SAFETY: `work` is the first field of a live `WorkerInner<T>` (repr(C)); the owner
    // cancels the work (waiting for this call) before freeing it.
    unsafe { (*inner).job.run() };
}

impl<T: Job> Worker<T> {
    /// A worker for `job`.
    pub fn new(job: Arc<T>) -> Result<Self> {
        let inner = KBox::new(
            WorkerInner {
                work: Opaque::uninit(),
                job,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the work item is in a heap allocation that outlives every queueing.
        unsafe { bindings::orion_init_work(inner.work.get(), Some(work_fn::<T>)) };
        // INVARIANT: initialised just above.
        Ok(Worker { inner })
    }

    /// Queues the job (no-op if already queued); callable from any context.
    pub fn queue(&self) {
        // SAFETY: the work item is initialised (type invariant).
        unsafe { bindings::orion_queue_work(self.inner.work.get()) };
    }

    /// The job.
    pub fn job(&self) -> &Arc<T> {
        &self.inner.job
    }
}

impl<T: Job> Drop for Worker<T> {
    fn drop(&mut self) {
        // SAFETY: the work item is initialised; after this it is idle, so freeing is safe.
        unsafe { bindings::orion_cancel_work_sync(self.inner.work.get()) };
    }
}
