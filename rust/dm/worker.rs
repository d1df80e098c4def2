// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A target's worker: its own ordered `WQ_MEM_RECLAIM` workqueue running a job, woken now or
//! after a delay, with a kcopyd client whose completions go back to the job.
//!
//! The job runs one at a time in process context (it may sleep), on the ordered queue or, when
//! the job asks for it ([`Worker::prefer_local`]), on the waker's CPU. Copies and zeroing are
//! asynchronous: each is started for a numbered slot (`0..slots`) and its end is reported to
//! [`Job::copied`] with that number, then to [`Job::after_copy`], which may finish the work
//! there (as dm-snap commits in kcopyd's thread) or have the worker woken. Nothing here allocates after
//! [`WorkerBox::new`], so the job may use it on the I/O path.
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)

use super::{
    bindings,
    bio::{IoStatus, OwnedBio},
    dev::BlockDevice,
    kcopyd::{Area, KcopydClient},
    sync_io::IoClient,
    time,
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
};
use kernel::{ffi::c_void, prelude::*, sync::Arc};

/// The largest write [`Worker::write_async`] takes, in sectors.
pub const ASYNC_WRITE_MAX_SECTORS: u64 = bindings::ORION_ASYNC_WRITE_MAX_SECTORS as u64;

/// What a [`Worker`] runs.
pub trait Job: Send + Sync + Sized + 'static {
    /// Does the queued work, in process context; never runs twice at once. Allocations in
    /// it do no I/O (a `memalloc_noio` scope), whatever flags they name.
    fn run(&self, worker: &Worker<Self>);

    /// Reports the end of the copy or zeroing started for `slot`. Runs in kcopyd's context
    /// and must not sleep; the worker is woken right after.
    fn copied(&self, slot: usize, ok: bool);

    /// Like [`Self::copied`], with the errors: the source failed to read, and a bit per
    /// destination that failed to write. The default reports to `copied`.
    fn copied_errors(&self, slot: usize, read_err: bool, write_err: u64) {
        self.copied(slot, !read_err && write_err == 0)
    }

    /// Runs after [`Self::copied`] (or [`Self::copied_errors`]), in kcopyd's thread: process
    /// context, so it may sleep (in a `memalloc_noio` scope, as the job's runs), but it holds
    /// up the client's other completions. Returns
    /// whether the worker must run. It must not take a lock that is held while a copy is
    /// started (starting one can wait for kcopyd's completions). The default asks for a run.
    fn after_copy(&self, _worker: &Worker<Self>) -> bool {
        true
    }

    /// Asked right after [`Self::direct_done`] for `slot`, in the same context: whether
    /// [`Self::after_direct`] should run on the worker's per-CPU copy queue (on the CPU that
    /// completed the I/O, as kcopyd's callbacks run) instead of waking the worker. The
    /// default: never.
    fn wants_after_direct(&self, _slot: usize) -> bool {
        false
    }

    /// Runs on the copy queue when [`Self::wants_after_direct`] said so (at the end of the
    /// copy queue's run whose write ended in its own task, or as a queued item): process
    /// context, may sleep (in a `memalloc_noio` scope); returns whether the worker must run.
    /// Same lock rule as [`Self::after_copy`]. The default asks for a run.
    fn after_direct(&self, _worker: &Worker<Self>) -> bool {
        true
    }

    /// Where [`Self::after_direct`] would be queued but the I/O ended in a submitter's task
    /// (a device that completes bios as they are submitted): does that work at once, without
    /// sleeping (locks tried, allocations that do not wait; a bio submitted there only joins
    /// the task's list). Returns whether it did all of it; if not, `after_direct` is queued
    /// as usual. The default: it does nothing here.
    fn after_direct_now(&self, _worker: &Worker<Self>) -> bool {
        false
    }

    /// Reports the end of a [`Worker::write_async`] for `slot`, in I/O completion context
    /// (same rules as [`Self::direct_done`]); then the after-copy work follows as for a
    /// direct copy of that slot. The default does nothing.
    fn async_written(&self, _slot: usize, _ok: bool) {}

    /// Reports the end of the zeroing or copy started by [`Worker::zero_direct`] or
    /// [`Worker::copy_direct`] for `slot`. Runs in I/O completion context (possibly a hard
    /// interrupt), or in the starter's context when the I/O could not start: must not sleep
    /// nor take any lock the starter may hold (nor one held with interrupts on); the worker
    /// is woken right after (or [`Self::after_direct`] queued, see [`Self::wants_after_direct`]). The
    /// default reports to [`Self::copied`], for jobs whose `copied` meets those rules.
    fn direct_done(&self, slot: usize, ok: bool) {
        self.copied(slot, ok)
    }

    /// Gives back the bio written by [`Worker::write_bio`] for `slot`, with a bit per
    /// destination that failed. Runs in I/O completion context (must not sleep); the worker
    /// is woken right after. The default ends the bio, with an error if any write failed.
    fn written(&self, _slot: usize, bio: OwnedBio, errors: u64) {
        bio.end(if errors == 0 {
            IoStatus::Ok
        } else {
            IoStatus::IoErr
        });
    }
}

