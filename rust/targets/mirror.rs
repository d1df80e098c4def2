// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `mirror` target (drivers/md/dm-raid1.c, version 1.14.0) with `core` and `disk` logs.
//!
//! Table: `<log type> <#log args> <log args> <#legs> <dev> <offset>... [<#features>
//! [handle_errors] [keep_log]]`; log args `[<log dev>] <region size> [sync|nosync]`.
//! Writes go through the worker ([`set`]), which marks their region dirty in the log before
//! writing every leg. Reads of regions in sync are remapped in `map` to the healthy leg
//! with the fewest reads in flight (C always reads the default leg); other reads go to the
//! default leg.

pub mod log;
pub mod set;

use crate::dm::{
    args::{parse_scanned_u64, Args},
    bio::{Bio, BlkStatus, MapBio, OwnedBio},
    dev::Dev,
    status::StatusWriter,
    target::{
        Constructor, CtrError, DeviceVisitor, EndIoResult, MapResult, StatusType, Target, TargetRef,
    },
};
use core::sync::atomic::Ordering;
use kernel::{c_str, prelude::*, sync::Arc};
use log::{DirtyLog, SyncMode};
use set::{
    read_of_tag, read_tag, Leg, MirrorCore, MAX_LEGS, READ_ERROR, RECOVERY_SLOT, TAG_NOSYNC_WRITE,
    TAG_QUEUED, TAG_READ,
};

/// A `mirror` target.
pub struct Mirror {
    core: Arc<MirrorCore>,
    worker: crate::dm::worker::WorkerBox<MirrorCore>,
    devs: KVec<Dev>,
    log_dev: Option<Dev>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // The event must not outlive the target.
        let e = self.core.event.lock().take();
        drop(e);
    }
}

/// Regions of one mirror: its per-region counters are one allocation of 4 bytes each, kept
/// under 1 GiB (C's limit is `UINT_MAX` regions, with a bitmap per region).
const MAX_REGIONS: u64 = 1 << 28;

/// Every failure to create the log, whatever its cause, is EINVAL with this text (C's
/// `create_dirty_log` returns NULL and the constructor EINVAL).
const LOG_FAIL: &CStr = c_str!("Error creating mirror dirty log");

/// C's `sscanf("%u%c")`, which every number of a mirror table goes through.
fn parse_u32(s: &CStr) -> Option<u32> {
    parse_scanned_u64(s.as_bytes()).and_then(|v| u32::try_from(v).ok())
}

/// The log arguments: `[<dev>] <region size> [sync|nosync]`.
fn make_log(
    ti: &mut Constructor<'_>,
    kind: &CStr,
    mut a: Args<'_>,
) -> Result<(DirtyLog, log::SyncBits, Option<Dev>), CtrError> {
    let fail = CtrError::inval(LOG_FAIL);
    let disk = match kind.as_bytes() {
        b"core" => false,
        b"disk" => true,
        _ => {
            pr_warn!(
                "device-mapper: dirty region log: Module for logging type \"{}\" not found.\n",
                kind
            );
            return Err(fail);
        }
    };
    let n = a.len();
    if (!disk && !(1..=2).contains(&n)) || (disk && !(2..=3).contains(&n)) {
        if disk {
            pr_warn!("device-mapper: dirty region log: wrong number of arguments to disk dirty region log\n");
        } else {
            pr_warn!(
                "device-mapper: dirty region log: wrong number of arguments to dirty region log\n"
            );
        }
        return Err(fail);
    }
    let dev = if disk {
        let p = a.next_str(LOG_FAIL)?;
        Some(ti.get_device(p).map_err(|_| CtrError::inval(LOG_FAIL))?)
    } else {
        None
    };
    let size_arg = a.next_str(LOG_FAIL)?;
    let sync = match a.next() {
        None => SyncMode::Default,
        Some(s) if s.as_bytes() == b"sync" => SyncMode::Force,
        Some(s) if s.as_bytes() == b"nosync" => SyncMode::No,
        Some(s) => {
            pr_warn!(
                "device-mapper: dirty region log: unrecognised sync argument to dirty region log: {}\n",
                s
            );
            return Err(fail);
        }
    };
    let region_size = parse_u32(size_arg)
        .filter(|&r| r >= 2 && u64::from(r) <= ti.len() && r.is_power_of_two())
        .ok_or_else(|| {
            pr_warn!(
                "device-mapper: dirty region log: invalid region size {}\n",
                size_arg
            );
            fail
        })?;
    let count = ti.len().div_ceil(u64::from(region_size));
    if count > u64::from(u32::MAX) {
        pr_warn!(
            "device-mapper: dirty region log: region count exceeds limit of {}\n",
            u32::MAX
        );
        return Err(fail);
    }
    if count > MAX_REGIONS {
        pr_warn!(
            "device-mapper: dirty region log: {} regions: more than this target takes ({})\n",
            count,
            MAX_REGIONS
        );
        return Err(fail);
    }
    let disk_dev = match &dev {
        Some(d) => {
            let lbs = d.bdev().logical_block_size();
            let need = DirtyLog::disk_bytes(count, lbs);
            if need as u64 > d.nr_sectors() * 512 {
                pr_warn!(
                    "device-mapper: dirty region log: log device {} too small: need {} bytes\n",
                    d.name(),
                    need
                );
                return Err(fail);
            }
            Some((d.reopen(true).map_err(|_| CtrError::inval(LOG_FAIL))?, lbs))
        }
        None => None,
    };
    let (log, bits) =
        DirtyLog::new(region_size, count, sync, disk_dev).map_err(|_| CtrError::inval(LOG_FAIL))?;
    Ok((log, bits, dev))
}

