// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `thin` target: one thin device of a pool.
//!
//! Table: `<pool dev> <dev id> [<external origin dev>]`. Reads and writes of blocks mapped
//! and not shared are remapped in `map` from the device's table of known mappings (read
//! under RCU, filled by the worker); every other bio goes to the pool's worker, which maps it
//! (see [`io`]); unmapped blocks of a device with an external origin read from the origin,
//! and a write copies the origin's block first. Status `<mapped sectors>
//! <highest mapped sector>` as drivers/md/dm-thin.c (version 1.23.0).

pub mod deferred_set;
pub mod io;
pub mod pool;
pub mod prison;

use crate::dm::{
    args::Args,
    bio::{Bio, BlkStatus, MapBio, OwnedBio, ReqOp},
    dev::{Dev, OpenBdev},
    limits::QueueLimits,
    rcu,
    status::StatusWriter,
    target::{
        Constructor, CtrError, DeviceVisitor, EndIoResult, Features, MapResult, StatusType, Target,
        TargetRef,
    },
};
use crate::pdata::thin::device::DevId;
use crate::targets::thin_pool::MAX_DEV_ID;
use core::sync::atomic::Ordering;
use io::{ALL_IO_EPOCH_SHIFT, TAG_ALL_IO, TAG_RETURN};
use kernel::{c_str, prelude::*, sync::Arc};
use pool::{Mode, Origin, Pool, PoolRef, ThinQueue};

/// A thin device target.
pub struct Thin {
    queue: Arc<ThinQueue>,
    pool: PoolRef,
    pool_dev: Dev,
    /// The external origin, if the table names one.
    origin_dev: Option<Dev>,
    dev: DevId,
    /// The pool handles discards (not `ignore_discard`).
    discards: bool,
    /// The pool's data device when this target was made: the fast path remaps straight to
    /// it while the pool is still bound to it (else through the pool device, as C).
    data: Option<Arc<OpenBdev>>,
}

impl Drop for Thin {
    fn drop(&mut self) {
        // The mapped device handle must not outlive the target (the queue may).
        *self.queue.md.lock() = None;
        self.pool.remove_thin(&self.queue);
    }
}

impl Thin {
    /// dm-thin's `map` fast path: a read or write of a block the device's table knows as
    /// mapped and not shared goes straight to the pool device (which maps onto the data
    /// device), counted in the pool's all-I/O set like the worker's remaps. `false`: the
    /// worker must map it.
    fn fast_map(&self, ti: &TargetRef, bio: &MapBio) -> bool {
        let core = self.pool.core();
        let q = &self.queue;
        if !core.fast.enabled.load(Ordering::Acquire)
            || q.map_generation.load(Ordering::Acquire)
                != core.fast.generation.load(Ordering::Acquire)
            || bio.size() == 0
            || bio.is_preflush()
            || bio.is_fua()
            || !matches!(bio.op(), ReqOp::Read | ReqOp::Write)
        {
            return false;
        }
        let Some(tag) = ti.bio_tag(bio) else {
            return false;
        };
        let bs = core.block_sectors;
        let (vblock, offset) = core.split(bio.sector().wrapping_sub(q.begin));
        // Counted before the lookup: a discard unpublishes its blocks before it closes the
        // epoch it waits for, so this bio either misses or is waited for.
        let (bit, mut wake) = core.all_io.get_any();
        let found = {
            let g = rcu::read_lock();
            q.map.lookup(vblock, &g)
        };
        let hit = match found {
            Some(block) => {
                tag.store(TAG_ALL_IO | (bit << ALL_IO_EPOCH_SHIFT), Ordering::Relaxed);
                let sector = block.wrapping_mul(bs).wrapping_add(offset);
                match &self.data {
                    // The pool device maps onto its data device one to one: skip its hop.
                    Some(d)
                        if d.bdev().dev_number() == core.fast.data_devt.load(Ordering::Acquire) =>
                    {
                        bio.remap_to(d.bdev(), sector)
                    }
                    _ => bio.remap(&self.pool_dev, sector),
                }
                true
            }
            None => {
                wake |= core.all_io.put(bit);
                false
            }
        };
        if wake {
            self.pool.wake();
        }
        hit
    }
}

