// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `snapshot-origin` target (drivers/md/dm-snap.c, version 1.9.0): the origin device,
//! passed through, except that a write to a chunk some snapshot has not copied yet waits for
//! the copy.
//!
//! Table: `<origin dev>`. `map` checks the snapshots' exception tables under RCU and sends a
//! write straight to the origin when every snapshot already has the chunk; otherwise the
//! origin's worker copies it first (see [`super::snapshot::io`]).

use super::snapshot::origin::Origin;
use crate::dm::{
    args::Args,
    bio::{MapBio, OwnedBio},
    dev::Dev,
    status::StatusWriter,
    target::{Constructor, CtrError, DeviceVisitor, MapResult, StatusType, Target, TargetRef},
};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{c_str, prelude::*, sync::Arc};

/// A `snapshot-origin` target.
pub struct SnapshotOrigin {
    origin: Arc<Origin>,
    dev: Dev,
    /// Writes are split at this many sectors (the smallest snapshot chunk), set at resume.
    split: AtomicU32,
}

impl Drop for SnapshotOrigin {
    fn drop(&mut self) {
        Origin::put(&self.origin);
    }
}

#[vtable]
impl Target for SnapshotOrigin {
    type Private = KBox<Self>;

    const NAME: &'static CStr = c_str!("snapshot-origin");
    const SHORT_NAME: &'static CStr = c_str!("s-origin");
    const VERSION: [u32; 3] = [1, 9, 0];

    fn ctr(ti: &mut Constructor<'_>, mut args: Args<'_>) -> Result<KBox<Self>, CtrError> {
        if args.len() != 1 {
            return Err(CtrError::inval(c_str!(
                "origin: incorrect number of arguments"
            )));
        }
        let path = args.next_str(c_str!("origin: incorrect number of arguments"))?;
        let dev = ti
            .get_device(path)
            .map_err(|e| CtrError::new(e, c_str!("Cannot get target device")))?;
        // Allocated first: a target dropped for want of room would release the origin in
        // its drop, besides the error path.
        let room = KBox::<SnapshotOrigin>::new_uninit(GFP_KERNEL)
            .map_err(|_| CtrError::nomem(c_str!("Cannot allocate private origin structure")))?;
        let origin = Origin::get(dev.dev_number())
            .map_err(|e| CtrError::new(e, c_str!("Cannot allocate private origin structure")))?;
        ti.set_num_flush_bios(1);
        Ok(room.write(SnapshotOrigin {
            origin,
            dev,
            split: AtomicU32::new(1 << 31),
        }))
    }

    fn map(this: &Self, _ti: &TargetRef, bio: &MapBio) -> MapResult {
        bio.set_dev(&this.dev);
        if bio.is_preflush() || !bio.is_write() {
            return MapResult::Remapped;
        }
        // C splits at the smallest chunk as of the last resume only; a snapshot created
        // after it (a tool that resumes the origin first) would miss chunks of a longer write.
        let split = match this.origin.live_min_chunk() {
            Some(c) => c.min(this.split.load(Ordering::Relaxed)),
            None => this.split.load(Ordering::Relaxed),
        }
        .max(1);
        let avail = split - ((bio.sector() as u32) & (split - 1));
        if bio.sectors() > u64::from(avail) {
            bio.accept_partial(avail);
        }
        if this.origin.write_needs_no_cow(bio.sector()) {
            return MapResult::Remapped;
        }
        MapResult::Defer
    }

    fn defer(this: &Self, _ti: &TargetRef, bio: OwnedBio) {
        this.origin.core.origin_write_now(&this.origin.worker, bio);
    }

    fn resume(this: &Self, _ti: &TargetRef) {
        this.split.store(this.origin.min_chunk(), Ordering::Relaxed);
    }

    fn status(
        this: &Self,
        _ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        if kind == StatusType::Table {
            out.emit(format_args!("{}", this.dev.name()));
        }
    }

    fn iterate_devices(this: &Self, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        visitor.visit(&this.dev, 0, ti.len());
    }
}
