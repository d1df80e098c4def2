// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `linear` target: maps its range onto one device from a start sector.
//!
//! Table: `<dev_path> <offset>`. Compatible with drivers/md/dm-linear.c (version 1.4.0).

use crate::dm::{
    args::Args,
    bio::MapBio,
    dev::Dev,
    status::StatusWriter,
    target::{
        Constructor, CtrError, DeviceVisitor, Features, IoctlPassthrough, MapResult, StatusType,
        Target, TargetRef,
    },
};
use kernel::{c_str, prelude::*};

/// A linear mapping.
pub struct Linear {
    dev: Dev,
    start: u64,
}

impl Linear {
    /// The device sector for a sector of the dm device inside this target.
    fn map_sector(&self, ti: &TargetRef, sector: u64) -> u64 {
        // Wrapping, as in C: dm core only sends sectors inside the target, and refuses a
        // table whose device area overflows or passes the end of the device.
        self.start.wrapping_add(sector.wrapping_sub(ti.begin()))
    }
}

#[vtable]
impl Target for Linear {
    type Private = KBox<Self>;

    const NAME: &'static CStr = c_str!("linear");
    const VERSION: [u32; 3] = [1, 4, 0];
    const FEATURES: Features = Features::PASSES_INTEGRITY
        .union(Features::NOWAIT)
        .union(Features::PASSES_CRYPTO);

    fn ctr(ti: &mut Constructor<'_>, mut args: Args<'_>) -> Result<KBox<Self>, CtrError> {
        if args.len() != 2 {
            return Err(CtrError::inval(c_str!("Invalid argument count")));
        }
        let path = args.next_str(c_str!("Invalid argument count"))?;
        let start = args.next_scanned_u64(c_str!("Invalid device sector"))?;
        let dev = ti
            .get_device(path)
            .map_err(|e| CtrError::new(e, c_str!("Device lookup failed")))?;

        ti.set_num_flush_bios(1);
        ti.set_num_discard_bios(1);
        ti.set_num_secure_erase_bios(1);
        ti.set_num_write_zeroes_bios(1);
        ti.set_flush_bypasses_map(true);

        KBox::new(Linear { dev, start }, GFP_KERNEL)
            .map_err(|_| CtrError::nomem(c_str!("Cannot allocate linear context")))
    }

    fn map(this: &Linear, ti: &TargetRef, bio: &MapBio) -> MapResult {
        bio.remap(&this.dev, this.map_sector(ti, bio.sector()));
        MapResult::Remapped
    }

    fn status(
        this: &Linear,
        ti: &TargetRef,
        kind: StatusType,
        _flags: u32,
        out: &mut StatusWriter<'_>,
    ) {
        match kind {
            StatusType::Info => {}
            StatusType::Table => out.emit(format_args!("{} {}", this.dev.name(), this.start)),
            StatusType::Ima => {
                out.target_name_version(ti);
                out.emit(format_args!(
                    ",device_name={},start={};",
                    this.dev.name(),
                    this.start
                ));
            }
        }
    }

    fn prepare_ioctl<'a>(this: &'a Linear, ti: &TargetRef) -> Result<IoctlPassthrough<'a>>
    where
        // Early-bound, as the trait's `Borrowed<'a, Self>` makes it.
        'a: 'a,
    {
        Ok(IoctlPassthrough {
            bdev: this.dev.bdev(),
            // Only a mapping of the whole device may pass every ioctl through.
            whole_device: this.start == 0 && ti.len() == this.dev.nr_sectors(),
        })
    }

    fn iterate_devices(this: &Linear, ti: &TargetRef, visitor: &mut DeviceVisitor<'_>) {
        visitor.visit(&this.dev, this.start, ti.len());
    }
}
