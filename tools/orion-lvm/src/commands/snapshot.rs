// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Old-style snapshots (`lvcreate -s`) in LVM2's layout.

use super::{allocate, commit, is_cow, valid_name, LvRequest, Scan};
use crate::config::{Section, Value};
use crate::dm::activate;
use crate::dm::ioctl::{Control, DevId};
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;
/// `lvcreate -s`: a snapshot of `origin` with a COW LV of `extents`, activated (origin
/// suspended meanwhile) when the origin is active or `activate` is set.
pub fn lvcreate_snapshot(
    vg_name: &str,
    origin: &str,
    name: &str,
    extents: u64,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    valid_name(name)?;
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let o = vg
        .lv(origin)
        .ok_or_else(|| anyhow!("origin {vg_name}/{origin} not found"))?
        .clone();
    if o.snapshot_of().is_some() || is_cow(&vg, origin) {
        bail!("{vg_name}/{origin} is a snapshot; snapshots of snapshots are not supported");
    }
    if vg.lv(name).is_some() {
        bail!("logical volume {name} already exists in {vg_name}");
    }
    let segments = allocate(
        &vg,
        &LvRequest {
            name,
            extents,
            stripes: 1,
            stripe_size: 128,
        },
    )?;
    vg.lvs.push(Lv {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into()],
        segments,
        raw: Default::default(),
    });
    let mut n = 0;
    while vg.lv(&format!("snapshot{n}")).is_some() {
        n += 1;
    }
    let mut seg = Section::default();
    seg.push("start_extent", Value::Int(0))
        .push("extent_count", Value::Int(o.extents() as i64))
        .push("type", Value::Str("snapshot".into()))
        .push("chunk_size", Value::Int(8))
        .push("origin", Value::Str(origin.into()))
        .push("cow_store", Value::Str(name.into()));
    vg.lvs.push(Lv {
        name: format!("snapshot{n}"),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments: vec![Segment {
            start_extent: 0,
            extent_count: o.extents(),
            kind: SegmentKind::Other(seg),
        }],
        raw: Default::default(),
    });
    vg.seqno += 1;
    let ctl = Control::open().ok();
    let origin_name = activate::dm_name(vg_name, origin);
    let origin_active = ctl
        .as_ref()
        .is_some_and(|c| c.info(&DevId::Name(origin_name.clone())).is_ok());
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let description = format!("Write from orion-lvm lvcreate -s -n {name} {vg_name}/{origin}.");
    match ctl {
        Some(ctl) if origin_active || activate_it => {
            let id = DevId::Name(origin_name);
            // The snapshot is taken at this suspend: no write reaches the origin until its
            // snapshot-origin table is live.
            if origin_active {
                ctl.suspend(&id, false)?;
            }
            commit(&vg, &paths, &description)?;
            let devs = activate::pv_devices(&vg, &members)?;
            let o = vg.lv(origin).ok_or_else(|| anyhow!("origin vanished"))?;
            let r = activate::activate_with_snapshots(&ctl, &vg, o, &devs, prefix, &[name]);
            if r.is_err() && origin_active {
                let _ = ctl.resume(&id);
            }
            r?;
        }
        _ => commit(&vg, &paths, &description)?,
    }
    Ok(vg)
}