/// Whether a submitter waits for each request alone (QD1): events in a row (runs, copies)
/// that each found nothing else in flight. After [`LoneStreak::AFTER`] of them the submitter
/// is taken as lone; any other event ends the streak, so a burst switches back at once.
#[derive(Default)]
pub struct LoneStreak(AtomicUsize);

impl LoneStreak {
    /// Lone events in a row before the submitter is taken as lone.
    pub const AFTER: usize = 4;

    /// Records an event that found the submitter `alone` or not; returns whether it is now
    /// taken as lone.
    pub fn record(&self, alone: bool) -> bool {
        if alone {
            self.0.fetch_add(1, Ordering::AcqRel).saturating_add(1) >= Self::AFTER
        } else {
            self.0.store(0, Ordering::Release);
            false
        }
    }

    /// Whether the last event left the submitter taken as lone.
    pub fn is_lone(&self) -> bool {
        self.0.load(Ordering::Acquire) >= Self::AFTER
    }

    /// Lone events in a row between probes (see [`Self::is_probe`]).
    pub const PROBE_EVERY: usize = 64;

    /// Whether the last event, taken as lone, should be handed off rather than finished in
    /// the submitter's task: where every request completes as it is submitted, an
    /// asynchronous submitter (libaio at QD32) looks as lone as one that waits; handed off,
    /// its next request finds this one in flight and ends the streak.
    pub fn is_probe(&self) -> bool {
        let n = self.0.load(Ordering::Acquire);
        n >= Self::AFTER && n % Self::PROBE_EVERY == 0
    }
}

/// Where a direct copy or zeroing ([`Worker::copy_direct`], [`Worker::zero_direct`]) does its
/// I/O.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Place {
    /// Started from here; a copy is written from the worker's thread before its next run.
    Here,
    /// Started from here; a copy is written from the copy queue on the CPU its read ended
    /// on (a lone copy: no wake-up of another CPU).
    Local,
    /// Started and written from the copy queue of another CPU: a busy worker's data work
    /// runs beside it rather than in it.
    Spread,
    /// As `Local`, but a read that ends in a submitter's task has its write submitted there
    /// at once, and the after-copy work is tried there ([`Job::after_direct_now`]).
    Inline,
}

