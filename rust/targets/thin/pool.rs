// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The pool object behind `thin-pool` and `thin` targets: the metadata, the data device and
//! the worker that maps thin bios.
//!
//! One pool exists per pool mapped device and outlives table reloads (as in dm-thin.c): the
//! registry finds it by the device number of the pool's mapped device, and every pool and
//! thin target holds a [`PoolRef`]. Thin bios are deferred to the worker, which looks their
//! blocks up, provisions or breaks sharing (zeroing or copying with kcopyd), commits the
//! metadata once per batch, and only then submits the batch, so a write acknowledged after a
//! flush never depends on uncommitted metadata.

use crate::dm::{
    bio::{BioList, IoStatus, OwnedBio, ReqOp},
    bufio::Bufio,
    dev::BlockDevice,
    global::Global,
    kcopyd::Kcopyd,
    status::StatusWriter,
    worker::{Job, Worker},
};
use crate::pdata::{
    block::BlockManager,
    error::Error as PdError,
    space_map::metadata::MAX_BLOCKS,
    thin::{device::DevId, ThinMetadata},
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_mutex, new_spinlock,
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
    /// Metadata is not changed (requested with `read_only`).
    ReadOnly,
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

/// The state the worker, messages and status share, under the pool mutex.
pub struct PoolState {
    /// The open metadata.
    pub md: KBox<ThinMetadata<Bufio>>,
    /// The current mode.
    pub mode: Mode,
    /// Features of the bound pool target.
    pub features: PoolFeatures,
    /// The data device of the bound (resumed) pool target.
    pub data_dev: Option<BlockDevice>,
    /// Metadata changed since the last commit.
    pub dirty: bool,
}

/// Bios of one active thin device waiting for the worker.
#[pin_data]
pub struct ThinQueue {
    /// The thin device id.
    pub dev: DevId,
    /// The first sector of the thin target in its mapped device.
    pub begin: u64,
    #[pin]
    bios: SpinLock<BioList>,
}

impl ThinQueue {
    /// A queue for device `dev` whose target starts at `begin`.
    pub fn new(dev: DevId, begin: u64) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(ThinQueue {
                dev,
                begin,
                bios <- new_spinlock!(BioList::new()),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues `bio` (any context).
    pub fn push(&self, bio: OwnedBio) {
        self.bios.lock().push(bio);
    }

    fn take(&self) -> BioList {
        core::mem::take(&mut *self.bios.lock())
    }
}

/// The shared core of a pool: what the worker runs on.
#[pin_data]
pub struct PoolCore {
    /// Sectors per data block.
    pub block_sectors: u64,
    #[pin]
    state: Mutex<PoolState>,
    #[pin]
    thins: Mutex<KVec<Option<Arc<ThinQueue>>>>,
    kcopyd: Kcopyd,
    metadata_dev: BlockDevice,
    /// Length of the bound pool target, in sectors; read without the mutex by
    /// `iterate_devices`, which must not sleep.
    pool_len: AtomicU64,
}

/// A pool: its core and the worker that runs it.
pub struct Pool {
    md_dev: u32,
    worker: Worker<PoolCore>,
}

struct Entry {
    md_dev: u32,
    pool: Arc<Pool>,
    users: usize,
}

/// Every pool, by the device number of its mapped device.
static POOLS: Global<KVec<Option<Entry>>> = Global::new(KVec::new());

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
    /// The metadata could not be opened or formatted.
    Metadata,
    /// The metadata belongs to a pool with another data block size.
    BlockSize,
    /// The pool is bound to another metadata device.
    OtherMetadata,
}

impl Pool {
    /// The pool of mapped device `md_dev`, made from `metadata_dev` if there is none yet.
    /// Returns it and whether it was made.
    pub fn find_or_create(
        md_dev: u32,
        metadata_dev: BlockDevice,
        block_sectors: u64,
        nr_data_blocks: u64,
        features: PoolFeatures,
    ) -> Result<(PoolRef, bool), PoolError> {
        POOLS.with(|pools| {
            if let Some(e) = pools.iter_mut().flatten().find(|e| e.md_dev == md_dev) {
                let core = e.pool.core();
                if core.metadata_dev != metadata_dev {
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
                metadata_dev,
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
        metadata_dev: BlockDevice,
        block_sectors: u64,
        nr_data_blocks: u64,
        features: PoolFeatures,
    ) -> Result<Arc<Pool>, PoolError> {
        let bm = Bufio::new(metadata_dev, MAX_BLOCKS).map_err(|_| PoolError::Metadata)?;
        let md = open_metadata(bm, block_sectors, nr_data_blocks)?;
        let md = KBox::new(md, GFP_KERNEL).map_err(|_| PoolError::NoMem)?;
        let mode = if features.read_only {
            Mode::ReadOnly
        } else {
            Mode::Write
        };
        let kcopyd = Kcopyd::new().map_err(|_| PoolError::NoMem)?;
        let core = Arc::pin_init(
            pin_init!(PoolCore {
                block_sectors,
                state <- new_mutex!(PoolState {
                    md,
                    mode,
                    features,
                    data_dev: None,
                    dirty: false,
                }),
                thins <- new_mutex!(KVec::new()),
                kcopyd,
                metadata_dev,
                pool_len: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
        .map_err(|_| PoolError::NoMem)?;
        let worker = Worker::new(core).map_err(|_| PoolError::NoMem)?;
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
        self.worker.queue();
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

/// Opens the metadata on `bm`, formatting it when its superblock is all zeroes.
fn open_metadata(
    bm: Bufio,
    block_sectors: u64,
    nr_data_blocks: u64,
) -> Result<ThinMetadata<Bufio>, PoolError> {
    let blank = bm
        .read_raw(0, |d| Ok(d.iter().all(|&b| b == 0)))
        .map_err(|_| PoolError::Metadata)?;
    let md = if blank {
        ThinMetadata::format(bm, block_sectors as u32, nr_data_blocks)
    } else {
        ThinMetadata::open(bm)
    };
    let md = md.map_err(|e| {
        pr_err!("thin-pool: cannot open metadata: {}\n", e);
        PoolError::Metadata
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

impl PoolState {
    /// Commits if anything changed; a failure puts the pool in fail mode.
    pub fn commit(&mut self) -> bool {
        if !self.dirty || self.mode == Mode::Fail {
            return self.mode != Mode::Fail;
        }
        match self.md.commit() {
            Ok(()) => {
                self.dirty = false;
                true
            }
            Err(e) => {
                self.fail("commit", e);
                false
            }
        }
    }

    /// Puts the pool in fail mode after a metadata error.
    pub fn fail(&mut self, op: &str, e: PdError) {
        if self.mode != Mode::Fail {
            pr_err!(
                "thin-pool: metadata operation '{}' failed: {}; pool switched to fail mode\n",
                op,
                e
            );
        }
        self.mode = Mode::Fail;
    }

    /// Blocks of the data device the metadata counts.
    pub fn nr_data_blocks(&self) -> u64 {
        self.md.data_sm().nr_blocks()
    }
}

/// What to do with one bio once the batch's metadata is committed.
enum Outcome {
    Submit(OwnedBio),
    End(OwnedBio, IoStatus),
}

impl PoolCore {
    /// Maps one thin bio; returns what to do with it after the commit.
    fn process(&self, st: &mut PoolState, q: &ThinQueue, bio: OwnedBio) -> Outcome {
        if st.mode == Mode::Fail {
            return Outcome::End(bio, IoStatus::IoErr);
        }
        let Some(data) = st.data_dev else {
            return Outcome::End(bio, IoStatus::IoErr);
        };
        let bs = self.block_sectors;
        let vsector = bio.sector().wrapping_sub(q.begin);
        let (vblock, offset) = (
            vsector.checked_div(bs).unwrap_or(0),
            vsector.checked_rem(bs).unwrap_or(0),
        );
        // Data sectors cannot overflow: data blocks are below the pool length over `bs`.
        let at = |b: u64| b.wrapping_mul(bs);
        let op = bio.op();
        if bio.size() == 0 {
            // An empty flush: the commit before submission is what it asks for.
            if bio.is_preflush() {
                st.dirty = true;
            }
            bio.remap_to(data, 0);
            return Outcome::Submit(bio);
        }
        if bio.is_preflush() || bio.is_fua() {
            st.dirty = true;
        }
        let found = match st.md.lookup(q.dev, vblock) {
            Ok(f) => f,
            Err(e) => {
                st.fail("lookup", e);
                return Outcome::End(bio, IoStatus::IoErr);
            }
        };
        if op != ReqOp::Write {
            return match found {
                Some((d, _)) => {
                    bio.remap_to(data, at(d).wrapping_add(offset));
                    Outcome::Submit(bio)
                }
                None => {
                    bio.zero_fill();
                    Outcome::End(bio, IoStatus::Ok)
                }
            };
        }
        let shared = match found {
            Some((_, time)) => match st.md.details(q.dev) {
                Ok(Some(d)) => time < d.snapshotted_time,
                Ok(None) => return Outcome::End(bio, IoStatus::IoErr),
                Err(e) => {
                    st.fail("details", e);
                    return Outcome::End(bio, IoStatus::IoErr);
                }
            },
            None => false,
        };
        if let (Some((d, _)), false) = (found, shared) {
            bio.remap_to(data, at(d).wrapping_add(offset));
            return Outcome::Submit(bio);
        }
        if st.mode == Mode::ReadOnly {
            return Outcome::End(bio, IoStatus::IoErr);
        }
        let whole = offset == 0 && bio.sectors() == bs;
        let new = match st.md.alloc_data_block() {
            Ok(b) => b,
            Err(PdError::NoSpace) => {
                if st.mode == Mode::Write {
                    pr_warn!("thin-pool: switching pool to out-of-data-space mode\n");
                }
                st.mode = Mode::OutOfDataSpace;
                return Outcome::End(bio, IoStatus::NoSpace);
            }
            Err(e) => {
                st.fail("alloc_data_block", e);
                return Outcome::End(bio, IoStatus::IoErr);
            }
        };
        let filled = match found {
            _ if whole => Ok(()),
            Some((old, _)) => self.kcopyd.copy(data, at(old), data, at(new), bs),
            None if st.features.zero_new_blocks => self.kcopyd.zero(data, at(new), bs),
            None => Ok(()),
        };
        if filled.is_err() {
            let _ = st.md.dec_data_block(new);
            st.dirty = true;
            return Outcome::End(bio, IoStatus::IoErr);
        }
        let time = st.md.superblock().time;
        if let Err(e) = st.md.insert(q.dev, vblock, new, time) {
            st.fail("insert", e);
            return Outcome::End(bio, IoStatus::IoErr);
        }
        st.dirty = true;
        bio.remap_to(data, at(new).wrapping_add(offset));
        Outcome::Submit(bio)
    }

    /// The queue in slot `i` of the thin list and its queued bios; `None` past the end.
    /// Takes no allocation: the worker is on the I/O path.
    fn take_slot(&self, i: usize) -> Option<Option<(Arc<ThinQueue>, BioList)>> {
        let thins = self.thins.lock();
        let slot = thins.get(i)?;
        Some(slot.as_ref().map(|q| (q.clone(), q.take())))
    }
}

impl Job for PoolCore {
    fn run(&self) {
        loop {
            let mut ready = BioList::new();
            let mut any = false;
            let mut st = self.state.lock();
            let mut i = 0;
            // Lock order: state, then thins (as messages take them).
            while let Some(slot) = self.take_slot(i) {
                i += 1;
                let Some((q, mut bios)) = slot else { continue };
                while let Some(bio) = bios.pop() {
                    any = true;
                    match self.process(&mut st, &q, bio) {
                        Outcome::Submit(bio) => ready.push(bio),
                        // Zero-filled reads and failures do not depend on the commit.
                        Outcome::End(bio, s) => bio.end(s),
                    }
                }
            }
            if !any {
                return;
            }
            let committed = st.commit();
            drop(st);
            while let Some(bio) = ready.pop() {
                if committed {
                    bio.submit();
                } else {
                    bio.end(IoStatus::IoErr);
                }
            }
        }
    }
}
