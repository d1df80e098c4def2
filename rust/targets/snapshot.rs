// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `snapshot` and `snapshot-merge` targets (drivers/md/dm-snap.c, versions 1.16.0 and
//! 1.5.0).
//!
//! Table: `<origin> <COW device> <P|PO|N> <chunk size> [<#features> [discard_zeroes_cow]
//! [discard_passdown_origin]]`. A snapshot reads chunks from its COW device where it has an
//! exception and from the origin elsewhere; a write to a chunk without an exception waits for
//! the origin's worker to copy it. `snapshot-merge` copies the exceptions back to the origin
//! in the background and serves the origin meanwhile.
//!
//! `map` reads the exception table under RCU: only writes that need a copy, and merge
//! writes, go to the worker ([`io`]).

pub mod io;
pub mod origin;
pub mod store;

use super::extents::ExtentTable;
use crate::dm::{
    args::{parse_u64, Args},
    bio::{Bio, BlkStatus, MapBio, OwnedBio, ReqOp},
    dev::Dev,
    limits::QueueLimits,
    rcu,
    status::StatusWriter,
    target::{
        Constructor, CtrError, DeviceVisitor, EndIoResult, MapResult, StatusType, Target, TargetRef,
    },
    time,
};
use core::sync::atomic::Ordering;
use io::{TAG_FULL, TAG_SLOT, TAG_TRACKED};
use kernel::{c_str, prelude::*, sync::Arc};
use origin::{CowState, Origin, Snapshot};
use store::{check_chunk_size, Loaded, Persistent, Store, StoreKind};

/// A `snapshot` or `snapshot-merge` target.
pub struct SnapTarget {
    snap: Arc<Snapshot>,
    origin_dev: Dev,
    cow_dev: Dev,
}

/// Releases an origin use unless disarmed (constructor error paths).
struct OriginUse(Option<Arc<Origin>>);

impl Drop for OriginUse {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            Origin::put(&o);
        }
    }
}

impl Drop for SnapTarget {
    fn drop(&mut self) {
        let origin = self.snap.origin.clone();
        {
            let st = origin.core.state.lock();
            let (src, dest, _) = Origin::sharing(&st, self.snap.cow.cow_dev);
            if let (Some(src), Some(dest)) = (src, dest) {
                if Arc::ptr_eq(&src, &self.snap) {
                    dest.retired.store(true, Ordering::Release);
                    pr_err!("device-mapper: snapshots: Cancelling snapshot handover.\n");
                }
            }
        }
        if self.snap.merge {
            stop_merge(&origin);
        }
        origin.unregister(&self.snap);
        // The event must not outlive the target.
        let event = self.snap.event.lock().take();
        drop(event);
        Origin::put(&origin);
    }
}

fn stop_merge(origin: &Origin) {
    origin.core.merge_run.store(false, Ordering::Release);
    origin.wake();
    while origin.core.merge_busy.load(Ordering::Acquire) {
        time::sleep_ms(1);
    }
}

fn parse_features(args: &mut Args<'_>) -> Result<(bool, bool), CtrError> {
    if args.is_empty() {
        return Ok((false, false));
    }
    let mut group = args.group(0, 2, c_str!("Invalid number of feature arguments"))?;
    let (mut zeroes, mut passdown) = (false, false);
    while let Some(f) = group.next() {
        let f = f.as_bytes();
        if f.eq_ignore_ascii_case(b"discard_zeroes_cow") {
            zeroes = true;
        } else if f.eq_ignore_ascii_case(b"discard_passdown_origin") {
            passdown = true;
        } else {
            return Err(CtrError::inval(c_str!("Unrecognised feature requested")));
        }
    }
    if passdown && !zeroes {
        return Err(CtrError::inval(c_str!(
            "discard_passdown_origin feature depends on discard_zeroes_cow"
        )));
    }
    Ok((zeroes, passdown))
}

