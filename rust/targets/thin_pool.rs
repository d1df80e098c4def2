// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `thin-pool` target: binds a pool (metadata device, data device) to a mapped device.
//!
//! Table: `<metadata dev> <data dev> <data block size> <low water mark> [<#features>
//! <feature>...]`, features `skip_block_zeroing`, `ignore_discard`, `no_discard_passdown`,
//! `read_only`, `error_if_no_space`. Status, table line and messages as
//! drivers/md/dm-thin.c (version 1.23.0); see Documentation/thin-pool.md.

use crate::dm::{
    args::{parse_u64, Args, Raw},
    bio::MapBio,
    dev::{Dev, OpenBdev},
    event::TableEvent,
    limits::QueueLimits,
    status::StatusWriter,
    target::{
        Constructor, CtrError, DeviceVisitor, Features, MapResult, StatusType, Target, TargetRef,
    },
};
use crate::pdata::{error::Error as PdError, thin::device::DevId};
use crate::targets::thin;
use crate::targets::thin::pool::{
    DevName, Mode, Pool, PoolError, PoolFeatures, PoolRef, PoolState,
};
use core::sync::atomic::Ordering;
use kernel::{c_str, prelude::*, sync::Arc};

/// Data block sizes (sectors): a multiple of 64 KiB from 64 KiB to 1 GiB.
const MIN_BLOCK_SECTORS: u64 = 128;
const MAX_BLOCK_SECTORS: u64 = 2_097_152;

/// Largest thin device id (24 bits).
pub const MAX_DEV_ID: u64 = (1 << 24) - 1;

/// A `thin-pool` table line bound to its pool.
pub struct ThinPool {
    pool: PoolRef,
    metadata: Dev,
    data: Dev,
    block_sectors: u64,
    low_water_blocks: u64,
    requested: PoolFeatures,
    /// The requested features as the data device allows them (passdown needs discards of
    /// at least a block).
    adjusted: PoolFeatures,
    /// Raises this table's events; lent to the pool while bound.
    event: Arc<TableEvent>,
    /// The data device opened for the pool, which keeps it while bound (and while its
    /// copies run) even past this table.
    data_open: Arc<OpenBdev>,
    /// The pool's mapped device as `major:minor`, for log lines.
    name: DevName,
}

impl Drop for ThinPool {
    fn drop(&mut self) {
        // Unbind what belongs to this table: the pool may outlive it (a reload).
        // This table is the bound one if the pool holds its event (a reload binds the new
        // table before the old one is destroyed, and both may name the same data device).
        self.pool.with_state(|st| {
            let bound = st
                .event
                .as_ref()
                .is_some_and(|e| Arc::ptr_eq(e, &self.event));
            if bound {
                st.event = None;
                st.data_dev = None;
                st.fast.data_devt.store(0, Ordering::Release);
            }
        });
    }
}

/// The features the pool runs with: discard passdown is turned off, with C's warning, when
/// the data device cannot discard a whole block.
fn adjust_features(requested: PoolFeatures, data: &Dev, block_sectors: u64) -> PoolFeatures {
    let mut pf = requested;
    if pf.discard_enabled && pf.discard_passdown {
        let max = data.bdev().max_discard_sectors();
        let why = if max == 0 {
            Some("discard unsupported")
        } else if max < block_sectors {
            Some("max discard sectors smaller than a block")
        } else {
            None
        };
        if let Some(why) = why {
            pr_warn!(
                "thin: Data device ({}) {}: Disabling discard passdown.\n",
                data.bdev().kernel_name(),
                why
            );
            pf.discard_passdown = false;
        }
    }
    pf
}

fn parse_features(args: &mut Args<'_>) -> Result<PoolFeatures, CtrError> {
    let mut pf = PoolFeatures::default();
    if args.is_empty() {
        return Ok(pf);
    }
    let mut group = args.group(0, 4, c_str!("Invalid number of pool feature arguments"))?;
    while let Some(a) = group.next() {
        let a = a.as_bytes();
        if a.eq_ignore_ascii_case(b"skip_block_zeroing") {
            pf.zero_new_blocks = false;
        } else if a.eq_ignore_ascii_case(b"ignore_discard") {
            pf.discard_enabled = false;
        } else if a.eq_ignore_ascii_case(b"no_discard_passdown") {
            pf.discard_passdown = false;
        } else if a.eq_ignore_ascii_case(b"read_only") {
            pf.read_only = true;
        } else if a.eq_ignore_ascii_case(b"error_if_no_space") {
            pf.error_if_no_space = true;
        } else {
            return Err(CtrError::inval(c_str!(
                "Unrecognised pool feature requested"
            )));
        }
    }
    Ok(pf)
}

