// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Logical volumes: create, resize, activate, remove.

use super::{
    allocate, allocate_extension, commit, is_cow, merge_segments, valid_name, LvRequest, Scan,
};
use crate::dm::activate;
use crate::dm::ioctl::{Control, DevId};
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};
use std::path::PathBuf;
/// `lvcreate` (metadata only).
pub fn lvcreate(vg_name: &str, req: &LvRequest<'_>) -> Result<Vg> {
    valid_name(req.name)?;
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    if vg.lvs.iter().any(|l| l.name == req.name) {
        bail!("logical volume {} already exists in {vg_name}", req.name);
    }
    if req.extents == 0 {
        bail!("an LV needs at least one extent");
    }
    let segments = allocate(&vg, req)?;
    vg.lvs.push(Lv {
        name: req.name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments,
        raw: Default::default(),
    });
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm lvcreate -n {} {vg_name}.", req.name),
    )
    .context("writing metadata")?;
    Ok(vg)
}

/// `lvresize`: grows or shrinks `lv` to `extents`; an active LV gets its new table loaded,
/// is suspended, the metadata is committed, and it resumes.
pub fn lvresize(vg_name: &str, lv_name: &str, extents: u64, prefix: &str) -> Result<(u64, u64)> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let i = vg
        .lvs
        .iter()
        .position(|l| l.name == lv_name)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv_name} not found"))?;
    if !vg.snapshots_of(lv_name).is_empty() || is_cow(&vg, lv_name) {
        bail!("resizing origins and snapshots is not supported yet");
    }
    let cur = vg.lvs[i].extents();
    if extents == cur {
        bail!("new size ({extents} extents) matches the existing size");
    }
    if extents == 0 {
        bail!("an LV cannot shrink to nothing");
    }
    if extents > cur {
        let mut more = allocate_extension(&vg, &vg.lvs[i], extents - cur)?;
        vg.lvs[i].segments.append(&mut more);
        merge_segments(&mut vg.lvs[i].segments);
    } else {
        let lv = &mut vg.lvs[i];
        lv.segments.retain(|s| s.start_extent < extents);
        if let Some(last) = lv.segments.last_mut() {
            let n = match &last.kind {
                SegmentKind::Striped { stripes, .. } => stripes.len() as u64,
                SegmentKind::Other(_) => 1,
            };
            let keep = extents - last.start_extent;
            if !keep.is_multiple_of(n) {
                bail!("a striped LV shrinks by whole stripes: {n} extents at a time");
            }
            last.extent_count = keep;
        }
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let description = format!("Write from orion-lvm lvresize {vg_name}/{lv_name}.");
    let ctl = Control::open().ok();
    let name = activate::dm_name(vg_name, lv_name);
    let active = ctl
        .as_ref()
        .is_some_and(|c| c.info(&DevId::Name(name.clone())).is_ok());
    match (ctl, active) {
        (Some(ctl), true) => {
            let devs = activate::pv_devices(&vg, &members)?;
            let table = activate::table(&vg, &vg.lvs[i], &devs, prefix)?;
            let id = DevId::Name(name);
            let readonly = !vg.lvs[i].status.iter().any(|s| s == "WRITE");
            ctl.load(&id, &table, readonly)?;
            ctl.suspend(&id, false)?;
            let committed = commit(&vg, &paths, &description);
            // Resume whatever happens: a failed commit leaves the old metadata and the new
            // table, which the next activation replaces.
            ctl.resume(&id)?;
            committed?;
        }
        _ => commit(&vg, &paths, &description)?,
    }
    Ok((cur, extents))
}

/// Activates every LV of `vg_name` (`on`) or deactivates them all, snapshots with their
/// origins.
pub fn vgchange(vg_name: &str, on: bool, prefix: &str) -> Result<usize> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let devs = activate::pv_devices(&vg, &members)?;
    let mut n = 0;
    for lv in vg.user_lvs() {
        if !is_cow(&vg, &lv.name) {
            if on {
                activate::activate_with_snapshots(&ctl, &vg, lv, &devs, prefix, &[])?;
            } else {
                activate::deactivate_with_snapshots(&ctl, &vg, lv)?;
            }
        }
        n += 1;
    }
    Ok(n)
}

/// Activates or deactivates one LV (a snapshot goes with its origin).
pub fn lvchange(vg_name: &str, lv: &str, on: bool, prefix: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    let origin = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .find(|(_, cow, _)| *cow == lv)
        .map(|(o, _, _)| o.to_owned());
    let target = origin.as_deref().unwrap_or(lv);
    let l = vg
        .lv(target)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv} not found"))?;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    if on {
        let devs = activate::pv_devices(&vg, &members)?;
        activate::activate_with_snapshots(&ctl, &vg, l, &devs, prefix, &[])
    } else {
        activate::deactivate_with_snapshots(&ctl, &vg, l)
    }
}

/// `lvremove`: deactivates the LV if it is active, then drops it from the metadata. A
/// snapshot takes its `snapshotN` record with it and its origin goes back to a plain table.
pub fn lvremove(vg_name: &str, lv: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let Some(l) = vg.lv(lv).cloned() else {
        bail!("logical volume {vg_name}/{lv} not found");
    };
    if !vg.snapshots_of(lv).is_empty() {
        bail!("logical volume {vg_name}/{lv} has snapshots; remove them first");
    }
    let record = vg
        .lvs
        .iter()
        .find(|x| x.snapshot_of().is_some_and(|(_, cow, _)| cow == lv))
        .map(|x| (x.name.clone(), x.snapshot_of().map(|s| s.0.to_owned())));
    let ctl = Control::open().ok();
    if let Some(ctl) = &ctl {
        let name = activate::dm_name(vg_name, lv);
        if let Ok(info) = ctl.info(&DevId::Name(name.clone())) {
            if info.open_count > 0 {
                bail!("logical volume {vg_name}/{lv} is in use");
            }
            activate::deactivate(ctl, &vg, &l)?;
        }
        if record.is_some() {
            activate::remove_cow(ctl, &name)?;
        }
    }
    vg.lvs.retain(|x| x.name != lv);
    if let Some((rec, _)) = &record {
        vg.lvs.retain(|x| x.name != *rec);
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm lvremove {vg_name}/{lv}."),
    )?;
    // An active origin left without snapshots goes back to its own table.
    if let (Some(ctl), Some((_, Some(origin)))) = (&ctl, &record) {
        if vg.snapshots_of(origin).is_empty() {
            if let Some(o) = vg.lv(origin) {
                if ctl
                    .info(&DevId::Name(activate::dm_name(vg_name, origin)))
                    .is_ok()
                {
                    let devs = activate::pv_devices(&vg, &members)?;
                    activate::activate(ctl, &vg, o, &devs, "")?;
                    activate::remove_real(ctl, vg_name, origin)?;
                }
            }
        }
    }
    Ok(())
}