/// Reads a COW device's store into a new exception table.
fn load_cow(
    cow_dev: &Dev,
    origin_lbs: u32,
    kind: StoreKind,
    chunk: u32,
) -> Result<Arc<CowState>, CtrError> {
    let meta_err = |e| CtrError::new(e, c_str!("Failed to read snapshot metadata"));
    let cow = cow_dev.reopen(true).map_err(meta_err)?;
    let sizing_chunk = if chunk == 0 { 32 } else { chunk } as u64;
    let table = ExtentTable::new(cow.bdev().nr_sectors() / sizing_chunk)
        .map_err(|_| CtrError::nomem(c_str!("Unable to allocate hash table space")))?;
    let (store, valid, next_free) = match kind {
        StoreKind::Persistent { overflow } => {
            let mut w = table
                .writer()
                .map_err(|_| CtrError::nomem(c_str!("Unable to allocate hash table space")))?;
            let mut add = |old, new| w.insert(old, new, GFP_KERNEL);
            let (ps, loaded, next_free) =
                Persistent::load(cow.bdev(), origin_lbs, chunk, overflow, &mut add)
                    .map_err(meta_err)?;
            drop(w);
            if loaded == Loaded::Invalid {
                pr_warn!("device-mapper: snapshots: Snapshot is marked invalid.\n");
            }
            (Store::Persistent(ps), loaded != Loaded::Invalid, next_free)
        }
        StoreKind::Transient => (Store::transient(chunk), true, 0),
    };
    if store.chunk() == 0 {
        return Err(CtrError::inval(c_str!("Chunk size not set")));
    }
    CowState::new(cow, table, store, valid, next_free)
        .map_err(|_| CtrError::nomem(c_str!("Cannot allocate private snapshot structure")))
}

fn construct(
    ti: &mut Constructor<'_>,
    mut args: Args<'_>,
    merge: bool,
) -> Result<KBox<SnapTarget>, CtrError> {
    if args.len() < 4 {
        return Err(CtrError::inval(c_str!("requires 4 or more arguments")));
    }
    let bad = c_str!("requires 4 or more arguments");
    let origin_path = args.next_str(bad)?;
    let cow_path = args.next_str(bad)?;
    let kind_arg = args.next_str(bad)?;
    let chunk_arg = args.next_str(bad)?;
    let (zeroes, passdown) = parse_features(&mut args)?;
    let origin_dev = if merge {
        ti.get_device(origin_path)
    } else {
        ti.get_device_read_only(origin_path)
    }
    .map_err(|e| CtrError::new(e, c_str!("Cannot get origin device")))?;
    // Checked before the COW device is opened, for C's message (the dm layer would refuse
    // to open the read-only origin again with the table's mode).
    let cow_err = |e| CtrError::new(e, c_str!("Cannot get COW device"));
    if ti.device_number(cow_path).map_err(cow_err)? == origin_dev.dev_number() {
        return Err(CtrError::inval(c_str!(
            "COW device cannot be the same as origin device"
        )));
    }
    let cow_dev = ti.get_device(cow_path).map_err(cow_err)?;
    let store_err = CtrError::inval(c_str!("Couldn't create exception store"));
    let kind = StoreKind::parse(kind_arg.as_bytes()).map_err(|()| store_err)?;
    let chunk = parse_u64(chunk_arg.as_bytes())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(store_err)?;
    let origin_lbs = origin_dev.bdev().logical_block_size();
    if chunk != 0
        && check_chunk_size(chunk, cow_dev.bdev().logical_block_size(), origin_lbs).is_err()
    {
        return Err(store_err);
    }
    if merge && kind == StoreKind::Transient {
        return Err(CtrError::inval(c_str!(
            "Snapshot exception store does not support snapshot-merge."
        )));
    }
    let origin = Origin::get(origin_dev.dev_number())
        .map_err(|e| CtrError::new(e, c_str!("Snapshot origin struct allocation failed")))?;
    let mut guard = OriginUse(Some(origin.clone()));
    // Exception handover (dm-snap's `__validate_exception_handover`).
    let src = {
        let st = origin.core.state.lock();
        let (src, dest, n) = Origin::sharing(&st, cow_dev.dev_number());
        if n == 2 || dest.is_some() {
            return Err(CtrError::inval(c_str!(
                "Snapshot cow pairing for exception table handover failed"
            )));
        }
        if let (Some(src), true) = (&src, merge) {
            if st.snaps.iter().any(|s| s.merge) {
                return Err(CtrError::inval(c_str!("A snapshot is already merging.")));
            }
            if !src.cow.store.lock().can_merge() {
                return Err(CtrError::inval(c_str!(
                    "Snapshot exception store does not support snapshot-merge."
                )));
            }
        }
        src
    };
    let cow = match src {
        Some(src) => src.cow.clone(),
        None => load_cow(&cow_dev, origin_lbs, kind, chunk)?,
    };
    ti.set_max_io_len(cow.chunk as u64)
        .map_err(|e| CtrError::new(e, c_str!("Couldn't set max io len")))?;
    ti.set_num_flush_bios(if merge { 2 } else { 1 });
    if zeroes {
        ti.set_num_discard_bios(if passdown { 2 } else { 1 });
    }
    let event = ti
        .table_event()
        .map_err(|_| CtrError::nomem(c_str!("Cannot allocate private snapshot structure")))?;
    let end = ti.begin() + ti.len();
    // Allocated before the snapshot is registered: a target that failed its allocation
    // would be dropped at once, and its drop would unregister and release the origin.
    let room = KBox::<SnapTarget>::new_uninit(GFP_KERNEL)
        .map_err(|_| CtrError::nomem(c_str!("Cannot allocate private snapshot structure")))?;
    let snap = Snapshot::new(cow, origin.clone(), merge, end, zeroes, passdown, event)
        .map_err(|_| CtrError::nomem(c_str!("Cannot allocate private snapshot structure")))?;
    origin
        .register(snap.clone())
        .map_err(|_| CtrError::nomem(c_str!("Snapshot origin struct allocation failed")))?;
    // The target's drop now releases the origin.
    guard.0 = None;
    Ok(room.write(SnapTarget {
        snap,
        origin_dev,
        cow_dev,
    }))
}