/// What a message about a thin device that does not exist returns (no `ENODATA` in the
/// kernel crate's error list).
fn enodata() -> Error {
    Error::from_errno(-61)
}

/// `dmsetup table`'s feature list (`emit_flags` in C).
fn emit_features(pf: &PoolFeatures, out: &mut StatusWriter<'_>) {
    let flags: [(bool, &str); 5] = [
        (!pf.zero_new_blocks, "skip_block_zeroing"),
        (!pf.discard_enabled, "ignore_discard"),
        (!pf.discard_passdown, "no_discard_passdown"),
        (pf.read_only, "read_only"),
        (pf.error_if_no_space, "error_if_no_space"),
    ];
    let n = flags.iter().filter(|(on, _)| *on).count();
    out.emit(format_args!("{} ", n));
    for (_, name) in flags.iter().filter(|(on, _)| *on) {
        out.emit(format_args!("{} ", name));
    }
}

/// Metadata blocks (4 KiB) the pool uses on `dev`, capped as the kernel caps them.
fn metadata_blocks(dev: &Dev) -> u64 {
    (dev.nr_sectors() / 8).min(crate::pdata::space_map::metadata::MAX_BLOCKS)
}

/// Metadata beyond this many sectors is not used (C's `THIN_METADATA_MAX_SECTORS_WARNING`
/// warns from 16 GiB).
const METADATA_WARN_SECTORS: u64 = 16 << 21;

fn warn_if_metadata_too_big(dev: &Dev) {
    if dev.nr_sectors() > METADATA_WARN_SECTORS {
        pr_warn!(
            "thin: Metadata device {} is larger than {} sectors: excess space will not be used.\n",
            dev.bdev().kernel_name(),
            crate::pdata::space_map::metadata::MAX_BLOCKS * 8
        );
    }
}

fn parse_dev_id(s: &CStr) -> Option<DevId> {
    parse_u64(s.as_bytes()).filter(|&v| v <= MAX_DEV_ID)
}

impl ThinPool {
    /// Grows the metadata space map to a grown metadata device, at preresume (C's
    /// `maybe_resize_metadata_dev`).
    fn resize_metadata(st: &mut PoolState, metadata: &Dev, name: DevName) -> Result {
        let want = metadata_blocks(metadata);
        let have = st.md.metadata_nr_blocks();
        if want < have {
            pr_err!(
                "thin: {}: metadata device ({} blocks) too small: expected {}\n",
                name,
                want,
                have
            );
            return Err(EINVAL);
        }
        if want == have {
            return Ok(());
        }
        if st.needs_check() {
            pr_err!(
                "thin: {}: unable to grow the metadata device until repaired.\n",
                name
            );
            return Ok(());
        }
        warn_if_metadata_too_big(metadata);
        pr_info!(
            "thin: {}: growing the metadata device from {} to {} blocks\n",
            name,
            have,
            want
        );
        if st.mode == Mode::OutOfMetadataSpace {
            st.set_mode(Mode::Write);
        }
        if let Err(e) = st.md.resize_metadata(want) {
            st.fail("dm_pool_resize_metadata_dev", e);
            return if st.mode == Mode::Fail {
                Ok(())
            } else {
                Err(EINVAL)
            };
        }
        st.dirty = true;
        st.commit();
        Ok(())
    }

