// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Mirrors with a core log (`lvcreate --type mirror -m N --mirrorlog core`) in LVM2's
//! layout: images `LV_mimage_0..N` (hidden linear LVs on different PVs) under the mirror
//! LV, whose segment lists them with the region size.

use super::{allocate, commit_members, valid_name, LvRequest, Scan};
use crate::config::{Section, Value};
use crate::dm::activate;
use crate::dm::ioctl::Control;
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// LVM2's default region size (`activation/mirror_region_size`, 2 MiB) in sectors.
const DEFAULT_REGION: u64 = 4096;

/// `lvcreate --type mirror -m (copies - 1) --mirrorlog core`: activated and its first
/// 4 KiB zeroed (as LVM2) unless `activate_it` is false.
pub fn lvcreate_mirror(
    vg_name: &str,
    name: &str,
    extents: u64,
    copies: u64,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    valid_name(name)?;
    if copies < 2 {
        bail!("a mirror needs at least two images (-m 1)");
    }
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let images: Vec<String> = (0..copies).map(|i| format!("{name}_mimage_{i}")).collect();
    for n in std::iter::once(name).chain(images.iter().map(String::as_str)) {
        if vg.lv(n).is_some() {
            bail!("logical volume {n} already exists in {vg_name}");
        }
    }
    if extents == 0 {
        bail!("an LV needs at least one extent");
    }
    // The images are parallel areas on different PVs, as stripes are.
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
    let Some(SegmentKind::Striped { stripes, .. }) = areas.first().map(|s| &s.kind) else {
        bail!("allocation gave no areas");
    };
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
        .push("region_size", Value::Int(region as i64))
        .push("mirrors", Value::Array(mirrors));
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
    for (image, (pv, pe)) in images.iter().zip(stripes) {
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
    vg.lvs.extend(new);
    vg.seqno += 1;
    commit_members(
        &vg,
        &members,
        &format!("Write from orion-lvm lvcreate --type mirror -n {name} {vg_name}."),
    )?;
    if activate_it {
        let ctl = Control::open().context("opening /dev/mapper/control")?;
        let mut devs = activate::pv_devices(&vg, &members)?;
        let lv = vg.lv(name).ok_or_else(|| anyhow!("{name} vanished"))?;
        activate::activate_lv(&ctl, &vg, lv, &mut devs, prefix, &[])?;
        activate::zero_start(&activate::dm_name(vg_name, name))?;
    }
    Ok(vg)
}