impl SnapTarget {
    fn remap_cow(&self, bio: &Bio, new: u64) {
        let cow = &self.snap.cow;
        bio.remap(
            &self.cow_dev,
            (new << cow.shift) + (bio.sector() & (cow.chunk as u64 - 1)),
        );
    }

    fn map_snapshot(&self, ti: &TargetRef, bio: &MapBio) -> MapResult {
        let s = &self.snap;
        if bio.is_preflush() {
            bio.set_dev(&self.cow_dev);
            return MapResult::Remapped;
        }
        if !s.is_valid() {
            return MapResult::Kill;
        }
        if bio.is_write() && s.cow.overflowed.load(Ordering::Acquire) {
            return MapResult::Kill;
        }
        let chunk = bio.sector() >> s.cow.shift;
        let discard = bio.op() == ReqOp::Discard;
        if discard && s.discard_passdown_origin && bio.target_bio_nr() != 0 {
            // Passed down without making exceptions (that would defeat freeing space).
            bio.set_dev(&self.origin_dev);
            self.track(ti, bio, chunk);
            return MapResult::Remapped;
        }
        let g = rcu::read_lock();
        if let Some(new) = s.cow.table.lookup(chunk, &g) {
            self.remap_cow(bio, new);
            if discard && u64::from(bio.size()) == (s.cow.chunk as u64) << 9 {
                // The worker zeroes the chunk instead of discarding it.
                return MapResult::Defer;
            }
            return MapResult::Remapped;
        }
        if discard {
            return MapResult::Done;
        }
        if bio.is_write() {
            return MapResult::Defer;
        }
        // A read of the origin: counted, so that a copy of this chunk does not release the
        // origin write that follows it before this read ends.
        let h = s.cow.track(chunk);
        if let Some(new) = s.cow.table.lookup(chunk, &g) {
            s.cow.untrack(h);
            self.remap_cow(bio, new);
            return MapResult::Remapped;
        }
        bio.set_dev(&self.origin_dev);
        match ti.bio_tag(bio) {
            Some(tag) => tag.store(TAG_TRACKED | h as u64, Ordering::Relaxed),
            None => s.cow.untrack(h),
        }
        MapResult::Remapped
    }

    fn track(&self, ti: &TargetRef, bio: &Bio, chunk: u64) {
        if let Some(tag) = ti.bio_tag(bio) {
            let h = self.snap.cow.track(chunk);
            tag.store(TAG_TRACKED | h as u64, Ordering::Relaxed);
        }
    }