    /// One pool message, with C's verbs, argument checks, errnos and log lines
    /// (`pool_message` and the `process_*_mesg` functions of dm-thin.c).
    fn message_locked(pool: &Pool, st: &mut PoolState, args: &mut Args<'_>) -> Result {
        let argc = args.len();
        let Some(cmd) = args.next() else {
            return Err(EINVAL);
        };
        let want = |k: usize| {
            if argc == k {
                Ok(())
            } else {
                pr_warn!(
                    "device-mapper: thin: Message received with {} arguments instead of {}.\n",
                    argc,
                    k
                );
                Err(EINVAL)
            }
        };
        let id = |a: Option<&CStr>| {
            let a = a.ok_or(EINVAL)?;
            parse_dev_id(a).ok_or_else(|| {
                pr_warn!(
                    "device-mapper: thin: Message received with invalid device id: {}\n",
                    Raw(a.as_bytes())
                );
                EINVAL
            })
        };
        // A metadata operation that fails midway may leave part of its change in the
        // transaction: abort it (read-only, needs_check), as an I/O-path failure does.
        let failed = |st: &mut PoolState, op: &str, e: PdError| {
            let errno = thin::pool::errno(&e);
            st.fail(op, e);
            Error::from_errno(errno)
        };
        let cmd = cmd.as_bytes();
        let r = if cmd.eq_ignore_ascii_case(b"create_thin") {
            want(2)?;
            let arg = args.next().ok_or(EINVAL)?;
            let dev = id(Some(arg))?;
            let r = match st.md.details(dev) {
                Ok(Some(_)) => Err(EEXIST),
                Ok(None) => st
                    .md
                    .create_thin(dev)
                    .map_err(|e| failed(st, "dm_pool_create_thin", e)),
                Err(e) => Err(failed(st, "dm_pool_create_thin", e)),
            };
            if r.is_err() {
                pr_warn!(
                    "device-mapper: thin: Creation of new thinly-provisioned device with id {} failed.\n",
                    Raw(arg.as_bytes())
                );
            }
            r
        } else if cmd.eq_ignore_ascii_case(b"create_snap") {
            want(3)?;
            let (a1, a2) = (args.next().ok_or(EINVAL)?, args.next().ok_or(EINVAL)?);
            let dev = id(Some(a1))?;
            let origin = id(Some(a2))?;
            let r = match (st.md.details(dev), st.md.details(origin)) {
                (Ok(Some(_)), _) => Err(EEXIST),
                (Ok(None), Ok(None)) => Err(enodata()),
                (Ok(None), Ok(Some(_))) => {
                    // The origin's mappings become shared: the fast path must not write them.
                    st.fast.invalidate();
                    st.md
                        .create_snap(dev, origin)
                        .map_err(|e| failed(st, "dm_pool_create_snap", e))
                }
                (Err(e), _) | (_, Err(e)) => Err(failed(st, "dm_pool_create_snap", e)),
            };
            if r.is_err() {
                pr_warn!(
                    "device-mapper: thin: Creation of new snapshot {} of device {} failed.\n",
                    Raw(a1.as_bytes()),
                    Raw(a2.as_bytes())
                );
            }
            r
        } else if cmd.eq_ignore_ascii_case(b"delete") {
            want(2)?;
            let arg = args.next().ok_or(EINVAL)?;
            let dev = id(Some(arg))?;
            let r = match st.md.details(dev) {
                Ok(None) => Err(enodata()),
                Ok(Some(_)) if pool.is_open(dev) => Err(EBUSY),
                Ok(Some(_)) => {
                    st.fast.invalidate();
                    st.md
                        .delete(dev)
                        .map_err(|e| failed(st, "dm_pool_delete_thin_device", e))
                }
                Err(e) => Err(failed(st, "dm_pool_delete_thin_device", e)),
            };
            if r.is_err() {
                pr_warn!(
                    "device-mapper: thin: Deletion of thin device {} failed.\n",
                    Raw(arg.as_bytes())
                );
            }
            r
        } else if cmd.eq_ignore_ascii_case(b"set_transaction_id") {
            want(3)?;
            let (a1, a2) = (args.next().ok_or(EINVAL)?, args.next().ok_or(EINVAL)?);
            let Some(old) = parse_u64(a1.as_bytes()) else {
                pr_warn!(
                    "device-mapper: thin: set_transaction_id message: Unrecognised id {}.\n",
                    Raw(a1.as_bytes())
                );
                return Err(EINVAL);
            };
            let Some(new) = parse_u64(a2.as_bytes()) else {
                pr_warn!(
                    "device-mapper: thin: set_transaction_id message: Unrecognised new id {}.\n",
                    Raw(a2.as_bytes())
                );
                return Err(EINVAL);
            };
            let r = if st.md.superblock().trans_id != old {
                pr_err!("device-mapper: thin metadata: mismatched transaction id\n");
                Err(EINVAL)
            } else {
                st.md
                    .set_transaction_id(old, new)
                    .map_err(|e| failed(st, "dm_pool_set_metadata_transaction_id", e))
            };
            if r.is_err() {
                pr_warn!(
                    "device-mapper: thin: Failed to change transaction id from {} to {}.\n",
                    Raw(a1.as_bytes()),
                    Raw(a2.as_bytes())
                );
            }
            r
        } else if cmd.eq_ignore_ascii_case(b"reserve_metadata_snap") {
            want(1)?;
            // C commits first (flushing the data device), whatever follows.
            st.dirty = true;
            st.commit();
            let r = if !st.mode.writable() {
                Err(EINVAL)
            } else if st.md.superblock().held_root != 0 {
                pr_warn!("device-mapper: thin metadata: Pool metadata snapshot already exists: release this before taking another.\n");
                Err(EBUSY)
            } else {
                st.md
                    .reserve_metadata_snap()
                    .map(|_| ())
                    .map_err(|e| failed(st, "dm_pool_reserve_metadata_snap", e))
            };
            if r.is_err() {
                pr_warn!("device-mapper: thin: reserve_metadata_snap message failed.\n");
            }
            r
        } else if cmd.eq_ignore_ascii_case(b"release_metadata_snap") {
            want(1)?;
            let r = if st.md.superblock().held_root == 0 {
                pr_warn!("device-mapper: thin metadata: No pool metadata snapshot found: nothing to release.\n");
                Err(EINVAL)
            } else {
                st.md
                    .release_metadata_snap()
                    .map_err(|e| failed(st, "dm_pool_release_metadata_snap", e))
            };
            if r.is_err() {
                pr_warn!("device-mapper: thin: release_metadata_snap message failed.\n");
            }
            r
        } else {
            pr_warn!(
                "device-mapper: thin: Unrecognised thin pool target message received: {}\n",
                Raw(cmd)
            );
            return Err(EINVAL);
        };
        if r.is_ok() {
            st.dirty = true;
            st.commit();
        }
        r
    }
}

