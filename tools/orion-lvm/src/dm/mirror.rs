// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Mirrors, and the mirror segments of pvmove, as LVM2 loads them.
//!
//! A mirror LV is its images (`LV_mimage_N`, their own tables, no UUID suffix) and, with a
//! disk log, its log LV (`LV_mlog`) under a `mirror core 1 <region> <n> <image> 0 ... 1
//! handle_errors` or `mirror disk 2 <log> <region> <n> ...` device. pvmove's `pvmoveN`
//! LV has one mirror segment per moved range with PV areas (source, destination): the
//! first range not yet moved is a running mirror without features, ranges already moved
//! are linear on the destination and the ones after it linear on the source.

use super::activate::{area, dm_name, dm_uuid, link_lv, load_device, remove_device, table, DevMap};
use super::backend::DmBackend;
use super::ioctl::Target;
use crate::vg::{Lv, MirrorSeg, Segment, Vg};
use anyhow::{anyhow, Result};

/// Whether `lv` is pvmove's temporary LV.
pub fn is_pvmove(lv: &Lv) -> bool {
    lv.status.iter().any(|s| s == "PVMOVE")
}

/// The table line of mirror segment `seg` of `lv`.
pub fn target(
    vg: &Vg,
    devs: &DevMap,
    lv: &Lv,
    seg: &Segment,
    m: &MirrorSeg<'_>,
    prefix: &str,
) -> Result<Target> {
    let start = seg.start_extent * vg.extent_size;
    let len = seg.extent_count * vg.extent_size;
    let linear = |(name, pe): (&str, u64)| -> Result<Target> {
        Ok(Target {
            start,
            len,
            kind: format!("{prefix}linear"),
            params: area(vg, devs, lv, name, pe)?,
        })
    };
    let pvmove = is_pvmove(lv);
    if pvmove && m.images.len() == 2 {
        let moved = moved_extents(seg);
        if moved >= seg.extent_count {
            return linear(m.images[1]);
        }
        let first_pending = lv
            .segments
            .iter()
            .find(|s| moved_extents(s) < s.extent_count)
            .map(|s| s.start_extent);
        if first_pending != Some(seg.start_extent) {
            return linear(m.images[0]);
        }
    }
    let mut params = match m.log {
        Some(log) => {
            let dev = devs
                .lvs
                .get(log)
                .ok_or_else(|| anyhow!("mirror log {}/{log} is not active", vg.name))?;
            format!("disk 2 {dev} {} {}", m.region_size, m.images.len())
        }
        None => format!("core 1 {} {}", m.region_size, m.images.len()),
    };
    for (name, pe) in &m.images {
        params.push(' ');
        params.push_str(&area(vg, devs, lv, name, *pe)?);
    }
    if !pvmove {
        params.push_str(" 1 handle_errors");
    }
    Ok(Target {
        start,
        len,
        kind: format!("{prefix}mirror"),
        params,
    })
}

/// `extents_moved` of a pvmove segment.
pub fn moved_extents(seg: &Segment) -> u64 {
    match &seg.kind {
        crate::vg::SegmentKind::Other(s) => s.int("extents_moved").unwrap_or(0).max(0) as u64,
        _ => 0,
    }
}

/// Activates mirror `lv`: its images, then the mirror device.
pub fn activate_mirror(
    ctl: &dyn DmBackend,
    vg: &Vg,
    lv: &Lv,
    devs: &mut DevMap,
    prefix: &str,
) -> Result<()> {
    for seg in &lv.segments {
        let m = seg
            .mirror()
            .ok_or_else(|| anyhow!("{}/{}: bad mirror segment", vg.name, lv.name))?;
        for image in m.log.iter().chain(m.images.iter().map(|(i, _)| i)) {
            if devs.lvs.contains_key(*image) || vg.pv(image).is_some() {
                continue;
            }
            let il = vg
                .lv(image)
                .ok_or_else(|| anyhow!("image {}/{image} is missing", vg.name))?;
            let d = load_device(
                ctl,
                &dm_name(&vg.name, image),
                &dm_uuid(vg, il),
                &table(vg, il, devs, prefix)?,
                false,
            )?;
            devs.lvs.insert((*image).to_owned(), d);
        }
    }
    let readonly = !lv.status.iter().any(|s| s == "WRITE");
    let d = load_device(
        ctl,
        &dm_name(&vg.name, &lv.name),
        &dm_uuid(vg, lv),
        &table(vg, lv, devs, prefix)?,
        readonly,
    )?;
    devs.lvs.insert(lv.name.clone(), d);
    if lv.visible() {
        link_lv(ctl, &vg.name, &lv.name)?;
    }
    Ok(())
}

/// Deactivates mirror `lv` and its images.
pub fn deactivate_mirror(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv) -> Result<()> {
    remove_device(ctl, &dm_name(&vg.name, &lv.name))?;
    for seg in &lv.segments {
        if let Some(m) = seg.mirror() {
            for image in m.log.iter().chain(m.images.iter().map(|(i, _)| i)) {
                if vg.pv(image).is_none() {
                    remove_device(ctl, &dm_name(&vg.name, image))?;
                }
            }
        }
    }
    Ok(())
}