#[vtable]
impl Target for Thin {
    type Private = KBox<Self>;

    const NAME: &'static CStr = c_str!("thin");
    const VERSION: [u32; 3] = [1, 23, 0];
    const FEATURES: Features = Features::PASSES_CRYPTO;

    fn ctr(ti: &mut Constructor<'_>, mut args: Args<'_>) -> Result<KBox<Self>, CtrError> {
        if args.len() != 2 && args.len() != 3 {
            return Err(CtrError::inval(c_str!("Invalid argument count")));
        }
        let bad = c_str!("Invalid argument count");
        let pool_path = args.next_str(bad)?;
        let id_arg = args.next_str(bad)?;
        let origin_dev = match args.next() {
            Some(o) if o.as_bytes() == pool_path.as_bytes() => {
                return Err(CtrError::inval(c_str!("Error setting origin device")));
            }
            Some(o) => Some(
                ti.get_device_read_only(o)
                    .map_err(|e| CtrError::new(e, c_str!("Error opening origin device")))?,
            ),
            None => None,
        };
        let pool_dev = ti
            .get_device(pool_path)
            .map_err(|e| CtrError::new(e, c_str!("Error opening pool device")))?;
        let dev = crate::dm::args::parse_u64(id_arg.as_bytes())
            .filter(|&v| v <= MAX_DEV_ID)
            .ok_or(CtrError::inval(c_str!("Invalid device id")))?;
        if !pool_dev.is_dm_device() {
            return Err(CtrError::inval(c_str!("Couldn't get pool mapped device")));
        }
        let pool = Pool::lookup(pool_dev.dev_number())
            .ok_or(CtrError::inval(c_str!("Couldn't find pool object")))?;
        let (mode, exists) = pool.with_state(|st| (st.mode, st.md.details(dev)));
        if mode == Mode::Fail {
            return Err(CtrError::inval(c_str!(
                "Couldn't open thin device, Pool is in fail mode"
            )));
        }
        match exists {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(CtrError::new(
                    Error::from_errno(-61), // ENODATA
                    c_str!("Couldn't open thin internal device"),
                ));
            }
            Err(_) => {
                return Err(CtrError::inval(c_str!(
                    "Couldn't open thin internal device"
                )))
            }
        }
        let block_sectors = pool.core().block_sectors;
        ti.set_max_io_len(block_sectors)
            .map_err(|e| CtrError::new(e, c_str!("Couldn't set max io len")))?;
        if pool.with_state(|st| st.suspended) {
            return Err(CtrError::inval(c_str!(
                "Unable to activate thin device while pool is suspended"
            )));
        }
        let discards = pool.with_state(|st| st.features.discard_enabled);
        if discards {
            ti.set_num_discard_bios(1);
            ti.set_discards_supported(true);
        }
        ti.set_num_flush_bios(1);
        ti.set_flush_supported();
        ti.set_limit_swap_bios();
        ti.set_accounts_remapped_io();
        let origin = match &origin_dev {
            Some(o) => Some(Origin::new(
                o.reopen(false)
                    .map_err(|e| CtrError::new(e, c_str!("Error opening origin device")))?,
                o.nr_sectors(),
            )),
            None => None,
        };
        let blocks = ti.len().checked_div(block_sectors).unwrap_or(0);
        let thin_data = pool.with_state(|st| st.data_dev.clone());
        let queue = ThinQueue::new(dev, ti.begin(), blocks, origin, ti.mapped_device())
            .map_err(|_| CtrError::nomem(c_str!("Out of memory")))?;
        let thin = KBox::new(
            Thin {
                queue: queue.clone(),
                pool,
                pool_dev,
                origin_dev,
                dev,
                discards,
                data: thin_data,
            },
            GFP_KERNEL,
        )
        .map_err(|_| CtrError::nomem(c_str!("Out of memory")))?;
        // Registered last: a failure drops `thin`, whose drop unregisters nothing.
        thin.pool
            .add_thin(queue)
            .map_err(|_| CtrError::nomem(c_str!("Out of memory")))?;
        Ok(thin)
    }

    fn map(this: &Thin, ti: &TargetRef, bio: &MapBio) -> MapResult {
        if this.fast_map(ti, bio) {
            MapResult::Remapped
        } else {
            MapResult::Defer
        }
    }

    fn defer(this: &Thin, _ti: &TargetRef, bio: OwnedBio) {
        this.queue.push(bio);
        this.pool.wake();
    }

    fn end_io(this: &Thin, ti: &TargetRef, bio: &Bio, _status: &mut BlkStatus) -> EndIoResult {
        let Some(tag) = ti.bio_tag(bio) else {
            return EndIoResult::Done;
        };
        let t = tag.load(Ordering::Relaxed);
        if t == 0 {
            return EndIoResult::Done;
        }
        let left = this.pool.io_done(t);
        tag.store(left, Ordering::Relaxed);
        if left & TAG_RETURN != 0 {
            // The worker finishes the overwrite or discard, then ends the bio again (and
            // `end_io` sees it untagged).
            return EndIoResult::Defer;
        }
        EndIoResult::Done
    }

    fn end_io_defer(this: &Thin, _ti: &TargetRef, bio: OwnedBio) {
        this.pool.returned(bio);
    }

    fn status(
        this: &Thin,
        _ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        match kind {
            StatusType::Info => this.pool.status_with(out, |st, out| {
                let bs = this.pool.core().block_sectors;
                let mapped = st
                    .md
                    .details(this.dev)
                    .ok()
                    .flatten()
                    .map(|d| d.mapped_blocks);
                let highest = st.md.highest_mapped(this.dev);
                match (mapped, highest) {
                    (Some(m), Ok(h)) => {
                        out.emit(format_args!("{} ", m.saturating_mul(bs)));
                        match h {
                            Some(h) => out.emit(format_args!(
                                "{}",
                                h.saturating_add(1).saturating_mul(bs).saturating_sub(1)
                            )),
                            None => out.emit(format_args!("-")),
                        }
                    }
                    _ => out.emit(format_args!("Error")),
                }
            }),
            StatusType::Table => this.pool.status_with(out, |_, out| {
                out.emit(format_args!("{} {}", this.pool_dev.name(), this.dev));
                if let Some(o) = &this.origin_dev {
                    out.emit(format_args!(" {}", o.name()));
                }
            }),
            StatusType::Ima => {}
        }
    }

    fn presuspend(this: &Thin, ti: &TargetRef) {
        if ti.noflush_suspending() {
            // dm core maps the bios again after the resume; those waiting for data space
            // would otherwise keep the suspend waiting.
            this.pool.requeue(&this.queue);
        }
    }

    fn preresume(this: &Thin, _ti: &TargetRef) -> Result {
        if let (Some(o), Some(dev)) = (&this.queue.origin, &this.origin_dev) {
            o.set_size(dev.nr_sectors());
        }
        Ok(())
    }

    fn io_hints(this: &Thin, _ti: &TargetRef, limits: &mut QueueLimits) {
        if this.discards {
            let spb = this.pool.core().block_sectors as u32;
            limits.set_discard_granularity(spb << 9);
            limits.set_max_hw_discard_sectors(spb.saturating_mul(1024));
        }
    }

    fn iterate_devices(this: &Thin, _ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        let bs = this.pool.core().block_sectors;
        let len = this.pool.pool_len();
        let blocks = len.checked_div(bs).unwrap_or(0);
        if blocks > 0 {
            visitor.visit(&this.pool_dev, 0, blocks.saturating_mul(bs));
        }
    }
}