#[vtable]
impl Target for ThinPool {
    type Private = KBox<Self>;

    const NAME: &'static CStr = c_str!("thin-pool");
    const VERSION: [u32; 3] = [1, 23, 0];
    const FEATURES: Features = Features::SINGLETON
        .union(Features::ALWAYS_WRITEABLE)
        .union(Features::IMMUTABLE)
        .union(Features::PASSES_CRYPTO);

    fn ctr(ti: &mut Constructor<'_>, mut args: Args<'_>) -> Result<KBox<Self>, CtrError> {
        if args.len() < 4 {
            return Err(CtrError::inval(c_str!("Invalid argument count")));
        }
        let bad = c_str!("Invalid argument count");
        let (meta_path, data_path) = (args.next_str(bad)?, args.next_str(bad)?);
        if meta_path.as_bytes() == data_path.as_bytes() {
            return Err(CtrError::inval(c_str!(
                "Error setting metadata or data device"
            )));
        }
        let block_arg = args.next_str(bad)?;
        let low_arg = args.next_str(bad)?;
        // Words after the feature group are ignored, as by C's constructor.
        let requested = parse_features(&mut args)?;
        let metadata = ti
            .get_device(meta_path)
            .map_err(|e| CtrError::new(e, c_str!("Error opening metadata block device")))?;
        warn_if_metadata_too_big(&metadata);
        let data = ti
            .get_device(data_path)
            .map_err(|e| CtrError::new(e, c_str!("Error getting data device")))?;
        let block_sectors = parse_u64(block_arg.as_bytes())
            .filter(|&b| {
                (MIN_BLOCK_SECTORS..=MAX_BLOCK_SECTORS).contains(&b) && b % MIN_BLOCK_SECTORS == 0
            })
            .ok_or(CtrError::inval(c_str!("Invalid block size")))?;
        let low_water_blocks = parse_u64(low_arg.as_bytes())
            .ok_or(CtrError::inval(c_str!("Invalid low water mark")))?;
        // dm core refuses a table longer than the data device once the constructor returns;
        // refused here first, before metadata is formatted for blocks that do not exist.
        if ti.len() > data.nr_sectors() {
            return Err(CtrError::inval(c_str!(
                "Data device is smaller than the pool table"
            )));
        }
        let nr_data_blocks = ti.len().checked_div(block_sectors).unwrap_or(0);
        let (pool, created) = Pool::find_or_create(
            ti.md_dev_number(),
            metadata.dev_number(),
            block_sectors,
            nr_data_blocks,
            requested,
        )
        .map_err(|e| match e {
            PoolError::NoMem => CtrError::nomem(c_str!("Error creating pool")),
            PoolError::Metadata(errno) => CtrError::new(
                Error::from_errno(errno),
                c_str!("Error creating metadata object"),
            ),
            PoolError::BlockSize => CtrError::inval(c_str!("Error creating metadata object")),
            PoolError::ReadOnlyBlank => {
                CtrError::new(EPERM, c_str!("Error creating metadata object"))
            }
            PoolError::OtherMetadata => {
                CtrError::inval(c_str!("metadata device already in use by a pool"))
            }
        })?;
        if !created
            && pool.with_state(|st| st.features.discard_enabled) != requested.discard_enabled
        {
            return Err(CtrError::inval(c_str!(
                "Discard support cannot be disabled once enabled"
            )));
        }
        ti.set_num_flush_bios(1);
        ti.set_limit_swap_bios();
        if requested.discard_enabled && requested.discard_passdown {
            ti.set_num_discard_bios(1);
            ti.set_discards_supported(true);
        }
        let adjusted = adjust_features(requested, &data, block_sectors);
        let event = ti
            .table_event()
            .and_then(|e| Arc::new(e, GFP_KERNEL).map_err(Into::into))
            .map_err(|_| CtrError::nomem(c_str!("Error creating pool")))?;
        let name = DevName(ti.md_dev_number());
        let data_open = data
            .reopen(true)
            .and_then(|d| Arc::new(d, GFP_KERNEL).map_err(Into::into))
            .map_err(|e| CtrError::new(e, c_str!("Error getting data device")))?;
        KBox::new(
            ThinPool {
                pool,
                metadata,
                data,
                block_sectors,
                low_water_blocks,
                requested,
                adjusted,
                event,
                data_open,
                name,
            },
            GFP_KERNEL,
        )
        .map_err(|_| CtrError::nomem(c_str!("Error creating pool")))
    }

