// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Mirrors with a core log (`lvcreate --type mirror -m N --mirrorlog core`) in LVM2's
//! layout: images `LV_mimage_0..N` (hidden linear LVs on different PVs) under the mirror
//! LV, whose segment lists them with the region size.

use super::devices::{on_system_vg, Devices};
use super::lv::activate_new;
use super::{allocate, allocate_with_log, valid_name, LvRequest};
use crate::config::{Section, Value};
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Result};

/// LVM2's default region size (`activation/mirror_region_size`, 2 MiB) in sectors.
const DEFAULT_REGION: u64 = 4096;

/// `lvcreate --type mirror -m (copies - 1) --mirrorlog core|disk`: activated and its first
/// 4 KiB zeroed (as LVM2) unless `activate_it` is false. A disk log is one extent
/// (`LV_mlog`) on a PV the images do not use, zeroed so the kernel starts a fresh log.
pub fn lvcreate_mirror(
    vg_name: &str,
    name: &str,
    extents: u64,
    copies: u64,
    disk_log: bool,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    on_system_vg(vg_name, prefix, |d, vg| {
        create_mirror(d, vg, name, extents, copies, disk_log, activate_it)
    })
}

/// [`lvcreate_mirror`] in `vg`.
pub(crate) fn create_mirror(
    d: &mut Devices<'_>,
    mut vg: Vg,
    name: &str,
    extents: u64,
    copies: u64,
    disk_log: bool,
    activate_it: bool,
) -> Result<Vg> {
    valid_name(name)?;
    if copies < 2 {
        bail!("a mirror needs at least two images (-m 1)");
    }
    let vg_name = vg.name.clone();
    let images: Vec<String> = (0..copies).map(|i| format!("{name}_mimage_{i}")).collect();
    for n in std::iter::once(name).chain(images.iter().map(String::as_str)) {
        if vg.lv(n).is_some() {
            bail!("logical volume {n} already exists in {vg_name}");
        }
    }
    if extents == 0 {
        bail!("an LV needs at least one extent");
    }
    // The images are parallel areas on different PVs, as stripes are; a disk log goes
    // where LVM2 puts a log.
    let (stripes, log_area) = if disk_log {
        let (areas, log) = allocate_with_log(&vg, copies, extents, 1).ok_or_else(|| {
            anyhow!(
                "insufficient suitable allocatable extents: {copies} images and a log need {} PVs",
                copies + 1
            )
        })?;
        (areas, Some(log))
    } else {
        let areas = allocate(
            &vg,
            &LvRequest {
                name,
                extents: extents * copies,
                stripes: copies,
                stripe_size: 128,
            },
        )
        .map_err(|e| anyhow!("{e} (each mirror image needs its own PV)"))?;
        match areas.into_iter().next().map(|s| s.kind) {
            Some(SegmentKind::Striped { stripes, .. }) => (stripes, None),
            _ => bail!("allocation gave no areas"),
        }
    };
    let log_name = format!("{name}_mlog");
    if log_area.is_some() && vg.lv(&log_name).is_some() {
        bail!("logical volume {log_name} already exists in {vg_name}");
    }
    let region = DEFAULT_REGION.min(vg.extent_size);
    let mut mirrors = Vec::new();
    for i in &images {
        mirrors.push(Value::Str(i.clone()));
        mirrors.push(Value::Int(0));
    }
    let mut seg = Section::default();
    seg.push("start_extent", Value::Int(0))
        .push("extent_count", Value::Int(extents as i64))
        .push("type", Value::Str("mirror".into()))
        .push("mirror_count", Value::Int(copies as i64))
        .push("region_size", Value::Int(region as i64));
    if log_area.is_some() {
        seg.push("mirror_log", Value::Str(log_name.clone()));
    }
    seg.push("mirrors", Value::Array(mirrors));
    let mut new = vec![Lv {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments: vec![Segment {
            start_extent: 0,
            extent_count: extents,
            kind: SegmentKind::Other(seg),
        }],
        raw: Section::default(),
    }];
    for (image, (pv, pe)) in images.iter().zip(&stripes) {
        new.push(Lv {
            name: image.clone(),
            id: dashed(&new_uuid()?),
            status: vec!["READ".into(), "WRITE".into()],
            segments: vec![Segment {
                start_extent: 0,
                extent_count: extents,
                kind: SegmentKind::Striped {
                    stripe_size: None,
                    stripes: vec![(pv.clone(), *pe)],
                },
            }],
            raw: Section::default(),
        });
    }
    if let Some((pv, pe)) = &log_area {
        new.push(Lv {
            name: log_name.clone(),
            id: dashed(&new_uuid()?),
            status: vec!["READ".into(), "WRITE".into()],
            segments: vec![Segment {
                start_extent: 0,
                extent_count: 1,
                kind: SegmentKind::Striped {
                    stripe_size: None,
                    stripes: vec![(pv.clone(), *pe)],
                },
            }],
            raw: Section::default(),
        });
    }
    vg.lvs.extend(new);
    if log_area.is_some() {
        d.zero(&vg, &log_name)?;
    }
    vg.seqno += 1;
    d.commit(
        &vg,
        &format!("Write from orion-lvm lvcreate --type mirror -n {name} {vg_name}."),
    )?;
    if activate_it {
        activate_new(d, &vg, name)?;
    }
    Ok(vg)
}