impl Place {
    fn raw(self) -> u32 {
        match self {
            Place::Here => bindings::ORION_PLACE_HERE,
            Place::Local => bindings::ORION_PLACE_LOCAL,
            Place::Spread => bindings::ORION_PLACE_SPREAD,
            Place::Inline => bindings::ORION_PLACE_INLINE,
        }
    }
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
/// `cw` was returned by `orion_worker_create` with [`run_fn::<T>`], [`after_fn::<T>`] and this
/// worker as context;
/// it and `kcopyd` are torn down only by [`WorkerBox`]'s drop, before the worker is freed.
/// `ctxs[i]` points back to this worker with slot `i`.
pub struct Worker<T: Job> {
    cw: NonNull<bindings::orion_worker>,
    kcopyd: Option<KcopydClient>,
    io: Option<IoClient>,
    ctxs: KVec<CopyCtx>,
    /// The bio of each slot's write in flight.
    bios: KVec<AtomicPtr<bindings::bio>>,
    /// Writes whose completion has not returned yet (the drop waits for them).
    writes_in_flight: AtomicUsize,
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
/// - `ctx` is the `Worker<T>` the C worker was created with, alive until the C worker is
///   destroyed (which drains the copy queue that makes this call).
unsafe extern "C" fn after_fn<T: Job>(ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let w = unsafe { &*ctx.cast::<Worker<T>>() };
    if w.job.after_direct(w) {
        w.wake();
    }
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
    w.job.copied_errors(c.slot, read_err != 0, write_err as u64);
    // kcopyd's thread is on the I/O path too: allocations there must not do I/O.
    // SAFETY: saves and restores the task's allocation scope on this thread.
    let noio = unsafe { bindings::orion_noio_begin() };
    let wake = w.job.after_copy(w);
    // SAFETY: restores what `orion_noio_begin` saved on this thread.
    unsafe { bindings::orion_noio_end(noio) };
    if wake {
        w.wake();
    }
}

/// # Safety
///
/// - `ctx` is a `CopyCtx` of a live `Worker<T>` whose slot holds the bio of a write started
///   by [`Worker::write_bio`]; the worker's drop waits for `writes_in_flight` to reach zero.
unsafe extern "C" fn written_fn<T: Job>(error_bits: usize, ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let c = unsafe { &*ctx.cast::<CopyCtx>() };
    // SAFETY: `c.worker` is the live worker that owns `c`; it stays alive until the
    // decrement below (its drop waits for it).
    let w = unsafe { &*c.worker.cast::<Worker<T>>() };
    let bio = w
        .bios
        .get(c.slot)
        .map(|b| b.swap(core::ptr::null_mut(), Ordering::AcqRel));
    if let Some(bio) = bio.and_then(NonNull::new) {
        // SAFETY: `write_bio` stored an owned bio in the slot and gave up its ownership;
        // taking it out of the slot makes this the only owner.
        let bio = unsafe { OwnedBio::from_raw(bio) };
        w.job.written(c.slot, bio, error_bits as u64);
    }
    w.wake();
    // Last access to the worker.
    w.writes_in_flight.fetch_sub(1, Ordering::Release);
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

    /// Whether runs asked for from outside the worker go to the waker's CPU (a lone
    /// submitter about to sleep) rather than to the unbound ordered queue.
    pub fn prefer_local(&self, on: bool) {
        // SAFETY: the C worker is live while `self` is (type invariant).
        unsafe { bindings::orion_worker_prefer_local(self.cw.as_ptr(), on) };
    }

    /// Queues a run in `ms` milliseconds unless a delayed run is already pending.
    pub fn wake_after(&self, ms: u32) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: as in `wake`; after `stopping` is set nothing re-arms the delayed run.
        unsafe { bindings::orion_worker_wake_after(self.cw.as_ptr(), ms) };
    }

    /// After a direct copy's or an asynchronous write's end for `slot` (completion
    /// context): the job's after-copy work, at once in a submitter's task if the job can,
    /// else queued on the copy queue, or a run of the worker. Then gives up the I/O's count
    /// (the last access to the worker).
    fn io_ended(&self, slot: usize) {
        if !self.job.wants_after_direct(slot) {
            self.wake();
        } else if !(in_submitter() && self.job.after_direct_now(self)) {
            // SAFETY: the C worker is live while `self` is (type invariant); its destruction
            // drains the queued call.
            unsafe { bindings::orion_worker_after(self.cw.as_ptr()) };
        }
        self.writes_in_flight.fetch_sub(1, Ordering::Release);
    }

    /// Writes a copy of sectors `part` of `buf` (the image of `bdev` from `sector` on) to
    /// their place, flushing the device's cache first and with FUA when `durable`;
    /// [`Job::async_written`] gets `slot` when it ends, then the after-copy work follows as
    /// for a direct copy. Does not sleep. `Err` when it could not start (no memory, or more
    /// than [`ASYNC_WRITE_MAX_SECTORS`]): then nothing is reported.
    pub fn write_async(
        &self,
        slot: usize,
        bdev: BlockDevice<'_>,
        sector: u64,
        buf: &[u8],
        part: core::ops::Range<u64>,
        durable: bool,
    ) -> Result {
        let ctx = self.ctx(slot).ok_or(EINVAL)?;
        let bytes = buf
            .get((part.start as usize).checked_mul(512).ok_or(EINVAL)?..)
            .ok_or(EINVAL)?;
        let count = part.end.checked_sub(part.start).ok_or(EINVAL)?;
        let len = count.checked_mul(512).ok_or(EINVAL)?;
        if count == 0 || (bytes.len() as u64) < len {
            return Err(EINVAL);
        }
        let at = sector.checked_add(part.start).ok_or(EINVAL)?;
        self.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `bdev` is open for the borrow and its owner keeps it open while the job's
        // slot is busy; the C side copies `count` sectors of `bytes` (checked above) before
        // returning; the context outlives the write (the drop waits for `writes_in_flight`).
        let r = unsafe {
            bindings::orion_async_write(
                bdev.as_raw(),
                at,
                count,
                bytes.as_ptr().cast(),
                durable,
                Some(async_fn::<T>),
                ctx,
            )
        };
        if r < 0 {
            self.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::from_errno(r));
        }
        Ok(())
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