#[vtable]
impl Target for Mirror {
    type Private = KBox<Self>;

    const NAME: &'static CStr = c_str!("mirror");
    const VERSION: [u32; 3] = [1, 14, 0];
    // A failed read is sent again to another leg.
    const RECORDS_BIOS: bool = true;

    fn ctr(ti: &mut Constructor<'_>, mut args: Args<'_>) -> Result<KBox<Self>, CtrError> {
        if args.len() < 2 {
            return Err(CtrError::inval(c_str!("Insufficient mirror log arguments")));
        }
        let kind = args.next_str(LOG_FAIL)?;
        let nlog = args
            .next()
            .and_then(parse_u32)
            .ok_or(CtrError::inval(c_str!("Invalid mirror log argument count")))?;
        if nlog as usize > args.len() {
            return Err(CtrError::inval(c_str!("Insufficient mirror log arguments")));
        }
        let log_args = args.group_of(nlog as usize);
        let (log, sync, log_dev) = make_log(ti, kind, log_args)?;
        let region_size = log.region_size;
        let nr = args
            .next()
            .and_then(parse_u32)
            .filter(|&n| n >= 2 && n as usize <= MAX_LEGS)
            .ok_or(CtrError::inval(c_str!("Invalid number of mirrors")))?;
        if args.len() < nr as usize * 2 {
            return Err(CtrError::inval(c_str!("Too few mirror arguments")));
        }
        let nomem = CtrError::nomem(c_str!("Cannot allocate mirror context"));
        let mut devs = KVec::with_capacity(nr as usize, GFP_KERNEL).map_err(|_| nomem)?;
        let mut legs = KVec::with_capacity(nr as usize, GFP_KERNEL).map_err(|_| nomem)?;
        for _ in 0..nr {
            let path = args.next_str(c_str!("Too few mirror arguments"))?;
            let offset = args
                .next()
                .and_then(|s| parse_scanned_u64(s.as_bytes()))
                .ok_or(CtrError::inval(c_str!("Invalid offset")))?;
            let dev = ti
                .get_device(path)
                .map_err(|e| CtrError::new(e, c_str!("Device lookup failure")))?;
            let bdev = dev
                .reopen(true)
                .map_err(|e| CtrError::new(e, c_str!("Device lookup failure")))?;
            legs.push(
                Leg {
                    bdev,
                    offset,
                    error_count: Default::default(),
                    error_type: Default::default(),
                    inflight: Default::default(),
                },
                GFP_KERNEL,
            )
            .map_err(|_| nomem)?;
            devs.push(dev, GFP_KERNEL).map_err(|_| nomem)?;
        }
        ti.set_max_io_len(u64::from(region_size))
            .map_err(|e| CtrError::new(e, c_str!("Couldn't set max io len")))?;
        ti.set_num_flush_bios(1);
        ti.set_num_discard_bios(1);
        let (mut handle_errors, mut keep_log) = (false, false);
        if !args.is_empty() {
            let n = args
                .next()
                .and_then(parse_u32)
                .ok_or(CtrError::inval(c_str!("Invalid number of features")))?;
            if n as usize > args.len() {
                return Err(CtrError::inval(c_str!(
                    "Not enough arguments to support feature count"
                )));
            }
            for _ in 0..n {
                match args.next().map(|f| f.as_bytes()) {
                    Some(b"handle_errors") => handle_errors = true,
                    Some(b"keep_log") => keep_log = true,
                    _ => return Err(CtrError::inval(c_str!("Unrecognised feature requested"))),
                }
            }
            if !handle_errors && keep_log {
                return Err(CtrError::inval(c_str!(
                    "keep_log feature requires the handle_errors feature"
                )));
            }
        }
        if !args.is_empty() {
            return Err(CtrError::inval(c_str!("Too many mirror arguments")));
        }
        let event = ti.table_event().map_err(|_| nomem)?;
        let core = MirrorCore::new(
            legs,
            ti.begin(),
            ti.len(),
            region_size,
            log,
            sync,
            handle_errors,
            keep_log,
            event,
        )
        .map_err(|_| nomem)?;
        let worker =
            crate::dm::worker::WorkerBox::new(c_str!("kmirrord"), core.clone(), RECOVERY_SLOT + 1)
                .map_err(|_| nomem)?;
        KBox::new(
            Mirror {
                core,
                worker,
                devs,
                log_dev,
            },
            GFP_KERNEL,
        )
        .map_err(|_| nomem)
    }