    fn map(this: &ThinPool, _ti: &TargetRef, bio: &MapBio) -> MapResult {
        // The pool device maps straight onto the data device (a singleton, so begin is 0).
        bio.set_dev(&this.data);
        MapResult::Remapped
    }

    fn preresume(this: &ThinPool, ti: &TargetRef) -> Result {
        let nr = ti.len().checked_div(this.block_sectors).unwrap_or(0);
        this.pool.with_state(|st| {
            // Bind: this table's devices, features, low water mark and events.
            st.data_dev = Some(this.data_open.clone());
            st.fast
                .data_devt
                .store(this.data_open.bdev().dev_number(), Ordering::Release);
            st.features = this.adjusted;
            st.low_water_blocks = this.low_water_blocks;
            st.event = Some(this.event.clone());
            let mode = if this.requested.read_only {
                Mode::ReadOnly
            } else if st.mode == Mode::OutOfDataSpace {
                Mode::OutOfDataSpace
            } else {
                Mode::Write
            };
            st.set_mode(mode);
            // Bios held while no pool table was bound go back to the worker.
            st.release_held |= st.holding && st.mode == Mode::Write;
            let have = st.nr_data_blocks();
            if nr < have {
                pr_err!(
                    "thin: {}: pool target ({} blocks) too small: expected {}\n",
                    this.name,
                    nr,
                    have
                );
                return Err(EINVAL);
            }
            if nr > have {
                if have != 0 {
                    pr_info!(
                        "thin: {}: growing the data device from {} to {} blocks\n",
                        this.name,
                        have,
                        nr
                    );
                }
                if let Err(e) = st.md.resize_data(nr) {
                    st.fail("dm_pool_resize_data_dev", e);
                    return Err(EINVAL);
                }
                st.dirty = true;
                st.commit();
            }
            Self::resize_metadata(st, &this.metadata, this.name)
        })?;
        this.pool.set_pool_len(ti.len());
        Ok(())
    }

    fn resume(this: &ThinPool, _ti: &TargetRef) {
        this.pool.with_state(|st| {
            st.low_water_triggered = false;
            st.suspended = false;
        });
        this.pool.resume_thins();
        this.pool.wake();
    }

