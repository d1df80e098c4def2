// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Old-style snapshots (`lvcreate -s`) in LVM2's layout.

use super::devices::{on_system_vg, Devices};
use super::{allocate, is_cow, valid_name, LvRequest};
use crate::config::{Section, Value};
use crate::dm::activate;
use crate::dm::ioctl::DevId;
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Result};
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
    on_system_vg(vg_name, prefix, |d, vg| {
        create_snapshot(d, vg, origin, name, extents, activate_it)
    })
}

/// [`lvcreate_snapshot`] in `vg`.
pub(crate) fn create_snapshot(
    d: &mut Devices<'_>,
    mut vg: Vg,
    origin: &str,
    name: &str,
    extents: u64,
    activate_it: bool,
) -> Result<Vg> {
    valid_name(name)?;
    let vg_name = vg.name.clone();
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
    let origin_name = activate::dm_name(&vg_name, origin);
    let origin_active = d
        .dm()
        .is_some_and(|c| c.info(&DevId::Name(origin_name.clone())).is_ok());
    let description = format!("Write from orion-lvm lvcreate -s -n {name} {vg_name}/{origin}.");
    match d.dm() {
        Some(ctl) if origin_active || activate_it => {
            let id = DevId::Name(origin_name);
            // The snapshot is taken at this suspend: no write reaches the origin until its
            // snapshot-origin table is live.
            if origin_active {
                ctl.suspend(&id, false)?;
            }
            d.commit(&vg, &description)?;
            let o = vg.lv(origin).ok_or_else(|| anyhow!("origin vanished"))?;
            let r = activate::activate_with_snapshots(ctl, &vg, o, &d.pvs, d.prefix, &[name]);
            if r.is_err() && origin_active {
                let _ = ctl.resume(&id);
            }
            r?;
        }
        _ => d.commit(&vg, &description)?,
    }
    Ok(vg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devices::on_recording;
    use crate::dm::recording::{add_lv, test_vg, RecordingDm};

    fn segs_of(vg: &Vg, extents: u64) -> Vec<Segment> {
        let req = LvRequest {
            name: "o",
            extents,
            stripes: 1,
            stripe_size: 128,
        };
        allocate(vg, &req).unwrap()
    }

    #[test]
    fn lvcreate_snapshot_of_a_live_origin_commits_while_the_origin_is_suspended() {
        let (mut vg, mut pvs) = test_vg("vg", &[10]);
        let segs = segs_of(&vg, 4);
        add_lv(&mut vg, "o", segs);
        let dm = RecordingDm::new();
        let o = vg.lv("o").unwrap().clone();
        activate::activate_lv(&dm, &vg, &o, &mut pvs.clone(), "", &[]).unwrap();
        dm.clear_log();
        pvs.lvs.clear();
        let vg = on_recording(&dm, &pvs, |d| create_snapshot(d, vg, "o", "s", 2, false)).unwrap();
        assert_eq!(
            dm.log(),
            [
                // The snapshot is taken here: nothing reaches the origin from now...
                "suspend vg-o",
                "commit seqno 2: Write from orion-lvm lvcreate -s -n s vg/o.",
                "create vg-o-real",
                "load vg-o-real: 0 32768 linear 7:0 2048",
                "resume vg-o-real",
                "node vg-o-real",
                "modprobe dm-snapshot",
                "load vg-o: 0 32768 snapshot-origin 253:1",
                "create vg-s-cow",
                "load vg-s-cow: 0 16384 linear 7:0 34816",
                "resume vg-s-cow",
                "node vg-s-cow",
                "zero vg-s-cow",
                "create vg-s",
                "load vg-s: 0 32768 snapshot 253:1 253:2 P 8",
                "resume vg-s",
                "node vg-s",
                "link vg/s",
                // ...until the snapshot is active and copies what the origin overwrites.
                "suspend vg-o",
                "resume vg-o",
                "node vg-o",
                "link vg/o",
            ]
        );
        assert_eq!(vg.snapshots_of("o").len(), 1);
        // An inactive origin without -ay: the metadata only.
        let (mut vg, pvs) = test_vg("vg", &[10]);
        let segs = segs_of(&vg, 4);
        add_lv(&mut vg, "o", segs);
        let dm = RecordingDm::new();
        on_recording(&dm, &pvs, |d| create_snapshot(d, vg, "o", "s", 2, false)).unwrap();
        assert_eq!(
            dm.log(),
            ["commit seqno 2: Write from orion-lvm lvcreate -s -n s vg/o."]
        );
    }
}