    fn map(this: &Self, ti: &TargetRef, bio: &MapBio) -> MapResult {
        let c = &this.core;
        if bio.is_write() {
            return MapResult::Defer;
        }
        let r = c.region(bio.sector());
        if !c.sync.get(r) {
            if bio.is_readahead() {
                return MapResult::Kill;
            }
            return MapResult::Defer;
        }
        let Some(i) = c.choose_leg() else {
            return MapResult::Kill;
        };
        let (Some(leg), Some(dev)) = (c.legs.get(i), this.devs.get(i)) else {
            return MapResult::Kill;
        };
        leg.inflight.fetch_add(1, Ordering::Relaxed);
        if let Some(tag) = ti.bio_tag(bio) {
            tag.store(read_tag(i, r, false), Ordering::Relaxed);
        }
        bio.remap(dev, c.leg_sector(leg, bio.sector()));
        MapResult::Remapped
    }

    fn defer(this: &Self, _ti: &TargetRef, bio: OwnedBio) {
        this.core.queue(bio);
        this.worker.wake();
    }

    fn end_io(this: &Self, ti: &TargetRef, bio: &Bio, status: &mut BlkStatus) -> EndIoResult {
        let Some(tag) = ti.bio_tag(bio) else {
            return EndIoResult::Done;
        };
        let t = tag.swap(0, Ordering::Relaxed);
        if t & TAG_READ != 0 {
            let (i, r) = read_of_tag(t);
            if let Some(l) = this.core.legs.get(i) {
                l.inflight.fetch_sub(1, Ordering::Relaxed);
            }
            if !status.is_ok() && !status.is_not_supported() && !bio.is_readahead() {
                // dm-raid1's messages: `mirror_end_io` for reads `map` sent, `read_callback`
                // for those the worker sent.
                let name = this.devs.get(i).map_or(c_str!("?"), |d| d.name());
                let queued = t & TAG_QUEUED != 0;
                if !queued {
                    pr_err!(
                        "device-mapper: raid1: Mirror read failed from {}. Trying alternative device.\n",
                        name
                    );
                }
                this.core.fail_leg(i, READ_ERROR);
                if this.core.can_retry_read(r) {
                    if queued {
                        pr_warn!(
                            "device-mapper: raid1: Read failure on mirror device {}. Trying alternative device.\n",
                            name
                        );
                    }
                    // Sent again from `end_io_defer`, to a leg chosen anew.
                    return EndIoResult::Defer;
                }
                if queued {
                    pr_err!(
                        "device-mapper: raid1: Read failure on mirror device {}.  Failing I/O.\n",
                        name
                    );
                } else {
                    pr_err!("device-mapper: raid1: All replicated volumes dead, failing I/O\n");
                }
            }
        } else if t & TAG_NOSYNC_WRITE != 0 {
            this.core.nosync_write_done(t & !TAG_NOSYNC_WRITE);
            this.worker.wake();
        }
        EndIoResult::Done
    }