    fn map_merge(&self, ti: &TargetRef, bio: &MapBio) -> MapResult {
        let s = &self.snap;
        if bio.is_preflush() {
            if bio.target_bio_nr() == 0 {
                bio.set_dev(&self.origin_dev);
            } else {
                bio.set_dev(&self.cow_dev);
            }
            return MapResult::Remapped;
        }
        if bio.op() == ReqOp::Discard {
            // Once merging, discards no longer change anything.
            return MapResult::Done;
        }
        if bio.is_write() {
            return MapResult::Defer;
        }
        let _ = ti;
        if s.is_valid() {
            let chunk = bio.sector() >> s.cow.shift;
            if let Some(new) = s.cow.table.find(chunk) {
                self.remap_cow(bio, new);
                return MapResult::Remapped;
            }
        }
        bio.set_dev(&self.origin_dev);
        MapResult::Remapped
    }

    fn end_io(&self, ti: &TargetRef, bio: &Bio, status: &BlkStatus) -> EndIoResult {
        let Some(tag) = ti.bio_tag(bio) else {
            return EndIoResult::Done;
        };
        let t = tag.load(Ordering::Relaxed);
        if t & TAG_TRACKED != 0 {
            self.snap.cow.untrack((t & TAG_SLOT) as usize);
            tag.store(0, Ordering::Relaxed);
        } else if t & TAG_FULL != 0 {
            // The write replaced a copy: it completes once its exception is committed.
            self.snap
                .origin
                .core
                .full_done((t & TAG_SLOT) as usize, status.is_ok());
            return EndIoResult::Defer;
        }
        EndIoResult::Done
    }

    fn defer(&self, bio: OwnedBio) {
        self.snap.queue.lock().push(bio);
        self.snap.origin.wake();
    }

    fn status(&self, ti: &TargetRef, kind: StatusType, out: &mut StatusWriter<'_>) {
        let s = &self.snap;
        match kind {
            StatusType::Info => {
                if !s.is_valid() {
                    out.emit(format_args!("Invalid"));
                } else if s.cow.merge_failed.load(Ordering::Acquire) {
                    out.emit(format_args!("Merge failed"));
                } else if s.cow.overflowed.load(Ordering::Acquire) {
                    out.emit(format_args!("Overflow"));
                } else {
                    let size = s.cow.cow.bdev().nr_sectors();
                    let next_free = s.cow.alloc.next_free();
                    let (total, allocated, meta) = s.cow.store.lock().usage(size, next_free);
                    out.emit(format_args!("{}/{} {}", allocated, total, meta));
                }
            }
            StatusType::Table => {
                let (kind, chunk) = s.cow.store.lock().table_args();
                out.emit(format_args!(
                    "{} {} {} {}",
                    self.origin_dev.name(),
                    self.cow_dev.name(),
                    kind,
                    chunk
                ));
                let n = s.discard_zeroes_cow as u32 + s.discard_passdown_origin as u32;
                if n > 0 {
                    out.emit(format_args!(" {}", n));
                    if s.discard_zeroes_cow {
                        out.emit(format_args!(" discard_zeroes_cow"));
                    }
                    if s.discard_passdown_origin {
                        out.emit(format_args!(" discard_passdown_origin"));
                    }
                }
            }
            StatusType::Ima => {
                let yn = |b: bool| if b { 'y' } else { 'n' };
                out.target_name_version(ti);
                out.emit(format_args!(
                    ",snap_origin_name={},snap_cow_name={},snap_valid={},snap_merge_failed={},snapshot_overflowed={};",
                    self.origin_dev.name(),
                    self.cow_dev.name(),
                    yn(s.is_valid()),
                    yn(s.cow.merge_failed.load(Ordering::Acquire)),
                    yn(s.cow.overflowed.load(Ordering::Acquire)),
                ));
            }
        }
    }

    fn preresume(&self) -> Result {
        let st = self.snap.origin.core.state.lock();
        let (src, dest, _) = Origin::sharing(&st, self.snap.cow.cow_dev);
        if let (Some(src), Some(_)) = (src, dest) {
            if Arc::ptr_eq(&src, &self.snap) {
                pr_err!("device-mapper: snapshots: Unable to resume snapshot source until handover completes.\n");
                return Err(EINVAL);
            }
            if !src.suspended.load(Ordering::Acquire) {
                pr_err!("device-mapper: snapshots: Unable to perform snapshot handover until source is suspended.\n");
                return Err(EINVAL);
            }
        }
        Ok(())
    }

