// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The pool object behind `thin-pool` and `thin` targets: the metadata, the data device, the
//! bio prison and the worker that maps thin bios (the worker's pipeline is in [`super::io`]).
//!
//! One pool exists per pool mapped device and outlives table reloads (as in dm-thin.c): the
//! registry finds it by the device number of the pool's mapped device, and every pool and
//! thin target holds a [`PoolRef`].

use super::{deferred_set::DeferredSet, prison::Prison};
pub use crate::dm::dev::DevName;
use crate::dm::{
    bio::{BioList, BioStack, IoStatus, OwnedBio},
    bufio::Bufio,
    dev::OpenBdev,
    event::TableEvent,
    global::Global,
    internal_suspend::MappedDevice,
    stack,
    status::StatusWriter,
    time,
    worker::{LoneStreak, WorkerBox},
};
use crate::pdata::{
    block::BlockManager,
    error::Error as PdError,
    space_map::metadata::MAX_BLOCKS,
    thin::superblock::NEEDS_CHECK,
    thin::{device::DevId, ThinMetadata},
};
use crate::targets::{divisor::Divisor, extents::ExtentTable};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    c_str, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// What the pool accepts, as dm-thin's pool modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Normal operation.
    Write,
    /// No data block is free: writes needing one fail until the pool grows.
    OutOfDataSpace,
    /// Metadata is not changed (requested with `read_only`, or after a metadata failure).
    ReadOnly,
    /// No free metadata block is left (beyond the reserve): read-only until the metadata
    /// device grows.
    OutOfMetadataSpace,
    /// A metadata operation failed: every bio fails.
    Fail,
}

/// Pool features of a table line (`struct pool_features`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolFeatures {
    /// Zero a newly provisioned block before a partial write lands in it.
    pub zero_new_blocks: bool,
    /// Discards are handled (`ignore_discard` clears it).
    pub discard_enabled: bool,
    /// Discards pass down to the data device (`no_discard_passdown` clears it).
    pub discard_passdown: bool,
    /// `read_only`.
    pub read_only: bool,
    /// Fail writes at once when out of data space instead of queueing them.
    pub error_if_no_space: bool,
}

impl Mode {
    /// Whether the metadata may change in this mode.
    pub fn writable(self) -> bool {
        matches!(self, Mode::Write | Mode::OutOfDataSpace)
    }
}

impl Default for PoolFeatures {
    fn default() -> Self {
        PoolFeatures {
            zero_new_blocks: true,
            discard_enabled: true,
            discard_passdown: true,
            read_only: false,
            error_if_no_space: false,
        }
    }
}

/// What the `map` fast path reads without the pool's lock.
pub struct FastPath {
    /// Bios may be remapped in `map`: the pool is in write or out-of-data-space mode.
    pub enabled: AtomicBool,
    /// Bumped (under the pool lock) whenever cached mappings may be stale: a mode change,
    /// the metadata reopened, a snapshot taken or a device deleted. A thin device's table
    /// filled under another generation is not used.
    pub generation: AtomicU64,
    /// The device number of the bound pool table's data device (0: none bound): a thin
    /// device remaps straight to the data device it captured when it matches.
    pub data_devt: AtomicU32,
}