    /// Starts copying `count` sectors from `from` to every area of `to` (at most 8); the
    /// errors go to [`Job::copied_errors`]. With `ignore_errors` a failed destination does
    /// not stop the others.
    pub fn copy_multi(
        &self,
        slot: usize,
        from: Area<'_>,
        to: &[Area<'_>],
        count: u64,
        ignore_errors: bool,
    ) {
        const MAX: usize = bindings::DM_KCOPYD_MAX_REGIONS as usize;
        let n = to.len();
        match (self.kcopyd.as_ref(), self.ctx(slot)) {
            (Some(kc), Some(ctx)) if n > 0 && n <= MAX => {
                let mut devs = [core::ptr::null_mut(); MAX];
                let mut sectors = [0u64; MAX];
                for (i, a) in to.iter().enumerate().take(MAX) {
                    devs[i] = a.dev.as_raw();
                    sectors[i] = a.sector;
                }
                // SAFETY: the client is live; the context outlives the job (teardown
                // destroys the client first); the owner keeps the devices open until the job
                // ends; the arrays hold `n` entries and are copied by the call.
                unsafe {
                    bindings::orion_kcopyd_copy_multi(
                        kc.raw(),
                        from.dev.as_raw(),
                        from.sector,
                        n as u32,
                        devs.as_ptr(),
                        sectors.as_ptr(),
                        count,
                        ignore_errors,
                        Some(copied_fn::<T>),
                        ctx,
                    )
                }
            }
            _ => {
                self.job.copied_errors(slot, true, 0);
                self.wake();
            }
        }
    }

    /// Whether `slot` has no write in flight.
    pub fn slot_free(&self, slot: usize) -> bool {
        self.bios
            .get(slot)
            .is_some_and(|b| b.load(Ordering::Acquire).is_null())
    }

    /// Writes `bio` (its data, or its flush or discard) to every area of `to` (at most 9)
    /// at once; [`Job::written`] gets the bio back with `slot` when all have ended. The bio
    /// comes back at once as `Err` if the slot is busy or the write cannot start.
    pub fn write_bio(&self, slot: usize, bio: OwnedBio, to: &[Area<'_>]) -> Result<(), OwnedBio> {
        const MAX: usize = bindings::ORION_MAX_IO_REGIONS as usize;
        let (Some(io), Some(ctx), Some(held)) =
            (self.io.as_ref(), self.ctx(slot), self.bios.get(slot))
        else {
            return Err(bio);
        };
        if to.is_empty() || to.len() > MAX || !held.load(Ordering::Acquire).is_null() {
            return Err(bio);
        }
        let mut devs = [core::ptr::null_mut(); MAX];
        let mut sectors = [0u64; MAX];
        for (i, a) in to.iter().enumerate().take(MAX) {
            devs[i] = a.dev.as_raw();
            sectors[i] = a.sector;
        }
        let raw = bio.into_raw();
        held.store(raw.as_ptr(), Ordering::Release);
        self.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the client is live; the bio is owned by the slot until `written_fn` takes
        // it; the context outlives the write (the drop waits for `writes_in_flight`); the
        // devices stay open while the owner's bios are in flight; the arrays hold the
        // areas and are read by the call.
        let r = unsafe {
            bindings::orion_dm_io_write_bio(
                io.raw(),
                raw.as_ptr(),
                to.len() as u32,
                devs.as_ptr(),
                sectors.as_ptr(),
                Some(written_fn::<T>),
                ctx,
            )
        };
        if r < 0 {
            self.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
            let b = held.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: the write did not start, so the slot still owns the bio we stored.
            return Err(unsafe { OwnedBio::from_raw(NonNull::new(b).unwrap_or(raw)) });
        }
        Ok(())
    }

    /// Writes zeroes to `count` sectors with bios issued from here, or with
    /// [`Place::Spread`] from another CPU (no trip through kcopyd's thread either way);
    /// [`Job::direct_done`] gets `slot` when they end, in I/O completion context.
    pub fn zero_direct(
        &self,
        slot: usize,
        dst: BlockDevice<'_>,
        sector: u64,
        count: u64,
        place: Place,
    ) {
        let (Some(io), Some(ctx)) = (self.io.as_ref(), self.ctx(slot)) else {
            self.job.direct_done(slot, false);
            self.wake();
            return;
        };
        self.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the C worker and the client are live; the context outlives the write (the
        // drop waits for `writes_in_flight` before destroying the C worker, whose copy queue
        // starts the spread zeroing); the owner keeps the device open until the job's slot
        // ends.
        let r = unsafe {
            bindings::orion_worker_zero(
                self.cw.as_ptr(),
                io.raw(),
                dst.as_raw(),
                sector,
                count,
                place.raw(),
                Some(direct_fn::<T>),
                ctx,
            )
        };
        if r < 0 {
            self.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
            self.job.direct_done(slot, false);
            self.wake();
        }
    }

    /// Copies `count` sectors through a buffer without kcopyd's thread, placed as `place`
    /// says; [`Job::direct_done`] gets `slot` when the write ends, in I/O completion context.
    /// Past `ORION_DIRECT_COPY_MAX_SECTORS`, or without memory for the buffer, kcopyd copies
    /// (and [`Job::copied`] gets the end).
    pub fn copy_direct(&self, slot: usize, from: Area<'_>, to: Area<'_>, count: u64, place: Place) {
        let Some(ctx) = self.ctx(slot) else {
            self.copy(slot, from, to, count);
            return;
        };
        if count > u64::from(bindings::ORION_DIRECT_COPY_MAX_SECTORS) {
            self.copy(slot, from, to, count);
            return;
        }
        self.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the C worker is live; the context outlives the copy (the drop waits for
        // `writes_in_flight` before destroying the C worker, whose runs and copy queue write
        // the copies whose reads ended and start the spread ones); the owner keeps both
        // devices open until the job's slot ends.
        let r = unsafe {
            bindings::orion_worker_copy(
                self.cw.as_ptr(),
                from.dev.as_raw(),
                from.sector,
                to.dev.as_raw(),
                to.sector,
                count,
                place.raw(),
                Some(direct_fn::<T>),
                ctx,
            )
        };
        if r < 0 {
            self.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
            self.copy(slot, from, to, count);
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

/// The end of a [`Worker::zero_direct`] or [`Worker::copy_direct`].
///
/// # Safety
///
/// `ctx` is a `CopyCtx` of a live `Worker<T>` whose `writes_in_flight` counts this write.
unsafe extern "C" fn direct_fn<T: Job>(error_bits: usize, ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let (w, slot) = unsafe { io_ctx::<T>(ctx) };
    w.job.direct_done(slot, error_bits == 0);
    w.io_ended(slot);
}

/// The end of a [`Worker::write_async`].
///
/// # Safety
///
/// `ctx` is a `CopyCtx` of a live `Worker<T>` whose `writes_in_flight` counts this write.
unsafe extern "C" fn async_fn<T: Job>(error_bits: usize, ctx: *mut c_void) {
    // SAFETY: per this function's contract.
    let (w, slot) = unsafe { io_ctx::<T>(ctx) };
    w.job.async_written(slot, error_bits == 0);
    w.io_ended(slot);
}

/// The worker and slot of a completion's context; the worker stays valid until
/// [`Worker::io_ended`] gives up the count of the I/O.
///
/// # Safety
///
/// `ctx` is a `CopyCtx` of a live `Worker<T>` whose `writes_in_flight` counts the I/O that
/// ends (the worker's drop waits for that count to reach zero).
unsafe fn io_ctx<'a, T: Job>(ctx: *mut c_void) -> (&'a Worker<T>, usize) {
    // SAFETY: per this function's contract.
    let c = unsafe { &*ctx.cast::<CopyCtx>() };
    // SAFETY: `c.worker` is the live worker that owns `c`, kept alive by the count.
    let w = unsafe { &*c.worker.cast::<Worker<T>>() };
    (w, c.slot)
}

/// Whether this task runs a bio submission loop and is not atomic (as far as the kernel
/// counts): a bio submitted here only joins the loop's list.
fn in_submitter() -> bool {
    // SAFETY: reads the current task's state; callable in any context.
    unsafe { bindings::orion_in_submitter() }
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
        let (kcopyd, io) = if slots > 0 {
            (Some(KcopydClient::new()?), Some(IoClient::new()?))
        } else {
            (None, None)
        };
        let mut ctxs = KVec::with_capacity(slots, GFP_KERNEL)?;
        let mut bios = KVec::with_capacity(slots, GFP_KERNEL)?;
        for _ in 0..slots {
            bios.push(AtomicPtr::new(core::ptr::null_mut()), GFP_KERNEL)?;
        }
        let mut w = KBox::new(
            Worker {
                cw: NonNull::dangling(),
                kcopyd,
                io,
                ctxs: KVec::new(),
                bios,
                writes_in_flight: AtomicUsize::new(0),
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
                Some(after_fn::<T>),
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
        // Writes hand their bio back before the owner can end; their completions may still
        // be running.
        while w.writes_in_flight.load(Ordering::Acquire) != 0 {
            time::sleep_ms(1);
        }
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