    fn resume(&self) {
        let s = &self.snap;
        {
            let st = s.origin.core.state.lock();
            let (src, dest, _) = Origin::sharing(&st, s.cow.cow_dev);
            if let (Some(src), Some(dest)) = (src, dest) {
                if Arc::ptr_eq(&dest, s) {
                    // Hand the exceptions over: the source fails its I/O from now on.
                    src.retired.store(true, Ordering::Release);
                }
            }
        }
        s.suspended.store(false, Ordering::Release);
        s.active.store(true, Ordering::Release);
    }

    fn iterate_devices(&self, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        if visitor.visit(&self.origin_dev, 0, ti.len()) {
            visitor.visit(&self.cow_dev, 0, self.cow_dev.nr_sectors());
        }
    }

    fn io_hints(&self, limits: &mut QueueLimits) {
        if self.snap.discard_zeroes_cow {
            let chunk = self.snap.cow.chunk;
            // dm-snap stores the chunk size (in sectors) as the granularity; kept identical.
            limits.set_discard_granularity(chunk);
            limits.set_max_hw_discard_sectors(chunk);
        }
    }
}

/// `snapshot` (`MERGE` false) and `snapshot-merge` (`MERGE` true): one implementation, as
/// dm-snap's two target types share theirs.
pub struct SnapshotType<const MERGE: bool>;

/// `snapshot`.
pub type SnapshotTarget = SnapshotType<false>;
/// `snapshot-merge`.
pub type SnapshotMerge = SnapshotType<true>;

#[vtable]
impl<const MERGE: bool> Target for SnapshotType<MERGE> {
    type Private = KBox<SnapTarget>;

    const NAME: &'static CStr = if MERGE {
        c_str!("snapshot-merge")
    } else {
        c_str!("snapshot")
    };
    const SHORT_NAME: &'static CStr = if MERGE {
        c_str!("s-merge")
    } else {
        c_str!("snapshot")
    };
    const VERSION: [u32; 3] = if MERGE { [1, 5, 0] } else { [1, 16, 0] };

    fn ctr(ti: &mut Constructor<'_>, args: Args<'_>) -> Result<KBox<SnapTarget>, CtrError> {
        construct(ti, args, MERGE)
    }

    fn map(this: &SnapTarget, ti: &TargetRef, bio: &MapBio) -> MapResult {
        if MERGE {
            this.map_merge(ti, bio)
        } else {
            this.map_snapshot(ti, bio)
        }
    }

    fn defer(this: &SnapTarget, _ti: &TargetRef, bio: OwnedBio) {
        this.defer(bio);
    }

    fn end_io(this: &SnapTarget, ti: &TargetRef, bio: &Bio, status: &mut BlkStatus) -> EndIoResult {
        this.end_io(ti, bio, status)
    }

    fn end_io_defer(this: &SnapTarget, _ti: &TargetRef, bio: OwnedBio) {
        this.snap.origin.core.returned(bio);
        this.snap.origin.wake();
    }

    fn status(
        this: &SnapTarget,
        ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        this.status(ti, kind, out);
    }

    fn presuspend(this: &SnapTarget, _ti: &TargetRef) {
        if MERGE {
            stop_merge(&this.snap.origin);
        }
    }

    fn postsuspend(this: &SnapTarget, _ti: &TargetRef) {
        this.snap.suspended.store(true, Ordering::Release);
    }

    fn preresume(this: &SnapTarget, _ti: &TargetRef) -> Result {
        this.preresume()
    }

    fn resume(this: &SnapTarget, ti: &TargetRef) {
        this.resume();
        if MERGE {
            // A merge target acts as the origin: split at the smallest chunk of all
            // snapshots.
            ti.set_max_io_len(this.snap.origin.min_chunk());
            this.snap.origin.core.start_merge(&this.snap);
            this.snap.origin.wake();
        }
    }

    fn iterate_devices(this: &SnapTarget, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        this.iterate_devices(ti, visitor);
    }

    fn io_hints(this: &SnapTarget, _ti: &TargetRef, limits: &mut QueueLimits) {
        this.io_hints(limits);
    }
}