    fn presuspend(this: &ThinPool, _ti: &TargetRef) {
        this.pool.with_state(|st| st.suspended = true);
        this.pool.suspend_thins();
    }

    fn presuspend_undo(this: &ThinPool, _ti: &TargetRef) {
        this.pool.resume_thins();
        this.pool.with_state(|st| st.suspended = false);
    }

    fn postsuspend(this: &ThinPool, _ti: &TargetRef) {
        this.pool.with_state(|st| st.commit());
    }

    fn status(
        this: &ThinPool,
        _ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        match kind {
            StatusType::Info => this.pool.status_with(out, |st, out| {
                let sb = st.md.superblock();
                let (trans, held) = (sb.trans_id, sb.held_root);
                let needs_check = st.needs_check();
                let (meta_total, meta_free) = st.metadata_free();
                let data_total = st.md.data_sm().nr_blocks();
                let data_free = st.md.data_sm().nr_free();
                out.emit(format_args!(
                    "{} {}/{} {}/{} ",
                    trans,
                    meta_total.saturating_sub(meta_free),
                    meta_total,
                    data_total.saturating_sub(data_free),
                    data_total
                ));
                if held != 0 {
                    out.emit(format_args!("{} ", held));
                } else {
                    out.emit(format_args!("- "));
                }
                out.emit(format_args!(
                    "{} ",
                    match st.mode {
                        Mode::OutOfDataSpace => "out_of_data_space",
                        Mode::ReadOnly | Mode::OutOfMetadataSpace | Mode::Fail => "ro",
                        Mode::Write => "rw",
                    }
                ));
                let pf = st.features;
                out.emit(format_args!(
                    "{} {} {} {} ",
                    if !pf.discard_enabled {
                        "ignore_discard"
                    } else if pf.discard_passdown {
                        "discard_passdown"
                    } else {
                        "no_discard_passdown"
                    },
                    if pf.error_if_no_space {
                        "error_if_no_space"
                    } else {
                        "queue_if_no_space"
                    },
                    if needs_check { "needs_check" } else { "-" },
                    (metadata_blocks(&this.metadata) / 4).min(1024)
                ));
            }),
            StatusType::Table => {
                out.emit(format_args!(
                    "{} {} {} {} ",
                    this.metadata.name(),
                    this.data.name(),
                    this.block_sectors,
                    this.low_water_blocks
                ));
                emit_features(&this.requested, out);
            }
            StatusType::Ima => {}
        }
    }

    fn message(
        this: &ThinPool,
        _ti: &TargetRef,
        mut args: Args<'_>,
        _out: &mut StatusWriter<'_>,
    ) -> Result {
        this.pool.with_state(|st| {
            if !st.mode.writable() {
                pr_err!(
                    "device-mapper: thin: {}: unable to service pool target messages in READ_ONLY or FAIL mode\n",
                    this.name
                );
                return Err(Error::from_errno(-95)); // EOPNOTSUPP
            }
            Self::message_locked(&this.pool, st, &mut args)
        })
    }

    fn io_hints(this: &ThinPool, _ti: &TargetRef, limits: &mut QueueLimits) {
        let spb = this.block_sectors as u32;
        let mut max = limits.max_sectors();
        if max > 0 && max < spb {
            // The largest I/O must divide a block.
            while spb.checked_rem(max).is_some_and(|r| r != 0) {
                if max.is_power_of_two() {
                    max -= 1;
                }
                max = 1u32 << max.checked_ilog2().unwrap_or(0);
            }
            limits.set_max_sectors(max);
        }
        let opt = limits.io_opt() >> 9;
        if opt < spb || opt.checked_rem(spb).is_some_and(|r| r != 0) {
            let min = if spb.checked_rem(max) == Some(0) {
                max
            } else {
                spb
            };
            limits.set_io_min(min << 9);
            limits.set_io_opt(spb << 9);
        }
        if this.requested.discard_enabled {
            if !this.adjusted.discard_passdown {
                limits.set_max_hw_discard_sectors(0);
            }
        } else {
            limits.set_discard_granularity(0);
        }
    }

    fn iterate_devices(this: &ThinPool, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        visitor.visit(&this.data, 0, ti.len());
    }
}
