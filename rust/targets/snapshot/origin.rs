// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The objects behind the snapshot targets: one [`Origin`] per origin block device (its
//! snapshots, its worker), one [`CowState`] per COW device (exception table and store, shared
//! by the tables that hand it over), and one [`Snapshot`] per `snapshot`/`snapshot-merge`
//! target.
//!
//! The registry finds an origin by device number, as dm-snap's origin hash does, so that a
//! `snapshot-origin` table and the snapshots of the same device meet.

use super::{
    io::WorkState,
    store::{ChunkAlloc, Store},
};
use crate::dm::{
    bio::{BioList, BioStack},
    dev::OpenBdev,
    event::TableEvent,
    global::Global,
    mutex::TryMutex,
    rcu::{self, RcuSlots},
    time,
    worker::{LoneStreak, WorkerBox},
};
use crate::new_try_mutex;
use crate::targets::extents::ExtentTable;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use kernel::{
    c_str, new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

/// Hash slots counting bios in flight that a COW or merge of their chunk must wait for.
pub const TRACK_SLOTS: usize = 64;
/// Exceptions being copied at once per origin (dm-snap's cow_threshold bounds it at 2048).
pub const PE_SLOTS: usize = 256;
/// The copy slot of the merge.
pub const MERGE_SLOT: usize = PE_SLOTS;

/// The tracking slot of a chunk.
pub fn track_slot(chunk: u64) -> usize {
    (chunk as usize) & (TRACK_SLOTS - 1)
}

/// The exceptions and store of one COW device.
#[pin_data]
pub struct CowState {
    /// The COW device, kept open for copies and metadata I/O.
    pub cow: OpenBdev,
    /// Its device number.
    pub cow_dev: u32,
    /// Chunk size in sectors (a power of two).
    pub chunk: u32,
    /// log2 of `chunk`.
    pub shift: u32,
    /// Completed exceptions, read under RCU on the I/O path.
    pub table: ExtentTable,
    /// The store; locked by commits (across a synchronous area write), merges and status,
    /// never by the map path (a commit done where nothing may sleep only tries it).
    #[pin]
    pub store: TryMutex<Store>,
    /// Free chunks, handed out without the store's lock.
    pub alloc: ChunkAlloc,
    /// `PO`: a full store reports overflow instead of invalidating the snapshot.
    pub overflow_allowed: bool,
    /// A commit of this store is writing its area (outside the origin's state lock): no
    /// other commit of it starts until that one has published its exceptions.
    pub committing: AtomicBool,
    /// The snapshot has not been invalidated.
    pub valid: AtomicBool,
    /// A `PO` snapshot ran out of space (writes to it fail, it stays readable).
    pub overflowed: AtomicBool,
    /// The merge stopped on an error.
    pub merge_failed: AtomicBool,
    /// Snapshot reads of the origin (and merge writes to the COW) in flight, by chunk slot.
    pub tracked: [AtomicU32; TRACK_SLOTS],
    /// Exceptions published but not yet released (tracked reads of their chunk still run),
    /// by chunk slot: origin writes to such a chunk wait for the release.
    pub draining: [AtomicU32; TRACK_SLOTS],
    /// Sequence number of the next exception started (worker only).
    pub next_seq: AtomicU64,
    /// Sequence number of the next exception to commit: commits happen in start order.
    pub complete_seq: AtomicU64,
}

impl CowState {
    /// A COW state over `cow`, with `store` already loaded into `table` and `next_free` its
    /// next free chunk.
    pub fn new(
        cow: OpenBdev,
        table: ExtentTable,
        store: Store,
        valid: bool,
        next_free: u64,
    ) -> Result<Arc<Self>> {
        let chunk = store.chunk();
        let alloc = ChunkAlloc::new(&store, next_free);
        let overflow_allowed = store.overflow_allowed();
        let cow_dev = cow.bdev().dev_number();
        Arc::pin_init(
            pin_init!(CowState {
                cow,
                cow_dev,
                chunk,
                shift: chunk.trailing_zeros(),
                table,
                store <- new_try_mutex!(store, "CowState::store"),
                alloc,
                overflow_allowed,
                committing: AtomicBool::new(false),
                valid: AtomicBool::new(valid),
                overflowed: AtomicBool::new(false),
                merge_failed: AtomicBool::new(false),
                tracked: [const { AtomicU32::new(0) }; TRACK_SLOTS],
                draining: [const { AtomicU32::new(0) }; TRACK_SLOTS],
                next_seq: AtomicU64::new(0),
                complete_seq: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Counts a bio in flight on `chunk` (see `tracked`). Followed by a full fence, so a
    /// worker that publishes an exception and then reads the count sees either this bio or
    /// the bio sees the exception.
    pub fn track(&self, chunk: u64) -> usize {
        let h = track_slot(chunk);
        self.tracked[h].fetch_add(1, Ordering::SeqCst);
        core::sync::atomic::fence(Ordering::SeqCst);
        h
    }

    /// Ends the count of [`Self::track`].
    pub fn untrack(&self, slot: usize) {
        if let Some(t) = self.tracked.get(slot) {
            t.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether an exception of `chunk`'s slot is published but not released (read after
    /// finding the exception in the table; the worker counts it before publishing).
    pub fn is_draining(&self, chunk: u64) -> bool {
        self.draining[track_slot(chunk)].load(Ordering::Acquire) != 0
    }

    /// Whether bios on `chunk`'s slot are in flight.
    pub fn is_tracked(&self, chunk: u64) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        self.tracked[track_slot(chunk)].load(Ordering::SeqCst) != 0
    }
}

/// One `snapshot` or `snapshot-merge` target.
#[pin_data]
pub struct Snapshot {
    /// The exceptions (shared with the table it was handed over from or to).
    pub cow: Arc<CowState>,
    /// The origin.
    pub origin: Arc<Origin>,
    /// A `snapshot-merge` target.
    pub merge: bool,
    /// The end of the snapshot's table (origin writes past it need no exception).
    pub end: u64,
    /// Resumed at least once: origin writes create exceptions in it.
    pub active: AtomicBool,
    /// Its exceptions went to another table (or the handover was cancelled): I/O fails.
    pub retired: AtomicBool,
    /// Suspended (a handover source must be).
    pub suspended: AtomicBool,
    /// `discard_zeroes_cow`.
    pub discard_zeroes_cow: bool,
    /// `discard_passdown_origin`.
    pub discard_passdown_origin: bool,
    /// Bios `map` deferred to the worker.
    #[pin]
    pub queue: SpinLock<BioList>,
    /// The target's table event, taken out by the destructor.
    #[pin]
    pub event: SpinLock<Option<TableEvent>>,
}

impl Snapshot {
    /// A snapshot target's object (not yet registered with its origin).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cow: Arc<CowState>,
        origin: Arc<Origin>,
        merge: bool,
        end: u64,
        discard_zeroes_cow: bool,
        discard_passdown_origin: bool,
        event: TableEvent,
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Snapshot {
                cow,
                origin,
                merge,
                end,
                active: AtomicBool::new(false),
                retired: AtomicBool::new(false),
                suspended: AtomicBool::new(false),
                discard_zeroes_cow,
                discard_passdown_origin,
                queue <- new_spinlock!(BioList::new()),
                event <- new_spinlock!(Some(event)),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether I/O to the snapshot may proceed.
    pub fn is_valid(&self) -> bool {
        !self.retired.load(Ordering::Acquire) && self.cow.valid.load(Ordering::Acquire)
    }

    /// Whether an origin write at `sector` needs no copy into this snapshot: it is not
    /// concerned, or the chunk's exception is published and released (no tracked read of
    /// it runs, so no exception of it is still being made either).
    pub fn write_needs_no_cow(&self, sector: u64, g: &rcu::ReadGuard) -> bool {
        self.merge
            || !self.active.load(Ordering::Acquire)
            || !self.is_valid()
            || sector >= self.end
            || {
                let chunk = sector >> self.cow.shift;
                self.cow.table.lookup(chunk, g).is_some() && !self.cow.is_draining(chunk)
            }
    }

    /// Raises the target's table event.
    pub fn event(&self) {
        if let Some(e) = self.event.lock().as_ref() {
            e.trigger();
        }
    }

    /// Invalidates the snapshot (dm-snap's `__invalidate_snapshot`): the store is marked
    /// invalid on disk and userspace is told. Worker or process context.
    pub fn invalidate(&self, err: Error) {
        if !self.cow.valid.swap(false, Ordering::AcqRel) {
            return;
        }
        if err == EIO {
            pr_err!("device-mapper: snapshots: Invalidating snapshot: Error reading/writing.\n");
        } else if err == ENOMEM {
            pr_err!(
                "device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.\n"
            );
        }
        self.cow.store.lock().drop_snapshot(self.cow.cow.bdev());
        self.event();
    }
}

/// The state the worker and the map path share for one origin device.
#[pin_data]
pub struct OriginCore {
    /// The origin's device number.
    pub dev: u32,
    /// The origin device, kept open for copies.
    pub bdev: OpenBdev,
    /// The snapshots, published for `map` (slot 0), largest chunk first.
    pub snaps: RcuSlots<KVec<Arc<Snapshot>>>,
    /// Origin writes waiting for the worker.
    #[pin]
    pub queue: SpinLock<BioList>,
    /// Full-chunk snapshot writes back from `end_io`, waiting for their commit.
    #[pin]
    pub returned: BioStack,
    /// Copy completions by slot: 0 none, 1 done, 2 failed.
    pub done: [AtomicU8; PE_SLOTS + 1],
    /// By slot: a lone writer's copy, written and committed on the CPU its read ended on.
    pub lone: [AtomicBool; PE_SLOTS + 1],
    /// COWs started with no other exception pending nor copy in flight.
    pub solo_streak: LoneStreak,
    /// The merge should run (a merge target is resumed).
    pub merge_run: AtomicBool,
    /// The merge has work in flight (the presuspend of a merge target waits for it).
    pub merge_busy: AtomicBool,
    /// Copies and zeroing started and not yet ended.
    pub copies: AtomicUsize,
    /// Copies ended since the last pass that committed.
    pub ended: AtomicUsize,
    /// By slot: the result of an asynchronous area write whose batch starts at that slot
    /// (0 none, 1 written, 2 failed), until a pass publishes the batch.
    pub area_done: [AtomicU8; PE_SLOTS + 1],
    /// The worker's state (tried, never waited for, where nothing may sleep).
    #[pin]
    pub state: TryMutex<WorkState>,
}

/// An origin device with snapshots or a `snapshot-origin` table, and its worker.
pub struct Origin {
    /// What the worker and the targets share.
    pub core: Arc<OriginCore>,
    /// The worker: COWs, commits, snapshot writes needing a copy, the merge.
    pub worker: WorkerBox<OriginCore>,
}

struct Entry {
    origin: Arc<Origin>,
    users: usize,
}

static ORIGINS: Global<KVec<Option<Entry>>> = Global::new(KVec::new());

/// Frees the registry's buffer (module exit: no table, hence no entry, is left).
pub fn free_registry() {
    ORIGINS.reset();
}

impl Origin {
    /// The origin of device `dev`, created on first use; every call is paired with
    /// [`Origin::put`].
    pub fn get(dev: u32) -> Result<Arc<Origin>> {
        ORIGINS.with(|list| {
            for e in list.iter_mut().flatten() {
                if e.origin.core.dev == dev {
                    e.users += 1;
                    return Ok(e.origin.clone());
                }
            }
            // Written by merges; a read-only origin (no merge possible) is opened for reading.
            let bdev = match OpenBdev::open(dev, true) {
                Ok(b) => b,
                Err(_) => OpenBdev::open(dev, false)?,
            };
            let snaps = RcuSlots::new(1, GFP_KERNEL)?;
            let work = WorkState::new()?;
            let core = Arc::pin_init(
                pin_init!(OriginCore {
                    dev,
                    bdev,
                    snaps,
                    queue <- new_spinlock!(BioList::new()),
                    returned: BioStack::new(),
                    done: [const { AtomicU8::new(0) }; PE_SLOTS + 1],
                    lone: [const { AtomicBool::new(false) }; PE_SLOTS + 1],
                    solo_streak: LoneStreak::default(),
                    merge_run: AtomicBool::new(false),
                    merge_busy: AtomicBool::new(false),
                    copies: AtomicUsize::new(0),
                    ended: AtomicUsize::new(0),
                    area_done: [const { AtomicU8::new(0) }; PE_SLOTS + 1],
                    state <- new_try_mutex!(work, "OriginCore::state"),
                }),
                GFP_KERNEL,
            )?;
            let worker = WorkerBox::new(c_str!("ksnapd"), core.clone(), PE_SLOTS + 1)?;
            let origin = Arc::new(Origin { core, worker }, GFP_KERNEL)?;
            let entry = Entry {
                origin: origin.clone(),
                users: 1,
            };
            match list.iter_mut().find(|e| e.is_none()) {
                Some(slot) => *slot = Some(entry),
                None => list.push(Some(entry), GFP_KERNEL)?,
            }
            Ok(origin)
        })
    }

    /// Ends a use begun by [`Origin::get`]; the last one stops the worker.
    pub fn put(this: &Arc<Origin>) {
        let last = ORIGINS.with(|list| {
            for slot in list.iter_mut() {
                if let Some(e) = slot {
                    if Arc::ptr_eq(&e.origin, this) {
                        e.users -= 1;
                        if e.users == 0 {
                            return slot.take();
                        }
                        return None;
                    }
                }
            }
            None
        });
        if let Some(e) = &last {
            e.origin.forget_snapshots();
        }
        // The worker stops outside the registry lock.
        drop(last);
    }

    /// Drops the origin's references to its snapshots once no table uses it (so no `map`
    /// runs). A snapshot that `unregister` could only retire in place (no memory for a new
    /// list) refers to its origin: left listed, it would keep the origin alive for ever.
    fn forget_snapshots(&self) {
        let (listed, merge) = {
            let mut st = self.core.state.lock();
            (core::mem::take(&mut st.snaps), st.merge.take())
        };
        // Emptying a slot allocates nothing; the writer is free (writers hold the state
        // lock, and no table is left to take it).
        let published = self
            .core
            .snaps
            .writer()
            .ok()
            .and_then(|mut w| w.replace_sync(0, None, GFP_KERNEL).ok().flatten());
        // Dropped outside the state lock: a snapshot's last reference may go with them.
        drop((listed, merge, published));
    }

    /// Queues a run of the worker.
    pub fn wake(&self) {
        self.worker.wake();
    }

    /// The snapshots sharing `cow_dev`: `(active source, inactive destination, count)`.
    pub fn sharing(
        st: &WorkState,
        cow_dev: u32,
    ) -> (Option<Arc<Snapshot>>, Option<Arc<Snapshot>>, usize) {
        let (mut src, mut dest, mut n) = (None, None, 0);
        for s in st.snaps.iter() {
            if s.cow.cow_dev != cow_dev {
                continue;
            }
            if s.active.load(Ordering::Acquire) {
                src = Some(s.clone());
            } else {
                dest = Some(s.clone());
            }
            n += 1;
        }
        (src, dest, n)
    }

    /// Publishes the worker's list of snapshots to `map`. Sleeps (a grace period).
    fn publish(&self, st: &WorkState) -> Result {
        let mut copy = KVec::with_capacity(st.snaps.len(), GFP_KERNEL)?;
        for s in st.snaps.iter() {
            copy.push(s.clone(), GFP_KERNEL)?;
        }
        let mut w = self.core.snaps.writer()?;
        let old = w.replace_sync(0, Some(copy), GFP_KERNEL)?;
        drop(w);
        // The old list's references are dropped here, in process context.
        drop(old);
        Ok(())
    }

    /// Adds a snapshot: sorted by chunk size, largest first (dm-snap's `__insert_snapshot`).
    pub fn register(&self, snap: Arc<Snapshot>) -> Result {
        let mut st = self.core.state.lock();
        let mut next = KVec::with_capacity(st.snaps.len() + 1, GFP_KERNEL)?;
        let mut placed = false;
        for s in st.snaps.iter() {
            if !placed && s.cow.chunk < snap.cow.chunk {
                next.push(snap.clone(), GFP_KERNEL)?;
                placed = true;
            }
            next.push(s.clone(), GFP_KERNEL)?;
        }
        if !placed {
            next.push(snap, GFP_KERNEL)?;
        }
        // Listed for the worker only once `map` sees it too: a constructor that fails here
        // leaves no snapshot behind that the worker would copy into.
        let old = core::mem::replace(&mut st.snaps, next);
        if let Err(e) = self.publish(&st) {
            st.snaps = old;
            return Err(e);
        }
        Ok(())
    }

    /// Removes a snapshot; returns once no `map` can see it and no exception being copied
    /// refers to it.
    pub fn unregister(&self, snap: &Arc<Snapshot>) {
        {
            let mut st = self.core.state.lock();
            let mut next = KVec::with_capacity(st.snaps.len(), GFP_KERNEL);
            if let Ok(next) = next.as_mut() {
                for s in st.snaps.iter() {
                    if !Arc::ptr_eq(s, snap) {
                        // Capacity was reserved: this push does not allocate.
                        let _ = next.push(s.clone(), GFP_KERNEL);
                    }
                }
            }
            match next {
                Ok(next) => st.snaps = next,
                Err(_) => {
                    // Without memory for a copy, retire the snapshot in place: the worker
                    // and `map` skip it, and it stays listed until the origin goes away.
                    snap.retired.store(true, Ordering::Release);
                }
            }
            if st
                .merge
                .as_ref()
                .is_some_and(|m| Arc::ptr_eq(&m.snap, snap))
            {
                st.merge = None;
            }
            if self.publish(&st).is_err() {
                snap.retired.store(true, Ordering::Release);
            }
        }
        // Wait for the exceptions being copied for it (dm-snap waits the same way).
        while self.core.state.lock().refers_to(snap) {
            time::sleep_ms(1);
        }
    }

    /// The smallest chunk of the origin's snapshots (2^31 sectors with none), the size
    /// origin writes are split at.
    pub fn min_chunk(&self) -> u32 {
        let st = self.core.state.lock();
        st.snaps
            .iter()
            .map(|s| s.cow.chunk)
            .filter(|&c| c != 0)
            .min()
            .unwrap_or(1 << 31)
    }

    /// The smallest chunk of the snapshots `map` sees now, if any. Lock-free.
    pub fn live_min_chunk(&self) -> Option<u32> {
        let g = rcu::read_lock();
        self.core
            .snaps
            .get(0, &g)?
            .iter()
            .map(|s| s.cow.chunk)
            .filter(|&c| c != 0)
            .min()
    }

    /// Whether every snapshot that an origin write at `sector` concerns already has an
    /// exception for it (then the write goes straight to the origin). Lock-free.
    pub fn write_needs_no_cow(&self, sector: u64) -> bool {
        let g = rcu::read_lock();
        let Some(snaps) = self.core.snaps.get(0, &g) else {
            return true;
        };
        snaps.iter().all(|s| s.write_needs_no_cow(sector, &g))
    }
}