impl FastPath {
    /// Forgets every cached mapping of the pool.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The state the worker, messages and status share, under the pool mutex.
pub struct PoolState {
    /// The open metadata.
    pub md: KBox<ThinMetadata<Bufio>>,
    /// The current mode.
    pub mode: Mode,
    /// Features of the bound pool target.
    pub features: PoolFeatures,
    /// The data device of the bound (resumed) pool target.
    pub data_dev: Option<Arc<OpenBdev>>,
    /// Metadata changed since the last commit.
    pub dirty: bool,
    /// When the metadata was last committed ([`time::now_ms`]).
    pub last_commit_ms: u64,
    /// The cells of virtual blocks under change.
    pub prison: Prison,
    /// Raises table events for the bound pool target (mode changes, low water marks); taken
    /// back by the target's destructor.
    pub event: Option<Arc<TableEvent>>,
    /// Free data blocks at or below which an event is raised (the table's low water mark).
    pub low_water_blocks: u64,
    /// The data low water event was raised since the last resume.
    pub low_water_triggered: bool,
    /// The metadata low water event was raised and free space has not risen above since.
    pub metadata_low_triggered: bool,
    /// When the pool ran out of data space while queueing ([`time::now_ms`]).
    pub no_space_since: Option<u64>,
    /// Bios wait in the thin queues' `held` lists for data space.
    pub holding: bool,
    /// The mode went back to write: the held bios go back to the worker.
    pub release_held: bool,
    /// Bios failed because the pool ran out of data space get ENOSPC, even after the pool
    /// went read-only (as C's `out_of_data_space` flag).
    pub out_of_data_space: bool,
    /// The pool device is suspended, or was never resumed: thin devices cannot be
    /// activated (as C).
    pub suspended: bool,
    /// The fast path's switch and generation (shared with the pool's core).
    pub fast: Arc<FastPath>,
    /// The pool's mapped device, for log lines.
    md_dev: u32,
    /// The metadata device, open as long as the pool.
    metadata_dev: Arc<OpenBdev>,
}

/// The errno C's dm-thin logs (and returns) for a metadata error.
pub fn errno(e: &PdError) -> i32 {
    match e {
        PdError::Io(_) | PdError::OutOfBounds(_) => -5,
        PdError::Checksum(_) => -84,
        PdError::WrongLocation { .. } => -15,
        PdError::NoSpace => -28,
        PdError::Busy(_) => -16,
        PdError::Corrupt { .. } | PdError::TooDeep(_) | PdError::Invalid(_) => -22,
    }
}

/// The external origin of a thin device: unmapped blocks read from it.
pub struct Origin {
    /// The origin device.
    pub dev: OpenBdev,
    /// Its size in sectors, refreshed at each resume of the thin target.
    size: AtomicU64,
}

impl Origin {
    /// An origin of `size` sectors.
    pub fn new(dev: OpenBdev, size: u64) -> Self {
        Origin {
            dev,
            size: AtomicU64::new(size),
        }
    }

    /// Its size in sectors.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Records a new size.
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }
}

/// Bios of one active thin device waiting for the worker.
#[pin_data]
pub struct ThinQueue {
    /// The thin device id.
    pub dev: DevId,
    /// The first sector of the thin target in its mapped device.
    pub begin: u64,
    /// The external origin, if any.
    pub origin: Option<Origin>,
    #[pin]
    bios: SpinLock<BioList>,
    /// Bios released from cells or put back by the worker; they go before `bios`.
    #[pin]
    retry: SpinLock<BioList>,
    /// Bios that need a data block while the pool has none (`queue_if_no_space`).
    #[pin]
    held: SpinLock<BioList>,
    /// The thin target's mapped device, while the target exists (its destructor takes it
    /// out): the pool suspends it while the pool itself is suspended, as C.
    #[pin]
    pub md: Mutex<Option<MappedDevice>>,
    /// The pool suspended the device (and resumes it).
    internally_suspended: AtomicBool,
    /// Mappings of the device known to be unshared, for the `map` fast path: filled and
    /// changed by the worker only.
    pub map: ExtentTable,
    /// The pool's fast-path generation `map` was filled under.
    pub map_generation: AtomicU64,
}