    fn end_io_defer(this: &Self, ti: &TargetRef, bio: OwnedBio) {
        if ti.restore_bio(&bio) {
            this.core.retry_read(bio);
            this.worker.wake();
        } else {
            bio.end(crate::dm::bio::IoStatus::IoErr);
        }
    }

    fn presuspend(this: &Self, ti: &TargetRef) {
        this.core.suspending.store(true, Ordering::Release);
        this.core.release_holds(ti.noflush_suspending());
        this.core.stop_recovery();
        this.worker.wake();
    }

    fn postsuspend(this: &Self, _ti: &TargetRef) {
        if this.core.flush_log().is_err() {
            pr_warn!("device-mapper: raid1: log postsuspend failed\n");
        }
    }

    fn resume(this: &Self, _ti: &TargetRef) {
        this.core.suspending.store(false, Ordering::Release);
        if this.core.resume().is_err() {
            pr_warn!("device-mapper: raid1: log resume failed\n");
        }
        this.worker.wake();
    }

    fn status(
        this: &Self,
        ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        let c = &this.core;
        let log_name = this
            .log_dev
            .as_ref()
            .map(|d| d.name())
            .unwrap_or(c_str!(""));
        match kind {
            StatusType::Info => {
                out.emit(format_args!("{} ", c.legs.len()));
                for d in this.devs.iter() {
                    out.emit(format_args!("{} ", d.name()));
                }
                out.emit(format_args!("{}/{} 1 ", c.sync.count(), c.nr_regions));
                for l in c.legs.iter() {
                    out.emit(format_args!("{}", l.status_char()));
                }
                out.emit(format_args!(" "));
                c.state.lock().log.status_info(log_name, out);
            }
            StatusType::Table => {
                c.state.lock().log.status_table(log_name, out);
                out.emit(format_args!("{}", c.legs.len()));
                for (d, l) in this.devs.iter().zip(c.legs.iter()) {
                    out.emit(format_args!(" {} {}", d.name(), l.offset));
                }
                let n = c.handle_errors as u32 + c.keep_log as u32;
                if n > 0 {
                    out.emit(format_args!(" {}", n));
                    if c.handle_errors {
                        out.emit(format_args!(" handle_errors"));
                    }
                    if c.keep_log {
                        out.emit(format_args!(" keep_log"));
                    }
                }
            }
            StatusType::Ima => {
                out.target_name_version(ti);
                out.emit(format_args!(",nr_mirrors={}", c.legs.len()));
                for (i, (d, l)) in this.devs.iter().zip(c.legs.iter()).enumerate() {
                    out.emit(format_args!(
                        ",mirror_device_{}={},mirror_device_{}_status={}",
                        i,
                        d.name(),
                        i,
                        l.status_char()
                    ));
                }
                let yn = |b: bool| if b { 'y' } else { 'n' };
                out.emit(format_args!(
                    ",handle_errors={},keep_log={},log_type_status=;",
                    yn(c.handle_errors),
                    yn(c.keep_log)
                ));
            }
        }
    }

    fn iterate_devices(this: &Self, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        for (d, l) in this.devs.iter().zip(this.core.legs.iter()) {
            if !visitor.visit(d, l.offset, ti.len()) {
                break;
            }
        }
    }
}