impl ThinQueue {
    /// A queue for device `dev` whose target starts at `begin`.
    pub fn new(
        dev: DevId,
        begin: u64,
        blocks: u64,
        origin: Option<Origin>,
        md: Option<MappedDevice>,
    ) -> Result<Arc<Self>> {
        // A bucket per 256 blocks, as the table's groups.
        let map = ExtentTable::new(blocks >> 8)?;
        Arc::pin_init(
            pin_init!(ThinQueue {
                dev,
                begin,
                origin,
                bios <- new_spinlock!(BioList::new()),
                retry <- new_spinlock!(BioList::new()),
                held <- new_spinlock!(BioList::new()),
                md <- new_mutex!(md),
                internally_suspended: AtomicBool::new(false),
                map,
                map_generation: AtomicU64::new(u64::MAX),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues `bio` (any context).
    pub fn push(&self, bio: OwnedBio) {
        self.bios.lock().push(bio);
    }

    /// Queues bios for the worker ahead of new ones.
    pub fn retry(&self, bios: BioList) {
        self.retry.lock().prepend(bios);
    }

    /// Keeps a bio until the pool has data space again.
    pub fn hold(&self, bio: OwnedBio) {
        self.held.lock().push(bio);
    }

    /// The bios held for data space.
    pub fn take_held(&self) -> BioList {
        core::mem::take(&mut *self.held.lock())
    }

    /// Every waiting bio: retried ones first.
    pub fn take(&self) -> BioList {
        let mut all = core::mem::take(&mut *self.retry.lock());
        all.append(&mut core::mem::take(&mut *self.bios.lock()));
        all
    }
}

/// Ends of zeroing and copies per cell, recorded from any context (kcopyd's thread, or I/O
/// completion for the worker's direct zeroing and copies) without a lock: a count and a
/// failure flag per cell, and a bit per cell that has ends to take.
pub struct Completions {
    ended: KVec<AtomicU8>,
    failed: KVec<AtomicBool>,
    marked: KVec<AtomicU64>,
}

impl Completions {
    fn new() -> Result<Self> {
        let cells = super::prison::CELLS;
        let mut ended = KVec::with_capacity(cells, GFP_KERNEL)?;
        let mut failed = KVec::with_capacity(cells, GFP_KERNEL)?;
        let mut marked = KVec::with_capacity(cells.div_ceil(64), GFP_KERNEL)?;
        for _ in 0..cells {
            ended.push(AtomicU8::new(0), GFP_KERNEL)?;
            failed.push(AtomicBool::new(false), GFP_KERNEL)?;
        }
        for _ in 0..cells.div_ceil(64) {
            marked.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        Ok(Completions {
            ended,
            failed,
            marked,
        })
    }

    /// Records the end of one of cell `cell`'s jobs.
    pub fn push(&self, cell: usize, ok: bool) {
        let (Some(n), Some(f), Some(m)) = (
            self.ended.get(cell),
            self.failed.get(cell),
            self.marked.get(cell / 64),
        ) else {
            return;
        };
        if !ok {
            f.store(true, Ordering::Relaxed);
        }
        // Publishes the failure with the count.
        n.fetch_add(1, Ordering::AcqRel);
        m.fetch_or(1 << (cell % 64), Ordering::AcqRel);
    }

    /// Takes every recorded end: `f(cell, ends, ok)` once per cell with ends.
    pub fn take(&self, mut f: impl FnMut(usize, u8, bool)) {
        for (i, word) in self.marked.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let cell = i * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (Some(n), Some(failed)) = (self.ended.get(cell), self.failed.get(cell)) else {
                    continue;
                };
                // An end recorded after the swap of its bit is taken now or on the next
                // call (its bit is set again), never lost.
                let ends = n.swap(0, Ordering::AcqRel);
                if ends > 0 {
                    f(cell, ends, !failed.swap(false, Ordering::AcqRel));
                }
            }
        }
    }
}

/// The shared core of a pool: what the worker runs on.
#[pin_data]
pub struct PoolCore {
    /// Sectors per data block.
    pub block_sectors: u64,
    /// `block_sectors` as a divisor (a shift when it is a power of two).
    block: Divisor,
    #[pin]
    pub(super) state: Mutex<PoolState>,
    #[pin]
    pub(super) thins: Mutex<KVec<Option<Arc<ThinQueue>>>>,
    /// Ends of zeroing and copies.
    pub(super) completions: Completions,
    /// Bios `end_io` handed back: whole-block overwrites whose write completed, discards
    /// whose passdown completed.
    #[pin]
    pub(super) returned: BioStack,
    /// The fast path's switch and generation.
    pub fast: Arc<FastPath>,
    /// In-flight reads of shared blocks.
    pub(super) shared_reads: DeferredSet,
    /// Runs that found at most one bio to map and one cell held (a lone writer).
    pub(super) lone_runs: LoneStreak,
    /// All in-flight bios remapped to the data device.
    pub all_io: DeferredSet,
    /// The metadata device's number: a reload must name the same device.
    metadata_devt: u32,
    /// Length of the bound pool target, in sectors; read without the mutex by
    /// `iterate_devices`, which must not sleep.
    pool_len: AtomicU64,
}

impl PoolCore {
    /// The block of sector `v` of a thin device and the offset in it.
    pub fn split(&self, v: u64) -> (u64, u64) {
        self.block.div_rem(v)
    }
}

/// A pool: its core and the worker that runs it.
pub struct Pool {
    md_dev: u32,
    worker: WorkerBox<PoolCore>,
}

struct Entry {
    md_dev: u32,
    pool: Arc<Pool>,
    users: usize,
}

/// Every pool, by the device number of its mapped device.
static POOLS: Global<KVec<Option<Entry>>> = Global::new(KVec::new());

/// Frees the registry's buffer (module exit: no table, hence no entry, is left).
pub fn free_registry() {
    POOLS.reset();
}

/// Puts `v` in the first free slot of `slots`, growing it if there is none.
fn put_in_slot<T>(slots: &mut KVec<Option<T>>, v: T) -> Result<(), kernel::alloc::AllocError> {
    match slots.iter_mut().find(|s| s.is_none()) {
        Some(s) => {
            *s = Some(v);
            Ok(())
        }
        None => slots.push(Some(v), GFP_KERNEL),
    }
}

/// A counted use of a pool by a target; the pool leaves the registry with its last user.
pub struct PoolRef(Arc<Pool>);

impl core::ops::Deref for PoolRef {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl Drop for PoolRef {
    fn drop(&mut self) {
        let gone = POOLS.with(|pools| {
            let slot = pools
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|e| Arc::ptr_eq(&e.pool, &self.0)))?;
            let e = slot.as_mut()?;
            e.users -= 1;
            if e.users == 0 {
                slot.take()
            } else {
                None
            }
        });
        // The registry's reference goes outside the lock; ours after this function.
        drop(gone);
    }
}

/// Why a pool could not be found or made.
#[derive(Clone, Copy, Debug)]
pub enum PoolError {
    /// Allocation failed.
    NoMem,
    /// The metadata could not be opened or formatted: the errno C's pool constructor returns
    /// for it (EIO, EILSEQ for a checksum, ENOTBLK for a block at the wrong place, ...).
    Metadata(i32),
    /// The metadata belongs to a pool with another data block size.
    BlockSize,
    /// The pool is bound to another metadata device.
    OtherMetadata,
    /// A `read_only` pool on a blank metadata device (formatting it would write).
    ReadOnlyBlank,
}

impl Pool {
    /// The pool of mapped device `md_dev`, made on metadata device `metadata_devt` if there
    /// is none yet. Returns it and whether it was made.
    pub fn find_or_create(
        md_dev: u32,
        metadata_devt: u32,
        block_sectors: u64,
        nr_data_blocks: u64,
        features: PoolFeatures,
    ) -> Result<(PoolRef, bool), PoolError> {
        POOLS.with(|pools| {
            if let Some(e) = pools.iter_mut().flatten().find(|e| e.md_dev == md_dev) {
                let core = e.pool.core();
                if core.metadata_devt != metadata_devt {
                    return Err(PoolError::OtherMetadata);
                }
                if core.block_sectors != block_sectors {
                    return Err(PoolError::BlockSize);
                }
                e.users += 1;
                return Ok((PoolRef(e.pool.clone()), false));
            }
            let pool = Self::create(
                md_dev,
                metadata_devt,
                block_sectors,
                nr_data_blocks,
                features,
            )?;
            let entry = Entry {
                md_dev,
                pool: pool.clone(),
                users: 1,
            };
            put_in_slot(pools, entry).map_err(|_| PoolError::NoMem)?;
            Ok((PoolRef(pool), true))
        })
    }

    /// A new user of the pool of mapped device `md_dev`, if it exists.
    pub fn lookup(md_dev: u32) -> Option<PoolRef> {
        POOLS.with(|pools| {
            let e = pools.iter_mut().flatten().find(|e| e.md_dev == md_dev)?;
            e.users += 1;
            Some(PoolRef(e.pool.clone()))
        })
    }

    fn create(
        md_dev: u32,
        metadata_devt: u32,
        block_sectors: u64,
        nr_data_blocks: u64,
        features: PoolFeatures,
    ) -> Result<Arc<Pool>, PoolError> {
        // The pool's constructor refuses a zero block size before it gets here.
        let block = Divisor::new(block_sectors).ok_or(PoolError::BlockSize)?;
        // The pool keeps its own reference: it outlives the table that named the device.
        let metadata_dev = OpenBdev::open(metadata_devt, !features.read_only)
            .and_then(|d| Arc::new(d, GFP_KERNEL).map_err(Into::into))
            .map_err(|e| PoolError::Metadata(e.to_errno()))?;
        let bm = Bufio::new(metadata_dev.clone(), MAX_BLOCKS)
            .map_err(|e| PoolError::Metadata(e.to_errno()))?;
        // Table loads run deep in an ioctl's stack; the metadata objects are big.
        let md = stack::on_fresh_stack(|| {
            open_metadata(bm, block_sectors, nr_data_blocks, features.read_only)
        })
        .ok_or(PoolError::NoMem)??;
        let mode = if features.read_only {
            Mode::ReadOnly
        } else {
            Mode::Write
        };
        let prison = Prison::new().map_err(|_| PoolError::NoMem)?;
        let completions = Completions::new().map_err(|_| PoolError::NoMem)?;
        let fast = Arc::new(
            FastPath {
                enabled: AtomicBool::new(mode == Mode::Write),
                generation: AtomicU64::new(0),
                data_devt: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )
        .map_err(|_| PoolError::NoMem)?;
        let core = Arc::pin_init(
            pin_init!(PoolCore {
                block_sectors,
                block,
                state <- new_mutex!(PoolState {
                    md,
                    mode,
                    features,
                    data_dev: None,
                    dirty: false,
                    last_commit_ms: time::now_ms(),
                    prison,
                    event: None,
                    low_water_blocks: 0,
                    low_water_triggered: false,
                    metadata_low_triggered: false,
                    no_space_since: None,
                    holding: false,
                    release_held: false,
                    out_of_data_space: false,
                    suspended: true,
                    fast: fast.clone(),
                    md_dev,
                    metadata_dev,
                }),
                fast,
                thins <- new_mutex!(KVec::new()),
                completions,
                returned: BioStack::new(),
                shared_reads: DeferredSet::new(),
                lone_runs: LoneStreak::default(),
                all_io: DeferredSet::new(),
                metadata_devt,
                pool_len: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
        .map_err(|_| PoolError::NoMem)?;
        let worker = WorkerBox::new(c_str!("orion-thin"), core, super::prison::CELLS)
            .map_err(|_| PoolError::NoMem)?;
        Arc::new(Pool { md_dev, worker }, GFP_KERNEL).map_err(|_| PoolError::NoMem)
    }

    /// The core.
    pub fn core(&self) -> &PoolCore {
        self.worker.job()
    }

    /// The device number of the pool's mapped device.
    pub fn md_dev(&self) -> u32 {
        self.md_dev
    }

    /// Length of the bound pool target, in sectors (0 before the first resume).
    pub fn pool_len(&self) -> u64 {
        self.core().pool_len.load(Ordering::Relaxed)
    }

    /// Records the length of the pool target being bound.
    pub fn set_pool_len(&self, len: u64) {
        self.core().pool_len.store(len, Ordering::Relaxed);
    }

    /// Wakes the worker.
    pub fn wake(&self) {
        self.worker.wake();
    }

    /// Suspends every active thin device of the pool (noflush: they give their queued bios
    /// back to dm core), as C's `pool_presuspend`; no thin I/O reaches the pool meanwhile.
    pub fn suspend_thins(&self) {
        self.core().for_each_queue(|q| {
            let md = q.md.lock();
            if let Some(md) = md.as_ref() {
                md.suspend_noflush();
                q.internally_suspended.store(true, Ordering::Release);
            }
        });
    }

    /// Resumes the thin devices [`Self::suspend_thins`] suspended.
    pub fn resume_thins(&self) {
        self.core().for_each_queue(|q| {
            let md = q.md.lock();
            if q.internally_suspended.swap(false, Ordering::AcqRel) {
                if let Some(md) = md.as_ref() {
                    md.resume();
                }
            }
        });
    }

    /// Gives the bios queued or held for a thin device back to dm core to map again after
    /// its resume (a suspend without flush).
    pub fn requeue(&self, q: &ThinQueue) {
        // Under the state lock, so the worker is not mapping any of them meanwhile.
        self.with_state(|_| {
            let mut bios = q.take();
            bios.append(&mut q.take_held());
            while let Some(b) = bios.pop() {
                b.end(IoStatus::Requeue);
            }
        });
    }

    /// Takes a bio the thin's `end_io` kept (a whole-block overwrite or a discard whose
    /// passdown completed) back to the worker.
    pub fn returned(&self, bio: OwnedBio) {
        self.core().returned.push(bio);
        self.worker.wake();
    }

    /// Counts a remapped bio done (from the thin's `end_io`), by its tag; returns the tag
    /// left for the worker.
    pub fn io_done(&self, tag: u64) -> u64 {
        let core = self.core();
        let mut wake = false;
        if tag & super::io::TAG_ALL_IO != 0 {
            wake |= core.all_io.put(tag >> super::io::ALL_IO_EPOCH_SHIFT);
        }
        if tag & super::io::TAG_SHARED_READ != 0 {
            wake |= core.shared_reads.put(tag >> super::io::SHARED_EPOCH_SHIFT);
        }
        if wake {
            self.worker.wake();
        }
        tag & !(super::io::TAG_ALL_IO | super::io::TAG_SHARED_READ)
    }

    /// Writes `Fail` for a failed pool, else runs `f` on the locked state (status lines).
    pub fn status_with(
        &self,
        out: &mut StatusWriter<'_>,
        f: impl FnOnce(&mut PoolState, &mut StatusWriter<'_>),
    ) {
        let mut st = self.core().state.lock();
        if st.mode == Mode::Fail {
            out.emit(format_args!("Fail"));
        } else {
            f(&mut st, out);
        }
    }

    /// Runs `f` on the locked state.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut PoolState) -> R) -> R {
        f(&mut self.core().state.lock())
    }

    /// Adds an active thin device's queue.
    pub fn add_thin(&self, q: Arc<ThinQueue>) -> Result {
        put_in_slot(&mut self.core().thins.lock(), q)?;
        Ok(())
    }

    /// Whether a thin target of device `dev` is active.
    pub fn is_open(&self, dev: DevId) -> bool {
        self.core()
            .thins
            .lock()
            .iter()
            .flatten()
            .any(|t| t.dev == dev)
    }

    /// Removes a thin device's queue (its target is going away, with no bio in flight).
    pub fn remove_thin(&self, q: &Arc<ThinQueue>) {
        let mut thins = self.core().thins.lock();
        if let Some(s) = thins
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|t| Arc::ptr_eq(t, q)))
        {
            *s = None;
        }
    }
}

/// Opens the metadata on `bm` into a box, formatting it when its superblock is all zeroes
/// (on its own frame, as [`open_boxed`]).
#[inline(never)]
fn open_metadata(
    bm: Bufio,
    block_sectors: u64,
    nr_data_blocks: u64,
    read_only: bool,
) -> Result<KBox<ThinMetadata<Bufio>>, PoolError> {
    let blank = bm
        .read_raw(0, |d| Ok(d.iter().all(|&b| b == 0)))
        .map_err(|e| PoolError::Metadata(errno(&e)))?;
    if blank && read_only {
        // Formatting would write: refused as C refuses it.
        pr_err!(
            "thin-pool: metadata device is blank and the pool is read_only: not formatting it\n"
        );
        return Err(PoolError::ReadOnlyBlank);
    }
    let md = if blank {
        format_boxed(bm, block_sectors as u32, nr_data_blocks)
    } else {
        open_boxed(bm)
    };
    let md = md.map_err(|e| {
        pr_err!("thin-pool: cannot open metadata: {}\n", e);
        PoolError::Metadata(errno(&e))
    })?;
    let found = md.superblock().data_block_size;
    if u64::from(found) != block_sectors {
        pr_err!(
            "thin-pool: changing the data block size (from {} to {}) is not supported\n",
            found,
            block_sectors
        );
        return Err(PoolError::BlockSize);
    }
    Ok(md)
}

/// Formats metadata into a box (on its own frame, as [`open_boxed`]).
#[inline(never)]
fn format_boxed(
    bm: Bufio,
    block_sectors: u32,
    nr_data_blocks: u64,
) -> Result<KBox<ThinMetadata<Bufio>>, PdError> {
    let md = ThinMetadata::format(bm, block_sectors, nr_data_blocks)?;
    KBox::new(md, GFP_KERNEL).map_err(|_| PdError::Invalid("out of memory"))
}

/// Opens committed metadata into a box. On its own frame: the metadata object is a few KiB,
/// and table loads run on deep stacks.
#[inline(never)]
fn open_boxed(bm: Bufio) -> Result<KBox<ThinMetadata<Bufio>>, PdError> {
    let md = ThinMetadata::open(bm)?;
    KBox::new(md, GFP_KERNEL).map_err(|_| PdError::Invalid("out of memory"))
}

impl PoolState {
    /// Commits if anything changed: flushes the data device (every block a new mapping
    /// points at is written before it), then writes the metadata. A failure puts the pool in
    /// fail mode. Read-only and failed pools never write: the result says whether the
    /// metadata on disk is current.
    pub fn commit(&mut self) -> bool {
        if self.mode == Mode::Fail {
            return false;
        }
        if !self.dirty {
            return true;
        }
        if !self.mode.writable() {
            return false;
        }
        if let Some(data) = &self.data_dev {
            if data.bdev().flush().is_err() {
                pr_err!("thin-pool: pre-commit flush of the data device failed\n");
                self.set_mode(Mode::Fail);
                return false;
            }
        }
        match self.md.commit() {
            Ok(()) => {
                self.dirty = false;
                self.last_commit_ms = time::now_ms();
                self.check_for_metadata_space();
                self.check_for_data_space();
                true
            }
            Err(e) => {
                self.fail("dm_pool_commit_metadata", e);
                false
            }
        }
    }

    /// Metadata blocks kept back for the operations that must not fail midway (as C's
    /// `__set_metadata_reserve`: a tenth of the device, at most 4096 blocks).
    fn metadata_reserve(&self) -> u64 {
        (self.md.metadata_space().0 / 10).min(4096)
    }

    /// Metadata blocks: the device's, and those free beyond the reserve (status and space
    /// checks use these, as C's).
    pub fn metadata_free(&self) -> (u64, u64) {
        let (total, free) = self.md.metadata_space();
        (total, free.saturating_sub(self.metadata_reserve()))
    }

    /// After a commit: with no metadata block free beyond the reserve, the pool goes
    /// read-only until the metadata device grows.
    fn check_for_metadata_space(&mut self) {
        if self.metadata_free().1 == 0 && self.mode.writable() {
            pr_err!("thin: No free metadata blocks\n");
            self.set_mode(Mode::OutOfMetadataSpace);
        }
    }

    /// Whether the metadata says it needs checking (set after a metadata failure).
    pub fn needs_check(&self) -> bool {
        self.md.superblock().flags & NEEDS_CHECK != 0
    }

    /// A metadata operation failed: as dm-thin, drops the transaction (reopening the last
    /// commit), flags the metadata as needing a check, and goes read-only; fail mode when
    /// even that cannot be done.
    pub fn fail(&mut self, op: &str, e: PdError) {
        if self.mode == Mode::Fail {
            return;
        }
        let name = DevName(self.md_dev);
        pr_err!(
            "device-mapper: thin: {}: metadata operation '{}' failed: error = {}\n",
            name,
            op,
            errno(&e)
        );
        pr_debug!("thin: {}: {}\n", name, e);
        if !self.mode.writable() {
            // Nothing to abort, and the flag cannot be written.
            self.set_mode(Mode::Fail);
            return;
        }
        pr_err!(
            "device-mapper: thin: {}: aborting current metadata transaction\n",
            name
        );
        if self.reopen().is_err() {
            pr_err!(
                "device-mapper: thin: {}: failed to abort metadata transaction\n",
                name
            );
            self.set_mode(Mode::Fail);
            return;
        }
        self.dirty = false;
        // As C, the flag is set in the superblock and written when it can be: a failed
        // write is not a new failure (the pool is read-only from here).
        let flags = self.md.superblock().flags | NEEDS_CHECK;
        self.md.set_flags(flags);
        let _ = self.md.commit();
        self.set_mode(Mode::ReadOnly);
    }

    /// Drops the current transaction: the metadata as last committed, through a new
    /// dm-bufio client (the old one goes with what it cached).
    fn reopen(&mut self) -> Result<(), PdError> {
        let nomem = PdError::Invalid("out of memory");
        let bm = Bufio::new(self.metadata_dev.clone(), MAX_BLOCKS).map_err(|_| nomem)?;
        // The worker's allocations are GFP_NOIO (see `Job::run`); table loads and messages
        // run deep in an ioctl's stack.
        self.md = stack::on_fresh_stack(|| open_boxed(bm)).ok_or(nomem)??;
        // Mappings made since the last commit are gone.
        self.fast.invalidate();
        Ok(())
    }

    /// Logs a switch to `mode` as dm-thin's `notify_of_pool_mode_change` does (out of data
    /// space says whether IO is queued or failed).
    pub fn log_mode(&self, mode: Mode) {
        let what = match mode {
            Mode::Write => "write",
            Mode::OutOfDataSpace if self.features.error_if_no_space => {
                "out-of-data-space (error IO)"
            }
            Mode::OutOfDataSpace => "out-of-data-space (queue IO)",
            Mode::ReadOnly | Mode::OutOfMetadataSpace => "read-only",
            Mode::Fail => "fail",
        };
        pr_info!(
            "device-mapper: thin: {}: switching pool to {} mode\n",
            DevName(self.md_dev),
            what
        );
    }

    /// Changes the pool mode, logging the switch as dm-thin does. The one place modes
    /// change: fail mode is final.
    pub fn set_mode(&mut self, mut mode: Mode) {
        if mode == Mode::Write && self.needs_check() {
            pr_err!(
                "device-mapper: thin: {}: unable to switch pool to write mode until repaired.\n",
                DevName(self.md_dev)
            );
            mode = Mode::ReadOnly;
        }
        if self.mode == mode || self.mode == Mode::Fail {
            return;
        }
        self.log_mode(mode);
        match mode {
            Mode::OutOfDataSpace => {
                self.out_of_data_space = true;
                if !self.features.error_if_no_space {
                    self.no_space_since = Some(time::now_ms());
                }
            }
            Mode::Write => {
                self.out_of_data_space = false;
                self.no_space_since = None;
                self.release_held = self.holding;
            }
            _ => self.no_space_since = None,
        }
        self.mode = mode;
        self.fast.invalidate();
        self.fast.enabled.store(
            matches!(mode, Mode::Write | Mode::OutOfDataSpace),
            Ordering::Release,
        );
        self.raise_event();
    }

    /// Raises a table event on the bound pool target.
    pub fn raise_event(&self) {
        if let Some(ev) = &self.event {
            ev.trigger();
        }
    }

    /// Logs a warning naming the pool, and raises a table event.
    pub fn warn_event(&self, what: &str) {
        pr_warn!(
            "device-mapper: thin: {}: reached low water mark for {} device: sending event.\n",
            DevName(self.md_dev),
            what
        );
        self.raise_event();
    }

    /// The error for bios the pool cannot serve now (C's `get_pool_io_error_code`).
    pub fn io_error(&self) -> crate::dm::bio::IoStatus {
        if self.out_of_data_space {
            crate::dm::bio::IoStatus::NoSpace
        } else {
            crate::dm::bio::IoStatus::IoErr
        }
    }

    /// Goes back to write mode if data space is free again (after a commit or a resize).
    pub fn check_for_data_space(&mut self) {
        if self.mode == Mode::OutOfDataSpace && self.md.data_sm().nr_free() > 0 {
            self.set_mode(Mode::Write);
        }
    }

    /// Blocks of the data device the metadata counts.
    pub fn nr_data_blocks(&self) -> u64 {
        self.md.data_sm().nr_blocks()
    }
}
